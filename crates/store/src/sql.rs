//! [`Store`] over sqlx's `Any` driver, on SQLite (the default, one server per file) or
//! PostgreSQL (any number of servers). Writers are serialised so that a guard reads a state
//! no other writer can change before its transaction commits: in-process by a mutex, and
//! on PostgreSQL also across servers, by an exclusive lock on `resources` taken first in
//! every write transaction (reads are never blocked). Secret attributes are sealed in
//! [`Transaction::put`] and opened in every read ([`crate::secrets`]); opening a store
//! applies the schema migrations (`migrate`) and seals whatever an older database holds
//! in clear (`sealing`).

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Row};
use tokio::sync::{Mutex, OwnedMutexGuard};
use vpnaas_model::Kind;

use crate::secrets::{self, Keyring};
use crate::{Error, Record, Result, Store, Transaction};

mod migrate;
mod sealing;
pub use sealing::Rotation;

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Taken first in every PostgreSQL write transaction: conflicts with itself and with
/// every write, not with reads.
const LOCK_WRITERS: &str = "LOCK TABLE resources IN EXCLUSIVE MODE";

/// The SQL store.
#[derive(Clone)]
pub struct SqlStore {
    pool: AnyPool,
    writer: Arc<Mutex<()>>,
    backend: Backend,
    keyring: Arc<Keyring>,
}

impl SqlStore {
    /// Opens (creating if needed) the SQLite file `vpnaas.db` in `data_dir` and migrates it;
    /// secrets are sealed with `keyring`.
    pub async fn open_sqlite_dir(data_dir: &Path, keyring: Keyring) -> Result<Self> {
        let path = data_dir.join("vpnaas.db");
        Self::open(&format!("sqlite://{}?mode=rwc", path.display()), keyring).await
    }

    /// Opens a database by URL (`sqlite://…` or `postgres://…`), migrates it and seals
    /// with `keyring` every secret it holds in clear or under another key. Refused when
    /// the database's secrets are sealed with a key the ring lacks.
    pub async fn open(url: &str, keyring: Keyring) -> Result<Self> {
        let (store, resealed) = Self::open_counting(url, keyring).await?;
        if resealed > 0 {
            tracing::info!(resealed, "sealed secrets at rest with the current key");
        }
        Ok(store)
    }

    /// [`SqlStore::open`], also telling how many records it sealed again.
    async fn open_counting(url: &str, keyring: Keyring) -> Result<(Self, usize)> {
        let keyring = Arc::new(keyring);
        sqlx::any::install_default_drivers();
        let store = if url.starts_with("sqlite:") {
            Self::open_sqlite(url, keyring).await?
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Self::open_postgres(url, keyring).await?
        } else {
            // Never echo credentials: only what follows the last '@'.
            return Err(Error::UnsupportedUrl(
                url.split('@').next_back().unwrap_or_default().to_string(),
            ));
        };
        store.migrate().await?;
        let resealed = store.seal_at_rest().await?;
        Ok((store, resealed))
    }

    async fn open_postgres(url: &str, keyring: Arc<Keyring>) -> Result<Self> {
        let options: AnyConnectOptions = url.parse()?;
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // Statements are prepared once per connection, often while the tables
                    // are still nearly empty; a generic plan made then (nested loops over
                    // sequential scans) stays slow as they grow. Plans for the actual
                    // values cost well under a millisecond here.
                    sqlx::query("SET plan_cache_mode = force_custom_plan")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(SqlStore {
            pool,
            writer: Arc::new(Mutex::new(())),
            backend: Backend::Postgres,
            keyring,
        })
    }

    async fn open_sqlite(url: &str, keyring: Arc<Keyring>) -> Result<Self> {
        let options: AnyConnectOptions = url.parse()?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // `secure_delete`: a row's former version is zeroed, not left in a
                    // free page (where a secret sealed under a retired key would stay).
                    for pragma in [
                        "PRAGMA busy_timeout = 5000",
                        "PRAGMA synchronous = NORMAL",
                        "PRAGMA secure_delete = ON",
                    ] {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&pool)
            .await?;
        Ok(SqlStore {
            pool,
            writer: Arc::new(Mutex::new(())),
            backend: Backend::Sqlite,
            keyring,
        })
    }
}

