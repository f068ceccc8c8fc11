//! End to end with several gateway hosts: a dead agent's router moves to a live one (and
//! back by hand), and an HA router's standby takes over while the old master stays fenced.
//!
//! Needs root (CI runs as root); without it these tests fail and say why. Every name
//! carries a random prefix, and everything started is removed, even when a test fails.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use vpnaas_model::Kind;

use common::*;

/// Two agents, a router on each and a tunnel between them. The second gateway host dies
/// (agent killed, its routers' namespaces and daemons gone): after 3 s without heartbeats
/// its router moves to the first agent and the tunnel comes back. The agent returns and an
/// admin moves the router back by hand; the tunnel follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_agents_router_moves_to_a_live_one_and_can_be_moved_back() {
    let mut lab = Lab::start_as(2, Mode::Agents(2)).await;
    let (first, second) = (lab.prefix.clone(), format!("{}-2", lab.prefix));
    let router = |site: usize| {
        lab.site(site)["router_id"]
            .as_str()
            .expect("router")
            .to_string()
    };
    let (r1, r2) = (router(1), router(2));
    let client = lab.client.clone();
    let host_of = |r: &str| {
        let (c, r) = (client.clone(), r.to_string());
        async move { c.show(Kind::Router, &r).await.expect("router")["agent_host"].clone() }
    };
    assert_eq!(
        (host_of(&r1).await, host_of(&r2).await),
        (json!(first), json!(second)),
        "fewest routers first: one router per agent"
    );
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "two-hosts").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "two-hosts").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    until_ping(&lab, 1, 2, Duration::from_secs(10));

    let killed = Instant::now();
    lab.kill_process(2);
    power_off(&format!("{}-s-", lab.prefix));
    until_ping(&lab, 1, 2, Duration::from_secs(30));
    let failover = killed.elapsed();
    eprintln!(
        "gateway host 2 dead -> its router on agent 1, tunnel pinging: {failover:?} (agent_down_time 3 s, heartbeats every 1 s)"
    );
    assert_eq!(host_of(&r2).await, json!(first));
    lab.wait_for_host(&second, false).await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(10))
        .await;
    assert!(
        failover >= Duration::from_secs(2),
        "moved before the agent missed 3 s of heartbeats (its last one was at most 1 s before it died)"
    );

    lab.start_process(2);
    let back = lab.wait_for_host(&second, true).await;
    let moved = Instant::now();
    let (status, body) = lab
        .client
        .raw(
            vpnaas_client::Method::POST,
            &format!("/v2.0/agents/{}/vpn-routers", id(&back)),
            Some(&json!({"router_id": r2})),
        )
        .await
        .expect("move by hand");
    assert_eq!(status.as_u16(), 201, "{body}");
    while host_of(&r2).await != json!(second) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    while lab
        .namespaces()
        .iter()
        .any(|n| n == &format!("{}-r-{r2}", lab.prefix))
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "agent 1 kept the moved router"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    until_ping(&lab, 1, 2, Duration::from_secs(30));
    eprintln!(
        "router moved back by hand -> pinging: {:?}",
        moved.elapsed()
    );
    let agents = lab
        .client
        .get(&format!("/v2.0/routers/{r2}/vpn-agents"))
        .await
        .expect("vpn-agents");
    assert_eq!(agents["agents"][0]["host"], second.as_str());
}

