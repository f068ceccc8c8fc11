//! Networks, subnets and routers carry Neutron 29's attributes with its defaults, types
//! and refusals (each checked against the real Neutron 29 API): standard attributes
//! (tags, timestamps, revision), the attributes vpnaas stores without acting on them,
//! the tag API and tag filters, and the interface ports `openstack router show` reads.

mod common;

use common::{external_network, fault, id, site, start};
use reqwest::Method;
use serde_json::{Value, json};
use vpnaas_client::Client;
use vpnaas_model::Kind;

fn keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn is_timestamp(v: &Value) -> bool {
    let text = v.as_str().unwrap_or_default();
    let bytes = text.as_bytes();
    text.len() == 20
        && text.ends_with('Z')
        && bytes[10] == b'T'
        && text
            .chars()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16 | 19) || c.is_ascii_digit())
}

/// Neutron 29's attribute names (as its API answered them), sorted.
const NETWORK_KEYS: &[&str] = &[
    "admin_state_up",
    "availability_zone_hints",
    "availability_zones",
    "created_at",
    "description",
    "id",
    "ipv4_address_scope",
    "ipv6_address_scope",
    "is_default",
    "mtu",
    "name",
    "port_security_enabled",
    "project_id",
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
    "qinq",
    "revision_number",
    "router:external",
    "shared",
    "status",
    "subnets",
    "tags",
    "tenant_id",
    "updated_at",
    "vlan_transparent",
];
const SUBNET_KEYS: &[&str] = &[
    "allocation_pools",
    "cidr",
    "created_at",
    "description",
    "dns_nameservers",
    "enable_dhcp",
    "gateway_ip",
    "host_routes",
    "id",
    "ip_version",
    "ipv6_address_mode",
    "ipv6_ra_mode",
    "name",
    "network_id",
    "project_id",
    "revision_number",
    "router:external",
    "service_types",
    "subnetpool_id",
    "tags",
    "tenant_id",
    "updated_at",
];
const ROUTER_KEYS: &[&str] = &[
    "admin_state_up",
    "availability_zone_hints",
    "availability_zones",
    "created_at",
    "description",
    "distributed",
    "external_gateway_info",
    "flavor_id",
    "ha",
    "id",
    "name",
    "project_id",
    "revision_number",
    "routes",
    "status",
    "tags",
    "tenant_id",
    "updated_at",
];
/// vpnaas extensions on routers.
const ROUTER_EXTENSION_KEYS: &[&str] = &[
    "agent_host",
    "ha_standby_host",
    "interfaces",
    "lease_claimed_from",
    "lease_epoch",
];

#[tokio::test]
async fn every_neutron_attribute_with_its_default_and_type() {
    let h = start().await;
    let c = &h.client;
    let external = external_network(c).await;
    let s = site(c, &external, 1).await;

    let network = c.show(Kind::Network, &s.network).await.expect("network");
    assert_eq!(keys(&network), NETWORK_KEYS);
    for (attr, default) in [
        ("port_security_enabled", json!(true)),
        ("vlan_transparent", json!(false)),
        ("qinq", json!(false)),
        ("is_default", json!(false)),
        ("availability_zone_hints", json!([])),
        ("availability_zones", json!([])),
        ("ipv4_address_scope", Value::Null),
        ("ipv6_address_scope", Value::Null),
        ("tags", json!([])),
    ] {
        assert_eq!(network[attr], default, "network {attr}");
    }

    let subnet = c.show(Kind::Subnet, &s.subnet).await.expect("subnet");
    assert_eq!(keys(&subnet), SUBNET_KEYS);
    for (attr, default) in [
        ("dns_nameservers", json!([])),
        ("host_routes", json!([])),
        ("service_types", json!([])),
        ("subnetpool_id", Value::Null),
        ("ipv6_ra_mode", Value::Null),
        ("ipv6_address_mode", Value::Null),
        ("router:external", json!(false)),
        ("tags", json!([])),
    ] {
        assert_eq!(subnet[attr], default, "subnet {attr}");
    }

    let router = c.show(Kind::Router, &s.router).await.expect("router");
    let mut expected: Vec<&str> = [ROUTER_KEYS, ROUTER_EXTENSION_KEYS].concat();
    expected.sort_unstable();
    assert_eq!(keys(&router), expected);
    for (attr, default) in [
        ("distributed", json!(false)),
        ("routes", json!([])),
        ("availability_zone_hints", json!([])),
        ("availability_zones", json!([])),
        ("flavor_id", Value::Null),
        ("tags", json!([])),
    ] {
        assert_eq!(router[attr], default, "router {attr}");
    }
    for item in [&network, &subnet, &router] {
        assert!(is_timestamp(&item["created_at"]), "{item}");
        assert!(is_timestamp(&item["updated_at"]), "{item}");
        assert!(item["revision_number"].is_u64(), "{item}");
    }
}

