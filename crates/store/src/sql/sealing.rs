//! Secrets at rest in the SQL store: which key seals (the `secret_keys` row `sealing`), the
//! sealing of a record as it is written, the sealing of an older database's clear secrets
//! when the store opens, and the rotation of the key.

use std::path::Path;

use sqlx::Row;
use vpnaas_model::Kind;

use super::{Backend, LOCK_WRITERS, SqlStore, SqlTransaction};
use crate::secrets::{self, Key, Keyring, Pass};
use crate::{Error, Record, Result, key_file};

const SEALING_KEY: &str = "SELECT key_id FROM secret_keys WHERE name = 'sealing'";
const SET_SEALING_KEY: &str = "INSERT INTO secret_keys (name, key_id) VALUES ('sealing', $1)
    ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id";

/// What a key rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The id of the key that seals now.
    pub new_key: String,
    /// The ids of the keys no longer needed (removed from the key file).
    pub retired: Vec<String>,
    /// Records whose secrets were sealed again.
    pub resealed: usize,
}

async fn sealing_key(conn: &mut sqlx::AnyConnection) -> Result<Option<String>> {
    let rows = sqlx::query(SEALING_KEY).fetch_all(conn).await?;
    rows.first()
        .map(|row| row.try_get(0).map_err(Error::from))
        .transpose()
}

impl SqlStore {
    /// Seals, in one write transaction, every secret held in clear or under another key
    /// than the ring's first, and records that key as the one that seals. Refused when
    /// the database says its secrets are sealed with a key the ring lacks. Returns how
    /// many records changed.
    pub(super) async fn seal_at_rest(&self) -> Result<usize> {
        let _writer = self.writer.lock().await;
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query(LOCK_WRITERS).execute(&mut *tx).await?;
        }
        if let Some(recorded) = sealing_key(&mut tx).await?
            && !self.keyring.holds(&recorded)
        {
            return Err(Error::Keys(format!(
                "the database's secrets are sealed with key {recorded}, which the key \
                 file lacks (its first key is {}): use the key file of the other \
                 servers, or restore it",
                self.keyring.current_id()
            )));
        }
        let mut resealed = 0;
        for kind in Kind::stored().filter(|k| secrets::has_secrets(*k)) {
            let rows = sqlx::query("SELECT id, body FROM resources WHERE kind = $1")
                .bind(kind.store_name())
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                let (id, body): (String, String) = (row.try_get(0)?, row.try_get(1)?);
                let Some(sealed) =
                    secrets::transform(&self.keyring, kind, &id, &body, Pass::Reseal)?
                else {
                    continue;
                };
                sqlx::query("UPDATE resources SET body = $1 WHERE kind = $2 AND id = $3")
                    .bind(sealed)
                    .bind(kind.store_name())
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                resealed += 1;
            }
        }
        sqlx::query(SET_SEALING_KEY)
            .bind(self.keyring.current_id())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if resealed > 0 {
            self.scrub().await?;
        }
        Ok(resealed)
    }

    /// Replaces the sealing key of the database at `url` whose keys are in `key_file`: a
    /// new key is put first in the file (the old ones kept, so that a server reading the
    /// file meanwhile still opens every secret), every secret is sealed again under it in
    /// one transaction, which also records it as the sealing key (servers sharing the
    /// file follow it at their next write), and then the old keys leave the file. Should
    /// it stop half-way, the file holds the new key and the old ones, and the next start
    /// of a server (or rotation) finishes the sealing.
    pub async fn rotate_key(key_file: &Path, url: &str) -> Result<Rotation> {
        let old = key_file::load(key_file)?;
        let retired: Vec<String> = old.iter().map(|k| k.id.clone()).collect();
        let new = Key::generate()?;
        let new_key = new.id.clone();
        let mut keys = vec![new];
        keys.extend(old);
        key_file::replace(key_file, &keys)?;
        let (store, resealed) = Self::open_counting(url, Keyring::from_file(key_file)?).await?;
        store.pool.close().await;
        keys.truncate(1);
        key_file::replace(key_file, &keys)?;
        tracing::info!(new_key, ?retired, resealed, "rotated the secret key");
        Ok(Rotation {
            new_key,
            retired,
            resealed,
        })
    }
}

impl SqlStore {
    /// Rewrites the database's files without the rows' former versions, after secrets were
    /// sealed again (an upgrade's clear values, a rotated key's envelopes): SQLite keeps
    /// them in free pages and in its write-ahead log, PostgreSQL in dead tuples. (What
    /// PostgreSQL's own write-ahead log and any backup hold is the operator's to expire.)
    async fn scrub(&self) -> Result<()> {
        let statements: &[&'static str] = match self.backend {
            Backend::Sqlite => &["VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"],
            Backend::Postgres => &["VACUUM FULL resources"],
        };
        for statement in statements {
            sqlx::query(*statement).execute(&self.pool).await?;
        }
        Ok(())
    }
}

impl SqlTransaction {
    /// The document to store for `record`: its secrets sealed under the key the database
    /// names (read in this transaction, so a rotation committed before is followed).
    pub(super) async fn sealed(&mut self, record: &Record) -> Result<String> {
        if !secrets::has_secrets(record.kind) {
            return Ok(record.body.clone());
        }
        if let Some(recorded) = sealing_key(&mut self.tx).await? {
            self.keyring.follow(&recorded)?;
        }
        secrets::seal_body(&self.keyring, record.kind, &record.id, record.body.clone())
    }
}
