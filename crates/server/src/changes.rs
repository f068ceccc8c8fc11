//! The server's change stream: every committed write of a VPN object (a tenant's create,
//! update or delete, an agent's status report, the server's own verdicts such as
//! `AGENT_DOWN`) becomes a [`Change`] on one broadcast channel. The store is wrapped
//! ([`Watched`]), so no use case can write without being heard. Subscribers are the
//! `GET /v2.0/vpn/events/stream` route (each caller sees only what `show` lets it see)
//! and the dashboard. A server hears only its own writes: servers sharing a PostgreSQL
//! database each stream what they committed.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use vpnaas_model::Kind;
use vpnaas_store::{Record, Result, Store, Transaction};

/// How many changes a slow subscriber may fall behind before it is told to re-read.
const BACKLOG: usize = 1024;

/// The kinds the stream carries: the VPN objects a tenant watches.
pub const STREAMED: [Kind; 5] = [
    Kind::IkePolicy,
    Kind::IpsecPolicy,
    Kind::EndpointGroup,
    Kind::VpnService,
    Kind::SiteConnection,
];

/// One committed change of one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Its kind.
    pub kind: Kind,
    /// Its id.
    pub id: String,
    /// Its project (who may hear of it).
    pub project_id: String,
    /// Whether it was deleted (else created or updated).
    pub deleted: bool,
    /// A connection's traffic counters as written (never any other attribute: the
    /// stream re-reads the object through the caller's policy).
    pub traffic: Option<Value>,
}

/// The broadcast of changes, and the signal that ends every stream when the server stops.
#[derive(Clone)]
pub struct Changes {
    sender: broadcast::Sender<Change>,
    closed: watch::Sender<bool>,
}

impl Default for Changes {
    fn default() -> Self {
        Changes {
            sender: broadcast::channel(BACKLOG).0,
            closed: watch::channel(false).0,
        }
    }
}

impl Changes {
    /// Hears every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.sender.subscribe()
    }

    /// Resolves when the server stops: a stream ends then, so the server's graceful
    /// shutdown does not wait for clients that never hang up.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        let mut closed = self.closed.subscribe();
        async move {
            let _ = closed.wait_for(|closed| *closed).await;
        }
    }

    /// Ends every stream.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    fn publish(&self, changes: Vec<Change>) {
        for change in changes {
            // No subscriber is not an error: nobody is looking.
            let _ = self.sender.send(change);
        }
    }
}

/// A store whose committed writes are published as [`Change`]s.
pub struct Watched {
    inner: Arc<dyn Store>,
    changes: Changes,
}

impl Watched {
    /// Wraps `inner`, publishing on `changes`.
    pub fn new(inner: Arc<dyn Store>, changes: Changes) -> Watched {
        Watched { inner, changes }
    }

    fn watch(&self, inner: Box<dyn Transaction>) -> Box<dyn Transaction> {
        Box::new(WatchedTransaction {
            inner,
            changes: self.changes.clone(),
            written: Vec::new(),
        })
    }
}

#[async_trait]
impl Store for Watched {
    async fn get(&self, kind: Kind, id: &str) -> Result<Option<Record>> {
        self.inner.get(kind, id).await
    }
    async fn list(&self, kind: Kind) -> Result<Vec<Record>> {
        self.inner.list(kind).await
    }
    async fn list_visible(&self, kind: Kind, project_id: &str) -> Result<Vec<Record>> {
        self.inner.list_visible(kind, project_id).await
    }
    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        Ok(self.watch(self.inner.begin().await?))
    }
    async fn begin_observation(&self) -> Result<Box<dyn Transaction>> {
        Ok(self.watch(self.inner.begin_observation().await?))
    }
    async fn read(&self) -> Result<Box<dyn Transaction>> {
        self.inner.read().await
    }
    async fn events(&self, connection_id: &str, limit: u32) -> Result<Vec<String>> {
        self.inner.events(connection_id, limit).await
    }
}

/// A write transaction that remembers what it wrote, and tells after its commit.
struct WatchedTransaction {
    inner: Box<dyn Transaction>,
    changes: Changes,
    written: Vec<Change>,
}

impl WatchedTransaction {
    /// Keeps the last word on each object: a transaction that saves a connection twice
    /// tells once.
    fn remember(&mut self, change: Change) {
        self.written
            .retain(|c| (c.kind, &c.id) != (change.kind, &change.id));
        self.written.push(change);
    }
}

fn traffic_of(record: &Record) -> Option<Value> {
    if record.kind != Kind::SiteConnection {
        return None;
    }
    let body: Value = serde_json::from_str(&record.body).ok()?;
    body.get("traffic").filter(|t| !t.is_null()).cloned()
}

#[async_trait]
impl Transaction for WatchedTransaction {
    async fn get(&mut self, kind: Kind, id: &str) -> Result<Option<Record>> {
        self.inner.get(kind, id).await
    }
    async fn list(&mut self, kind: Kind) -> Result<Vec<Record>> {
        self.inner.list(kind).await
    }
    async fn referrers(
        &mut self,
        kind: Kind,
        target: Kind,
        target_id: &str,
    ) -> Result<Vec<Record>> {
        self.inner.referrers(kind, target, target_id).await
    }
    async fn first_referrer(
        &mut self,
        kind: Kind,
        target: Kind,
        target_id: &str,
    ) -> Result<Option<String>> {
        self.inner.first_referrer(kind, target, target_id).await
    }
    async fn put(&mut self, record: Record) -> Result<()> {
        if STREAMED.contains(&record.kind) {
            self.remember(Change {
                kind: record.kind,
                id: record.id.clone(),
                project_id: record.project_id.clone(),
                deleted: false,
                traffic: traffic_of(&record),
            });
        }
        self.inner.put(record).await
    }
    async fn delete(&mut self, kind: Kind, id: &str) -> Result<()> {
        if STREAMED.contains(&kind)
            && let Some(record) = self.inner.get(kind, id).await?
        {
            self.remember(Change {
                kind,
                id: id.to_string(),
                project_id: record.project_id,
                deleted: true,
                traffic: None,
            });
        }
        self.inner.delete(kind, id).await
    }
    async fn append_event(&mut self, connection_id: &str, event: String) -> Result<()> {
        self.inner.append_event(connection_id, event).await
    }
    async fn delete_events(&mut self, connection_id: &str) -> Result<()> {
        self.inner.delete_events(connection_id).await
    }
    async fn commit(self: Box<Self>) -> Result<()> {
        let WatchedTransaction {
            inner,
            changes,
            written,
        } = *self;
        inner.commit().await?;
        changes.publish(written);
        Ok(())
    }
}
