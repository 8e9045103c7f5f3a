#!/usr/bin/env bash
# Builds FerroLB's OCI images without any registry: ferrolb-provider, ferrolb-announcer and
# test-apiserver, each from images/<name>/Containerfile, on a base made by mmdebstrap from
# Debian packages (libc6 and libgcc-s1, the Mozilla CA bundle from ca-certificates, an
# /etc/passwd with root and nonroot 65532; no shell, no package manager).
#
# Usage: scripts/build-images.sh [--out DIR] [--name-prefix PREFIX] [--tag TAG] [--bin-dir DIR]
#
#   --out DIR            where the OCI archives go (default: target/images); env FERROLB_IMAGE_OUT
#   --name-prefix PREFIX image names are PREFIX/<binary> (default: ghcr.io/ferrolb, the names
#                        manifests/kustomization.yaml uses); env FERROLB_IMAGE_PREFIX
#   --tag TAG            image tag (default: the version the binaries print); env FERROLB_IMAGE_TAG
#   --bin-dir DIR        take the binaries from DIR instead of running
#                        `cargo build --release` (e.g. target/debug); env FERROLB_BIN_DIR
#
# Tools (Debian): mmdebstrap, and podman or buildah (FERROLB_IMAGE_TOOL=podman|buildah picks
# one; podman is preferred when both are there). Tested as root; as another user it relies on
# rootless podman/buildah and mmdebstrap's unshare mode (untested). The images stay in the tool's local
# storage under their names and are written to DIR/<binary>.oci.tar (OCI archive), which
# `ctr -n k8s.io images import`, `podman load`, `skopeo copy oci-archive:...` and
# `kind load image-archive` read. docs/images.md says how to load or push them.
#
# The mmdebstrap base is cached in target/images/cache/ under a key made of the suite, the
# packages and this script, so a second run builds only the image layers (seconds).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
out="${FERROLB_IMAGE_OUT:-}"
prefix="${FERROLB_IMAGE_PREFIX:-ghcr.io/ferrolb}"
tag="${FERROLB_IMAGE_TAG:-}"
bin_dir="${FERROLB_BIN_DIR:-}"
tool="${FERROLB_IMAGE_TOOL:-}"

die() {
  echo "build-images: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --name-prefix) prefix="${2:?--name-prefix needs a value}"; shift 2 ;;
    --tag) tag="${2:?--tag needs a value}"; shift 2 ;;
    --bin-dir) bin_dir="${2:?--bin-dir needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

target_dir="${CARGO_TARGET_DIR:-$repo/target}"
out="${out:-$target_dir/images}"
binaries="ferrolb-provider ferrolb-announcer test-apiserver"

# --- tools -------------------------------------------------------------------------------
command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (apt-get install mmdebstrap)"
if [ -z "$tool" ]; then
  if command -v podman >/dev/null; then tool=podman
  elif command -v buildah >/dev/null; then tool=buildah
  else die "neither podman nor buildah is installed (apt-get install podman)"
  fi
fi
case "$tool" in
  podman|buildah) command -v "$tool" >/dev/null || die "FERROLB_IMAGE_TOOL=$tool but $tool is not installed" ;;
  *) die "FERROLB_IMAGE_TOOL must be podman or buildah, not '$tool'" ;;
esac

# --- binaries ----------------------------------------------------------------------------
if [ -z "$bin_dir" ]; then
  (cd "$repo" && cargo build --release --locked -p provider -p announcer -p test-apiserver)
  bin_dir="$target_dir/release"
fi
for b in $binaries; do
  [ -x "$bin_dir/$b" ] || die "$bin_dir/$b is missing or not executable (build it, or pass --bin-dir)"
done
if [ -z "$tag" ]; then
  # `ferrolb-provider 0.1.0` -> 0.1.0
  tag="$("$bin_dir/ferrolb-provider" --version | awk '{print $2}')"
  [ -n "$tag" ] || die "$bin_dir/ferrolb-provider --version printed no version; pass --tag"
fi

