#!/usr/bin/env bash
# Starts the local services the tests use when they are not answering: PostgreSQL
# (127.0.0.1:5432, trust auth, as the project's machines provide it; see the machine notes).
set -euo pipefail

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
  for _ in $(seq 1 50); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 0.2
  done
fi
pg_isready -q -h 127.0.0.1 -p 5432 || { echo "services: PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }
