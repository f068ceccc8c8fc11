//! Cross-resource guards of reference §1.9: what is in use cannot be deleted or moved,
//! and the refusal changes nothing.

mod common;

use common::*;
use serde_json::json;
use vpnaas_model::Kind;

#[tokio::test]
async fn policies_in_use_may_be_renamed_but_not_changed_or_deleted() {
    let h = start().await;
    let c = &h.client;
    let Connected {
        pols,
        service: svc,
        conn,
        ..
    } = connected_site(c).await;
    for (kind, policy, in_use) in [
        (Kind::IkePolicy, &pols.0, "IKEPolicyInUse"),
        (Kind::IpsecPolicy, &pols.1, "IPsecPolicyInUse"),
    ] {
        assert_eq!(
            fault(c.delete(kind, policy).await),
            (409, in_use.to_string())
        );
        assert_eq!(
            fault(c.update(kind, policy, json!({"pfs": "group14"})).await),
            (409, in_use.to_string())
        );
        assert_eq!(
            fault(
                c.update(kind, policy, json!({"name": "n", "pfs": "group14"}))
                    .await
            ),
            (409, in_use.to_string())
        );
        let renamed = c
            .update(
                kind,
                policy,
                json!({"name": "renamed", "description": "in use"}),
            )
            .await
            .expect("rename in use");
        assert_eq!(renamed["pfs"], "group5");
        assert_eq!(renamed["name"], "renamed");
    }
    assert_eq!(
        fault(c.delete(Kind::VpnService, &id(&svc)).await),
        (409, "VPNServiceInUse".into())
    );
    c.delete(Kind::SiteConnection, &id(&conn))
        .await
        .expect("delete conn");
    c.update(Kind::IkePolicy, &pols.0, json!({"pfs": "group14"}))
        .await
        .expect("free again");
    c.delete(Kind::IkePolicy, &pols.0).await.expect("delete");
    c.delete(Kind::VpnService, &id(&svc))
        .await
        .expect("delete svc");
}

#[tokio::test]
async fn routers_and_subnets_used_by_vpn_are_protected() {
    let h = start().await;
    let c = &h.client;
    let external = external_network(c).await;
    let s = site(c, &external, 1).await;
    let pols = policies(c).await;
    let net = c.create(Kind::Network, json!({})).await.expect("net");
    let second = c
        .create(
            Kind::Subnet,
            json!({"network_id": id(&net), "cidr": "10.50.0.0/24"}),
        )
        .await
        .expect("subnet");
    c.add_router_interface(&s.router, &id(&second))
        .await
        .expect("second interface");

    let legacy = legacy_service(c, &s).await;
    assert_eq!(
        fault(c.remove_router_interface(&s.router, &s.subnet).await),
        (409, "SubnetInUseByVPNService".into())
    );
    assert_eq!(
        fault(c.delete(Kind::Router, &s.router).await),
        (409, "RouterInUse".into())
    );
    assert_eq!(
        fault(
            c.update(
                Kind::Router,
                &s.router,
                json!({"external_gateway_info": null})
            )
            .await
        ),
        (409, "RouterInUse".into())
    );
    assert_eq!(
        fault(c.update(Kind::Router, &s.router, json!({"ha": true})).await),
        (409, "RouterInUse".into())
    );
    c.update(Kind::Router, &s.router, json!({"name": "still-fine"}))
        .await
        .expect("rename router with VPN");

    let groups_svc = c
        .create(Kind::VpnService, json!({"router_id": s.router}))
        .await
        .expect("svc2");
    let local = c
        .create(
            Kind::EndpointGroup,
            json!({"type": "subnet", "endpoints": [id(&second)]}),
        )
        .await
        .expect("local");
    let peer = c
        .create(
            Kind::EndpointGroup,
            json!({"type": "cidr", "endpoints": ["10.9.0.0/24"]}),
        )
        .await
        .expect("peer");
    let conn = c
        .create(
            Kind::SiteConnection,
            json!({"vpnservice_id": id(&groups_svc), "ikepolicy_id": pols.0, "ipsecpolicy_id": pols.1,
                   "peer_address": "203.0.113.9", "peer_id": "203.0.113.9", "psk": "k",
                   "local_ep_group_id": id(&local), "peer_ep_group_id": id(&peer)}),
        )
        .await
        .expect("conn");
    assert_eq!(
        fault(c.remove_router_interface(&s.router, &id(&second)).await),
        (409, "SubnetInUseByIPsecSiteConnection".into())
    );
    assert_eq!(
        fault(c.delete(Kind::EndpointGroup, &id(&local)).await),
        (400, "EndpointGroupInUse".into())
    );
    assert_eq!(
        fault(c.delete(Kind::Subnet, &id(&second)).await),
        (409, "SubnetInUseByEndpointGroup".into())
    );

    c.delete(Kind::SiteConnection, &id(&conn))
        .await
        .expect("conn");
    c.delete(Kind::EndpointGroup, &id(&local))
        .await
        .expect("group");
    assert_eq!(
        fault(c.delete(Kind::Subnet, &id(&second)).await),
        (409, "SubnetInUse".into())
    );
    c.remove_router_interface(&s.router, &id(&second))
        .await
        .expect("now free");
    c.delete(Kind::Subnet, &id(&second)).await.expect("subnet");
    c.delete(Kind::VpnService, &id(&groups_svc))
        .await
        .expect("svc2");
    c.delete(Kind::VpnService, &id(&legacy)).await.expect("svc");
    assert_eq!(
        fault(c.delete(Kind::Router, &s.router).await),
        (409, "RouterInUse".into()),
        "still has ports"
    );
    c.remove_router_interface(&s.router, &s.subnet)
        .await
        .expect("interface");
    c.update(
        Kind::Router,
        &s.router,
        json!({"external_gateway_info": {}}),
    )
    .await
    .expect("gateway off");
    c.delete(Kind::Router, &s.router).await.expect("router");
    c.delete(Kind::Network, &external.0)
        .await
        .expect("external network");
}

