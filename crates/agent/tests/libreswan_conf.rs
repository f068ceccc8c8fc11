//! Every `ipsec.conf` the Libreswan driver writes, for a matrix of policies and
//! connection shapes, is checked by Libreswan's own tools: `addconn --checkconfig` for the
//! syntax and keywords, `algparse` for each proposal (checkconfig does not check
//! algorithms). Policies Libreswan cannot negotiate are refused by the writer, and
//! `algparse` agrees they are not negotiable. Needs the Libreswan tools unpacked by
//! `scripts/setup.sh` (`VPNAAS_LIBRESWAN_ROOT`, default /opt/vpnaas/libreswan).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use vpnaas_agent::Error;
use vpnaas_agent::libreswan::conf::{self, Conn};
use vpnaas_model::agent::ConnectionSpec;

fn tools() -> PathBuf {
    let root = std::env::var("VPNAAS_LIBRESWAN_ROOT").unwrap_or("/opt/vpnaas/libreswan".into());
    let dir = PathBuf::from(root).join("usr/libexec/ipsec");
    assert!(
        dir.join("addconn").exists(),
        "Libreswan's tools are not in {}: run scripts/setup.sh",
        dir.display()
    );
    dir
}

fn spec(ike: Value, ipsec: Value, shape: Value) -> ConnectionSpec {
    let mut ike_doc = json!({"id": "i", "tenant_id": "p", "project_id": "p", "name": "", "description": "",
        "auth_algorithm": "sha256", "encryption_algorithm": "aes-128", "phase1_negotiation_mode": "main",
        "ike_version": "v2", "pfs": "group14"});
    let mut ipsec_doc = json!({"id": "j", "tenant_id": "p", "project_id": "p", "name": "", "description": "",
        "transform_protocol": "esp", "encapsulation_mode": "tunnel", "auth_algorithm": "sha256",
        "encryption_algorithm": "aes-128", "pfs": "group14"});
    let mut doc = json!({
        "id": uuid::Uuid::new_v4().to_string(), "service_id": "s", "enabled": true,
        "local_address": "203.0.113.2", "local_id": "203.0.113.2",
        "peer_address": "203.0.113.3", "peer_id": "203.0.113.3", "psk": "a secret",
        "local_cidrs": ["10.1.0.0/24"], "peer_cidrs": ["10.2.0.0/24"],
        "dpd": {}, "initiator": "bi-directional", "mtu": 1500,
    });
    merge(&mut ike_doc, ike);
    merge(&mut ipsec_doc, ipsec);
    merge(&mut doc, shape);
    doc["ike"] = ike_doc;
    doc["ipsec"] = ipsec_doc;
    serde_json::from_value(doc).expect("spec")
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

fn algparse(tools: &Path, version: &str, proposal: &str) -> Result<String, String> {
    let out = Command::new(tools.join("algparse"))
        .args([version, "-pfs", proposal])
        .output()
        .expect("algparse");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && !text.contains("ERROR") {
        Ok(text)
    } else {
        Err(text)
    }
}

fn check(tools: &Path, conns: &[Conn], specs: &[&ConnectionSpec]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ipsec.conf");
    let text = conf::render(conns);
    std::fs::write(&file, &text).expect("write");
    let out = Command::new(tools.join("addconn"))
        .args(["--checkconfig", "--config"])
        .arg(&file)
        .output()
        .expect("addconn");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "addconn --checkconfig refused:\n{text}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for section in text.split("\nconn ").skip(1) {
        let value = |key: &str| {
            section
                .lines()
                .map(str::trim)
                .find_map(|l| l.strip_prefix(key))
                .map(String::from)
        };
        let version = if value("ikev2=").as_deref() == Some("no") {
            "-v1"
        } else {
            "-v2"
        };
        let ike = format!("ike={}", value("ike=").expect("ike="));
        if let Err(error) = algparse(tools, version, &ike) {
            panic!("algparse refused {ike}: {error}\n{section}");
        }
        let protocol = value("phase2=").expect("phase2=");
        let child = format!("{protocol}={}", value("phase2alg=").expect("phase2alg="));
        if let Err(error) = algparse(tools, version, &child) {
            panic!("algparse refused {child}: {error}\n{section}");
        }
    }
    let secrets = conf::secrets(specs).expect("secrets");
    assert_eq!(secrets.lines().count(), specs.len());
    assert!(!secrets.contains("a secret"), "the PSK is base64-encoded");
}

