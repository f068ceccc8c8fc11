//! What the agent reports of a connection, from what its daemon shows: every driver
//! brings its daemon's SAs down to an [`SaView`] and its log's verdicts to [`Failures`],
//! and the rules here make of them a [`ConnectionState`] (status, reason, detail,
//! counters) and then the [`ConnectionStatus`] the server hears. The failures are weighed
//! by the same rules for every daemon ([`learn_failure`], [`down_reason`]).

use std::collections::HashMap;

use vpnaas_model::agent::{
    ConnectionSpec, ConnectionStatus, Generations, RouterState, StatusReport,
};
use vpnaas_model::enums::{Status, StatusReason};
use vpnaas_model::site_connection::Traffic;

/// Observed state of a router's VPN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The daemon is running.
    pub daemon_running: bool,
    /// Connection id → what the daemon says of it.
    pub connections: HashMap<String, ConnectionState>,
}

/// What the daemon says of one loaded connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionState {
    /// ACTIVE or DOWN.
    pub status: Status,
    /// Why.
    pub reason: StatusReason,
    /// The negotiated proposal, or the log line that explains a failure.
    pub detail: String,
    /// Counters of the installed child SAs.
    pub traffic: Option<Traffic>,
    /// The credentials the daemon holds and the last re-authentication it concluded.
    pub applied: Generations,
}

impl ConnectionState {
    /// Down, for `reason`.
    pub fn down((reason, detail): Failure) -> ConnectionState {
        ConnectionState {
            status: Status::Down,
            reason,
            detail,
            traffic: None,
            applied: Generations::default(),
        }
    }
}

/// What a daemon shows of one connection's SAs, whatever the daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaView {
    /// An IKE SA of the connection is established.
    pub ike_up: bool,
    /// Every child SA the connection needs is installed.
    pub children_up: bool,
    /// The negotiated proposal, when the daemon says it.
    pub proposal: String,
    /// Counters of its child SAs (those rekeyed away included, where the daemon tells).
    pub traffic: Traffic,
}

/// A reason a connection is down and the line that explains it.
pub type Failure = (StatusReason, String);

/// The last failure learnt from a daemon's log, per connection id.
pub type Failures = HashMap<String, Failure>;

/// Records a failure learnt from a daemon's log; returns whether it changed anything. A
/// child SA this host's data plane refused (`KERNEL_REFUSED`, `CHILD_SA_FAILED`) stays the
/// reason until a child SA comes up: what follows it (the peer's notify answering the
/// failed exchange, a retry refused the same way) is its consequence, and would send the
/// user to check algorithms. A failed authentication is never such a consequence (it
/// comes before any child SA), so it always replaces one: a refusal logged for the
/// connection's previous settings, and read after they changed, must not hide it.
pub fn learn_failure(
    failures: &mut Failures,
    connection: &str,
    reason: StatusReason,
    detail: String,
) -> bool {
    let after_a_refused_child = failures.get(connection).is_some_and(|(known, _)| {
        matches!(
            known,
            StatusReason::KernelRefused | StatusReason::ChildSaFailed
        )
    });
    if after_a_refused_child && reason != StatusReason::AuthFailed {
        return false;
    }
    failures.insert(connection.to_string(), (reason, detail));
    true
}

/// Why a connection is down, from what its daemon's log taught (`learnt`), whether its IKE
/// SA is up, and the kernel's refusal of an ESP SA at agent start when this daemon puts
/// its SAs there (`kernel_refuses`). The peer declines a child SA its own kernel refused
/// with a negotiation notify (charon: NO_PROPOSAL_CHOSEN, pluto: TS_UNACCEPTABLE); with an
/// IKE SA up that agreed on proposals, and a kernel here that refuses ESP SAs anyway, the
/// reason is the kernel.
pub fn down_reason(
    learnt: Option<&Failure>,
    ike_up: bool,
    kernel_refuses: Option<&str>,
) -> Failure {
    match (learnt, kernel_refuses) {
        (
            Some((StatusReason::NoProposalChosen | StatusReason::TsUnacceptable, said)),
            Some(kernel),
        ) if ike_up => (
            StatusReason::KernelRefused,
            format!(
                "the kernel refused an ESP SA when the agent started ({kernel}); the peer said: {said}"
            ),
        ),
        (Some(learnt), _) => learnt.clone(),
        (None, _) => (StatusReason::Connecting, String::new()),
    }
}

/// A loaded connection's state: ACTIVE with its proposal and counters when its IKE SA and
/// every child SA are up; otherwise down, for the reason [`down_reason`] gives.
pub fn connection_state(
    sas: Option<&SaView>,
    learnt: Option<&Failure>,
    kernel_refuses: Option<&str>,
) -> ConnectionState {
    match sas {
        Some(sas) if sas.ike_up && sas.children_up => ConnectionState {
            status: Status::Active,
            reason: StatusReason::Established,
            detail: sas.proposal.clone(),
            traffic: Some(sas.traffic.clone()),
            applied: Generations::default(),
        },
        _ => ConnectionState::down(down_reason(
            learnt,
            sas.is_some_and(|s| s.ike_up),
            kernel_refuses,
        )),
    }
}

/// What to report of one connection: administratively down, daemon down, or what the
/// daemon says (a connection it has not loaded yet is connecting).
pub fn connection_status(spec: &ConnectionSpec, observed: &Observed) -> ConnectionStatus {
    let state = if !spec.enabled {
        ConnectionState::down((StatusReason::AdminDown, String::new()))
    } else if !observed.daemon_running {
        ConnectionState::down((StatusReason::DaemonDown, String::new()))
    } else {
        observed
            .connections
            .get(&spec.id)
            .cloned()
            .unwrap_or_else(|| ConnectionState::down((StatusReason::Connecting, String::new())))
    };
    ConnectionStatus {
        id: spec.id.clone(),
        status: state.status,
        reason: state.reason,
        detail: state.detail,
        traffic: state.traffic,
        applied: state.applied,
    }
}

