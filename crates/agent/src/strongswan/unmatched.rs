//! Peers charon found no connection for. As responder, charon picks a connection by the
//! identities of the peer's IKE_AUTH request; when none matches it logs the lookup with
//! no connection name: "looking for peer configs matching A[idA]...B[idB]", then "no
//! matching peer config found" on the same thread. The two addresses say which of our
//! connections the peer meant, so that connection is `ID_MISMATCH`, naming the identity
//! the peer presented, until it comes up or is loaded again.

use std::collections::HashMap;
use std::net::IpAddr;

use vpnaas_model::agent::ConnectionSpec;
use vpnaas_model::enums::StatusReason;

use crate::status::Failure;

/// One lookup: our address, the peer's, and the identity the peer presented.
type Lookup = (IpAddr, IpAddr, String);

/// The lookups charon could not match, by address pair.
#[derive(Debug, Default, Clone)]
pub(super) struct Unmatched {
    /// Thread → the lookup it logged last.
    lookups: HashMap<String, Lookup>,
    /// (our address, the peer's) → the identity presented in the last failed lookup.
    failed: HashMap<(IpAddr, IpAddr), String>,
}

impl Unmatched {
    /// Learns from a log line about no connection; returns whether a lookup failed.
    pub(super) fn learn(&mut self, thread: Option<&str>, msg: &str) -> bool {
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
}
