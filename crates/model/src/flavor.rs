//! Neutron's flavors framework as VPN uses it: a service profile names a driver (one of
//! the providers `GET /v2.0/service-providers` lists), a flavor groups profiles, and a VPN
//! service's `flavor_id` picks the driver its router's daemon runs. Flavors are visible to
//! every project; profiles, and every change, are for admins.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::attr::{Attr, AttrType as T, Post, Shape};
use crate::enums::DriverKind;
use crate::kind::Kind;

/// The only service type flavors serve here.
pub const VPN_SERVICE_TYPE: &str = "VPN";

/// A flavor (`/v2.0/flavors`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flavor {
    /// Id.
    pub id: String,
    /// Creator's project.
    pub tenant_id: String,
    /// Creator's project.
    pub project_id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Always `VPN`.
    pub service_type: String,
    /// Associated service profiles, in association order (the first enabled one decides).
    #[serde(default)]
    pub service_profiles: Vec<String>,
    /// A disabled flavor cannot be chosen for new services.
    pub enabled: bool,
}

/// A service profile (`/v2.0/service_profiles`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceProfile {
    /// Id.
    pub id: String,
    /// Creator's project.
    pub tenant_id: String,
    /// Creator's project.
    pub project_id: String,
    /// Description.
    pub description: String,
    /// The provider it stands for: `strongswan` or `libreswan`.
    pub driver: DriverKind,
    /// A disabled profile is skipped.
    pub enabled: bool,
    /// Free-form data for the driver (unused).
    #[serde(default)]
    pub metainfo: String,
}

fn yes() -> Value {
    json!(true)
}

fn empty() -> Value {
    json!("")
}

/// Attribute map of `flavors`.
pub const FLAVOR_ATTRS: &[Attr] = crate::attribute_map![
    Attr::new(
        "service_type",
        T::Enum(&[VPN_SERVICE_TYPE], &[]),
        Post::Required,
        false,
        "service type (VPN)"
    ),
    Attr::new(
        "enabled",
        T::Bool,
        Post::Default(yes),
        true,
        "whether new services may choose it"
    ),
    Attr::new(
        "service_profiles",
        T::Computed(Shape::List),
        Post::Forbidden,
        false,
        "associated service profiles (POST /v2.0/flavors/{id}/service_profiles)"
    ),
];

/// Attribute map of `service_profiles`.
pub const SERVICE_PROFILE_ATTRS: &[Attr] = &[
    Attr::new("id", T::Uuid, Post::Forbidden, false, "UUID"),
    Attr::new(
        "tenant_id",
        T::ProjectId,
        Post::Optional,
        false,
        "creator's project",
    ),
    Attr::new(
        "project_id",
        T::ProjectId,
        Post::Optional,
        false,
        "creator's project",
    ),
    Attr::new(
        "description",
        T::Description,
        Post::Default(crate::attr::empty_string),
        true,
        "free text",
    ),
    Attr::new(
        "driver",
        T::Enum(DriverKind::ALL, &[]),
        Post::Required,
        false,
        "provider: strongswan or libreswan",
    ),
    Attr::new(
        "enabled",
        T::Bool,
        Post::Default(yes),
        true,
        "whether flavors may use it",
    ),
    Attr::new(
        "metainfo",
        T::Description,
        Post::Default(empty),
        true,
        "free-form data",
    ),
];

crate::impl_resource!(
    Flavor,
    Kind::Flavor,
    |f| f
        .service_profiles
        .iter()
        .map(|p| (Kind::ServiceProfile, p.clone()))
        .collect(),
    visible_to_all: |_f| true
);
crate::impl_resource!(ServiceProfile, Kind::ServiceProfile, |_p| vec![]);

/// A provider as `GET /v2.0/service-providers` shows it.
pub fn provider(driver: DriverKind, default: DriverKind) -> Value {
    json!({"service_type": VPN_SERVICE_TYPE, "name": driver.as_str(), "default": driver == default})
}