#[tokio::test]
async fn router_interface_and_gateway_rules() {
    let h = start().await;
    let c = &h.client;
    let external = external_network(c).await;
    let s = site(c, &external, 1).await;
    assert_eq!(
        fault(c.add_router_interface(&s.router, &s.subnet).await),
        (400, "BadRequest".into())
    );
    let net = c.create(Kind::Network, json!({})).await.expect("net");
    let overlap = c
        .create(
            Kind::Subnet,
            json!({"network_id": id(&net), "cidr": "10.1.0.0/16"}),
        )
        .await
        .expect("subnet");
    assert_eq!(
        fault(c.add_router_interface(&s.router, &id(&overlap)).await),
        (400, "BadRequest".into())
    );
    let no_gw = c
        .create(
            Kind::Subnet,
            json!({"network_id": id(&net), "cidr": "10.60.0.0/24", "gateway_ip": null}),
        )
        .await
        .expect("subnet");
    assert_eq!(
        fault(c.add_router_interface(&s.router, &id(&no_gw)).await),
        (400, "BadRequest".into())
    );
    let other_router = c.create(Kind::Router, json!({})).await.expect("router");
    assert_eq!(
        fault(c.add_router_interface(&id(&other_router), &s.subnet).await),
        (409, "IpAddressAlreadyAllocated".into())
    );
    let internal = c.create(Kind::Network, json!({})).await.expect("internal");
    assert_eq!(
        fault(
            c.update(
                Kind::Router,
                &id(&other_router),
                json!({"external_gateway_info": {"network_id": id(&internal)}})
            )
            .await
        ),
        (400, "BadRequest".into())
    );
    assert_eq!(
        fault(
            c.create(
                Kind::Subnet,
                json!({"network_id": external.0, "cidr": "203.0.113.128/25"})
            )
            .await
        ),
        (400, "InvalidInput".into())
    );
    assert_eq!(
        fault(c.delete(Kind::Network, &external.0).await),
        (409, "NetworkInUse".into())
    );
    assert_eq!(
        fault(c.delete(Kind::Subnet, &external.1).await),
        (409, "SubnetInUse".into())
    );
}
