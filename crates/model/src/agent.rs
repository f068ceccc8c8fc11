//! What the server and the agents say to each other over the bus: registration and
//! heartbeats, `router_changed` hints, the whole desired state of one router, and status
//! reports. The desired state is complete (level-triggered): an agent that applies it
//! needs nothing else, whatever messages it missed.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::attr::{Attr, AttrType as T, Post, Shape};
use crate::certificate::CertificateAuth;
use crate::enums::{HaRole, Initiator, Status, StatusReason};
use crate::kind::Kind;
use crate::policy::{IkePolicy, IpsecPolicy};
use crate::site_connection::{Dpd, Psk, Traffic};

/// A registered agent (`GET /v2.0/agents`, admin only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    /// Id.
    pub id: String,
    /// Owner (always the service project).
    pub tenant_id: String,
    /// Owner (always the service project).
    pub project_id: String,
    /// The host it runs on; unique.
    pub host: String,
    /// Neutron's agent type label.
    pub agent_type: String,
    /// Binary name.
    pub binary: String,
    /// Administrative state: a down agent gets no new routers.
    pub admin_state_up: bool,
    /// Last heartbeat, seconds since the Unix epoch.
    pub heartbeat_at: u64,
    /// Last heartbeat, milliseconds since the Unix epoch: liveness is judged on it, so
    /// that a dead agent is noticed to the millisecond rather than the second.
    #[serde(default)]
    pub heartbeat_ms: u64,
    /// Whether the last heartbeat is recent (computed when shown).
    #[serde(default)]
    pub alive: bool,
    /// Where the agent answers the liveness probes of HA routers' standbys (`ha_listen`),
    /// as it said in its last heartbeat; none when it does not.
    #[serde(default)]
    pub ha_address: Option<std::net::SocketAddr>,
}

/// Attribute map of `agents` (read-only through the API).
pub const AGENT_ATTRS: &[Attr] = &[
    Attr::new("id", T::Uuid, Post::Forbidden, false, "UUID"),
    Attr::new(
        "tenant_id",
        T::ProjectId,
        Post::Forbidden,
        false,
        "service project",
    ),
    Attr::new(
        "project_id",
        T::ProjectId,
        Post::Forbidden,
        false,
        "service project",
    ),
    Attr::new(
        "host",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "host name of the agent",
    ),
    Attr::new(
        "agent_type",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "VPN agent",
    ),
    Attr::new(
        "binary",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "vpnaas-agent",
    ),
    Attr::new(
        "admin_state_up",
        T::Bool,
        Post::Forbidden,
        false,
        "a down agent gets no new routers",
    ),
    Attr::new(
        "heartbeat_at",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "last heartbeat (Unix seconds)",
    ),
    Attr::new(
        "heartbeat_ms",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "last heartbeat (Unix milliseconds; vpnaas extension)",
    ),
    Attr::new(
        "alive",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "heartbeat within the agent timeout",
    ),
    Attr::new(
        "ha_address",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "where the agent answers HA liveness probes (vpnaas extension)",
    ),
];

crate::impl_resource!(Agent, Kind::Agent, |_a| vec![]);

impl Agent {
    /// Records a heartbeat at `now_ms` (milliseconds since the Unix epoch).
    pub fn beat(&mut self, now_ms: u64) {
        self.heartbeat_ms = now_ms;
        self.heartbeat_at = now_ms / 1000;
    }

    /// Whether the agent beat within `down_after` seconds before `now_ms`.
    pub fn alive_at(&self, now_ms: u64, down_after: u64) -> bool {
        let last = self
            .heartbeat_ms
            .max(self.heartbeat_at.saturating_mul(1000));
        now_ms.saturating_sub(last) <= down_after.saturating_mul(1000)
    }
}

/// What an agent says in a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The agent's host.
    pub host: String,
    /// Where it answers liveness probes (`ha_listen`), if it does.
    #[serde(default)]
    pub ha_address: Option<std::net::SocketAddr>,
}

impl Heartbeat {
    /// A heartbeat of `host`, which answers no liveness probes.
    pub fn of(host: &str) -> Heartbeat {
        Heartbeat {
            host: host.to_string(),
            ha_address: None,
        }
    }
}

/// A standby's claim of HA routers' leases: it stopped hearing their active agent's
/// answers to its liveness probes. The server grants each router only to its recorded
/// standby under its current epoch (docs/scale-out.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakeoverClaim {
    /// The claiming agent's host (the routers' standby).
    pub host: String,
    /// The active agent it lost sight of.
    pub silent_host: String,
    /// The routers, each with the lease epoch the claimant's desired state carries.
    pub routers: Vec<LeaseClaim>,
}

