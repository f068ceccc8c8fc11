//! The server's side of the bus: agents register and appear at /v2.0/agents, routers are
//! scheduled to live agents, every change to a router's VPN state bumps its revision and
//! tells its agent, the desired state is complete, and status reports become API status.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use vpnaas_bus::ControlPlane;
use vpnaas_model::Kind;
use vpnaas_model::agent::{ConnectionStatus, StatusReport};
use vpnaas_model::enums::{Status, StatusReason};
use vpnaas_model::site_connection::{SiteConnection, Traffic};
use vpnaas_server::service::agents::LocalControlPlane;
use vpnaas_server::{App, Server, build_app};

async fn start_app() -> (Server, App, vpnaas_client::Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = build_app(settings(dir.path())).await.expect("app");
    let server = Server::start_app(app.clone()).await.expect("server");
    let client = vpnaas_client::Client::new(&server.url());
    (server, app, client, dir)
}

#[tokio::test]
async fn agents_register_and_routers_are_scheduled_to_them() {
    let (_server, app, c, _dir) = start_app().await;
    let external = external_network(&c).await;
    let early = site(&c, &external, 1).await;
    assert_eq!(
        c.show(Kind::Router, &early.router).await.expect("router")["agent_host"],
        serde_json::Value::Null
    );
    let control = LocalControlPlane::new(app.clone());
    let mut hints = app.notifier.subscribe("host-a");
    control.heartbeat("host-a").await.expect("register");
    let scheduled = c.show(Kind::Router, &early.router).await.expect("router");
    assert_eq!(
        scheduled["agent_host"], "host-a",
        "an unscheduled router goes to the first live agent"
    );
    let hint = hints.recv().await.expect("hint");
    assert_eq!(
        (hint.router_id.as_str(), hint.revision),
        (
            early.router.as_str(),
            scheduled["revision_number"].as_u64().unwrap_or(0)
        )
    );
    control.heartbeat("host-b").await.expect("register b");
    let later = site(&c, &external, 2).await;
    assert_eq!(
        c.show(Kind::Router, &later.router).await.expect("router")["agent_host"],
        "host-b",
        "fewest routers first"
    );
    assert_eq!(
        control.hosted_routers("host-a").await.expect("hosted"),
        vec![early.router.clone()]
    );

    let agents = c.list(Kind::Agent, &[]).await.expect("agents");
    assert_eq!(agents.len(), 2);
    assert!(
        agents
            .iter()
            .all(|a| a["alive"] == true && a["agent_type"] == "VPN agent")
    );
    assert_eq!(
        fault(c.as_project("p", "member").list(Kind::Agent, &[]).await),
        (403, "PolicyNotAuthorized".into())
    );
    // Agents exist by their heartbeats: the collection is not writable.
    assert_eq!(
        fault(c.create(Kind::Agent, json!({"host": "x"})).await),
        (405, "HTTPMethodNotAllowed".into())
    );
}

#[tokio::test]
async fn vpn_changes_bump_the_revision_and_reach_the_agent() {
    let (_server, app, c, _dir) = start_app().await;
    let control = LocalControlPlane::new(app.clone());
    control.heartbeat("h").await.expect("register");
    let mut hints = app.notifier.subscribe("h");
    let external = external_network(&c).await;
    let s = site(&c, &external, 1).await;
    while hints.try_recv().is_ok() {}
    let revision = |c: &vpnaas_client::Client, r: &str| {
        let (c, r) = (c.clone(), r.to_string());
        async move {
            c.show(Kind::Router, &r).await.expect("router")["revision_number"]
                .as_u64()
                .expect("revision")
        }
    };
    let r0 = revision(&c, &s.router).await;
    let pols = policies(&c).await;
    assert_eq!(
        revision(&c, &s.router).await,
        r0,
        "policies alone change no router"
    );
    let svc = legacy_service(&c, &s).await;
    assert_eq!(hints.recv().await.expect("hint").revision, r0 + 1);
    let conn = c
        .create(
            Kind::SiteConnection,
            legacy_connection(&id(&svc), &pols, "10.2.0.0/24"),
        )
        .await
        .expect("conn");
    assert_eq!(hints.recv().await.expect("hint").revision, r0 + 2);
    c.update(Kind::SiteConnection, &id(&conn), json!({"psk": "rotated"}))
        .await
        .expect("update");
    assert_eq!(hints.recv().await.expect("hint").revision, r0 + 3);
    c.update(Kind::IkePolicy, &pols.0, json!({"name": "renamed"}))
        .await
        .expect("rename");
    assert!(
        hints.try_recv().is_err(),
        "a rename changes nothing an agent applies"
    );
    assert_eq!(revision(&c, &s.router).await, r0 + 3);

    let state = control
        .router_state("h", &s.router)
        .await
        .expect("state")
        .expect("hosted");
    assert_eq!(state.revision, r0 + 3);
    assert_eq!(
        state.gateway[0].address.to_string(),
        format!("{}/24", s.gateway_ip)
    );
    assert_eq!(state.interfaces[0].address.to_string(), "10.1.0.1/24");
    let spec = &state.connections[0];
    assert_eq!(spec.psk.expose(), "rotated");
    assert_eq!(
        spec.local_id, s.gateway_ip,
        "empty local_id means the gateway address"
    );
    assert_eq!(
        spec.local_cidrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["10.1.0.0/24"]
    );
    assert_eq!(
        spec.peer_cidrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["10.2.0.0/24"]
    );
    assert!(spec.enabled);
    assert!(
        control
            .router_state("other", &s.router)
            .await
            .expect("state")
            .is_none(),
        "only the hosting agent gets it"
    );

    c.delete(Kind::SiteConnection, &id(&conn))
        .await
        .expect("delete");
    assert_eq!(hints.recv().await.expect("hint").revision, r0 + 4);
}

