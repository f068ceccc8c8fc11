//! Pre-shared keys at rest, through the real API on a real database: created and changed
//! through the API, a PSK is never found in the database's bytes (the SQLite files, or a
//! `pg_dump` with `VPNAAS_TEST_BACKEND=postgres`), the key file is created private, those
//! who may write the connection read the PSK back and readers see it redacted, and the
//! agent hosting the router receives it in clear in its desired state, with nothing sealed
//! and no other router's secret.

mod common;

use std::os::unix::fs::MetadataExt;

use common::*;
use serde_json::json;
use vpnaas_bus::ControlPlane;
use vpnaas_model::Kind;
use vpnaas_server::service::agents::LocalControlPlane;
use vpnaas_server::{Server, build_app};

/// Everything the server's database holds, as stored.
fn raw_database(settings: &vpnaas_server::Settings) -> String {
    let bytes = match &settings.database_url {
        Some(url) => {
            let out = std::process::Command::new("pg_dump")
                .args(["--data-only", "-d", url])
                .output()
                .expect("pg_dump (PostgreSQL's client)");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }
        None => std::fs::read_dir(&settings.data_dir)
            .expect("data dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.to_string_lossy().contains("vpnaas.db"))
            .flat_map(|p| std::fs::read(p).expect("read"))
            .collect(),
    };
    String::from_utf8_lossy(&bytes).into_owned()
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("{name}-{nanos}")
}

#[tokio::test]
async fn psks_are_sealed_in_the_database_and_clear_for_owners_and_the_agent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(dir.path());
    let app = build_app(settings.clone()).await.expect("app");
    let server = Server::start_app(app.clone()).await.expect("server");
    let key_file = dir.path().join("secret.key");
    let mode = std::fs::metadata(&key_file).expect("key file").mode();
    assert_eq!(mode & 0o777, 0o600, "the key file is created private");

    let control = LocalControlPlane::new(app.clone());
    control.heartbeat("h").await.expect("register");
    let admin = vpnaas_client::Client::new(&server.url());
    let member = admin.as_project("p", "member");
    let external = external_network(&admin).await;
    let mine = site(&member, &external, 1).await;
    // The other router goes to another agent (fewest routers first).
    control.heartbeat("elsewhere").await.expect("register");
    let other = site(&admin, &external, 2).await;
    let pols = policies(&member).await;
    let svc = legacy_service(&member, &mine).await;
    let (created, changed) = (unique("created-psk"), unique("changed-psk"));
    let mut attrs = legacy_connection(&id(&svc), &pols, "10.2.0.0/24");
    attrs["psk"] = json!(created);
    let conn = member
        .create(Kind::SiteConnection, attrs)
        .await
        .expect("connection");
    assert_eq!(conn["psk"], created.as_str());
    let conn = id(&conn);
    let changed_conn = member
        .update(Kind::SiteConnection, &conn, json!({"psk": changed}))
        .await
        .expect("change the PSK");
    assert_eq!(changed_conn["psk"], changed.as_str());
    let other_psk = unique("other-router-psk");
    let admin_pols = policies(&admin).await;
    let other_svc = legacy_service(&admin, &other).await;
    let mut attrs = legacy_connection(&id(&other_svc), &admin_pols, "10.1.0.0/24");
    attrs["psk"] = json!(other_psk);
    admin
        .create(Kind::SiteConnection, attrs)
        .await
        .expect("other connection");

    let raw = raw_database(&settings);
    assert!(raw.contains(&conn), "the dump holds the connection");
    for psk in [&created, &changed, &other_psk] {
        assert!(
            !raw.contains(psk.as_str()),
            "a PSK is in the database in clear"
        );
    }

    for (who, client, shown) in [
        ("owner", member.clone(), changed.as_str()),
        ("admin", admin.clone(), changed.as_str()),
        ("reader", admin.as_project("p", "reader"), "***"),
    ] {
        let seen = client
            .show(Kind::SiteConnection, &conn)
            .await
            .expect("show");
        assert_eq!(seen["psk"], shown, "{who}");
    }

    // What the agent fetches, over the agents' HTTP API.
    let remote = vpnaas_bus::http::HttpControlPlane::new(&server.url(), None);
    let states = remote
        .router_states("h", &[mine.router.clone(), other.router.clone()])
        .await
        .expect("desired state");
    let hosted: Vec<&str> = states.iter().map(|s| s.router_id.as_str()).collect();
    assert_eq!(hosted, [mine.router.as_str()], "h holds its router only");
    let spec = states[0]
        .connections
        .iter()
        .find(|c| c.id == conn)
        .expect("the connection");
    assert_eq!(
        spec.psk.expose(),
        changed,
        "the agent gets the PSK in clear"
    );
    let sent = serde_json::to_string(&states).expect("json");
    assert!(
        !sent.contains("enc:v1:"),
        "nothing sealed reaches the agent"
    );
    assert!(
        !sent.contains(other_psk.as_str()),
        "the agent gets the secrets of the routers it hosts, no others"
    );
    server.stop().await;
}
