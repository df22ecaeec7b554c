#!/usr/bin/env bash
# Installs every Debian package raftfs needs to build, test and run.
# Idempotent: packages already present are not downloaded again.
set -euo pipefail

PKGS=(
  build-essential meson ninja-build pkg-config
  libuv1-dev liblmdb-dev lmdb-utils
  libprotobuf-c-dev protobuf-c-compiler
  libfuse3-dev fuse3
  check libsystemd-dev
  iproute2 nftables attr util-linux procps psmisc git python3
  # the comparison with etcd (tests/bench/compare-etcd.sh) and its test
  etcd-server etcd-client wrk
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts etcd-server's own service on install (where systemd runs).
# The benchmark starts its own members on other ports; a system etcd that
# we installed just now would only take CPU from it: stop and disable it.
if [[ " ${missing[*]} " == *" etcd-server "* ]] && [ -d /run/systemd/system ] &&
   systemctl is-active --quiet etcd.service 2>/dev/null; then
  echo "install-deps: stopping and disabling the etcd.service the package started" >&2
  $SUDO systemctl disable --now etcd.service >/dev/null 2>&1 || true
fi
