//! Test fixtures shared by the agent's unit tests.

use serde_json::{Value, json};

/// A connection's desired state as JSON: IKEv2, AES-128/SHA-256, 10.1.0.0/24 ⇄
/// 10.2.0.0/24 between 203.0.113.2 and 203.0.113.3.
pub fn connection(id: &str, mtu: u32) -> Value {
    json!({
        "id": id, "service_id": "s", "enabled": true, "local_address": "203.0.113.2", "local_id": "203.0.113.2",
        "peer_address": "203.0.113.3", "peer_id": "203.0.113.3", "psk": "k",
        "local_cidrs": ["10.1.0.0/24"], "peer_cidrs": ["10.2.0.0/24"],
        "ike": {"id": "i", "tenant_id": "p", "project_id": "p", "name": "", "description": "", "auth_algorithm": "sha256",
                "encryption_algorithm": "aes-128", "phase1_negotiation_mode": "main", "ike_version": "v2", "pfs": "group14"},
        "ipsec": {"id": "j", "tenant_id": "p", "project_id": "p", "name": "", "description": "", "transform_protocol": "esp",
                  "encapsulation_mode": "tunnel", "auth_algorithm": "sha256", "encryption_algorithm": "aes-128", "pfs": "group14"},
        "dpd": {}, "initiator": "bi-directional", "mtu": mtu,
    })
}

/// Whether the tests run as root (those that make namespaces need it, and say so).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    })
}

/// Deletes a test's namespace when dropped, also when the test fails.
pub struct ScratchNamespace(pub String);

impl Drop for ScratchNamespace {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}
