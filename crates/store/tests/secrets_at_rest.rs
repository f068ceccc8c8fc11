//! Secrets at rest, on a real SQLite file (or, with `VPNAAS_TEST_BACKEND=postgres`, a real
//! PostgreSQL database, read back with `pg_dump`): no pre-shared key is ever found in the
//! database's bytes, readers get it back in clear, an older database holding keys in clear
//! is sealed when opened, a key rotation seals everything under the new key and retires
//! the old one, and a server whose key file lacks the database's key is refused.

use std::path::{Path, PathBuf};

use vpnaas_model::Kind;
use vpnaas_store::{Keyring, Record, SqlStore, Store};

/// A database of this test: its URL and how to read all its bytes.
struct Database {
    url: String,
    sqlite_dir: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Database {
    fn new() -> Database {
        let dir = tempfile::tempdir().expect("tempdir");
        match vpnaas_test_support::scratch::database_url() {
            Some(url) => Database {
                url,
                sqlite_dir: None,
                _dir: dir,
            },
            None => Database {
                url: format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("vpnaas.db").display()
                ),
                sqlite_dir: Some(dir.path().to_path_buf()),
                _dir: dir,
            },
        }
    }

    fn key_file(&self) -> PathBuf {
        self._dir.path().join("keys").join("secret.key")
    }

    /// Everything the database holds, as stored: the SQLite files (the database, its
    /// write-ahead log) or a `pg_dump` of the PostgreSQL database.
    fn raw(&self) -> String {
        let bytes = match &self.sqlite_dir {
            Some(dir) => std::fs::read_dir(dir)
                .expect("dir")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.to_string_lossy().contains("vpnaas.db"))
                .flat_map(|p| std::fs::read(p).expect("read"))
                .collect(),
            None => {
                let out = std::process::Command::new("pg_dump")
                    .args(["--data-only", "-d", &self.url])
                    .output()
                    .expect("pg_dump (PostgreSQL's client)");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                out.stdout
            }
        };
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// A row's document as stored.
    async fn stored_body(&self, id: &str) -> String {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&self.url).await.expect("connect");
        let row = sqlx::query("SELECT body FROM resources WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .expect("row");
        pool.close().await;
        sqlx::Row::try_get(&row, 0).expect("body")
    }

    async fn open(&self, keyring: Keyring) -> SqlStore {
        SqlStore::open(&self.url, keyring).await.expect("open")
    }
}

fn connection(id: &str, psk: &str) -> Record {
    let body = serde_json::json!({
        "id": id, "project_id": "p", "name": "n", "vpnservice_id": "svc", "psk": psk,
    });
    Record {
        kind: Kind::SiteConnection,
        id: id.into(),
        project_id: "p".into(),
        body: body.to_string(),
        refs: vec![(Kind::VpnService, "svc".into())],
        visible_to_all: false,
    }
}

async fn put(store: &SqlStore, record: Record) {
    let mut tx = store.begin().await.expect("begin");
    tx.put(record).await.expect("put");
    tx.commit().await.expect("commit");
}

fn psk_of(record: &Record) -> String {
    let body: serde_json::Value = serde_json::from_str(&record.body).expect("json");
    body["psk"].as_str().expect("psk").to_string()
}

async fn stored_psk(store: &SqlStore, id: &str) -> String {
    psk_of(
        &store
            .get(Kind::SiteConnection, id)
            .await
            .expect("get")
            .expect("found"),
    )
}

/// A PSK no other test writes, so finding it in the bytes means it was stored in clear.
fn unique(name: &str) -> String {
    format!("psk-{name}-{}", uuid_like())
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
}