#[tokio::test]
async fn status_reports_become_api_status_without_moving_the_revision() {
    let (_server, app, c, _dir) = start_app().await;
    let control = LocalControlPlane::new(app.clone());
    control.heartbeat("h").await.expect("register");
    let external = external_network(&c).await;
    let s = site(&c, &external, 1).await;
    let pols = policies(&c).await;
    let svc = legacy_service(&c, &s).await;
    let empty = c
        .create(Kind::VpnService, json!({"router_id": s.router}))
        .await
        .expect("service without connections");
    let conn = c
        .create(
            Kind::SiteConnection,
            legacy_connection(&id(&svc), &pols, "10.2.0.0/24"),
        )
        .await
        .expect("conn");
    let router = c.show(Kind::Router, &s.router).await.expect("router");
    let revision = router["revision_number"].clone();
    let report = |status, daemon_running| StatusReport {
        host: "h".into(),
        router_id: s.router.clone(),
        applied_revision: revision.as_u64().unwrap_or(0),
        lease_epoch: router["lease_epoch"].as_u64().unwrap_or(0),
        daemon_running,
        primary: false,
        connections: vec![ConnectionStatus {
            id: id(&conn),
            status,
            reason: if status == Status::Active {
                StatusReason::Established
            } else {
                StatusReason::AuthFailed
            },
            detail: "AES_CBC-128/HMAC_SHA2_256_128".into(),
            traffic: (status == Status::Active).then_some(Traffic {
                bytes_in: 168,
                bytes_out: 168,
                packets_in: 2,
                packets_out: 2,
                rekeys: 0,
            }),
            applied: Default::default(),
        }],
    };
    control
        .report(report(Status::Active, true))
        .await
        .expect("report");
    assert_eq!(
        c.show(Kind::SiteConnection, &id(&conn))
            .await
            .expect("conn")["status"],
        "ACTIVE"
    );
    assert_eq!(
        c.show(Kind::VpnService, &id(&svc)).await.expect("svc")["status"],
        "ACTIVE"
    );
    let shown = c
        .show(Kind::SiteConnection, &id(&conn))
        .await
        .expect("conn");
    assert_eq!(shown["status_reason"], "ESTABLISHED");
    assert_eq!(shown["traffic"]["packets_in"], 2);
    let first_change = shown["status_changed_at"]
        .as_str()
        .expect("changed at")
        .to_string();
    control
        .report(report(Status::Active, true))
        .await
        .expect("same again");
    assert_eq!(
        c.show(Kind::SiteConnection, &id(&conn))
            .await
            .expect("conn")["status_changed_at"],
        first_change.as_str(),
        "no transition, no new time"
    );
    assert_eq!(
        c.show(Kind::VpnService, &id(&empty)).await.expect("svc")["status"],
        "DOWN",
        "never PENDING_CREATE forever"
    );
    control
        .report(report(Status::Down, true))
        .await
        .expect("report");
    assert_eq!(
        c.show(Kind::SiteConnection, &id(&conn))
            .await
            .expect("conn")["status"],
        "DOWN"
    );
    assert_eq!(
        c.show(Kind::VpnService, &id(&svc)).await.expect("svc")["status"],
        "DOWN"
    );
    control
        .report(report(Status::Down, false))
        .await
        .expect("report");
    assert_eq!(
        c.show(Kind::VpnService, &id(&svc)).await.expect("svc")["status"],
        "ERROR",
        "its daemon cannot run"
    );
    let events = c
        .get(&format!(
            "/v2.0/vpn/ipsec-site-connections/{}/events",
            id(&conn)
        ))
        .await
        .expect("events");
    let transitions: Vec<(String, String, String)> = events["events"]
        .as_array()
        .expect("list")
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap_or("").into(),
                e["to"].as_str().unwrap_or("").into(),
                e["reason"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        transitions,
        [
            (
                "PENDING_CREATE".to_string(),
                "ACTIVE".to_string(),
                "ESTABLISHED".to_string()
            ),
            (
                "ACTIVE".to_string(),
                "DOWN".to_string(),
                "AUTH_FAILED".to_string()
            ),
        ],
        "one event per transition, oldest first"
    );
    assert_eq!(
        events["events"][0]["detail"],
        "AES_CBC-128/HMAC_SHA2_256_128"
    );
    let other = c.as_project("someone-else", "member");
    assert_eq!(
        fault(
            other
                .get(&format!(
                    "/v2.0/vpn/ipsec-site-connections/{}/events",
                    id(&conn)
                ))
                .await
        )
        .0,
        404
    );
    let mut foreign = report(Status::Active, true);
    foreign.host = "impostor".into();
    control.report(foreign).await.expect("ignored");
    assert_eq!(
        c.show(Kind::SiteConnection, &id(&conn))
            .await
            .expect("conn")["status"],
        "DOWN",
        "only the hosting agent reports"
    );
    assert_eq!(
        c.show(Kind::Router, &s.router).await.expect("router")["revision_number"],
        revision
    );

    let metrics = c.get_text("/metrics").await.expect("metrics");
    for line in [
        r#"vpnaas_connection_transitions_total{from="PENDING_CREATE",to="ACTIVE",reason="ESTABLISHED"} 1"#,
        r#"vpnaas_connection_transitions_total{from="ACTIVE",to="DOWN",reason="AUTH_FAILED"} 1"#,
        r#"vpnaas_connections{status="DOWN"} 1"#,
        r#"vpnaas_connections{status="ACTIVE"} 0"#,
        r#"vpnaas_agents{alive="true"} 1"#,
        r#"vpnaas_http_request_duration_seconds_count{method="POST",route="/v2.0/vpn/ipsec-site-connections",code="201"} 1"#,
        r#"vpnaas_http_request_duration_seconds_count{method="GET",route="/v2.0/vpn/ipsec-site-connections/{id}/events",code="404"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in:\n{metrics}"
        );
    }
    assert!(
        metrics.contains("vpnaas_status_reports_total 4"),
        "reports from the hosting agent are counted, the impostor's is not:\n{metrics}"
    );
    assert!(
        !metrics.contains(&id(&conn)) && !metrics.contains(&s.router),
        "no ids in labels"
    );
}

