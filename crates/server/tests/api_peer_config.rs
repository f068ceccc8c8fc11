//! `GET …/ipsec-site-connections/{id}/peer-config` through real HTTP: the formats without
//! `format`, the far end's view with it, the key only for `include_secret=true` from a
//! caller who may change the connection (a reader is refused, another project sees no
//! connection), a bad `format` or `include_secret` named in a 400 listing what is valid;
//! a `cert` connection in certificate mode in every format.

mod common;

use base64::Engine as _;
use common::*;
use serde_json::{Value, json};
use vpnaas_client::{Client, Error};
use vpnaas_model::Kind;

const PROJECT: &str = "p";
const PSK: &str = "secret-psk";

struct World {
    _h: Harness,
    member: Client,
    reader: Client,
    stranger: Client,
    conn: String,
    service: String,
    ipsecpolicy: String,
}

async fn world() -> World {
    let h = start().await;
    let member = h.client.as_project(PROJECT, "member");
    let external = external_network(&h.client).await;
    let s = site(&member, &external, 1).await;
    let pols = policies(&member).await;
    let svc = legacy_service(&member, &s).await;
    let conn = member
        .create(
            Kind::SiteConnection,
            legacy_connection(&id(&svc), &pols, "10.2.0.0/24"),
        )
        .await
        .expect("conn");
    World {
        reader: h.client.as_project(PROJECT, "reader"),
        stranger: h.client.as_project("q", "member"),
        member,
        conn: id(&conn),
        service: id(&svc),
        ipsecpolicy: pols.1,
        _h: h,
    }
}

impl World {
    /// A `cert` connection on the service, with an IKEv2 policy of group 14: Libreswan
    /// signs with certificates in IKEv2 only, and IOS's IKEv2 proposals have no group 5
    /// (Neutron's default).
    async fn cert_connection(&self) -> String {
        let ike = self
            .member
            .create(
                Kind::IkePolicy,
                json!({"name": "ike2", "ike_version": "v2", "pfs": "group14"}),
            )
            .await
            .expect("ike policy");
        let policies = (id(&ike), self.ipsecpolicy.clone());
        let mut attrs = legacy_connection(&self.service, &policies, "10.3.0.0/24");
        let object = attrs.as_object_mut().expect("object");
        object.remove("psk");
        object.insert("auth_mode".into(), json!("cert"));
        let conn = self
            .member
            .create(Kind::SiteConnection, attrs)
            .await
            .expect("cert connection");
        id(&conn)
    }
}

fn path(conn: &str, query: &str) -> String {
    format!("/v2.0/vpn/ipsec-site-connections/{conn}/peer-config{query}")
}

fn refusal(result: Result<String, Error>) -> (u16, String, String) {
    match result {
        Err(Error::Api {
            status,
            kind,
            message,
        }) => (status, kind, message),
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test]
async fn without_format_the_formats_are_listed() {
    let w = world().await;
    let (status, body) = w
        .reader
        .raw(reqwest::Method::GET, &path(&w.conn, ""), None)
        .await
        .expect("answer");
    assert_eq!(status.as_u16(), 200, "{body}");
    let names: Vec<&str> = body["peer_config_formats"]
        .as_array()
        .expect("formats")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "strongswan",
            "libreswan",
            "vyos",
            "cisco-ios",
            "juniper-srx"
        ]
    );
}

#[tokio::test]
async fn the_far_end_is_written_from_its_side_with_the_key_only_when_asked() {
    let w = world().await;
    let placeholder = w
        .member
        .peer_config(&w.conn, "strongswan", false)
        .await
        .expect("download");
    assert!(
        placeholder.contains("local_addrs = 203.0.113.200"),
        "{placeholder}"
    );
    assert!(
        placeholder.contains("local_ts = 10.2.0.0/24"),
        "{placeholder}"
    );
    assert!(
        placeholder.contains("remote_ts = 10.1.0.0/24"),
        "{placeholder}"
    );
    assert!(placeholder.contains("PASTE-THE-PRE-SHARED-KEY-HERE"));
    let with_key = w
        .member
        .peer_config(&w.conn, "libreswan", true)
        .await
        .expect("download");
    let encoded = base64::engine::general_purpose::STANDARD.encode(PSK);
    assert!(with_key.contains(&format!("PSK 0s{encoded}")), "{with_key}");
}

#[tokio::test]
async fn a_reader_gets_the_placeholder_and_never_the_key() {
    let w = world().await;
    for format in ["strongswan", "libreswan", "vyos", "juniper-srx"] {
        let text = w
            .reader
            .peer_config(&w.conn, format, false)
            .await
            .expect("a reader may download");
        assert!(!text.contains(PSK), "{format}: {text}");
        let (status, kind, _) = refusal(w.reader.peer_config(&w.conn, format, true).await);
        assert_eq!((status, kind.as_str()), (403, "PolicyNotAuthorized"));
    }
}

#[tokio::test]
async fn another_project_sees_no_connection() {
    let w = world().await;
    for include in [false, true] {
        let (status, kind, _) =
            refusal(w.stranger.peer_config(&w.conn, "strongswan", include).await);
        assert_eq!(
            (status, kind.as_str()),
            (404, "IPsecSiteConnectionNotFound")
        );
    }
}

#[tokio::test]
async fn a_bad_format_or_include_secret_is_named_with_the_valid_values() {
    let w = world().await;
    let (status, _, message) = refusal(w.member.peer_config(&w.conn, "openvpn", false).await);
    assert_eq!(status, 400);
    assert!(message.contains("format"), "{message}");
    assert!(
        message.contains("strongswan, libreswan, vyos, cisco-ios, juniper-srx"),
        "{message}"
    );
    let (status, body): (_, Value) = w
        .member
        .raw(
            reqwest::Method::GET,
            &path(&w.conn, "?format=vyos&include_secret=maybe"),
            None,
        )
        .await
        .expect("answer");
    assert_eq!(status.as_u16(), 400, "{body}");
    assert!(
        body["NeutronError"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("include_secret"))
    );
}

#[tokio::test]
async fn a_value_the_format_cannot_express_is_a_conflict_naming_it() {
    let w = world().await;
    // The fixture's IKE policy is IKEv1 (Neutron's default); the cisco-ios format is IKEv2.
    let (status, kind, message) = refusal(w.member.peer_config(&w.conn, "cisco-ios", false).await);
    assert_eq!((status, kind.as_str()), (409, "PeerConfigUnavailable"));
    assert!(message.contains("ike_version"), "{message}");
}

#[tokio::test]
async fn a_cert_connection_is_written_in_certificate_mode_in_every_format() {
    let w = world().await;
    let conn = w.cert_connection().await;
    for (format, line) in [
        ("strongswan", "auth = pubkey"),
        ("libreswan", "authby=ecdsa"),
        ("vyos", "authentication mode 'x509'"),
        ("cisco-ios", " authentication local ecdsa-sig"),
        ("juniper-srx", "authentication-method ecdsa-signatures-256"),
    ] {
        let text = w
            .member
            .peer_config(&conn, format, false)
            .await
            .unwrap_or_else(|e| panic!("{format}: {e:?}"));
        assert!(text.contains(line), "{format}: no {line:?} in\n{text}");
        assert!(
            !text.contains("PASTE-THE-PRE-SHARED-KEY-HERE"),
            "{format}: {text}"
        );
        assert!(text.contains("vpnaas-ca"), "{format}: {text}");
    }
}
