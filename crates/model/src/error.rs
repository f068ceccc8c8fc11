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

/// Declares [`FaultKind`] with each name written once: the variant is the name clients see.
macro_rules! fault_kinds {
    ($($name:ident),* $(,)?) => {
        /// Neutron's exception class names, the `NeutronError.type` clients see and match on
        /// (openstacksdk and the `openstack` CLI map some to their own exceptions).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum FaultKind {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                $name,
            )*
        }

        impl FaultKind {
            /// The name, as Neutron spells it.
            pub fn name(self) -> &'static str {
                match self {
                    $(FaultKind::$name => stringify!($name),)*
                }
            }
        }
    };
}

fault_kinds! {
    AgentNotFound,
    AvailabilityZoneNotFound,
    BadRequest,
    CertificateUnavailable,
    Conflict,
    DNSNameServersExhausted,
    DefaultExternalNetworkExists,
    EndpointGroupInUse,
    ExternalNetworkHasNoSubnet,
    FlavorDisabled,
    FlavorInUse,
    FlavorNotFound,
    FlavorServiceProfileBindingExists,
    FlavorServiceProfileBindingNotFound,
    HTTPBadRequest,
    HTTPInternalServerError,
    HTTPMethodNotAllowed,
    HTTPNotFound,
    HTTPRequestEntityTooLarge,
    HTTPRequestHeaderFieldsTooLarge,
    HTTPRequestTimeout,
    HTTPRequestURITooLong,
    HTTPServiceUnavailable,
    HTTPUnauthorized,
    HTTPUnsupportedMediaType,
    HostRoutesExhausted,
    IKEPolicyInUse,
    IKEPolicyNotFound,
    IPsecPolicyInUse,
    IPsecPolicyNotFound,
    IPsecSiteConnectionDpdIntervalValueError,
    IPsecSiteConnectionMtuError,
    IPsecSiteConnectionNotFound,
    InvalidEndpointGroup,
    InvalidEndpointInEndpointGroup,
    InvalidInput,
    InvalidInputSubnetServiceType,
    InvalidIpForSubnet,
    InvalidRoutes,
    InvalidServiceType,
    InvalidSubnetServiceType,
    IpAddressAlreadyAllocated,
    IpAddressGenerationFailure,
    IpsecValidationFailure,
    MalformedRequestBody,
    MissingEndpointForEndpointGroup,
    MissingPeerCidrs,
    MissingRequiredEndpointGroup,
    MixedIPVersionsForIPSecConnection,
    MixedIPVersionsForIPSecEndpoints,
    MixedIPVersionsForPeerCidrs,
    NetworkInUse,
    NetworkNotFound,
    NoProviderFoundForFlavor,
    NonExistingSubnetInEndpointGroup,
    PeerCidrsInvalid,
    PeerConfigUnavailable,
    PolicyNotAuthorized,
    PortNotFound,
    ReauthenticationUnavailable,
    RouterHasNoVPNService,
    RouterHostedByVPNAgent,
    RouterInUse,
    RouterInterfaceInUseByRoute,
    RouterInterfaceNotFoundForSubnet,
    RouterIsNotExternal,
    RouterNotFound,
    RouterNotHostedByVPNAgent,
    RoutesExhausted,
    ServiceProfileInUse,
    ServiceProfileNotFound,
    SubnetInUse,
    SubnetInUseByEndpointGroup,
    SubnetInUseByIPsecSiteConnection,
    SubnetInUseByVPNService,
    SubnetIsNotConnectedToRouter,
    SubnetNotFound,
    SubnetPoolNotFound,
    TagNotFound,
    VPNDriverCannotRun,
    VPNDriverConflict,
    VPNEndpointGroupNotFound,
    VPNPeerAddressNotResolved,
    VPNServiceInUse,
    VPNServiceNotFound,
    WrongEndpointGroupType,
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A refusal with its Neutron exception class name and a human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct Error {
    /// HTTP class of the answer.
    pub class: FaultClass,
    /// Neutron exception class name, e.g. `IKEPolicyInUse`.
    pub kind: FaultKind,
    /// Message for the user; never contains a secret.
    pub message: String,
}

/// Result with the model's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A fault of any class.
    pub fn new(class: FaultClass, kind: FaultKind, message: impl Into<String>) -> Self {
        Error {
            class,
            kind,
            message: message.into(),
        }
    }
    /// 400 with the given Neutron class.
    pub fn bad_request(kind: FaultKind, message: impl Into<String>) -> Self {
        Self::new(FaultClass::BadRequest, kind, message)
    }
    /// 404 with the given Neutron class.
    pub fn not_found(kind: FaultKind, message: impl Into<String>) -> Self {
        Self::new(FaultClass::NotFound, kind, message)
    }
    /// 409 with the given Neutron class.
    pub fn conflict(kind: FaultKind, message: impl Into<String>) -> Self {
        Self::new(FaultClass::Conflict, kind, message)
    }
    /// Neutron's generic malformed-request answer (`HTTPBadRequest`).
    pub fn http_bad_request(message: impl Into<String>) -> Self {
        Self::bad_request(FaultKind::HTTPBadRequest, message)
    }
    /// An attribute that failed its validator: "Invalid input for X. Reason: Y."
    pub fn invalid_attribute(attr: &str, reason: impl std::fmt::Display) -> Self {
        Self::http_bad_request(format!("Invalid input for {attr}. Reason: {reason}."))
    }
    /// A value Neutron's converters could not convert (`InvalidInput`: "'x' cannot be
    /// converted to boolean"); validators answer [`Error::invalid_attribute`] instead.
    pub fn conversion(reason: impl std::fmt::Display) -> Self {
        Self::bad_request(
            FaultKind::InvalidInput,
            format!("Invalid input for operation: {reason}."),
        )
    }
    /// A tenant string that failed vpnaas's strict grammar (`InvalidInput`).
    pub fn invalid_input(attr: &str, reason: impl std::fmt::Display) -> Self {
        Self::bad_request(
            FaultKind::InvalidInput,
            format!("Invalid input for operation: Invalid input for {attr}. Reason: {reason}."),
        )
    }
    /// 403: the caller's roles do not allow the action.
    pub fn forbidden(action: &str) -> Self {
        Self::new(
            FaultClass::Forbidden,
            FaultKind::PolicyNotAuthorized,
            format!("rule:{action} is disallowed by policy"),
        )
    }
    /// 401: missing or unknown token.
    pub fn unauthorized() -> Self {
        Self::new(
            FaultClass::Unauthorized,
            FaultKind::HTTPUnauthorized,
            "Authentication required: a valid X-Auth-Token is needed",
        )
    }
    /// `<Kind>NotFound` for a resource id, with Neutron's wording.
    pub fn resource_not_found(kind: crate::Kind, id: &str) -> Self {
        let (class_name, message) = match kind {
            crate::Kind::IkePolicy => (
                FaultKind::IKEPolicyNotFound,
                format!("IKEPolicy {id} could not be found"),
            ),
            crate::Kind::IpsecPolicy => (
                FaultKind::IPsecPolicyNotFound,
                format!("IPsecPolicy {id} could not be found"),
            ),
            crate::Kind::VpnService => (
                FaultKind::VPNServiceNotFound,
                format!("VPNService {id} could not be found"),
            ),
            crate::Kind::SiteConnection => (
                FaultKind::IPsecSiteConnectionNotFound,
                format!("ipsec_site_connection {id} not found"),
            ),
            crate::Kind::EndpointGroup => (
                FaultKind::VPNEndpointGroupNotFound,
                format!("Endpoint group {id} could not be found"),
            ),
            crate::Kind::Network => (
                FaultKind::NetworkNotFound,
                format!("Network {id} could not be found."),
            ),
            crate::Kind::Subnet => (
                FaultKind::SubnetNotFound,
                format!("Subnet {id} could not be found."),
            ),
            crate::Kind::Router => (
                FaultKind::RouterNotFound,
                format!("Router {id} could not be found"),
            ),
            crate::Kind::Agent => (
                FaultKind::AgentNotFound,
                format!("Agent {id} could not be found"),
            ),
            crate::Kind::Flavor => (
                FaultKind::FlavorNotFound,
                format!("Flavor {id} could not be found."),
            ),
            crate::Kind::ServiceProfile => (
                FaultKind::ServiceProfileNotFound,
                format!("Service Profile {id} could not be found."),
            ),
            crate::Kind::CertificateAuthority | crate::Kind::GatewayCredential => (
                FaultKind::HTTPNotFound,
                format!("{} {id} could not be found", kind.singular()),
            ),
        };
        Self::not_found(class_name, message)
    }
    /// 409 `Conflict` (neutron-lib's generic conflict): an administrator chose the id of
    /// an object that exists.
    pub fn id_exists(kind: crate::Kind, id: &str) -> Self {
        Self::conflict(
            FaultKind::Conflict,
            format!("{} {id} already exists", kind.singular()),
        )
    }
    /// `IKEPolicyInUse` / `IPsecPolicyInUse` (409).
    pub fn policy_in_use(kind: crate::Kind, id: &str) -> Self {
        let (class_name, label) = match kind {
            crate::Kind::IkePolicy => (FaultKind::IKEPolicyInUse, "IKEPolicy"),
            _ => (FaultKind::IPsecPolicyInUse, "IPsecPolicy"),
        };
        Self::conflict(
            class_name,
            format!(
                "{label} {id} is in use by existing IPsecSiteConnection and can't be updated or deleted"
            ),
        )
    }
}
