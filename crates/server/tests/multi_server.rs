//! Two servers on one PostgreSQL database (always PostgreSQL: one SQLite file serves one
//! server): they start together on an empty database, a change made through one is visible
//! through the other, and writers racing across the two never break a guard.

mod common;

use common::*;
use serde_json::json;
use vpnaas_client::Client;
use vpnaas_model::Kind;
use vpnaas_server::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_racing_on_one_database_never_break_a_guard() {
    let url = vpnaas_test_support::scratch::postgres_database();
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    // The servers of one database share its secret key file (created by whichever
    // starts first).
    let key_file = dir_a.path().join("shared.key");
    let on = |dir: &tempfile::TempDir| vpnaas_server::Settings {
        database_url: Some(url.clone()),
        secret_key_file: Some(key_file.clone()),
        ..settings(dir.path())
    };
    let (a, b) = tokio::join!(Server::start(on(&dir_a)), Server::start(on(&dir_b)));
    let (a, b) = (a.expect("server a"), b.expect("server b"));
    let (ca, cb) = (Client::new(&a.url()), Client::new(&b.url()));

    let external = external_network(&ca).await;
    let s = site(&ca, &external, 1).await;
    let svc = legacy_service(&ca, &s).await;
    assert_eq!(
        cb.show(Kind::VpnService, &id(&svc))
            .await
            .expect("through b")["router_id"],
        s.router.as_str(),
        "what one server wrote, the other serves"
    );
    let ipsec = cb
        .create(Kind::IpsecPolicy, json!({"name": "shared"}))
        .await
        .expect("ipsec policy");

    let (mut delete_won, mut create_won) = (0, 0);
    for round in 0..30 {
        let ike = ca
            .create(Kind::IkePolicy, json!({"name": format!("race-{round}")}))
            .await
            .expect("ike policy");
        let ike_id = id(&ike);
        let conn = legacy_connection(&id(&svc), &(ike_id.clone(), id(&ipsec)), "10.2.0.0/24");
        let (deleted, created) = tokio::join!(
            ca.delete(Kind::IkePolicy, &ike_id),
            cb.create(Kind::SiteConnection, conn)
        );
        match (deleted, created) {
            (Ok(()), Err(refused)) => {
                assert_eq!(fault::<()>(Err(refused)), (404, "IKEPolicyNotFound".into()));
                delete_won += 1;
            }
            (Err(refused), Ok(conn)) => {
                assert_eq!(fault::<()>(Err(refused)), (409, "IKEPolicyInUse".into()));
                assert!(ca.show(Kind::IkePolicy, &id(&ike)).await.is_ok());
                cb.delete(Kind::SiteConnection, &id(&conn))
                    .await
                    .expect("clean up the round");
                create_won += 1;
            }
            other => panic!("round {round}: both or neither won: {other:?}"),
        }
        let dangling = ca
            .list(Kind::SiteConnection, &[("ikepolicy_id", &id(&ike))])
            .await
            .expect("list");
        assert!(
            dangling.is_empty(),
            "round {round}: a connection outlived its policy"
        );
    }
    eprintln!("30 races: delete won {delete_won}, create won {create_won}");
    a.stop().await;
    b.stop().await;
}
