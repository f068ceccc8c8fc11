#!/usr/bin/env bash
# The whole test suite, as CI runs it: setup, formatting, lints, every test on SQLite, then
# the store and API suites again on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# The OpenStack lab's tests (Keystone, Neutron, the haproxy front) fail instead of skipping
# when setup.sh left something out.
export VPNAAS_TEST_REQUIRE_OPENSTACK=1
./scripts/services.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

# Scratch PostgreSQL databases (vpnaas_t_*) made by the tests are dropped however they end.
drop_scratch_databases() {
  local server=${VPNAAS_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432}
  psql "$server/postgres" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'vpnaas_t_%'" |
    while read -r name; do psql "$server/postgres" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)"; done
}
trap drop_scratch_databases EXIT

cargo nextest run --workspace --locked --no-fail-fast
VPNAAS_TEST_BACKEND=postgres cargo nextest run --locked --no-fail-fast \
  -p vpnaas-store -p vpnaas-server
