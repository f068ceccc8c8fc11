//! The Neutron fault catalogue: every refusal the API can give, with the exception class
//! name Neutron clients see in `NeutronError.type` and the class of HTTP answer it maps to.
//! This module knows nothing of HTTP itself: the server maps [`FaultClass`] to a status.

/// How a fault is answered; the server maps each class to an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultClass {
    /// 400
    BadRequest,
    /// 401
    Unauthorized,
    /// 403
    Forbidden,
    /// 404
    NotFound,
    /// 409
    Conflict,
    /// 503
    Unavailable,
}

/// A refusal with its Neutron exception class name and a human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Error {
    /// HTTP class of the answer.
    pub class: FaultClass,
    /// Neutron exception class name, e.g. `IKEPolicyInUse`.
    pub kind: &'static str,
    /// Message for the user; never contains a secret.
    pub message: String,
}

/// Result with the model's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A fault of any class.
    pub fn new(class: FaultClass, kind: &'static str, message: impl Into<String>) -> Self {
        Error {
            class,
            kind,
            message: message.into(),
        }
    }
    /// 400 with the given Neutron class.
    pub fn bad_request(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(FaultClass::BadRequest, kind, message)
    }
    /// 404 with the given Neutron class.
    pub fn not_found(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(FaultClass::NotFound, kind, message)
    }
    /// 409 with the given Neutron class.
    pub fn conflict(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(FaultClass::Conflict, kind, message)
    }
    /// Neutron's generic malformed-request answer (`HTTPBadRequest`).
    pub fn http_bad_request(message: impl Into<String>) -> Self {
        Self::bad_request("HTTPBadRequest", message)
    }
    /// An attribute that failed its validator: "Invalid input for X. Reason: Y."
    pub fn invalid_attribute(attr: &str, reason: impl std::fmt::Display) -> Self {
        Self::http_bad_request(format!("Invalid input for {attr}. Reason: {reason}."))
    }
    /// A value Neutron's converters could not convert (`InvalidInput`: "'x' cannot be
    /// converted to boolean"); validators answer [`Error::invalid_attribute`] instead.
    pub fn conversion(reason: impl std::fmt::Display) -> Self {
        Self::bad_request(
            "InvalidInput",
            format!("Invalid input for operation: {reason}."),
        )
    }
    /// A tenant string that failed vpnaas's strict grammar (`InvalidInput`).
    pub fn invalid_input(attr: &str, reason: impl std::fmt::Display) -> Self {
        Self::bad_request(
            "InvalidInput",
            format!("Invalid input for operation: Invalid input for {attr}. Reason: {reason}."),
        )
    }
    /// 403: the caller's roles do not allow the action.
    pub fn forbidden(action: &str) -> Self {
        Self::new(
            FaultClass::Forbidden,
            "PolicyNotAuthorized",
            format!("rule:{action} is disallowed by policy"),
        )
    }
    /// 401: missing or unknown token.
    pub fn unauthorized() -> Self {
        Self::new(
            FaultClass::Unauthorized,
            "HTTPUnauthorized",
            "Authentication required: a valid X-Auth-Token is needed",
        )
    }
    /// `<Kind>NotFound` for a resource id, with Neutron's wording.
    pub fn resource_not_found(kind: crate::Kind, id: &str) -> Self {
        let (class_name, message) = match kind {
            crate::Kind::IkePolicy => (
                "IKEPolicyNotFound",
                format!("IKEPolicy {id} could not be found"),
            ),
            crate::Kind::IpsecPolicy => (
                "IPsecPolicyNotFound",
                format!("IPsecPolicy {id} could not be found"),
            ),
            crate::Kind::VpnService => (
                "VPNServiceNotFound",
                format!("VPNService {id} could not be found"),
            ),
            crate::Kind::SiteConnection => (
                "IPsecSiteConnectionNotFound",
                format!("ipsec_site_connection {id} not found"),
            ),
            crate::Kind::EndpointGroup => (
                "VPNEndpointGroupNotFound",
                format!("Endpoint group {id} could not be found"),
            ),
            crate::Kind::Network => (
                "NetworkNotFound",
                format!("Network {id} could not be found."),
            ),
            crate::Kind::Subnet => ("SubnetNotFound", format!("Subnet {id} could not be found.")),
            crate::Kind::Router => ("RouterNotFound", format!("Router {id} could not be found")),
            crate::Kind::Agent => ("AgentNotFound", format!("Agent {id} could not be found")),
            crate::Kind::Flavor => ("FlavorNotFound", format!("Flavor {id} could not be found.")),
            crate::Kind::ServiceProfile => (
                "ServiceProfileNotFound",
                format!("Service Profile {id} could not be found."),
            ),
        };
        Self::not_found(class_name, message)
    }
    /// `IKEPolicyInUse` / `IPsecPolicyInUse` (409).
    pub fn policy_in_use(kind: crate::Kind, id: &str) -> Self {
        let (class_name, label) = match kind {
            crate::Kind::IkePolicy => ("IKEPolicyInUse", "IKEPolicy"),
            _ => ("IPsecPolicyInUse", "IPsecPolicy"),
        };
        Self::conflict(
            class_name,
            format!(
                "{label} {id} is in use by existing IPsecSiteConnection and can't be updated or deleted"
            ),
        )
    }
}
