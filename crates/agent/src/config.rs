//! Agent settings.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vpnaas_model::enums::DriverKind;

/// Where ESP runs, as configured (the TOML key, `VPNAAS_DATA_PLANE` and `--data-plane`
/// all parse through this one definition). What `Auto` resolves to at agent start is a
/// [`crate::data_plane::Esp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum DataPlane {
    /// Ask the kernel at start: kernel ESP when it holds an ESP SA, userspace otherwise.
    #[default]
    Auto,
    /// Kernel XFRM (kernel-netlink): production.
    Kernel,
    /// strongSwan's userspace ESP over TUN (kernel-libipsec): kernels without ESP.
    Userspace,
}

impl std::fmt::Display for DataPlane {
    /// The spelling of the settings file and the flag.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DataPlane::Auto => "auto",
            DataPlane::Kernel => "kernel",
            DataPlane::Userspace => "userspace",
        })
    }
}

/// Who owns the router namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum L3Mode {
    /// The agent plumbs namespaces, ports, forwarding and SNAT itself.
    #[default]
    Standalone,
    /// neutron-l3-agent owns the namespaces (`qrouter-<id>`), ports and SNAT; vpnaas runs
    /// the IKE daemons in them and adds the NAT exemption and MSS clamping in chains of
    /// its own (`external`, its former name, is still read).
    #[serde(alias = "external")]
    Neutron,
    /// No L3 at all: the `fake` driver's scale simulations, where no namespace exists.
    Simulation,
}

/// A network backed by an existing bridge instead of an agent-managed one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Deserialize, Serialize)]
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
    /// Kernel or userspace ESP, or `auto` (the kernel's when it can hold an ESP SA).
    pub data_plane: DataPlane,
    /// Seconds between full resyncs.
    pub resync_interval: u64,
    /// Seconds between heartbeats (the server declares the agent dead after its
    /// `agent_down_time` without one).
    pub heartbeat_interval: u64,
    /// The charon binary.
    pub charon: PathBuf,
    /// When an unanswered IKE request (a DPD check among them) is given up.
    pub retransmit: Retransmit,
    /// The IKE daemon of routers whose services do not choose one.
    pub driver: DriverKind,
    /// Where Libreswan is and how often its status is read.
    pub libreswan: LibreswanConfig,
    /// Simulation only: no daemons, every tunnel up this many milliseconds after it is
    /// loaded (`fake` driver, for scale tests; use with `l3_mode = "simulation"`).
    pub fake_tunnel_delay_ms: Option<u64>,
    /// Sub-second HA failover between agents (docs/scale-out.md).
    pub ha: HaLiveness,
}

/// Liveness probes between the agents of HA routers: each agent answers probes on a UDP
/// address it tells the server; a standby probes its routers' active agents and claims
/// their leases from the server when one stops answering.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HaLiveness {
    /// Where to answer probes (`ip:port`, port 0 for any free one; a specific address the
    /// other agents reach). None: no probes, HA failover waits for the server's
    /// `agent_down_time`.
    pub listen: Option<std::net::SocketAddr>,
    /// Milliseconds between probes to each active agent.
    pub probe_interval_ms: u64,
    /// Milliseconds without an answer after which a standby claims the active agent's
    /// routers: three probes, as VRRPv3 declares a master down after three adverts.
    pub dead_time_ms: u64,
}

impl Default for HaLiveness {
    fn default() -> Self {
        HaLiveness {
            listen: None,
            probe_interval_ms: 100,
            dead_time_ms: 300,
        }
    }
}

impl HaLiveness {
    /// The probe period.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.probe_interval_ms.max(10))
    }

    /// How long an active agent may stay silent before its routers are claimed: never
    /// under two probe periods, so one lost datagram is not a death.
    pub fn dead_time(&self) -> Duration {
        Duration::from_millis(self.dead_time_ms).max(self.interval() * 2)
    }
}

/// Libreswan settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LibreswanConfig {
    /// The root its files are under (`usr/libexec/ipsec/pluto`, …): `/` when installed,
    /// a folder where the .deb was unpacked otherwise.
    pub root: PathBuf,
    /// Seconds between status reads (pluto has no event stream).
    pub status_interval: f64,
}

impl Default for LibreswanConfig {
    fn default() -> Self {
        LibreswanConfig {
            root: PathBuf::from("/"),
            status_interval: 5.0,
        }
    }
}

impl LibreswanConfig {
    /// One of its programs (`pluto`, `whack`, `addconn`).
    pub fn tool(&self, name: &str) -> PathBuf {
        self.root.join("usr/libexec/ipsec").join(name)
    }
}

/// charon's retransmission schedule: the n-th retransmit (n = 0 is the first send) waits
/// `timeout * base^n` seconds, at most `limit`, and the peer is declared dead when the
/// last one goes unanswered. charon reads it per daemon, not per connection; with IKEv2 it
/// ignores `dpd.timeout`, so the agent keeps each connection's timeout itself and makes a
/// router's schedule at least as long as its longest (see `strongswan::dpd`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retransmit {
    /// Seconds before the first retransmit.
    pub timeout: f64,
    /// Retransmits before giving up.
    pub tries: u32,
    /// Growth of the wait between retransmits.
    pub base: f64,
    /// Longest wait between two retransmits, in whole seconds (charon reads an integer): a
    /// long schedule keeps asking rather than waiting minutes between two tries.
    pub limit: u32,
}

