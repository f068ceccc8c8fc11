//! The renderers on one connection: the vendor formats against golden files (each line
//! justified in the `.md` beside it), the daemon formats' handling of the key and of
//! values they cannot express. `VPNAAS_UPDATE_GOLDEN=1` rewrites the golden files.

use std::path::PathBuf;

use base64::Engine as _;
use serde_json::json;
use vpnaas_model::agent::ConnectionSpec;
use vpnaas_model::policy::{IkePolicy, IpsecPolicy};
use vpnaas_model::site_connection::Psk;

use super::*;

const KEY: &str = "a 'long' shared secret!";

fn spec() -> ConnectionSpec {
    let ike: IkePolicy = serde_json::from_value(json!({
        "id": "i", "tenant_id": "p", "project_id": "p", "name": "", "description": "",
        "auth_algorithm": "sha256", "encryption_algorithm": "aes-256",
        "phase1_negotiation_mode": "main", "lifetime": {"units": "seconds", "value": 28800},
        "ike_version": "v2", "pfs": "group14"
    }))
    .expect("ike policy");
    let ipsec: IpsecPolicy = serde_json::from_value(json!({
        "id": "j", "tenant_id": "p", "project_id": "p", "name": "", "description": "",
        "transform_protocol": "esp", "encapsulation_mode": "tunnel",
        "auth_algorithm": "sha256", "encryption_algorithm": "aes-128",
        "lifetime": {"units": "seconds", "value": 3600}, "pfs": "group14"
    }))
    .expect("ipsec policy");
    serde_json::from_value(json!({
        "id": "5f0c2a9e-7d41-4c3b-9a57-0e6b8d2f4c11", "service_id": "s", "enabled": true,
        "local_address": "203.0.113.2", "local_id": "vpn.example.net",
        "peer_address": "198.51.100.7", "peer_id": "198.51.100.7", "psk": KEY,
        "local_cidrs": ["10.1.0.0/24"], "peer_cidrs": ["10.200.0.0/24", "10.201.0.0/24"],
        "ike": ike, "ipsec": ipsec,
        "dpd": {"action": "restart", "interval": 10, "timeout": 40},
        "initiator": "bi-directional", "mtu": 1500
    }))
    .expect("spec")
}

fn far(secret: Secret) -> FarEnd {
    FarEnd::of(&spec(), secret, None).expect("far end")
}

fn included() -> Secret {
    Secret::Included(Psk::new(KEY))
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{name}"))
}

/// The rendering of `format` for `far` is the golden file, line for line.
fn assert_golden(format: Format, far: &FarEnd, file: &str) {
    let text = render(format, far).expect("renders");
    let path = golden(file);
    if std::env::var_os("VPNAAS_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).expect("write golden");
    }
    let expected = std::fs::read_to_string(&path).expect("golden file");
    assert_eq!(text, expected, "{format:?} differs from {}", path.display());
}

/// The vendor formats' golden files and the notes justifying their lines.
const GOLDEN: [(&str, &str); 6] = [
    ("vyos.txt", "vyos.md"),
    ("cisco-ios.txt", "cisco-ios.md"),
    ("juniper-srx.txt", "juniper-srx.md"),
    ("vyos-cert.txt", "vyos-cert.md"),
    ("cisco-ios-cert.txt", "cisco-ios-cert.md"),
    ("juniper-srx-cert.txt", "juniper-srx-cert.md"),
];

#[test]
fn vendor_formats_match_their_golden_files() {
    assert_golden(Format::Vyos, &far(included()), "vyos.txt");
    assert_golden(Format::CiscoIos, &far(Secret::Placeholder), "cisco-ios.txt");
    assert_golden(Format::JuniperSrx, &far(included()), "juniper-srx.txt");
}

#[test]
fn vendor_formats_match_their_golden_files_with_certificates() {
    let far = cert_far(&vpnaas_ca(), &|_| {}).expect("far end");
    assert_golden(Format::Vyos, &far, "vyos-cert.txt");
    assert_golden(Format::CiscoIos, &far, "cisco-ios-cert.txt");
    assert_golden(Format::JuniperSrx, &far, "juniper-srx-cert.txt");
}

