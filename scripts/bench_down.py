#!/usr/bin/env python3
"""Measures how fast a tunnel going down shows in the API: on a running all-in-one with a
2-site lab (`vpnaas lab up --sites 2`, lab prefix as argument 2), brings a connection pair
up, then disables or deletes the peer's side and times until this side is DOWN in GET.
Standard library only. Usage: scripts/bench_down.py http://127.0.0.1:9696 vlab [runs]"""

import json
import statistics
import sys
import time
import urllib.request

API = sys.argv[1].rstrip("/") + "/v2.0"
PREFIX = sys.argv[2] if len(sys.argv) > 2 else "vlab"
RUNS = int(sys.argv[3]) if len(sys.argv) > 3 else 10


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{API}/{path}", data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        text = response.read()
    return json.loads(text) if text else None


def find(collection, key, name):
    return call("GET", f"{collection}?name={name}")[key][0]


def main():
    routers = [find("routers", "routers", f"{PREFIX}-r{n}") for n in (1, 2)]
    subnets = [find("subnets", "subnets", f"{PREFIX}-site{n}-v4") for n in (1, 2)]
    ike = call("POST", "vpn/ikepolicies", {"ikepolicy": {"name": "bench-down-ike", "ike_version": "v2"}})["ikepolicy"]
    esp = call("POST", "vpn/ipsecpolicies", {"ipsecpolicy": {"name": "bench-down-esp"}})["ipsecpolicy"]
    services = [
        call("POST", "vpn/vpnservices", {"vpnservice": {"router_id": r["id"], "subnet_id": s["id"]}})["vpnservice"]
        for r, s in zip(routers, subnets)
    ]
    gateways = [r["external_gateway_info"]["external_fixed_ips"][0]["ip_address"] for r in routers]

    def connect(a, b):
        body = {"vpnservice_id": services[a]["id"], "ikepolicy_id": ike["id"], "ipsecpolicy_id": esp["id"],
                "peer_address": gateways[b], "peer_id": gateways[b], "psk": "bench-down-secret",
                "peer_cidrs": [subnets[b]["cidr"]]}
        return call("POST", "vpn/ipsec-site-connections", {"ipsec_site_connection": body})["ipsec_site_connection"]["id"]

    def show(conn):
        return call("GET", f"vpn/ipsec-site-connections/{conn}")["ipsec_site_connection"]

    def wait(conn, wanted):
        started = time.monotonic()
        while show(conn)["status"] != wanted:
            if time.monotonic() - started > 30:
                sys.exit(f"{conn} is not {wanted} after 30 s")
            time.sleep(0.002)

    for how in ("disable", "delete"):
        samples, reason = [], ""
        for _ in range(RUNS):
            mine, theirs = connect(0, 1), connect(1, 0)
            wait(mine, "ACTIVE")
            wait(theirs, "ACTIVE")
            time.sleep(0.2)
            started = time.monotonic()
            if how == "disable":
                call("PUT", f"vpn/ipsec-site-connections/{theirs}", {"ipsec_site_connection": {"admin_state_up": False}})
            else:
                call("DELETE", f"vpn/ipsec-site-connections/{theirs}")
            wait(mine, "DOWN")
            samples.append((time.monotonic() - started) * 1000)
            reason = show(mine)["status_reason"]
            call("DELETE", f"vpn/ipsec-site-connections/{mine}")
            if how == "disable":
                call("DELETE", f"vpn/ipsec-site-connections/{theirs}")
            time.sleep(0.3)
        samples.sort()
        print(f"peer side {how}d -> DOWN here: median {statistics.median(samples):.1f} ms, "
              f"min {samples[0]:.1f}, max {samples[-1]:.1f} ({RUNS} runs, reason {reason})")
    for service in services:
        call("DELETE", f"vpn/vpnservices/{service['id']}")
    call("DELETE", f"vpn/ikepolicies/{ike['id']}")
    call("DELETE", f"vpn/ipsecpolicies/{esp['id']}")


if __name__ == "__main__":
    main()
