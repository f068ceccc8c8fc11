//! Which connections a running daemon holds, and as what: beside each daemon, a file maps
//! connection ids to a fingerprint of the desired state they were loaded with, so an agent
//! that restarts keeps the connections a daemon still has as wanted.

use std::collections::HashMap;
use std::path::Path;

use vpnaas_model::agent::ConnectionSpec;

use crate::daemon::Loaded;
use crate::hash::stable_hash;

const FILE: &str = "connections.json";

/// A stable fingerprint of a connection's desired state (FNV-1a over its JSON).
pub fn fingerprint(spec: &ConnectionSpec) -> String {
    let text = serde_json::to_string(spec).unwrap_or_default();
    format!("{:016x}", stable_hash(&text))
}

/// The fingerprints recorded beside a daemon: connection id → fingerprint.
pub fn read(dir: &Path) -> HashMap<String, String> {
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
    let map: HashMap<&String, String> = loaded
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

    #[test]
    fn what_is_recorded_reads_back_and_a_change_changes_the_fingerprint() {
        let dir = tempfile::tempdir().expect("dir");
        let spec = |mtu| -> ConnectionSpec {
            serde_json::from_value(crate::fixtures::connection("c", mtu)).expect("spec")
        };
        record(dir.path(), &Loaded::from([("c".to_string(), spec(1500))]));
        let read = read(dir.path());
        assert_eq!(read["c"], fingerprint(&spec(1500)));
        assert_ne!(read["c"], fingerprint(&spec(1400)));
    }
}
