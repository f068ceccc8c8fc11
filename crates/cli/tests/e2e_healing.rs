//! End to end on real strongSwan, healing and not disturbing: a change to one connection
//! leaves its neighbour's packets alone, a killed charon comes back, server and agent
//! restarts leave running tunnels up, leftovers are removed, and a tunnel survives a NATS
//! restart (a silently dead peer: `e2e_dpd`).
//!
//! Needs root (CI runs as root); without it these tests fail and say why. Every name
//! carries a random prefix, and everything started is removed, even when a test fails.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;
use vpnaas_model::Kind;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_one_connection_never_disturbs_another() {
    let lab = Lab::start(3).await;
    let c = &lab.client;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let only_for_2 = lab
        .policies(
            json!({"ike_version": "v2", "name": "only-conn-2"}),
            json!({}),
        )
        .await;
    let services = [
        lab.service(1).await,
        lab.service(2).await,
        lab.service(3).await,
    ];
    let conn1 = lab
        .connect(&services[0], 1, 2, &policies, "secret-one")
        .await;
    let back1 = lab
        .connect(&services[1], 2, 1, &policies, "secret-one")
        .await;
    let back2 = lab
        .connect(&services[2], 3, 1, &only_for_2, "secret-two")
        .await;
    for conn in [&conn1, &back1] {
        lab.wait_status(conn, "ACTIVE", Duration::from_secs(20))
            .await;
    }
    let pid = charon_pid(&lab, 1);
    let pinger = Pinger::start(&lab, 1, 2, 8);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let conn2 = lab
        .connect(&services[0], 1, 3, &only_for_2, "secret-two")
        .await;
    lab.wait_status(&conn2, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&back2, "ACTIVE", Duration::from_secs(20))
        .await;
    for change in [
        json!({"peer_cidrs": ["10.3.0.0/24", "10.33.0.0/24"]}),
        json!({"dpd": {"action": "restart", "interval": 7, "timeout": 30}}),
        json!({"psk": "secret-two"}),
        json!({"admin_state_up": false}),
        json!({"admin_state_up": true}),
    ] {
        c.update(Kind::SiteConnection, &conn2, change)
            .await
            .expect("update connection 2");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    c.update(Kind::IkePolicy, &only_for_2.0, json!({"name": "renamed"}))
        .await
        .expect("rename its policy");
    c.delete(Kind::SiteConnection, &conn2)
        .await
        .expect("delete connection 2");
    let (sent, received) = pinger.finish();
    assert!(sent >= 150, "the ping ran ({sent} sent)");
    assert_eq!(
        sent,
        received,
        "connection 1 lost {} of {sent} packets while connection 2 changed",
        sent - received
    );
    assert_eq!(charon_pid(&lab, 1), pid, "charon was restarted");

    c.update(
        Kind::SiteConnection,
        &conn1,
        json!({"peer_cidrs": ["10.2.0.0/24", "10.22.0.0/24"]}),
    )
    .await
    .expect("change connection 1");
    let started = Instant::now();
    while !lab.ping(1, 2) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "connection 1 did not come back after its own change"
        );
    }
    lab.wait_status(&conn1, "ACTIVE", Duration::from_secs(10))
        .await;
    assert_eq!(
        charon_pid(&lab, 1),
        pid,
        "a change to connection 1 is applied in place, without a restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_charon_is_restarted_and_the_tunnel_comes_back() {
    let lab = Lab::start(2).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "heal-secret").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "heal-secret").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    let pid = charon_pid(&lab, 1);
    let killed = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let started = Instant::now();
    loop {
        let new_pid = std::fs::read_to_string(
            lab._dir
                .path()
                .join("state")
                .join(lab.site(1)["router_id"].as_str().expect("r"))
                .join("strongswan/run/charon.pid"),
        )
        .unwrap_or_default();
        if !new_pid.trim().is_empty() && new_pid.trim() != pid {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "charon was not restarted; the agent's log ends with:\n{}",
            lab.log_tail(60)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    while !lab.ping(1, 2) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the tunnel did not come back"
        );
    }
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(10))
        .await;
    eprintln!(
        "kill -9 of charon -> ACTIVE and pinging again: {:?}",
        killed.elapsed()
    );
    lab.wait_metric(
        &lab.url,
        "vpnaas_agent_daemon_restarts_total 1",
        Duration::from_secs(1),
    )
    .await;
    lab.wait_metric(
        &lab.url,
        r#"vpnaas_connections{status="ACTIVE"} 2"#,
        Duration::from_secs(5),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_keeps_tunnels_up_and_reporting_resumes() {
    let mut lab = Lab::start_as(2, Mode::Separate).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "server-gone").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "server-gone").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    let pids = (charon_pid(&lab, 1), charon_pid(&lab, 2));
    let counted = lab.packets_out(&c12).await;

    lab.kill_process(0);
    let pinger = Pinger::start(&lab, 1, 2, 4);
    let (sent, received) = pinger.finish();
    assert!(sent >= 70, "the ping ran ({sent} sent)");
    assert_eq!(
        sent,
        received,
        "{} of {sent} packets lost while the server was down",
        sent - received
    );
    let agent = lab.metrics(&lab.agent_metrics).await;
    assert!(
        agent.iter().any(|l| l == "vpnaas_agent_routers 2"),
        "the agent keeps serving its routers: {agent:?}"
    );

    lab.start_process(0);
    lab.wait_for_api().await;
    let back = Instant::now();
    while lab.packets_out(&c12).await < counted + u64::from(sent) {
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "the agent did not report again after the server came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "server back -> first fresh status report: {:?}",
        back.elapsed()
    );
    assert_eq!(
        (charon_pid(&lab, 1), charon_pid(&lab, 2)),
        pids,
        "no daemon was restarted"
    );
    lab.client
        .update(Kind::SiteConnection, &c12, json!({"admin_state_up": false}))
        .await
        .expect("a change after the restart");
    lab.wait_status(&c12, "DOWN", Duration::from_secs(5)).await;
    lab.client
        .update(Kind::SiteConnection, &c12, json!({"admin_state_up": true}))
        .await
        .expect("and back");
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    assert!(lab.ping(1, 2), "the tunnel carries traffic again");
    lab.wait_metric(
        &lab.agent_metrics,
        r#"vpnaas_agent_connections{status="ACTIVE",reason="ESTABLISHED"} 2"#,
        Duration::from_secs(5),
    )
    .await;
    let agent = lab.metrics(&lab.agent_metrics).await;
    assert!(
        agent
            .iter()
            .any(|l| l
                .starts_with(r#"vpnaas_agent_reconcile_duration_seconds_count{trigger="change"}"#)),
        "{agent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_restart_leaves_running_tunnels_alone() {
    let mut lab = Lab::start_as(2, Mode::Separate).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "stay-up").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "stay-up").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    let pids = (charon_pid(&lab, 1), charon_pid(&lab, 2));
    let pinger = Pinger::start(&lab, 1, 2, 6);
    tokio::time::sleep(Duration::from_millis(500)).await;
    lab.restart_agent();
    lab.wait_for_agent().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (sent, received) = pinger.finish();
    assert!(sent >= 100, "the ping ran ({sent} sent)");
    assert_eq!(
        sent,
        received,
        "{} of {sent} packets lost across the agent restart",
        sent - received
    );
    assert_eq!(
        (charon_pid(&lab, 1), charon_pid(&lab, 2)),
        pids,
        "the agent restarted charon"
    );
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(5))
        .await;
    lab.client
        .update(Kind::SiteConnection, &c12, json!({"mtu": 1400}))
        .await
        .expect("a change after the restart");
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    assert!(lab.ping(1, 2), "the adopted charon still takes changes");
    assert_eq!(charon_pid(&lab, 1), pids.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_removes_its_leftovers_and_nothing_else() {
    let mut lab = Lab::start_as(2, Mode::Separate).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "leftover").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "leftover").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    let foreign = format!("{}-r-{}", lab.prefix, uuid::Uuid::new_v4());
    assert!(
        Command::new("ip")
            .args(["netns", "add", &foreign])
            .status()
            .expect("ip")
            .success()
    );
    let router1 = lab.site(1)["router_id"]
        .as_str()
        .expect("router")
        .to_string();
    let namespace1 = lab.router_namespace(1);
    let pid1 = charon_pid(&lab, 1);

    let agent = lab.processes.len() - 1;
    let _ = lab.processes[agent].kill();
    let _ = lab.processes[agent].wait();
    lab.client
        .delete(Kind::SiteConnection, &c12)
        .await
        .expect("delete while the agent is down");
    lab.client
        .delete(Kind::VpnService, &s1)
        .await
        .expect("delete service");
    lab.client
        .remove_router_interface(&router1, lab.site(1)["subnet_id"].as_str().expect("subnet"))
        .await
        .expect("interface");
    lab.client
        .update(
            Kind::Router,
            &router1,
            json!({"external_gateway_info": null}),
        )
        .await
        .expect("gateway");
    lab.client
        .delete(Kind::Router, &router1)
        .await
        .expect("delete router");
    let (args, log) = lab.commands[agent].clone();
    lab.processes[agent] = spawn_vpnaas(&args, &lab._dir.path().join(log));

    let started = Instant::now();
    while std::path::Path::new("/run/netns")
        .join(&namespace1)
        .exists()
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the leftover router namespace was not removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A charon whose parent (the killed agent) is gone is reaped by PID 1 a little later;
    // until then it is a zombie, which is dead.
    let state = std::fs::read_to_string(format!("/proc/{pid1}/stat")).unwrap_or_default();
    let running = state
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .is_some_and(|s| s != "Z");
    assert!(!running, "the leftover charon still runs");
    assert!(
        std::path::Path::new("/run/netns").join(&foreign).exists(),
        "a namespace the agent does not own was removed"
    );
    let _ = Command::new("ip").args(["netns", "del", &foreign]).status();
    lab.wait_status(&c21, "DOWN", Duration::from_secs(10)).await;
}

