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
    /// A project's certificate authority (internal: never served).
    CertificateAuthority,
    /// A VPN service's gateway certificate and key (internal: never served).
    GatewayCredential,
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

    /// The kinds the store keeps that the API never serves (their records hold keys).
    pub const INTERNAL: [Kind; 2] = [Kind::CertificateAuthority, Kind::GatewayCredential];

    /// Every kind the store keeps: those the API serves, then the internal ones.
    pub fn stored() -> impl Iterator<Item = Kind> {
        Kind::ALL.into_iter().chain(Kind::INTERNAL)
    }

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
            Kind::CertificateAuthority => "certificate_authority",
            Kind::GatewayCredential => "gateway_credential",
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
            Kind::CertificateAuthority => "certificate_authorities",
            Kind::GatewayCredential => "gateway_credentials",
        }
    }

    /// Collection path below `/v2.0` (`vpn/ikepolicies`); internal kinds have none that
    /// is routed.
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
            Kind::CertificateAuthority => "certificate_authorities",
            Kind::GatewayCredential => "gateway_credentials",
        }
    }

    /// Stable name used by the store.
    pub fn store_name(self) -> &'static str {
        self.singular()
    }

    /// The kind whose store name is `name`.
    pub fn from_store_name(name: &str) -> Option<Kind> {
        Kind::stored().find(|k| k.store_name() == name)
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
