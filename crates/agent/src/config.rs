//! Agent settings.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// How ESP is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DataPlane {
    /// Kernel XFRM (kernel-netlink): production.
    #[default]
    Kernel,
    /// strongSwan's userspace ESP over TUN (kernel-libipsec): kernels without ESP.
    Userspace,
}

/// Who owns the router namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum L3Mode {
    /// The agent plumbs namespaces, ports, forwarding and SNAT itself.
    #[default]
    Standalone,
    /// Another L3 agent owns the namespaces; vpnaas only runs the IKE daemons and NAT
    /// exemption in them.
    External,
}

/// A network backed by an existing bridge instead of an agent-managed one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeMapping {
    /// Network id.
    pub network: String,
    /// Namespace holding the bridge ("" for the host namespace).
    #[serde(default)]
    pub namespace: String,
    /// Bridge name.
    pub bridge: String,
}

/// Everything the agent needs to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// This agent's host name (unique among agents).
    pub host: String,
    /// Per-router daemon directories live below it.
    pub state_dir: PathBuf,
    /// Router namespace name = prefix + router id.
    pub namespace_prefix: String,
    /// Namespace of the agent-managed network bridges.
    pub fabric_namespace: String,
    /// Networks backed by existing bridges.
    pub bridges: Vec<BridgeMapping>,
    /// Standalone L3 or an external L3 agent.
    pub l3_mode: L3Mode,
    /// Kernel or userspace ESP.
    pub data_plane: DataPlane,
    /// Seconds between full resyncs (and heartbeats).
    pub resync_interval: u64,
    /// The charon binary.
    pub charon: PathBuf,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            host: "localhost".into(),
            state_dir: PathBuf::from("/var/lib/vpnaas/agent"),
            namespace_prefix: "qrouter-".into(),
            fabric_namespace: "vpnaas-fabric".into(),
            bridges: vec![],
            l3_mode: L3Mode::Standalone,
            data_plane: DataPlane::Kernel,
            resync_interval: 30,
            charon: PathBuf::from("/usr/lib/ipsec/charon"),
        }
    }
}

impl AgentConfig {
    /// The namespace of a router.
    pub fn namespace(&self, router_id: &str) -> String {
        format!("{}{router_id}", self.namespace_prefix)
    }

    /// The directory of a router's daemon.
    pub fn router_dir(&self, router_id: &str) -> PathBuf {
        self.state_dir.join(router_id)
    }

    /// Resync period.
    pub fn resync(&self) -> Duration {
        Duration::from_secs(self.resync_interval.max(1))
    }
}
