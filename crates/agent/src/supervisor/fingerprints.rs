//! Which connections a running daemon holds, and as what: beside each daemon, a file maps
//! connection ids to a fingerprint of the desired state they were loaded with, so an agent
//! that restarts keeps the connections a daemon still has as wanted.
//!
//! A fingerprint keeps a connection's shape (everything its SAs are negotiated from) apart
//! from its credentials: new credentials are loaded beside the SAs up, a new shape means
//! unloading the connection and loading it again. It also keeps the re-authentication the
//! daemon last did, so that a restarted agent does not do it twice.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use vpnaas_model::agent::{ConnectionSpec, Generations};
use vpnaas_model::certificate::PrivateKey;
use vpnaas_model::site_connection::Psk;

use crate::daemon::Loaded;
use crate::hash::stable_hash;

const FILE: &str = "connections.json";

/// What a connection was loaded as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// FNV-1a of the connection's desired state without its credentials or generations.
    pub shape: String,
    /// FNV-1a of its credentials.
    pub credentials: String,
    /// The generations it was loaded with and the re-authentication last asked of the
    /// daemon.
    pub generations: Generations,
}

/// How a wanted connection differs from the one a daemon holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Its SAs must be negotiated anew: unload it, load it again.
    pub shape: bool,
    /// Its credentials are new: load them, keep the SAs.
    pub credentials: bool,
    /// A re-authentication is asked that the daemon has not done.
    pub reauth: bool,
}

impl Change {
    /// What it takes to turn `loaded` into `wanted`.
    pub fn between(loaded: &ConnectionSpec, wanted: &ConnectionSpec) -> Change {
        Change {
            shape: shape(loaded) != shape(wanted),
            credentials: credentials(loaded) != credentials(wanted),
            reauth: wanted.generations.reauth > loaded.generations.reauth,
        }
    }
}

/// The desired state that decides how a connection's SAs are negotiated: whether it
/// authenticates with certificates and whom it trusts for the peer count, its own key
/// and certificate do not.
fn shape(spec: &ConnectionSpec) -> String {
    let mut shape = spec.clone();
    forget_credentials(&mut shape);
    shape.generations = Generations::default();
    serde_json::to_string(&shape).unwrap_or_default()
}

/// Blanks what the connection authenticates with.
fn forget_credentials(spec: &mut ConnectionSpec) {
    spec.psk = Psk::new("");
    if let Some(certificate) = &mut spec.certificate {
        certificate.local_certificate.clear();
        certificate.local_key = PrivateKey::new("");
    }
}

/// What the connection authenticates with.
fn credentials(spec: &ConnectionSpec) -> String {
    match &spec.certificate {
        Some(c) => format!("{}{}", c.local_certificate, c.local_key.expose()),
        None => spec.psk.expose().to_string(),
    }
}

/// A connection's fingerprint.
pub fn fingerprint(spec: &ConnectionSpec) -> Fingerprint {
    Fingerprint {
        shape: format!("{:016x}", stable_hash(&shape(spec))),
        credentials: format!("{:016x}", stable_hash(&credentials(spec))),
        generations: spec.generations,
    }
}

/// A recorded entry: a fingerprint, or the single hash over the whole desired state
/// that agents before key rotation wrote.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Recorded {
    /// Shape, credentials and generations apart.
    Split(Fingerprint),
    /// One hash of the connection's JSON.
    Whole(String),
}

impl Recorded {
    /// What `wanted` was loaded as, when the daemon holds it in the same shape: `wanted`
    /// itself, with credentials that never match when they differ (they are loaded again)
    /// and the generations recorded.
    pub fn loaded_as(&self, wanted: &ConnectionSpec) -> Option<ConnectionSpec> {
        match self {
            Recorded::Whole(hash) => {
                let text = serde_json::to_string(wanted).unwrap_or_default();
                (*hash == format!("{:016x}", stable_hash(&text))).then(|| wanted.clone())
            }
            Recorded::Split(recorded) => {
                let now = fingerprint(wanted);
                if recorded.shape != now.shape {
                    return None;
                }
                let mut loaded = wanted.clone();
                if recorded.credentials != now.credentials {
                    forget_credentials(&mut loaded);
                }
                loaded.generations = recorded.generations;
                Some(loaded)
            }
        }
    }
}

