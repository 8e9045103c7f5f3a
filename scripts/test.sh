#!/usr/bin/env bash
# Runs every test of the FerroLB workspace.
#
# Run it as root on Debian: it installs the Debian packages the tests need (real ARP/NDP clients
# and BGP routers, kubectl) and the network-namespace tests need root. With CI=true, a test that
# cannot get what it needs fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
cargo test --workspace --locked --no-fail-fast "$@"
