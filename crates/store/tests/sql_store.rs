//! The SQL store on a real SQLite file (or, with `VPNAAS_TEST_BACKEND=postgres`, a real
//! PostgreSQL database): writes are visible to every later read on every pooled
//! connection, lists keep creation order, a project's list holds exactly what it sees,
//! and references answer in-use questions.

use vpnaas_model::Kind;
use vpnaas_store::{Keyring, Record, SqlStore, Store};

fn keyring() -> Keyring {
    Keyring::ephemeral().expect("key")
}

async fn open(dir: &std::path::Path) -> SqlStore {
    match vpnaas_test_support::scratch::database_url() {
        Some(url) => SqlStore::open(&url, keyring())
            .await
            .expect("open postgres"),
        None => SqlStore::open_sqlite_dir(dir, keyring())
            .await
            .expect("open"),
    }
}

fn record(kind: Kind, id: &str, refs: Vec<(Kind, String)>) -> Record {
    owned(kind, id, "p", refs)
}

fn owned(kind: Kind, id: &str, project: &str, refs: Vec<(Kind, String)>) -> Record {
    let body = format!(r#"{{"id":"{id}","project_id":"{project}","name":"n"}}"#);
    Record {
        kind,
        id: id.into(),
        project_id: project.into(),
        body,
        refs,
        visible_to_all: false,
    }
}

fn shared(mut record: Record) -> Record {
    record.visible_to_all = true;
    record
}

async fn put_all(store: &SqlStore, records: Vec<Record>) {
    let mut tx = store.begin().await.expect("begin");
    for record in records {
        tx.put(record).await.expect("put");
    }
    tx.commit().await.expect("commit");
}

fn ids(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_sees_every_committed_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path()).await;
    for i in 0..50 {
        let id = format!("id-{i:03}");
        let mut tx = store.begin().await.expect("begin");
        tx.put(record(Kind::IkePolicy, &id, vec![]))
            .await
            .expect("put");
        tx.commit().await.expect("commit");
        // Interleave lists and gets so every pooled connection has served a read before.
        let (listed, got) =
            tokio::join!(store.list(Kind::IkePolicy), store.get(Kind::IkePolicy, &id));
        assert_eq!(
            listed.expect("list").len(),
            i + 1,
            "list after write {i} is stale"
        );
        assert!(got.expect("get").is_some(), "get after write {i} is stale");
        for _ in 0..8 {
            assert!(
                store
                    .get(Kind::IkePolicy, &id)
                    .await
                    .expect("get")
                    .is_some(),
                "a pooled connection is stale"
            );
        }
    }
    let ids: Vec<String> = store
        .list(Kind::IkePolicy)
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.id)
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "creation order");
}

#[tokio::test]
async fn references_find_referrers_and_vanish_with_their_owner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path()).await;
    let mut tx = store.begin().await.expect("begin");
    tx.put(record(Kind::IkePolicy, "ike", vec![]))
        .await
        .expect("put");
    tx.put(record(
        Kind::SiteConnection,
        "c1",
        vec![(Kind::IkePolicy, "ike".into())],
    ))
    .await
    .expect("put");
    let users = tx
        .referrers(Kind::SiteConnection, Kind::IkePolicy, "ike")
        .await
        .expect("referrers");
    assert_eq!(
        users.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["c1"]
    );
    tx.delete(Kind::SiteConnection, "c1").await.expect("delete");
    assert!(
        tx.referrers(Kind::SiteConnection, Kind::IkePolicy, "ike")
            .await
            .expect("referrers")
            .is_empty()
    );
    drop(tx);
    assert!(
        store.list(Kind::IkePolicy).await.expect("list").is_empty(),
        "an uncommitted transaction rolls back"
    );
}

