//! IKE policies (phase 1) and IPsec policies (phase 2).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::attr::{Attr, AttrType as T, Post};
use crate::enums::*;
use crate::kind::Kind;

/// A security association lifetime; the API accepts seconds only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifetime {
    /// Always seconds.
    #[serde(default = "seconds")]
    pub units: LifetimeUnits,
    /// At least 60.
    #[serde(default = "one_hour")]
    pub value: u32,
}

fn seconds() -> LifetimeUnits {
    LifetimeUnits::Seconds
}
fn one_hour() -> u32 {
    3600
}

impl Default for Lifetime {
    fn default() -> Self {
        Lifetime {
            units: seconds(),
            value: one_hour(),
        }
    }
}

/// Phase-1 parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IkePolicy {
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
    /// Integrity/PRF algorithm.
    pub auth_algorithm: AuthAlgorithm,
    /// Encryption algorithm.
    pub encryption_algorithm: EncryptionAlgorithm,
    /// Main or aggressive mode.
    pub phase1_negotiation_mode: Phase1Mode,
    /// IKE SA lifetime.
    #[serde(default)]
    pub lifetime: Lifetime,
    /// IKE version.
    pub ike_version: IkeVersion,
    /// Diffie-Hellman group.
    pub pfs: PfsGroup,
}

/// Phase-2 parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpsecPolicy {
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
    /// ESP, AH or both.
    pub transform_protocol: TransformProtocol,
    /// Tunnel or transport.
    pub encapsulation_mode: EncapsulationMode,
    /// Integrity algorithm.
    pub auth_algorithm: AuthAlgorithm,
    /// Encryption algorithm.
    pub encryption_algorithm: EncryptionAlgorithm,
    /// Child SA lifetime.
    #[serde(default)]
    pub lifetime: Lifetime,
    /// PFS group.
    pub pfs: PfsGroup,
}

fn default_auth() -> Value {
    json!("sha256")
}
fn default_encryption() -> Value {
    json!("aes-128")
}
fn default_lifetime() -> Value {
    json!({"units": "seconds", "value": 3600})
}
fn default_pfs() -> Value {
    json!("group5")
}
fn default_phase1() -> Value {
    json!("main")
}
fn default_ike_version() -> Value {
    json!("v1")
}
fn default_transform() -> Value {
    json!("esp")
}
fn default_encapsulation() -> Value {
    json!("tunnel")
}

const AUTH: T = T::Enum(AuthAlgorithm::ALL, &["sha1"]);
const ENCRYPTION: T = T::Enum(EncryptionAlgorithm::ALL, &["3des"]);

/// Attribute map of `ikepolicies`.
pub const IKE_POLICY_ATTRS: &[Attr] = crate::attribute_map![
    Attr::new(
        "auth_algorithm",
        AUTH,
        Post::Default(default_auth),
        true,
        "integrity/PRF algorithm (default sha256)"
    ),
    Attr::new(
        "encryption_algorithm",
        ENCRYPTION,
        Post::Default(default_encryption),
        true,
        "encryption algorithm (default aes-128)"
    ),
    Attr::new(
        "phase1_negotiation_mode",
        T::Enum(Phase1Mode::ALL, &[]),
        Post::Default(default_phase1),
        true,
        "main or aggressive"
    ),
    Attr::new(
        "lifetime",
        T::Lifetime,
        Post::Default(default_lifetime),
        true,
        "{units: seconds, value: >= 60}"
    ),
    Attr::new(
        "ike_version",
        T::Enum(IkeVersion::ALL, &[]),
        Post::Default(default_ike_version),
        true,
        "v1 or v2"
    ),
    Attr::new(
        "pfs",
        T::Enum(PfsGroup::ALL, &[]),
        Post::Default(default_pfs),
        true,
        "Diffie-Hellman group"
    ),
];

/// Attribute map of `ipsecpolicies`.
pub const IPSEC_POLICY_ATTRS: &[Attr] = crate::attribute_map![
    Attr::new(
        "transform_protocol",
        T::Enum(TransformProtocol::ALL, &[]),
        Post::Default(default_transform),
        true,
        "esp, ah or ah-esp"
    ),
    Attr::new(
        "encapsulation_mode",
        T::Enum(EncapsulationMode::ALL, &[]),
        Post::Default(default_encapsulation),
        true,
        "tunnel or transport"
    ),
    Attr::new(
        "auth_algorithm",
        AUTH,
        Post::Default(default_auth),
        true,
        "integrity algorithm (default sha256)"
    ),
    Attr::new(
        "encryption_algorithm",
        ENCRYPTION,
        Post::Default(default_encryption),
        true,
        "encryption algorithm (default aes-128)"
    ),
    Attr::new(
        "lifetime",
        T::Lifetime,
        Post::Default(default_lifetime),
        true,
        "{units: seconds, value: >= 60}"
    ),
    Attr::new(
        "pfs",
        T::Enum(PfsGroup::ALL, &[]),
        Post::Default(default_pfs),
        true,
        "perfect forward secrecy group"
    ),
];

crate::impl_resource!(IkePolicy, Kind::IkePolicy, |_p| vec![]);

crate::impl_resource!(IpsecPolicy, Kind::IpsecPolicy, |_p| vec![]);