#[test]
fn every_golden_line_is_justified_in_its_note() {
    for (golden_file, note) in GOLDEN {
        let text = std::fs::read_to_string(golden(golden_file)).expect("golden");
        let note = std::fs::read_to_string(golden(note)).expect("note");
        assert!(
            !note.contains("NOT VERIFIED"),
            "{golden_file}: a line of its note is not verified against the vendor's documentation"
        );
        for (n, _) in text.lines().enumerate() {
            assert!(
                note.contains(&format!("| {} |", n + 1)),
                "{golden_file} line {} has no justification in its note",
                n + 1
            );
        }
    }
}

#[test]
fn the_far_end_sees_the_tunnel_from_its_side() {
    let far = far(Secret::Placeholder);
    assert_eq!(far.local_address.to_string(), "198.51.100.7");
    assert_eq!(far.remote_address.to_string(), "203.0.113.2");
    assert_eq!(far.remote_id.as_str(), "vpn.example.net");
    assert_eq!(far.local_cidrs.len(), 2);
    let conf = render(Format::Strongswan, &far).expect("swanctl.conf");
    for line in [
        "local_addrs = 198.51.100.7",
        "remote_addrs = 203.0.113.2",
        "local_ts = 10.200.0.0/24,10.201.0.0/24",
        "remote_ts = 10.1.0.0/24",
        "proposals = aes256-sha256-modp2048",
        "esp_proposals = aes128-sha256-modp2048",
        "dpd_delay = 10s",
        "rekey_time = 28800s",
        "life_time = 3600s",
        "id = vpn.example.net",
        "start_action = trap",
    ] {
        assert!(conf.contains(line), "no '{line}' in\n{conf}");
    }
}

#[test]
fn the_key_is_written_only_when_included_and_never_in_clear_text() {
    for format in [Format::Strongswan, Format::Libreswan] {
        let without = render(format, &far(Secret::Placeholder)).expect("renders");
        assert!(without.contains(PLACEHOLDER), "{without}");
        let with = render(format, &far(included())).expect("renders");
        assert!(!with.contains(PLACEHOLDER) && !with.contains(KEY), "{with}");
        let encoded = base64::engine::general_purpose::STANDARD.encode(KEY);
        assert!(with.contains(&format!("0s{encoded}")), "{with}");
    }
}

#[test]
fn a_key_a_command_line_cannot_carry_is_refused_by_name() {
    let refused = render(Format::CiscoIos, &far(included())).expect_err("quote in key");
    assert_eq!(refused.field, "psk");
    // VyOS and Junos take it encoded.
    assert!(render(Format::Vyos, &far(included())).is_ok());
    assert!(render(Format::JuniperSrx, &far(included())).is_ok());
}

#[test]
fn values_a_format_cannot_express_are_named() {
    let mut ours = spec();
    ours.ike.pfs = vpnaas_model::enums::PfsGroup::Group22;
    let far = FarEnd::of(&ours, Secret::Placeholder, None).expect("far end");
    for format in [Format::Libreswan, Format::CiscoIos, Format::JuniperSrx] {
        let refused = render(format, &far).expect_err("group22");
        assert_eq!(refused.field, "pfs", "{format:?}: {refused}");
    }
    assert!(render(Format::Strongswan, &far).is_ok());
}

