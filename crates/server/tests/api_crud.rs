//! Create, show, list, update and delete of every resource through real HTTP, with the
//! defaults Neutron documents.

mod common;

use common::*;
use serde_json::json;
use vpnaas_model::Kind;

#[tokio::test]
async fn ike_policy_defaults_and_update() {
    let h = start().await;
    let c = &h.client;
    let p = c
        .create(Kind::IkePolicy, json!({"name": "ike1"}))
        .await
        .expect("create");
    assert_eq!(p["auth_algorithm"], "sha256");
    assert_eq!(p["encryption_algorithm"], "aes-128");
    assert_eq!(p["phase1_negotiation_mode"], "main");
    assert_eq!(p["ike_version"], "v1");
    assert_eq!(p["pfs"], "group5");
    assert_eq!(p["lifetime"], json!({"units": "seconds", "value": 3600}));
    assert_eq!(p["tenant_id"], p["project_id"]);
    assert_eq!(p["description"], "");
    let updated = c
        .update(
            Kind::IkePolicy,
            &id(&p),
            json!({"name": "ike2", "encryption_algorithm": "aes-256", "ike_version": "v2", "pfs": "group14", "lifetime": {"value": 2000}}),
        )
        .await
        .expect("update");
    assert_eq!(updated["name"], "ike2");
    assert_eq!(
        updated["lifetime"],
        json!({"units": "seconds", "value": 2000})
    );
    let shown = c.show(Kind::IkePolicy, &id(&p)).await.expect("show");
    assert_eq!(shown, updated);
    assert_eq!(c.list(Kind::IkePolicy, &[]).await.expect("list").len(), 1);
    c.delete(Kind::IkePolicy, &id(&p)).await.expect("delete");
    assert_eq!(
        fault(c.show(Kind::IkePolicy, &id(&p)).await),
        (404, "IKEPolicyNotFound".into())
    );
    assert_eq!(
        fault(c.delete(Kind::IkePolicy, &id(&p)).await),
        (404, "IKEPolicyNotFound".into())
    );
}

#[tokio::test]
async fn ipsec_policy_defaults_and_update() {
    let h = start().await;
    let c = &h.client;
    let p = c
        .create(Kind::IpsecPolicy, json!({}))
        .await
        .expect("create");
    assert_eq!(p["transform_protocol"], "esp");
    assert_eq!(p["encapsulation_mode"], "tunnel");
    assert_eq!(p["auth_algorithm"], "sha256");
    assert_eq!(p["encryption_algorithm"], "aes-128");
    assert_eq!(p["pfs"], "group5");
    assert_eq!(p["lifetime"]["value"], 3600);
    let u = c
        .update(
            Kind::IpsecPolicy,
            &id(&p),
            json!({"pfs": "group2", "lifetime": {"units": "seconds", "value": "2000"}}),
        )
        .await
        .expect("update");
    assert_eq!(u["pfs"], "group2");
    assert_eq!(u["lifetime"]["value"], 2000);
    c.delete(Kind::IpsecPolicy, &id(&p)).await.expect("delete");
    assert_eq!(
        fault(c.delete(Kind::IpsecPolicy, &id(&p)).await),
        (404, "IPsecPolicyNotFound".into())
    );
}

#[tokio::test]
async fn network_subnet_router_inventory() {
    let h = start().await;
    let c = &h.client;
    let external = external_network(c).await;
    let ext_subnet = c.show(Kind::Subnet, &external.1).await.expect("subnet");
    assert_eq!(ext_subnet["gateway_ip"], "203.0.113.1");
    assert_eq!(
        ext_subnet["allocation_pools"],
        json!([{"start": "203.0.113.2", "end": "203.0.113.254"}])
    );
    let net = c.show(Kind::Network, &external.0).await.expect("net");
    assert_eq!(net["subnets"], json!([external.1]));
    assert_eq!(net["router:external"], true);
    let s1 = site(c, &external, 1).await;
    let s2 = site(c, &external, 2).await;
    assert_eq!(s1.gateway_ip, "203.0.113.2");
    assert_eq!(s2.gateway_ip, "203.0.113.3");
    let router = c.show(Kind::Router, &s1.router).await.expect("router");
    assert_eq!(router["interfaces"][0]["ip_address"], "10.1.0.1");
    assert_eq!(router["external_gateway_info"]["enable_snat"], true);
    let fixed = c
        .create(
            Kind::Router,
            json!({"external_gateway_info": {"network_id": external.0, "external_fixed_ips": [{"ip_address": "203.0.113.50"}]}}),
        )
        .await
        .expect("fixed gateway");
    assert_eq!(
        fixed["external_gateway_info"]["external_fixed_ips"][0]["ip_address"],
        "203.0.113.50"
    );
    let clash = c
        .create(
            Kind::Router,
            json!({"external_gateway_info": {"network_id": external.0, "external_fixed_ips": [{"ip_address": "203.0.113.50"}]}}),
        )
        .await;
    assert_eq!(fault(clash), (409, "IpAddressAlreadyAllocated".into()));
    let renamed = c
        .update(Kind::Router, &s1.router, json!({"name": "edge"}))
        .await
        .expect("rename");
    assert_eq!(
        renamed["external_gateway_info"]["external_fixed_ips"][0]["ip_address"],
        "203.0.113.2"
    );
    let removed = c
        .remove_router_interface(&s2.router, &s2.subnet)
        .await
        .expect("remove");
    assert_eq!(removed["subnet_id"], s2.subnet);
    assert_eq!(
        fault(c.remove_router_interface(&s2.router, &s2.subnet).await).1,
        "RouterInterfaceNotFoundForSubnet"
    );
    c.update(
        Kind::Router,
        &s2.router,
        json!({"external_gateway_info": {}}),
    )
    .await
    .expect("clear gateway");
    c.delete(Kind::Router, &s2.router)
        .await
        .expect("delete router");
    c.delete(Kind::Network, &s2.network)
        .await
        .expect("delete network and its subnet");
    assert_eq!(
        fault(c.show(Kind::Subnet, &s2.subnet).await),
        (404, "SubnetNotFound".into())
    );
}

