//! The SQL store on a real SQLite file (or, with `VPNAAS_TEST_BACKEND=postgres`, a real
//! PostgreSQL database): writes are visible to every later read on every pooled
//! connection, lists keep creation order, and references answer in-use questions.

use vpnaas_model::Kind;
use vpnaas_store::{Record, SqlStore, Store};

async fn open(dir: &std::path::Path) -> SqlStore {
    match vpnaas_test_support::scratch::database_url() {
        Some(url) => SqlStore::open(&url).await.expect("open postgres"),
        None => SqlStore::open_sqlite_dir(dir).await.expect("open"),
    }
}

fn record(kind: Kind, id: &str, refs: Vec<(Kind, String)>) -> Record {
    let body = format!(r#"{{"id":"{id}","project_id":"p","name":"n"}}"#);
    Record {
        kind,
        id: id.into(),
        project_id: "p".into(),
        body,
        refs,
    }
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
