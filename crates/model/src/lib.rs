//! The vpnaas domain: resource kinds and types, the Neutron VPNaaS v2.0 wire format,
//! attribute maps with their validation rules, the strict grammar for tenant strings and
//! the Neutron fault catalogue. Shared by server, client, CLI and agent; it knows nothing
//! of HTTP, SQL or network namespaces.

#![warn(missing_docs)]

pub mod address;
pub mod agent;
pub mod attr;
pub mod capability;
pub mod certificate;
pub mod endpoint_group;
pub mod enums;
pub mod error;
pub mod flavor;
pub mod grammar;
pub mod kind;
pub mod network;
pub mod policy;
pub mod resource;
pub mod site_connection;
pub mod spelling;
pub mod standard_attr;
pub mod vpn_service;

pub use error::{Error, FaultClass, FaultKind, Result};
pub use kind::Kind;
pub use resource::{Resource, attributes};