/// The `visible_to_all` flag as `'1'` or `'0'`: sqlx's `Any` driver decodes no SQLite
/// boolean.
macro_rules! flag {
    ($table:literal) => {
        concat!("CASE WHEN ", $table, "visible_to_all THEN '1' ELSE '0' END")
    };
}
const GET_ONE: &str = concat!(
    "SELECT kind, id, project_id, body, ",
    flag!(""),
    " FROM resources WHERE kind = $1 AND id = $2"
);
/// One row holding the collection `FROM …` gives as a JSON array of the documents, oldest
/// first, and their `visible_to_all` flags as a string of `0`s and `1`s in the same order:
/// the driver's per-row overhead costs several times more than the database's aggregation.
/// `string_agg … ORDER BY` is the same text in SQLite (3.44+) and PostgreSQL.
macro_rules! aggregated {
    ($($from:tt)+) => {
        concat!(
            "SELECT string_agg(body, ',' ORDER BY created_at, id), string_agg(",
            flag!(""),
            ", '' ORDER BY created_at, id) ",
            $($from)+
        )
    };
}
/// A project's rows (`resources_by_project`) and the other projects' rows every project
/// sees (`resources_visible_to_all`, whose condition `visible_to_all = TRUE` must appear
/// as it is written there); the two parts are disjoint.
macro_rules! visible {
    () => {
        "FROM (
        SELECT body, created_at, id, visible_to_all FROM resources
        WHERE kind = $1 AND project_id = $2
        UNION ALL
        SELECT body, created_at, id, visible_to_all FROM resources
        WHERE kind = $1 AND visible_to_all = TRUE AND project_id <> $2"
    };
}
const LIST_KIND: &str = aggregated!("FROM resources WHERE kind = $1");
const LIST_VISIBLE: &str = aggregated!(visible!(), ") AS visible");
/// With a third part for a kind seen with its owner's kind `$3` (subnets of shared or
/// external networks): from the owners visible to all, through the reference index to
/// the rows referring to them. `CROSS JOIN` keeps SQLite's planner in that order (it
/// would otherwise scan every row of kind `$1` to save a sort).
const LIST_VISIBLE_WITH_OWNER: &str = aggregated!(
    visible!(),
    "
    UNION ALL
    SELECT r.body, r.created_at, r.id, r.visible_to_all
    FROM resources o CROSS JOIN refs f CROSS JOIN resources r
    WHERE o.kind = $3 AND o.visible_to_all = TRUE
    AND f.target_kind = $3 AND f.target_id = o.id AND f.kind = $1
    AND r.kind = $1 AND r.id = f.id AND r.project_id <> $2 AND NOT r.visible_to_all
    ) AS visible"
);
/// From the reference index to the referrers' rows, in that order (see
/// [`LIST_VISIBLE_WITH_OWNER`] for `CROSS JOIN`).
const REFERRERS: &str = concat!(
    "SELECT r.kind, r.id, r.project_id, r.body, ",
    flag!("r."),
    " FROM refs f CROSS JOIN resources r
    WHERE f.target_kind = $1 AND f.target_id = $2 AND f.kind = $3 AND r.kind = f.kind AND r.id = f.id
    ORDER BY r.created_at, r.id"
);
const FIRST_REFERRER: &str = "SELECT id FROM refs
    WHERE target_kind = $1 AND target_id = $2 AND kind = $3 ORDER BY id LIMIT 1";

fn record_of(keyring: &Keyring, row: &sqlx::any::AnyRow) -> Result<Record> {
    let kind_name: String = row.try_get(0)?;
    let kind = Kind::from_store_name(&kind_name).ok_or_else(|| Error::Corrupt {
        kind: Kind::Network,
        id: kind_name.clone(),
        reason: "unknown kind".into(),
    })?;
    let id: String = row.try_get(1)?;
    Ok(Record {
        kind,
        body: secrets::open_body(keyring, kind, &id, row.try_get(3)?)?,
        id,
        project_id: row.try_get(2)?,
        refs: vec![],
        visible_to_all: row.try_get::<String, _>(4)? == "1",
    })
}

fn records_of(keyring: &Keyring, rows: &[sqlx::any::AnyRow]) -> Result<Vec<Record>> {
    rows.iter().map(|row| record_of(keyring, row)).collect()
}

