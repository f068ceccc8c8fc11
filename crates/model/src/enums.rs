//! Closed sets of values the API accepts (algorithms, groups, modes), each with its wire
//! spelling. The list of spellings feeds both validation and the OpenAPI document.

/// Defines a string-valued enum with its wire spellings, `ALL`, `as_str` and serde.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every wire spelling, in documentation order.
            pub const ALL: &'static [&'static str] = &[$($text),+];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses a wire spelling.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::parse(&text).ok_or_else(|| {
                    serde::de::Error::custom(format!("unknown {} '{}'", stringify!($name), text))
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// Integrity / PRF algorithm of an IKE or IPsec policy.
    AuthAlgorithm {
        /// Weak: refused unless the operator allows weak algorithms.
        Sha1 = "sha1",
        /// The default.
        Sha256 = "sha256",
        /// SHA-384.
        Sha384 = "sha384",
        /// SHA-512.
        Sha512 = "sha512",
        /// AES-XCBC.
        AesXcbc = "aes-xcbc",
        /// AES-CMAC.
        AesCmac = "aes-cmac",
    }
);

impl AuthAlgorithm {
    /// Algorithms refused unless `allow_weak_algorithms` is set.
    pub fn is_weak(self) -> bool {
        self == AuthAlgorithm::Sha1
    }
}

wire_enum!(
    /// Encryption algorithm of an IKE or IPsec policy.
    EncryptionAlgorithm {
        /// Weak: refused unless the operator allows weak algorithms.
        TripleDes = "3des",
        /// AES-128-CBC, the default.
        Aes128 = "aes-128",
        /// AES-192-CBC.
        Aes192 = "aes-192",
        /// AES-256-CBC.
        Aes256 = "aes-256",
        /// AES-128-CTR (`vpn-aes-ctr`).
        Aes128Ctr = "aes-128-ctr",
        /// AES-192-CTR.
        Aes192Ctr = "aes-192-ctr",
        /// AES-256-CTR.
        Aes256Ctr = "aes-256-ctr",
        /// AES-128-CCM, 8-byte ICV.
        Aes128Ccm8 = "aes-128-ccm-8",
        /// AES-128-CCM, 12-byte ICV.
        Aes128Ccm12 = "aes-128-ccm-12",
        /// AES-128-CCM, 16-byte ICV.
        Aes128Ccm16 = "aes-128-ccm-16",
        /// AES-192-CCM, 8-byte ICV.
        Aes192Ccm8 = "aes-192-ccm-8",
        /// AES-192-CCM, 12-byte ICV.
        Aes192Ccm12 = "aes-192-ccm-12",
        /// AES-192-CCM, 16-byte ICV.
        Aes192Ccm16 = "aes-192-ccm-16",
        /// AES-256-CCM, 8-byte ICV.
        Aes256Ccm8 = "aes-256-ccm-8",
        /// AES-256-CCM, 12-byte ICV.
        Aes256Ccm12 = "aes-256-ccm-12",
        /// AES-256-CCM, 16-byte ICV.
        Aes256Ccm16 = "aes-256-ccm-16",
        /// AES-128-GCM, 8-byte ICV.
        Aes128Gcm8 = "aes-128-gcm-8",
        /// AES-128-GCM, 12-byte ICV.
        Aes128Gcm12 = "aes-128-gcm-12",
        /// AES-128-GCM, 16-byte ICV.
        Aes128Gcm16 = "aes-128-gcm-16",
        /// AES-192-GCM, 8-byte ICV.
        Aes192Gcm8 = "aes-192-gcm-8",
        /// AES-192-GCM, 12-byte ICV.
        Aes192Gcm12 = "aes-192-gcm-12",
        /// AES-192-GCM, 16-byte ICV.
        Aes192Gcm16 = "aes-192-gcm-16",
        /// AES-256-GCM, 8-byte ICV.
        Aes256Gcm8 = "aes-256-gcm-8",
        /// AES-256-GCM, 12-byte ICV.
        Aes256Gcm12 = "aes-256-gcm-12",
        /// AES-256-GCM, 16-byte ICV.
        Aes256Gcm16 = "aes-256-gcm-16",
    }
);

impl EncryptionAlgorithm {
    /// Algorithms refused unless `allow_weak_algorithms` is set.
    pub fn is_weak(self) -> bool {
        self == EncryptionAlgorithm::TripleDes
    }

    /// Combined-mode ciphers (CCM, GCM) carry their own integrity check.
    pub fn is_aead(self) -> bool {
        self.as_str().contains("-ccm-") || self.as_str().contains("-gcm-")
    }
}

wire_enum!(
    /// Diffie-Hellman group (IKE) or PFS group (IPsec).
    PfsGroup {
        /// MODP 1024.
        Group2 = "group2",
        /// MODP 1536, the default.
        Group5 = "group5",
        /// MODP 2048.
        Group14 = "group14",
        /// MODP 3072.
        Group15 = "group15",
        /// MODP 4096.
        Group16 = "group16",
        /// MODP 6144.
        Group17 = "group17",
        /// MODP 8192.
        Group18 = "group18",
        /// ECP 256.
        Group19 = "group19",
        /// ECP 384.
        Group20 = "group20",
        /// ECP 521.
        Group21 = "group21",
        /// MODP 1024 with 160-bit prime order subgroup.
        Group22 = "group22",
        /// MODP 2048 with 224-bit prime order subgroup.
        Group23 = "group23",
        /// MODP 2048 with 256-bit prime order subgroup.
        Group24 = "group24",
        /// ECP 192.
        Group25 = "group25",
        /// ECP 224.
        Group26 = "group26",
        /// Brainpool ECP 224.
        Group27 = "group27",
        /// Brainpool ECP 256.
        Group28 = "group28",
        /// Brainpool ECP 384.
        Group29 = "group29",
        /// Brainpool ECP 512.
        Group30 = "group30",
        /// Curve25519.
        Group31 = "group31",
    }
);

impl PfsGroup {
    /// The name of a MODP group as both IKE daemons spell it (`modp2048`, `modp1024s160`
    /// for the RFC 5114 groups); `None` for an elliptic-curve group, which each daemon
    /// names its own way.
    pub fn modp_name(self) -> Option<&'static str> {
        Some(match self {
            PfsGroup::Group2 => "modp1024",
            PfsGroup::Group5 => "modp1536",
            PfsGroup::Group14 => "modp2048",
            PfsGroup::Group15 => "modp3072",
            PfsGroup::Group16 => "modp4096",
            PfsGroup::Group17 => "modp6144",
            PfsGroup::Group18 => "modp8192",
            PfsGroup::Group22 => "modp1024s160",
            PfsGroup::Group23 => "modp2048s224",
            PfsGroup::Group24 => "modp2048s256",
            PfsGroup::Group19
            | PfsGroup::Group20
            | PfsGroup::Group21
            | PfsGroup::Group25
            | PfsGroup::Group26
            | PfsGroup::Group27
            | PfsGroup::Group28
            | PfsGroup::Group29
            | PfsGroup::Group30
            | PfsGroup::Group31 => return None,
        })
    }
}