/// Server and agent talk over NATS only; NATS restarts under a running tunnel: nothing is
/// dropped, and changes flow again once everyone has reconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_nats_a_tunnel_survives_a_nats_restart() {
    let mut lab = Lab::start_as(2, Mode::Nats).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "over-nats").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "over-nats").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    assert!(lab.ping(1, 2));
    let pids = (charon_pid(&lab, 1), charon_pid(&lab, 2));
    let pinger = Pinger::start(&lab, 1, 2, 5);
    let port = lab.nats.take().expect("nats").stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    lab.nats = Some(NatsServer::start_on(port));
    let (sent, received) = pinger.finish();
    assert!(sent >= 90, "the ping ran ({sent} sent)");
    assert_eq!(
        sent,
        received,
        "{} of {sent} packets lost across the NATS restart",
        sent - received
    );
    assert_eq!(
        (charon_pid(&lab, 1), charon_pid(&lab, 2)),
        pids,
        "a daemon was restarted"
    );
    let changed = Instant::now();
    lab.client
        .update(Kind::SiteConnection, &c12, json!({"admin_state_up": false}))
        .await
        .expect("a change after the restart");
    lab.wait_status(&c12, "DOWN", Duration::from_secs(15)).await;
    eprintln!(
        "over NATS, after its restart: a change applied and reported in {:?}",
        changed.elapsed()
    );
    lab.client
        .update(Kind::SiteConnection, &c12, json!({"admin_state_up": true}))
        .await
        .expect("and back");
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
}
