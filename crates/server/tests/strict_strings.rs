//! Property tests: generated hostile strings (control characters, newlines, quotes,
//! braces, `#`, whitespace, over-long values) sent through HTTP to every attribute a daemon
//! may read are refused with a 400 naming the field, and change nothing.

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use vpnaas_model::Kind;

fn hostile() -> impl Strategy<Value = String> {
    let poison = prop::sample::select(vec![
        "\n", "\r", "\0", "\"", "'", "{", "}", "#", "\\", "\t", "\u{7f}", "`",
    ]);
    (".{0,20}", poison, ".{0,20}").prop_map(|(a, p, b)| format!("{a}{p}{b}"))
}

fn hostile_identity() -> impl Strategy<Value = String> {
    prop_oneof![
        hostile(),
        "[a-z]{1,8} [a-z]{1,8}".prop_map(String::from),
        "[a-z]{1,8},[a-z]{1,8}".prop_map(String::from),
        "%[a-z]{1,8}".prop_map(String::from),
        Just("x".repeat(256)),
    ]
}

struct World {
    h: Harness,
    service: String,
    pols: (String, String),
    conn: Value,
}

async fn world() -> World {
    let h = start().await;
    let Connected {
        service,
        pols,
        conn,
        ..
    } = connected_site(&h.client).await;
    World {
        service: id(&service),
        pols,
        conn,
        h,
    }
}

async fn assert_refused(w: &World, field: &str, value: &str) {
    let c = &w.h.client;
    let mut attrs = legacy_connection(&w.service, &w.pols, "10.3.0.0/24");
    attrs[field] = json!(value);
    let (status, body) = c
        .raw(
            reqwest::Method::POST,
            "/v2.0/vpn/ipsec-site-connections",
            Some(&json!({"ipsec_site_connection": attrs})),
        )
        .await
        .expect("post");
    assert_eq!(status.as_u16(), 400, "{field}={value:?} accepted on create");
    let message = body["NeutronError"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(field),
        "message does not name {field}: {message}"
    );
    let put = c
        .update(Kind::SiteConnection, &id(&w.conn), json!({ field: value }))
        .await;
    assert_eq!(fault(put).0, 400, "{field}={value:?} accepted on update");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn hostile_tenant_strings_are_refused_and_change_nothing() {
    let rt = runtime();
    let w = rt.block_on(world());
    let config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(value in hostile_identity())| {
        rt.block_on(async {
            assert_refused(&w, "peer_id", &value).await;
            assert_refused(&w, "local_id", &value).await;
            assert_refused(&w, "peer_address", &value).await;
        });
    });
    proptest!(config, |(value in hostile())| {
        rt.block_on(async {
            assert_refused(&w, "name", &value).await;
            let group = w.h.client.create(Kind::EndpointGroup, json!({"type": "cidr", "endpoints": [value.clone()]})).await;
            assert_eq!(fault(group).1, "InvalidEndpointInEndpointGroup");
            for kind in ["router", "network", "vlan", "subnet"] {
                let group = w.h.client.create(Kind::EndpointGroup, json!({"type": kind, "endpoints": [value.clone()]})).await;
                assert_eq!(fault(group).0, 400, "{kind} endpoint {value:?} accepted");
            }
        });
    });
    rt.block_on(async {
        assert_eq!(
            w.h.client
                .show(Kind::SiteConnection, &id(&w.conn))
                .await
                .expect("show"),
            w.conn,
            "nothing changed"
        );
        assert_eq!(
            w.h.client
                .list(Kind::SiteConnection, &[])
                .await
                .expect("list")
                .len(),
            1
        );
        assert!(
            w.h.client
                .list(Kind::EndpointGroup, &[])
                .await
                .expect("list")
                .is_empty()
        );
    });
}