impl Default for Retransmit {
    /// 2 + 3 + 4.5 + 6.75 = 16.25 s of silence (strongSwan's own default, 4 s × 1.8 with 5
    /// tries, waits about 165 s).
    fn default() -> Self {
        Retransmit {
            timeout: 2.0,
            tries: 3,
            base: 1.5,
            limit: 10,
        }
    }
}

impl Retransmit {
    /// Seconds from the first unanswered send until the peer is declared dead.
    pub fn give_up_after(&self) -> f64 {
        let mut total = 0.0;
        for n in 0..=self.tries {
            let wait = self.wait(n);
            if self.flat_from(n) {
                // Every wait from here on is this one.
                return total + wait * f64::from(self.tries - n + 1);
            }
            total += wait;
        }
        total
    }

    /// Whether the waits stop growing at the n-th send.
    fn flat_from(&self, n: u32) -> bool {
        self.base <= 1.0 || (self.limit > 0 && self.wait(n) >= f64::from(self.limit))
    }

    /// The wait after the n-th send (`limit` 0 is no limit, as for charon).
    fn wait(&self, n: u32) -> f64 {
        let grown = self.timeout * self.base.powi(n as i32);
        match self.limit {
            0 => grown,
            limit => grown.min(f64::from(limit)),
        }
    }

    /// This schedule with as many more retransmits as it takes to keep asking for at
    /// least `seconds` (computed, not counted one by one: a DPD timeout may be years).
    pub fn covering(self, seconds: f64) -> Retransmit {
        let mut longer = self;
        let mut total = self.give_up_after();
        while total < seconds {
            let next = longer.wait(longer.tries.saturating_add(1));
            if next <= 0.0 || longer.tries == u32::MAX {
                break;
            }
            // Once waits stop growing, every further one is `next`.
            let steps = if longer.flat_from(longer.tries.saturating_add(1)) {
                ((seconds - total) / next).ceil().max(1.0)
            } else {
                1.0
            };
            longer.tries = longer
                .tries
                .saturating_add(steps.min(f64::from(u32::MAX)) as u32);
            total += steps * next;
        }
        longer
    }
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
            data_plane: DataPlane::Auto,
            resync_interval: 30,
            heartbeat_interval: 30,
            charon: PathBuf::from("/usr/lib/ipsec/charon"),
            retransmit: Retransmit::default(),
            driver: DriverKind::Strongswan,
            libreswan: LibreswanConfig::default(),
            fake_tunnel_delay_ms: None,
            ha: HaLiveness::default(),
        }
    }
}

impl AgentConfig {
    /// The namespace of a router.
    pub fn namespace(&self, router_id: &str) -> String {
        format!("{}{router_id}", self.namespace_prefix)
    }

    /// The directory of a router's files; its presence marks the router as this agent's.
    pub fn router_dir(&self, router_id: &str) -> PathBuf {
        self.state_dir.join(router_id)
    }

    /// The directory of one daemon of a router.
    pub fn daemon_dir(&self, router_id: &str, driver: DriverKind) -> PathBuf {
        self.router_dir(router_id).join(driver.as_str())
    }

    /// Resync period.
    pub fn resync(&self) -> Duration {
        Duration::from_secs(self.resync_interval.max(1))
    }

    /// Heartbeat period.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_interval.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_planes_are_spelled_as_the_settings_file_reads_them() {
        #[derive(Deserialize)]
        struct File {
            data_plane: DataPlane,
        }
        for plane in [DataPlane::Auto, DataPlane::Kernel, DataPlane::Userspace] {
            let file: File = toml::from_str(&format!("data_plane = \"{plane}\"")).expect("parses");
            assert_eq!(file.data_plane, plane);
        }
        assert!(toml::from_str::<File>("data_plane = \"kernal\"").is_err());
        assert_eq!(AgentConfig::default().data_plane, DataPlane::Auto);
    }

    #[test]
    fn the_retransmit_schedule_gives_up_as_documented() {
        assert_eq!(Retransmit::default().give_up_after(), 16.25);
        let strongswan = Retransmit {
            timeout: 4.0,
            tries: 5,
            base: 1.8,
            limit: u32::MAX,
        };
        assert!((strongswan.give_up_after() - 165.0).abs() < 0.5);
    }

    #[test]
    fn a_schedule_covering_a_long_dpd_timeout_keeps_asking_every_limit() {
        let long = Retransmit::default().covering(122.0);
        assert!(long.give_up_after() >= 122.0);
        assert!(long.give_up_after() < 122.0 + f64::from(long.limit));
        assert_eq!(
            long.wait(long.tries),
            10.0,
            "waits stop growing at the limit"
        );
        assert_eq!(Retransmit::default().covering(5.0), Retransmit::default());
        let years = Retransmit::default().covering(f64::from(i32::MAX));
        assert!(years.give_up_after() >= f64::from(i32::MAX));
    }
}