#[tokio::test]
async fn updates_bump_the_revision_and_the_update_time() {
    let h = start().await;
    let c = &h.client;
    let external = external_network(c).await;
    let s = site(c, &external, 1).await;
    for (kind, id) in [
        (Kind::Network, &s.network),
        (Kind::Subnet, &s.subnet),
        (Kind::Router, &s.router),
    ] {
        let before = c.show(kind, id).await.expect("show");
        let after = c
            .update(kind, id, json!({"description": "changed"}))
            .await
            .expect("update");
        let revision = |v: &Value| v["revision_number"].as_u64().expect("revision_number");
        assert_eq!(revision(&after), revision(&before) + 1, "{kind}");
        assert!(is_timestamp(&after["updated_at"]), "{kind}: {after}");
        assert_eq!(after["created_at"], before["created_at"], "{kind}");
        assert!(
            after["updated_at"].as_str() >= before["updated_at"].as_str(),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn what_a_write_answers_is_what_is_stored() {
    let h = start().await;
    let c = &h.client;
    let external = external_network(c).await;
    let router = c
        .create(
            Kind::Router,
            json!({"name": "r", "external_gateway_info": {"network_id": external.0}}),
        )
        .await
        .expect("router");
    assert_eq!(router["revision_number"], 1, "{router}");
    assert_eq!(
        c.show(Kind::Router, &id(&router)).await.expect("show"),
        router
    );
    let updated = c
        .update(Kind::Router, &id(&router), json!({"name": "r2"}))
        .await
        .expect("update");
    assert_eq!(updated["revision_number"], 2, "{updated}");
    assert_eq!(
        c.show(Kind::Router, &id(&router)).await.expect("show"),
        updated
    );
}

#[tokio::test]
async fn a_new_subnet_gateway_reshapes_the_allocation_pools() {
    let h = start().await;
    let c = &h.client;
    let net = id(&c
        .create(Kind::Network, json!({"name": "n"}))
        .await
        .expect("net"));
    let subnet = id(&c
        .create(
            Kind::Subnet,
            json!({"network_id": net, "cidr": "10.9.0.0/24", "ip_version": 4}),
        )
        .await
        .expect("subnet"));
    let moved = c
        .update(Kind::Subnet, &subnet, json!({"gateway_ip": "10.9.0.100"}))
        .await
        .expect("move gateway");
    let split = json!([
        {"start": "10.9.0.1", "end": "10.9.0.99"},
        {"start": "10.9.0.101", "end": "10.9.0.254"}
    ]);
    assert_eq!(moved["allocation_pools"], split);
    let stored = c.show(Kind::Subnet, &subnet).await.expect("show");
    assert_eq!(stored["allocation_pools"], split);
    let gatewayless = c
        .update(Kind::Subnet, &subnet, json!({"gateway_ip": null}))
        .await
        .expect("drop gateway");
    assert_eq!(gatewayless["gateway_ip"], Value::Null);
    assert_eq!(
        gatewayless["allocation_pools"],
        json!([{"start": "10.9.0.1", "end": "10.9.0.254"}])
    );
}

async fn refused(c: &Client, kind: Kind, body: Value) -> (u16, String) {
    fault(c.create(kind, body).await)
}

#[tokio::test]
async fn stored_attributes_are_validated_as_neutron_does() {
    let h = start().await;
    let c = &h.client;
    let net = id(&c
        .create(Kind::Network, json!({"name": "n"}))
        .await
        .expect("net"));
    let subnet = |extra: Value| {
        let mut body = json!({"network_id": net, "cidr": "10.7.0.0/24"});
        body.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        body
    };
    for (extra, expected) in [
        (
            json!({"dns_nameservers": ["8.8.8.8", "8.8.8.8"]}),
            (400, "HTTPBadRequest"),
        ),
        (json!({"dns_nameservers": ["x"]}), (400, "HTTPBadRequest")),
        (
            json!({"dns_nameservers": ["1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4", "1.1.1.5", "1.1.1.6"]}),
            (400, "DNSNameServersExhausted"),
        ),
        (
            json!({"dns_nameservers": ["2001:db8::1"]}),
            (400, "InvalidInput"),
        ),
        (
            json!({"host_routes": [{"destination": "10.8.0.0/24"}]}),
            (400, "HTTPBadRequest"),
        ),
        (
            json!({"host_routes": [{"destination": "10.8.0.1/24", "nexthop": "10.7.0.5"}]}),
            (400, "HTTPBadRequest"),
        ),
        (
            json!({"host_routes": [{"destination": "2001:db8::/64", "nexthop": "10.7.0.5"}]}),
            (400, "InvalidInput"),
        ),
        (
            json!({"service_types": ["foo"]}),
            (400, "InvalidSubnetServiceType"),
        ),
        (
            json!({"service_types": [1]}),
            (400, "InvalidInputSubnetServiceType"),
        ),
        (
            json!({"service_types": "network:foo"}),
            (400, "HTTPBadRequest"),
        ),
        (json!({"ipv6_ra_mode": "slaac"}), (400, "InvalidInput")),
        (json!({"ipv6_ra_mode": "bogus"}), (400, "HTTPBadRequest")),
        (
            json!({"subnetpool_id": "00000000-0000-0000-0000-000000000001"}),
            (404, "SubnetPoolNotFound"),
        ),
        (json!({"tags": ["a"]}), (400, "HTTPBadRequest")),
        (json!({"router:external": true}), (400, "HTTPBadRequest")),
    ] {
        assert_eq!(
            refused(c, Kind::Subnet, subnet(extra.clone())).await,
            (expected.0, expected.1.to_string()),
            "{extra}"
        );
    }
    let v6 = c
        .create(
            Kind::Subnet,
            json!({"network_id": net, "cidr": "2001:db8::/64", "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}),
        )
        .await
        .expect("IPv6 modes on an IPv6 subnet");
    assert_eq!(v6["ipv6_address_mode"], "slaac");
    let stored = c
        .create(
            Kind::Subnet,
            subnet(json!({"dns_nameservers": ["8.8.8.8"], "service_types": ["network:x", "compute:nova"],
                          "host_routes": [{"destination": "10.8.0.0/24", "nexthop": "10.7.0.5"}]})),
        )
        .await
        .expect("valid subnet");
    assert_eq!(
        stored["service_types"],
        json!(["compute:nova", "network:x"])
    );
    assert_eq!(stored["host_routes"][0]["nexthop"], "10.7.0.5");

    for (body, expected) in [
        (
            json!({"availability_zone_hints": ["nova"]}),
            (404, "AvailabilityZoneNotFound"),
        ),
        (json!({"port_security_enabled": "x"}), (400, "InvalidInput")),
        (json!({"mtu": -1}), (400, "HTTPBadRequest")),
        (json!({"mtu": "abc"}), (400, "InvalidInput")),
        (json!({"created_at": "x"}), (400, "HTTPBadRequest")),
    ] {
        assert_eq!(
            refused(c, Kind::Network, body.clone()).await,
            (expected.0, expected.1.to_string()),
            "{body}"
        );
    }
    c.create(
        Kind::Network,
        json!({"name": "d", "is_default": true, "router:external": true}),
    )
    .await
    .expect("a default external network");
    assert_eq!(
        refused(c, Kind::Network, json!({"is_default": true})).await,
        (409, "DefaultExternalNetworkExists".to_string())
    );
    for (body, expected) in [
        (json!({"routes": []}), (400, "HTTPBadRequest")),
        (
            json!({"flavor_id": "00000000-0000-0000-0000-000000000001"}),
            (404, "FlavorNotFound"),
        ),
        (json!({"distributed": "x"}), (400, "InvalidInput")),
    ] {
        assert_eq!(
            refused(c, Kind::Router, body.clone()).await,
            (expected.0, expected.1.to_string()),
            "{body}"
        );
    }
}

#[tokio::test]
async fn extra_routes_need_a_connected_next_hop_and_hold_their_interface() {
    let h = start().await;
    let c = &h.client;
    let external = external_network(c).await;
    let s = site(c, &external, 1).await;
    let route =
        |nexthop: &str| json!({"routes": [{"destination": "10.50.0.0/24", "nexthop": nexthop}]});
    for (nexthop, expected) in [
        ("10.99.0.9", "InvalidRoutes"),
        ("10.1.0.1", "InvalidRoutes"),
    ] {
        assert_eq!(
            fault(c.update(Kind::Router, &s.router, route(nexthop)).await),
            (400, expected.to_string()),
            "{nexthop}"
        );
    }
    let router = c
        .update(Kind::Router, &s.router, route("10.1.0.9"))
        .await
        .expect("a next hop on an interface's subnet");
    assert_eq!(router["routes"][0]["nexthop"], "10.1.0.9");
    assert_eq!(
        fault(c.remove_router_interface(&s.router, &s.subnet).await),
        (409, "RouterInterfaceInUseByRoute".to_string())
    );
    c.update(Kind::Router, &s.router, json!({"routes": null}))
        .await
        .expect("routes cleared");
    c.remove_router_interface(&s.router, &s.subnet)
        .await
        .expect("interface removed once no route needs it");
    assert_eq!(
        fault(
            c.update(Kind::Router, &s.router, json!({"distributed": true}))
                .await
        ),
        (400, "BadRequest".to_string())
    );
    c.update(Kind::Router, &s.router, json!({"admin_state_up": false}))
        .await
        .expect("down");
    let router = c
        .update(Kind::Router, &s.router, json!({"distributed": true}))
        .await
        .expect("distributed while down");
    assert_eq!(router["distributed"], true);
}

#[tokio::test]
async fn subnets_follow_their_network_being_external() {
    let h = start().await;
    let c = &h.client;
    let external = external_network(c).await;
    let s = site(c, &external, 1).await;
    assert_eq!(
        c.show(Kind::Subnet, &external.1).await.expect("show")["router:external"],
        true
    );
    c.update(Kind::Network, &s.network, json!({"router:external": true}))
        .await
        .expect("made external");
    assert_eq!(
        c.show(Kind::Subnet, &s.subnet).await.expect("show")["router:external"],
        true
    );
}

#[tokio::test]
async fn tags_are_set_listed_and_filtered_as_in_neutron() {
    let h = start().await;
    let c = &h.client;
    let a = id(&c
        .create(Kind::Network, json!({"name": "a"}))
        .await
        .expect("a"));
    let b = id(&c
        .create(Kind::Network, json!({"name": "b"}))
        .await
        .expect("b"));
    let before = c.show(Kind::Network, &a).await.expect("show");
    let (status, body) = c
        .raw(
            Method::PUT,
            &format!("/v2.0/networks/{a}/tags"),
            Some(&json!({"tags": ["red", "blue"]})),
        )
        .await
        .expect("raw");
    assert_eq!(
        (status.as_u16(), body),
        (200, json!({"tags": ["red", "blue"]}))
    );
    let after = c.show(Kind::Network, &a).await.expect("show");
    assert_eq!(after["tags"], json!(["blue", "red"]));
    assert_eq!(
        after["revision_number"].as_u64(),
        before["revision_number"].as_u64().map(|r| r + 1)
    );
    let (status, _) = c
        .raw(Method::PUT, &format!("/v2.0/networks/{b}/tags/green"), None)
        .await
        .expect("raw");
    assert_eq!(status.as_u16(), 201);
    for (method, path, expected) in [
        (Method::GET, format!("/v2.0/networks/{a}/tags/red"), 204),
        (Method::GET, format!("/v2.0/networks/{a}/tags/green"), 404),
        (Method::DELETE, format!("/v2.0/networks/{b}/tags/nope"), 404),
        (
            Method::PUT,
            format!("/v2.0/networks/{}/tags", uuid::Uuid::new_v4()),
            404,
        ),
    ] {
        let (status, body) = c
            .raw(method, &path, Some(&json!({"tags": []})))
            .await
            .expect("raw");
        assert_eq!(status.as_u16(), expected, "{path}: {body}");
    }
    for (bad, expected) in [
        (json!({"tags": ["x", "x"]}), "InvalidInput"),
        (json!({"tags": "x"}), "InvalidInput"),
        (json!({"tags": [1]}), "InvalidInput"),
        (json!({"x": []}), "InvalidInput"),
        (json!({"tags": ["t".repeat(256)]}), "InvalidInput"),
    ] {
        let (status, body) = c
            .raw(Method::PUT, &format!("/v2.0/networks/{a}/tags"), Some(&bad))
            .await
            .expect("raw");
        assert_eq!(
            (status.as_u16(), body["NeutronError"]["type"].as_str()),
            (400, Some(expected)),
            "{bad}"
        );
    }
    let names = |query: &'static str| async move {
        let mut names: Vec<String> = c
            .list(
                Kind::Network,
                &[(
                    query.split_once('=').expect("kv").0,
                    query.split_once('=').expect("kv").1,
                )],
            )
            .await
            .expect("list")
            .iter()
            .map(|n| n["name"].as_str().unwrap_or_default().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names("tags=red,blue").await, ["a"]);
    assert_eq!(names("tags-any=red,green").await, ["a", "b"]);
    assert_eq!(names("not-tags-any=red").await, ["b"]);
    let (status, _) = c
        .raw(Method::DELETE, &format!("/v2.0/networks/{a}/tags"), None)
        .await
        .expect("raw");
    assert_eq!(status.as_u16(), 204);
    assert_eq!(
        c.get(&format!("/v2.0/networks/{a}/tags"))
            .await
            .expect("tags"),
        json!({"tags": []})
    );
}

#[tokio::test]
async fn router_interfaces_are_listed_as_ports() {
    let h = start().await;
    let c = &h.client;
    let external = external_network(c).await;
    let s = site(c, &external, 1).await;
    let ports = c
        .get(&format!("/v2.0/ports?device_id={}", s.router))
        .await
        .expect("ports")["ports"]
        .clone();
    assert_eq!(ports.as_array().map(Vec::len), Some(1), "{ports}");
    let port = &ports[0];
    assert_eq!(port["device_owner"], "network:router_interface");
    assert_eq!(port["network_id"], s.network.as_str());
    assert_eq!(
        port["fixed_ips"],
        json!([{"subnet_id": s.subnet, "ip_address": "10.1.0.1"}])
    );
    let one = c
        .get(&format!("/v2.0/ports/{}", port["id"].as_str().expect("id")))
        .await
        .expect("one port");
    assert_eq!(&one["port"], port);
    assert_eq!(
        c.get(&format!("/v2.0/ports?device_id={}", uuid::Uuid::new_v4()))
            .await
            .expect("none")["ports"],
        json!([])
    );
    assert_eq!(fault(c.get("/v2.0/ports?bogus=1").await).0, 400);
}
