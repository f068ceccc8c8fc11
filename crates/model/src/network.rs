//! The minimal network inventory VPN services live on: networks, subnets and routers,
//! with Neutron's wire shape so that Neutron clients and scripts work unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::address::{Cidr, IpAddress};
use crate::attr::{Attr, AttrType as T, IntRange, Post, Shape};
use crate::enums::HaRole;
use crate::kind::Kind;
use crate::standard_attr::{HasStandardAttrs, StandardAttrs};

/// A network; external networks carry router gateways.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
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
    /// Administrative state.
    pub admin_state_up: bool,
    /// Visible to every project.
    pub shared: bool,
    /// Usable as a router gateway network.
    #[serde(rename = "router:external")]
    pub router_external: bool,
    /// Stored as given.
    #[serde(rename = "provider:network_type", default)]
    pub provider_network_type: Option<Value>,
    /// Stored as given.
    #[serde(rename = "provider:physical_network", default)]
    pub provider_physical_network: Option<Value>,
    /// Stored as given.
    #[serde(rename = "provider:segmentation_id", default)]
    pub provider_segmentation_id: Option<Value>,
    /// MTU.
    pub mtu: u32,
    /// Always ACTIVE.
    pub status: String,
    /// Ids of its subnets.
    pub subnets: Vec<String>,
    /// Accepted and stored; vpnaas has no ports to secure.
    #[serde(default = "yes_bool")]
    pub port_security_enabled: bool,
    /// Accepted at creation and stored.
    #[serde(default)]
    pub vlan_transparent: bool,
    /// Accepted at creation and stored.
    #[serde(default)]
    pub qinq: bool,
    /// The default external network for auto-allocation; stored.
    #[serde(default)]
    pub is_default: bool,
    /// Always empty: vpnaas has no availability zones.
    #[serde(default)]
    pub availability_zone_hints: Vec<String>,
    /// Always empty.
    #[serde(default)]
    pub availability_zones: Vec<String>,
    /// Always null: vpnaas has no address scopes.
    #[serde(default)]
    pub ipv4_address_scope: Option<String>,
    /// Always null.
    #[serde(default)]
    pub ipv6_address_scope: Option<String>,
    /// Tags, timestamps, revision.
    #[serde(flatten)]
    pub standard: StandardAttrs,
}

/// An allocation pool of a subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationPool {
    /// First address.
    pub start: IpAddress,
    /// Last address.
    pub end: IpAddress,
}

/// A static route: subnet `host_routes` and router `routes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoute {
    /// Destination CIDR.
    pub destination: Cidr,
    /// Next hop address.
    pub nexthop: IpAddress,
}

/// A subnet of a network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subnet {
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
    /// Its network.
    pub network_id: String,
    /// Its CIDR.
    pub cidr: Cidr,
    /// 4 or 6.
    pub ip_version: u8,
    /// Gateway address (what a router interface on it takes).
    pub gateway_ip: Option<IpAddress>,
    /// Accepted and stored; vpnaas runs no DHCP.
    pub enable_dhcp: bool,
    /// Addresses handed out (router gateways), derived from the CIDR and gateway.
    pub allocation_pools: Vec<AllocationPool>,
    /// Accepted and stored; vpnaas runs no DHCP.
    #[serde(default)]
    pub dns_nameservers: Vec<IpAddress>,
    /// Accepted and stored; vpnaas runs no DHCP.
    #[serde(default)]
    pub host_routes: Vec<HostRoute>,
    /// Accepted and stored.
    #[serde(default)]
    pub service_types: Vec<String>,
    /// Always null: vpnaas has no subnet pools.
    #[serde(default)]
    pub subnetpool_id: Option<String>,
    /// IPv6 router advertisement mode, stored.
    #[serde(default)]
    pub ipv6_ra_mode: Option<String>,
    /// IPv6 address mode, stored.
    #[serde(default)]
    pub ipv6_address_mode: Option<String>,
    /// Whether its network is external (kept equal to the network's).
    #[serde(rename = "router:external", default)]
    pub router_external: bool,
    /// Tags, timestamps, revision.
    #[serde(flatten)]
    pub standard: StandardAttrs,
}

/// One fixed address of a router gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    /// Subnet of the external network.
    pub subnet_id: String,
    /// The address.
    pub ip_address: IpAddress,
}