/// One router of a [`TakeoverClaim`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseClaim {
    /// The router.
    pub router_id: String,
    /// The lease epoch the claimant knows: a claim under any other is refused.
    pub lease_epoch: u64,
}

/// The active agent of an HA router as its standby watches it: the host and where it
/// answers liveness probes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HaPeer {
    /// The active agent's host.
    pub host: String,
    /// Its liveness address.
    pub address: std::net::SocketAddr,
}

/// A liveness datagram between agents: a standby asks, the active agent answers with the
/// same nonce. Each names its sender, so an answer from whoever now has the address does
/// not count for the agent that had it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Probe {
    /// Are you there?
    Ask {
        /// The asking agent's host.
        host: String,
        /// To match the answer.
        nonce: u64,
    },
    /// I am.
    Answer {
        /// The answering agent's host.
        host: String,
        /// The nonce of the question.
        nonce: u64,
    },
}

/// Hint from the server: the router's desired state changed (fetch it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterChanged {
    /// The router.
    pub router_id: String,
    /// Its new revision.
    pub revision: u64,
}

/// An address on a port, with its prefix (`203.0.113.2/24`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortAddress {
    /// Network the port is on.
    pub network_id: String,
    /// Subnet the address is from.
    pub subnet_id: String,
    /// Address with the subnet's prefix length.
    pub address: ipnet::IpNet,
    /// The subnet's gateway (the default route of a gateway port).
    pub gateway: Option<std::net::IpAddr>,
}

/// One connection as the IKE daemon must run it: every reference resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionSpec {
    /// Connection id (the daemon's connection name; never tenant text).
    pub id: String,
    /// Its VPN service.
    pub service_id: String,
    /// Service and connection both administratively up.
    pub enabled: bool,
    /// Our gateway address of the peer's IP version.
    pub local_address: std::net::IpAddr,
    /// Our IKE identity (the gateway address when the tenant left it empty).
    pub local_id: String,
    /// Peer gateway address.
    pub peer_address: std::net::IpAddr,
    /// Peer IKE identity.
    pub peer_id: String,
    /// Pre-shared key (empty when the connection authenticates with certificates).
    pub psk: Psk,
    /// Certificates to authenticate with instead of the key (`auth_mode` `cert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateAuth>,
    /// Local traffic selectors.
    pub local_cidrs: Vec<ipnet::IpNet>,
    /// Peer traffic selectors.
    pub peer_cidrs: Vec<ipnet::IpNet>,
    /// Phase 1.
    pub ike: IkePolicy,
    /// Phase 2.
    pub ipsec: IpsecPolicy,
    /// Dead peer detection.
    pub dpd: Dpd,
    /// Who initiates.
    pub initiator: Initiator,
    /// Tunnel MTU.
    pub mtu: u32,
    /// Its credentials' generation and the re-authentications asked for (absent when both
    /// are 0, so the desired state of a connection never rotated reads as before).
    #[serde(default, skip_serializing_if = "Generations::is_zero")]
    pub generations: Generations,
}

/// Key rotation without a bounce, as counters the server bumps and the agent echoes once
/// it has acted: the daemon takes new credentials without touching the SAs up, and
/// re-authenticates when asked (vpnaas extension).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generations {
    /// Bumped whenever the connection's credentials (its pre-shared key) change.
    #[serde(default)]
    pub credentials: u64,
    /// Bumped by each `POST …/ipsec-site-connections/{id}/reauthenticate`.
    #[serde(default)]
    pub reauth: u64,
}

impl Generations {
    /// Whether nothing was ever rotated or asked.
    pub fn is_zero(&self) -> bool {
        *self == Generations::default()
    }
}

