#!/usr/bin/env bash
# The quick start in one command, as root on Debian 12: installs what vpnaas needs
# (scripts/setup.sh), builds the release binary and runs `vpnaas demo` (two sites, a real
# IPsec tunnel, a ping through it). Arguments go to the demo, e.g. `--exit`, `--agents 3 --ha`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --locked --bin vpnaas
exec ./target/release/vpnaas demo "$@"
