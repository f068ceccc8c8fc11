//! The kinds of resource the API serves and their names on the wire.

use std::fmt;

/// Every resource kind vpnaas stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `/v2.0/vpn/ikepolicies`
    IkePolicy,
    /// `/v2.0/vpn/ipsecpolicies`
    IpsecPolicy,
    /// `/v2.0/vpn/vpnservices`
    VpnService,
    /// `/v2.0/vpn/ipsec-site-connections`
    SiteConnection,
    /// `/v2.0/vpn/endpoint-groups`
    EndpointGroup,
    /// `/v2.0/networks`
    Network,
    /// `/v2.0/subnets`
    Subnet,
    /// `/v2.0/routers`
    Router,
    /// `/v2.0/agents` (admin, read-only)
    Agent,
    /// Flavors (driver selection).
    Flavor,
    /// Service profiles (a flavor's drivers).
    ServiceProfile,
}

impl Kind {
    /// All kinds, in the order the API documents them.
    pub const ALL: [Kind; 11] = [
        Kind::IkePolicy,
        Kind::IpsecPolicy,
        Kind::VpnService,
        Kind::SiteConnection,
        Kind::EndpointGroup,
        Kind::Network,
        Kind::Subnet,
        Kind::Router,
        Kind::Agent,
        Kind::Flavor,
        Kind::ServiceProfile,
    ];

    /// JSON envelope key of one object (`ikepolicy`).
    pub fn singular(self) -> &'static str {
        match self {
            Kind::IkePolicy => "ikepolicy",
            Kind::IpsecPolicy => "ipsecpolicy",
            Kind::VpnService => "vpnservice",
            Kind::SiteConnection => "ipsec_site_connection",
            Kind::EndpointGroup => "endpoint_group",
            Kind::Network => "network",
            Kind::Subnet => "subnet",
            Kind::Router => "router",
            Kind::Agent => "agent",
            Kind::Flavor => "flavor",
            Kind::ServiceProfile => "service_profile",
        }
    }

    /// JSON envelope key of a list (`ikepolicies`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::IkePolicy => "ikepolicies",
            Kind::IpsecPolicy => "ipsecpolicies",
            Kind::VpnService => "vpnservices",
            Kind::SiteConnection => "ipsec_site_connections",
            Kind::EndpointGroup => "endpoint_groups",
            Kind::Network => "networks",
            Kind::Subnet => "subnets",
            Kind::Router => "routers",
            Kind::Agent => "agents",
            Kind::Flavor => "flavors",
            Kind::ServiceProfile => "service_profiles",
        }
    }

    /// Collection path below `/v2.0` (`vpn/ikepolicies`).
    pub fn path(self) -> &'static str {
        match self {
            Kind::IkePolicy => "vpn/ikepolicies",
            Kind::IpsecPolicy => "vpn/ipsecpolicies",
            Kind::VpnService => "vpn/vpnservices",
            Kind::SiteConnection => "vpn/ipsec-site-connections",
            Kind::EndpointGroup => "vpn/endpoint-groups",
            Kind::Network => "networks",
            Kind::Subnet => "subnets",
            Kind::Router => "routers",
            Kind::Agent => "agents",
            Kind::Flavor => "flavors",
            Kind::ServiceProfile => "service_profiles",
        }
    }

    /// Stable name used by the store.
    pub fn store_name(self) -> &'static str {
        self.singular()
    }

    /// The kind whose store name is `name`.
    pub fn from_store_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.store_name() == name)
    }

    /// The kind whose visibility objects of this kind share, and the attribute naming
    /// their owner of that kind: a subnet is seen by whoever sees its network (a shared or
    /// external one is seen by every project). The object refers to its owner.
    pub fn visible_with(self) -> Option<(Kind, &'static str)> {
        match self {
            Kind::Subnet => Some((Kind::Network, "network_id")),
            _ => None,
        }
    }

    /// Policy target name (`create_<target>`), as in Neutron's policy files.
    pub fn policy_target(self) -> &'static str {
        self.singular()
    }

    /// Whether the resource is one of the five VPN resources.
    pub fn is_vpn(self) -> bool {
        matches!(
            self,
            Kind::IkePolicy
                | Kind::IpsecPolicy
                | Kind::VpnService
                | Kind::SiteConnection
                | Kind::EndpointGroup
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.singular())
    }
}
