//! The seam between the agent and its IKE drivers: what the agent asks of a driver (one
//! daemon per router, its connections loaded one by one) and what it reports back. The
//! [`Supervisor`](crate::supervisor::Supervisor) implements it for each daemon
//! (strongSwan's charon, Libreswan's pluto), and the fake driver without daemons; the
//! agent picks one per router.

use async_trait::async_trait;
use vpnaas_model::agent::RouterState;

use crate::Result;
use crate::status::Observed;

/// An IKE daemon driver. Every method is idempotent; a change to one connection touches
/// only that connection, never the daemon or the others.
#[async_trait]
pub trait IkeDriver: Send + Sync {
    /// Brings the router's daemon and its enabled connections to the desired state (the
    /// daemon runs while [`RouterState::runs_daemon`]).
    async fn ensure(&self, namespace: &str, state: &RouterState) -> Result<()>;
    /// Stops the router's daemon and removes its files.
    async fn remove(&self, router_id: &str) -> Result<()>;
    /// What the daemon says about the router's connections now.
    async fn observe(&self, router_id: &str) -> Observed;
}
