//! Key rotation on the server's side, through real HTTP: a change of pre-shared key (and
//! only that) grows the connection's credentials generation, `POST …/reauthenticate` its
//! re-authentication generation, both reach the agent in the desired state, and what the
//! agent reports done becomes `CREDENTIALS_LOADED` / `REAUTHENTICATED` events, each once.
//! Who may change the connection may ask a re-authentication; a reader is refused,
//! another project sees no connection, an administratively down one has nothing to
//! re-authenticate.

mod common;

use common::*;
use serde_json::{Value, json};
use vpnaas_bus::ControlPlane;
use vpnaas_model::Kind;
use vpnaas_model::agent::{Generations, RouterState};
use vpnaas_model::enums::Status;
use vpnaas_server::service::agents::LocalControlPlane;
use vpnaas_server::{App, Server, build_app};

const HOST: &str = "host-a";

struct World {
    _server: Server,
    _dir: tempfile::TempDir,
    control: LocalControlPlane,
    client: vpnaas_client::Client,
    router: String,
    conn: String,
    project: String,
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let app: App = build_app(settings(dir.path())).await.expect("app");
    let server = Server::start_app(app.clone()).await.expect("server");
    let client = vpnaas_client::Client::new(&server.url());
    let control = LocalControlPlane::new(app);
    control.heartbeat(HOST).await.expect("register");
    let connected = connected_site(&client).await;
    World {
        router: connected.site.router.clone(),
        conn: id(&connected.conn),
        project: connected.conn["project_id"]
            .as_str()
            .expect("project")
            .into(),
        control,
        client,
        _server: server,
        _dir: dir,
    }
}

impl World {
    async fn state(&self) -> RouterState {
        self.control
            .router_state(HOST, &self.router)
            .await
            .expect("state")
            .expect("hosted")
    }

    /// The agent reports the connection `status` with these generations applied.
    async fn report(&self, status: Status, applied: Generations) {
        let state = self.state().await;
        let mut report = up_report(HOST, &self.router, state.lease_epoch, &self.conn);
        report.connections[0].status = status;
        if status != Status::Active {
            report.connections[0].reason = vpnaas_model::enums::StatusReason::AuthFailed;
        }
        report.connections[0].applied = applied;
        self.control.report(report).await.expect("report");
    }

    async fn events(&self) -> Vec<Value> {
        let events = self
            .client
            .get(&format!(
                "/v2.0/vpn/ipsec-site-connections/{}/events",
                self.conn
            ))
            .await
            .expect("events");
        events["events"].as_array().cloned().unwrap_or_default()
    }

    async fn shown(&self) -> Value {
        self.client
            .show(Kind::SiteConnection, &self.conn)
            .await
            .expect("show")
    }
}

fn reasons(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{}>{} {}", e["from"], e["to"], e["reason"]).replace('"', ""))
        .collect()
}

#[tokio::test]
async fn a_new_key_and_a_reauthentication_reach_the_agent_and_come_back_as_events() {
    let w = world().await;
    w.report(Status::Active, Generations::default()).await;
    assert_eq!(
        w.state().await.connections[0].generations,
        Generations::default()
    );

    for unchanged in [json!({"psk": "secret-psk"}), json!({"name": "renamed"})] {
        w.client
            .update(Kind::SiteConnection, &w.conn, unchanged)
            .await
            .expect("update");
    }
    assert_eq!(
        w.shown().await["key_rotation"]["credentials"],
        0,
        "the same key is no new credential"
    );
    let updated = w
        .client
        .update(Kind::SiteConnection, &w.conn, json!({"psk": "rotated-psk"}))
        .await
        .expect("new key");
    assert_eq!(updated["key_rotation"]["credentials"], 1);
    let spec = w.state().await.connections[0].clone();
    assert_eq!(
        (spec.psk.expose(), spec.generations.credentials),
        ("rotated-psk", 1)
    );

    let before = w.events().await.len();
    let loaded = Generations {
        credentials: 1,
        reauth: 0,
    };
    w.report(Status::Active, loaded).await;
    w.report(Status::Active, loaded).await;
    let events = w.events().await;
    assert_eq!(
        reasons(&events[before..]),
        ["ACTIVE>ACTIVE CREDENTIALS_LOADED"],
        "said once: {events:?}"
    );
    let shown = w.shown().await;
    assert_eq!(shown["status_reason"], "ESTABLISHED", "{shown}");
    assert_eq!(shown["key_rotation"]["credentials_loaded"], 1);

    let revision = w.state().await.revision;
    let asked = w
        .client
        .reauthenticate(&w.conn)
        .await
        .expect("reauthenticate");
    assert_eq!(asked["key_rotation"]["reauth"], 1, "{asked}");
    let state = w.state().await;
    assert!(state.revision > revision, "the agent is told");
    assert_eq!(
        state.connections[0].generations,
        Generations {
            credentials: 1,
            reauth: 1
        }
    );
    let done = Generations {
        credentials: 1,
        reauth: 1,
    };
    w.report(Status::Active, done).await;
    w.report(Status::Active, done).await;
    let events = w.events().await;
    assert_eq!(
        reasons(&events[before..]),
        [
            "ACTIVE>ACTIVE CREDENTIALS_LOADED",
            "ACTIVE>ACTIVE REAUTHENTICATED"
        ]
    );
    assert_eq!(w.shown().await["key_rotation"]["reauthenticated"], 1);

    w.client.reauthenticate(&w.conn).await.expect("again");
    w.report(
        Status::Down,
        Generations {
            credentials: 1,
            reauth: 2,
        },
    )
    .await;
    let events = w.events().await;
    assert_eq!(
        reasons(&events[before + 2..]),
        ["ACTIVE>DOWN AUTH_FAILED"],
        "a failed re-authentication is told by its transition"
    );
}

#[tokio::test]
async fn only_who_may_change_the_connection_asks_and_only_while_it_is_up() {
    let w = world().await;
    let path = format!("/v2.0/vpn/ipsec-site-connections/{}/reauthenticate", w.conn);
    let post = |client: vpnaas_client::Client| {
        let path = path.clone();
        async move {
            let (status, body) = client
                .raw(reqwest::Method::POST, &path, None)
                .await
                .expect("answer");
            (status.as_u16(), body)
        }
    };
    let (status, body) = post(w.client.as_project(&w.project, "reader")).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = post(w.client.as_project("another-project", "member")).await;
    assert_eq!(
        (status, body["NeutronError"]["type"].as_str()),
        (404, Some("IPsecSiteConnectionNotFound"))
    );
    let (status, body) = post(w.client.as_project(&w.project, "member")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["ipsec_site_connection"]["key_rotation"]["reauth"], 1);

    w.client
        .update(
            Kind::SiteConnection,
            &w.conn,
            json!({"admin_state_up": false}),
        )
        .await
        .expect("down");
    let (status, body) = post(w.client.as_project(&w.project, "member")).await;
    assert_eq!(
        (status, body["NeutronError"]["type"].as_str()),
        (409, Some("ReauthenticationUnavailable")),
        "{body}"
    );
    assert_eq!(
        w.shown().await["key_rotation"]["reauth"],
        1,
        "a refusal changes nothing"
    );
}
