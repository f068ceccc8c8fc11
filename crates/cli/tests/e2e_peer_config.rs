//! End to end: a connection's downloaded peer configuration is all an unmanaged site
//! needs. `vpnaas lab unmanaged up` runs a plain charon (or pluto) that vpnaas does not
//! manage, in namespaces of its own on the lab's internet, configured only from
//! `site-connection peer-config`; the tunnel to the vpnaas site comes up and carries a
//! ping (Libreswan: its IKE SA comes up, as far as a kernel without ESP lets it). A
//! `cert` connection's Libreswan far end, configured from the download and the
//! credentials `peer-credentials` issued it, authenticates the IKE SA with certificates.
//!
//! Needs root (CI runs as root); without it these tests fail and say why. Every name
//! carries a random prefix, and everything started is removed, even when a test fails.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vpnaas_model::Kind;

use common::*;

/// The unmanaged site's host (its gateway and network: `common`'s `FAR_ADDRESS`, `FAR_CIDR`).
const FAR_HOST: &str = "10.200.0.10";

/// A connection from site 1 to the unmanaged site.
async fn connection_to_the_far_end(lab: &Lab, ike: Value) -> String {
    let policies = lab.policies(ike, json!({"pfs": "group14"})).await;
    let service = lab.service(1).await;
    let conn = lab
        .client
        .create(
            Kind::SiteConnection,
            json!({"name": "to-unmanaged", "vpnservice_id": service, "ikepolicy_id": policies.0,
                   "ipsecpolicy_id": policies.1, "peer_address": FAR_ADDRESS, "peer_id": FAR_ADDRESS,
                   "psk": "an unmanaged 'secret' #1", "peer_cidrs": [FAR_CIDR],
                   "dpd": {"action": "restart", "interval": 5, "timeout": 20}}),
        )
        .await
        .expect("connection");
    id(&conn)
}

/// `vpnaas lab unmanaged up 1 CONN --daemon D`: the site it built.
fn unmanaged_up(lab: &Lab, conn: &str, daemon: &str) -> Value {
    let out = vpnaas(
        &lab.url,
        &[
            "-f",
            "json",
            "lab",
            "unmanaged",
            "up",
            "1",
            conn,
            "--daemon",
            daemon,
            "--prefix",
            &lab.prefix,
            "--fabric-namespace",
            &lab.fabric,
        ],
    );
    assert!(
        out.status.success(),
        "lab unmanaged up: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("lab unmanaged up -f json")
}

fn ping_far_host(lab: &Lab) -> bool {
    vpnaas(
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
            "2",
            "-i",
            "0.2",
            "-W",
            "1",
            FAR_HOST,
        ],
    )
    .status
    .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_strongswan_configured_from_the_download_brings_the_tunnel_up() {
    let lab = Lab::start(1).await;
    let conn = connection_to_the_far_end(&lab, json!({"ike_version": "v2"})).await;
    let site = unmanaged_up(&lab, &conn, "strongswan");
    assert_eq!(site["host_ip"], FAR_HOST, "{site}");
    // The site's only connection settings are the download's, byte for byte.
    let dir = std::path::PathBuf::from(site["directory"].as_str().expect("directory"));
    let loaded = std::fs::read_to_string(dir.join("swanctl/swanctl.conf")).expect("swanctl.conf");
    let downloaded = lab
        .client
        .peer_config(&conn, "strongswan", true)
        .await
        .expect("download");
    assert_eq!(loaded, downloaded);
    let cli = vpnaas(
        &lab.url,
        &[
            "site-connection",
            "peer-config",
            "to-unmanaged",
            "--format",
            "strongswan",
            "--include-secret",
        ],
    );
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&cli.stdout), loaded);
    let took = lab
        .wait_status(&conn, "ACTIVE", Duration::from_secs(30))
        .await;
    let started = Instant::now();
    while !ping_far_host(&lab) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no ping through the tunnel to the unmanaged site (ACTIVE after {took:?})"
        );
    }
    // `lab down` removes the unmanaged site too.
    lab.lab_command(&["down"]);
    let left: Vec<String> = lab
        .namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&format!("{}-u", lab.prefix)))
        .collect();
    assert!(left.is_empty(), "lab down left {left:?}");
}

