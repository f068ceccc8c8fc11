"""The network inventory and the whole VPN flow driven by the real `openstack` CLI
(python-openstackclient from PyPI, which carries the `openstack vpn ...` commands)
against a running vpnaas server: create, list, show, set, unset and delete of networks,
subnets, routers (gateway, interfaces, extra routes, tags) and every VPN resource.

Any command that exits non-zero or writes anything to stderr fails the flow.

The first command runs the installed `openstack` program; the others call the same entry
point (`openstackclient.shell.main`, what the program runs) in this interpreter, because
starting Python and importing the clients costs about two seconds per command.

usage: openstack_cli_flow.py URL OPENSTACK_PROGRAM"""

import contextlib
import io
import json
import subprocess
import sys

from openstackclient import shell


class CommandFailed(Exception):
    pass


class Cli:
    def __init__(self, url):
        self.common = ["--os-auth-type", "none", "--os-endpoint", url]

    def check(self, args, code, out, err):
        if code != 0 or err.strip():
            raise CommandFailed(
                "openstack %s\nexit %s\nstdout:\n%s\nstderr:\n%s" % (" ".join(args), code, out, err)
            )
        print("ok: openstack", " ".join(args))

    def program(self, binary, *args):
        """Runs the installed program itself."""
        done = subprocess.run([binary, *self.common, *args], capture_output=True, text=True)
        self.check(args, done.returncode, done.stdout, done.stderr)
        return done.stdout

    def __call__(self, *args):
        """Runs one command; returns its JSON output (None when it prints nothing)."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = shell.main([*self.common, *args])
            except SystemExit as e:  # argparse errors exit
                code = e.code
        self.check(args, code, out.getvalue(), err.getvalue())
        text = out.getvalue().strip()
        return json.loads(text) if text else None

    def show(self, *args):
        return self(*args, "-f", "json")


def expect(condition, what):
    if not condition:
        raise AssertionError(what)


def names(rows):
    return sorted(r.get("Name", r.get("name")) for r in rows)


def networks(cli):
    public = cli.show("network", "create", "--external", "cli-public")
    expect(public["router:external"] is True, public)
    lan = cli.show("network", "create", "--tag", "red", "--description", "lan", "cli-lan")
    expect(lan["tags"] == ["red"], lan)
    expect(lan["availability_zone_hints"] == [] and lan["revision_number"] >= 0, lan)
    expect(lan["created_at"].endswith("Z"), lan)
    expect(names(cli.show("network", "list")) == ["cli-lan", "cli-public"], "network list")
    expect(names(cli.show("network", "list", "--external")) == ["cli-public"], "--external")
    expect(names(cli.show("network", "list", "--tags", "red")) == ["cli-lan"], "--tags")
    cli("network", "set", "--name", "cli-lan2", "--mtu", "1400", "--tag", "blue", "cli-lan")
    cli("network", "unset", "--tag", "red", "cli-lan2")
    lan = cli.show("network", "show", "cli-lan2")
    expect(lan["mtu"] == 1400 and lan["tags"] == ["blue"], lan)
    expect(lan["revision_number"] >= 2 and lan["updated_at"] >= lan["created_at"], lan)
    scratch = cli.show("network", "create", "cli-scratch")
    cli("network", "delete", scratch["id"])
    return public, lan


def subnets(cli, public, lan):
    cli.show("subnet", "create", "--network", public["id"], "--subnet-range", "203.0.113.0/24", "cli-public-sub")
    sub = cli.show(
        "subnet", "create", "--network", "cli-lan2", "--subnet-range", "10.5.0.0/24",
        "--dns-nameserver", "8.8.8.8", "--host-route", "destination=10.9.0.0/24,gateway=10.5.0.254",
        "--tag", "x", "cli-lan-sub",
    )
    expect(sub["gateway_ip"] == "10.5.0.1" and sub["dns_nameservers"] == ["8.8.8.8"], sub)
    expect(sub["host_routes"] == [{"destination": "10.9.0.0/24", "nexthop": "10.5.0.254"}], sub)
    expect(sub["tags"] == ["x"] and sub["service_types"] == [], sub)
    expect(names(cli.show("subnet", "list", "--network", "cli-lan2")) == ["cli-lan-sub"], "subnet list")
    cli("subnet", "set", "--name", "cli-lan-sub2", "--dns-nameserver", "1.1.1.1", "--description", "d", "cli-lan-sub")
    cli("subnet", "unset", "--dns-nameserver", "8.8.8.8", "--host-route", "destination=10.9.0.0/24,gateway=10.5.0.254", "cli-lan-sub2")
    sub = cli.show("subnet", "show", "cli-lan-sub2")
    expect(sub["dns_nameservers"] == ["1.1.1.1"] and sub["host_routes"] == [], sub)
    expect(len(cli.show("subnet", "list")) == 2, "subnet list")
    scratch = cli.show("subnet", "create", "--network", "cli-lan2", "--subnet-range", "10.6.0.0/24", "cli-scratch-sub")
    cli("subnet", "delete", scratch["id"])
    return sub


def router(cli, public, sub):
    r = cli.show("router", "create", "--tag", "edge", "cli-r1")
    expect(r["external_gateway_info"] is None and r["routes"] == [], r)
    cli("router", "set", "--external-gateway", public["id"], "cli-r1")
    cli("router", "add", "subnet", "cli-r1", "cli-lan-sub2")
    cli("router", "set", "--route", "destination=10.8.0.0/24,gateway=10.5.0.10", "cli-r1")
    r = cli.show("router", "show", "cli-r1")
    gateway = r["external_gateway_info"]
    expect(gateway["network_id"] == public["id"], r)
    expect(gateway["external_fixed_ips"][0]["ip_address"] == "203.0.113.2", r)
    expect(r["routes"] == [{"destination": "10.8.0.0/24", "nexthop": "10.5.0.10"}], r)
    expect(r["tags"] == ["edge"], r)
    cli("router", "unset", "--route", "destination=10.8.0.0/24,gateway=10.5.0.10", "cli-r1")
    expect(names(cli.show("router", "list", "--long")) == ["cli-r1"], "router list")
    return r


def policies(cli):
    ike = cli.show(
        "vpn", "ike", "policy", "create", "--ike-version", "v2", "--encryption-algorithm", "aes-256",
        "--auth-algorithm", "sha256", "cli-ike",
    )
    expect(ike["IKE Version"] == "v2", ike)
    ipsec = cli.show("vpn", "ipsec", "policy", "create", "--pfs", "group14", "--auth-algorithm", "sha256", "cli-ipsec")
    expect(ipsec["Perfect Forward Secrecy (PFS)"] == "group14", ipsec)
    cli("vpn", "ike", "policy", "set", "--description", "edited", "cli-ike")
    # Not --lifetime: python-openstackclient 10.5 parses it into a list its own check then
    # rejects ("'list' object has no attribute 'items'") before sending anything.
    cli("vpn", "ipsec", "policy", "set", "--encryption-algorithm", "aes-128", "cli-ipsec")
    expect(cli.show("vpn", "ike", "policy", "show", "cli-ike")["Description"] == "edited", "ike set")
    ipsec = cli.show("vpn", "ipsec", "policy", "show", "cli-ipsec")
    expect(ipsec["Encryption Algorithm"] == "aes-128", ipsec)
    expect(names(cli.show("vpn", "ike", "policy", "list")) == ["cli-ike"], "ike list")
    expect(names(cli.show("vpn", "ipsec", "policy", "list")) == ["cli-ipsec"], "ipsec list")


def vpn(cli, sub):
    policies(cli)
    svc = cli.show("vpn", "service", "create", "--router", "cli-r1", "cli-svc")
    expect(svc["Router"] and svc["Subnet"] is None, svc)
    cli("vpn", "service", "set", "--description", "edited", "cli-svc")
    expect(cli.show("vpn", "service", "show", "cli-svc")["Description"] == "edited", "service set")
    expect(names(cli.show("vpn", "service", "list")) == ["cli-svc"], "service list")
    cli.show("vpn", "endpoint", "group", "create", "--type", "subnet", "--value", sub["id"], "cli-local")
    cli.show("vpn", "endpoint", "group", "create", "--type", "cidr", "--value", "10.2.0.0/24", "cli-peer")
    cli("vpn", "endpoint", "group", "set", "--description", "peers", "cli-peer")
    expect(cli.show("vpn", "endpoint", "group", "show", "cli-peer")["Description"] == "peers", "group set")
    expect(names(cli.show("vpn", "endpoint", "group", "list")) == ["cli-local", "cli-peer"], "group list")
    conn = cli.show(
        "vpn", "ipsec", "site", "connection", "create", "--vpnservice", "cli-svc", "--ikepolicy", "cli-ike",
        "--ipsecpolicy", "cli-ipsec", "--peer-address", "203.0.113.50", "--peer-id", "203.0.113.50",
        "--psk", "cli-secret", "--local-endpoint-group", "cli-local", "--peer-endpoint-group", "cli-peer",
        "cli-conn",
    )
    expect(conn["Status"] == "PENDING_CREATE", conn)
    cli("vpn", "ipsec", "site", "connection", "set", "--mtu", "1400", "--description", "edited", "cli-conn")
    conn = cli.show("vpn", "ipsec", "site", "connection", "show", "cli-conn")
    expect(conn["MTU"] == 1400 and conn["Description"] == "edited", conn)
    expect(names(cli.show("vpn", "ipsec", "site", "connection", "list")) == ["cli-conn"], "connection list")
    cli("vpn", "ipsec", "site", "connection", "delete", "cli-conn")
    cli("vpn", "endpoint", "group", "delete", "cli-local", "cli-peer")
    cli("vpn", "service", "delete", "cli-svc")
    cli("vpn", "ike", "policy", "delete", "cli-ike")
    cli("vpn", "ipsec", "policy", "delete", "cli-ipsec")


def teardown(cli):
    cli("router", "remove", "subnet", "cli-r1", "cli-lan-sub2")
    cli("router", "unset", "--external-gateway", "cli-r1")
    expect(cli.show("router", "show", "cli-r1")["external_gateway_info"] is None, "gateway unset")
    cli("router", "delete", "cli-r1")
    cli("subnet", "delete", "cli-lan-sub2")
    cli("network", "delete", "cli-lan2", "cli-public")
    expect(cli.show("network", "list") == [], "everything deleted")


def main(url, program):
    cli = Cli(url)
    cli.program(program, "network", "list")
    public, lan = networks(cli)
    sub = subnets(cli, public, lan)
    router(cli, public, sub)
    vpn(cli, sub)
    teardown(cli)
    print("openstack cli flow passed")


if __name__ == "__main__":
    try:
        main(sys.argv[1], sys.argv[2])
    except (CommandFailed, AssertionError) as e:
        print("FAILED:", e, file=sys.stderr)
        sys.exit(1)
