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
# Libreswan needs beside them; nats-server and psql for the bus and store tests; libssl-dev
# for HTTPS to Keystone and Neutron (reqwest over native-tls); chromium and
# chromium-driver for the dashboard's browser tests (headless, driven over WebDriver).
for pkg in ca-certificates pkg-config libssl-dev python3-venv strongswan-charon strongswan-swanctl \
           libcharon-extra-plugins nftables iproute2 iputils-ping iputils-arping \
           libldns3 libevent-pthreads-2.1-7 libnss3-tools nats-server postgresql-client \
           chromium chromium-driver; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ! command -v cc >/dev/null 2>&1; then need_apt+=(build-essential); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# MariaDB and haproxy for the Neutron lab, which starts private instances of both (own
# datadir, socket and port; own config): installed with a policy-rc.d that tells apt not
# to start their system services, which nothing here uses. python3-dev builds uWSGI.
# The network node lab (vpnaas-test-support's `netnode`) likewise starts its own RabbitMQ
# (own node name, ports and data dir) and its own userspace Open vSwitch (own database and
# run dir, netdev datapath, no kernel module), so apt must not start Debian's
# rabbitmq-server or openvswitch-switch services either: a system OVS would own
# /var/run/openvswitch and the kernel datapath, a system RabbitMQ port 5672 and epmd.
# Neutron's agents also need sudo (privsep goes through root_helper even for root),
# keepalived (HA routers), iptables (the L3 agent's NAT, nf_tables backend) and conntrack;
# the lab's tests need ethtool (veths on the userspace datapath without TX checksum
# offload, see netnode::host::without_tx_offload).
need_apt=()
for pkg in mariadb-server haproxy python3-dev openvswitch-switch rabbitmq-server sudo \
           keepalived iptables conntrack ethtool; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]} (their services not started)"
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
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
# neutron 29 + neutron-vpnaas 29 API under uWSGI, for the tests against a real Neutron
# (vpnaas-test-support's `neutron` lab); each version pinned by scripts/neutron-constraints.txt.
# Debian's Python, whose headers (python3-dev) build uWSGI. uWSGI's build links the
# libpython of the `python` first on PATH, so the venv's goes first; and it is built from
# source without pip's cache, which may hold a wheel linked to another Python (whose
# libpython cannot load this venv's standard library). .venv-neutron/neutron.txt records
# the pins and the constraints' checksum: a changed pin remakes the venv.
NEUTRON="neutron==29.0.0 neutron-vpnaas==29.0.0 uWSGI PyMySQL"
NEUTRON_STAMP="$NEUTRON $(sha256sum scripts/neutron-constraints.txt | cut -d' ' -f1)"
if [ "$(cat .venv-neutron/neutron.txt 2>/dev/null)" != "$NEUTRON_STAMP" ] || [ ! -x .venv-neutron/bin/uwsgi ]; then
  echo "setup: installing $NEUTRON into .venv-neutron"
  rm -rf .venv-neutron
  /usr/bin/python3 -m venv .venv-neutron
  pip_neutron() {
    PATH="$PWD/.venv-neutron/bin:$PATH" .venv-neutron/bin/pip install -q \
      --disable-pip-version-check -c scripts/neutron-constraints.txt "$@"
  }
  pip_neutron --no-cache-dir uWSGI
  # shellcheck disable=SC2086 # one requirement per word
  pip_neutron $NEUTRON
  echo "$NEUTRON_STAMP" > .venv-neutron/neutron.txt
fi
echo "setup: done"
