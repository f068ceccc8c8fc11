//! Peers charon found no connection for. As responder, charon picks a connection by the
//! identities of the peer's IKE_AUTH request; when none matches it logs the lookup with
//! no connection name: "looking for peer configs matching A[idA]...B[idB]", then "no
//! matching peer config found" on the same thread. The two addresses say which of our
//! connections the peer meant, so that connection is `ID_MISMATCH`, naming the identity
//! the peer presented, until it comes up or is loaded again.
//!
//! Earlier still, a peer's IKE_SA_INIT that no connection's addresses match is answered
//! `NO_PROPOSAL_CHOSEN` ("no IKE config found for A...B"): the peer is configured and
//! initiating, ahead of us. That knock is kept for a short while: the connection to that
//! peer loaded next initiates at once rather than after the grace that keeps two ends from
//! initiating together, since the peer's own attempt has failed and it is backing off.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use vpnaas_model::agent::ConnectionSpec;
use vpnaas_model::enums::StatusReason;

use crate::status::Failure;

/// One lookup: our address, the peer's, and the identity the peer presented.
type Lookup = (IpAddr, IpAddr, String);

/// How long a knock says the peer is trying: its retries back off from 0.5 s, so a knock
/// older than this is from an attempt it may have given up (its connection deleted).
const KNOCK_FRESH: Duration = Duration::from_secs(10);

/// The lookups charon could not match, by address pair.
#[derive(Debug, Default, Clone)]
pub(super) struct Unmatched {
    /// Thread → the lookup it logged last.
    lookups: HashMap<String, Lookup>,
    /// (our address, the peer's) → the identity presented in the last failed lookup.
    failed: HashMap<(IpAddr, IpAddr), String>,
    /// (our address, the peer's) → when the peer last knocked with no connection for it.
    knocks: HashMap<(IpAddr, IpAddr), Instant>,
}

impl Unmatched {
    /// Learns from a log line about no connection; returns whether a lookup failed.
    pub(super) fn learn(&mut self, thread: Option<&str>, msg: &str) -> bool {
        if let Some(pair) = parse_knock(msg) {
            self.knocks.insert(pair, Instant::now());
            return false;
        }
        let Some(thread) = thread else {
            return false;
        };
        if let Some(lookup) = parse_lookup(msg) {
            self.lookups.insert(thread.to_string(), lookup);
            return false;
        }
        if msg.starts_with("no matching peer config found")
            && let Some((local, peer, presented)) = self.lookups.remove(thread)
        {
            self.failed.insert((local, peer), presented);
            return true;
        }
        false
    }

    /// Why `spec` is down, if its peer presented an identity no connection expects.
    pub(super) fn failure_of(&self, spec: &ConnectionSpec) -> Option<Failure> {
        let presented = self.failed.get(&(spec.local_address, spec.peer_address))?;
        Some((
            StatusReason::IdMismatch,
            format!(
                "the peer {} presented identity '{presented}', the connection expects '{}' \
                 (and is '{}' itself)",
                spec.peer_address, spec.peer_id, spec.local_id
            ),
        ))
    }

    /// Whether `spec`'s peer knocked lately (and forgets it: one knock, one initiation at
    /// once).
    pub(super) fn knocked(&mut self, spec: &ConnectionSpec) -> bool {
        self.knocks
            .remove(&(spec.local_address, spec.peer_address))
            .is_some_and(|at| at.elapsed() < KNOCK_FRESH)
    }

    /// Forgets what was learnt of `spec`'s address pair (it came up, or is loaded anew).
    pub(super) fn forget(&mut self, spec: &ConnectionSpec) {
        self.failed.remove(&(spec.local_address, spec.peer_address));
    }
}

/// `looking for peer configs matching A[idA]...B[idB]`: our address, the peer's, and the
/// identity the peer presented.
fn parse_lookup(msg: &str) -> Option<Lookup> {
    let ends = msg.strip_prefix("looking for peer configs matching ")?;
    let (ours, theirs) = ends.split_once("...")?;
    let end = |text: &str| -> Option<(IpAddr, String)> {
        let (address, rest) = text.split_once('[')?;
        let identity = rest.strip_suffix(']')?;
        Some((address.parse().ok()?, identity.to_string()))
    };
    let (local, _) = end(ours.trim())?;
    let (peer, presented) = end(theirs.trim())?;
    Some((local, peer, presented))
}

/// `no IKE config found for A...B, sending NO_PROPOSAL_CHOSEN`: our address and the
/// peer's (each may carry its port in brackets).
fn parse_knock(msg: &str) -> Option<(IpAddr, IpAddr)> {
    let ends = msg.strip_prefix("no IKE config found for ")?;
    let (ends, _) = ends.split_once(',')?;
    let (ours, theirs) = ends.split_once("...")?;
    let address = |text: &str| text.split('[').next()?.trim().parse().ok();
    Some((address(ours)?, address(theirs)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_lookup_is_the_id_mismatch_of_the_connection_between_its_addresses() {
        let mut unmatched = Unmatched::default();
        let lookup =
            "looking for peer configs matching 203.0.113.2[203.0.113.2]...203.0.113.3[far.example]";
        assert!(!unmatched.learn(Some("7"), lookup));
        assert!(!unmatched.learn(Some("8"), "no matching peer config found"));
        assert!(unmatched.learn(Some("7"), "no matching peer config found"));
        let mut spec: ConnectionSpec =
            serde_json::from_value(crate::fixtures::connection("c", 1500)).expect("spec");
        spec.local_address = "203.0.113.2".parse().expect("ip");
        spec.peer_address = "203.0.113.3".parse().expect("ip");
        let (reason, detail) = unmatched.failure_of(&spec).expect("a failure");
        assert_eq!(reason, StatusReason::IdMismatch);
        assert!(
            detail.contains("presented identity 'far.example'"),
            "{detail}"
        );
        unmatched.forget(&spec);
        assert_eq!(unmatched.failure_of(&spec), None);
    }

    #[test]
    fn a_peer_knocking_before_its_connection_is_loaded_is_remembered_once() {
        let mut unmatched = Unmatched::default();
        let knock = "no IKE config found for 203.0.113.3...203.0.113.2, sending NO_PROPOSAL_CHOSEN";
        assert!(!unmatched.learn(Some("4"), knock));
        let mut spec: ConnectionSpec =
            serde_json::from_value(crate::fixtures::connection("c", 1500)).expect("spec");
        spec.local_address = "203.0.113.3".parse().expect("ip");
        spec.peer_address = "203.0.113.2".parse().expect("ip");
        let mut other = spec.clone();
        other.peer_address = "203.0.113.4".parse().expect("ip");
        assert!(!unmatched.knocked(&other), "another peer did not knock");
        assert!(unmatched.knocked(&spec));
        assert!(
            !unmatched.knocked(&spec),
            "one knock, one initiation at once"
        );
        let with_port = "no IKE config found for 203.0.113.3[500]...203.0.113.2[4500], sending NO_PROPOSAL_CHOSEN";
        assert!(!unmatched.learn(None, with_port));
        assert!(unmatched.knocked(&spec));
    }
}