#[tokio::test]
async fn vpn_service_endpoint_groups_and_connections() {
    let h = start().await;
    let c = &h.client;
    let external = external_network(c).await;
    let s1 = site(c, &external, 1).await;
    let pols = policies(c).await;
    let legacy = c
        .create(
            Kind::VpnService,
            json!({"name": "svc", "router_id": s1.router, "subnet_id": s1.subnet}),
        )
        .await
        .expect("service");
    assert_eq!(legacy["status"], "PENDING_CREATE");
    assert_eq!(legacy["external_v4_ip"], s1.gateway_ip);
    assert_eq!(legacy["external_v6_ip"], serde_json::Value::Null);
    assert_eq!(legacy["admin_state_up"], true);
    let conn = c
        .create(
            Kind::SiteConnection,
            legacy_connection(&id(&legacy), &pols, "10.2.0.0/24"),
        )
        .await
        .expect("conn");
    assert_eq!(conn["status"], "PENDING_CREATE");
    assert_eq!(conn["mtu"], 1500);
    assert_eq!(conn["initiator"], "bi-directional");
    assert_eq!(
        conn["dpd"],
        json!({"action": "hold", "interval": 30, "timeout": 120})
    );
    assert_eq!(conn["auth_mode"], "psk");
    assert_eq!(conn["route_mode"], "static");
    assert_eq!(conn["local_id"], "");
    assert_eq!(conn["psk"], "secret-psk");
    let updated = c
        .update(Kind::SiteConnection, &id(&conn), json!({"peer_cidrs": ["10.2.0.0/24", "10.3.0.0/24"], "dpd": {"interval": 10, "timeout": 40}, "psk": "new"}))
        .await
        .expect("update while pending (level-triggered agents make this safe)");
    assert_eq!(
        updated["dpd"],
        json!({"action": "hold", "interval": 10, "timeout": 40})
    );
    assert_eq!(updated["peer_cidrs"], json!(["10.2.0.0/24", "10.3.0.0/24"]));
    let svc = c
        .update(
            Kind::VpnService,
            &id(&legacy),
            json!({"admin_state_up": false, "name": "svc2"}),
        )
        .await
        .expect("svc update");
    assert_eq!(svc["admin_state_up"], false);

    let groups_service = c
        .create(Kind::VpnService, json!({"router_id": s1.router}))
        .await
        .expect("service B");
    let local = c
        .create(
            Kind::EndpointGroup,
            json!({"type": "subnet", "endpoints": s1.subnet}),
        )
        .await
        .expect("local");
    assert_eq!(local["endpoints"], json!([s1.subnet]));
    let peer = c
        .create(
            Kind::EndpointGroup,
            json!({"type": "cidr", "endpoints": ["10.101.0.0/24", "10.102.0.0/24"]}),
        )
        .await
        .expect("peer");
    let eg_conn = c
        .create(
            Kind::SiteConnection,
            json!({"vpnservice_id": id(&groups_service), "ikepolicy_id": pols.0, "ipsecpolicy_id": pols.1,
                   "peer_address": "203.0.113.201", "peer_id": "@peer.example.com", "psk": "k",
                   "local_ep_group_id": id(&local), "peer_ep_group_id": id(&peer), "local_id": "@me.example.com"}),
        )
        .await
        .expect("endpoint group connection");
    assert_eq!(eg_conn["peer_cidrs"], json!([]));
    let renamed = c
        .update(Kind::EndpointGroup, &id(&peer), json!({"name": "peers"}))
        .await
        .expect("rename group");
    assert_eq!(
        renamed["endpoints"],
        json!(["10.101.0.0/24", "10.102.0.0/24"])
    );
    c.delete(Kind::SiteConnection, &id(&eg_conn))
        .await
        .expect("delete conn");
    c.delete(Kind::EndpointGroup, &id(&peer))
        .await
        .expect("delete group");
    c.delete(Kind::SiteConnection, &id(&conn))
        .await
        .expect("delete conn");
    c.delete(Kind::VpnService, &id(&legacy))
        .await
        .expect("delete service");
    assert_eq!(
        fault(c.show(Kind::SiteConnection, &id(&conn)).await),
        (404, "IPsecSiteConnectionNotFound".into())
    );
    assert_eq!(
        fault(c.show(Kind::VpnService, &id(&legacy)).await),
        (404, "VPNServiceNotFound".into())
    );
    assert_eq!(
        fault(c.show(Kind::EndpointGroup, &id(&peer)).await),
        (404, "VPNEndpointGroupNotFound".into())
    );
}

