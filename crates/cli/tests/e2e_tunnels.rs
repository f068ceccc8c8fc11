//! End to end on real strongSwan, tunnels: `vpnaas all-in-one` (or a separate server and
//! agent) builds sites in network namespaces; connections created through the API become
//! real tunnels carrying real pings (IKEv1 and v2, AES-GCM, several CIDRs, a full mesh,
//! rekeys), and their status says so, wrong keys and missing NAT exemptions included.
//!
//! Needs root (CI runs as root); without it these tests fail and say why. Every name
//! carries a random prefix, and everything started is removed, even when a test fails.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vpnaas_model::Kind;

use common::*;

async fn two_sites_ping(ike: Value, ipsec: Value) {
    two_sites_ping_as(ike, ipsec, Mode::AllInOne).await;
}

async fn two_sites_ping_as(ike: Value, ipsec: Value, mode: Mode) {
    two_sites_ping_on(&Lab::start_as(2, mode).await, ike, ipsec).await;
}

/// Connections each way between the lab's two sites come up, report why, and carry pings.
async fn two_sites_ping_on(lab: &Lab, ike: Value, ipsec: Value) {
    assert!(
        !lab.ping(1, 2),
        "no tunnel yet, so no route to the other site"
    );
    let policies = lab.policies(ike, ipsec).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "a-shared-secret").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "a-shared-secret").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    assert_eq!(
        lab.client.show(Kind::VpnService, &s1).await.expect("svc")["status"],
        "ACTIVE"
    );
    assert!(
        lab.ping(1, 2),
        "host 1 cannot ping host 2 through the tunnel"
    );
    assert!(
        lab.ping(2, 1),
        "host 2 cannot ping host 1 through the tunnel"
    );
    let shown = lab
        .client
        .show(Kind::SiteConnection, &c12)
        .await
        .expect("show");
    assert_eq!(shown["status_reason"], "ESTABLISHED");
    let events = lab
        .client
        .get(&format!("/v2.0/vpn/ipsec-site-connections/{c12}/events"))
        .await
        .expect("events");
    let last = events["events"]
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .expect("a transition");
    assert_eq!(
        (last["to"].as_str(), last["reason"].as_str()),
        (Some("ACTIVE"), Some("ESTABLISHED"))
    );
    assert!(
        !last["detail"].as_str().unwrap_or("").is_empty(),
        "the negotiated proposal is recorded: {last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ikev2_tunnel_between_two_sites_carries_pings() {
    two_sites_ping(
        json!({"ike_version": "v2", "encryption_algorithm": "aes-256", "pfs": "group14"}),
        json!({"encryption_algorithm": "aes-256", "pfs": "group14"}),
    )
    .await;
}

/// With no `--data-plane` the agent asks the kernel, which holds no ESP SA here: it takes
/// userspace ESP, says so and why in its log and its metrics, and the tunnel carries pings
/// (kernel ESP, the default before, left both connections NO_PROPOSAL_CHOSEN).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_the_agent_takes_the_data_plane_this_kernel_can_carry() {
    let refusal = kernel_esp_refusal().await;
    let lab = Lab::start(2).await;
    two_sites_ping_on(&lab, json!({"ike_version": "v2"}), json!({})).await;
    let said = format!("data plane: userspace (kernel refused an ESP SA: {refusal})");
    assert!(
        lab.log("aio.log").contains(&said),
        "the agent's log lacks `{said}`:\n{}",
        lab.log("aio.log")
    );
    lab.wait_metric(
        &lab.url,
        r#"vpnaas_agent_data_plane{plane="userspace"} 1"#,
        Duration::from_secs(5),
    )
    .await;
}