#[tokio::test]
async fn a_new_hint_queue_starts_with_every_hosted_router() {
    let (server, _app, c, _dir) = start_app().await;
    let external = external_network(&c).await;
    let s1 = site(&c, &external, 1).await;
    let s2 = site(&c, &external, 2).await;
    let remote = vpnaas_bus::http::HttpControlPlane::new(&server.url(), None);
    remote.heartbeat("h").await.expect("register");
    let mut hints = remote.hints("h");
    let mut seen = Vec::new();
    for _ in 0..2 {
        let hint = tokio::time::timeout(std::time::Duration::from_secs(2), hints.recv())
            .await
            .expect("at once, not after a long poll")
            .expect("hint");
        seen.push(hint.router_id);
    }
    seen.sort();
    let mut expected = vec![s1.router.clone(), s2.router.clone()];
    expected.sort();
    assert_eq!(
        seen, expected,
        "an agent polling a fresh server learns of all its routers, missed hints or not"
    );
    legacy_service(&c, &s1).await;
    let hint = tokio::time::timeout(std::time::Duration::from_secs(2), hints.recv())
        .await
        .expect("then changes as they happen")
        .expect("hint");
    assert_eq!(hint.router_id, s1.router);
}

/// A full resync asks for many desired states in one call, over HTTP as in process: the
/// answer holds those the host holds, nothing for a router unknown or elsewhere; its
/// reports go back in one call too (one about a router held elsewhere is refused alone).
#[tokio::test]
async fn desired_states_come_in_batches_of_what_the_host_holds() {
    let (server, app, c, _dir) = start_app().await;
    let local = LocalControlPlane::new(app.clone());
    local.heartbeat("h").await.expect("register");
    let external = external_network(&c).await;
    let (s1, s2) = (site(&c, &external, 1).await, site(&c, &external, 2).await);
    let pols = policies(&c).await;
    for (s, peer) in [(&s1, "10.2.0.0/24"), (&s2, "10.1.0.0/24")] {
        let svc = legacy_service(&c, s).await;
        c.create(
            Kind::SiteConnection,
            legacy_connection(&id(&svc), &pols, peer),
        )
        .await
        .expect("connection");
    }
    local.heartbeat("elsewhere").await.expect("register");
    let s3 = site(&c, &external, 3).await;
    assert_eq!(
        c.show(Kind::Router, &s3.router).await.expect("r3")["agent_host"],
        "elsewhere"
    );
    let remote = vpnaas_bus::http::HttpControlPlane::new(&server.url(), None);
    let asked = [
        s1.router.clone(),
        "no-such-router".to_string(),
        s3.router.clone(),
        s2.router.clone(),
    ];
    let states = remote.router_states("h", &asked).await.expect("states");
    let ids: Vec<&str> = states.iter().map(|s| s.router_id.as_str()).collect();
    assert_eq!(ids, [s1.router.as_str(), s2.router.as_str()]);
    assert!(states.iter().all(|s| s.connections.len() == 1));
    assert_eq!(
        states,
        local.router_states("h", &asked).await.expect("in process"),
        "the same over HTTP as in process"
    );
    let report = |router_id: &str, conns: Vec<String>| StatusReport {
        host: "h".into(),
        router_id: router_id.into(),
        applied_revision: 0,
        lease_epoch: 1,
        daemon_running: true,
        primary: false,
        connections: conns
            .into_iter()
            .map(|id| ConnectionStatus {
                id,
                status: Status::Active,
                reason: StatusReason::Established,
                detail: String::new(),
                traffic: None,
                applied: Default::default(),
            })
            .collect(),
    };
    let mut reports: Vec<StatusReport> = states
        .iter()
        .map(|s| {
            report(
                &s.router_id,
                s.connections.iter().map(|c| c.id.clone()).collect(),
            )
        })
        .collect();
    reports.push(report(&s3.router, vec![]));
    remote.reports(reports).await.expect("reports in one call");
    for state in &states {
        let conn = &state.connections[0].id;
        assert_eq!(
            c.show(Kind::SiteConnection, conn).await.expect("conn")["status"],
            "ACTIVE"
        );
    }
    let (status, body) = c
        .raw(
            reqwest::Method::POST,
            "/v2.0/vpnaas-agent/h/router-states",
            Some(&json!({"router_ids": "not a list"})),
        )
        .await
        .expect("raw");
    assert_eq!(
        (status.as_u16(), body["NeutronError"]["type"].as_str()),
        (400, Some("HTTPBadRequest"))
    );
}