wire_enum!(
    /// IKE phase-1 exchange mode.
    Phase1Mode {
        /// Main mode, the default.
        Main = "main",
        /// Aggressive mode.
        Aggressive = "aggressive",
    }
);

wire_enum!(
    /// IKE protocol version.
    IkeVersion {
        /// IKEv1, the default (as in Neutron).
        V1 = "v1",
        /// IKEv2.
        V2 = "v2",
    }
);

wire_enum!(
    /// Lifetime unit; the API accepts seconds only.
    LifetimeUnits {
        /// Seconds.
        Seconds = "seconds",
    }
);

wire_enum!(
    /// IPsec transform protocol.
    TransformProtocol {
        /// ESP, the default.
        Esp = "esp",
        /// AH.
        Ah = "ah",
        /// AH and ESP; refused when a connection uses it.
        AhEsp = "ah-esp",
    }
);

wire_enum!(
    /// IPsec encapsulation mode.
    EncapsulationMode {
        /// Tunnel mode, the default.
        Tunnel = "tunnel",
        /// Transport mode.
        Transport = "transport",
    }
);

wire_enum!(
    /// Who starts the IKE negotiation.
    Initiator {
        /// Either side may initiate; the default.
        BiDirectional = "bi-directional",
        /// This side only answers.
        ResponseOnly = "response-only",
    }
);

