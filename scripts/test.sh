#!/usr/bin/env bash
# Runs every test of the workspace. Installs what a fresh machine lacks first:
# the wasm32-wasip2 Rust target and a Python venv with moto (the local
# CloudWatch Logs endpoint the delivery tests talk to over loopback) and
# componentize-py (builds the Python example guest the tests run).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "==> installing the wasm32-wasip2 Rust target"
  rustup target add wasm32-wasip2
fi

if [ ! -x .venv/bin/pip ]; then
  python3 -m venv .venv
fi
if [ ! -x .venv/bin/moto_server ]; then
  echo "==> installing moto[server] into .venv (local CloudWatch Logs endpoint for tests)"
  .venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]>=5,<6'
fi
export CWPUB_MOTO_SERVER="$PWD/.venv/bin/moto_server"

COMPONENTIZE_PY_VERSION=0.25.1
if [ "$(.venv/bin/componentize-py --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]; then
  echo "==> installing componentize-py $COMPONENTIZE_PY_VERSION into .venv (builds Python guests for tests)"
  .venv/bin/pip install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
fi
export CWPUB_COMPONENTIZE_PY="$PWD/.venv/bin/componentize-py"

cargo test --workspace "$@"