#[test]
fn values_outside_a_vendor_range_are_named() {
    let refused = |format: Format, change: &dyn Fn(&mut ConnectionSpec)| {
        let mut ours = spec();
        change(&mut ours);
        let far = FarEnd::of(&ours, Secret::Placeholder, None).expect("far end");
        render(format, &far)
            .expect_err("outside the vendor's range")
            .field
    };
    // IOS: DPD interval 10-3600, IKEv2 SA lifetime 120-86400, no group 5 in an IKEv2 proposal.
    assert_eq!(refused(Format::CiscoIos, &|s| s.dpd.interval = 5), "dpd");
    assert_eq!(
        refused(Format::CiscoIos, &|s| s.ike.lifetime.value = 60),
        "lifetime"
    );
    assert_eq!(
        refused(Format::CiscoIos, &|s| s.ike.pfs =
            vpnaas_model::enums::PfsGroup::Group5),
        "pfs"
    );
    // Junos: DPD interval 2-60, IPsec lifetime 180-86400, PFS groups 1, 2, 5 and 14, no
    // traffic selector towards 0.0.0.0/0.
    assert_eq!(
        refused(Format::JuniperSrx, &|s| s.dpd.interval = 120),
        "dpd"
    );
    assert_eq!(
        refused(Format::JuniperSrx, &|s| s.ipsec.lifetime.value = 100),
        "lifetime"
    );
    assert_eq!(
        refused(Format::JuniperSrx, &|s| s.ipsec.pfs =
            vpnaas_model::enums::PfsGroup::Group19),
        "pfs"
    );
    assert_eq!(
        refused(Format::JuniperSrx, &|s| s.local_cidrs =
            vec!["0.0.0.0/0".parse().expect("cidr")]),
        "local_cidrs"
    );
}

#[test]
fn a_response_only_connection_makes_the_far_end_initiate() {
    let mut ours = spec();
    ours.initiator = vpnaas_model::enums::Initiator::ResponseOnly;
    let far = FarEnd::of(&ours, Secret::Placeholder, None).expect("far end");
    assert!(
        render(Format::Strongswan, &far)
            .expect("renders")
            .contains("start_action = start")
    );
    assert!(
        render(Format::Libreswan, &far)
            .expect("renders")
            .contains("auto=start")
    );
    assert!(
        render(Format::Vyos, &far)
            .expect("renders")
            .contains("connection-type 'initiate'")
    );
}

#[test]
fn an_identity_outside_the_grammar_is_refused() {
    let mut ours = spec();
    ours.peer_id = "x\nconn evil".into();
    let refused = FarEnd::of(&ours, Secret::Placeholder, None).expect_err("hostile id");
    assert_eq!(refused.field, "peer_id");
}

#[test]
fn ikev1_gets_one_child_per_pair_of_cidrs() {
    let mut ours = spec();
    ours.ike.ike_version = vpnaas_model::enums::IkeVersion::V1;
    let far = FarEnd::of(&ours, Secret::Placeholder, None).expect("far end");
    let conf = render(Format::Strongswan, &far).expect("renders");
    assert!(
        conf.contains("5f0c2a9e-7d41-4c3b-9a57-0e6b8d2f4c11-2 {"),
        "{conf}"
    );
    assert!(conf.contains("dpd_timeout = 40s"), "{conf}");
    let libreswan = render(Format::Libreswan, &far).expect("renders");
    assert!(libreswan.contains("ikev1-policy=accept"), "{libreswan}");
}

/// The vpnaas project's CA of the certificate tests (a P-256 CA as `pki` makes them).
fn vpnaas_ca() -> String {
    std::fs::read_to_string(golden("vpnaas-ca.pem")).expect("CA fixture")
}

/// The far end of a `cert` connection whose peer's certificate must chain to `peer_ca`.
fn cert_far(peer_ca: &str, change: &dyn Fn(&mut ConnectionSpec)) -> Result<FarEnd, Unsupported> {
    let mut ours = spec();
    ours.psk = Psk::default();
    ours.certificate = Some(vpnaas_model::certificate::CertificateAuth {
        local_certificate: "our gateway's certificate".into(),
        local_key: vpnaas_model::certificate::PrivateKey::new("our gateway's key"),
        peer_ca: peer_ca.into(),
    });
    change(&mut ours);
    FarEnd::of(&ours, Secret::Placeholder, Some(&vpnaas_ca()))
}

