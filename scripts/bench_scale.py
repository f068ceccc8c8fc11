#!/usr/bin/env python3
"""Compares `vpnaas bench api` on an empty database with the same benchmark on one holding
background objects (issue 12, item 7): starts two servers, fills one with
`--background-objects N` spread over 100 projects (its first run), then runs the benchmark
against both in alternation, several rounds, and prints for each operation the median of
the rounds' p50 and p99 on each server and the ratio of the p50s, and the least p50 of
the rounds (the figure least disturbed by whatever else runs on the machine). Alternating
short runs lets both servers meet the same load from the rest of the machine. The servers
and their databases are removed at the end. Standard library only.

Usage: scripts/bench_scale.py [--vpnaas PATH] [--background N] [--rounds R]
       [--postgres postgres://user@host:port] [-- extra `bench api` flags]"""

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

QUICK = ["--shows", "5000", "--lists", "100", "--guard-requests", "500", "--updates", "2000"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(server, sql):
    subprocess.run(["psql", f"{server}/postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True)


class Server:
    """A `vpnaas server` on a fresh SQLite directory or PostgreSQL database."""

    def __init__(self, vpnaas, name, postgres):
        self.dir = tempfile.mkdtemp(prefix=f"bench-scale-{name}-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = None
        args = [vpnaas, "server", "--data-dir", self.dir, "--listen", f"127.0.0.1:{self.port}"]
        if postgres:
            self.database = f"vpnaas_bench_{name}_{os.getpid()}"
            psql(postgres, f"CREATE DATABASE {self.database}")
            args += ["--database-url", f"{postgres}/{self.database}"]
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{self.url}/v2.0/extensions").read()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server {name} did not start; see {self.dir}/server.log")

    def stop(self, postgres):
        self.process.terminate()
        self.process.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.database:
            psql(postgres, f"DROP DATABASE {self.database}")


def bench(vpnaas, url, flags):
    out = subprocess.run([vpnaas, "--url", url, "bench", "api", *flags], check=True, capture_output=True, text=True).stdout
    print(out, flush=True)
    rows = {}
    for line in out.splitlines():
        parts = line.rsplit(None, 4)
        if len(parts) == 5 and parts[1].isdigit():
            rows[parts[0].strip()] = (float(parts[2]), float(parts[3]), float(parts[4]))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vpnaas", default="./target/release/vpnaas")
    parser.add_argument("--background", type=int, default=100000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--postgres", help="PostgreSQL server URL; SQLite when absent")
    parser.add_argument("flags", nargs="*", help="more `bench api` flags")
    args = parser.parse_args()
    flags = QUICK + args.flags
    servers = {}
    try:
        for name in ("empty", "full"):
            servers[name] = Server(args.vpnaas, name, args.postgres)
        print(f"== seeding: {args.background} objects", flush=True)
        bench(args.vpnaas, servers["full"].url, flags + ["--background-objects", str(args.background)])
        bench(args.vpnaas, servers["empty"].url, flags)
        runs = {"empty": [], "full": []}
        for round in range(args.rounds):
            order = ("empty", "full") if round % 2 == 0 else ("full", "empty")
            for name in order:
                print(f"== round {round + 1}: {name}", flush=True)
                runs[name].append(bench(args.vpnaas, servers[name].url, flags))
        median = lambda name, op, i: statistics.median(run[op][i] for run in runs[name])
        least = lambda name, op: min(run[op][0] for run in runs[name])
        backend = "PostgreSQL" if args.postgres else "SQLite"
        print(f"\n{backend}, empty vs {args.background} background objects, {args.rounds} rounds: medians of"
              " the rounds' p50, p99 (ms) and req/s; the least p50 (ms) of the rounds")
        print(f"{'op':<26}{'empty p50':>10}{'full p50':>10}{'ratio':>7}{'empty p99':>11}{'full p99':>10}"
              f"{'empty/s':>9}{'full/s':>9}{'least p50 empty':>17}{'full':>7}{'ratio':>7}")
        for op in runs["empty"][0]:
            e50, f50, el, fl = median("empty", op, 0), median("full", op, 0), least("empty", op), least("full", op)
            print(f"{op:<26}{e50:>10.3f}{f50:>10.3f}{f50 / e50:>7.2f}{median('empty', op, 1):>11.3f}"
                  f"{median('full', op, 1):>10.3f}{median('empty', op, 2):>9.0f}{median('full', op, 2):>9.0f}"
                  f"{el:>17.3f}{fl:>7.3f}{fl / el:>7.2f}")
    finally:
        for server in servers.values():
            server.stop(args.postgres)


if __name__ == "__main__":
    sys.exit(main())
