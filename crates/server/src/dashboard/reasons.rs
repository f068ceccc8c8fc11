//! A connection's `status_reason` in words a person understands, and what to check. One
//! arm per reason, so a new reason does not compile until it is explained here.

use vpnaas_model::enums::StatusReason;

/// What a reason means, and what to look at (empty when nothing needs doing).
pub(super) struct Explained {
    pub(super) meaning: &'static str,
    pub(super) check: &'static str,
}

/// The explanation of a reason as the API spells it; `None` for no or an unknown reason.
pub(super) fn explain(reason: &str) -> Option<Explained> {
    StatusReason::parse(reason).map(explained)
}

fn explained(reason: StatusReason) -> Explained {
    use StatusReason as R;
    let (meaning, check) = match reason {
        R::Established => ("The tunnel is up.", ""),
        R::Connecting => (
            "The two gateways are negotiating (or retrying).",
            "Wait a few seconds; if it stays, check that the peer is configured for this connection.",
        ),
        R::AuthFailed => (
            "The peer and this gateway did not accept each other's credentials.",
            "The pre-shared key must be the same at both ends, and peer_id / local_id must match what each end presents.",
        ),
        R::NoProposalChosen => (
            "The two ends share no encryption algorithms.",
            "Compare the IKE and IPsec policies at both ends (encryption, integrity, DH group, IKE version).",
        ),
        R::TsUnacceptable => (
            "The peer does not accept the networks this connection protects.",
            "The peer's view must mirror this one: its local networks are our peer_cidrs, and ours its remote ones.",
        ),
        R::PeerUnreachable => (
            "The peer does not answer.",
            "Check peer_address, that the peer is running, and that UDP 500/4500 pass between the gateways.",
        ),
        R::PeerClosed => (
            "The peer closed the tunnel.",
            "See the peer's log: it was deleted, restarted or changed there.",
        ),
        R::DaemonDown => (
            "The router's IKE daemon is not running.",
            "The agent restarts it by itself; if it stays down, read the agent's log for why it exits.",
        ),
        R::AdminDown => (
            "The connection, its VPN service or its router is disabled.",
            "Enable it (admin_state_up) when it should run.",
        ),
        R::ChildSaFailed => (
            "The gateways agreed on IKE but the IPsec SA could not be installed.",
            "Read the connection's events for the daemon's message.",
        ),
        R::KernelRefused => (
            "The kernel refused the IPsec SA.",
            "A kernel without ESP needs the agent's userspace data plane (--data-plane auto or userspace); the event detail has the kernel's message.",
        ),
        R::AgentDown => (
            "The agent running this router stopped answering.",
            "Check the gateway host and its vpnaas agent; an HA router moves to its standby by itself.",
        ),
        R::NoAgent => (
            "No live agent hosts this router, so nothing runs the connection.",
            "Start a vpnaas agent (or all-in-one) on a gateway host.",
        ),
        R::RouterDeleted => (
            "The router this VPN service is on was deleted in Neutron.",
            "Delete the VPN service and its connections, or create them on another router.",
        ),
        R::HaFailover => (
            "The HA router is moving to another node.",
            "Wait: it comes back up on the new primary.",
        ),
        R::NoGatewayForPeerFamily => (
            "The router has no gateway address of the peer's IP version.",
            "Give the router an external gateway of that IP version, or use a peer address of the other.",
        ),
        R::PeerUnresolved => (
            "The peer address is a name that was not resolved to an address.",
            "Set peer_address again (the server resolves names when it is set).",
        ),
        R::CertUntrusted => (
            "The peer's certificate does not chain to the CA trusted for it.",
            "Check peer_ca_certificate (or the project's CA) against the peer's issuer.",
        ),
        R::CertExpired => (
            "A certificate of the peer's chain is outside its validity period.",
            "Renew the peer's certificate, and check both gateways' clocks.",
        ),
        R::IdMismatch => (
            "The peer presented another identity than peer_id.",
            "Make peer_id the identity the peer's certificate or configuration holds.",
        ),
        R::CredentialsLoaded => (
            "New credentials were loaded without interrupting the tunnel.",
            "",
        ),
        R::Reauthenticated => (
            "The tunnel re-authenticated with the current credentials.",
            "",
        ),
    };
    Explained { meaning, check }
}