/// The whole desired state of one router on its agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouterState {
    /// The router.
    pub router_id: String,
    /// Revision this state is at.
    pub revision: u64,
    /// Administrative state of the router.
    pub admin_state_up: bool,
    /// The gateway port, if the router has a gateway.
    pub gateway: Vec<PortAddress>,
    /// SNAT internal subnets out of the gateway.
    pub enable_snat: bool,
    /// Interfaces on internal subnets.
    pub interfaces: Vec<PortAddress>,
    /// VPN services on the router, with their administrative state.
    pub services: Vec<(String, bool)>,
    /// Connections of those services.
    pub connections: Vec<ConnectionSpec>,
    /// The IKE daemon its services ask for; `None`: the agent's default.
    #[serde(default)]
    pub driver: Option<crate::enums::DriverKind>,
    /// Whether the router is HA (on an active and a standby agent).
    #[serde(default)]
    pub ha: bool,
    /// What the asking agent is to the router: a standby keeps its namespace and ports
    /// ready without addresses or daemon.
    #[serde(default = "active")]
    pub role: HaRole,
    /// The router's lease epoch (its fencing token) when this state was read.
    #[serde(default)]
    pub lease_epoch: u64,
    /// To a standby: the active agent, where it answers liveness probes (absent when it
    /// answers none, or to the active agent itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_peer: Option<HaPeer>,
}

fn active() -> HaRole {
    HaRole::Active
}

impl RouterState {
    /// Whether the router's IKE daemon runs: while the router is up with an enabled VPN
    /// service, from its first service rather than its first connection. A peer's first
    /// attempt then finds a daemon that answers (and tells the agent the peer is there),
    /// and a new connection is loaded into a running daemon and negotiated at once,
    /// instead of after a daemon start (40-60 ms for charon).
    pub fn runs_daemon(&self) -> bool {
        let service_up = self.services.iter().any(|(_, up)| *up);
        (self.admin_state_up && service_up) || self.connections.iter().any(|c| c.enabled)
    }
}

/// One connection's state as observed by the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionStatus {
    /// The connection.
    pub id: String,
    /// ACTIVE, DOWN or ERROR.
    pub status: Status,
    /// Why.
    pub reason: StatusReason,
    /// Detail for the event log, e.g. the negotiated proposal or the daemon's message.
    #[serde(default)]
    pub detail: String,
    /// Counters, where the daemon has them.
    #[serde(default)]
    pub traffic: Option<Traffic>,
    /// The credentials the daemon holds and the last re-authentication it concluded, as
    /// generations of the desired state (0 when the agent knows none).
    #[serde(default)]
    pub applied: Generations,
}

/// What an agent reports about one router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Reporting agent.
    pub host: String,
    /// The router.
    pub router_id: String,
    /// Revision the agent has applied.
    pub applied_revision: u64,
    /// The lease epoch of the state applied: a report under an older lease (from an
    /// agent that lost the router) is refused.
    #[serde(default)]
    pub lease_epoch: u64,
    /// Whether the router's IKE daemon runs.
    pub daemon_running: bool,
    /// Per connection.
    pub connections: Vec<ConnectionStatus>,
    /// Under Neutron, the reporting agent holds an HA router's gateway address (keepalived
    /// made its namespace primary). It says so even while the server names another agent
    /// active, and the server then moves the lease to it: keepalived, not Neutron's
    /// lagging `ha_state`, decides which node speaks for the router.
    #[serde(default)]
    pub primary: bool,
}

/// Default heartbeat document of a new agent beating at `now_ms`.
pub fn new_agent(host: &str, now_ms: u64) -> Value {
    json!({
        "id": uuid::Uuid::new_v4().to_string(), "tenant_id": "", "project_id": "",
        "host": host, "agent_type": "VPN agent", "binary": "vpnaas-agent",
        "admin_state_up": true, "heartbeat_at": now_ms / 1000, "heartbeat_ms": now_ms,
        "alive": true, "ha_address": null,
    })
}

/// One transition of a connection (`GET …/ipsec-site-connections/{id}/events`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionEvent {
    /// When, RFC 3339.
    pub time: String,
    /// Status before.
    pub from: Status,
    /// Status after.
    pub to: Status,
    /// Why.
    pub reason: StatusReason,
    /// Detail, e.g. the negotiated proposal or the daemon's message.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_is_alive_until_it_missed_down_after_seconds_of_heartbeats() {
        let mut agent: Agent = serde_json::from_value(new_agent("gw", 10_000)).expect("agent");
        assert!(agent.alive_at(13_000, 3));
        assert!(!agent.alive_at(13_001, 3), "judged to the millisecond");
        agent.beat(12_500);
        assert_eq!((agent.heartbeat_at, agent.heartbeat_ms), (12, 12_500));
        assert!(agent.alive_at(15_500, 3));
        let mut stored = serde_json::to_value(&agent).expect("json");
        stored
            .as_object_mut()
            .expect("object")
            .remove("heartbeat_ms");
        let older: Agent = serde_json::from_value(stored).expect("a record from before");
        assert!(older.alive_at(15_000, 3) && !older.alive_at(15_001, 3));
    }
}