/// pluto's view of its SAs.
fn whack_status(site: &Value) -> String {
    let root = std::env::var("VPNAAS_LIBRESWAN_ROOT").unwrap_or("/opt/vpnaas/libreswan".into());
    let dir = std::path::PathBuf::from(site["directory"].as_str().expect("directory"));
    let out = Command::new(format!("{root}/usr/libexec/ipsec/whack"))
        .arg("--ctlsocket")
        .arg(dir.join("run/pluto.ctl"))
        .arg("--status")
        .output()
        .expect("whack");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn require_libreswan() {
    let root = std::env::var("VPNAAS_LIBRESWAN_ROOT").unwrap_or("/opt/vpnaas/libreswan".into());
    assert!(
        std::path::Path::new(&root)
            .join("usr/libexec/ipsec/pluto")
            .exists(),
        "Libreswan is not unpacked in {root}: run scripts/setup.sh"
    );
}

/// Waits for pluto's IKE SA, up to 30 s.
async fn wait_for_ike_sa(site: &Value) {
    let started = Instant::now();
    loop {
        let status = whack_status(site);
        if status.contains("STATE_V2_ESTABLISHED_IKE_SA") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no IKE SA on the unmanaged pluto after 30 s:\n{status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_libreswan_configured_from_the_download_establishes_ike() {
    require_libreswan();
    let lab = Lab::start(1).await;
    let conn = connection_to_the_far_end(&lab, json!({"ike_version": "v2"})).await;
    let site = unmanaged_up(&lab, &conn, "libreswan");
    wait_for_ike_sa(&site).await;
}

/// The vpnaas side is a strongSwan site; the far end a plain pluto that has only the
/// download (ipsec.conf, ipsec.secrets without a secret, the project's CA) and the
/// PKCS#12 bundle of `peer-credentials`, imported as the download's comments say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_libreswan_with_peer_credentials_authenticates_ike_with_certificates() {
    require_libreswan();
    let lab = Lab::start(1).await;
    let conn = lab.cert_connection_to_the_far_end().await;
    let site = unmanaged_up(&lab, &conn, "libreswan");
    let dir = std::path::PathBuf::from(site["directory"].as_str().expect("directory"));
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).expect(file);
    assert!(
        read("ipsec.conf").contains("\tauthby=ecdsa\n\tleftcert=vpnaas-peer\n"),
        "{}",
        read("ipsec.conf")
    );
    assert!(!read("ipsec.secrets").contains("PSK"), "no secret");
    assert!(
        !dir.join("vpnaas-peer.p12").exists(),
        "the key bundle is removed once imported"
    );
    wait_for_ike_sa(&site).await;
    // Both ends checked the other's ECDSA signature against its certificate: pluto ours
    // (from the project's CA it imported), charon the far end's (from peer-credentials).
    let pluto = read("pluto.log");
    assert!(
        pluto.contains("authenticated peer 'P-256 ECDSA with SHA2_256' digital signature using peer certificate")
            && pluto.contains("issued by CA 'O=vpnaas, CN=vpnaas CA"),
        "pluto authenticated the gateway's certificate:\n{pluto}"
    );
    let router = lab.site(1)["router_id"].as_str().expect("router");
    let charon_log = lab
        ._dir
        .path()
        .join("state")
        .join(router)
        .join("strongswan/charon.log");
    let started = Instant::now();
    loop {
        // charon logs it when pluto's IKE_AUTH answer arrives, just after pluto's state.
        let charon = std::fs::read_to_string(&charon_log).unwrap_or_default();
        if charon.contains("authentication of 'far.example' with ECDSA_WITH_SHA256_DER successful")
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "charon did not authenticate the far end's certificate:\n{charon}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