#[tokio::test]
async fn the_agent_routes_are_for_admins_only() {
    let (_server, _app, c, _dir) = start_app().await;
    let member = c.as_project("p", "member");
    for (method, path) in [
        (reqwest::Method::POST, "/v2.0/vpnaas-agent/h/heartbeat"),
        (reqwest::Method::GET, "/v2.0/vpnaas-agent/h/routers"),
        (reqwest::Method::GET, "/v2.0/vpnaas-agent/h/hints"),
        (reqwest::Method::POST, "/v2.0/vpnaas-agent/h/router-states"),
    ] {
        let (status, body) = member.raw(method, path, None).await.expect("raw");
        assert_eq!(
            (status.as_u16(), body["NeutronError"]["type"].as_str()),
            (403, Some("PolicyNotAuthorized")),
            "{path}"
        );
    }
    let (status, _) = c
        .raw(
            reqwest::Method::POST,
            "/v2.0/vpnaas-agent/h/heartbeat",
            None,
        )
        .await
        .expect("raw");
    assert_eq!(status.as_u16(), 204);
    let (status, body) = c
        .raw(reqwest::Method::GET, "/v2.0/vpnaas-agent/h/routers", None)
        .await
        .expect("raw");
    assert_eq!((status.as_u16(), body), (200, json!([])));
}