#[tokio::test]
async fn a_projects_list_holds_its_own_rows_and_those_every_project_sees() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path()).await;
    put_all(
        &store,
        vec![
            owned(Kind::IkePolicy, "p-1", "p", vec![]),
            owned(Kind::IkePolicy, "q-1", "q", vec![]),
            owned(Kind::IkePolicy, "p-2", "p", vec![]),
            shared(owned(Kind::IkePolicy, "q-shared", "q", vec![])),
            shared(owned(Kind::IkePolicy, "p-shared", "p", vec![])),
            owned(Kind::IpsecPolicy, "p-other-kind", "p", vec![]),
        ],
    )
    .await;
    let for_p = store
        .list_visible(Kind::IkePolicy, "p")
        .await
        .expect("list");
    assert_eq!(ids(&for_p), ["p-1", "p-2", "q-shared", "p-shared"]);
    assert_eq!(
        for_p.iter().map(|r| r.visible_to_all).collect::<Vec<_>>(),
        [false, false, true, true],
        "flags follow their rows"
    );
    let for_q = store
        .list_visible(Kind::IkePolicy, "q")
        .await
        .expect("list");
    assert_eq!(ids(&for_q), ["q-1", "q-shared", "p-shared"]);
    let for_r = store
        .list_visible(Kind::IkePolicy, "r")
        .await
        .expect("list");
    assert_eq!(ids(&for_r), ["q-shared", "p-shared"]);
    let all = store.list(Kind::IkePolicy).await.expect("list");
    assert_eq!(ids(&all), ["p-1", "q-1", "p-2", "q-shared", "p-shared"]);
    assert!(
        store
            .list_visible(Kind::EndpointGroup, "p")
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn subnets_are_seen_with_their_network() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path()).await;
    let on = |id: &str, project: &str, network: &str| {
        owned(
            Kind::Subnet,
            id,
            project,
            vec![(Kind::Network, network.to_string())],
        )
    };
    put_all(
        &store,
        vec![
            shared(owned(Kind::Network, "public", "admin", vec![])),
            owned(Kind::Network, "private-q", "q", vec![]),
            owned(Kind::Network, "private-p", "p", vec![]),
            on("public-1", "admin", "public"),
            on("q-private", "q", "private-q"),
            on("p-private", "p", "private-p"),
            on("q-on-public", "q", "public"),
            on("p-on-public", "p", "public"),
        ],
    )
    .await;
    let for_p = store.list_visible(Kind::Subnet, "p").await.expect("list");
    assert_eq!(
        ids(&for_p),
        ["public-1", "p-private", "q-on-public", "p-on-public"],
        "its own subnets and those of a network every project sees, each once, oldest first"
    );
    let networks = store.list_visible(Kind::Network, "p").await.expect("list");
    assert_eq!(ids(&networks), ["public", "private-p"]);

    // The network stops being shared: its other projects' subnets go with it.
    put_all(
        &store,
        vec![owned(Kind::Network, "public", "admin", vec![])],
    )
    .await;
    let for_p = store.list_visible(Kind::Subnet, "p").await.expect("list");
    assert_eq!(ids(&for_p), ["p-private", "p-on-public"]);
    let got = store
        .get(Kind::Network, "public")
        .await
        .expect("get")
        .expect("found");
    assert!(!got.visible_to_all, "an update rewrites the flag");
}

#[tokio::test]
async fn an_in_use_guard_finds_one_referrer_from_the_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path()).await;
    let uses = |id: &str| {
        record(
            Kind::SiteConnection,
            id,
            vec![(Kind::IkePolicy, "ike".into())],
        )
    };
    put_all(
        &store,
        vec![
            record(Kind::IkePolicy, "ike", vec![]),
            record(Kind::IkePolicy, "free", vec![]),
            uses("c2"),
            uses("c1"),
            record(
                Kind::EndpointGroup,
                "g",
                vec![(Kind::IkePolicy, "free".into())],
            ),
        ],
    )
    .await;
    let mut tx = store.begin().await.expect("begin");
    assert_eq!(first_user(tx.as_mut(), "ike").await.as_deref(), Some("c1"));
    assert_eq!(
        first_user(tx.as_mut(), "free").await,
        None,
        "a referrer of another kind does not count"
    );
    let referrers = tx
        .referrers(Kind::SiteConnection, Kind::IkePolicy, "ike")
        .await
        .expect("referrers");
    assert_eq!(ids(&referrers), ["c2", "c1"], "referrers come oldest first");
    tx.delete(Kind::SiteConnection, "c1").await.expect("delete");
    tx.delete(Kind::SiteConnection, "c2").await.expect("delete");
    assert_eq!(first_user(tx.as_mut(), "ike").await, None);
}

