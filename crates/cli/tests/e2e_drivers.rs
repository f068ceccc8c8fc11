//! End to end on real Libreswan and strongSwan: pluto routers establish IKE and report the
//! kernel's refusal of ESP, a change touches one connection, a killed pluto comes back, an
//! agent restart leaves plutos alone, and routers migrate from Libreswan to strongSwan (or
//! roll back when they cannot).
//!
//! Needs root (CI runs as root); without it these tests fail and say why. Every name
//! carries a random prefix, and everything started is removed, even when a test fails.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use vpnaas_model::Kind;

use common::*;

fn libreswan_root() -> String {
    let root = std::env::var("VPNAAS_LIBRESWAN_ROOT").unwrap_or("/opt/vpnaas/libreswan".into());
    assert!(
        std::path::Path::new(&root)
            .join("usr/libexec/ipsec/pluto")
            .exists(),
        "Libreswan is not unpacked in {root}: run scripts/setup.sh"
    );
    root
}

fn whack_status(lab: &Lab, site: usize) -> String {
    let router = lab.site(site)["router_id"].as_str().expect("router");
    let dir = lab._dir.path().join("state").join(router).join("libreswan");
    let out = Command::new(format!("{}/usr/libexec/ipsec/whack", libreswan_root()))
        .arg("--ctlsocket")
        .arg(dir.join("run/pluto.ctl"))
        .arg("--status")
        .output()
        .expect("whack");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// This kernel has no ESP: two plutos establish the IKE SA, the kernel refuses the child
/// SAs (errno 93), and the driver says so (KERNEL_REFUSED, with the kernel's words) on both
/// sides instead of claiming a tunnel, or blaming the traffic selectors (the notify the
/// refusing side sends its peer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libreswan_routers_establish_ike_and_report_the_kernels_refusal() {
    let refusal = kernel_esp_refusal().await;
    let root = libreswan_root();
    let lab = Lab::start_with(2, Mode::AllInOne, &["--libreswan-root", &root]).await;
    let flavor = lab.libreswan_flavor().await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (
        lab.service_of_flavor(1, Some(&flavor)).await,
        lab.service_of_flavor(2, Some(&flavor)).await,
    );
    let c12 = lab.connect(&s1, 1, 2, &policies, "pluto-secret").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "pluto-secret").await;
    let started = Instant::now();
    let mut details = Vec::new();
    for conn in [&c12, &c21] {
        let events = lab
            .wait_reason(conn, "KERNEL_REFUSED", Duration::from_secs(30))
            .await;
        let refused = events
            .iter()
            .find(|e| e["reason"] == "KERNEL_REFUSED")
            .expect("a KERNEL_REFUSED event");
        assert_eq!(refused["to"], "DOWN", "{refused}");
        let detail = refused["detail"].as_str().unwrap_or("").to_string();
        assert!(
            detail.contains("errno 93") || detail.contains(&refusal),
            "the event holds the kernel's words: {refused}"
        );
        details.push(detail);
    }
    assert!(
        details
            .iter()
            .any(|d| d.contains("Add SA") && d.contains("errno 93")),
        "the side whose kernel pluto asked first reports the kernel's own error: {details:?}"
    );
    for site in [1, 2] {
        let status = whack_status(&lab, site);
        assert!(
            status.contains("established IKE SA") || status.contains("ISAKMP SA established"),
            "site {site}: no IKE SA in\n{status}"
        );
    }
    eprintln!(
        "libreswan: KERNEL_REFUSED reported on both sides {:?} after the connections were created: {details:#?}",
        started.elapsed()
    );
}

fn pluto_pid(lab: &Lab, site: usize) -> String {
    let router = lab.site(site)["router_id"].as_str().expect("router");
    std::fs::read_to_string(
        lab._dir
            .path()
            .join("state")
            .join(router)
            .join("libreswan/run/pluto.pid"),
    )
    .unwrap_or_default()
    .trim()
    .to_string()
}

/// Serials of the established IKE SAs of a connection in `whack --status`.
fn ike_serials(status: &str, conn: &str) -> Vec<String> {
    status
        .lines()
        .filter(|l| l.contains(&format!("\"{conn}")) && l.contains("established IKE SA"))
        .filter_map(|l| l.split('#').nth(1))
        .filter_map(|rest| rest.split(':').next())
        .map(String::from)
        .collect()
}