/// `(status, status_reason)` of an object as the API shows it.
async fn status_of(c: &vpnaas_client::Client, kind: Kind, id: &str) -> (String, Value) {
    let shown = c.show(kind, id).await.expect("shown");
    (
        shown["status"].as_str().expect("status").to_string(),
        shown["status_reason"].clone(),
    )
}

#[tokio::test]
async fn a_router_no_live_agent_hosts_says_so_and_stops_saying_it_when_one_comes() {
    let Clocked {
        app,
        client: c,
        clock,
        server: _server,
        dir: _dir,
    } = start_on_manual_clock(5).await;
    let external = external_network(&c).await;
    let s = site(&c, &external, 1).await;
    let pols = policies(&c).await;

    // The README's walk-through: a server alone, no agent anywhere.
    let svc = legacy_service(&c, &s).await;
    assert_eq!(
        (&svc["status"], &svc["status_reason"]),
        (&json!("PENDING_CREATE"), &json!("NO_AGENT")),
        "the created service says why nothing will happen"
    );
    let conn = c
        .create(
            Kind::SiteConnection,
            legacy_connection(&id(&svc), &pols, "10.2.0.0/24"),
        )
        .await
        .expect("connection");
    assert_eq!(
        (&conn["status"], &conn["status_reason"]),
        (&json!("PENDING_CREATE"), &json!("NO_AGENT"))
    );
    let conn = id(&conn);

    // An agent starts: the router is placed on it and the server's verdict is lifted.
    let control = LocalControlPlane::new(app.clone());
    control.heartbeat("gw-a").await.expect("gw-a");
    assert_eq!(
        status_of(&c, Kind::SiteConnection, &conn).await,
        ("PENDING_CREATE".into(), Value::Null)
    );
    assert_eq!(
        status_of(&c, Kind::VpnService, &id(&svc)).await,
        ("PENDING_CREATE".into(), Value::Null)
    );
    let router = c.show(Kind::Router, &s.router).await.expect("router");
    let epoch = router["lease_epoch"].as_u64().expect("epoch");
    let mut up = up_report("gw-a", &s.router, epoch, &conn);
    control.report(up.clone()).await.expect("report");
    assert_eq!(
        status_of(&c, Kind::SiteConnection, &conn).await,
        ("ACTIVE".into(), json!("ESTABLISHED"))
    );

    // The only agent dies: nobody can take over, and the server says so without waiting
    // for a heartbeat that will not come.
    clock.advance(Duration::from_secs(6));
    vpnaas_server::service::scheduler::sweep(&app)
        .await
        .expect("sweep");
    assert_eq!(
        status_of(&c, Kind::SiteConnection, &conn).await,
        ("DOWN".into(), json!("AGENT_DOWN"))
    );
    assert_eq!(
        status_of(&c, Kind::VpnService, &id(&svc)).await,
        ("DOWN".into(), json!("AGENT_DOWN"))
    );

    // It comes back: told to look at its router, whose revision moved, so its next report
    // differs from the last one it sent and puts the truth back.
    let mut hints = app.notifier.subscribe("gw-a");
    control.heartbeat("gw-a").await.expect("gw-a again");
    let hint = hints.try_recv().expect("the revived agent is told");
    assert_eq!(hint.router_id, s.router);
    assert!(hint.revision > up.applied_revision);
    up.applied_revision = hint.revision;
    control.report(up).await.expect("report");
    assert_eq!(
        status_of(&c, Kind::SiteConnection, &conn).await,
        ("ACTIVE".into(), json!("ESTABLISHED"))
    );
    assert_eq!(
        status_of(&c, Kind::VpnService, &id(&svc)).await,
        ("ACTIVE".into(), Value::Null)
    );
}