/// The first connection using IKE policy `ike`.
async fn first_user(tx: &mut dyn vpnaas_store::Transaction, ike: &str) -> Option<String> {
    tx.first_referrer(Kind::SiteConnection, Kind::IkePolicy, ike)
        .await
        .expect("first referrer")
}

/// A network's document as version 2 of the schema stored it.
fn network_document(id: &str, project: &str, shared: bool, external: bool) -> String {
    serde_json::json!({
        "id": id, "tenant_id": project, "project_id": project, "name": id, "description": "",
        "admin_state_up": true, "shared": shared, "router:external": external, "mtu": 1500,
        "status": "ACTIVE", "subnets": [],
    })
    .to_string()
}

#[tokio::test]
async fn upgrading_marks_the_shared_rows_already_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = vpnaas_test_support::scratch::database_url().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("vpnaas.db").display()
        )
    });
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&url).await.expect("connect");
    // Version 2 of the schema, as released (see `schema::MIGRATIONS`), and its rows.
    for statement in [
        "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY)",
        "INSERT INTO schema_migrations (version) VALUES (1), (2)",
        "CREATE TABLE resources (kind VARCHAR(40) NOT NULL, id VARCHAR(64) NOT NULL,
         project_id VARCHAR(255) NOT NULL, created_at BIGINT NOT NULL, body TEXT NOT NULL,
         PRIMARY KEY (kind, id))",
        "CREATE INDEX resources_by_kind ON resources (kind, created_at)",
        "CREATE TABLE refs (kind VARCHAR(40) NOT NULL, id VARCHAR(64) NOT NULL,
         target_kind VARCHAR(40) NOT NULL, target_id VARCHAR(64) NOT NULL,
         PRIMARY KEY (kind, id, target_kind, target_id))",
        "CREATE INDEX refs_by_target ON refs (target_kind, target_id, kind)",
        "CREATE TABLE connection_events (connection_id VARCHAR(64) NOT NULL, seq BIGINT NOT NULL,
         body TEXT NOT NULL, PRIMARY KEY (connection_id, seq))",
    ] {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .expect(statement);
    }
    let flavor = serde_json::json!({
        "id": "flavor", "tenant_id": "admin", "project_id": "admin", "name": "gold",
        "description": "", "service_type": "VPN", "enabled": true,
    })
    .to_string();
    let rows = [
        (
            "network",
            "shared",
            network_document("shared", "admin", true, false),
        ),
        (
            "network",
            "external",
            network_document("external", "admin", false, true),
        ),
        (
            "network",
            "private",
            network_document("private", "admin", false, false),
        ),
        ("flavor", "flavor", flavor),
    ];
    for (n, (kind, id, body)) in rows.into_iter().enumerate() {
        sqlx::query("INSERT INTO resources (kind, id, project_id, created_at, body) VALUES ($1, $2, 'admin', $3, $4)")
            .bind(kind)
            .bind(id)
            .bind(n as i64)
            .bind(body)
            .execute(&pool)
            .await
            .expect("insert");
    }
    pool.close().await;

    let store = SqlStore::open(&url, keyring()).await.expect("upgrade");
    let networks = store.list_visible(Kind::Network, "p").await.expect("list");
    assert_eq!(ids(&networks), ["shared", "external"]);
    let flavors = store.list_visible(Kind::Flavor, "p").await.expect("list");
    assert_eq!(ids(&flavors), ["flavor"]);
}
