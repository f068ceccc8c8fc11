//! HA routers on the server's side: an HA router is held by two agents, the active one
//! holding its lease and the standby getting the same desired state marked standby; when
//! the active agent stops beating, the standby takes over under a new lease epoch, the
//! connections say their state is unknown (`AGENT_DOWN`) until it reports, and reports
//! from the former holder are refused (fencing). Admins switch over by hand. A standby
//! that stops hearing its active agent claims the router (the fast path).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use vpnaas_bus::ControlPlane;
use vpnaas_model::Kind;
use vpnaas_model::agent::{HaPeer, Heartbeat, LeaseClaim, TakeoverClaim};
use vpnaas_model::enums::HaRole;
use vpnaas_server::service::agents::LocalControlPlane;

/// `(active, standby, lease_epoch)` of a router.
async fn holders(c: &vpnaas_client::Client, router: &str) -> (Value, Value, u64) {
    let r = c.show(Kind::Router, router).await.expect("router");
    (
        r["agent_host"].clone(),
        r["ha_standby_host"].clone(),
        r["lease_epoch"].as_u64().expect("epoch"),
    )
}

async fn agent_id(c: &vpnaas_client::Client, host: &str) -> String {
    let agents = c.list(Kind::Agent, &[]).await.expect("agents");
    id(agents.iter().find(|a| a["host"] == host).expect("agent"))
}

