//! What charon says of each connection: `list-sas` brought down to an [`SaView`] (a
//! connection's traffic counts the child SAs rekeyed away too), and the failures its log
//! lines explain, learnt as they arrive.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Mutex;
use vpnaas_model::agent::ConnectionSpec;
use vpnaas_model::enums::{Status, StatusReason};
use vpnaas_model::site_connection::Traffic;

use super::dpd::Watch;
use super::unmatched::Unmatched;
use super::{Control, vici};
use crate::daemon::{Loaded, Observation};
use crate::data_plane::Esp;
use crate::status::{Failures, SaView, learn_failure};
use crate::{Error, Metrics, Result};

/// How long a VICI request may take. A request to a charon that dies while answering
/// never completes; without a bound the agent would wait on it forever instead of
/// restarting charon (it answers in milliseconds otherwise).
pub(super) const VICI_PATIENCE: Duration = Duration::from_secs(2);

/// What charon's events taught about each connection since the daemon started.
#[derive(Debug, Default, Clone)]
pub(super) struct History {
    /// Last failure, learnt from log lines; cleared when a child SA comes up.
    pub failures: Failures,
    /// The last netlink error charon logged per connection: the kernel's own words about
    /// the SA it then fails to install.
    pub netlink_errors: HashMap<String, String>,
    /// Counters of child SAs rekeyed away and the number of rekeys, so a connection's
    /// traffic keeps counting across rekeys.
    pub rekeyed: HashMap<String, Traffic>,
    /// The last re-authentication concluded per connection, for those asked one since
    /// they were loaded.
    pub reauthenticated: HashMap<String, u64>,
    /// Peers that presented an identity no connection expects.
    pub unmatched: Unmatched,
    /// DPD requests awaiting the peer, for the connections whose timeout the agent keeps.
    pub dpd: Watch,
}

/// A charon's history, shared by its event task and the driver.
pub(super) type SharedHistory = Arc<std::sync::Mutex<History>>;

/// Every SA of charon, over one client.
pub(super) async fn collect_sas(client: &mut rsvici::Client) -> Result<vici::Sas> {
    let mut stream = Box::pin(client.stream_request::<_, vici::ListSa>("list-sas", "list-sa", ()));
    let mut all = vici::Sas::default();
    while let Some(item) = stream.next().await {
        all.0.extend(item.map_err(|source| Error::Vici {
            request: "list-sas",
            source,
        })?);
    }
    Ok(all)
}

/// Every SA of charon, over the driver's client, within [`VICI_PATIENCE`].
pub(super) async fn list_sas(vici: &Mutex<rsvici::Client>) -> Result<vici::Sas> {
    let mut client = vici.lock().await;
    tokio::time::timeout(VICI_PATIENCE, collect_sas(&mut client))
        .await
        .map_err(|_| Error::ViciTimeout("list-sas"))?
}

/// What charon shows of the loaded connections; `None` when it does not answer.
pub(super) async fn observe(control: &Control, loaded: &Loaded) -> Option<Observation> {
    let sas = list_sas(&control.vici).await.ok()?;
    let mut history = control.history.lock().ok()?;
    let views: HashMap<String, SaView> = loaded
        .values()
        .map(|spec| (spec.id.clone(), sa_view(&sas, spec, &history)))
        .collect();
    let mut failures = history.failures.clone();
    for spec in loaded.values() {
        if views.get(&spec.id).is_some_and(|v| v.children_up) {
            history.unmatched.forget(spec);
        } else if let Some(failure) = history.unmatched.failure_of(spec) {
            // More telling than the AUTHENTICATION_FAILED the peer answers our own
            // attempts with, when it is that identity it wants.
            failures.insert(spec.id.clone(), failure);
        }
    }
    Some(Observation {
        sas: views,
        failures,
        reauthenticated: history.reauthenticated.clone(),
    })
}

