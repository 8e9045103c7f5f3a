#!/usr/bin/env bash
# Installs the Debian packages FerroLB's tests use, when missing. Idempotent.
# With the argument `demo`, only those ferrolb-demo needs (scripts/demo.sh): iproute2,
# iputils-ping, arping, nftables, curl, bird2 and kubectl.
# tests/e2e needs iproute2, iputils-ping, arping, bird2, nftables, curl and kubectl from this
# list (nftables and curl: the demo test's kube-proxy stand-in and client); the announcer's
# failover tests need nftables and tcpdump, its failover bench keepalived and nftables, its
# deployed-capabilities test unshare and setpriv (util-linux).
# tests/images builds the container images with mmdebstrap and podman (binutils: strip) and
# runs them with podman on runc and with containerd (ctr).
set -euo pipefail
PKGS="util-linux iproute2 iputils-ping arping ndisc6 tcpdump gobgpd bird2 frr exabgp keepalived nftables curl"
PKGS="$PKGS mmdebstrap podman runc containerd binutils"
if [ "${1:-}" = "demo" ]; then
  PKGS="iproute2 iputils-ping arping nftables curl bird2"
fi
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if ! command -v kubectl >/dev/null 2>&1; then
  missing="$missing kubernetes-client"
fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing packages:$missing (run as root to install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