#[tokio::test]
async fn an_ha_routers_standby_takes_over_from_a_dead_agent_and_the_old_one_is_fenced() {
    let Clocked {
        app,
        client: c,
        clock,
        server: _server,
        dir: _dir,
    } = start_on_manual_clock(1).await;
    let control = LocalControlPlane::new(app.clone());
    control.heartbeat("gw-a").await.expect("a");
    control.heartbeat("gw-b").await.expect("b");
    let external = external_network(&c).await;
    let s = site(&c, &external, 1).await;
    assert_eq!(
        holders(&c, &s.router).await,
        (json!("gw-a"), Value::Null, 1)
    );
    c.update(Kind::Router, &s.router, json!({"ha": true}))
        .await
        .expect("made HA");
    control.heartbeat("gw-a").await.expect("a");
    assert_eq!(
        holders(&c, &s.router).await,
        (json!("gw-a"), json!("gw-b"), 1),
        "the next heartbeat gives it a standby"
    );
    let born_ha = c
        .create(
            Kind::Router,
            json!({"ha": true, "external_gateway_info": {"network_id": external.0}}),
        )
        .await
        .expect("HA router");
    let (active, standby, _) = holders(&c, &id(&born_ha)).await;
    assert!(
        active.is_string() && standby.is_string() && active != standby,
        "{active} {standby}"
    );

    let svc = legacy_service(&c, &s).await;
    let pols = policies(&c).await;
    let conn = c
        .create(
            Kind::SiteConnection,
            legacy_connection(&id(&svc), &pols, "10.2.0.0/24"),
        )
        .await
        .expect("connection");
    let conn = id(&conn);
    let state = |host: &'static str| {
        let (control, router) = (&control, s.router.clone());
        async move { control.router_state(host, &router).await.expect("state") }
    };
    let (on_a, on_b) = (
        state("gw-a").await.expect("a"),
        state("gw-b").await.expect("b"),
    );
    assert_eq!((on_a.role, on_b.role), (HaRole::Active, HaRole::Standby));
    assert!(on_a.ha && on_a.lease_epoch == 1 && on_b.lease_epoch == 1);
    assert_eq!(on_a.connections, on_b.connections, "the standby is ready");
    assert!(
        control
            .hosted_routers("gw-b")
            .await
            .expect("hosted")
            .contains(&s.router)
    );
    let agents = c
        .get(&format!("/v2.0/routers/{}/vpn-agents", s.router))
        .await
        .expect("vpn-agents");
    let shown: Vec<(Value, Value)> = agents["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .map(|a| (a["host"].clone(), a["ha_state"].clone()))
        .collect();
    assert_eq!(
        shown,
        [
            (json!("gw-a"), json!("active")),
            (json!("gw-b"), json!("standby"))
        ]
    );
    let status = || {
        let (c, conn) = (c.clone(), conn.clone());
        async move {
            let shown = c.show(Kind::SiteConnection, &conn).await.expect("conn");
            (shown["status"].clone(), shown["status_reason"].clone())
        }
    };
    control
        .report(up_report("gw-b", &s.router, 1, &conn))
        .await
        .expect("standby report");
    assert_eq!(
        status().await.0,
        "PENDING_CREATE",
        "a standby does not speak"
    );
    control
        .report(up_report("gw-a", &s.router, 1, &conn))
        .await
        .expect("active report");
    assert_eq!(status().await, (json!("ACTIVE"), json!("ESTABLISHED")));

    // gw-a stops beating; gw-b's next heartbeat finds it dead and takes over.
    let mut hints = app.notifier.subscribe("gw-b");
    clock.advance(Duration::from_millis(1500));
    control.heartbeat("gw-b").await.expect("b");
    assert_eq!(
        holders(&c, &s.router).await,
        (json!("gw-b"), Value::Null, 2)
    );
    assert_eq!(status().await, (json!("DOWN"), json!("AGENT_DOWN")));
    let metrics = c.get_text("/metrics").await.expect("metrics");
    assert!(
        // Both HA routers had gw-a active (ties go by host name).
        metrics.contains("vpnaas_router_failovers_total 2")
            && metrics.contains(r#"to="DOWN",reason="AGENT_DOWN"} 1"#),
        "{metrics}"
    );
    let events = c
        .get(&format!("/v2.0/vpn/ipsec-site-connections/{conn}/events"))
        .await
        .expect("events");
    let last = events["events"]
        .as_array()
        .and_then(|e| e.last())
        .expect("event");
    assert_eq!(
        (&last["from"], &last["to"]),
        (&json!("ACTIVE"), &json!("DOWN"))
    );
    let mut told = false;
    while let Ok(hint) = hints.try_recv() {
        told |= hint.router_id == s.router;
    }
    assert!(told, "the standby is told to take over");
    let promoted = state("gw-b").await.expect("b");
    assert_eq!((promoted.role, promoted.lease_epoch), (HaRole::Active, 2));
    assert!(state("gw-a").await.is_none(), "the old holder has nothing");
    control
        .report(up_report("gw-a", &s.router, 1, &conn))
        .await
        .expect("stale report");
    assert_eq!(
        status().await.1,
        "AGENT_DOWN",
        "the former holder's report is refused"
    );
    control
        .report(up_report("gw-b", &s.router, 2, &conn))
        .await
        .expect("new holder's report");
    assert_eq!(status().await.0, "ACTIVE");

    control.heartbeat("gw-c").await.expect("c");
    assert_eq!(
        holders(&c, &s.router).await,
        (json!("gw-b"), json!("gw-c"), 2),
        "a new live agent becomes the standby"
    );
    control.heartbeat("gw-a").await.expect("a revives");
    assert!(
        state("gw-a").await.is_none(),
        "a revived old holder gets nothing back"
    );

    let gw_c = agent_id(&c, "gw-c").await;
    let (code, body) = c
        .raw(
            vpnaas_client::Method::POST,
            &format!("/v2.0/agents/{gw_c}/vpn-routers"),
            Some(&json!({"router_id": s.router})),
        )
        .await
        .expect("switchover");
    assert_eq!(code.as_u16(), 201, "{body}");
    assert_eq!(
        holders(&c, &s.router).await,
        (json!("gw-c"), json!("gw-b"), 3),
        "a switchover: the active one becomes the standby"
    );
    control
        .report(up_report("gw-b", &s.router, 2, &conn))
        .await
        .expect("report");
    let demoted = state("gw-b").await.expect("b");
    assert_eq!(demoted.role, HaRole::Standby);
    let (code, _) = c
        .raw(
            vpnaas_client::Method::DELETE,
            &format!("/v2.0/agents/{gw_c}/vpn-routers/{}", s.router),
            None,
        )
        .await
        .expect("remove");
    assert_eq!(code.as_u16(), 204);
    assert_eq!(
        holders(&c, &s.router).await,
        (json!("gw-b"), Value::Null, 4),
        "taken off its active agent, the standby takes over"
    );
    control.heartbeat("gw-b").await.expect("b");
    let (_, standby, _) = holders(&c, &s.router).await;
    assert!(standby == "gw-a" || standby == "gw-c", "{standby}");
}

/// A standby that stops hearing its active agent's answers to liveness probes claims the
/// router: the server grants it only to the standby under the current epoch. The old
/// holder, now the standby, cannot claim it back while the new one beats (agents cut off
/// from each other switch over once), until it comes back from the dead. A standby's
/// desired state names where its active agent answers, and a standby is told when that
/// address moves.
#[tokio::test]
async fn a_standby_claims_a_silent_active_agents_router_once() {
    let Clocked {
        app,
        client: c,
        clock,
        server: _server,
        dir: _dir,
    } = start_on_manual_clock(1).await;
    let control = LocalControlPlane::new(app.clone());
    let beat = |host: &str, port: u16| Heartbeat {
        host: host.into(),
        ha_address: Some(([127, 0, 0, 1], port).into()),
    };
    control.beat(&beat("gw-a", 4001)).await.expect("a");
    control.beat(&beat("gw-b", 4002)).await.expect("b");
    let external = external_network(&c).await;
    let s = site(&c, &external, 1).await;
    c.update(Kind::Router, &s.router, json!({"ha": true}))
        .await
        .expect("made HA");
    control.beat(&beat("gw-a", 4001)).await.expect("a");
    assert_eq!(
        holders(&c, &s.router).await,
        (json!("gw-a"), json!("gw-b"), 1)
    );
    let state = |host: &'static str| {
        let (control, router) = (&control, s.router.clone());
        async move { control.router_state(host, &router).await.expect("state") }
    };
    let peer = |port: u16| {
        Some(HaPeer {
            host: "gw-a".into(),
            address: ([127, 0, 0, 1], port).into(),
        })
    };
    assert_eq!(state("gw-b").await.expect("b").active_peer, peer(4001));
    assert_eq!(state("gw-a").await.expect("a").active_peer, None);
    let mut hints = app.notifier.subscribe("gw-b");
    control
        .beat(&beat("gw-a", 4011))
        .await
        .expect("a restarted");
    assert!(
        hints.try_recv().is_ok_and(|h| h.router_id == s.router),
        "the standby is told its active agent's new address"
    );
    assert_eq!(state("gw-b").await.expect("b").active_peer, peer(4011));

    let svc = legacy_service(&c, &s).await;
    let pols = policies(&c).await;
    let conn = c
        .create(
            Kind::SiteConnection,
            legacy_connection(&id(&svc), &pols, "10.2.0.0/24"),
        )
        .await
        .expect("connection");
    let conn = id(&conn);
    control
        .report(up_report("gw-a", &s.router, 1, &conn))
        .await
        .expect("active report");
    let claim = |host: &str, epoch: u64| TakeoverClaim {
        host: host.into(),
        silent_host: "gw-a".into(),
        routers: vec![LeaseClaim {
            router_id: s.router.clone(),
            lease_epoch: epoch,
        }],
    };
    control.beat(&beat("gw-c", 4003)).await.expect("c");
    let none: Vec<String> = vec![];
    assert_eq!(
        control.claim(&claim("gw-c", 1)).await.expect("c"),
        none,
        "not the standby"
    );
    assert_eq!(
        control.claim(&claim("gw-b", 0)).await.expect("b"),
        none,
        "a stale epoch"
    );
    assert_eq!(
        holders(&c, &s.router).await,
        (json!("gw-a"), json!("gw-b"), 1)
    );
    let mut told_a = app.notifier.subscribe("gw-a");
    assert_eq!(
        control.claim(&claim("gw-b", 1)).await.expect("b"),
        vec![s.router.clone()]
    );
    assert_eq!(
        holders(&c, &s.router).await,
        (json!("gw-b"), json!("gw-a"), 2),
        "swapped under a new epoch"
    );
    assert!(
        told_a.try_recv().is_ok_and(|h| h.router_id == s.router),
        "the old holder is told (to stop its daemon, if it lives)"
    );
    let shown = c.show(Kind::SiteConnection, &conn).await.expect("conn");
    assert_eq!(
        (&shown["status"], &shown["status_reason"]),
        (&json!("DOWN"), &json!("AGENT_DOWN"))
    );
    assert_eq!(
        c.show(Kind::Router, &s.router).await.expect("router")["lease_claimed_from"],
        "gw-a"
    );

    for _ in 0..3 {
        assert_eq!(
            control.claim(&claim("gw-a", 2)).await.expect("a"),
            none,
            "cut off from each other, both beating: no claim back"
        );
        clock.advance(Duration::from_millis(600));
        for host in ["gw-a", "gw-b", "gw-c"] {
            control.heartbeat(host).await.expect("beats");
        }
    }
    assert_eq!(
        holders(&c, &s.router).await,
        (json!("gw-b"), json!("gw-a"), 2)
    );

    clock.advance(Duration::from_millis(1500));
    control.heartbeat("gw-b").await.expect("only b beats");
    assert_eq!(
        holders(&c, &s.router).await,
        (json!("gw-b"), json!("gw-a"), 2),
        "no live agent to replace the dead standby"
    );
    control.beat(&beat("gw-a", 4021)).await.expect("a revives");
    assert_eq!(
        c.show(Kind::Router, &s.router).await.expect("router")["lease_claimed_from"],
        Value::Null,
        "back from the dead: the bar is lifted"
    );
    assert_eq!(
        control.claim(&claim("gw-a", 2)).await.expect("a"),
        vec![s.router.clone()]
    );
    assert_eq!(
        holders(&c, &s.router).await,
        (json!("gw-a"), json!("gw-b"), 3)
    );
}