/// A router's external gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayInfo {
    /// External network.
    pub network_id: String,
    /// Whether internal subnets are SNATed out of the gateway.
    #[serde(default = "yes_bool")]
    pub enable_snat: bool,
    /// Gateway addresses, one per external subnet.
    #[serde(default)]
    pub external_fixed_ips: Vec<FixedIp>,
}

fn yes_bool() -> bool {
    true
}

/// A router interface on an internal subnet (vpnaas extension field `interfaces`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterInterface {
    /// The subnet.
    pub subnet_id: String,
    /// The port id reported by add_router_interface.
    pub port_id: String,
    /// The subnet's gateway address, held by the router.
    pub ip_address: IpAddress,
}

/// A router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Router {
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
    /// Administrative state.
    pub admin_state_up: bool,
    /// Highly available (two agents, one active).
    pub ha: bool,
    /// Always ACTIVE.
    pub status: String,
    /// External gateway, if set.
    pub external_gateway_info: Option<GatewayInfo>,
    /// Interfaces on internal subnets.
    #[serde(default)]
    pub interfaces: Vec<RouterInterface>,
    /// Accepted and stored; vpnaas routers are not distributed.
    #[serde(default)]
    pub distributed: bool,
    /// Extra routes, accepted and stored (vpnaas agents do not install them).
    #[serde(default)]
    pub routes: Vec<HostRoute>,
    /// Always empty: vpnaas has no availability zones.
    #[serde(default)]
    pub availability_zone_hints: Vec<String>,
    /// Always empty.
    #[serde(default)]
    pub availability_zones: Vec<String>,
    /// Always null: vpnaas has no router flavors.
    #[serde(default)]
    pub flavor_id: Option<String>,
    /// Tags, timestamps and the revision: bumped by every change, including every
    /// change to what the router's agent must apply; agents report the revision they
    /// applied.
    #[serde(flatten)]
    pub standard: StandardAttrs,
    /// The agent (host) the router is scheduled to, if any: the active one of an HA
    /// router, the holder of its lease (vpnaas extension).
    #[serde(default)]
    pub agent_host: Option<String>,
    /// The standby agent of an HA router: its namespace and ports are ready, its IKE
    /// daemon does not run (vpnaas extension).
    #[serde(default)]
    pub ha_standby_host: Option<String>,
    /// The fencing token of the router's lease: bumped whenever its active agent changes.
    /// Desired states and status reports carry it; a report under an older one is
    /// refused (vpnaas extension).
    #[serde(default)]
    pub lease_epoch: u64,
    /// The agent that lost the lease to its standby's claim (the standby stopped hearing
    /// its liveness answers) and is now the standby: it may not claim the router back
    /// while the holder beats, so agents cut off from each other but not from the server
    /// switch over once, not back and forth. Cleared when that agent comes back from the
    /// dead or stops being the standby (vpnaas extension).
    #[serde(default)]
    pub lease_claimed_from: Option<String>,
}

impl Router {
    /// The gateway address of the given IP version, if any.
    pub fn gateway_ip(&self, version: u8) -> Option<std::net::IpAddr> {
        let gateway = self.external_gateway_info.as_ref()?;
        gateway
            .external_fixed_ips
            .iter()
            .find(|f| f.ip_address.version() == version)
            .map(|f| f.ip_address.ip())
    }

    /// What `host` is to this router: its active agent, its standby, or nothing.
    pub fn role_of(&self, host: &str) -> Option<HaRole> {
        if self.agent_host.as_deref() == Some(host) {
            Some(HaRole::Active)
        } else if self.ha_standby_host.as_deref() == Some(host) {
            Some(HaRole::Standby)
        } else {
            None
        }
    }

    /// The agents that hold the router, active first.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.agent_host
            .iter()
            .chain(self.ha_standby_host.iter())
            .map(String::as_str)
    }

    /// Whether the router has an interface on the subnet.
    pub fn has_interface_on(&self, subnet_id: &str) -> bool {
        self.interfaces.iter().any(|i| i.subnet_id == subnet_id)
    }
}

fn yes() -> Value {
    json!(true)
}
fn no() -> Value {
    json!(false)
}
fn empty_list() -> Value {
    json!([])
}
fn null() -> Value {
    Value::Null
}