#[tokio::test]
async fn with_every_agent_dead_the_servers_own_sweep_marks_their_routers() {
    let h = start_with(|s| s.agent_down_time = 1).await;
    let c = &h.client;
    let conn = connected_site(c).await.conn;
    let agent = vpnaas_bus::http::HttpControlPlane::new(&h.server.url(), None);
    agent.heartbeat("gw-lone").await.expect("beat");
    // No further heartbeat: only the server's periodic sweep can notice the agent died.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, reason) = status_of(c, Kind::SiteConnection, &id(&conn)).await;
        if reason == json!("AGENT_DOWN") {
            assert_eq!(status, "PENDING_CREATE", "never up, still pending");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {status} {reason}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_refused_agent_call_is_rejected_and_an_unreachable_server_unavailable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        "[[token]]\ntoken = \"t-alice\"\nproject_id = \"alice\"\nroles = [\"member\"]\n",
    )
    .expect("write tokens");
    let h = start_with(|s| {
        s.auth = vpnaas_server::AuthMode::Token;
        s.tokens_file = Some(tokens.clone());
    })
    .await;
    for token in [None, Some("t-alice".to_string())] {
        let agent = vpnaas_bus::http::HttpControlPlane::new(&h.server.url(), token);
        let refused = agent.heartbeat("gw-1").await;
        assert!(
            matches!(refused, Err(vpnaas_bus::Error::Rejected(_))),
            "{refused:?}"
        );
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let unreachable = vpnaas_bus::http::HttpControlPlane::new(&url, None)
        .heartbeat("gw-1")
        .await;
    assert!(
        matches!(unreachable, Err(vpnaas_bus::Error::Unavailable(_))),
        "{unreachable:?}"
    );
}

#[tokio::test]
async fn a_refused_hint_poll_backs_off_instead_of_spinning() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let polls = Arc::new(AtomicUsize::new(0));
    let counted = polls.clone();
    let refusing = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { axum::http::StatusCode::NOT_FOUND }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let serving = tokio::spawn(async move { axum::serve(listener, refusing).await });
    let mut hints = vpnaas_bus::http::HttpControlPlane::new(&url, None).hints("gw-1");
    // Backing off 1 s, then 2 s: within 2.5 s at most two polls, however fast the machine
    // (a slower one polls less). Spinning on the refusal made thousands.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let seen = polls.load(Ordering::SeqCst);
    assert!((1..=2).contains(&seen), "{seen} polls in 2.5 s");
    assert!(hints.try_recv().is_err(), "a refusal is no hint");
    serving.abort();
}

/// A connection no agent can run says why instead of staying `PENDING_CREATE` without a
/// word. The API refuses to create one whose peer's IP version the router's gateway
/// lacks, but a stored connection can still come to that (a router whose gateway changed
/// under it, as one an external inventory owns may; a record from before the check): here
/// its peer is changed behind the API's back. Set right through the API, it runs again.
#[tokio::test]
async fn a_connection_without_a_gateway_for_its_peer_family_says_so() {
    let (_server, app, c, _dir) = start_app().await;
    let control = LocalControlPlane::new(app.clone());
    control.heartbeat("host-a").await.expect("register");
    let connected = connected_site(&c).await;
    let (router, conn_id) = (connected.site.router.clone(), id(&connected.conn));
    let mut tx = app.store.begin().await.expect("transaction");
    let mut conn: SiteConnection = tx.load(&conn_id).await.expect("load").expect("stored");
    conn.peer_address = "2001:db8::200".parse().expect("an IPv6 peer");
    tx.save(&conn).await.expect("save");
    tx.commit().await.expect("commit");

    let state = control
        .router_state("host-a", &router)
        .await
        .expect("state")
        .expect("hosted");
    assert!(state.connections.is_empty(), "no agent could run it");
    let mut report = up_report("host-a", &router, state.lease_epoch, &conn_id);
    report.connections.clear();
    control.report(report).await.expect("report");
    let shown = c.show(Kind::SiteConnection, &conn_id).await.expect("show");
    assert_eq!(
        (&shown["status"], &shown["status_reason"]),
        (&json!("ERROR"), &json!("NO_GATEWAY_FOR_PEER_FAMILY")),
        "{shown}"
    );

    c.update(
        Kind::SiteConnection,
        &conn_id,
        json!({"peer_address": "203.0.113.200"}),
    )
    .await
    .expect("an IPv4 peer again");
    let state = control
        .router_state("host-a", &router)
        .await
        .expect("state")
        .expect("hosted");
    assert_eq!(state.connections.len(), 1, "handed to the agent again");
    control
        .report(up_report("host-a", &router, state.lease_epoch, &conn_id))
        .await
        .expect("report");
    let shown = c.show(Kind::SiteConnection, &conn_id).await.expect("show");
    assert_eq!(
        (&shown["status"], &shown["status_reason"]),
        (&json!("ACTIVE"), &json!("ESTABLISHED"))
    );
}
