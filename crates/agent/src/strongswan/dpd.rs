//! Dead peer detection that keeps the connection's word. charon sends a DPD request once
//! nothing came from the peer for `dpd.interval`. With IKEv1 it declares the peer dead when
//! nothing more came within `timeout - interval`, and re-establishes the SA itself (so
//! both ends and the agent's initiator start negotiations at once: duplicate SAs); with
//! IKEv2 it ignores `dpd.timeout`: the request is retransmitted on the daemon-wide
//! schedule and the peer is declared dead when that schedule ends (16.25 s by default),
//! however long or short the connection asked for. Neither counts while another exchange
//! is in flight: its retransmits decide.
//!
//! So the agent keeps the timeout itself, for both versions: when charon logs that it
//! sends a DPD request on an IKE SA, or retransmits a request of an established SA, the
//! [`Watch`] gives the peer until `timeout - interval` later to send anything on that SA;
//! if it stays silent, the IKE SA is ended (`PEER_UNREACHABLE`) and the connection is
//! negotiated again like any that is down. charon's own verdicts come later: the router's
//! retransmit schedule is made at least that long and IKEv1's `dpd_timeout` is the
//! connection's, each plus [`SCHEDULE_MARGIN`]. Each connection on a router keeps its own
//! timeout.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use vpnaas_model::agent::ConnectionSpec;
use vpnaas_model::enums::DpdAction;

use super::vici::LogLine;

/// How much longer than a connection's own timeout charon keeps retransmitting: the agent
/// decides, charon's schedule is only the backstop.
pub(super) const SCHEDULE_MARGIN: f64 = 2.0;

/// A connection's DPD as the agent keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Kept {
    /// Seconds without a word from the peer before charon asks.
    pub interval: u32,
    /// Seconds without a word from the peer before it is dead.
    pub timeout: u32,
}

impl Kept {
    /// The DPD the agent keeps for a connection: any with DPD on.
    pub(super) fn of(spec: &ConnectionSpec) -> Option<Kept> {
        let kept = spec.dpd.action != DpdAction::Disabled && spec.dpd.timeout > spec.dpd.interval;
        kept.then_some(Kept {
            interval: spec.dpd.interval,
            timeout: spec.dpd.timeout,
        })
    }

    /// How long after its DPD request the peer may stay silent.
    fn grace(self) -> Duration {
        Duration::from_secs(u64::from(self.timeout - self.interval))
    }

    /// How long charon must keep retransmitting a DPD request for the agent to decide.
    pub(super) fn schedule_needed(self) -> f64 {
        f64::from(self.timeout - self.interval) + SCHEDULE_MARGIN
    }
}

/// A DPD request awaiting a word from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Probe {
    connection: String,
    deadline: Instant,
}

/// A peer that stayed silent past its connection's timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Silent {
    /// The connection.
    pub connection: String,
    /// charon's number of the IKE SA to end.
    pub ike_id: String,
    /// The connection's DPD.
    pub dpd: Kept,
}

impl Silent {
    /// What the connection's status reason says.
    pub(super) fn detail(&self) -> String {
        format!(
            "no answer from the peer to dead peer detection: silent for {} s (dpd interval {} s, timeout {} s); IKE SA ended",
            self.dpd.timeout, self.dpd.interval, self.dpd.timeout
        )
    }
}

/// The DPD requests of one charon awaiting an answer, and the connections whose timeout
/// the agent keeps.
#[derive(Debug, Default, Clone)]
pub(super) struct Watch {
    /// Connection id → its DPD.
    kept: HashMap<String, Kept>,
    /// IKE SA number → its unanswered DPD request.
    probes: HashMap<String, Probe>,
}

impl Watch {
    /// Keeps the timeout of a connection just loaded (or stops, if it no longer needs it).
    pub(super) fn keep(&mut self, spec: &ConnectionSpec) {
        self.forget(&spec.id);
        if let Some(kept) = Kept::of(spec) {
            self.kept.insert(spec.id.clone(), kept);
        }
    }

    /// Forgets a connection and its probes.
    pub(super) fn forget(&mut self, connection: &str) {
        self.kept.remove(connection);
        self.probes
            .retain(|_, probe| probe.connection != connection);
    }

    /// Learns from a log line about an IKE SA: a DPD request sent, or a request of the
    /// established SA retransmitted, starts a probe; any message parsed from the peer ends
    /// it; charon giving up ends it too (charon has acted).
    pub(super) fn observe(&mut self, line: &LogLine, now: Instant) {
        let (Some(connection), Some(ike_id)) = (&line.ikesa_name, &line.ikesa_uniqueid) else {
            return;
        };
        if line.msg.starts_with("parsed ") || line.msg.starts_with("giving up after") {
            self.probes.remove(ike_id);
        } else if (line.msg.starts_with("sending DPD request")
            || unanswered_on_established_sa(&line.msg))
            && let Some(kept) = self.kept.get(connection)
        {
            let probe = Probe {
                connection: connection.clone(),
                deadline: now + kept.grace(),
            };
            self.probes.entry(ike_id.clone()).or_insert(probe);
        }
    }

