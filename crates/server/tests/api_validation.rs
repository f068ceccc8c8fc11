//! Every validation rule of reference §1.1–§1.8, asserted by `NeutronError.type` (not only
//! the HTTP code), and proof that a refused request changes nothing.

mod common;

use common::*;
use serde_json::{Value, json};
use vpnaas_model::Kind;

async fn refused(c: &vpnaas_client::Client, kind: Kind, attrs: Value) -> (u16, String) {
    fault(c.create(kind, attrs).await)
}

#[tokio::test]
async fn generic_request_rules() {
    let h = start().await;
    let c = &h.client;
    assert_eq!(
        refused(c, Kind::IkePolicy, json!({"bogus": 1})).await,
        (400, "HTTPBadRequest".into())
    );
    assert_eq!(
        refused(c, Kind::IkePolicy, json!({"id": "x"})).await,
        (400, "HTTPBadRequest".into())
    );
    assert_eq!(
        refused(c, Kind::VpnService, json!({})).await,
        (400, "HTTPBadRequest".into())
    );
    let (status, body) = c
        .raw(
            reqwest::Method::POST,
            "/v2.0/vpn/ikepolicies",
            Some(&json!({"wrong": {}})),
        )
        .await
        .expect("raw");
    assert_eq!(
        (status.as_u16(), body["NeutronError"]["type"].as_str()),
        (400, Some("HTTPBadRequest"))
    );
    assert!(
        body["NeutronError"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ikepolicy")
    );
    let p = c.create(Kind::IkePolicy, json!({})).await.expect("create");
    assert_eq!(
        fault(
            c.update(Kind::IkePolicy, &id(&p), json!({"tenant_id": "x"}))
                .await
        ),
        (400, "HTTPBadRequest".into())
    );
    assert_eq!(
        refused(
            c,
            Kind::IkePolicy,
            json!({"tenant_id": "a", "project_id": "b"})
        )
        .await,
        (400, "HTTPBadRequest".into())
    );
    // A NUL is a database error on PostgreSQL: refused before it gets there.
    for owner in ["tenant_id", "project_id"] {
        assert_eq!(
            refused(c, Kind::IkePolicy, json!({ owner: "p\u{0}2" })).await,
            (400, "HTTPBadRequest".into()),
            "{owner}"
        );
    }
    let member = c.as_project("p1", "member");
    assert_eq!(
        refused(&member, Kind::IkePolicy, json!({"project_id": "p2"})).await,
        (400, "HTTPBadRequest".into())
    );
    let admin_for_other = c
        .create(Kind::IkePolicy, json!({"project_id": "p2"}))
        .await
        .expect("admin may create for others");
    assert_eq!(admin_for_other["tenant_id"], "p2");
    assert_eq!(
        c.list(Kind::IkePolicy, &[]).await.expect("list").len(),
        2,
        "refusals created nothing"
    );
}

#[tokio::test]
async fn policy_attribute_values() {
    let h = start().await;
    let c = &h.client;
    for (attr, bad) in [
        ("auth_algorithm", json!("md5")),
        ("encryption_algorithm", json!("des")),
        ("phase1_negotiation_mode", json!("quick")),
        ("ike_version", json!("v3")),
        ("pfs", json!("group1")),
        ("pfs", json!("group9")),
        ("lifetime", json!({"units": "Megabytes"})),
        ("lifetime", json!({"units": "kilobytes"})),
        ("lifetime", json!({"value": 59})),
        ("lifetime", json!({"value": -1})),
        ("lifetime", json!({"value": "x"})),
        ("lifetime", json!({"seconds": 100})),
        ("lifetime", json!(5)),
    ] {
        assert_eq!(
            refused(c, Kind::IkePolicy, json!({ attr: bad.clone() })).await,
            (400, "HTTPBadRequest".into()),
            "{attr}={bad}"
        );
    }
    for (attr, bad) in [
        ("transform_protocol", "gre"),
        ("encapsulation_mode", "tunnel2"),
    ] {
        assert_eq!(
            refused(c, Kind::IpsecPolicy, json!({ attr: bad })).await,
            (400, "HTTPBadRequest".into())
        );
    }
    let ctr = c
        .create(
            Kind::IkePolicy,
            json!({"encryption_algorithm": "aes-256-ctr", "pfs": "group31"}),
        )
        .await
        .expect("ctr");
    assert_eq!(ctr["encryption_algorithm"], "aes-256-ctr");
    assert!(
        c.list(Kind::IpsecPolicy, &[])
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn weak_algorithms_are_refused_unless_allowed() {
    let h = start().await;
    for kind in [Kind::IkePolicy, Kind::IpsecPolicy] {
        for attrs in [
            json!({"auth_algorithm": "sha1"}),
            json!({"encryption_algorithm": "3des"}),
        ] {
            let (status, body) = h
                .client
                .raw(
                    reqwest::Method::POST,
                    &format!("/v2.0/{}", kind.path()),
                    Some(&json!({ kind.singular(): attrs })),
                )
                .await
                .expect("raw");
            assert_eq!(status.as_u16(), 400);
            assert!(
                body["NeutronError"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("weak"),
                "{body}"
            );
        }
    }
    let lenient = start_with(|s| s.allow_weak_algorithms = true).await;
    let p = lenient
        .client
        .create(
            Kind::IkePolicy,
            json!({"auth_algorithm": "sha1", "encryption_algorithm": "3des"}),
        )
        .await
        .expect("allowed");
    assert_eq!(p["auth_algorithm"], "sha1");
}

#[tokio::test]
async fn names_and_descriptions_are_bounded() {
    let h = start().await;
    let c = &h.client;
    let external = external_network(c).await;
    let s = site(c, &external, 1).await;
    let long = "x".repeat(256);
    // Too long is Neutron's own string validator (HTTPBadRequest), not vpnaas's grammar.
    assert_eq!(
        refused(
            c,
            Kind::VpnService,
            json!({"router_id": s.router, "name": long})
        )
        .await,
        (400, "HTTPBadRequest".into())
    );
    assert_eq!(
        refused(c, Kind::IkePolicy, json!({"name": long})).await,
        (400, "HTTPBadRequest".into())
    );
    assert_eq!(
        refused(
            c,
            Kind::VpnService,
            json!({"router_id": s.router, "description": long})
        )
        .await,
        (400, "HTTPBadRequest".into())
    );
    assert_eq!(
        refused(c, Kind::IkePolicy, json!({"name": "a\nb"})).await,
        (400, "InvalidInput".into())
    );
    c.create(
        Kind::VpnService,
        json!({"router_id": s.router, "name": "x".repeat(255)}),
    )
    .await
    .expect("255 is fine");
}

#[tokio::test]
async fn vpn_service_rules() {
    let h = start().await;
    let c = &h.client;
    let external = external_network(c).await;
    let s = site(c, &external, 1).await;
    let missing = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        refused(c, Kind::VpnService, json!({"router_id": missing})).await,
        (404, "RouterNotFound".into())
    );
    let bare = c
        .create(Kind::Router, json!({"name": "no-gw"}))
        .await
        .expect("router");
    assert_eq!(
        refused(c, Kind::VpnService, json!({"router_id": id(&bare)})).await,
        (400, "RouterIsNotExternal".into())
    );
    let other = c.create(Kind::Network, json!({})).await.expect("net");
    let loose = c
        .create(
            Kind::Subnet,
            json!({"network_id": id(&other), "cidr": "10.9.0.0/24"}),
        )
        .await
        .expect("subnet");
    assert_eq!(
        refused(
            c,
            Kind::VpnService,
            json!({"router_id": s.router, "subnet_id": id(&loose)})
        )
        .await,
        (400, "SubnetIsNotConnectedToRouter".into())
    );
    assert_eq!(
        refused(
            c,
            Kind::VpnService,
            json!({"router_id": s.router, "subnet_id": missing})
        )
        .await,
        (400, "SubnetIsNotConnectedToRouter".into())
    );
    assert_eq!(
        refused(
            c,
            Kind::VpnService,
            json!({"router_id": s.router, "flavor_id": missing})
        )
        .await,
        (404, "FlavorNotFound".into())
    );
    assert_eq!(
        refused(c, Kind::VpnService, json!({"router_id": "not-a-uuid"})).await,
        (400, "HTTPBadRequest".into())
    );
    assert_eq!(
        refused(
            c,
            Kind::VpnService,
            json!({"router_id": s.router, "status": "ACTIVE"})
        )
        .await,
        (400, "HTTPBadRequest".into())
    );
    let svc = c
        .create(Kind::VpnService, json!({"router_id": s.router}))
        .await
        .expect("svc");
    assert_eq!(
        fault(
            c.update(Kind::VpnService, &id(&svc), json!({"router_id": s.router}))
                .await
        ),
        (400, "HTTPBadRequest".into())
    );
    assert_eq!(
        fault(
            c.update(
                Kind::VpnService,
                &id(&svc),
                json!({"admin_state_up": "maybe"})
            )
            .await
        ),
        (400, "InvalidInput".into())
    );
    assert_eq!(
        c.update(
            Kind::VpnService,
            &id(&svc),
            json!({"admin_state_up": "False"})
        )
        .await
        .expect("bool string")["admin_state_up"],
        false
    );
}

struct Fixture {
    h: Harness,
    site: Site,
    pols: (String, String),
    legacy: String,
    groups: String,
}

async fn fixture() -> Fixture {
    let h = start().await;
    let c = &h.client;
    let external = external_network(c).await;
    let site = site(c, &external, 1).await;
    let pols = policies(c).await;
    let legacy = legacy_service(c, &site).await;
    let groups = c
        .create(Kind::VpnService, json!({"router_id": site.router}))
        .await
        .expect("groups");
    Fixture {
        site,
        pols,
        legacy: id(&legacy),
        groups: id(&groups),
        h,
    }
}

impl Fixture {
    fn legacy_with(&self, changes: Value) -> Value {
        let mut attrs = legacy_connection(&self.legacy, &self.pols, "10.2.0.0/24");
        merge(&mut attrs, changes);
        attrs
    }
    async fn group(&self, kind: &str, endpoints: Value) -> String {
        id(&self
            .h
            .client
            .create(
                Kind::EndpointGroup,
                json!({"type": kind, "endpoints": endpoints}),
            )
            .await
            .expect("group"))
    }
    fn grouped_with(&self, local: Option<&str>, peer: Option<&str>, changes: Value) -> Value {
        let mut attrs = json!({"vpnservice_id": self.groups, "ikepolicy_id": self.pols.0, "ipsecpolicy_id": self.pols.1,
            "peer_address": "203.0.113.200", "peer_id": "203.0.113.200", "psk": "s"});
        if let Some(l) = local {
            attrs["local_ep_group_id"] = json!(l);
        }
        if let Some(p) = peer {
            attrs["peer_ep_group_id"] = json!(p);
        }
        merge(&mut attrs, changes);
        attrs
    }
    async fn refused(&self, attrs: Value) -> String {
        fault(self.h.client.create(Kind::SiteConnection, attrs).await).1
    }
}

fn merge(attrs: &mut Value, changes: Value) {
    if let (Value::Object(a), Value::Object(c)) = (attrs, changes) {
        for (k, v) in c {
            if v == json!("<absent>") {
                a.remove(&k);
            } else {
                a.insert(k, v);
            }
        }
    }
}

#[tokio::test]
async fn connection_attribute_rules() {
    let f = fixture().await;
    for changes in [
        json!({"peer_cidrs": "myname"}),
        json!({"peer_cidrs": ["1.0.0.0/33"]}),
        json!({"peer_cidrs": ["10.2.0.0/24", "10.2.0.0/24"]}),
        json!({"peer_cidrs": ["10.2.0.0"]}),
        json!({"mtu": -100}),
        json!({"dpd": 59}),
        json!({"dpd": {"action": "explode"}}),
        json!({"dpd": {"interval": -1}}),
        json!({"dpd": {"timeout": "x"}}),
        json!({"dpd": {"when": 1}}),
        json!({"initiator": "sometimes"}),
        json!({"psk": ""}),
        json!({"psk": "a\nb"}),
        json!({"peer_cidr": ["10.2.0.0/24"]}),
        json!({"auth_mode": "rsasig"}),
        json!({"peer_id": "<absent>"}),
        json!({"psk": "<absent>"}),
        json!({"vpnservice_id": "<absent>"}),
    ] {
        assert_eq!(
            f.refused(f.legacy_with(changes.clone())).await,
            "HTTPBadRequest",
            "{changes}"
        );
    }
    // Neutron's converters (to integer, to boolean) answer InvalidInput where its
    // validators answer HTTPBadRequest.
    for changes in [json!({"mtu": "abc"}), json!({"admin_state_up": "perhaps"})] {
        assert_eq!(
            f.refused(f.legacy_with(changes.clone())).await,
            "InvalidInput",
            "{changes}"
        );
    }
    assert_eq!(
        f.refused(f.legacy_with(json!({"peer_id": "a b"}))).await,
        "InvalidInput"
    );
    assert_eq!(
        f.refused(f.legacy_with(json!({"peer_address": "x;y"})))
            .await,
        "InvalidInput"
    );
    assert!(
        f.h.client
            .list(Kind::SiteConnection, &[])
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn connection_semantic_rules_in_neutron_order() {
    let f = fixture().await;
    let c = &f.h.client;
    let missing = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        f.refused(f.legacy_with(json!({"vpnservice_id": missing})))
            .await,
        "VPNServiceNotFound"
    );
    assert_eq!(
        f.refused(f.legacy_with(json!({"ikepolicy_id": missing})))
            .await,
        "IKEPolicyNotFound"
    );
    assert_eq!(
        f.refused(f.legacy_with(json!({"ipsecpolicy_id": missing})))
            .await,
        "IPsecPolicyNotFound"
    );
    let ah_esp = c
        .create(Kind::IpsecPolicy, json!({"transform_protocol": "ah-esp"}))
        .await
        .expect("ah-esp policy");
    assert_eq!(
        f.refused(f.legacy_with(json!({"ipsecpolicy_id": id(&ah_esp)})))
            .await,
        "IpsecValidationFailure"
    );
    assert_eq!(
        f.refused(f.legacy_with(json!({"peer_cidrs": []}))).await,
        "MissingPeerCidrs"
    );
    assert_eq!(
        f.refused(f.legacy_with(json!({"mtu": 63}))).await,
        "IPsecSiteConnectionMtuError"
    );
    assert_eq!(
        f.refused(f.legacy_with(json!({"mtu": 0}))).await,
        "IPsecSiteConnectionMtuError"
    );
    assert_eq!(
        f.refused(f.legacy_with(json!({"dpd": {"interval": 30, "timeout": 30}})))
            .await,
        "IPsecSiteConnectionDpdIntervalValueError"
    );
    assert_eq!(
        f.refused(f.legacy_with(json!({"peer_cidrs": ["10.2.0.0/24", "2001:db8::/64"]})))
            .await,
        "MixedIPVersionsForPeerCidrs"
    );
    assert_eq!(
        f.refused(f.legacy_with(json!({"peer_cidrs": ["2001:db8::/64"]})))
            .await,
        "MixedIPVersionsForIPSecConnection"
    );
    assert_eq!(
        f.refused(f.legacy_with(json!({"peer_address": "2001:db8::1", "peer_id": "2001:db8::1"})))
            .await,
        "ExternalNetworkHasNoSubnet"
    );
    let local = f.group("subnet", json!([f.site.subnet])).await;
    let peer = f.group("cidr", json!(["10.101.0.0/24"])).await;
    assert_eq!(
        f.refused(f.legacy_with(json!({"local_ep_group_id": local})))
            .await,
        "InvalidEndpointGroup"
    );
    assert_eq!(
        f.refused(f.legacy_with(json!({"local_ep_group_id": local, "peer_ep_group_id": peer})))
            .await,
        "InvalidEndpointGroup"
    );
    // Neutron checks the peer CIDRs of a subnet-mode service before its groups.
    assert_eq!(
        f.refused(f.legacy_with(
            json!({"local_ep_group_id": local, "peer_ep_group_id": peer, "peer_cidrs": []})
        ))
        .await,
        "MissingPeerCidrs"
    );

    assert_eq!(
        f.refused(f.grouped_with(Some(&local), None, json!({})))
            .await,
        "MissingRequiredEndpointGroup"
    );
    assert_eq!(
        f.refused(f.grouped_with(None, Some(&peer), json!({})))
            .await,
        "MissingRequiredEndpointGroup"
    );
    assert_eq!(
        f.refused(f.grouped_with(None, None, json!({}))).await,
        "MissingRequiredEndpointGroup"
    );
    assert_eq!(
        f.refused(f.grouped_with(
            Some(&local),
            Some(&peer),
            json!({"peer_cidrs": ["10.2.0.0/24"]})
        ))
        .await,
        "PeerCidrsInvalid"
    );
    assert_eq!(
        f.refused(f.grouped_with(Some(&peer), Some(&local), json!({})))
            .await,
        "WrongEndpointGroupType"
    );
    assert_eq!(
        f.refused(f.grouped_with(Some(&missing), Some(&peer), json!({})))
            .await,
        "VPNEndpointGroupNotFound"
    );
    let v6_peer = f.group("cidr", json!(["2001:db8::/64"])).await;
    assert_eq!(
        f.refused(f.grouped_with(Some(&local), Some(&v6_peer), json!({})))
            .await,
        "MixedIPVersionsForIPSecConnection"
    );
    let mixed_peer = f
        .group("cidr", json!(["10.5.0.0/24", "2001:db8::/64"]))
        .await;
    assert_eq!(
        f.refused(f.grouped_with(Some(&local), Some(&mixed_peer), json!({})))
            .await,
        "MixedIPVersionsForIPSecEndpoints"
    );
    let net = c.create(Kind::Network, json!({})).await.expect("net");
    let detached = c
        .create(
            Kind::Subnet,
            json!({"network_id": id(&net), "cidr": "10.77.0.0/24"}),
        )
        .await
        .expect("subnet");
    let far_local = f.group("subnet", json!([id(&detached)])).await;
    assert_eq!(
        f.refused(f.grouped_with(Some(&far_local), Some(&peer), json!({})))
            .await,
        "SubnetIsNotConnectedToRouter"
    );
    assert!(
        c.list(Kind::SiteConnection, &[])
            .await
            .expect("list")
            .is_empty(),
        "refusals created nothing"
    );

    let conn = c
        .create(Kind::SiteConnection, f.legacy_with(json!({})))
        .await
        .expect("valid");
    for (changes, kind) in [
        (json!({"peer_cidrs": []}), "MissingPeerCidrs"),
        (json!({"mtu": 60}), "IPsecSiteConnectionMtuError"),
        (
            json!({"dpd": {"timeout": 10}}),
            "IPsecSiteConnectionDpdIntervalValueError",
        ),
        (json!({"local_ep_group_id": local}), "InvalidEndpointGroup"),
        (json!({"vpnservice_id": f.groups}), "HTTPBadRequest"),
    ] {
        assert_eq!(
            fault(
                c.update(Kind::SiteConnection, &id(&conn), changes.clone())
                    .await
            )
            .1,
            kind,
            "{changes}"
        );
    }
    assert_eq!(
        c.show(Kind::SiteConnection, &id(&conn))
            .await
            .expect("show"),
        conn,
        "refused updates changed nothing"
    );
}

#[tokio::test]
async fn endpoint_group_rules() {
    let f = fixture().await;
    let c = &f.h.client;
    let refused = |attrs: Value| async move { fault(c.create(Kind::EndpointGroup, attrs).await).1 };
    assert_eq!(
        refused(json!({"type": "cidr"})).await,
        "MissingEndpointForEndpointGroup"
    );
    assert_eq!(
        refused(json!({"type": "cidr", "endpoints": []})).await,
        "MissingEndpointForEndpointGroup"
    );
    assert_eq!(
        refused(json!({"type": "cidr", "endpoints": ["10.0.0.0/24", "10.0.0.0/24"]})).await,
        "InvalidEndpointInEndpointGroup"
    );
    assert_eq!(
        refused(json!({"type": "cidr", "endpoints": ["10.2.0.0/24", "2000::1"]})).await,
        "InvalidEndpointInEndpointGroup"
    );
    assert_eq!(
        refused(json!({"type": "cidr", "endpoints": [f.site.subnet]})).await,
        "InvalidEndpointInEndpointGroup"
    );
    assert_eq!(
        refused(json!({"type": "subnet", "endpoints": ["10.0.0.0/24"]})).await,
        "InvalidEndpointInEndpointGroup"
    );
    assert_eq!(
        refused(json!({"type": "subnet", "endpoints": [uuid::Uuid::new_v4().to_string()]})).await,
        "NonExistingSubnetInEndpointGroup"
    );
    assert_eq!(
        refused(json!({"type": "vlan", "endpoints": ["5000"]})).await,
        "InvalidEndpointInEndpointGroup"
    );
    assert_eq!(
        refused(json!({"type": "router", "endpoints": ["r1\nx"]})).await,
        "InvalidEndpointInEndpointGroup"
    );
    assert_eq!(
        refused(json!({"type": "bogus", "endpoints": ["x"]})).await,
        "HTTPBadRequest"
    );
    c.create(
        Kind::EndpointGroup,
        json!({"type": "cidr", "endpoints": ["10.2.0.0/24", "2001:db8::/64"]}),
    )
    .await
    .expect("mixed versions are accepted at create, as in Neutron");
    let g = c
        .create(
            Kind::EndpointGroup,
            json!({"type": "vlan", "endpoints": ["100"]}),
        )
        .await
        .expect("vlan");
    assert_eq!(
        fault(
            c.update(Kind::EndpointGroup, &id(&g), json!({"endpoints": ["200"]}))
                .await
        )
        .1,
        "HTTPBadRequest"
    );
    assert_eq!(
        fault(
            c.update(Kind::EndpointGroup, &id(&g), json!({"type": "cidr"}))
                .await
        )
        .1,
        "HTTPBadRequest"
    );
}

#[tokio::test]
async fn malformed_bodies_get_neutron_errors() {
    let h = start().await;
    let http = reqwest::Client::new();
    // Neutron answers differently for its core resources (networks, subnets) and for
    // its service plugins' (routers, VPN); checked against Neutron 29.
    let cases = [
        ("vpn/ikepolicies", "{not json", "MalformedRequestBody"),
        ("vpn/ikepolicies", "", "HTTPBadRequest"),
        ("vpn/ikepolicies", "[]", "HTTPBadRequest"),
        ("vpn/ikepolicies", "\"text\"", "HTTPBadRequest"),
        ("vpn/ikepolicies", "{\"ikepolicy\": 5}", "HTTPBadRequest"),
        ("routers", "nope", "MalformedRequestBody"),
        ("networks", "{not json", "HTTPBadRequest"),
        ("subnets", "null", "HTTPBadRequest"),
    ];
    for (path, body, expected) in cases {
        let url = format!("{}/v2.0/{path}", h.client.base_url());
        let response = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 400, "{path} {body:?}");
        let value: Value = response.json().await.expect("neutron error body");
        assert_eq!(
            value["NeutronError"]["type"], expected,
            "{path} {body:?}: {value}"
        );
    }
    let (status, body) = h
        .client
        .raw(reqwest::Method::PATCH, "/v2.0/vpn/ikepolicies", None)
        .await
        .expect("raw");
    assert_eq!(
        (status.as_u16(), body["NeutronError"]["type"].as_str()),
        (405, Some("HTTPMethodNotAllowed"))
    );
    let (status, _) = h
        .client
        .raw(reqwest::Method::GET, "/v2.0/nothing", None)
        .await
        .expect("raw");
    assert_eq!(status.as_u16(), 404);
}