#[test]
fn every_policy_libreswan_can_negotiate_passes_its_own_checks() {
    let tools = tools();
    let encryptions = [
        "aes-128",
        "aes-192",
        "aes-256",
        "aes-128-ctr",
        "aes-256-ctr",
        "aes-128-gcm-8",
        "aes-192-gcm-12",
        "aes-256-gcm-16",
    ];
    let auths = ["sha256", "sha384", "sha512", "aes-xcbc"];
    let groups = [
        "group5", "group14", "group15", "group16", "group17", "group18", "group19", "group20",
        "group21", "group31",
    ];
    let mut checked = 0;
    for (i, enc) in encryptions.iter().enumerate() {
        for (j, auth) in auths.iter().enumerate() {
            let group = groups[(i + j) % groups.len()];
            let v1_can = !enc.contains("gcm") && *auth != "aes-xcbc" && group != "group31";
            let version = if (i + j) % 2 == 0 || !v1_can {
                "v2"
            } else {
                "v1"
            };
            let ike = json!({"encryption_algorithm": enc, "auth_algorithm": auth, "pfs": group, "ike_version": version});
            let ipsec = json!({"encryption_algorithm": enc, "auth_algorithm": auth, "pfs": group});
            let s = spec(ike, ipsec, json!({}));
            check(&tools, &[Conn::of(&s).expect("supported")], &[&s]);
            checked += 1;
        }
    }
    for child_only in ["aes-128-ccm-8", "aes-256-ccm-16"] {
        let s = spec(
            json!({}),
            json!({"encryption_algorithm": child_only}),
            json!({}),
        );
        check(&tools, &[Conn::of(&s).expect("ccm in ESP")], &[&s]);
        checked += 1;
    }
    let s = spec(json!({}), json!({"auth_algorithm": "aes-cmac"}), json!({}));
    check(&tools, &[Conn::of(&s).expect("cmac in ESP")], &[&s]);
    assert_eq!(checked, 34);
}

/// pluto ignores `dpdtimeout` with IKEv2 and gives up its liveness probe after
/// `retransmit-timeout`: that is the connection's timeout less its interval, so the peer is
/// dead `timeout` after its last word, as with IKEv1 (which reads `dpdtimeout`).
#[test]
fn ikev2_keeps_the_dpd_timeout_through_the_retransmit_timeout() {
    let dpd = json!({"dpd": {"action": "restart", "interval": 30, "timeout": 120}});
    let written = |version: &str| {
        let s = spec(json!({"ike_version": version}), json!({}), dpd.clone());
        conf::render(&[Conn::of(&s).expect("conn")])
    };
    assert!(
        written("v2").contains("\tretransmit-timeout=90s\n"),
        "{}",
        written("v2")
    );
    assert!(
        !written("v1").contains("retransmit-timeout"),
        "{}",
        written("v1")
    );
    let disabled = spec(json!({}), json!({}), json!({"dpd": {"action": "disabled"}}));
    let text = conf::render(&[Conn::of(&disabled).expect("conn")]);
    assert!(!text.contains("retransmit-timeout"), "{text}");
}