/// The report of a router's connections, as `host` observes them. A router with no
/// enabled connection needs no daemon: one missing there is no failure.
pub fn report(host: &str, state: &RouterState, observed: &Observed) -> StatusReport {
    StatusReport {
        host: host.to_string(),
        router_id: state.router_id.clone(),
        applied_revision: state.revision,
        lease_epoch: state.lease_epoch,
        daemon_running: observed.daemon_running || state.connections.iter().all(|c| !c.enabled),
        connections: state
            .connections
            .iter()
            .map(|c| connection_status(c, observed))
            .collect(),
        primary: false,
    }
}

/// The report of a router whose gateway address is on another node (an HA router's
/// keepalived made that node primary): every enabled connection is down here, failing over.
pub fn failing_over(host: &str, state: &RouterState) -> StatusReport {
    let mut report = report(host, state, &Observed::default());
    for (status, spec) in report.connections.iter_mut().zip(&state.connections) {
        if spec.enabled {
            status.reason = StatusReason::HaFailover;
        }
    }
    // No daemon runs here, and none should: the service is failing over (`DOWN`), not
    // broken (`ERROR` with `DAEMON_DOWN`).
    report.daemon_running = true;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_refusal_is_not_replaced_by_what_follows_it() {
        let mut failures = Failures::new();
        assert!(learn_failure(
            &mut failures,
            "c1",
            StatusReason::NoProposalChosen,
            "notify".into()
        ));
        assert!(learn_failure(
            &mut failures,
            "c1",
            StatusReason::KernelRefused,
            "Protocol not supported (93)".into()
        ));
        assert!(!learn_failure(
            &mut failures,
            "c1",
            StatusReason::NoProposalChosen,
            "received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built".into()
        ));
        assert_eq!(
            failures["c1"],
            (
                StatusReason::KernelRefused,
                "Protocol not supported (93)".into()
            )
        );
    }

    #[test]
    fn a_failed_authentication_replaces_a_kernel_refusal() {
        let mut failures = Failures::new();
        learn_failure(
            &mut failures,
            "c1",
            StatusReason::KernelRefused,
            "Protocol not supported (93)".into(),
        );
        assert!(learn_failure(
            &mut failures,
            "c1",
            StatusReason::AuthFailed,
            "AUTHENTICATION_FAILED".into()
        ));
        assert_eq!(failures["c1"].0, StatusReason::AuthFailed);
    }

    #[test]
    fn a_peers_refusal_is_the_kernels_only_when_this_kernel_refuses_and_ike_is_up() {
        let notify = (
            StatusReason::NoProposalChosen,
            "received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built".to_string(),
        );
        let kernel = Some("Requested type not found.");
        let (reason, detail) = down_reason(Some(&notify), true, kernel);
        assert_eq!(reason, StatusReason::KernelRefused);
        assert!(
            detail.contains("Requested type not found.") && detail.contains(&notify.1),
            "{detail}"
        );
        assert_eq!(
            down_reason(Some(&notify), false, kernel),
            notify,
            "an IKE proposal mismatch stays one"
        );
        assert_eq!(
            down_reason(Some(&notify), true, None),
            notify,
            "a kernel that takes ESP SAs is not to blame"
        );
        let auth = (StatusReason::AuthFailed, "MAC mismatched".to_string());
        assert_eq!(down_reason(Some(&auth), true, kernel), auth);
        assert_eq!(
            down_reason(None, true, kernel),
            (StatusReason::Connecting, String::new())
        );
    }

    #[test]
    fn a_connection_is_active_only_with_its_ike_sa_and_every_child_up() {
        let traffic = Traffic {
            bytes_in: 168,
            rekeys: 1,
            ..Traffic::default()
        };
        let up = SaView {
            ike_up: true,
            children_up: true,
            proposal: "AES_CBC-128/HMAC_SHA2_256_128".into(),
            traffic: traffic.clone(),
        };
        assert_eq!(
            connection_state(Some(&up), None, None),
            ConnectionState {
                status: Status::Active,
                reason: StatusReason::Established,
                detail: up.proposal.clone(),
                traffic: Some(traffic),
                applied: Generations::default(),
            }
        );
        let notify = (StatusReason::TsUnacceptable, "TS_UNACCEPTABLE".to_string());
        let ike_only = SaView {
            children_up: false,
            ..up
        };
        let refused = connection_state(Some(&ike_only), Some(&notify), Some("no ESP"));
        assert_eq!(
            (refused.status, refused.reason, refused.traffic),
            (Status::Down, StatusReason::KernelRefused, None)
        );
        assert_eq!(
            connection_state(None, Some(&notify), Some("no ESP")),
            ConnectionState::down(notify.clone()),
            "no IKE SA: the peer's words stand"
        );
    }

    #[test]
    fn disabled_daemonless_and_unloaded_connections_say_why() {
        let mut spec: ConnectionSpec =
            serde_json::from_value(crate::fixtures::connection("c", 1500)).expect("spec");
        let running = Observed {
            daemon_running: true,
            connections: HashMap::new(),
        };
        assert_eq!(
            connection_status(&spec, &running).reason,
            StatusReason::Connecting
        );
        assert_eq!(
            connection_status(&spec, &Observed::default()).reason,
            StatusReason::DaemonDown
        );
        spec.enabled = false;
        assert_eq!(
            connection_status(&spec, &running).reason,
            StatusReason::AdminDown
        );
    }
}