/// The fields of a document the store needs besides its text.
#[derive(serde::Deserialize)]
struct Owner {
    id: String,
    project_id: String,
}

// Reads use `fetch_all`, which steps every statement to completion so that no pooled
// SQLite connection keeps a read snapshot open (an earlier `fetch_one` on an aggregate
// returned stale reads under concurrent load).
fn records_of_aggregate(
    keyring: &Keyring,
    kind: Kind,
    rows: &[sqlx::any::AnyRow],
) -> Result<Vec<Record>> {
    let (text, flags): (Option<String>, Option<String>) = match rows.first() {
        Some(row) => (row.try_get(0)?, row.try_get(1)?),
        None => (None, None),
    };
    let Some(text) = text else { return Ok(vec![]) };
    let flags = flags.unwrap_or_default();
    let corrupt = |reason: String| Error::Corrupt {
        kind,
        id: "*".into(),
        reason,
    };
    let array = format!("[{text}]");
    let documents: Vec<&serde_json::value::RawValue> =
        serde_json::from_str(&array).map_err(|e| corrupt(e.to_string()))?;
    if documents.len() != flags.len() {
        return Err(corrupt(
            "documents and visibility flags differ in number".into(),
        ));
    }
    documents
        .into_iter()
        .zip(flags.bytes())
        .map(|(body, flag)| {
            let owner: Owner =
                serde_json::from_str(body.get()).map_err(|e| corrupt(e.to_string()))?;
            Ok(Record {
                kind,
                body: secrets::open_body(keyring, kind, &owner.id, body.get().to_string())?,
                id: owner.id,
                project_id: owner.project_id,
                refs: vec![],
                visible_to_all: flag == b'1',
            })
        })
        .collect()
}

/// The collection query of `kind` as seen by a member of `project_id` (`None`: by an
/// administrator, who sees every row).
fn list_query(
    kind: Kind,
    project_id: Option<&str>,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
    let Some(project_id) = project_id else {
        return sqlx::query(LIST_KIND).bind(kind.store_name());
    };
    match kind.visible_with() {
        None => sqlx::query(LIST_VISIBLE)
            .bind(kind.store_name())
            .bind(project_id),
        Some((owner, _)) => sqlx::query(LIST_VISIBLE_WITH_OWNER)
            .bind(kind.store_name())
            .bind(project_id)
            .bind(owner.store_name()),
    }
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default()
}

const EVENTS: &str =
    "SELECT body FROM (SELECT body, seq FROM connection_events WHERE connection_id = $1
    ORDER BY seq DESC LIMIT $2) AS newest ORDER BY seq";
const APPEND_EVENT: &str =
    "INSERT INTO connection_events (connection_id, seq, body) VALUES ($1, $2, $3)";
const TRIM_EVENTS: &str = "DELETE FROM connection_events WHERE connection_id = $1 AND seq < (
    SELECT seq FROM connection_events WHERE connection_id = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)";
const DELETE_EVENTS: &str = "DELETE FROM connection_events WHERE connection_id = $1";

#[async_trait]
impl Store for SqlStore {
    async fn events(&self, connection_id: &str, limit: u32) -> Result<Vec<String>> {
        let rows = sqlx::query(EVENTS)
            .bind(connection_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| row.try_get::<String, _>(0).map_err(Error::from))
            .collect()
    }

    async fn get(&self, kind: Kind, id: &str) -> Result<Option<Record>> {
        let rows = sqlx::query(GET_ONE)
            .bind(kind.store_name())
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.first()
            .map(|row| record_of(&self.keyring, row))
            .transpose()
    }

    async fn list(&self, kind: Kind) -> Result<Vec<Record>> {
        let rows = list_query(kind, None).fetch_all(&self.pool).await?;
        records_of_aggregate(&self.keyring, kind, &rows)
    }

    async fn list_visible(&self, kind: Kind, project_id: &str) -> Result<Vec<Record>> {
        let rows = list_query(kind, Some(project_id))
            .fetch_all(&self.pool)
            .await?;
        records_of_aggregate(&self.keyring, kind, &rows)
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        self.writer_transaction(false).await
    }

    async fn begin_observation(&self) -> Result<Box<dyn Transaction>> {
        self.writer_transaction(true).await
    }

