#!/usr/bin/env bash
# Installs what vpnaas needs to build and test on Debian 12, as root. Idempotent: what is
# already there is left alone. Uses only Debian's packages, crates.io and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# strongSwan (charon, kernel-libipsec for kernels without ESP), nftables, iproute2 and
# ping for the agent and its end-to-end tests.
for pkg in ca-certificates pkg-config python3-venv strongswan-charon strongswan-swanctl \
           libcharon-extra-plugins nftables iproute2 iputils-ping; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ! command -v cc >/dev/null 2>&1; then need_apt+=(build-essential); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing; install the Rust toolchain (1.95 or newer) first" >&2
  exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: cargo install cargo-nextest"
  cargo install --locked cargo-nextest
fi

# openstacksdk for the compatibility test, in a private virtualenv.
if ! .venv/bin/python -c 'import openstack' >/dev/null 2>&1; then
  echo "setup: creating .venv with openstacksdk"
  rm -rf .venv
  python3 -m venv .venv || /usr/bin/python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check 'openstacksdk==4.22.0'
fi
echo "setup: done"
