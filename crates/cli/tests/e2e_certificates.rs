//! End to end on real strongSwan, certificate authentication (`auth_mode` `cert`, a vpnaas
//! extension): two vpnaas sites authenticate with gateway certificates from their
//! project's CA and carry a ping; renewing a gateway certificate under a 20 packets/s
//! ping loses nothing, and the next authentication uses it. A peer whose certificate
//! comes from a CA the connection does not trust, or holds another identity, or has
//! expired, leaves the connection `DOWN` with `CERT_UNTRUSTED`, `ID_MISMATCH` or
//! `CERT_EXPIRED`. A peer without a PKI (a plain strongSwan the lab runs, configured from
//! the downloaded peer configuration) gets its certificate from `peer-credentials`.
//!
//! Needs root (CI runs as root); without it these tests fail and say why. Every name
//! carries a random prefix, and everything started is removed, even when a test fails.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vpnaas_model::Kind;

use common::*;

const FAR_HOST: &str = "10.200.0.10";

/// A `cert` connection `from` → `to` between two lab sites, trusting `peer_ca` (the
/// project's CA when `None`) and expecting `peer_id` (the peer's gateway address when
/// `None`).
async fn cert_connection(
    lab: &Lab,
    service: &str,
    (from, to): (usize, usize),
    policies: &(String, String),
    peer_id: Option<&str>,
) -> String {
    let peer = lab.site(to);
    let conn = lab
        .client
        .create(
            Kind::SiteConnection,
            json!({"name": format!("{from}-to-{to}"), "vpnservice_id": service, "ikepolicy_id": policies.0,
                   "ipsecpolicy_id": policies.1, "peer_address": peer["gateway_ip"],
                   "peer_id": peer_id.map_or(peer["gateway_ip"].clone(), |id| json!(id)),
                   "auth_mode": "cert", "peer_cidrs": [peer["cidr"]],
                   "dpd": {"action": "restart", "interval": 5, "timeout": 20}}),
        )
        .await
        .expect("cert connection");
    id(&conn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sites_authenticate_with_certificates_and_a_renewal_loses_no_packet() {
    let lab = Lab::start(2).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = cert_connection(&lab, &s1, (1, 2), &policies, None).await;
    let c21 = cert_connection(&lab, &s2, (2, 1), &policies, None).await;
    let took = lab
        .wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    eprintln!("certificate tunnel ACTIVE {took:?} after its connection was created");
    assert!(lab.ping(1, 2), "the certificate tunnel carries pings");

    // Each service shows its certificate, from the one CA of the project.
    let shown = lab.client.show(Kind::VpnService, &s1).await.expect("s1");
    let other = lab.client.show(Kind::VpnService, &s2).await.expect("s2");
    assert!(
        shown["local_certificate"]
            .as_str()
            .is_some_and(|pem| pem.starts_with("-----BEGIN CERTIFICATE-----")),
        "{shown}"
    );
    assert_eq!(shown["ca_certificate"], other["ca_certificate"]);
    assert_ne!(
        shown["local_certificate_fingerprint"],
        other["local_certificate_fingerprint"]
    );
    let conn = lab
        .client
        .show(Kind::SiteConnection, &c12)
        .await
        .expect("c12");
    assert_eq!(conn["auth_mode"], "cert");
    assert_eq!(conn["psk"], "", "a cert connection holds no key");
    let log = charon_log(&lab, 1);
    assert!(
        log.contains("authentication of") && log.contains("with ECDSA"),
        "charon authenticated with the ECDSA certificate: {log}"
    );

    // Renewing both gateways' certificates under a running ping: nothing is torn down.
    let pids = (charon_pid(&lab, 1), charon_pid(&lab, 2));
    let seen = (lab.events(&c12).await.len(), lab.events(&c21).await.len());
    let mut pinger = Pinger::start(&lab, 1, 2, 8);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let renewed = lab.client.renew_certificate(&s1).await.expect("renew s1");
    lab.client.renew_certificate(&s2).await.expect("renew s2");
    assert_ne!(
        renewed["local_certificate_fingerprint"], shown["local_certificate_fingerprint"],
        "a new certificate"
    );
    for conn in [&c12, &c21] {
        lab.wait_rotation(conn, "credentials_loaded", 1).await;
    }
    assert!(
        pinger.child.try_wait().expect("ping").is_none(),
        "both agents loaded the new certificates while the ping ran"
    );
    let (sent, received) = pinger.finish();
    assert!(sent >= 150, "the ping ran ({sent} sent)");
    assert_eq!(
        sent,
        received,
        "{} of {sent} packets lost while both gateways renewed their certificates",
        sent - received
    );
    for (conn, skip) in [(&c12, seen.0), (&c21, seen.1)] {
        assert_eq!(
            lab.events_since(conn, skip).await,
            ["ACTIVE>ACTIVE CREDENTIALS_LOADED"],
            "no bounce: the only event says the certificate was loaded"
        );
    }
    assert_eq!(
        (charon_pid(&lab, 1), charon_pid(&lab, 2)),
        pids,
        "charon kept"
    );

    // The next authentication, forced now, presents the renewed certificates.
    let seen = lab.events(&c12).await.len();
    lab.client
        .reauthenticate(&c12)
        .await
        .expect("reauthenticate");
    lab.wait_rotation(&c12, "reauthenticated", 1).await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(10))
        .await;
    let events = lab.events_since(&c12, seen).await;
    assert!(
        events.iter().any(|e| e == "ACTIVE>ACTIVE REAUTHENTICATED"),
        "re-authenticated with the renewed certificates: {events:?}"
    );
    until_ping(&lab, 1, 2, Duration::from_secs(10));

    // The connection goes, its service stays (and with it charon): the private key goes
    // with its last connection, it does not wait for the daemon's end.
    let pid = charon_pid(&lab, 1);
    lab.client
        .delete(Kind::SiteConnection, &c12)
        .await
        .expect("delete c12");
    let started = std::time::Instant::now();
    while !charon_log(&lab, 1).contains("unloaded private key with id") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "charon still holds the key of the deleted connection: {}",
            charon_log(&lab, 1)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(charon_pid(&lab, 1), pid, "charon runs on with the service");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_certificate_from_another_ca_or_for_another_identity_is_down_with_its_reason() {
    let lab = Lab::start(2).await;
    let pki = tempfile::tempdir().expect("temporary directory");
    let other_ca = make_ca(pki.path(), "another CA");
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = cert_connection(&lab, &s1, (1, 2), &policies, None).await;
    let c21 = cert_connection(&lab, &s2, (2, 1), &policies, None).await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;

    // Site 1 trusts another CA for its peer: site 2's certificate does not chain to it.
    lab.client
        .update(
            Kind::SiteConnection,
            &c12,
            json!({"peer_ca_certificate": other_ca}),
        )
        .await
        .expect("trust another CA");
    let events = lab
        .wait_reason(&c12, "CERT_UNTRUSTED", Duration::from_secs(30))
        .await;
    eprintln!("untrusted: {:?}", events.last());
    let peer = lab
        .client
        .show(Kind::SiteConnection, &c21)
        .await
        .expect("c21");
    assert_eq!(peer["status"], "DOWN", "{peer}");

    // Trusting the project's CA again, but expecting an identity site 2 does not hold.
    lab.client
        .update(
            Kind::SiteConnection,
            &c12,
            json!({"peer_ca_certificate": null, "peer_id": "@elsewhere.example"}),
        )
        .await
        .expect("another identity");
    let events = lab
        .wait_reason(&c12, "ID_MISMATCH", Duration::from_secs(30))
        .await;
    eprintln!("identity: {:?}", events.last());

    // Bad input changes nothing: a leaf certificate is no CA.
    let leaf =
        lab.client.show(Kind::VpnService, &s2).await.expect("s2")["local_certificate"].clone();
    let refused = lab
        .client
        .update(
            Kind::SiteConnection,
            &c12,
            json!({"peer_ca_certificate": leaf}),
        )
        .await
        .expect_err("a leaf is refused");
    assert!(
        refused.to_string().contains("peer_ca_certificate")
            && refused.to_string().contains("not a CA certificate"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_pki_gets_credentials_and_an_expired_certificate_is_refused() {
    let lab = Lab::start(1).await;
    let conn = lab.cert_connection_to_the_far_end().await;
    // The far end is configured from the download, with credentials the project's CA
    // issued it (`peer-credentials`, inside `lab unmanaged up`).
    let site = unmanaged_up(&lab, &conn, &[]);
    let config = std::fs::read_to_string(
        Path::new(site["directory"].as_str().expect("directory")).join("swanctl/swanctl.conf"),
    )
    .expect("swanctl.conf");
    assert!(
        config.contains("certs = vpnaas-peer.pem") && !config.contains("secrets"),
        "{config}"
    );
    lab.wait_status(&conn, "ACTIVE", Duration::from_secs(20))
        .await;
    assert!(
        ping_far_host(&lab),
        "the tunnel to the far end carries pings"
    );

    // The far end's own PKI, with a certificate that has expired.
    let pki = tempfile::tempdir().expect("temporary directory");
    let ca = make_ca(pki.path(), "far PKI");
    let (certificate, key) = make_leaf(pki.path(), "far.example", -1);
    unmanaged_down(&lab);
    lab.client
        .update(
            Kind::SiteConnection,
            &conn,
            json!({"peer_ca_certificate": ca}),
        )
        .await
        .expect("trust the far end's CA");
    unmanaged_up(&lab, &conn, &["--certificate", &certificate, "--key", &key]);
    let events = lab
        .wait_reason(&conn, "CERT_EXPIRED", Duration::from_secs(30))
        .await;
    eprintln!("expired: {:?}", events.last());
    unmanaged_down(&lab);
}

/// On Libreswan (IKE only on this kernel), two plutos authenticate IKE with the gateway
/// certificates imported into their NSS databases, and get as far as the kernel's refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libreswan_sites_authenticate_ike_with_certificates_from_their_nss_databases() {
    let root = std::env::var("VPNAAS_LIBRESWAN_ROOT").unwrap_or("/opt/vpnaas/libreswan".into());
    assert!(
        Path::new(&root).join("usr/libexec/ipsec/pluto").exists(),
        "Libreswan is not unpacked in {root}: run scripts/setup.sh"
    );
    let lab = Lab::start_with(2, Mode::AllInOne, &["--libreswan-root", &root]).await;
    let flavor = lab.libreswan_flavor().await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (
        lab.service_of_flavor(1, Some(&flavor)).await,
        lab.service_of_flavor(2, Some(&flavor)).await,
    );
    let c12 = cert_connection(&lab, &s1, (1, 2), &policies, None).await;
    let c21 = cert_connection(&lab, &s2, (2, 1), &policies, None).await;
    for conn in [&c12, &c21] {
        lab.wait_reason(conn, "KERNEL_REFUSED", Duration::from_secs(30))
            .await;
    }
    for site in [1, 2] {
        let router = lab.site(site)["router_id"].as_str().expect("router");
        let dir = lab._dir.path().join("state").join(router).join("libreswan");
        let log = std::fs::read_to_string(dir.join("pluto.log")).unwrap_or_default();
        assert!(
            log.contains("ECDSA") && log.contains("digital signature using peer certificate"),
            "site {site}: pluto authenticated the peer's certificate:\n{log}"
        );
        assert!(
            !dir.join("nss/import.p12").exists(),
            "the key bundle is removed once imported"
        );
    }
    // Libreswan trusts the project's CA only: another is refused, and nothing changes.
    let pki = tempfile::tempdir().expect("temporary directory");
    let other_ca = make_ca(pki.path(), "another CA");
    let refused = lab
        .client
        .update(
            Kind::SiteConnection,
            &c12,
            json!({"peer_ca_certificate": other_ca}),
        )
        .await
        .expect_err("refused on Libreswan");
    assert!(
        refused.to_string().contains("peer_ca_certificate"),
        "{refused}"
    );
}

/// `vpnaas lab unmanaged up 1 CONN` (with `extra` flags): the site it built.
fn unmanaged_up(lab: &Lab, conn: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "-f",
        "json",
        "lab",
        "unmanaged",
        "up",
        "1",
        conn,
        "--prefix",
        &lab.prefix,
        "--fabric-namespace",
        &lab.fabric,
    ];
    args.extend_from_slice(extra);
    let out = vpnaas(&lab.url, &args);
    assert!(
        out.status.success(),
        "lab unmanaged up: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("lab unmanaged up -f json")
}

fn unmanaged_down(lab: &Lab) {
    let out = vpnaas(
        &lab.url,
        &["lab", "unmanaged", "down", "1", "--prefix", &lab.prefix],
    );
    assert!(
        out.status.success(),
        "lab unmanaged down: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ping_far_host(lab: &Lab) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        let pinged = vpnaas(
            &lab.url,
            &[
                "lab",
                "exec",
                "1",
                "--prefix",
                &lab.prefix,
                "--",
                "ping",
                "-c",
                "1",
                "-W",
                "1",
                FAR_HOST,
            ],
        )
        .status
        .success();
        if pinged {
            return true;
        }
    }
    false
}

fn charon_log(lab: &Lab, site: usize) -> String {
    let router = lab.site(site)["router_id"].as_str().expect("router");
    std::fs::read_to_string(
        lab._dir
            .path()
            .join("state")
            .join(router)
            .join("strongswan/charon.log"),
    )
    .unwrap_or_default()
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl command");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA of the test's own (`ca.pem`, `ca.key` in `dir`): its certificate, PEM.
fn make_ca(dir: &Path, name: &str) -> String {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    std::fs::read_to_string(dir.join("ca.pem")).expect("ca.pem")
}

/// A certificate for DNS name `name` from the CA in `dir`, valid for `days` (negative:
/// expired that long ago); returns the paths of the certificate and its key.
fn make_leaf(dir: &Path, name: &str, days: i32) -> (String, String) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    std::fs::write(dir.join("leaf.ext"), format!("subjectAltName=DNS:{name}\n")).expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-days",
            &days.to_string(),
            "-extfile",
            "leaf.ext",
            "-out",
            "leaf.pem",
        ],
    );
    let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
    (path("leaf.pem"), path("leaf.key"))
}
