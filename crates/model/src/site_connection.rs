//! IPsec site connections: one tunnel from a VPN service to a peer.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::address::{Cidr, PeerAddress};
use crate::attr::{Attr, AttrType as T, IntRange, Post, Shape};
use crate::enums::{AuthMode, DpdAction, Initiator, Status, StatusReason};
use crate::kind::Kind;

/// A pre-shared key (empty on a `cert` connection). Its `Debug` never shows the secret.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Psk(String);

impl Psk {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Psk(secret.into())
    }
    /// The secret, for the daemon configuration only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Psk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Psk(<redacted>)")
    }
}

/// Dead peer detection settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dpd {
    /// What to do when the peer is declared dead.
    #[serde(default = "default_dpd_action")]
    pub action: DpdAction,
    /// Seconds between probes.
    #[serde(default = "default_dpd_interval")]
    pub interval: u32,
    /// Seconds until the peer is declared dead; must exceed `interval`.
    #[serde(default = "default_dpd_timeout")]
    pub timeout: u32,
}

fn default_dpd_action() -> DpdAction {
    DpdAction::Hold
}
fn default_dpd_interval() -> u32 {
    30
}
fn default_dpd_timeout() -> u32 {
    120
}

impl Default for Dpd {
    fn default() -> Self {
        Dpd {
            action: default_dpd_action(),
            interval: default_dpd_interval(),
            timeout: default_dpd_timeout(),
        }
    }
}

/// An IPsec site connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteConnection {
    /// Id.
    pub id: String,
    /// Owner (alias).
    pub tenant_id: String,
    /// Owner.
    pub project_id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// The VPN service (router) this tunnel starts from.
    pub vpnservice_id: String,
    /// Phase-1 policy.
    pub ikepolicy_id: String,
    /// Phase-2 policy.
    pub ipsecpolicy_id: String,
    /// The peer's gateway address (a host name is resolved and stored as an IP).
    pub peer_address: PeerAddress,
    /// The peer's IKE identity.
    pub peer_id: String,
    /// Our IKE identity; empty means the gateway address.
    pub local_id: String,
    /// The pre-shared key (empty when `auth_mode` is `cert`).
    #[serde(default)]
    pub psk: Psk,
    /// Peer CIDRs (legacy mode).
    pub peer_cidrs: Vec<Cidr>,
    /// Local endpoint group (subnets).
    pub local_ep_group_id: Option<String>,
    /// Peer endpoint group (CIDRs).
    pub peer_ep_group_id: Option<String>,
    /// Tunnel MTU.
    pub mtu: u32,
    /// Who may start negotiation.
    pub initiator: Initiator,
    /// Dead peer detection.
    #[serde(default)]
    pub dpd: Dpd,
    /// Administrative state.
    pub admin_state_up: bool,
    /// `psk`, or `cert` (vpnaas extension).
    pub auth_mode: AuthMode,
    /// A `cert` connection's trust for the peer's certificate: a CA certificate (PEM);
    /// absent means the project's own CA (vpnaas extension).
    #[serde(default)]
    pub peer_ca_certificate: Option<String>,
    /// Always `static`.
    pub route_mode: String,
    /// Status, reported by the agent.
    pub status: Status,
    /// Why the status is what it is (vpnaas extension; see [`crate::enums::StatusReason`]).
    #[serde(default)]
    pub status_reason: Option<StatusReason>,
    /// When `status` or `status_reason` last changed, RFC 3339 (vpnaas extension).
    #[serde(default)]
    pub status_changed_at: Option<String>,
    /// Traffic counters of the tunnel, where the daemon has them (vpnaas extension).
    #[serde(default)]
    pub traffic: Option<Traffic>,
    /// Credentials changed and re-authentications asked, and how far the agent has
    /// followed (vpnaas extension).
    #[serde(default)]
    pub key_rotation: KeyRotation,
}