wire_enum!(
    /// What to do when dead peer detection declares the peer dead.
    DpdAction {
        /// Clear the SAs.
        Clear = "clear",
        /// DPD off.
        Disabled = "disabled",
        /// Keep the policy and renegotiate on traffic; the default.
        Hold = "hold",
        /// Renegotiate at once.
        Restart = "restart",
        /// Wait for the peer to renegotiate.
        RestartByPeer = "restart-by-peer",
    }
);

wire_enum!(
    /// Type of an endpoint group.
    EndpointType {
        /// Local subnets, by id.
        Subnet = "subnet",
        /// Peer CIDRs.
        Cidr = "cidr",
        /// VLAN ids.
        Vlan = "vlan",
        /// Networks, by id.
        Network = "network",
        /// Routers, by id.
        Router = "router",
    }
);

wire_enum!(
    /// Status of a VPN service or connection, Neutron's values.
    Status {
        /// Up.
        Active = "ACTIVE",
        /// Configured but not up.
        Down = "DOWN",
        /// Being built.
        Build = "BUILD",
        /// Failed.
        Error = "ERROR",
        /// Created, not yet reported by an agent.
        PendingCreate = "PENDING_CREATE",
        /// Being updated.
        PendingUpdate = "PENDING_UPDATE",
        /// Being deleted.
        PendingDelete = "PENDING_DELETE",
    }
);

