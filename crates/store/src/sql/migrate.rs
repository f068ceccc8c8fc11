//! Schema migrations of the SQL store: the statements of [`schema::MIGRATIONS`] not
//! applied yet, and the data steps that read the JSON documents.

use sqlx::Row;
use vpnaas_model::flavor::Flavor;
use vpnaas_model::network::Network;
use vpnaas_model::{Kind, Resource};

use super::{Backend, SqlStore};
use crate::schema::{self, DataStep};
use crate::{Error, Result};

impl SqlStore {
    /// Applies the migrations not applied yet. Servers starting together on one
    /// PostgreSQL database take turns on a lock of `schema_migrations`.
    pub(super) async fn migrate(&self) -> Result<()> {
        let _writer = self.writer.lock().await;
        let create = "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)";
        if let Err(error) = sqlx::query(create).execute(&self.pool).await {
            // Two servers creating it at once: one of them loses, and the table exists.
            tracing::debug!(%error, "schema_migrations raced; retrying");
            sqlx::query(create).execute(&self.pool).await?;
        }
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?;
        for (version, statements) in schema::MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            for statement in *statements {
                sqlx::query(*statement).execute(&mut *tx).await?;
            }
            for (_, step) in schema::DATA_STEPS.iter().filter(|(v, _)| v == version) {
                run_data_step(&mut tx, *step).await?;
            }
            sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
                .bind(*version)
                .execute(&mut *tx)
                .await?;
            tracing::info!(version, "applied schema migration");
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Runs a migration's [`DataStep`] in its transaction.
async fn run_data_step(tx: &mut sqlx::Transaction<'_, sqlx::Any>, step: DataStep) -> Result<()> {
    match step {
        DataStep::MarkVisibleToAll => {
            for kind in [Kind::Network, Kind::Flavor] {
                let rows = sqlx::query("SELECT id, body FROM resources WHERE kind = $1")
                    .bind(kind.store_name())
                    .fetch_all(&mut **tx)
                    .await?;
                for row in rows {
                    let (id, body): (String, String) = (row.try_get(0)?, row.try_get(1)?);
                    if document_visible_to_all(kind, &id, &body)? {
                        sqlx::query(
                            "UPDATE resources SET visible_to_all = TRUE WHERE kind = $1 AND id = $2",
                        )
                        .bind(kind.store_name())
                        .bind(&id)
                        .execute(&mut **tx)
                        .await?;
                    }
                }
            }
            Ok(())
        }
    }
}

/// Whether a stored document is one every project sees, by its kind's
/// [`Resource::visible_to_all`] (only networks and flavors can be).
fn document_visible_to_all(kind: Kind, id: &str, body: &str) -> Result<bool> {
    fn rule<R: Resource>(kind: Kind, id: &str, body: &str) -> Result<bool> {
        let resource: R = serde_json::from_str(body).map_err(|e| Error::Corrupt {
            kind,
            id: id.to_string(),
            reason: e.to_string(),
        })?;
        Ok(resource.visible_to_all())
    }
    match kind {
        Kind::Network => rule::<Network>(kind, id, body),
        Kind::Flavor => rule::<Flavor>(kind, id, body),
        _ => Ok(false),
    }
}