/// Where a connection's key rotation stands: what the server asked of the agent (a new
/// generation of credentials with each change of the pre-shared key, of re-authentication
/// with each `POST …/reauthenticate`) and what the agent reported done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRotation {
    /// Bumped whenever the pre-shared key changes.
    #[serde(default)]
    pub credentials: u64,
    /// The generation the agent's daemon holds.
    #[serde(default)]
    pub credentials_loaded: u64,
    /// Bumped by each `POST …/reauthenticate`.
    #[serde(default)]
    pub reauth: u64,
    /// The last re-authentication the agent concluded.
    #[serde(default)]
    pub reauthenticated: u64,
}

impl KeyRotation {
    /// What the agent is asked to hold and do.
    pub fn asked(&self) -> crate::agent::Generations {
        crate::agent::Generations {
            credentials: self.credentials,
            reauth: self.reauth,
        }
    }
}

/// Traffic through a connection since it came up, across rekeys of its child SAs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Packets received.
    pub packets_in: u64,
    /// Packets sent.
    pub packets_out: u64,
    /// Child SA rekeys (counters above carry on across them).
    #[serde(default)]
    pub rekeys: u64,
}

fn yes() -> Value {
    json!(true)
}
fn empty_string() -> Value {
    json!("")
}
fn empty_list() -> Value {
    json!([])
}
fn default_mtu() -> Value {
    json!(1500)
}
fn default_initiator() -> Value {
    json!("bi-directional")
}
fn default_auth_mode() -> Value {
    json!("psk")
}
fn default_dpd() -> Value {
    json!({})
}

/// The largest IP packet: no tunnel MTU can exceed it.
pub const MAX_MTU: i64 = 65535;

/// A connection's `mtu`: its minimum depends on the IP version of the local side, so it is
/// checked with the service (`IPsecSiteConnectionMtuError`, as in Neutron).
const TUNNEL_MTU: IntRange = IntRange::new(0, MAX_MTU);