# --- base: mmdebstrap --------------------------------------------------------------------
# The suite defaults to the build machine's Debian release, so the image's glibc is the one
# the binaries were linked against (a newer build host than the base would fail at run time).
# shellcheck source=/dev/null
suite="${FERROLB_IMAGE_SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}"
packages="libc6,libgcc-s1"
# mmdebstrap reads the host's Debian sources when there is a deb822 file for them (the same
# mirror apt uses here); otherwise its default mirror.
mirror_args=()
if [ -n "${FERROLB_IMAGE_MIRROR:-}" ]; then
  mirror_args=("$FERROLB_IMAGE_MIRROR")
elif [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror_args=(/etc/apt/sources.list.d/debian.sources)
fi
cache_dir="$target_dir/images/cache"
mkdir -p "$cache_dir" "$out"
key="$( (echo "$suite $packages ${mirror_args[*]:-}"; cat "$0") | sha256sum | cut -c1-16)"
base_tar="$cache_dir/base-$suite-$key.tar"
if [ ! -s "$base_tar" ]; then
  rm -f "$cache_dir"/base-*.tar  # stale bases (other key)
  echo "build-images: making the $suite base with mmdebstrap ($packages + CA bundle)" >&2
  hook="$(mktemp)"
  trap 'rm -f "$hook"' EXIT
  # The extract variant unpacks the listed packages and their dependencies without running
  # maintainer scripts: no dpkg, apt or shell in the image. The hook adds what the
  # maintainer scripts of ca-certificates and base-passwd would have made.
  cat >"$hook" <<'HOOK'
#!/bin/sh
set -eu
root="$1"
work="$(mktemp -d)"
chmod 755 "$work"
(cd "$work" && APT_CONFIG="$MMDEBSTRAP_APT_CONFIG" apt-get download -q=2 \
  -o APT::Sandbox::User=root ca-certificates)
dpkg-deb -x "$work"/ca-certificates_*.deb "$work/ca"
mkdir -p "$root/etc/ssl/certs"
cat "$work"/ca/usr/share/ca-certificates/mozilla/*.crt >"$root/etc/ssl/certs/ca-certificates.crt"
rm -rf "$work"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
mkdir -p "$root/home/nonroot" "$root/tmp"
chown 65532:65532 "$root/home/nonroot"
chmod 1777 "$root/tmp"
rm -f "$root/etc/hostname" "$root/etc/resolv.conf"  # the build host's; runtimes mount their own
rm -rf "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/lintian"
HOOK
  chmod 755 "$hook"
  SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-0}" mmdebstrap --quiet --variant=extract --skip=output/dev \
    --include="$packages" --extract-hook="$hook \"\$1\"" \
    "$suite" "$base_tar.tmp.tar" "${mirror_args[@]}" </dev/null
  mv "$base_tar.tmp.tar" "$base_tar"
fi
base_image="localhost/ferrolb/base:$suite"
case "$tool" in
  podman) podman import --quiet "$base_tar" "$base_image" >/dev/null ;;
  buildah)
    ctr="$(buildah from --quiet scratch)"
    buildah add --quiet "$ctr" "$base_tar" / >/dev/null
    buildah commit --quiet --rm "$ctr" "$base_image" >/dev/null
    ;;
esac

# --- images ------------------------------------------------------------------------------
context_root="$target_dir/images/context"
for b in $binaries; do
  name="$prefix/$b:$tag"
  context="$context_root/$b"
  rm -rf "$context"
  mkdir -p "$context"
  cp "$repo/images/$b/Containerfile" "$context/Containerfile"
  # Debug information is for a debugger, not for a Pod; the symbol table stays so panics
  # name their functions.
  if command -v strip >/dev/null; then
    strip --strip-debug -o "$context/$b" "$bin_dir/$b"
  else
    cp "$bin_dir/$b" "$context/$b"
  fi
  echo "build-images: building $name with $tool" >&2
  case "$tool" in
    podman) podman build --quiet --build-arg "BASE=$base_image" --build-arg "VERSION=$tag" \
              -t "$name" "$context" >/dev/null ;;
    buildah) buildah build --quiet --isolation chroot --build-arg "BASE=$base_image" \
               --build-arg "VERSION=$tag" -t "$name" "$context" >/dev/null ;;
  esac
  rm -f "$out/$b.oci.tar"
  "$tool" push --quiet "$name" "oci-archive:$out/$b.oci.tar:$name" >/dev/null
  rm -rf "$context"
  echo "$name $out/$b.oci.tar"
done
