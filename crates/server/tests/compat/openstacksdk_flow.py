"""The main VPNaaS flow driven by openstacksdk (unmodified, from PyPI) against a running
vpnaas server: network, subnets, router, policies, services, endpoint groups,
connections, find/list/update, then delete everything. Exits non-zero on any mismatch."""

import sys

import openstack


def main(url):
    conn = openstack.connection.Connection(
        auth_type="none", auth={"endpoint": url}, network_endpoint_override=url + "/"
    )
    net = conn.network

    public = net.create_network(name="sdk-public", is_router_external=True)
    net.create_subnet(network_id=public.id, cidr="203.0.113.0/24", ip_version=4)
    lan = net.create_network(name="sdk-lan")
    lan_subnet = net.create_subnet(network_id=lan.id, cidr="10.1.0.0/24", ip_version=4)
    router = net.create_router(name="sdk-r1", external_gateway_info={"network_id": public.id})
    net.add_interface_to_router(router, subnet_id=lan_subnet.id)
    assert net.find_router("sdk-r1").id == router.id

    ike = net.create_vpn_ike_policy(name="sdk-ike", ike_version="v2", encryption_algorithm="aes-256")
    assert ike.auth_algorithm == "sha256", ike.auth_algorithm
    assert ike.lifetime == {"units": "seconds", "value": 3600}, ike.lifetime
    ipsec = net.create_vpn_ipsec_policy(name="sdk-ipsec", pfs="group14")
    assert net.find_vpn_ike_policy("sdk-ike").id == ike.id
    assert net.get_vpn_ipsec_policy(ipsec.id).pfs == "group14"

    legacy = net.create_vpn_service(name="sdk-legacy", router_id=router.id, subnet_id=lan_subnet.id)
    assert legacy.status == "PENDING_CREATE", legacy.status
    assert legacy.external_v4_ip == "203.0.113.2", legacy.external_v4_ip
    service = net.create_vpn_service(name="sdk-svc", router_id=router.id)
    local = net.create_vpn_endpoint_group(name="sdk-local", type="subnet", endpoints=[lan_subnet.id])
    peer = net.create_vpn_endpoint_group(name="sdk-peer", type="cidr", endpoints=["10.2.0.0/24"])

    site = net.create_vpn_ipsec_site_connection(
        name="sdk-conn",
        vpnservice_id=service.id,
        ikepolicy_id=ike.id,
        ipsecpolicy_id=ipsec.id,
        peer_address="203.0.113.50",
        peer_id="203.0.113.50",
        psk="sdk-secret",
        local_ep_group_id=local.id,
        peer_ep_group_id=peer.id,
    )
    assert site.status == "PENDING_CREATE", site.status
    assert site.dpd == {"action": "hold", "interval": 30, "timeout": 120}, site.dpd
    legacy_site = net.create_vpn_ipsec_site_connection(
        name="sdk-legacy-conn",
        vpnservice_id=legacy.id,
        ikepolicy_id=ike.id,
        ipsecpolicy_id=ipsec.id,
        peer_address="203.0.113.51",
        peer_id="203.0.113.51",
        psk="sdk-secret",
        peer_cidrs=["10.3.0.0/24"],
    )

    names = sorted(c.name for c in net.vpn_ipsec_site_connections())
    assert names == ["sdk-conn", "sdk-legacy-conn"], names
    assert [s.name for s in net.vpn_services(name="sdk-svc")] == ["sdk-svc"]
    assert net.find_vpn_ipsec_site_connection("sdk-conn").id == site.id
    updated = net.update_vpn_ipsec_site_connection(site, mtu=1400, name="sdk-conn2")
    assert updated.mtu == 1400 and updated.name == "sdk-conn2"
    assert net.update_vpn_ike_policy(ike, description="in use, renamed").description == "in use, renamed"
    assert len(list(net.vpn_endpoint_groups())) == 2

    try:
        net.delete_vpn_ike_policy(ike)
    except openstack.exceptions.ConflictException:
        pass
    else:
        raise AssertionError("deleting a policy in use must be refused")

    for i in range(7):
        net.create_vpn_ike_policy(name="sdk-page-%d" % i)
    paged = list(net.vpn_ike_policies(limit=3))
    assert len(paged) == 8, len(paged)

    net.delete_vpn_ipsec_site_connection(site)
    net.delete_vpn_ipsec_site_connection(legacy_site)
    net.delete_vpn_endpoint_group(local)
    net.delete_vpn_endpoint_group(peer)
    net.delete_vpn_service(service)
    net.delete_vpn_service(legacy)
    for policy in list(net.vpn_ike_policies()):
        net.delete_vpn_ike_policy(policy)
    net.delete_vpn_ipsec_policy(ipsec)
    net.remove_interface_from_router(router, subnet_id=lan_subnet.id)
    net.update_router(router, external_gateway_info={})
    net.delete_router(router)
    net.delete_network(lan)
    net.delete_network(public)
    assert list(net.vpn_ipsec_site_connections()) == []
    assert list(net.vpn_ike_policies()) == []

    providers = sorted((p.name, p.service_type, p.is_default) for p in net.service_providers())
    assert providers == [("libreswan", "VPN", False), ("strongswan", "VPN", True)], providers
    profile = net.create_service_profile(driver="libreswan", description="pluto")
    flavor = net.create_flavor(name="sdk-pluto", service_type="VPN")
    net.associate_flavor_with_service_profile(flavor, profile)
    assert net.get_flavor(flavor.id).service_profile_ids == [profile.id]
    assert [f.name for f in net.flavors()] == ["sdk-pluto"]
    net.disassociate_flavor_from_service_profile(flavor, profile)
    assert net.get_flavor(flavor.id).service_profile_ids == []
    net.delete_flavor(flavor)
    net.delete_service_profile(profile)
    print("openstacksdk flow passed")


if __name__ == "__main__":
    main(sys.argv[1])