fn key_ids(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("key file")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(' ').next().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn no_psk_is_stored_in_clear_and_every_read_gets_it_back() {
    let db = Database::new();
    let store = db
        .open(Keyring::from_file(&db.key_file()).expect("keys"))
        .await;
    let (first, second) = (unique("created"), unique("updated"));
    put(&store, connection("c1", &first)).await;
    assert_eq!(stored_psk(&store, "c1").await, first);
    put(&store, connection("c1", &second)).await;
    put(&store, connection("c2", &first)).await;

    let raw = db.raw();
    assert!(
        raw.contains("c1") && raw.contains("enc:v1:"),
        "the dump holds the rows"
    );
    assert!(
        !raw.contains(&first),
        "the created PSK is in the database in clear"
    );
    assert!(
        !raw.contains(&second),
        "the updated PSK is in the database in clear"
    );

    assert_eq!(stored_psk(&store, "c1").await, second);
    let listed = store.list(Kind::SiteConnection).await.expect("list");
    assert_eq!(
        listed.iter().map(psk_of).collect::<Vec<_>>(),
        [second.clone(), first.clone()]
    );
    let visible = store
        .list_visible(Kind::SiteConnection, "p")
        .await
        .expect("list");
    assert_eq!(
        visible.iter().map(psk_of).collect::<Vec<_>>(),
        [second.clone(), first.clone()]
    );
    let mut tx = store.read().await.expect("read");
    let users = tx
        .referrers(Kind::SiteConnection, Kind::VpnService, "svc")
        .await
        .expect("referrers");
    assert_eq!(
        users.iter().map(psk_of).collect::<Vec<_>>(),
        [second.clone(), first.clone()]
    );
    let got = tx.get(Kind::SiteConnection, "c2").await.expect("get");
    assert_eq!(psk_of(&got.expect("found")), first);
}

#[tokio::test]
async fn an_older_database_holding_psks_in_clear_is_sealed_when_opened() {
    let db = Database::new();
    let psk = unique("legacy");
    let store = db.open(Keyring::ephemeral().expect("key")).await;
    drop(store);
    // Back to schema version 3, as released before secrets were sealed, with a
    // connection stored as that version stored it.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("connect");
    for statement in [
        "DROP TABLE secret_keys",
        "DELETE FROM schema_migrations WHERE version = 4",
    ] {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .expect(statement);
    }
    sqlx::query(
        "INSERT INTO resources (kind, id, project_id, created_at, body) VALUES ($1, 'old', 'p', 1, $2)",
    )
    .bind(Kind::SiteConnection.store_name())
    .bind(&connection("old", &psk).body)
    .execute(&pool)
    .await
    .expect("insert");
    pool.close().await;
    assert!(
        db.raw().contains(&psk),
        "the old database holds it in clear"
    );

    let keys = db.key_file();
    let store = db.open(Keyring::from_file(&keys).expect("keys")).await;
    assert_eq!(stored_psk(&store, "old").await, psk);
    drop(store);
    let raw = db.raw();
    assert!(!raw.contains(&psk), "still in clear after the upgrade");
    assert!(raw.contains(&format!("enc:v1:{}:", key_ids(&keys)[0])));
    let again = db.open(Keyring::from_file(&keys).expect("keys")).await;
    assert_eq!(
        stored_psk(&again, "old").await,
        psk,
        "opening twice changes nothing"
    );
}

#[tokio::test]
async fn rotation_seals_every_psk_under_a_new_key_and_retires_the_old_one() {
    let db = Database::new();
    let keys = db.key_file();
    let running = db.open(Keyring::from_file(&keys).expect("keys")).await;
    let psks: Vec<String> = (0..3).map(|i| unique(&format!("rotated{i}"))).collect();
    for (i, psk) in psks.iter().enumerate() {
        put(&running, connection(&format!("c{i}"), psk)).await;
    }
    let old = key_ids(&keys);
    let old_file = db._dir.path().join("old.key");
    std::fs::copy(&keys, &old_file).expect("keep a copy of the old key file");

    let rotation = SqlStore::rotate_key(&keys, &db.url).await.expect("rotate");
    assert_eq!(rotation.resealed, 3);
    assert_eq!(rotation.retired, old);
    assert_eq!(
        key_ids(&keys),
        std::slice::from_ref(&rotation.new_key),
        "only the new key is left"
    );
    let raw = db.raw();
    assert!(
        !raw.contains(&format!("enc:v1:{}:", old[0])),
        "a PSK under the old key"
    );
    assert_eq!(
        raw.matches(&format!("enc:v1:{}:", rotation.new_key))
            .count(),
        3
    );
    assert!(psks.iter().all(|psk| !raw.contains(psk)));

    let reopened = db.open(Keyring::from_file(&keys).expect("keys")).await;
    assert_eq!(stored_psk(&reopened, "c1").await, psks[1]);
    // A server that started before the rotation reads the file again when it meets the
    // new key, and seals under it from its next write.
    assert_eq!(stored_psk(&running, "c2").await, psks[2]);
    let later = unique("after-rotation");
    put(&running, connection("c3", &later)).await;
    let body = db.stored_body("c3").await;
    assert!(
        body.contains(&format!("\"enc:v1:{}:", rotation.new_key)),
        "{body}"
    );
    assert_eq!(stored_psk(&reopened, "c3").await, later);

    let stale = SqlStore::open(&db.url, Keyring::from_file(&old_file).expect("old keys")).await;
    let Err(refused) = stale else {
        panic!("the old key file still opens the database")
    };
    assert!(refused.to_string().contains(&rotation.new_key), "{refused}");
}

#[tokio::test]
async fn a_server_whose_key_file_lacks_the_databases_key_is_refused() {
    let db = Database::new();
    let store = db
        .open(Keyring::from_file(&db.key_file()).expect("keys"))
        .await;
    put(&store, connection("c1", &unique("guarded"))).await;
    let other = db._dir.path().join("other.key");
    let opened = SqlStore::open(&db.url, Keyring::from_file(&other).expect("keys")).await;
    let Err(refused) = opened else {
        panic!("another server's key file opens the database")
    };
    assert!(refused.to_string().contains("lacks"), "{refused}");
    let raw = db.raw();
    let sealed_by_other = format!("enc:v1:{}:", key_ids(&other)[0]);
    assert!(
        !raw.contains(&sealed_by_other),
        "the refused key sealed nothing"
    );
}