/// Neutron's IPv6 address and router advertisement modes.
pub const IPV6_MODES: &[&str] = &["dhcpv6-stateful", "dhcpv6-stateless", "slaac"];

/// An output-only scalar attribute.
const fn computed(name: &'static str, doc: &'static str) -> Attr {
    Attr::new(
        name,
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        doc,
    )
}

/// An output-only list attribute.
const fn computed_list(name: &'static str, doc: &'static str) -> Attr {
    Attr::new(name, T::Computed(Shape::List), Post::Forbidden, false, doc)
}

/// A network's `mtu`: from the smallest MTU an IPv4 link may have (RFC 791) to the largest
/// IP packet, as a connection's.
const NETWORK_MTU: IntRange = IntRange::new(68, crate::site_connection::MAX_MTU);

/// Neutron's standard attributes, output only (see [`StandardAttrs`]).
const TAGS: Attr = computed_list("tags", "labels; changed through /tags");
const CREATED_AT: Attr = computed("created_at", "creation time (RFC 3339)");
const UPDATED_AT: Attr = computed("updated_at", "time of the last change (RFC 3339)");
const AZ_HINTS: Attr = Attr::new(
    "availability_zone_hints",
    T::AzHints,
    Post::Default(empty_list),
    false,
    "availability zones (vpnaas has none: must be empty)",
);
const AZS: Attr = computed_list("availability_zones", "always empty");

/// Attribute map of `networks`.
pub const NETWORK_ATTRS: &[Attr] = crate::attribute_map![
    Attr::new(
        "admin_state_up",
        T::Bool,
        Post::Default(yes),
        true,
        "administrative state"
    ),
    Attr::new(
        "shared",
        T::Bool,
        Post::Default(no),
        true,
        "visible to every project (admin only)"
    ),
    Attr::new(
        "router:external",
        T::Bool,
        Post::Default(no),
        true,
        "usable for router gateways (admin only)"
    ),
    Attr::new(
        "provider:network_type",
        T::Scalar,
        Post::Optional,
        false,
        "stored as given (admin only)"
    ),
    Attr::new(
        "provider:physical_network",
        T::Scalar,
        Post::Optional,
        false,
        "stored as given (admin only)"
    ),
    Attr::new(
        "provider:segmentation_id",
        T::Scalar,
        Post::Optional,
        false,
        "stored as given (admin only)"
    ),
    Attr::new(
        "mtu",
        T::Int(NETWORK_MTU),
        Post::Optional,
        true,
        "MTU, 68 to 65535 (default 1500)"
    ),
    Attr::new(
        "port_security_enabled",
        T::Bool,
        Post::Default(yes),
        true,
        "accepted and stored"
    ),
    Attr::new(
        "vlan_transparent",
        T::Bool,
        Post::Default(no),
        false,
        "accepted and stored"
    ),
    Attr::new(
        "qinq",
        T::Bool,
        Post::Default(no),
        false,
        "accepted and stored"
    ),
    Attr::new(
        "is_default",
        T::Bool,
        Post::Default(no),
        true,
        "default external network (admin only)"
    ),
    AZ_HINTS,
    AZS,
    computed("ipv4_address_scope", "always null"),
    computed("ipv6_address_scope", "always null"),
    computed("status", "always ACTIVE"),
    computed_list("subnets", "ids of its subnets"),
    TAGS,
    CREATED_AT,
    UPDATED_AT,
    computed("revision_number", "bumped by every change"),
];