/// The IPv4 addresses in a namespace, but loopback's.
fn addresses_in(namespace: &str) -> String {
    let out = Command::new("ip")
        .args([
            "-n", namespace, "-4", "-o", "addr", "show", "scope", "global",
        ])
        .output()
        .expect("ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The details of a connection's `AGENT_DOWN` events, oldest first.
async fn agent_down_details(lab: &Lab, conn: &str) -> Vec<String> {
    let events = lab
        .client
        .get(&format!("/v2.0/vpn/ipsec-site-connections/{conn}/events"))
        .await
        .expect("events");
    events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["reason"] == "AGENT_DOWN")
        .filter_map(|e| e["detail"].as_str().map(String::from))
        .collect()
}

/// Waits until `check` holds, or fails with `what`.
async fn eventually(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three agents, each a gateway host. Site 1's router is HA: active on agent 1, standby on
/// agent 3, whose namespace is ready (ports, no addresses, no daemon); site 2's router is
/// on agent 2. Agent 1's host dies (agent killed, its namespaces and charons gone) while a
/// ping runs: agent 3 stops hearing agent 1's answers to its liveness probes and claims
/// the router (the fast path, not the server's `agent_down_time`); it takes the gateway
/// address, starts charon, the tunnel comes back and the ping resumes (the times are
/// printed; BENCHMARKS.md keeps them). Agent 1 comes back and runs nothing for the router
/// it lost (fencing) while pings pass unharmed and agent 3's charon stays the same
/// process. Claims from a non-standby and under a stale epoch are refused. A switchover
/// by hand makes agent 2 active and demotes agent 3 (its charon stops).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ha_routers_standby_takes_over_and_the_old_master_stays_fenced() {
    let mut lab = Lab::start_as(2, Mode::Agents(3)).await;
    let host = |n: usize| match n {
        1 => lab.prefix.clone(),
        _ => format!("{}-{n}", lab.prefix),
    };
    let (host1, host2, host3) = (host(1), host(2), host(3));
    let (r1, _) = (
        lab.site(1)["router_id"].as_str().expect("r1").to_string(),
        lab.site(2)["router_id"].as_str().expect("r2").to_string(),
    );
    let client = lab.client.clone();
    let holders = |r: &str| {
        let (c, r) = (client.clone(), r.to_string());
        async move {
            let router = c.show(Kind::Router, &r).await.expect("router");
            (
                router["agent_host"].clone(),
                router["ha_standby_host"].clone(),
            )
        }
    };
    lab.client
        .update(Kind::Router, &r1, json!({"ha": true}))
        .await
        .expect("HA");
    eventually(
        "a standby for the HA router",
        Duration::from_secs(10),
        async || holders(&r1).await == (json!(host1), json!(host3)),
    )
    .await;
    let standby_ns = format!("{}-t-{r1}", lab.prefix);
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "ha-secret").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "ha-secret").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    until_ping(&lab, 1, 2, Duration::from_secs(10));
    eventually(
        "the standby's namespace",
        Duration::from_secs(10),
        async || lab.namespaces().contains(&standby_ns),
    )
    .await;
    assert_eq!(addresses_in(&standby_ns), "", "a standby holds no address");
    assert!(!runs_a_daemon(&standby_ns), "a standby runs no daemon");

    let pinger = Pinger::timed(&lab, 2, 1, 12);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Instant::now();
    lab.kill_process(1);
    power_off(&format!("{}-r-", lab.prefix));
    until_ping(&lab, 1, 2, Duration::from_secs(30));
    let pinging = killed.elapsed();
    let mut active_again = None;
    eventually(
        "ACTIVE after AGENT_DOWN",
        Duration::from_secs(30),
        async || {
            let conn = lab
                .client
                .show(Kind::SiteConnection, &c12)
                .await
                .expect("conn");
            let saw_down = !agent_down_details(&lab, &c12).await.is_empty();
            if saw_down && conn["status"] == "ACTIVE" {
                active_again.get_or_insert(killed.elapsed());
            }
            active_again.is_some()
        },
    )
    .await;
    let (sent, received, silence) = pinger.finish_timed();
    eprintln!(
        "HA failover: active gateway host dead -> pinging again {pinging:?}, ACTIVE again {:?}; continuous ping every 50 ms lost {} of {sent}, longest silence {silence:?} (liveness probes every 100 ms, dead after 300 ms)",
        active_again.unwrap_or_default(),
        sent - received
    );
    assert_eq!(
        agent_down_details(&lab, &c12).await,
        ["the router's standby stopped hearing its active agent and takes over"],
        "taken over by the standby's claim, not by the heartbeat path"
    );
    assert!(addresses_in(&standby_ns).contains(lab.site(1)["gateway_ip"].as_str().expect("gw")));
    let epoch_of = |r: &str| {
        let (c, r) = (client.clone(), r.to_string());
        async move { c.show(Kind::Router, &r).await.expect("router")["lease_epoch"].clone() }
    };
    eventually(
        "a live standby in place of the dead one (heartbeat path)",
        Duration::from_secs(15),
        async || holders(&r1).await == (json!(host3), json!(host2)),
    )
    .await;
    let daemon = daemon_pids(&standby_ns);
    assert_eq!(daemon.len(), 1, "one charon on the new active agent");

    let pinger = Pinger::start(&lab, 1, 2, 6);
    lab.start_process(1);
    lab.wait_for_host(&host1, true).await;
    let leftover = lab._dir.path().join("state").join(&r1);
    eventually(
        "the revived agent drops the lost router",
        Duration::from_secs(10),
        async || !leftover.exists(),
    )
    .await;
    let revived_namespaces: Vec<String> = lab
        .namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&format!("{}-r-", lab.prefix)))
        .collect();
    assert!(
        revived_namespaces.iter().all(|n| daemon_pids(n).is_empty())
            && !revived_namespaces.contains(&format!("{}-r-{r1}", lab.prefix)),
        "the revived old master runs nothing for the router it lost: {revived_namespaces:?}"
    );
    let (sent, received) = pinger.finish();
    assert!(
        sent - received <= 1,
        "the old master's return disturbed the tunnel: {received} of {sent}"
    );
    assert_eq!(
        daemon_pids(&standby_ns),
        daemon,
        "the new active's charon untouched"
    );

    // Claims the server must refuse: from an agent that is not the standby, and from the
    // standby under an epoch that is no longer current.
    let epoch = epoch_of(&r1).await.as_u64().expect("epoch");
    for (claimant, lease_epoch) in [(&host1, epoch), (&host2, epoch - 1)] {
        let claim = json!({"host": claimant, "silent_host": host3,
            "routers": [{"router_id": r1, "lease_epoch": lease_epoch}]});
        let (status, body) = lab
            .client
            .raw(
                vpnaas_client::Method::POST,
                &format!("/v2.0/vpnaas-agent/{claimant}/takeover"),
                Some(&claim),
            )
            .await
            .expect("claim");
        assert_eq!((status.as_u16(), body), (200, json!([])), "{claim}");
    }
    assert_eq!(holders(&r1).await, (json!(host3), json!(host2)));
    assert_eq!(epoch_of(&r1).await, json!(epoch));
    assert_eq!(
        daemon_pids(&standby_ns),
        daemon,
        "refused claims change nothing"
    );

    let agents = lab.client.list(Kind::Agent, &[]).await.expect("agents");
    let agent2 = id(agents.iter().find(|a| a["host"] == host2).expect("agent 2"));
    let switched = Instant::now();
    let (status, body) = lab
        .client
        .raw(
            vpnaas_client::Method::POST,
            &format!("/v2.0/agents/{agent2}/vpn-routers"),
            Some(&json!({"router_id": r1})),
        )
        .await
        .expect("switchover");
    assert_eq!(status.as_u16(), 201, "{body}");
    assert_eq!(holders(&r1).await, (json!(host2), json!(host3)));
    eventually(
        "the demoted agent stops its charon",
        Duration::from_secs(10),
        async || !runs_a_daemon(&standby_ns) && addresses_in(&standby_ns).is_empty(),
    )
    .await;
    let pinging = until_ping(&lab, 1, 2, Duration::from_secs(30));
    eprintln!(
        "HA switchover by hand -> pinging {pinging:?} (API call {:?} ago)",
        switched.elapsed()
    );
}