/// The fingerprints recorded beside a daemon: connection id → what it was loaded as.
pub fn read(dir: &Path) -> HashMap<String, Recorded> {
    std::fs::read_to_string(dir.join(FILE))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Records what a daemon has loaded (mode 0600: the fingerprints derive from the keys). A
/// failure only costs the next agent restart a reload, so it is logged.
pub fn record(dir: &Path, loaded: &Loaded) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let map: HashMap<&String, Fingerprint> = loaded
        .iter()
        .map(|(id, spec)| (id, fingerprint(spec)))
        .collect();
    let path = dir.join(FILE);
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

    fn spec(mtu: u32) -> ConnectionSpec {
        serde_json::from_value(crate::fixtures::connection("c", mtu)).expect("spec")
    }

    #[test]
    fn what_is_recorded_reads_back_and_a_change_changes_the_fingerprint() {
        let dir = tempfile::tempdir().expect("dir");
        record(dir.path(), &Loaded::from([("c".to_string(), spec(1500))]));
        let read = read(dir.path());
        assert_eq!(read["c"].loaded_as(&spec(1500)), Some(spec(1500)));
        assert_eq!(read["c"].loaded_as(&spec(1400)), None);
    }

    #[test]
    fn credentials_and_generations_are_apart_from_the_shape() {
        let old = spec(1500);
        let mut rotated = old.clone();
        rotated.psk = Psk::new("a new key");
        rotated.generations.credentials = 1;
        assert_eq!(
            Change::between(&old, &rotated),
            Change {
                shape: false,
                credentials: true,
                reauth: false
            },
            "a new key keeps the SAs"
        );
        assert_eq!(fingerprint(&old).shape, fingerprint(&rotated).shape);
        assert_ne!(
            fingerprint(&old).credentials,
            fingerprint(&rotated).credentials
        );

        let mut asked = old.clone();
        asked.generations.reauth = 1;
        assert_eq!(
            Change::between(&old, &asked),
            Change {
                shape: false,
                credentials: false,
                reauth: true
            }
        );
        assert!(
            !Change::between(&asked, &old).reauth,
            "an older generation asks nothing"
        );

        let reshaped = spec(1400);
        let change = Change::between(&old, &reshaped);
        assert!(change.shape && !change.credentials && !change.reauth);
    }

    #[test]
    fn a_restarted_agent_loads_new_credentials_and_remembers_the_reauthentication() {
        let dir = tempfile::tempdir().expect("dir");
        let mut loaded = spec(1500);
        loaded.generations.reauth = 2;
        record(dir.path(), &Loaded::from([("c".to_string(), loaded)]));
        let mut wanted = spec(1500);
        wanted.psk = Psk::new("rotated while the agent was away");
        wanted.generations = Generations {
            credentials: 1,
            reauth: 2,
        };
        let held = read(dir.path())["c"]
            .loaded_as(&wanted)
            .expect("same shape: kept");
        let change = Change::between(&held, &wanted);
        assert!(
            !change.shape && change.credentials && !change.reauth,
            "{change:?}"
        );
    }

    #[test]
    fn a_fingerprint_written_before_key_rotation_still_adopts_its_connection() {
        let dir = tempfile::tempdir().expect("dir");
        let whole = format!(
            "{:016x}",
            stable_hash(&serde_json::to_string(&spec(1500)).expect("json"))
        );
        std::fs::write(
            dir.path().join(FILE),
            serde_json::json!({ "c": whole }).to_string(),
        )
        .expect("write");
        let read = read(dir.path());
        assert_eq!(read["c"].loaded_as(&spec(1500)), Some(spec(1500)));
        assert_eq!(read["c"].loaded_as(&spec(1400)), None);
    }
}
