//! What every stored resource has in common: identity, owner and the other resources it
//! refers to (which the store indexes so that in-use guards are one lookup).

use serde::{Serialize, de::DeserializeOwned};

use crate::attr::Attr;
use crate::kind::Kind;

/// A resource the API serves and the store keeps.
pub trait Resource: Serialize + DeserializeOwned + Send + Sync {
    /// Its kind.
    const KIND: Kind;
    /// Its id.
    fn id(&self) -> &str;
    /// Its owning project.
    fn project_id(&self) -> &str;
    /// The resources it refers to, for in-use guards.
    fn references(&self) -> Vec<(Kind, String)>;
    /// Whether every project sees it, not only its owner (a shared or external network,
    /// a flavor). Objects of a kind with [`Kind::visible_with`] are also seen by whoever
    /// sees what they belong to.
    fn visible_to_all(&self) -> bool {
        false
    }
}

/// The attribute map of a kind.
pub fn attributes(kind: Kind) -> &'static [Attr] {
    match kind {
        Kind::IkePolicy => crate::policy::IKE_POLICY_ATTRS,
        Kind::IpsecPolicy => crate::policy::IPSEC_POLICY_ATTRS,
        Kind::VpnService => crate::vpn_service::VPN_SERVICE_ATTRS,
        Kind::SiteConnection => crate::site_connection::SITE_CONNECTION_ATTRS,
        Kind::EndpointGroup => crate::endpoint_group::ENDPOINT_GROUP_ATTRS,
        Kind::Network => crate::network::NETWORK_ATTRS,
        Kind::Subnet => crate::network::SUBNET_ATTRS,
        Kind::Router => crate::network::ROUTER_ATTRS,
        Kind::Agent => crate::agent::AGENT_ATTRS,
        Kind::Flavor => crate::flavor::FLAVOR_ATTRS,
        Kind::ServiceProfile => crate::flavor::SERVICE_PROFILE_ATTRS,
        Kind::CertificateAuthority => crate::certificate::CERTIFICATE_AUTHORITY_ATTRS,
        Kind::GatewayCredential => crate::certificate::GATEWAY_CREDENTIAL_ATTRS,
    }
}

/// Builds an attribute map: the five attributes every resource starts with (id, owner,
/// name, description), then the resource's own.
#[macro_export]
macro_rules! attribute_map {
    ($($attr:expr),* $(,)?) => {
        &[
            $crate::attr::Attr::new("id", $crate::attr::AttrType::Uuid, $crate::attr::Post::AdminOnly, false, "UUID, assigned by the server; an administrator may choose it on POST (a vpnaas extension, for imports: 409 if it exists)"),
            $crate::attr::Attr::new("tenant_id", $crate::attr::AttrType::ProjectId, $crate::attr::Post::Optional, false, "owning project (alias of project_id)"),
            $crate::attr::Attr::new("project_id", $crate::attr::AttrType::ProjectId, $crate::attr::Post::Optional, false, "owning project"),
            $crate::attr::Attr::new("name", $crate::attr::AttrType::Name, $crate::attr::Post::Default($crate::attr::empty_string), true, "human-readable name"),
            $crate::attr::Attr::new("description", $crate::attr::AttrType::Description, $crate::attr::Post::Default($crate::attr::empty_string), true, "free text"),
            $($attr),*
        ]
    };
}

/// Implements [`Resource`] for a struct with `id` and `project_id` fields, given its
/// kind, how to list what it refers to and, optionally, when every project sees it.
#[macro_export]
macro_rules! impl_resource {
    ($ty:ty, $kind:expr, |$s:ident| $refs:expr) => {
        $crate::impl_resource!($ty, $kind, |$s| $refs, visible_to_all: |_v| false);
    };
    ($ty:ty, $kind:expr, |$s:ident| $refs:expr, visible_to_all: |$v:ident| $visible:expr) => {
        impl $crate::resource::Resource for $ty {
            const KIND: $crate::Kind = $kind;
            fn id(&self) -> &str {
                &self.id
            }
            fn project_id(&self) -> &str {
                &self.project_id
            }
            fn references(&self) -> Vec<($crate::Kind, String)> {
                let $s = self;
                $refs
            }
            fn visible_to_all(&self) -> bool {
                let $v = self;
                $visible
            }
        }
    };
}
