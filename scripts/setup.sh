#!/usr/bin/env bash
# Installs what vpnaas needs to build and test on Debian 12, as root. Idempotent: what is
# already there is left alone. Uses only Debian's packages, crates.io and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# strongSwan (charon, kernel-libipsec for kernels without ESP), nftables, iproute2,
# arping (gratuitous ARP after an HA takeover) and ping for the agent and its end-to-end
# tests.
# libldns3, libevent-pthreads and libnss3-tools (certutil) are what the unpacked
# Libreswan needs beside them; nats-server and psql for the bus and store tests.
for pkg in ca-certificates pkg-config python3-venv strongswan-charon strongswan-swanctl \
           libcharon-extra-plugins nftables iproute2 iputils-ping iputils-arping \
           libldns3 libevent-pthreads-2.1-7 libnss3-tools nats-server postgresql-client; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ! command -v cc >/dev/null 2>&1; then need_apt+=(build-essential); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Libreswan for its driver's tests. Debian's libreswan package conflicts with
# strongswan-charon (installing it would remove charon), so its .deb is unpacked into a
# folder instead; the agent's `libreswan_root` and the tests point there.
LIBRESWAN_ROOT=${VPNAAS_LIBRESWAN_ROOT:-/opt/vpnaas/libreswan}
if [ ! -x "$LIBRESWAN_ROOT/usr/libexec/ipsec/pluto" ]; then
  echo "setup: unpacking libreswan into $LIBRESWAN_ROOT"
  work=$(mktemp -d)
  (cd "$work" && apt-get download -qq libreswan 2>/dev/null || { apt-get update -qq && apt-get download -qq libreswan; })
  mkdir -p "$LIBRESWAN_ROOT"
  dpkg-deb -x "$work"/libreswan_*.deb "$LIBRESWAN_ROOT"
  rm -rf "$work"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing; install the Rust toolchain (1.95 or newer) first" >&2
  exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "setup: cargo install cargo-nextest"
  cargo install --locked cargo-nextest
fi

# openstacksdk and the `openstack` CLI (whose `openstack vpn …` commands moved from
# python-neutronclient into python-openstackclient) for the compatibility tests, and
# openapi-spec-validator and schemathesis for the OpenAPI document's tests, pinned, in a
# private virtualenv.
# .venv/clients.txt records what was installed, so a changed pin reinstalls.
PYTHON_CLIENTS="openstacksdk==4.22.0 python-openstackclient==10.5.0 openapi-spec-validator==0.9.0 schemathesis==4.32.5"
if [ "$(cat .venv/clients.txt 2>/dev/null)" != "$PYTHON_CLIENTS" ] || [ ! -x .venv/bin/openstack ]; then
  echo "setup: installing $PYTHON_CLIENTS into .venv"
  [ -x .venv/bin/python ] || python3 -m venv .venv || /usr/bin/python3 -m venv .venv
  # shellcheck disable=SC2086 # one pin per word
  .venv/bin/pip install -q --disable-pip-version-check $PYTHON_CLIENTS
  echo "$PYTHON_CLIENTS" > .venv/clients.txt
fi
# Keystone, pinned, in a virtualenv of its own (its dependencies clash with the clients'),
# for the tests of `auth = "keystone"`; they serve it with scripts/keystone_wsgi.py.
KEYSTONE="keystone==30.0.0"
if [ "$(cat .venv-keystone/keystone.txt 2>/dev/null)" != "$KEYSTONE" ] || [ ! -x .venv-keystone/bin/keystone-manage ]; then
  echo "setup: installing $KEYSTONE into .venv-keystone"
  [ -x .venv-keystone/bin/python ] || python3 -m venv .venv-keystone || /usr/bin/python3 -m venv .venv-keystone
  .venv-keystone/bin/pip install -q --disable-pip-version-check "$KEYSTONE"
  echo "$KEYSTONE" > .venv-keystone/keystone.txt
fi
echo "setup: done"
