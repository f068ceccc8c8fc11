//! The IKE daemon seam: what the agent asks of a driver (one daemon per router, its
//! connections loaded one by one) and what a driver reports back. strongSwan and
//! Libreswan implement it; the agent picks one per router. Both weigh the failures their
//! daemon's log teaches by the same rules (`learn_failure`, `down_reason`).

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use vpnaas_model::agent::{ConnectionSpec, RouterState};
use vpnaas_model::enums::{Status, StatusReason};
use vpnaas_model::site_connection::Traffic;

use crate::Result;

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
}

/// An IKE daemon driver. Every method is idempotent; a change to one connection touches
/// only that connection, never the daemon or the others.
#[async_trait]
pub trait IkeDriver: Send + Sync {
    /// Brings the router's daemon and its enabled connections to the desired state (no
    /// enabled connection: no daemon).
    async fn ensure(&self, namespace: &str, state: &RouterState) -> Result<()>;
    /// Stops the router's daemon and removes its files.
    async fn remove(&self, router_id: &str) -> Result<()>;
    /// What the daemon says about the router's connections now.
    async fn observe(&self, router_id: &str) -> Observed;
}

/// The last failure learnt from a daemon's log, per connection id: reason and the line
/// that explains it.
pub type Failures = HashMap<String, (StatusReason, String)>;

/// Records a failure learnt from a daemon's log; returns whether it changed anything. A
/// child SA this host's data plane refused (`KERNEL_REFUSED`, `CHILD_SA_FAILED`) stays the
/// reason until a child SA comes up: what follows it (the peer's notify answering the
/// failed exchange, a retry refused the same way) is its consequence, and would send the
/// user to check algorithms.
pub fn learn_failure(
    failures: &mut Failures,
    connection: &str,
    reason: StatusReason,
    detail: String,
) -> bool {
    if failures.get(connection).is_some_and(|(known, _)| {
        matches!(
            known,
            StatusReason::KernelRefused | StatusReason::ChildSaFailed
        )
    }) {
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
    learnt: Option<&(StatusReason, String)>,
    ike_up: bool,
    kernel_refuses: Option<&str>,
) -> (StatusReason, String) {
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

/// A stable fingerprint of a connection's desired state (FNV-1a over its JSON), so an
/// agent that restarts can tell which connections a running daemon has as wanted.
pub fn fingerprint(spec: &ConnectionSpec) -> String {
    let text = serde_json::to_string(spec).unwrap_or_default();
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

const LOADED: &str = "connections.json";

/// The fingerprints recorded beside a daemon: connection id → fingerprint.
pub fn read_loaded(dir: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(dir.join(LOADED))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Records what a daemon has loaded (mode 0600: the fingerprints derive from the keys).
pub fn record_loaded(dir: &Path, loaded: &HashMap<String, ConnectionSpec>) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let map: HashMap<&String, String> = loaded
        .iter()
        .map(|(id, spec)| (id, fingerprint(spec)))
        .collect();
    let path = dir.join(LOADED);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(serde_json::to_string(&map).unwrap_or_default().as_bytes()));
    if let Err(error) = written {
        tracing::warn!(%error, path = %path.display(), "cannot record loaded connections");
    }
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
}