async fn wait_ike(lab: &Lab, site: usize, conn: &str, within: Duration) -> Vec<String> {
    let started = Instant::now();
    loop {
        let serials = ike_serials(&whack_status(lab, site), conn);
        if !serials.is_empty() {
            return serials;
        }
        assert!(
            started.elapsed() < within,
            "no IKE SA for {conn} at site {site} after {within:?}:\n{}",
            whack_status(lab, site)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The driver-level suite as far as this kernel allows Libreswan (IKE only): a change to
/// one connection leaves pluto and the other connection's IKE SA alone, a wrong PSK is
/// reported as such once re-authenticated, a killed pluto is restarted at once, and nothing is left afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libreswan_changes_touch_one_connection_and_a_killed_pluto_comes_back() {
    let root = libreswan_root();
    let lab = Lab::start_with(3, Mode::AllInOne, &["--libreswan-root", &root]).await;
    let c = &lab.client;
    let flavor = lab.libreswan_flavor().await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let services = [
        lab.service_of_flavor(1, Some(&flavor)).await,
        lab.service_of_flavor(2, Some(&flavor)).await,
        lab.service_of_flavor(3, Some(&flavor)).await,
    ];
    let conn1 = lab
        .connect(&services[0], 1, 2, &policies, "secret-one")
        .await;
    lab.connect(&services[1], 2, 1, &policies, "secret-one")
        .await;
    let conn2 = lab
        .connect(&services[0], 1, 3, &policies, "secret-two")
        .await;
    let back2 = lab
        .connect(&services[2], 3, 1, &policies, "secret-two")
        .await;
    let serials = wait_ike(&lab, 1, &conn1, Duration::from_secs(20)).await;
    wait_ike(&lab, 1, &conn2, Duration::from_secs(20)).await;
    let pid = pluto_pid(&lab, 1);
    assert!(!pid.is_empty());

    for change in [
        json!({"peer_cidrs": ["10.3.0.0/24", "10.33.0.0/24"]}),
        json!({"dpd": {"action": "restart", "interval": 7, "timeout": 30}}),
        json!({"admin_state_up": false}),
        json!({"admin_state_up": true}),
        json!({"psk": "not-what-site-3-has"}),
    ] {
        c.update(Kind::SiteConnection, &conn2, change)
            .await
            .expect("update connection 2");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A new key alone leaves the IKE SA up (pluto only reads its secrets again); the next
    // authentication, forced now, is the one that fails.
    c.reauthenticate(&conn2).await.expect("reauthenticate");
    lab.wait_status(&back2, "DOWN", Duration::from_secs(5))
        .await;
    let started = Instant::now();
    loop {
        let mut seen = Vec::new();
        for conn in [&conn2, &back2] {
            let shown = c.show(Kind::SiteConnection, conn).await.expect("show");
            seen.push(shown["status_reason"].as_str().unwrap_or("").to_string());
        }
        if seen.iter().any(|r| r == "AUTH_FAILED") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a PSK mismatch is not reported as AUTH_FAILED: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        pluto_pid(&lab, 1),
        pid,
        "pluto was restarted by a connection change"
    );
    let now = ike_serials(&whack_status(&lab, 1), &conn1);
    assert!(
        serials.iter().all(|s| now.contains(s)),
        "connection 1's IKE SA changed ({serials:?} → {now:?}) while connection 2 did"
    );

    assert!(
        Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let killed = Instant::now();
    let restarted = loop {
        let new_pid = pluto_pid(&lab, 1);
        if !new_pid.is_empty()
            && new_pid != pid
            && std::path::Path::new(&format!("/proc/{new_pid}")).exists()
        {
            break new_pid;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "pluto was not restarted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    wait_ike(&lab, 1, &conn1, Duration::from_secs(20)).await;
    eprintln!("kill -9 of pluto -> IKE SA again: {:?}", killed.elapsed());
    lab.wait_metric(
        &lab.url,
        "vpnaas_agent_daemon_restarts_total 1",
        Duration::from_secs(2),
    )
    .await;

    // The daemon runs while the router has a VPN service: it goes with the last one.
    for kind in [Kind::SiteConnection, Kind::VpnService] {
        for object in c.list(kind, &[]).await.expect("list") {
            c.delete(kind, &id(&object)).await.expect("delete");
        }
    }
    let running = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                != Some("Z")
        })
    };
    let started = Instant::now();
    while running(&restarted) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "pluto {restarted} still runs after the router's VPN was deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two routers on Libreswan (IKE up, no data path on this kernel) move to strongSwan
/// with `vpnaas router migrate-driver`: the tunnel comes up and carries pings, and pluto
/// is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_two_libreswan_routers_to_strongswan_brings_the_tunnel_up() {
    let root = libreswan_root();
    let lab = Lab::start_with(2, Mode::AllInOne, &["--libreswan-root", &root]).await;
    let flavor = lab.libreswan_flavor().await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (
        lab.service_of_flavor(1, Some(&flavor)).await,
        lab.service_of_flavor(2, Some(&flavor)).await,
    );
    let c12 = lab.connect(&s1, 1, 2, &policies, "move-me").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "move-me").await;
    wait_ike(&lab, 1, &c12, Duration::from_secs(20)).await;
    let plutos = (pluto_pid(&lab, 1), pluto_pid(&lab, 2));
    assert!(
        !ping_once(&lab, 1, 2),
        "Libreswan has no data path on this kernel"
    );

    let started = Instant::now();
    let migrations: Vec<Child> = [1, 2]
        .into_iter()
        .map(|site| {
            let router = lab.site(site)["router_id"]
                .as_str()
                .expect("router")
                .to_string();
            Command::new(env!("CARGO_BIN_EXE_vpnaas"))
                .args([
                    "router",
                    "migrate-driver",
                    &router,
                    "--to",
                    "strongswan",
                    "--timeout",
                    "30",
                ])
                .env("VPNAAS_URL", &lab.url)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("vpnaas router migrate-driver")
        })
        .collect();
    while !ping_once(&lab, 1, 2) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no ping after the migration"
        );
    }
    let first_ping = started.elapsed();
    for migration in migrations {
        let out = migration.wait_with_output().expect("migrate-driver");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("every connection ACTIVE"), "{text}");
    }
    eprintln!(
        "migrate-driver libreswan -> strongswan: first ping through the tunnel {first_ping:?} after the call"
    );
    for conn in [&c12, &c21] {
        lab.wait_status(conn, "ACTIVE", Duration::from_secs(5))
            .await;
    }
    assert_eq!(
        lab.client.show(Kind::VpnService, &s1).await.expect("svc")["provider"],
        "strongswan"
    );
    for pid in [plutos.0, plutos.1] {
        assert!(
            !std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "pluto"),
            "pluto {pid} still runs"
        );
    }
    assert!(!charon_pid(&lab, 1).is_empty(), "charon runs instead");
}

