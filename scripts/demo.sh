#!/usr/bin/env bash
# The quick start: FerroLB on one machine. Run as root on Debian:
#
#   sudo ./scripts/demo.sh            # install what it needs, build, run ferrolb-demo
#   sudo ./scripts/demo.sh --down     # remove a running (or crashed) demo
#
# It installs the demo's Debian packages (scripts/install-test-deps.sh demo), builds the
# binaries with cargo (as the user who ran sudo, so target/ stays theirs; a debug build, the
# quickest to compile) and runs target/debug/ferrolb-demo with the arguments given
# (`ferrolb-demo --help` lists them). See docs/demo.md.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh: run as root (network namespaces): sudo $0 $*" >&2
  exit 1
fi
if [ "${1:-}" = "--down" ] && [ -x target/debug/ferrolb-demo ]; then
  exec target/debug/ferrolb-demo "$@"
fi
scripts/install-test-deps.sh demo
BUILD="cargo build --locked -p provider -p announcer -p test-apiserver -p e2e"
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
  # The invoking user's toolchain (rustup installs it in their home), and their target/.
  sudo -u "$SUDO_USER" -H bash -lc "cd \"$PWD\" && $BUILD"
else
  if ! command -v cargo >/dev/null 2>&1; then
    echo "demo.sh: cargo not found; install Rust 1.89 or newer (https://rustup.rs)" >&2
    exit 1
  fi
  $BUILD
fi
exec target/debug/ferrolb-demo "$@"
