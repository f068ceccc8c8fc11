//! The bus over a real NATS server (one of its own, on a free port): an agent talks to two
//! servers sharing one PostgreSQL database without knowing either; a change made through
//! one server reaches the agent and is visible through the other; after NATS restarts,
//! everyone reconnects and the agent is told about every router it hosts.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use vpnaas_bus::ControlPlane;
use vpnaas_bus::nats::{NatsControlPlane, NatsNotifier};
use vpnaas_client::Client;
use vpnaas_model::Kind;
use vpnaas_model::agent::{ConnectionStatus, RouterChanged, StatusReport};
use vpnaas_model::enums::{Status, StatusReason};
use vpnaas_server::service::agents::LocalControlPlane;
use vpnaas_server::{Server, build_app_with};
use vpnaas_test_support::nats::NatsServer;

/// A server on the shared database whose agents' bus is NATS; the servers of one
/// database share its secret key file.
async fn server_on_nats(
    url: &str,
    database: &str,
    key_file: &std::path::Path,
    dir: &tempfile::TempDir,
) -> Server {
    let (client, _) = vpnaas_bus::nats::connect(url).await.expect("nats");
    let settings = vpnaas_server::Settings {
        database_url: Some(database.to_string()),
        secret_key_file: Some(key_file.to_path_buf()),
        ..settings(dir.path())
    };
    let app = build_app_with(
        settings,
        Arc::new(NatsNotifier::new(client.clone())),
        prometheus_client::registry::Registry::default(),
    )
    .await
    .expect("app");
    vpnaas_bus::nats::serve(client, Arc::new(LocalControlPlane::new(app.clone())))
        .await
        .expect("serve agents");
    Server::start_app(app).await.expect("server")
}

async fn next_hint(
    hints: &mut tokio::sync::broadcast::Receiver<RouterChanged>,
    within: Duration,
) -> RouterChanged {
    tokio::time::timeout(within, hints.recv())
        .await
        .expect("a hint in time")
        .expect("hint")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_on_nats_works_with_two_servers_and_survives_a_nats_restart() {
    let mut nats = NatsServer::start();
    let database = vpnaas_test_support::scratch::postgres_database();
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let key_file = dir_a.path().join("shared.key");
    let a = server_on_nats(&nats.url(), &database, &key_file, &dir_a).await;
    let b = server_on_nats(&nats.url(), &database, &key_file, &dir_b).await;
    let (ca, cb) = (Client::new(&a.url()), Client::new(&b.url()));

    let agent = NatsControlPlane::connect(&nats.url())
        .await
        .expect("agent bus");
    let mut hints = agent.hints("gw-1");
    agent.heartbeat("gw-1").await.expect("register over NATS");
    assert_eq!(
        cb.list(Kind::Agent, &[]).await.expect("agents")[0]["host"],
        "gw-1"
    );

    let external = external_network(&ca).await;
    let s = site(&ca, &external, 1).await;
    assert_eq!(
        agent.hosted_routers("gw-1").await.expect("hosted"),
        vec![s.router.clone()]
    );
    while hints.try_recv().is_ok() {}
    let svc = legacy_service(&cb, &s).await;
    assert_eq!(
        next_hint(&mut hints, Duration::from_secs(2))
            .await
            .router_id,
        s.router,
        "a change through server b reaches the agent"
    );
    let pols = policies(&ca).await;
    let conn = ca
        .create(
            Kind::SiteConnection,
            legacy_connection(&id(&svc), &pols, "10.2.0.0/24"),
        )
        .await
        .expect("connection");
    let state = agent
        .router_state("gw-1", &s.router)
        .await
        .expect("state")
        .expect("hosted");
    assert_eq!(state.connections.len(), 1);
    agent
        .report(StatusReport {
            host: "gw-1".into(),
            router_id: s.router.clone(),
            applied_revision: state.revision,
            lease_epoch: state.lease_epoch,
            daemon_running: true,
            primary: false,
            connections: vec![ConnectionStatus {
                id: id(&conn),
                status: Status::Active,
                reason: StatusReason::Established,
                detail: String::new(),
                traffic: None,
                applied: Default::default(),
            }],
        })
        .await
        .expect("report over NATS");
    assert_eq!(
        cb.show(Kind::SiteConnection, &id(&conn))
            .await
            .expect("through b")["status"],
        "ACTIVE"
    );

    let port = nats.stop();
    assert!(
        agent.heartbeat("gw-1").await.is_err(),
        "without NATS a call fails (and the agent retries)"
    );
    while hints.try_recv().is_ok() {}
    nats = NatsServer::start_on(port);
    let hint = next_hint(&mut hints, Duration::from_secs(20)).await;
    assert_eq!(
        hint.router_id, s.router,
        "after reconnecting, the agent is told about every router it hosts"
    );
    agent
        .heartbeat("gw-1")
        .await
        .expect("calls work again after NATS restarted");
    ca.update(
        Kind::SiteConnection,
        &id(&conn),
        serde_json::json!({"mtu": 1400}),
    )
    .await
    .expect("update");
    assert_eq!(
        next_hint(&mut hints, Duration::from_secs(5))
            .await
            .router_id,
        s.router,
        "servers publish again too"
    );

    // An HA standby's claim travels over NATS too.
    let standby = vpnaas_model::agent::Heartbeat {
        host: "gw-2".into(),
        ha_address: Some(([127, 0, 0, 1], 4002).into()),
    };
    agent.beat(&standby).await.expect("gw-2 registers");
    let ha = ca
        .create(
            Kind::Router,
            serde_json::json!({"ha": true, "external_gateway_info": {"network_id": external.0}}),
        )
        .await
        .expect("HA router");
    let (active, standby) = (
        ha["agent_host"].as_str().expect("active").to_string(),
        ha["ha_standby_host"].as_str().expect("standby").to_string(),
    );
    let claim = vpnaas_model::agent::TakeoverClaim {
        host: standby.clone(),
        silent_host: active,
        routers: vec![vpnaas_model::agent::LeaseClaim {
            router_id: id(&ha),
            lease_epoch: ha["lease_epoch"].as_u64().expect("epoch"),
        }],
    };
    assert_eq!(
        agent.claim(&claim).await.expect("claim over NATS"),
        vec![id(&ha)]
    );
    assert_eq!(
        cb.show(Kind::Router, &id(&ha)).await.expect("router")["agent_host"],
        standby.as_str()
    );
    drop(nats);
}