/// `--data-plane kernel` on a kernel without ESP: the IKE SA comes up, no child SA can, and
/// both connections say the kernel refused it, with the kernel's words in their events.
/// Before, both said NO_PROPOSAL_CHOSEN: the notify charon answers its peer with when its
/// kernel refuses, which sends the user to check algorithms. Site 2 only responds, so its
/// charon is the one that asks the kernel, and site 1 only hears the notify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_esp_forced_on_a_kernel_without_it_reports_kernel_refused() {
    let refusal = kernel_esp_refusal().await;
    let lab = Lab::start_with(2, Mode::AllInOne, &["--data-plane", "kernel"]).await;
    assert!(
        lab.log("aio.log")
            .contains("data plane: kernel (configured, but the kernel refused an ESP SA"),
        "the agent warns at start:\n{}",
        lab.log("aio.log")
    );
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "kernel-secret").await;
    let c21 = lab
        .connect_as(&s2, (2, 1), &policies, "kernel-secret", "response-only")
        .await;
    let mut details = Vec::new();
    for conn in [&c12, &c21] {
        let events = lab
            .wait_reason(conn, "KERNEL_REFUSED", Duration::from_secs(20))
            .await;
        let last = events.last().expect("events");
        assert_eq!(
            (last["to"].as_str(), last["reason"].as_str()),
            (Some("DOWN"), Some("KERNEL_REFUSED")),
            "{events:?}"
        );
        details.push(last["detail"].as_str().unwrap_or("").to_string());
    }
    assert!(
        details[1].contains("received netlink error: Protocol not supported (93)"),
        "the responder's charon reports the kernel's own error: {details:?}"
    );
    assert!(
        details[0].contains(&refusal) && details[0].contains("NO_PROPOSAL_CHOSEN"),
        "the initiator hears the peer's notify on a host whose kernel refused an ESP SA: {details:?}"
    );
    assert!(!lab.ping(1, 2));
    eprintln!("kernel ESP forced, KERNEL_REFUSED: {details:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_agent_process_over_http_builds_the_tunnel() {
    two_sites_ping_as(json!({"ike_version": "v2"}), json!({}), Mode::Separate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ikev1_tunnel_carries_pings() {
    two_sites_ping(json!({"ike_version": "v1"}), json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aes_gcm_tunnel_carries_pings() {
    two_sites_ping(
        json!({"ike_version": "v2", "encryption_algorithm": "aes-256-gcm-16", "pfs": "group19"}),
        json!({"encryption_algorithm": "aes-128-gcm-16", "pfs": "group19"}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_psk_leaves_the_connection_down() {
    let lab = Lab::start(2).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "the-right-secret").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "a-wrong-secret").await;
    lab.wait_status(&c12, "DOWN", Duration::from_secs(10)).await;
    lab.wait_status(&c21, "DOWN", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for conn in [&c12, &c21] {
        let shown = lab
            .client
            .show(Kind::SiteConnection, conn)
            .await
            .expect("show");
        assert_eq!(shown["status"], "DOWN", "a wrong PSK must never be ACTIVE");
        assert_eq!(
            shown["status_reason"], "AUTH_FAILED",
            "the reason says why: {shown}"
        );
    }
    assert!(!lab.ping(1, 2));
}

/// Three sites, a tunnel between each pair, pings all ways. Then, as the README does,
/// `lab down` and the all-in-one killed at once: no namespace (router, host, fabric),
/// charon or router file of the lab is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sites_full_mesh_and_everything_is_removed_afterwards() {
    let mut lab = Lab::start(3).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let services = [
        lab.service(1).await,
        lab.service(2).await,
        lab.service(3).await,
    ];
    let mut conns = Vec::new();
    for from in 1..=3 {
        for to in (1..=3).filter(|t| *t != from) {
            conns.push(
                lab.connect(&services[from - 1], from, to, &policies, "mesh-secret")
                    .await,
            );
        }
    }
    for conn in &conns {
        lab.wait_status(conn, "ACTIVE", Duration::from_secs(30))
            .await;
    }
    for from in 1..=3 {
        for to in (1..=3).filter(|t| *t != from) {
            assert!(lab.ping(from, to), "site {from} cannot ping site {to}");
        }
    }
    let router_ns = lab.router_namespace(1);
    let out = Command::new("ip")
        .args([
            "netns", "exec", &router_ns, "nft", "list", "table", "ip", "vpnaas",
        ])
        .output()
        .expect("nft");
    let table = String::from_utf8_lossy(&out.stdout);
    let exemptions = table
        .lines()
        .filter(|l| l.contains("ip saddr 10.1.0.0/24 ip daddr") && l.trim_end().ends_with("accept"))
        .count();
    assert_eq!(
        exemptions, 2,
        "one exemption per (local, peer) pair:\n{table}"
    );

    let started = Instant::now();
    lab.lab_command(&["down"]);
    eprintln!("lab down took {:?}", started.elapsed());
    // As in the README (`lab down; kill %1`): the agent stops at once.
    lab.kill_processes();
    assert!(
        lab.namespaces().is_empty(),
        "namespaces left (the routers', whose nft tables they hold, or the fabric): {:?}",
        lab.namespaces()
    );
    let ours = lab._dir.path().to_string_lossy().into_owned();
    let charons: Vec<String> = std::fs::read_dir("/proc")
        .expect("proc")
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .is_ok_and(|env| String::from_utf8_lossy(&env).contains(&ours))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "charon")
        })
        .collect();
    assert!(charons.is_empty(), "charon processes left: {charons:?}");
    let state = lab._dir.path().join("state");
    let left: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "files left: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_nat_exemption_the_tunnel_breaks() {
    let lab = Lab::start(2).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "nat-secret").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "nat-secret").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    assert!(lab.ping(1, 2));
    let router_ns = lab.router_namespace(1);
    let gateway = lab.site(1)["gateway_ip"].as_str().expect("gw").to_string();
    let snat_only = format!(
        "flush chain ip vpnaas postrouting\nadd rule ip vpnaas postrouting ip saddr 10.1.0.0/24 ip daddr != 10.1.0.0/24 snat to {gateway}\n"
    );
    let mut nft = Command::new("ip")
        .args(["netns", "exec", &router_ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("nft");
    std::io::Write::write_all(nft.stdin.as_mut().expect("stdin"), snat_only.as_bytes())
        .expect("write");
    assert!(nft.wait().expect("nft").success());
    let _ = Command::new("ip")
        .args(["netns", "exec", &router_ns, "conntrack", "-F"])
        .status();
    assert!(
        !lab.ping(1, 2),
        "with SNAT and no exemption, host 1's traffic must not pass the tunnel"
    );
    // A change to the connection makes the agent render the router's rules again.
    lab.client
        .update(Kind::SiteConnection, &c12, json!({"mtu": 1450}))
        .await
        .expect("nudge");
    let started = Instant::now();
    while !lab.ping(1, 2) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the agent did not restore the exemption"
        );
    }
}