/// A connection's SAs in `list-sas`; its traffic counts the installed child SAs plus those
/// rekeyed away.
fn sa_view(sas: &vici::Sas, spec: &ConnectionSpec, history: &History) -> SaView {
    let children = sas.installed_children(&spec.id);
    let count = |field: fn(&vici::ChildSa) -> &Option<String>| -> u64 {
        children.iter().map(|c| c.counter(field)).sum()
    };
    let carried = history.rekeyed.get(&spec.id).cloned().unwrap_or_default();
    SaView {
        ike_up: sas.of(&spec.id).any(|ike| ike.state == "ESTABLISHED"),
        children_up: status_in(sas, spec) == Status::Active,
        proposal: children.first().map(|c| c.proposal()).unwrap_or_default(),
        traffic: Traffic {
            bytes_in: carried.bytes_in + count(|c| &c.bytes_in),
            bytes_out: carried.bytes_out + count(|c| &c.bytes_out),
            packets_in: carried.packets_in + count(|c| &c.packets_in),
            packets_out: carried.packets_out + count(|c| &c.packets_out),
            rekeys: carried.rekeys,
        },
    }
}

/// ACTIVE when an IKE SA of the connection is established and every one of its child
/// SAs is installed (in any of its IKE SAs: duplicates may split them).
pub(super) fn status_in(sas: &vici::Sas, spec: &ConnectionSpec) -> Status {
    let installed = sas.installed_children(&spec.id);
    let established = sas.of(&spec.id).any(|ike| ike.state == "ESTABLISHED");
    let up = established
        && vici::children(spec)
            .iter()
            .all(|(name, _, _)| installed.iter().any(|c| &c.name == name));
    if up { Status::Active } else { Status::Down }
}

/// Learns a failure (or its end) from a log line about one of our connections, or a
/// peer no connection matched; returns whether it changed what the agent would report. A
/// refused SA is the kernel's refusal on kernel ESP (its detail leads with the kernel's
/// words from the netlink error before it), and `CHILD_SA_FAILED` on userspace ESP.
pub(super) fn learn(history: &SharedHistory, line: &vici::LogLine, esp: Esp) -> bool {
    let Ok(mut history) = history.lock() else {
        return false;
    };
    history.dpd.observe(line, std::time::Instant::now());
    // An IKE SA no connection was chosen for yet is charon's "(unnamed)".
    let Some(connection) = line.ikesa_name.as_ref().filter(|n| *n != "(unnamed)") else {
        return history.unmatched.learn(line.thread.as_deref(), &line.msg);
    };
    if line.msg.contains("CHILD_SA") && line.msg.contains("established with SPIs") {
        history.netlink_errors.remove(connection);
        return history.failures.remove(connection).is_some();
    }
    if line.msg.starts_with("received netlink error") {
        history
            .netlink_errors
            .insert(connection.clone(), line.msg.clone());
        return false;
    }
    let (reason, detail) = match classify(&line.msg) {
        Some(StatusReason::KernelRefused) => {
            let detail = match history.netlink_errors.remove(connection) {
                Some(kernel) => format!("{kernel}; {}", line.msg),
                None => line.msg.clone(),
            };
            let reason = match esp {
                Esp::Kernel => StatusReason::KernelRefused,
                Esp::Userspace => StatusReason::ChildSaFailed,
            };
            (reason, detail)
        }
        Some(reason) => (reason, line.msg.clone()),
        None => return false,
    };
    learn_failure(&mut history.failures, connection, reason, detail)
}

/// Adds the counters of the child SAs a `child-rekey` event retired to their connection's
/// history, and counts the rekeys.
pub(super) fn count_rekeys(history: &SharedHistory, event: &vici::ChildRekey, metrics: &Metrics) {
    let Ok(mut history) = history.lock() else {
        return;
    };
    for (connection, ike) in event {
        for rekey in ike.child_sas.values() {
            let carried = history.rekeyed.entry(connection.clone()).or_default();
            if let Some(old) = &rekey.old {
                carried.bytes_in += old.counter(|c| &c.bytes_in);
                carried.bytes_out += old.counter(|c| &c.bytes_out);
                carried.packets_in += old.counter(|c| &c.packets_in);
                carried.packets_out += old.counter(|c| &c.packets_out);
            }
            carried.rekeys += 1;
            metrics.rekeyed();
        }
    }
}

