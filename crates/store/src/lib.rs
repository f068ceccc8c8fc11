//! Persistence of the desired state. The [`Store`] seam hides the database; [`SqlStore`]
//! implements it with portable SQL (SQLite today, PostgreSQL next).
//!
//! Each resource is kept as one row holding its JSON document, its owner and whether
//! every project sees it, plus one row per resource it refers to in an indexed `refs`
//! table. In-use guards ("is this policy used by a connection?") are a lookup in `refs`,
//! done inside the same transaction as the write they protect, so a guard and the change
//! it allows can never interleave with another writer's. A project's list reads only the
//! project's rows and the shared ones, through indexes.
//!
//! Secret attributes are sealed where records are written and opened where they are read
//! ([`secrets`]): the database never holds them in clear, and no caller sees ciphertext.

mod key_file;
mod schema;
pub mod secrets;
mod sql;

use async_trait::async_trait;
use vpnaas_model::{Kind, Resource};

pub use secrets::Keyring;
pub use sql::{Rotation, SqlStore};

/// A store failure. Never carries a secret: bodies are not included.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored document did not decode.
    #[error("stored {kind} {id} does not decode: {reason}")]
    Corrupt {
        /// Kind of the record.
        kind: Kind,
        /// Id of the record.
        id: String,
        /// Why (serde's message, without the document).
        reason: String,
    },
    /// The secret keys are unusable for this database (never carries key material).
    #[error("secret keys: {0}")]
    Keys(String),
    /// The secret key file cannot be used.
    #[error("secret key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The database URL names no supported backend.
    #[error("unsupported database URL (expected sqlite://… or postgres://…): {0}")]
    UnsupportedUrl(String),
}

/// Result with the store's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One stored resource: its JSON document and what it refers to.
#[derive(Clone)]
pub struct Record {
    /// Kind.
    pub kind: Kind,
    /// Id.
    pub id: String,
    /// Owning project.
    pub project_id: String,
    /// The resource's JSON document.
    pub body: String,
    /// Resources it refers to.
    pub refs: Vec<(Kind, String)>,
    /// Whether every project sees it (see [`Resource::visible_to_all`]).
    pub visible_to_all: bool,
}

impl std::fmt::Debug for Record {
    // The body may hold a pre-shared key: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Record {
    /// Encodes a resource.
    pub fn encode<R: Resource>(resource: &R) -> Record {
        Record {
            kind: R::KIND,
            id: resource.id().to_string(),
            project_id: resource.project_id().to_string(),
            // Serialising plain data structs into a String cannot fail.
            body: serde_json::to_string(resource).unwrap_or_default(),
            refs: resource.references(),
            visible_to_all: resource.visible_to_all(),
        }
    }

    /// Decodes the resource it holds.
    pub fn decode<R: Resource>(&self) -> Result<R> {
        serde_json::from_str(&self.body).map_err(|e| Error::Corrupt {
            kind: self.kind,
            id: self.id.clone(),
            reason: e.to_string(),
        })
    }
}

/// The database seam: snapshot reads, and write transactions that are serialised.
#[async_trait]
pub trait Store: Send + Sync {
    /// One resource.
    async fn get(&self, kind: Kind, id: &str) -> Result<Option<Record>>;
    /// Every resource of a kind, oldest first.
    async fn list(&self, kind: Kind) -> Result<Vec<Record>>;
    /// The resources of a kind a member of `project_id` sees, oldest first: the project's
    /// own, those visible to all, and those whose [`Kind::visible_with`] owner is visible
    /// to all. Read through indexes, so the time grows with the answer, not the database.
    async fn list_visible(&self, kind: Kind, project_id: &str) -> Result<Vec<Record>>;
    /// Starts a write transaction; writers are serialised.
    async fn begin(&self) -> Result<Box<dyn Transaction>>;
    /// Starts a write transaction of observations (agents' status reports and
    /// heartbeats): serialised like any write, but its commit need not wait for the disk
    /// (on PostgreSQL `synchronous_commit = off`): an observation lost in a crash is
    /// reported again by its agent.
    async fn begin_observation(&self) -> Result<Box<dyn Transaction>>;
    /// Starts a read-only transaction: one consistent snapshot, never waiting for writers
    /// (for reads that need the reference index, such as an agent's desired state).
    async fn read(&self) -> Result<Box<dyn Transaction>>;
    /// The last `limit` events (JSON documents) of a connection, oldest first.
    async fn events(&self, connection_id: &str, limit: u32) -> Result<Vec<String>>;
}

/// How many events are kept per connection.
pub const EVENTS_KEPT: u32 = 100;

/// A write transaction. Dropping it without [`Transaction::commit`] rolls it back.
#[async_trait]
pub trait Transaction: Send {
    /// One resource.
    async fn get(&mut self, kind: Kind, id: &str) -> Result<Option<Record>>;
    /// Every resource of a kind, oldest first.
    async fn list(&mut self, kind: Kind) -> Result<Vec<Record>>;
    /// Resources of kind `kind` that refer to `target`, oldest first.
    async fn referrers(&mut self, kind: Kind, target: Kind, target_id: &str)
    -> Result<Vec<Record>>;
    /// The id of one resource of kind `kind` that refers to `target`, if any: an in-use
    /// guard, answered from the reference index alone.
    async fn first_referrer(
        &mut self,
        kind: Kind,
        target: Kind,
        target_id: &str,
    ) -> Result<Option<String>>;
    /// Inserts or replaces a resource (keeping its creation order).
    async fn put(&mut self, record: Record) -> Result<()>;
    /// Removes a resource.
    async fn delete(&mut self, kind: Kind, id: &str) -> Result<()>;
    /// Appends an event (a JSON document) to a connection's history, keeping the last
    /// [`EVENTS_KEPT`].
    async fn append_event(&mut self, connection_id: &str, event: String) -> Result<()>;
    /// Forgets a connection's history.
    async fn delete_events(&mut self, connection_id: &str) -> Result<()>;
    /// Makes the changes durable.
    async fn commit(self: Box<Self>) -> Result<()>;
}

impl dyn Transaction + '_ {
    /// Loads and decodes one resource.
    pub async fn load<R: Resource>(&mut self, id: &str) -> Result<Option<R>> {
        match self.get(R::KIND, id).await? {
            Some(record) => record.decode().map(Some),
            None => Ok(None),
        }
    }

    /// Loads and decodes every resource of a kind.
    pub async fn load_all<R: Resource>(&mut self) -> Result<Vec<R>> {
        self.list(R::KIND)
            .await?
            .iter()
            .map(Record::decode)
            .collect()
    }

    /// Loads and decodes the resources of type `R` that refer to `target`.
    pub async fn load_referrers<R: Resource>(
        &mut self,
        target: Kind,
        target_id: &str,
    ) -> Result<Vec<R>> {
        self.referrers(R::KIND, target, target_id)
            .await?
            .iter()
            .map(Record::decode)
            .collect()
    }

    /// Encodes and stores a resource.
    pub async fn save<R: Resource>(&mut self, resource: &R) -> Result<()> {
        self.put(Record::encode(resource)).await
    }
}