/// Attribute map of `subnets`.
pub const SUBNET_ATTRS: &[Attr] = crate::attribute_map![
    Attr::new("network_id", T::Uuid, Post::Required, false, "network"),
    Attr::new("cidr", T::Cidr, Post::Required, false, "CIDR"),
    Attr::new(
        "ip_version",
        T::IpVersion,
        Post::Optional,
        false,
        "4 or 6 (default: the CIDR's)"
    ),
    Attr::new(
        "gateway_ip",
        T::IpOrNull,
        Post::Optional,
        true,
        "gateway address (default: first host; null for none)"
    ),
    Attr::new(
        "enable_dhcp",
        T::Bool,
        Post::Default(yes),
        true,
        "accepted and stored"
    ),
    Attr::new(
        "dns_nameservers",
        T::Nameservers,
        Post::Default(empty_list),
        true,
        "DNS servers (at most 5), accepted and stored"
    ),
    Attr::new(
        "host_routes",
        T::Routes,
        Post::Default(empty_list),
        true,
        "{destination, nexthop} routes, accepted and stored"
    ),
    Attr::new(
        "service_types",
        T::ServiceTypes,
        Post::Default(empty_list),
        true,
        "device owner prefixes, accepted and stored"
    ),
    Attr::new(
        "subnetpool_id",
        T::UuidOrNull,
        Post::Default(null),
        false,
        "subnet pool (vpnaas has none: must be null)"
    ),
    Attr::new(
        "ipv6_ra_mode",
        T::EnumOrNull(IPV6_MODES),
        Post::Default(null),
        false,
        "IPv6 router advertisement mode, stored"
    ),
    Attr::new(
        "ipv6_address_mode",
        T::EnumOrNull(IPV6_MODES),
        Post::Default(null),
        false,
        "IPv6 address mode, stored"
    ),
    computed_list("allocation_pools", "derived from cidr and gateway_ip"),
    computed("router:external", "whether its network is external"),
    TAGS,
    CREATED_AT,
    UPDATED_AT,
    computed("revision_number", "bumped by every change"),
];

/// Attribute map of `routers`.
pub const ROUTER_ATTRS: &[Attr] = crate::attribute_map![
    Attr::new(
        "admin_state_up",
        T::Bool,
        Post::Default(yes),
        true,
        "administrative state"
    ),
    Attr::new("ha", T::Bool, Post::Default(no), true, "highly available"),
    Attr::new(
        "distributed",
        T::Bool,
        Post::Default(no),
        true,
        "accepted and stored (changing it needs admin_state_up false)"
    ),
    Attr::new(
        "external_gateway_info",
        T::GatewayInfo,
        Post::Optional,
        true,
        "{network_id, external_fixed_ips, enable_snat}"
    ),
    Attr::new(
        "routes",
        T::Routes,
        Post::Forbidden,
        true,
        "extra {destination, nexthop} routes, accepted and stored"
    ),
    Attr::new(
        "flavor_id",
        T::UuidOrNull,
        Post::Default(null),
        false,
        "router flavor (vpnaas has none: must be null)"
    ),
    AZ_HINTS,
    AZS,
    computed("status", "always ACTIVE"),
    computed_list(
        "interfaces",
        "interfaces on internal subnets (vpnaas extension)"
    ),
    TAGS,
    CREATED_AT,
    UPDATED_AT,
    computed(
        "revision_number",
        "bumped by every change, including every change an agent must apply"
    ),
    computed(
        "agent_host",
        "host of the agent the router is scheduled to; an HA router's active one (vpnaas extension)"
    ),
    computed(
        "ha_standby_host",
        "host of an HA router's standby agent (vpnaas extension)"
    ),
    computed(
        "lease_epoch",
        "fencing token, bumped whenever the active agent changes (vpnaas extension)"
    ),
    computed(
        "lease_claimed_from",
        "the agent that lost the lease to its standby's liveness claim; it may not claim it back while the holder beats (vpnaas extension)"
    ),
];

crate::impl_resource!(Network, Kind::Network, |_n| vec![], visible_to_all: |n| n.shared
    || n.router_external);
crate::impl_resource!(Subnet, Kind::Subnet, |s| vec![(
    Kind::Network,
    s.network_id.clone()
)]);
crate::impl_resource!(Router, Kind::Router, |r| {
    let mut refs = Vec::new();
    if let Some(gw) = &r.external_gateway_info {
        refs.push((Kind::Network, gw.network_id.clone()));
        refs.extend(
            gw.external_fixed_ips
                .iter()
                .map(|f| (Kind::Subnet, f.subnet_id.clone())),
        );
    }
    refs.extend(
        r.interfaces
            .iter()
            .map(|i| (Kind::Subnet, i.subnet_id.clone())),
    );
    refs
});

macro_rules! impl_standard_attrs {
    ($($ty:ty),*) => {$(
        impl HasStandardAttrs for $ty {
            fn standard(&self) -> &StandardAttrs {
                &self.standard
            }
            fn standard_mut(&mut self) -> &mut StandardAttrs {
                &mut self.standard
            }
        }
    )*};
}
impl_standard_attrs!(Network, Subnet, Router);