#[test]
fn every_connection_shape_passes_addconn() {
    let tools = tools();
    let shapes = [
        json!({}),
        json!({"local_cidrs": ["10.1.0.0/24", "10.11.0.0/24"], "peer_cidrs": ["10.2.0.0/24", "10.22.0.0/24", "10.32.0.0/16"]}),
        json!({"peer_id": "vpn.example.com", "local_id": "@left"}),
        json!({"peer_id": "ops@example.com"}),
        json!({"dpd": {"action": "disabled"}}),
        json!({"dpd": {"action": "restart", "interval": 5, "timeout": 20}}),
        json!({"dpd": {"action": "hold"}}),
        json!({"dpd": {"action": "restart-by-peer"}}),
        json!({"initiator": "response-only", "mtu": 1400}),
        json!({"local_address": "2001:db8::1", "local_id": "2001:db8::1", "peer_address": "2001:db8::2",
               "peer_id": "2001:db8::2", "local_cidrs": ["2001:db8:1::/64"], "peer_cidrs": ["2001:db8:2::/64"]}),
    ];
    let specs: Vec<ConnectionSpec> = shapes
        .into_iter()
        .map(|shape| spec(json!({}), json!({}), shape))
        .chain([
            spec(
                json!({"ike_version": "v1", "phase1_negotiation_mode": "aggressive"}),
                json!({}),
                json!({}),
            ),
            spec(
                json!({"lifetime": {"value": 86400}}),
                json!({"lifetime": {"value": 120}, "encapsulation_mode": "transport"}),
                json!({}),
            ),
            spec(json!({}), json!({"transform_protocol": "ah"}), json!({})),
        ])
        .collect();
    let conns: Vec<Conn> = specs.iter().map(|s| Conn::of(s).expect("conn")).collect();
    let refs: Vec<&ConnectionSpec> = specs.iter().collect();
    check(&tools, &conns, &refs);
    for (conn, spec) in conns.iter().zip(&refs) {
        check(&tools, std::slice::from_ref(conn), &[spec]);
    }
}

#[test]
fn what_libreswan_cannot_negotiate_is_refused_and_algparse_agrees() {
    let tools = tools();
    let cases = [
        (
            json!({"encryption_algorithm": "aes-128-ccm-8"}),
            json!({}),
            "encryption_algorithm",
            "ike=aes_ccm_a128-sha2_256;modp2048",
        ),
        (
            json!({"auth_algorithm": "aes-cmac"}),
            json!({}),
            "auth_algorithm",
            "ike=aes128-aes_cmac;modp2048",
        ),
        (
            json!({"pfs": "group2"}),
            json!({}),
            "pfs",
            "ike=aes128-sha2_256;modp1024",
        ),
        (
            json!({"pfs": "group24"}),
            json!({}),
            "pfs",
            "ike=aes128-sha2_256;dh24",
        ),
        (
            json!({}),
            json!({"pfs": "group22"}),
            "pfs",
            "esp=aes128-sha2_256;dh22",
        ),
        (
            json!({"ike_version": "v1", "encryption_algorithm": "aes-256-gcm-16"}),
            json!({}),
            "encryption_algorithm",
            "ike=aes_gcm_c256-sha2_256;modp2048",
        ),
        (
            json!({"ike_version": "v1", "auth_algorithm": "aes-xcbc"}),
            json!({}),
            "auth_algorithm",
            "ike=aes128-aes_xcbc;modp2048",
        ),
        (
            json!({"ike_version": "v1"}),
            json!({"pfs": "group31"}),
            "pfs",
            "esp=aes128-sha2_256;dh31",
        ),
    ];
    for (ike, ipsec, field, spelling) in cases {
        let version = if ike["ike_version"] == "v1" {
            "-v1"
        } else {
            "-v2"
        };
        let s = spec(ike, ipsec, json!({}));
        match Conn::of(&s) {
            Err(Error::Unsupported(u)) => assert_eq!(u.field, field),
            other => panic!("{field}: {other:?}"),
        }
        assert!(
            algparse(&tools, version, spelling).is_err(),
            "algparse accepts {spelling}: the refusal is stale"
        );
    }
}