/// A migration that cannot finish (Libreswan has no data path on this kernel) is rolled
/// back: the command fails, the router is on strongSwan again and the tunnel carries pings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_that_cannot_finish_is_rolled_back() {
    let root = libreswan_root();
    let lab = Lab::start_with(2, Mode::AllInOne, &["--libreswan-root", &root]).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "stay-put").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "stay-put").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    let router = lab.site(1)["router_id"]
        .as_str()
        .expect("router")
        .to_string();
    let out = vpnaas(
        &lab.url,
        &[
            "router",
            "migrate-driver",
            &router,
            "--to",
            "libreswan",
            "--timeout",
            "3",
        ],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("rolled back to strongswan"), "{text}");
    assert_eq!(
        lab.client.show(Kind::VpnService, &s1).await.expect("svc")["provider"],
        "strongswan"
    );
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    let started = Instant::now();
    while !lab.ping(1, 2) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the tunnel did not come back"
        );
    }
}

/// As with strongSwan, a restarted agent adopts the running plutos: same pids, same IKE
/// SAs, and later changes still reach them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_restart_leaves_running_plutos_alone() {
    let root = libreswan_root();
    let mut lab = Lab::start_with(2, Mode::Separate, &["--libreswan-root", &root]).await;
    let flavor = lab.libreswan_flavor().await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (
        lab.service_of_flavor(1, Some(&flavor)).await,
        lab.service_of_flavor(2, Some(&flavor)).await,
    );
    let c12 = lab.connect(&s1, 1, 2, &policies, "keep-pluto").await;
    lab.connect(&s2, 2, 1, &policies, "keep-pluto").await;
    let serials = wait_ike(&lab, 1, &c12, Duration::from_secs(20)).await;
    let pids = (pluto_pid(&lab, 1), pluto_pid(&lab, 2));
    lab.restart_agent();
    lab.wait_for_agent().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        (pluto_pid(&lab, 1), pluto_pid(&lab, 2)),
        pids,
        "the agent restarted pluto"
    );
    let now = ike_serials(&whack_status(&lab, 1), &c12);
    assert!(
        serials.iter().all(|s| now.contains(s)),
        "the IKE SA changed across the agent restart ({serials:?} → {now:?})"
    );
    lab.client
        .update(
            Kind::SiteConnection,
            &c12,
            json!({"dpd": {"action": "restart", "interval": 9, "timeout": 40}}),
        )
        .await
        .expect("a change after the restart");
    let started = Instant::now();
    while ike_serials(&whack_status(&lab, 1), &c12) == now {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the change did not reach the adopted pluto"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_ike(&lab, 1, &c12, Duration::from_secs(20)).await;
    assert_eq!(
        pluto_pid(&lab, 1),
        pids.0,
        "the change went to the adopted pluto"
    );
}
