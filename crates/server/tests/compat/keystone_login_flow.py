"""Password logins against a real Keystone, then vpnaas found through Keystone's catalog
(service type `network`): openstacksdk as a member (creates, lists) and as a reader
(lists, may not create), and the `openstack` CLI (--os-auth-url) as the other project's
member, who sees only its own project's policies. Exits non-zero on any mismatch."""

import json
import subprocess
import sys

import openstack
from openstack import exceptions


def connect(auth_url, project, user, password):
    return openstack.connection.Connection(
        auth_type="password",
        auth={
            "auth_url": auth_url,
            "username": user,
            "password": password,
            "project_name": project,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        region_name="RegionOne",
        identity_api_version="3",
    )


def cli(openstack_bin, auth_url, project, user, password, *args):
    command = [
        openstack_bin, "--os-auth-url", auth_url, "--os-identity-api-version", "3",
        "--os-username", user, "--os-password", password, "--os-project-name", project,
        "--os-user-domain-name", "Default", "--os-project-domain-name", "Default",
        "--os-region-name", "RegionOne", *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


def main(auth_url, openstack_bin, p1, m1, m1pw, r1, r1pw, p2, m2, m2pw):
    member = connect(auth_url, p1, m1, m1pw).network
    made = member.create_vpn_ike_policy(name="sdk-ike")
    assert made.project_id, made
    assert [p.name for p in member.vpn_ike_policies()] == ["sdk-ike"]

    reader = connect(auth_url, p1, r1, r1pw).network
    assert [p.name for p in reader.vpn_ike_policies()] == ["sdk-ike"]
    try:
        reader.create_vpn_ike_policy(name="reader-ike")
        raise AssertionError("a reader created a policy")
    except exceptions.ForbiddenException:
        pass

    code, out, err = cli(openstack_bin, auth_url, p2, m2, m2pw,
                         "vpn", "ike", "policy", "create", "cli-ike", "-f", "json")
    assert code == 0, (out, err)
    created = json.loads(out)
    assert created["Name"] == "cli-ike", created
    code, out, err = cli(openstack_bin, auth_url, p2, m2, m2pw,
                         "vpn", "ike", "policy", "list", "-f", "json")
    assert code == 0, (out, err)
    assert [p["Name"] for p in json.loads(out)] == ["cli-ike"], out
    code, out, err = cli(openstack_bin, auth_url, p1, r1, "wrong-password",
                         "vpn", "ike", "policy", "list", "-f", "json")
    assert code != 0, "a wrong password logged in"
    print("keystone login flow passed")


if __name__ == "__main__":
    main(*sys.argv[1:])
