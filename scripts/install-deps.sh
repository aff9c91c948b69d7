#!/usr/bin/env bash
# Installs what the test command (scripts/test.sh) and CI (.ci/run) need that
# a bare Debian or Ubuntu machine with rustup and Python 3 lacks, and prints
# nothing when nothing is missing:
#
#   Rust (rustup):  the wasm32-wasip2 target (the guests), the
#                   <arch>-unknown-linux-musl target (the image's static
#                   binary), rustfmt (CI, generated projects' checks), clippy (CI)
#   apt packages:   gcc (C parts of the host's dependencies), musl-tools (the
#                   static build's C parts), podman and runc (the container
#                   tests), python3-venv (the tests' Python tools), systemd
#                   (systemd-analyze checks deploy/systemd/cwpub.service)
#
# Packages are installed with apt-get as root, else with sudo apt-get. Without
# root or sudo, or without apt-get, it stops at once and prints the command to
# run instead. The Python tools go into the repository's .venv (scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "error: $*" >&2
  exit 1
}

# ---- Rust targets and components, for the toolchain this directory uses ----
if ! command -v rustup >/dev/null; then
  fail "rustup is not on PATH; install it (https://rustup.rs), then run $0 again"
fi
arch="$(uname -m)"
# add_missing target|component NAME...: rustup adds the ones not installed.
add_missing() {
  local kind="$1" installed missing=()
  shift
  installed="$(rustup "$kind" list --installed)"
  for name in "$@"; do
    # Components are listed with their host triple: rustfmt-x86_64-unknown-linux-gnu.
    grep -qE "^$name(-|\$)" <<<"$installed" || missing+=("$name")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> adding the Rust ${kind}s ${missing[*]} (rustup $kind add)"
    rustup --quiet "$kind" add "${missing[@]}"
  fi
}
add_missing target wasm32-wasip2 "$arch-unknown-linux-musl"
add_missing component rustfmt clippy

# ---- system packages ----
packages=()
command -v cc >/dev/null || packages+=(gcc)
command -v "$arch-linux-musl-gcc" >/dev/null || packages+=(musl-tools)
command -v podman >/dev/null || packages+=(podman)
# runc lives in /usr/sbin, which is not on every user's PATH.
command -v runc >/dev/null || [ -x /usr/sbin/runc ] || packages+=(runc)
# Debian's python3 has venv without ensurepip, which python3-venv adds.
python3 -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)
command -v systemd-analyze >/dev/null || packages+=(systemd)
[ "${#packages[@]}" -gt 0 ] || exit 0

command="apt-get install -y ${packages[*]}"
if ! command -v apt-get >/dev/null; then
  fail "missing ${packages[*]} (Debian package names) and there is no apt-get here; install the equivalents with your package manager, then run $0 again"
fi
if [ "$(id -u)" = 0 ]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  fail "missing ${packages[*]}; as root, run: apt-get update && $command"
fi
echo "==> installing ${packages[*]} (${sudo[*]:+sudo }apt-get)"
if ! { "${sudo[@]}" apt-get update -qq &&
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null; }; then
  fail "could not install ${packages[*]}; run: ${sudo[*]:+sudo }apt-get update && ${sudo[*]:+sudo }$command"
fi