/// The reason a charon log line gives for a tunnel not being up, if any. An SA the data
/// plane would not take is `KERNEL_REFUSED` here; [`learn`] tells the kernel's refusal from
/// userspace ESP's.
pub fn classify(msg: &str) -> Option<StatusReason> {
    let has = |needle: &str| msg.contains(needle);
    // A certificate check logs its own line first, then a generic "no trusted ... public
    // key found", which is left unclassified so the specific reason stands.
    if has("certificate invalid (valid from") {
        Some(StatusReason::CertExpired)
    } else if has("not authenticated by CA") || has("no issuer certificate found") {
        Some(StatusReason::CertUntrusted)
    } else if has("constraint check failed: identity")
        || has("does not match to")
        || has("no matching peer config found")
    {
        Some(StatusReason::IdMismatch)
    } else if has("AUTHENTICATION_FAILED")
        || has("MAC mismatched")
        || (has("authentication of") && has("failed"))
    {
        Some(StatusReason::AuthFailed)
    } else if has("unable to add SAD entry") || (has("unable to install") && has("in kernel")) {
        Some(StatusReason::KernelRefused)
    } else if has("TS_UNACCEPTABLE") || (has("traffic selectors") && has("unacceptable")) {
        Some(StatusReason::TsUnacceptable)
    } else if has("NO_PROPOSAL_CHOSEN")
        || has("no acceptable proposal")
        || has("proposals unacceptable")
        || has("no matching proposal")
    {
        Some(StatusReason::NoProposalChosen)
    } else if (has("giving up after") && has("retransmits")) || has("DPD check timed out") {
        Some(StatusReason::PeerUnreachable)
    } else if has("received DELETE for IKE_SA") {
        Some(StatusReason::PeerClosed)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charon_log_lines_map_to_status_reasons() {
        let cases = [
            (
                "received AUTHENTICATION_FAILED notify error",
                Some(StatusReason::AuthFailed),
            ),
            (
                "tried 1 shared key for '203.0.113.2' - '203.0.113.3', but MAC mismatched",
                Some(StatusReason::AuthFailed),
            ),
            (
                "received NO_PROPOSAL_CHOSEN notify error",
                Some(StatusReason::NoProposalChosen),
            ),
            (
                "no acceptable proposal found",
                Some(StatusReason::NoProposalChosen),
            ),
            (
                "received TS_UNACCEPTABLE notify, no CHILD_SA built",
                Some(StatusReason::TsUnacceptable),
            ),
            (
                "traffic selectors 10.2.0.0/24 === 10.1.0.0/24 unacceptable",
                Some(StatusReason::TsUnacceptable),
            ),
            (
                "giving up after 5 retransmits",
                Some(StatusReason::PeerUnreachable),
            ),
            (
                "received DELETE for IKE_SA c1[3]",
                Some(StatusReason::PeerClosed),
            ),
            (
                "unable to add SAD entry with SPI c72c6092 (FAILED)",
                Some(StatusReason::KernelRefused),
            ),
            (
                "unable to install inbound and outbound IPsec SA (SAD) in kernel",
                Some(StatusReason::KernelRefused),
            ),
            (
                "unable to install IPsec policies (SPD) in kernel",
                Some(StatusReason::KernelRefused),
            ),
            (
                "subject certificate invalid (valid from Dec 01 10:00:00 2026 to Dec 02 10:00:00 2026)",
                Some(StatusReason::CertExpired),
            ),
            (
                "issuer certificate invalid (valid from Dec 01 10:00:00 2026 to Dec 02 10:00:00 2026)",
                Some(StatusReason::CertExpired),
            ),
            (
                "constraint check failed: peer not authenticated by CA 'CN=another CA'",
                Some(StatusReason::CertUntrusted),
            ),
            (
                "no issuer certificate found for \"CN=far.example\"",
                Some(StatusReason::CertUntrusted),
            ),
            (
                "constraint check failed: identity 'elsewhere.example' required ",
                Some(StatusReason::IdMismatch),
            ),
            (
                "IDir '203.0.113.3' does not match to 'elsewhere.example'",
                Some(StatusReason::IdMismatch),
            ),
            ("no trusted ECDSA public key found for 'far.example'", None),
            ("sending keep alive to 203.0.113.3[4500]", None),
            (
                "DPD check timed out, enforcing DPD action",
                Some(StatusReason::PeerUnreachable),
            ),
            ("received netlink error: Protocol not supported (93)", None),
        ];
        for (line, reason) in cases {
            assert_eq!(classify(line), reason, "{line}");
        }
    }

    #[test]
    fn a_failure_is_attributed_to_its_connection_and_cleared_when_it_comes_up() {
        let failures = SharedHistory::default();
        let line = |name: Option<&str>, msg: &str| vici::LogLine {
            ikesa_name: name.map(String::from),
            ikesa_uniqueid: None,
            thread: Some("7".into()),
            msg: msg.into(),
        };
        assert!(
            !learn(
                &failures,
                &line(None, "received AUTHENTICATION_FAILED notify error"),
                Esp::Kernel
            ),
            "no IKE SA, no owner"
        );
        assert!(learn(
            &failures,
            &line(Some("c1"), "received AUTHENTICATION_FAILED notify error"),
            Esp::Kernel
        ));
        assert_eq!(
            failures
                .lock()
                .expect("lock")
                .failures
                .get("c1")
                .map(|f| f.0),
            Some(StatusReason::AuthFailed)
        );
        assert!(learn(
            &failures,
            &line(
                Some("c1"),
                "CHILD_SA c1{2} established with SPIs c1_i c2_o and TS 10.1.0.0/24 === 10.2.0.0/24"
            ),
            Esp::Kernel
        ));
        assert!(failures.lock().expect("lock").failures.is_empty());
    }

    /// What charon 5.9.8 logs about one IKE SA, as responder, on a kernel without ESP
    /// (reference: ipsec-lab.md §0), then the peer's answer to its own retry.
    const KERNEL_REFUSAL: [&str; 7] = [
        "selected proposal: ESP:AES_CBC_128/HMAC_SHA2_256_128/NO_EXT_SEQ",
        "received netlink error: Protocol not supported (93)",
        "unable to add SAD entry with SPI c72c6092 (FAILED)",
        "received netlink error: Protocol not supported (93)",
        "unable to add SAD entry with SPI c2f4d0da (FAILED)",
        "unable to install inbound and outbound IPsec SA (SAD) in kernel",
        "received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built",
    ];

    fn learn_all(esp: Esp) -> Option<(StatusReason, String)> {
        let history = SharedHistory::default();
        for msg in KERNEL_REFUSAL {
            let line = vici::LogLine {
                ikesa_name: Some("c1".into()),
                ikesa_uniqueid: None,
                thread: Some("7".into()),
                msg: msg.into(),
            };
            learn(&history, &line, esp);
        }
        let failures = &history.lock().expect("lock").failures;
        failures.get("c1").cloned()
    }

    #[test]
    fn an_sa_the_kernel_refused_is_kernel_refused_with_the_kernels_words() {
        assert_eq!(
            learn_all(Esp::Kernel),
            Some((
                StatusReason::KernelRefused,
                "received netlink error: Protocol not supported (93); unable to add SAD entry with SPI c72c6092 (FAILED)".into()
            )),
            "the peer's NO_PROPOSAL_CHOSEN that follows does not replace it"
        );
    }

    #[test]
    fn an_sa_userspace_esp_refused_is_a_child_sa_failure() {
        assert_eq!(
            learn_all(Esp::Userspace).map(|f| f.0),
            Some(StatusReason::ChildSaFailed)
        );
    }
}