/// Attribute map of `ipsec-site-connections`.
pub const SITE_CONNECTION_ATTRS: &[Attr] = crate::attribute_map![
    Attr::new(
        "vpnservice_id",
        T::Uuid,
        Post::Required,
        false,
        "VPN service the tunnel starts from"
    ),
    Attr::new("ikepolicy_id", T::Uuid, Post::Required, false, "IKE policy"),
    Attr::new(
        "ipsecpolicy_id",
        T::Uuid,
        Post::Required,
        false,
        "IPsec policy"
    ),
    Attr::new(
        "peer_address",
        T::PeerAddress,
        Post::Required,
        true,
        "peer gateway: IP address or host name (resolved once)"
    ),
    Attr::new(
        "peer_id",
        T::Identity { allow_empty: false },
        Post::Required,
        true,
        "peer IKE identity"
    ),
    Attr::new(
        "local_id",
        T::Identity { allow_empty: true },
        Post::Default(empty_string),
        true,
        "local IKE identity; empty means the gateway address"
    ),
    Attr::new(
        "psk",
        T::Psk,
        Post::Optional,
        true,
        "pre-shared key (non-empty); required unless auth_mode is cert"
    )
    .secret(),
    Attr::new(
        "peer_cidrs",
        T::CidrList,
        Post::Default(empty_list),
        true,
        "peer CIDRs (legacy mode)"
    ),
    Attr::new(
        "local_ep_group_id",
        T::UuidOrNull,
        Post::Optional,
        true,
        "local endpoint group (type subnet)"
    ),
    Attr::new(
        "peer_ep_group_id",
        T::UuidOrNull,
        Post::Optional,
        true,
        "peer endpoint group (type cidr)"
    ),
    Attr::new(
        "mtu",
        T::Int(TUNNEL_MTU),
        Post::Default(default_mtu),
        true,
        "tunnel MTU (>= 68 for IPv4, >= 1280 for IPv6, <= 65535)"
    ),
    Attr::new(
        "initiator",
        T::Enum(Initiator::ALL, &[]),
        Post::Default(default_initiator),
        true,
        "bi-directional or response-only"
    ),
    Attr::new(
        "dpd",
        T::Dpd,
        Post::Default(default_dpd),
        true,
        "{action, interval, timeout}; timeout > interval"
    ),
    Attr::new(
        "admin_state_up",
        T::Bool,
        Post::Default(yes),
        true,
        "administrative state"
    ),
    Attr::new(
        "auth_mode",
        T::Enum(AuthMode::ALL, &[]),
        Post::Default(default_auth_mode),
        true,
        "psk, or cert: certificates from the project's CA (vpnaas extension)"
    ),
    Attr::new(
        "peer_ca_certificate",
        T::PemCertificateOrNull,
        Post::Optional,
        true,
        "cert connections: the CA certificate (PEM) the peer's certificate must chain to; null means the project's CA (vpnaas extension)"
    ),
    Attr::new(
        "route_mode",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "always static"
    ),
    Attr::new(
        "status",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "ACTIVE, DOWN, ERROR or PENDING_CREATE"
    ),
    Attr::new(
        "status_reason",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "why: ESTABLISHED, CONNECTING, AUTH_FAILED, CERT_UNTRUSTED, CERT_EXPIRED, ID_MISMATCH, NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE, PEER_UNREACHABLE, PEER_CLOSED, DAEMON_DOWN, ADMIN_DOWN, KERNEL_REFUSED, CHILD_SA_FAILED, AGENT_DOWN, NO_AGENT, NO_GATEWAY_FOR_PEER_FAMILY, PEER_UNRESOLVED (vpnaas extension)"
    ),
    Attr::new(
        "status_changed_at",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "time of the last status change, RFC 3339 (vpnaas extension)"
    ),
    Attr::new(
        "traffic",
        T::Computed(Shape::Dict),
        Post::Forbidden,
        false,
        "bytes and packets in and out (vpnaas extension)"
    ),
    Attr::new(
        "key_rotation",
        T::Computed(Shape::Dict),
        Post::Forbidden,
        false,
        "credentials (bumped by each change of psk) and credentials_loaded (what the agent holds); reauth (bumped by POST .../reauthenticate) and reauthenticated (what the agent concluded) (vpnaas extension)"
    ),
];

crate::impl_resource!(SiteConnection, Kind::SiteConnection, |c| {
    let mut refs = vec![
        (Kind::VpnService, c.vpnservice_id.clone()),
        (Kind::IkePolicy, c.ikepolicy_id.clone()),
        (Kind::IpsecPolicy, c.ipsecpolicy_id.clone()),
    ];
    for group in [&c.local_ep_group_id, &c.peer_ep_group_id]
        .into_iter()
        .flatten()
    {
        refs.push((Kind::EndpointGroup, group.clone()));
    }
    refs
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_pre_shared_key() {
        let conn: SiteConnection = serde_json::from_value(json!({
            "id": "c", "tenant_id": "p", "project_id": "p", "name": "", "description": "",
            "vpnservice_id": "s", "ikepolicy_id": "i", "ipsecpolicy_id": "j",
            "peer_address": "192.0.2.1", "peer_id": "192.0.2.1", "local_id": "",
            "psk": "very-secret-key", "peer_cidrs": [], "local_ep_group_id": null,
            "peer_ep_group_id": null, "mtu": 1500, "initiator": "bi-directional",
            "dpd": {}, "admin_state_up": true, "auth_mode": "psk", "route_mode": "static",
            "status": "PENDING_CREATE"
        }))
        .expect("decodes");
        let shown = format!("{conn:?} {:?}", conn.psk);
        assert!(!shown.contains("very-secret-key"), "{shown}");
        assert_eq!(conn.psk.expose(), "very-secret-key");
    }
}
