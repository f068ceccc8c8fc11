#!/usr/bin/env bash
# 100 pairs of real routers on one host: 200 lab sites on a private all-in-one (one agent,
# strongSwan), a connection each way between sites 2k-1 and 2k, timed from the first create
# to all 200 ACTIVE; then deleted and created again ROUNDS times. Prints the figures of
# BENCHMARKS.md ("100 pairs of real routers on one host"), and pings through pairs 1, 50
# and 100. Root only; everything it makes
# goes at the end. Usage: scripts/bench_pairs.sh [ROUNDS]  (V=path/to/vpnaas to choose the binary)
set -euo pipefail
V=${V:-./target/release/vpnaas}
ROUNDS=${1:-3}
P=p200
DIR=$(mktemp -d)
export VPNAAS_URL=http://127.0.0.1:19718
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
active() { "$V" site-connection list -f value 2>/dev/null | awk '$5 == "ACTIVE"' | wc -l; }

"$V" all-in-one --listen 127.0.0.1:19718 --data-dir "$DIR/data" --state-dir "$DIR/state" \
  --namespace-prefix p2r- --fabric-namespace p2fab > "$DIR/aio.log" 2>&1 &
AIO=$!
cleanup() {
  "$V" lab down --prefix $P --fabric-namespace p2fab > /dev/null 2>&1 || true
  kill "$AIO" 2> /dev/null || true
  wait "$AIO" 2> /dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
until curl -sf "$VPNAAS_URL/" > /dev/null; do sleep 0.2; done

t=$(now)
"$V" lab up --sites 200 --prefix $P --fabric-namespace p2fab > /dev/null
echo "lab up --sites 200: $(since "$t") s"
"$V" ike-policy create ike200 --ike-version v2 > /dev/null
"$V" ipsec-policy create esp200 > /dev/null
t=$(now)
for n in $(seq 1 200); do
  "$V" service create ${P}s$n --router $P-r$n --subnet $P-site$n-v4 > /dev/null
done
echo "200 VPN services: $(since "$t") s"

for round in $(seq 1 "$ROUNDS"); do
  for id in $("$V" site-connection list -f value | awk '{print $1}'); do
    "$V" site-connection delete "$id" > /dev/null
  done
  first=$(now)
  for k in $(seq 1 100); do
    a=$((2 * k - 1)); b=$((2 * k))
    for pair in "$a $b" "$b $a"; do
      set -- $pair
      "$V" site-connection create ${P}c$1 --vpnservice ${P}s$1 --ikepolicy ike200 \
        --ipsecpolicy esp200 --peer-address 203.0.113.$(($2 + 1)) \
        --peer-id 203.0.113.$(($2 + 1)) --psk "pair $k" --peer-cidr 10.$2.0.0/24 > /dev/null
    done
  done
  last=$(now)
  until [ "$(active)" -ge 200 ]; do sleep 0.2; done
  echo "round $round: 200 created in $(echo "$last - $first" | bc) s; first create -> all ACTIVE $(since "$first") s; last create -> all ACTIVE $(since "$last") s"
done
for k in 1 50 100; do
  a=$((2 * k - 1)); b=$((2 * k))
  if "$V" lab exec $a --prefix $P -- ping -c 2 -W 2 10.$b.0.10 > /dev/null 2>&1; then
    echo "pair $k: ping answered"
  else
    echo "pair $k: no answer"
  fi
done
ps -C charon -o rss= | awk '{s += $1; n++} END {printf "%d charons, %.1f MiB RSS each (mean)\n", n, s / n / 1024}'
curl -s "$VPNAAS_URL/metrics" | awk '/^vpnaas_agent_resync_duration_seconds_(sum|count)/ {v[$1] = $2}
  END {printf "agent full resync: %.1f s mean over %d\n", v["vpnaas_agent_resync_duration_seconds_sum"] / v["vpnaas_agent_resync_duration_seconds_count"], v["vpnaas_agent_resync_duration_seconds_count"]}'
