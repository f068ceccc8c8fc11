//! The bus between the server and its agents. Two halves:
//! - [`ControlPlane`]: what an agent asks of the server (register and heartbeat, which
//!   routers it hosts, a router's whole desired state, status reports, an HA standby's
//!   claim of leases whose holder went silent);
//! - [`Notifier`]: what the server tells an agent (`router_changed`, a hint to fetch).
//!
//! The in-process implementation joins server and agent in one process (all-in-one); a
//! networked one carries the same messages between hosts.

pub mod http;
pub mod nats;
pub mod protocol;

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::broadcast;
use vpnaas_model::agent::{Heartbeat, RouterChanged, RouterState, StatusReport, TakeoverClaim};

/// A bus failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The server could not be reached or failed; try again later, with backoff.
    #[error("control plane unavailable: {0}")]
    Unavailable(String),
    /// The server refused the call (a 4xx: a bad token, a call it does not know): the same
    /// call will be refused again, so repeating it at once only adds load.
    #[error("control plane refused the call: {0}")]
    Rejected(String),
}

/// Result with the bus's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Calls an agent makes to the server.
#[async_trait]
pub trait ControlPlane: Send + Sync {
    /// Registers the agent, or records its heartbeat, with what it says of itself.
    async fn beat(&self, beat: &Heartbeat) -> Result<()>;
    /// Registers the agent, or records its heartbeat (it answers no liveness probes).
    async fn heartbeat(&self, host: &str) -> Result<()> {
        self.beat(&Heartbeat::of(host)).await
    }
    /// Ids of the routers scheduled to `host`.
    async fn hosted_routers(&self, host: &str) -> Result<Vec<String>>;
    /// The desired states of those of `router_ids` that `host` holds (a router gone, or
    /// moved elsewhere, is absent). One call for many: a full resync asks in batches.
    async fn router_states(&self, host: &str, router_ids: &[String]) -> Result<Vec<RouterState>>;
    /// The desired state of one router held by `host`; `None` when it is gone or moved.
    async fn router_state(&self, host: &str, router_id: &str) -> Result<Option<RouterState>> {
        let mut states = self.router_states(host, &[router_id.to_string()]).await?;
        Ok(states.pop())
    }
    /// Observed statuses of routers' connections, applied together (a full resync sends
    /// its reports in one call).
    async fn reports(&self, reports: Vec<StatusReport>) -> Result<()>;
    /// Observed status of one router's connections.
    async fn report(&self, report: StatusReport) -> Result<()> {
        self.reports(vec![report]).await
    }
    /// A standby claims the leases of HA routers whose active agent stopped answering its
    /// liveness probes; the ids of the routers granted (it is their holder now).
    async fn claim(&self, claim: &TakeoverClaim) -> Result<Vec<String>>;
}

/// How the server tells agents that a router changed.
pub trait Notifier: Send + Sync {
    /// Tells the agent on `host` (if it listens) that a router changed.
    fn router_changed(&self, host: &str, event: RouterChanged);
    /// Listens for the router changes of `host`.
    fn subscribe(&self, host: &str) -> broadcast::Receiver<RouterChanged>;
}

/// Notifications within one process: a broadcast channel per host.
#[derive(Default)]
pub struct InProcNotifier {
    channels: Mutex<HashMap<String, broadcast::Sender<RouterChanged>>>,
}

impl InProcNotifier {
    fn sender(&self, host: &str) -> broadcast::Sender<RouterChanged> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        channels
            .entry(host.to_string())
            .or_insert_with(|| broadcast::channel(1024).0)
            .clone()
    }
}

impl Notifier for InProcNotifier {
    fn router_changed(&self, host: &str, event: RouterChanged) {
        // No listener is fine: the agent's periodic resync heals a missed hint.
        let _ = self.sender(host).send(event);
    }

    fn subscribe(&self, host: &str) -> broadcast::Receiver<RouterChanged> {
        self.sender(host).subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hints_reach_only_the_hosts_agent() {
        let bus = InProcNotifier::default();
        let mut a = bus.subscribe("a");
        let mut b = bus.subscribe("b");
        bus.router_changed(
            "a",
            RouterChanged {
                router_id: "r1".into(),
                revision: 3,
            },
        );
        assert_eq!(
            a.recv().await.ok(),
            Some(RouterChanged {
                router_id: "r1".into(),
                revision: 3
            })
        );
        assert!(b.try_recv().is_err());
    }
}