    async fn read(&self) -> Result<Box<dyn Transaction>> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        Ok(Box::new(SqlTransaction {
            tx,
            _writer: None,
            keyring: self.keyring.clone(),
        }))
    }
}

impl SqlStore {
    async fn writer_transaction(&self, observation: bool) -> Result<Box<dyn Transaction>> {
        let guard = self.writer.clone().lock_owned().await;
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query(LOCK_WRITERS).execute(&mut *tx).await?;
            if observation {
                sqlx::query("SET LOCAL synchronous_commit = off")
                    .execute(&mut *tx)
                    .await?;
            }
        }
        Ok(Box::new(SqlTransaction {
            tx,
            _writer: Some(guard),
            keyring: self.keyring.clone(),
        }))
    }
}

/// A transaction; writers hold the in-process writer lock until they end.
struct SqlTransaction {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _writer: Option<OwnedMutexGuard<()>>,
    keyring: Arc<Keyring>,
}

#[async_trait]
impl Transaction for SqlTransaction {
    async fn get(&mut self, kind: Kind, id: &str) -> Result<Option<Record>> {
        let rows = sqlx::query(GET_ONE)
            .bind(kind.store_name())
            .bind(id)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.first()
            .map(|row| record_of(&self.keyring, row))
            .transpose()
    }

    async fn list(&mut self, kind: Kind) -> Result<Vec<Record>> {
        let rows = list_query(kind, None).fetch_all(&mut *self.tx).await?;
        records_of_aggregate(&self.keyring, kind, &rows)
    }

    async fn referrers(
        &mut self,
        kind: Kind,
        target: Kind,
        target_id: &str,
    ) -> Result<Vec<Record>> {
        let rows = sqlx::query(REFERRERS)
            .bind(target.store_name())
            .bind(target_id)
            .bind(kind.store_name())
            .fetch_all(&mut *self.tx)
            .await?;
        records_of(&self.keyring, &rows)
    }

    async fn first_referrer(
        &mut self,
        kind: Kind,
        target: Kind,
        target_id: &str,
    ) -> Result<Option<String>> {
        let rows = sqlx::query(FIRST_REFERRER)
            .bind(target.store_name())
            .bind(target_id)
            .bind(kind.store_name())
            .fetch_all(&mut *self.tx)
            .await?;
        rows.first()
            .map(|row| row.try_get(0).map_err(Error::from))
            .transpose()
    }

    async fn put(&mut self, record: Record) -> Result<()> {
        let body = self.sealed(&record).await?;
        let kind = record.kind.store_name();
        sqlx::query(
            "INSERT INTO resources (kind, id, project_id, created_at, body, visible_to_all)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (kind, id) DO UPDATE SET project_id = excluded.project_id,
             body = excluded.body, visible_to_all = excluded.visible_to_all",
        )
        .bind(kind)
        .bind(&record.id)
        .bind(&record.project_id)
        .bind(now_nanos())
        .bind(body)
        .bind(record.visible_to_all)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("DELETE FROM refs WHERE kind = $1 AND id = $2")
            .bind(kind)
            .bind(&record.id)
            .execute(&mut *self.tx)
            .await?;
        let mut refs = record.refs;
        refs.sort();
        refs.dedup();
        for (target, target_id) in refs {
            sqlx::query(
                "INSERT INTO refs (kind, id, target_kind, target_id) VALUES ($1, $2, $3, $4)",
            )
            .bind(kind)
            .bind(&record.id)
            .bind(target.store_name())
            .bind(target_id)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    async fn delete(&mut self, kind: Kind, id: &str) -> Result<()> {
        for statement in [
            "DELETE FROM refs WHERE kind = $1 AND id = $2",
            "DELETE FROM resources WHERE kind = $1 AND id = $2",
        ] {
            sqlx::query(statement)
                .bind(kind.store_name())
                .bind(id)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    async fn append_event(&mut self, connection_id: &str, event: String) -> Result<()> {
        sqlx::query(APPEND_EVENT)
            .bind(connection_id)
            .bind(now_nanos())
            .bind(event)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(TRIM_EVENTS)
            .bind(connection_id)
            .bind(i64::from(crate::EVENTS_KEPT) - 1)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn delete_events(&mut self, connection_id: &str) -> Result<()> {
        sqlx::query(DELETE_EVENTS)
            .bind(connection_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod query_plans;
