//! Property tests: generated hostile strings (control characters, newlines, quotes,
//! braces, `#`, whitespace, over-long values) sent through HTTP to every attribute a daemon
//! may read are refused with a 400 naming the field, and change nothing. So are the Unicode
//! look-alikes and invisible characters that defeat the ASCII rule, and peer addresses
//! that cannot be another gateway.

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

/// The message of a refused POST of an IKE policy with `attrs`.
async fn refusal_of_policy(w: &World, attrs: Value) -> String {
    let (status, body) =
        w.h.client
            .raw(
                reqwest::Method::POST,
                "/v2.0/vpn/ikepolicies",
                Some(&json!({ "ikepolicy": attrs })),
            )
            .await
            .expect("post");
    assert_eq!(status.as_u16(), 400, "{attrs} accepted: {body}");
    body["NeutronError"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Unicode that defeats the ASCII rule: invisible and bidirectional formatting characters
/// are refused in names and descriptions, fullwidth and other compatibility forms of what
/// names may not hold are refused in names, each naming the code point; names in any
/// script still work. Peer addresses that cannot be another gateway are refused.
#[test]
fn look_alikes_invisibles_and_unfit_peers_are_refused_and_change_nothing() {
    let rt = runtime();
    let w = rt.block_on(world());
    rt.block_on(async {
        for (value, code_point) in [
            ("admin\u{202E}txt.exe", "U+202E RIGHT-TO-LEFT OVERRIDE"),
            ("a\u{200B}b", "U+200B ZERO WIDTH SPACE"),
            ("\u{FEFF}vpn", "U+FEFF"),
            ("one\u{2028}two", "U+2028 LINE SEPARATOR"),
            ("one\u{2029}two", "U+2029 PARAGRAPH SEPARATOR"),
            ("\u{FF02}quoted\u{FF02}", "U+FF02"),
            ("\u{FF5B}braced\u{FF5D}", "U+FF5B"),
            ("\u{FF07}x", "U+FF07"),
            ("x\u{FF03}1", "U+FF03"),
            ("back\u{FF3C}slash", "U+FF3C"),
        ] {
            let message = refusal_of_policy(&w, json!({ "name": value })).await;
            assert!(
                message.contains("name") && message.contains(code_point),
                "{value:?}: {message}"
            );
            assert_refused(&w, "name", value).await;
        }
        for value in ["a\u{202E}b", "a\u{2028}b", "a\u{200D}b", "\u{FEFF}x"] {
            let message = refusal_of_policy(&w, json!({ "description": value })).await;
            assert!(message.contains("description"), "{value:?}: {message}");
        }
        for name in ["Zürich", "Genève ↔ 東京", "Bob’s “VPN”", "ＡＢＣ"] {
            let p =
                w.h.client
                    .create(
                        Kind::IkePolicy,
                        json!({"name": name, "description": "\"ok\"\n"}),
                    )
                    .await
                    .expect(name);
            assert_eq!(p["name"], name);
            w.h.client
                .delete(Kind::IkePolicy, &id(&p))
                .await
                .expect("delete");
        }
        for peer in [
            "0.0.0.0",
            "::",
            "127.0.0.1",
            "::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
            "ff02::1",
            "255.255.255.255",
            "169.254.1.1",
            "fe80::1",
        ] {
            assert_refused(&w, "peer_address", peer).await;
        }
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
    });
}