#[test]
fn libreswan_signs_with_the_nss_certificate_and_trusts_the_project_ca() {
    let far = cert_far(&vpnaas_ca(), &|_| {}).expect("far end");
    let text = render(Format::Libreswan, &far).expect("renders");
    for line in [
        "\tauthby=ecdsa\n",
        "\tleftcert=vpnaas-peer\n",
        "\tleftsendcert=always\n",
        "\tleftid=198.51.100.7\n",
        "\trightid=@vpn.example.net\n",
        "#   certutil -A -d sql:/var/lib/ipsec/nss -n vpnaas-ca -t CT,, -a -i vpnaas-ca.pem\n",
        "#   ipsec import vpnaas-peer.p12\n",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
    // The certificate came from the project's CA, as ours: Libreswan's implied
    // `rightca=%same` holds, and no secret is written.
    assert!(!text.contains("rightca") && !text.contains("PSK"), "{text}");
    assert!(!text.contains(PLACEHOLDER), "{text}");
    let (_, ca) = text
        .split_once("# ==> vpnaas-ca.pem <==\n")
        .expect("the CA part");
    assert_eq!(ca, vpnaas_ca(), "the project's CA, inline");
}

#[test]
fn libreswan_names_the_project_ca_for_a_far_end_of_its_own_pki() {
    let other = crate::pki::new_authority("another-project").expect("CA");
    let far = cert_far(&other.certificate, &|_| {}).expect("far end");
    assert!(far.certificates.as_ref().is_some_and(|c| c.own_pki));
    let text = render(Format::Libreswan, &far).expect("renders");
    assert!(
        text.contains("\trightca=\"O=vpnaas, CN=vpnaas CA 3f2a9c1e5b7d4e0f8a6c2b1d9e4f7a30\"\n"),
        "{text}"
    );
}

#[test]
fn libreswan_refuses_certificates_over_ikev1_by_name() {
    let far = cert_far(&vpnaas_ca(), &|s| {
        s.ike.ike_version = vpnaas_model::enums::IkeVersion::V1
    })
    .expect("far end");
    let refused = render(Format::Libreswan, &far).expect_err("IKEv1 with ECDSA");
    assert_eq!(refused.field, "ike_version", "{refused}");
}

#[test]
fn a_cert_far_end_without_the_service_ca_is_named() {
    let mut ours = spec();
    ours.certificate = Some(vpnaas_model::certificate::CertificateAuth {
        local_certificate: String::new(),
        local_key: vpnaas_model::certificate::PrivateKey::new(""),
        peer_ca: vpnaas_ca(),
    });
    let refused = FarEnd::of(&ours, Secret::Placeholder, None).expect_err("no CA");
    assert_eq!(refused.field, "ca_certificate");
}

const VENDOR_FORMATS: [Format; 3] = [Format::Vyos, Format::CiscoIos, Format::JuniperSrx];

#[test]
fn vendor_formats_with_certificates_write_no_key() {
    let far = cert_far(&vpnaas_ca(), &|_| {}).expect("far end");
    for format in VENDOR_FORMATS {
        let text = render(format, &far).expect("renders");
        assert!(
            !text.contains(PLACEHOLDER) && !text.contains("pre-share"),
            "{format:?}: {text}"
        );
        assert!(text.contains("/peer-credentials"), "{format:?}: {text}");
    }
}

#[test]
fn vendor_formats_have_a_far_end_of_its_own_pki_load_its_own_certificate() {
    let other = crate::pki::new_authority("another-project").expect("CA");
    let far = cert_far(&other.certificate, &|_| {}).expect("far end");
    for format in VENDOR_FORMATS {
        let text = render(format, &far).expect("renders");
        assert!(text.contains("your PKI's"), "{format:?}: {text}");
        assert!(!text.contains("/peer-credentials"), "{format:?}: {text}");
        // It still trusts the project's CA for the vpnaas gateway.
        assert!(text.contains("vpnaas-ca"), "{format:?}: {text}");
    }
}
