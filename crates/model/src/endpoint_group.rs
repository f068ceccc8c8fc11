//! Endpoint groups: named sets of local subnets or peer CIDRs (or VLANs, networks,
//! routers) that connections use instead of a service subnet and `peer_cidrs`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::address::Endpoint;
use crate::attr::{Attr, AttrType as T, Post};
use crate::enums::EndpointType;
use crate::kind::Kind;

/// An endpoint group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointGroup {
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
    /// What the endpoints are.
    #[serde(rename = "type")]
    pub endpoint_type: EndpointType,
    /// The endpoints, in the order given.
    pub endpoints: Vec<Endpoint>,
}

fn empty_list() -> Value {
    json!([])
}

/// Attribute map of `endpoint-groups`.
pub const ENDPOINT_GROUP_ATTRS: &[Attr] = crate::attribute_map![
    Attr::new(
        "type",
        T::Enum(EndpointType::ALL, &[]),
        Post::Required,
        false,
        "subnet, cidr, vlan, network or router"
    ),
    Attr::new(
        "endpoints",
        T::StringList,
        Post::Default(empty_list),
        false,
        "subnet ids, CIDRs, VLAN ids, network or router ids"
    ),
];

crate::impl_resource!(
    EndpointGroup,
    Kind::EndpointGroup,
    |g| match g.endpoint_type {
        EndpointType::Subnet => g
            .endpoints
            .iter()
            .map(|s| (Kind::Subnet, s.as_str().to_string()))
            .collect(),
        _ => vec![],
    }
);
