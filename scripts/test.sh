#!/usr/bin/env bash
# Runs every test of the workspace. Installs what a fresh machine lacks first:
# Rust targets and system packages (scripts/install-deps.sh, which stops with
# the command to run when it cannot install them), then a Python venv with
# moto (the local CloudWatch Logs endpoint the delivery tests talk to over
# loopback), componentize-py (builds the Python example guest the tests run),
# DataDog's own API models (datadog-api-client: they check what the fake
# DataDog intake received) and the offline manifest checkers for deploy/ (kubernetes-validate with its
# bundled Kubernetes schemas, botocore's ECS model). The container tests build the
# image first (scripts/build-image.sh --profile image-test), so the long
# static build does not run beside timing-sensitive tests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

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

if ! .venv/bin/python -c 'import datadog_api_client' 2>/dev/null; then
  echo "==> installing datadog-api-client into .venv (DataDog's own API models check what the fake DataDog intake receives)"
  .venv/bin/pip install --quiet --disable-pip-version-check 'datadog-api-client>=2,<3'
fi
export CWPUB_DD_PYTHON="$PWD/.venv/bin/python"

if ! .venv/bin/python -c 'import kubernetes_validate, botocore' 2>/dev/null; then
  echo "==> installing the manifest checkers (kubernetes-validate, botocore) into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check 'kubernetes-validate>=1.31,<2' 'botocore>=1.34,<2'
fi

echo "==> building the container test image (podman, static musl cwpub)"
scripts/build-image.sh --profile image-test --tag localhost/cwpub:test
# The container tests use this image instead of building it again.
CWPUB_TEST_IMAGE_ID="$(podman --runtime runc image inspect --format '{{.Id}}' localhost/cwpub:test)"
export CWPUB_TEST_IMAGE_ID

cargo test --workspace "$@"