    /// When the next probe runs out.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.probes.values().map(|probe| probe.deadline).min()
    }

    /// The probes run out by `now`, removed.
    pub(super) fn silent(&mut self, now: Instant) -> Vec<Silent> {
        let out: Vec<String> = self
            .probes
            .iter()
            .filter(|(_, probe)| probe.deadline <= now)
            .map(|(ike_id, _)| ike_id.clone())
            .collect();
        out.into_iter()
            .filter_map(|ike_id| {
                let probe = self.probes.remove(&ike_id)?;
                let dpd = *self.kept.get(&probe.connection)?;
                Some(Silent {
                    connection: probe.connection,
                    ike_id,
                    dpd,
                })
            })
            .collect()
    }
}

/// Whether a log line is charon's first retransmit of a request on an established SA:
/// IKEv2 numbers IKE_SA_INIT and IKE_AUTH 0 and 1 ("retransmit 1 of request with message
/// ID 2"), IKEv1 Main and Aggressive Mode 0 ("sending retransmit 1 of request message ID
/// 2086119307, seq 1"). Setting up an SA is bounded by the retransmit schedule instead.
fn unanswered_on_established_sa(msg: &str) -> bool {
    let id = |rest: &str| -> Option<u64> {
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    if let Some(rest) = msg.strip_prefix("retransmit 1 of request with message ID ") {
        id(rest).is_some_and(|id| id >= 2)
    } else if let Some(rest) = msg.strip_prefix("sending retransmit 1 of request message ID ") {
        id(rest).is_some_and(|id| id != 0)
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn line(connection: &str, ike_id: &str, msg: &str) -> LogLine {
        LogLine {
            ikesa_name: Some(connection.into()),
            ikesa_uniqueid: Some(ike_id.into()),
            thread: Some("07".into()),
            msg: msg.into(),
        }
    }

    fn spec(id: &str, version: &str, interval: u32, timeout: u32) -> ConnectionSpec {
        let mut json = fixtures::connection(id, 1500);
        json["ike"]["ike_version"] = version.into();
        json["dpd"] =
            serde_json::json!({"action": "restart", "interval": interval, "timeout": timeout});
        serde_json::from_value(json).expect("spec")
    }

    #[test]
    fn a_silent_peer_runs_out_at_its_own_connections_timeout() {
        let mut watch = Watch::default();
        watch.keep(&spec("short", "v2", 1, 3));
        watch.keep(&spec("long", "v2", 30, 120));
        let t0 = Instant::now();
        watch.observe(&line("short", "1", "sending DPD request"), t0);
        watch.observe(&line("long", "2", "sending DPD request"), t0);
        assert_eq!(watch.next_deadline(), Some(t0 + Duration::from_secs(2)));
        assert!(watch.silent(t0 + Duration::from_millis(1999)).is_empty());
        let silent = watch.silent(t0 + Duration::from_secs(2));
        assert_eq!(silent.len(), 1);
        assert_eq!(
            (silent[0].connection.as_str(), silent[0].ike_id.as_str()),
            ("short", "1")
        );
        assert_eq!(watch.next_deadline(), Some(t0 + Duration::from_secs(90)));
        assert_eq!(
            Kept::of(&spec("long", "v2", 30, 120)).map(Kept::schedule_needed),
            Some(92.0)
        );
    }

    #[test]
    fn any_message_from_the_peer_or_charon_giving_up_ends_the_probe() {
        let mut watch = Watch::default();
        watch.keep(&spec("c", "v2", 1, 3));
        let t0 = Instant::now();
        watch.observe(&line("c", "4", "sending DPD request"), t0);
        watch.observe(&line("c", "4", "parsed INFORMATIONAL response 2 [ ]"), t0);
        assert_eq!(watch.next_deadline(), None);
        watch.observe(&line("c", "4", "sending DPD request"), t0);
        watch.observe(&line("c", "4", "giving up after 5 retransmits"), t0);
        assert_eq!(watch.next_deadline(), None);
    }

    #[test]
    fn disabled_dpd_is_not_kept_and_forgotten_connections_end_their_probes() {
        let mut watch = Watch::default();
        let mut off = spec("off", "v2", 1, 3);
        off.dpd.action = DpdAction::Disabled;
        watch.keep(&off);
        watch.keep(&spec("gone", "v1", 1, 3));
        let t0 = Instant::now();
        for (connection, id) in [("off", "2"), ("gone", "3")] {
            watch.observe(&line(connection, id, "sending DPD request"), t0);
        }
        assert!(watch.next_deadline().is_some());
        watch.forget("gone");
        assert_eq!(watch.next_deadline(), None);
        assert_eq!(Kept::of(&off), None);
    }

    #[test]
    fn an_unanswered_request_of_an_established_sa_starts_a_probe_and_a_negotiation_does_not() {
        let established = [
            "retransmit 1 of request with message ID 2",
            "sending retransmit 1 of request message ID 2086119307, seq 1",
        ];
        let setting_up = [
            "retransmit 1 of request with message ID 0",
            "retransmit 1 of request with message ID 1",
            "sending retransmit 1 of request message ID 0, seq 1",
            "retransmit 2 of request with message ID 5",
            "sending retransmit 1 of response message ID 4006998546, seq 4",
        ];
        for msg in established {
            assert!(unanswered_on_established_sa(msg), "{msg}");
        }
        for msg in setting_up {
            assert!(!unanswered_on_established_sa(msg), "{msg}");
        }
        let mut watch = Watch::default();
        watch.keep(&spec("c", "v1", 5, 20));
        let t0 = Instant::now();
        watch.observe(&line("c", "9", established[1]), t0);
        assert_eq!(watch.next_deadline(), Some(t0 + Duration::from_secs(15)));
    }
}
