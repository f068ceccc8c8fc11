//! Certificate authentication (a vpnaas extension): a private key that never prints, the
//! project's certificate authority and each VPN service's gateway credential as the store
//! keeps them (internal kinds, never served by the API: their keys are sealed at rest and
//! leave the server only in a router's desired state), and what a `cert` connection
//! authenticates with in that desired state.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::attr::{Attr, AttrType as T, Post, Shape};
use crate::kind::Kind;

/// A private key, PEM (PKCS#8). Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrivateKey(String);

impl PrivateKey {
    /// Wraps a key.
    pub fn new(pem: impl Into<String>) -> Self {
        PrivateKey(pem.into())
    }
    /// The key, for the daemon (or the one-time answer that hands it out) only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// A project's certificate authority, created the first time the project needs one. Its
/// id is the project's id: there is one per project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateAuthority {
    /// The project's id.
    pub id: String,
    /// Owner (alias).
    pub tenant_id: String,
    /// Owner.
    pub project_id: String,
    /// The self-signed CA certificate, PEM.
    pub certificate: String,
    /// Its key.
    pub private_key: PrivateKey,
    /// When the CA certificate expires, RFC 3339.
    pub not_after: String,
}

/// A VPN service's gateway certificate and key, issued by its project's CA. Its id is
/// the service's id; the certificate itself is also shown on the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayCredential {
    /// The VPN service's id.
    pub id: String,
    /// Owner (alias).
    pub tenant_id: String,
    /// Owner.
    pub project_id: String,
    /// The certificate, PEM.
    pub certificate: String,
    /// Its key (kept across renewals: a renewal changes the certificate only).
    pub private_key: PrivateKey,
    /// The identities the certificate holds (subjectAltNames).
    pub identities: Vec<String>,
    /// When it expires, RFC 3339.
    pub not_after: String,
}

/// What a `cert` connection authenticates with, in a router's desired state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateAuth {
    /// Our gateway's certificate, PEM.
    pub local_certificate: String,
    /// Its key.
    pub local_key: PrivateKey,
    /// The CA certificate the peer's certificate must chain to, PEM.
    pub peer_ca: String,
}

/// Attribute map of the internal `certificate_authority` records (what the store seals).
pub const CERTIFICATE_AUTHORITY_ATTRS: &[Attr] = &[
    Attr::new("id", T::ProjectId, Post::Forbidden, false, "the project"),
    Attr::new("tenant_id", T::ProjectId, Post::Forbidden, false, "owner"),
    Attr::new("project_id", T::ProjectId, Post::Forbidden, false, "owner"),
    Attr::new(
        "certificate",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "CA certificate (PEM)",
    ),
    Attr::new(
        "private_key",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "CA key",
    )
    .secret(),
    Attr::new(
        "not_after",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "expiry",
    ),
];

/// Attribute map of the internal `gateway_credential` records (what the store seals).
pub const GATEWAY_CREDENTIAL_ATTRS: &[Attr] = &[
    Attr::new("id", T::Uuid, Post::Forbidden, false, "the VPN service"),
    Attr::new("tenant_id", T::ProjectId, Post::Forbidden, false, "owner"),
    Attr::new("project_id", T::ProjectId, Post::Forbidden, false, "owner"),
    Attr::new(
        "certificate",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "gateway certificate (PEM)",
    ),
    Attr::new(
        "private_key",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "gateway key",
    )
    .secret(),
    Attr::new(
        "identities",
        T::Computed(Shape::List),
        Post::Forbidden,
        false,
        "subjectAltNames",
    ),
    Attr::new(
        "not_after",
        T::Computed(Shape::Scalar),
        Post::Forbidden,
        false,
        "expiry",
    ),
];

crate::impl_resource!(
    CertificateAuthority,
    Kind::CertificateAuthority,
    |_c| vec![]
);
crate::impl_resource!(GatewayCredential, Kind::GatewayCredential, |g| vec![(
    Kind::VpnService,
    g.id.clone()
)]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_private_key() {
        let auth = CertificateAuth {
            local_certificate: "-----BEGIN CERTIFICATE-----".into(),
            local_key: PrivateKey::new("-----BEGIN PRIVATE KEY-----secret"),
            peer_ca: String::new(),
        };
        let shown = format!("{auth:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert_eq!(auth.local_key.expose(), "-----BEGIN PRIVATE KEY-----secret");
    }
}
