#!/usr/bin/env bash
# Builds the cwpub container image on this machine, with no registry and no
# Docker engine: compiles a static (musl) cwpub, lays out the image's file
# tree in target/image/rootfs, and has podman assemble the Containerfile's
# final stage from it (FROM scratch, nothing pulled).
#
#   scripts/build-image.sh                        # cwpub:<version> and cwpub:latest, release profile
#   scripts/build-image.sh --profile image-test --tag cwpub:test    # fast build for the tests
#   scripts/build-image.sh --rootfs-only          # only the file tree (the Containerfile's build stage)
#
# Options:
#   --profile NAME   cargo profile: `release` (default; size-optimized) or `image-test`
#   --tag TAG        image tag (repeatable); default cwpub:<version> and cwpub:latest
#   --bake 0|1       compile the reference guests into the image's cache (default 1),
#                    so a container's first start compiles nothing
#   --rootfs-only    stop after laying out target/image/rootfs (no podman needed)
#
# Needs: rustup/cargo, a musl C compiler (`apt-get install musl-tools`: aws-lc-sys
# and zstd-sys compile C), the system CA bundle, and podman (`apt-get install podman`).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
bake=1
rootfs_only=0
tags=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="${2:?--profile needs a name}"; shift 2 ;;
    --tag) tags+=("${2:?--tag needs a tag}"); shift 2 ;;
    --bake) bake="${2:?--bake needs 0 or 1}"; shift 2 ;;
    --rootfs-only) rootfs_only=1; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$bake" in 0|1) ;; *) echo "error: --bake takes 0 or 1, not $bake" >&2; exit 2 ;; esac

die() { echo "error: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found; $2"; }

arch="$(uname -m)"
target="$arch-unknown-linux-musl"
need cargo "install Rust with rustup: https://rustup.rs"
need rustup "install Rust with rustup: https://rustup.rs"
need "$arch-linux-musl-gcc" "install a musl C compiler (Debian/Ubuntu: apt-get install musl-tools); aws-lc-sys and zstd-sys compile C for $target"
if [ "$rootfs_only" = 0 ]; then
  need podman "install podman (Debian/Ubuntu: apt-get install podman runc)"
fi
for t in "$target" wasm32-wasip2; do
  if ! rustup target list --installed | grep -qx "$t"; then
    echo "==> installing the $t Rust target"
    rustup target add "$t"
  fi
done
ca_bundle="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
[ -f "$ca_bundle" ] || die "no CA bundle at $ca_bundle; install ca-certificates (or set SSL_CERT_FILE)"

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
target_dir="${CARGO_TARGET_DIR:-target}"
case "$profile" in dev) out=debug ;; *) out="$profile" ;; esac

echo "==> building a static cwpub for $target (profile $profile)"
cargo build --locked --profile "$profile" --target "$target" -p cwpub
bin="$target_dir/$target/$out/cwpub"
[ -x "$bin" ] || die "cargo succeeded but $bin is missing"
if command -v readelf >/dev/null 2>&1 && readelf -d "$bin" 2>/dev/null | grep -q NEEDED; then
  die "$bin links shared libraries; it cannot run on scratch"
fi

rootfs="$target_dir/image/rootfs"
echo "==> laying out the image's files in $rootfs"
rm -rf "$rootfs"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/etc/cwpub" "$rootfs/etc/ssl/certs" "$rootfs/var/cache/cwpub" "$rootfs/var/lib/cwpub"
install -m 0755 "$bin" "$rootfs/usr/local/bin/cwpub"
install -m 0644 deploy/image/cwpub.toml "$rootfs/etc/cwpub/cwpub.toml"
install -m 0644 "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
chmod 0755 "$rootfs/var/cache/cwpub" "$rootfs/var/lib/cwpub"

if [ "$bake" = 1 ]; then
  echo "==> compiling the reference guests into the image's cache"
  # `cwpub check` loads (compiles) every guest of the image's config, and the
  # engine stores the result in CWPUB_CACHE_DIR. The cache is keyed by the
  # guest, the engine settings and this CPU's features: a host whose CPU
  # differs compiles once on its first start and caches that.
  env -i PATH="$PATH" CWPUB_REGION=us-east-1 \
    CWPUB_CACHE_DIR="$(cd "$rootfs/var/cache/cwpub" && pwd)" \
    "$bin" check "$rootfs/etc/cwpub/cwpub.toml" >/dev/null
  # Leave only compiled modules: no half-written files or lock files of the
  # cache's worker thread (`<name>.wip-…`, `.cleanup.wip-<pid>`). Module names
  # are base64 hashes that may themselves start with "wip".
  find "$rootfs/var/cache/cwpub" -type f -name '*.wip-*' -delete
  [ -n "$(find "$rootfs/var/cache/cwpub" -type f)" ] || die "baking the guest cache produced no files"
fi

if [ "$rootfs_only" = 1 ]; then
  echo "$rootfs"
  exit 0
fi

[ "${#tags[@]}" -gt 0 ] || tags=("cwpub:$version" "cwpub:latest")
tag_args=()
for t in "${tags[@]}"; do tag_args+=(-t "$t"); done
# The Containerfile's `build` stage (which needs a registry) is skipped: its
# `rootfs` stage is replaced by the directory above, and the main context is empty.
context="$target_dir/image/context"
rm -rf "$context" && mkdir -p "$context"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
created="$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "==> podman build ${tags[*]}"
podman build --format docker --file Containerfile \
  --build-context "rootfs=$rootfs" \
  --build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "CREATED=$created" \
  "${tag_args[@]}" "$context"
size="$(podman image inspect --format '{{.Size}}' "${tags[0]}")"
echo "==> ${tags[0]}: $((size / 1000)) kB (binary $(($(stat -c %s "$bin") / 1000)) kB)"
