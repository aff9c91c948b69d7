#!/usr/bin/env bash
# Runs every test of the workspace. Installs what a fresh machine lacks first:
# the wasm32-wasip2 Rust target and a Python venv with moto (the local
# CloudWatch Logs endpoint the delivery tests talk to over loopback).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "==> installing the wasm32-wasip2 Rust target"
  rustup target add wasm32-wasip2
fi

if [ ! -x .venv/bin/moto_server ]; then
  echo "==> installing moto[server] into .venv (local CloudWatch Logs endpoint for tests)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]>=5,<6'
fi
export CWPUB_MOTO_SERVER="$PWD/.venv/bin/moto_server"

cargo test --workspace "$@"