/// A host name is resolved once, at request time, and its address is held to the rules of
/// a literal one: `localhost` resolves (the message shows to what) to a loopback address,
/// which cannot be a peer gateway.
#[tokio::test]
async fn peer_host_names_are_resolved_and_their_addresses_checked() {
    let h = start().await;
    let c = &h.client;
    let external = external_network(c).await;
    let s1 = site(c, &external, 1).await;
    let pols = policies(c).await;
    let svc = legacy_service(c, &s1).await;
    let mut attrs = legacy_connection(&id(&svc), &pols, "10.2.0.0/24");
    attrs["peer_address"] = json!("localhost");
    match c.create(Kind::SiteConnection, attrs.clone()).await {
        Err(vpnaas_client::Error::Api {
            status: 400,
            kind,
            message,
        }) => {
            assert_eq!(kind, "InvalidInput");
            assert!(
                message.contains("peer_address") && message.contains("loopback"),
                "{message}"
            );
        }
        other => panic!("a peer resolving to loopback was not refused: {other:?}"),
    }
    attrs["peer_address"] = json!("no-such-host.invalid");
    assert_eq!(
        fault(c.create(Kind::SiteConnection, attrs).await),
        (400, "VPNPeerAddressNotResolved".into())
    );
}

#[tokio::test]
async fn discovery_documents_and_openapi() {
    let h = start().await;
    let c = &h.client;
    let versions = c.get("/").await.expect("versions");
    assert_eq!(versions["versions"][0]["id"], "v2.0");
    let resources = c.get("/v2.0").await.expect("resources");
    assert!(
        resources["resources"]
            .as_array()
            .expect("list")
            .iter()
            .any(|r| r["collection"] == "ipsec_site_connections")
    );
    let extensions = c.get("/v2.0/extensions").await.expect("extensions");
    let aliases: Vec<&str> = extensions["extensions"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["alias"].as_str())
        .collect();
    // Every extension served is listed (clients probe before they use a feature).
    let served = [
        "vpnaas",
        "vpn-endpoint-groups",
        "vpn-flavors",
        "vpn-agent-scheduler",
        "flavors",
        "service-type",
        "agent",
        "router",
        "l3-ha",
        "extraroute",
        "external-net",
        "standard-attr-tag",
        "standard-attr-timestamp",
        "standard-attr-revisions",
    ];
    for alias in served {
        assert!(aliases.contains(&alias), "{alias} missing");
        assert_eq!(
            c.get(&format!("/v2.0/extensions/{alias}"))
                .await
                .expect("one")["extension"]["alias"],
            alias
        );
    }
    assert_eq!(fault(c.get("/v2.0/extensions/nope").await).0, 404);
    let doc = c.get("/openapi.json").await.expect("openapi");
    let agents = &doc["paths"]["/v2.0/agents"];
    assert!(agents["get"].is_object() && agents["post"].is_null());
    for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::Agent) {
        assert!(
            doc["paths"][format!("/v2.0/{}", kind.path())]["post"].is_object(),
            "{kind} POST undocumented"
        );
        assert!(
            doc["paths"][format!("/v2.0/{}/{{id}}", kind.path())]["put"].is_object(),
            "{kind} PUT undocumented"
        );
    }
    assert!(doc["paths"]["/v2.0/routers/{id}/add_router_interface"]["put"].is_object());
    // `psk` is required in `psk` mode only (the default), which the use case checks: a
    // `cert` connection has none.
    assert_eq!(
        doc["components"]["schemas"]["IpsecSiteConnectionCreate"]["required"],
        json!([
            "vpnservice_id",
            "ikepolicy_id",
            "ipsecpolicy_id",
            "peer_address",
            "peer_id"
        ])
    );
    let json_suffix = c
        .get("/v2.0/vpn/ikepolicies.json")
        .await
        .expect(".json suffix tolerated");
    assert!(json_suffix["ikepolicies"].is_array());
}
