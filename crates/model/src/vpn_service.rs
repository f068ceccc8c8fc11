//! VPN services: the VPN on one router, optionally bound to one local subnet (legacy mode).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::attr::{Attr, AttrType as T, Post, Shape};
use crate::enums::Status;
use crate::kind::Kind;

/// A VPN service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VpnService {
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
    /// The router it runs on.
    pub router_id: String,
    /// Legacy mode: the local subnet of all its connections.
    pub subnet_id: Option<String>,
    /// Administrative state.
    pub admin_state_up: bool,
    /// Flavor selecting the driver.
    pub flavor_id: Option<String>,
    /// The driver (provider) the service runs on, pinned at creation (vpnaas extension);
    /// absent on services stored before drivers were chosen: strongSwan.
    #[serde(default)]
    pub provider: Option<crate::enums::DriverKind>,
    /// The router's IPv4 gateway address.
    pub external_v4_ip: Option<String>,
    /// The router's IPv6 gateway address.
    pub external_v6_ip: Option<String>,
    /// Status, reported by the agent.
    pub status: Status,
    /// Why the status is what it is, when the server knows better than the bare status:
    /// `NO_AGENT`, `AGENT_DOWN`, `DAEMON_DOWN` (vpnaas extension).
    #[serde(default)]
    pub status_reason: Option<crate::enums::StatusReason>,
    /// The gateway's certificate (PEM), issued by the project's CA when the service's
    /// first `cert` connection is made, renewed before it expires (vpnaas extension).
    #[serde(default)]
    pub local_certificate: Option<String>,
    /// Its SHA-256 fingerprint (colon-separated hex).
    #[serde(default)]
    pub local_certificate_fingerprint: Option<String>,
    /// When it expires, RFC 3339.
    #[serde(default)]
    pub local_certificate_not_after: Option<String>,
    /// The project's CA certificate (PEM) that issued it: what a peer trusts.
    #[serde(default)]
    pub ca_certificate: Option<String>,
}

fn yes() -> Value {
    json!(true)
}

/// Attribute map of `vpnservices`.
pub const VPN_SERVICE_ATTRS: &[Attr] = crate::attribute_map![
    Attr::new(
        "router_id",
        T::Uuid,
        Post::Required,
        false,
        "router the service runs on"
    ),
    Attr::new(
        "subnet_id",
        T::UuidOrNull,
        Post::Optional,
        false,
        "local subnet (legacy mode); null for endpoint groups"
    ),
    Attr::new(
        "admin_state_up",
        T::Bool,
        Post::Default(yes),
        true,
        "administrative state"
    ),
    Attr::new(
        "flavor_id",
        T::UuidOrNull,
        Post::Optional,
        false,
        "flavor (driver selection)"
    ),
    Attr::new(
        "provider",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "driver the service runs on (from its flavor, else the default provider)"
    ),
    Attr::new(
        "external_v4_ip",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "router's IPv4 gateway address"
    ),
    Attr::new(
        "external_v6_ip",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "router's IPv6 gateway address"
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
        "why, when no agent speaks for the service: NO_AGENT, AGENT_DOWN, DAEMON_DOWN (vpnaas extension)"
    ),
    Attr::new(
        "local_certificate",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "gateway certificate (PEM) from the project's CA, once a cert connection needs it (vpnaas extension)"
    ),
    Attr::new(
        "local_certificate_fingerprint",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "its SHA-256 fingerprint (vpnaas extension)"
    ),
    Attr::new(
        "local_certificate_not_after",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "when it expires, RFC 3339; renewed before (vpnaas extension)"
    ),
    Attr::new(
        "ca_certificate",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "the project's CA certificate (PEM) that issued it (vpnaas extension)"
    ),
];

crate::impl_resource!(VpnService, Kind::VpnService, |s| {
    let mut refs = vec![(Kind::Router, s.router_id.clone())];
    refs.extend(s.subnet_id.iter().map(|id| (Kind::Subnet, id.clone())));
    refs.extend(s.flavor_id.iter().map(|id| (Kind::Flavor, id.clone())));
    refs
});
