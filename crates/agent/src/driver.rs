//! The IKE daemon seam: what the agent asks of a driver (one daemon per router, its
//! connections loaded one by one) and what a driver reports back. strongSwan and
//! Libreswan implement it; the agent picks one per router.

use std::collections::HashMap;

use async_trait::async_trait;
use vpnaas_model::agent::RouterState;
use vpnaas_model::enums::{Status, StatusReason};
use vpnaas_model::site_connection::Traffic;

use crate::Result;

/// Observed state of a router's VPN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The daemon is running.
    pub daemon_running: bool,
    /// Connection id → what the daemon says of it.
    pub connections: HashMap<String, ConnectionState>,
}

/// What the daemon says of one loaded connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionState {
    /// ACTIVE or DOWN.
    pub status: Status,
    /// Why.
    pub reason: StatusReason,
    /// The negotiated proposal, or the log line that explains a failure.
    pub detail: String,
    /// Counters of the installed child SAs.
    pub traffic: Option<Traffic>,
}

/// An IKE daemon driver. Every method is idempotent; a change to one connection touches
/// only that connection, never the daemon or the others.
#[async_trait]
pub trait IkeDriver: Send + Sync {
    /// Brings the router's daemon and its enabled connections to the desired state (no
    /// enabled connection: no daemon).
    async fn ensure(&self, namespace: &str, state: &RouterState) -> Result<()>;
    /// Stops the router's daemon and removes its files.
    async fn remove(&self, router_id: &str) -> Result<()>;
    /// What the daemon says about the router's connections now.
    async fn observe(&self, router_id: &str) -> Observed;
}
