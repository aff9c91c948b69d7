#!/bin/sh
# Builds {{wasm_file}} from app.py with componentize-py (see requirements.txt).
#
# componentize-py is taken from $COMPONENTIZE_PY, else .venv/bin, else PATH;
# when none is found, it is installed into .venv first. Nothing is rebuilt
# when no .py file and no .wit file changed since the last build.
set -eu
cd "$(dirname "$0")"
out={{wasm_file}}

if [ -f "$out" ] && [ -z "$(find . -path ./.venv -prune -o \( -name '*.py' -o -name '*.wit' \) -newer "$out" -print)" ]; then
  echo "$out is up to date" >&2
  exit 0
fi

if [ -n "${COMPONENTIZE_PY:-}" ]; then
  tool=$COMPONENTIZE_PY
elif [ -x .venv/bin/componentize-py ]; then
  tool=.venv/bin/componentize-py
elif command -v componentize-py >/dev/null 2>&1; then
  tool=componentize-py
else
  echo "==> installing componentize-py into .venv (first build only)" >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
  tool=.venv/bin/componentize-py
fi

version=$("$tool" --version)
case "$version" in
  *" 0.25.1") ;;
  *) echo "warning: $version is not the tested componentize-py 0.25.1" >&2 ;;
esac

echo "==> $tool -d wit -w guest componentize app -o $out" >&2
"$tool" -d wit -w guest componentize app -o "$out"