/// Several local and several peer CIDRs: site 1 reaches site 2's two subnets through one
/// connection (IKEv2: one child for all selectors; IKEv1: one child per pair).
async fn several_cidrs(version: &str) {
    let lab = Lab::start(2).await;
    let c = &lab.client;
    let (r2, s1, s2) = (
        lab.site(2)["router_id"]
            .as_str()
            .expect("router")
            .to_string(),
        lab.site(1)["subnet_id"]
            .as_str()
            .expect("subnet")
            .to_string(),
        lab.site(2)["subnet_id"]
            .as_str()
            .expect("subnet")
            .to_string(),
    );
    let extra_net = c
        .create(
            Kind::Network,
            json!({"name": format!("{}-extra", lab.prefix)}),
        )
        .await
        .expect("net");
    let extra = c
        .create(
            Kind::Subnet,
            json!({"network_id": id(&extra_net), "cidr": "10.20.0.0/24"}),
        )
        .await
        .expect("subnet");
    c.add_router_interface(&r2, &id(&extra))
        .await
        .expect("second interface");
    let policies = lab
        .policies(json!({"ike_version": version}), json!({}))
        .await;
    let group = |kind: &str, endpoints: Value| {
        let c = c.clone();
        let kind = kind.to_string();
        async move {
            id(&c
                .create(
                    Kind::EndpointGroup,
                    json!({"type": kind, "endpoints": endpoints}),
                )
                .await
                .expect("group"))
        }
    };
    let (local1, peer1) = (
        group("subnet", json!([s1])).await,
        group("cidr", json!(["10.2.0.0/24", "10.20.0.0/24"])).await,
    );
    let (local2, peer2) = (
        group("subnet", json!([s2, id(&extra)])).await,
        group("cidr", json!(["10.1.0.0/24"])).await,
    );
    let mut conns = Vec::new();
    for (site, local, peer, to) in [(1, &local1, &peer1, 2), (2, &local2, &peer2, 1)] {
        let svc = c
            .create(
                Kind::VpnService,
                json!({"router_id": lab.site(site)["router_id"]}),
            )
            .await
            .expect("svc");
        let gateway = lab.site(to)["gateway_ip"].clone();
        let conn = c
            .create(
                Kind::SiteConnection,
                json!({"vpnservice_id": id(&svc), "ikepolicy_id": policies.0, "ipsecpolicy_id": policies.1,
                       "peer_address": gateway, "peer_id": gateway, "psk": "multi-secret",
                       "local_ep_group_id": local, "peer_ep_group_id": peer}),
            )
            .await
            .expect("connection");
        conns.push(id(&conn));
    }
    for conn in &conns {
        lab.wait_status(conn, "ACTIVE", Duration::from_secs(20))
            .await;
    }
    assert!(lab.ping(1, 2), "host 1 cannot reach site 2's first subnet");
    let out = vpnaas(
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
            "10.20.0.1",
        ],
    );
    assert!(
        out.status.success(),
        "host 1 cannot reach site 2's second subnet through the tunnel"
    );
    lab.lab_command(&["down"]);
    let groups = c.list(Kind::EndpointGroup, &[]).await.expect("groups");
    assert!(
        groups.is_empty(),
        "lab down leaves the endpoint groups of its routers' connections: {groups:?}"
    );
    assert_eq!(lab.namespaces(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_local_and_peer_cidrs_with_ikev2() {
    several_cidrs("v2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_local_and_peer_cidrs_with_ikev1() {
    several_cidrs("v1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_waits_for_active_explains_failures_and_shows_events() {
    let lab = Lab::start(2).await;
    let c = &lab.client;
    let policies = lab
        .policies(
            json!({"ike_version": "v2", "name": "cli-ike"}),
            json!({"name": "cli-esp"}),
        )
        .await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    lab.connect(&s1, 1, 2, &policies, "the-cli-secret").await;
    let (g1, cidr1) = (
        lab.site(1)["gateway_ip"].as_str().expect("gw").to_string(),
        lab.site(1)["cidr"].as_str().expect("cidr").to_string(),
    );
    let create = |name: &str, psk: &str| {
        vec![
            "site-connection".to_string(),
            "create".into(),
            name.into(),
            "--vpnservice".into(),
            s2.clone(),
            "--ikepolicy".into(),
            "cli-ike".into(),
            "--ipsecpolicy".into(),
            "cli-esp".into(),
            "--peer-address".into(),
            g1.clone(),
            "--peer-id".into(),
            g1.clone(),
            "--psk".into(),
            psk.into(),
            "--peer-cidr".into(),
            cidr1.clone(),
            "--wait".into(),
            "--timeout".into(),
            "15".into(),
        ]
    };
    let run = |args: Vec<String>| {
        let url = lab.url.clone();
        tokio::task::spawn_blocking(move || {
            vpnaas(&url, &args.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };
    let refused = run(create("wrong", "not-the-secret")).await.expect("join");
    assert!(
        !refused.status.success(),
        "--wait must fail when the tunnel cannot come up"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("AUTH_FAILED"),
        "the failure says why: {stderr}"
    );
    let wrong = c
        .find(Kind::SiteConnection, "wrong")
        .await
        .expect("created anyway");
    c.delete(Kind::SiteConnection, &id(&wrong))
        .await
        .expect("delete");

    let waited = run(create("right", "the-cli-secret")).await.expect("join");
    assert!(
        waited.status.success(),
        "--wait failed: {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    assert!(String::from_utf8_lossy(&waited.stdout).contains("ESTABLISHED"));
    assert!(
        String::from_utf8_lossy(&waited.stderr).contains("ACTIVE"),
        "progress is shown"
    );

    let events = run(vec![
        "site-connection".into(),
        "events".into(),
        "right".into(),
    ])
    .await
    .expect("join");
    let table = String::from_utf8_lossy(&events.stdout);
    assert!(
        events.status.success()
            && table.contains("ESTABLISHED")
            && table.contains("PENDING_CREATE"),
        "{table}"
    );

    let url = lab.url.clone();
    let watched = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .args([
                "-s",
                "INT",
                "-k",
                "10",
                "1.5",
                env!("CARGO_BIN_EXE_vpnaas"),
                "site-connection",
                "list",
                "--watch",
                "--interval",
                "0.2",
            ])
            .env("VPNAAS_URL", url)
            .output()
            .expect("watch")
    })
    .await
    .expect("join");
    let screen = String::from_utf8_lossy(&watched.stdout);
    assert!(
        screen.matches("refreshing every").count() >= 3,
        "the table is redrawn: {screen}"
    );
    assert!(
        screen.contains("ESTABLISHED") && screen.contains("bytes in/out"),
        "{screen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rekeys_are_counted_lose_nothing_and_traffic_carries_across() {
    let lab = Lab::start(2).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    // One child SA, so one rekey is one count: when both ends initiate, a busy machine can
    // have both negotiations cross and build a second child SA, which `--rekey` rekeys too.
    let c12 = lab.connect(&s1, 1, 2, &policies, "rekey-me").await;
    let c21 = lab
        .connect_as(&s2, (2, 1), &policies, "rekey-me", "response-only")
        .await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    assert!(lab.ping(1, 2));
    let pinger = Pinger::start(&lab, 1, 2, 4);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = lab.packets_out(&c12).await;
    let router = lab.site(1)["router_id"].as_str().expect("router");
    let socket = lab
        ._dir
        .path()
        .join("state")
        .join(router)
        .join("strongswan/run/charon.vici");
    let out = Command::new("swanctl")
        .args(["--rekey", "--child", &c12, "--uri"])
        .arg(format!("unix://{}", socket.display()))
        .output()
        .expect("swanctl");
    assert!(
        out.status.success(),
        "swanctl --rekey: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started = Instant::now();
    loop {
        let shown = lab
            .client
            .show(Kind::SiteConnection, &c12)
            .await
            .expect("show");
        if shown["traffic"]["rekeys"] == 1 {
            let after = shown["traffic"]["packets_out"].as_u64().unwrap_or(0);
            assert!(
                after >= before,
                "the counters carry on across the rekey ({before} before, {after} after)"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the rekey was not counted: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (sent, received) = pinger.finish();
    assert!(sent >= 70, "the ping ran ({sent} sent)");
    assert_eq!(
        sent,
        received,
        "{} of {sent} packets lost across the rekey",
        sent - received
    );
    lab.wait_metric(
        &lab.url,
        "vpnaas_agent_rekeys_total 2",
        Duration::from_secs(5),
    )
    .await;
}