wire_enum!(
    /// Why a connection has its status (vpnaas extension `status_reason`).
    StatusReason {
        /// The tunnel is up.
        Established = "ESTABLISHED",
        /// Negotiation under way (or retried).
        Connecting = "CONNECTING",
        /// The peer refused our pre-shared key, or we refused its.
        AuthFailed = "AUTH_FAILED",
        /// No common algorithms (IKE or IPsec proposals).
        NoProposalChosen = "NO_PROPOSAL_CHOSEN",
        /// The peer does not accept our traffic selectors (CIDRs).
        TsUnacceptable = "TS_UNACCEPTABLE",
        /// No answer: IKE retransmits exhausted or dead peer detection.
        PeerUnreachable = "PEER_UNREACHABLE",
        /// The peer deleted the SAs.
        PeerClosed = "PEER_CLOSED",
        /// The router's IKE daemon is not running.
        DaemonDown = "DAEMON_DOWN",
        /// The connection, its service or its router is administratively down.
        AdminDown = "ADMIN_DOWN",
        /// The IKE SA is up but its child SA could not be installed, not because of the
        /// kernel (strongSwan's userspace ESP refused it).
        ChildSaFailed = "CHILD_SA_FAILED",
        /// The kernel refused the child SA (e.g. a kernel without ESP: "Protocol not
        /// supported"); the event detail holds the kernel's message. Also reported when
        /// the peer declined the child SA while this host's kernel is known to refuse ESP
        /// SAs: the tunnel cannot come up here whatever the peer says.
        KernelRefused = "KERNEL_REFUSED",
        /// The router's agent stopped answering: the tunnel's state is unknown while the
        /// router moves to another agent.
        AgentDown = "AGENT_DOWN",
        /// No live agent hosts the router, so nothing applies the connection: start an
        /// agent (`vpnaas agent`, or `vpnaas all-in-one`) on a gateway host.
        NoAgent = "NO_AGENT",
        /// Neutron deleted the router the VPN service is on (`inventory = "neutron"`), by a
        /// request that did not pass through vpnaas: nothing runs for it any more; delete
        /// the VPN service.
        RouterDeleted = "ROUTER_DELETED",
        /// An HA router's gateway address left the node Neutron names active
        /// (`l3_mode = "neutron"`): keepalived made another node primary, the IKE daemon
        /// stops here and starts there, and the connection comes back up from that node
        /// once Neutron's `ha_state` names it.
        HaFailover = "HA_FAILOVER",
        /// The router has no gateway address of the peer's IP version (an IPv6 peer on a
        /// router with only an IPv4 gateway, say): the connection is `ERROR` and its agent
        /// is not asked to run it until the router has one.
        NoGatewayForPeerFamily = "NO_GATEWAY_FOR_PEER_FAMILY",
        /// The peer address is a host name, not an address the daemon can use (the server
        /// stores the address a name resolves to, so only a record written otherwise has
        /// one): the connection is `ERROR` until its `peer_address` is set again.
        PeerUnresolved = "PEER_UNRESOLVED",
        /// The peer's certificate does not chain to the CA the connection trusts for it
        /// (`peer_ca_certificate`, or the project's CA), or the peer refused ours.
        CertUntrusted = "CERT_UNTRUSTED",
        /// The peer's certificate (or a CA certificate of its chain) is outside its
        /// validity period.
        CertExpired = "CERT_EXPIRED",
        /// The peer presented an identity other than the connection's `peer_id`, or a
        /// certificate that does not hold it (subject or subjectAltName).
        IdMismatch = "ID_MISMATCH",
        /// Events only, never a status reason: the agent's daemon took the connection's
        /// new credentials without touching its SAs; the next authentication uses them.
        CredentialsLoaded = "CREDENTIALS_LOADED",
        /// Events only, never a status reason: the connection's IKE SA authenticated
        /// again, as `POST …/reauthenticate` asked, and the tunnel is up.
        Reauthenticated = "REAUTHENTICATED",
    }
);

wire_enum!(
    /// How a connection's two ends prove who they are (`auth_mode`; Neutron knows only
    /// `psk`, certificates are a vpnaas extension).
    AuthMode {
        /// A pre-shared key (`psk`).
        Psk = "psk",
        /// Certificates: ours issued by the project's CA, the peer's checked against
        /// `peer_ca_certificate` (or the project's CA).
        Cert = "cert",
    }
);

wire_enum!(
    /// The IKE daemon a router's VPN runs on.
    DriverKind {
        /// strongSwan's charon, configured over VICI.
        Strongswan = "strongswan",
        /// Libreswan's pluto, configured with `ipsec.conf` and whack.
        Libreswan = "libreswan",
    }
);

wire_enum!(
    /// What an agent is to an HA router (Neutron's `ha_state`); a router that is not HA
    /// has only an active agent.
    HaRole {
        /// Holds the lease: owns the gateway addresses and runs the IKE daemon.
        Active = "active",
        /// Ready to take over: namespace and ports in place, no addresses, no daemon.
        Standby = "standby",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modp_groups_have_their_rfc_names_and_curves_none() {
        let named: Vec<(&str, &str)> = PfsGroup::ALL
            .iter()
            .filter_map(|g| PfsGroup::parse(g))
            .filter_map(|g| Some((g.as_str(), g.modp_name()?)))
            .collect();
        assert_eq!(named.len(), 10, "{named:?}");
        assert!(named.iter().all(|(_, name)| name.starts_with("modp")));
        assert_eq!(PfsGroup::Group14.modp_name(), Some("modp2048"));
        assert_eq!(PfsGroup::Group24.modp_name(), Some("modp2048s256"));
        assert_eq!(PfsGroup::Group19.modp_name(), None);
    }
}
