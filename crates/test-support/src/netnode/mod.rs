//! A real Neutron network node of the test's own, host `hostA`: a userspace Open vSwitch
//! ([`Ovs`]) with the integration, external and tenant bridges, and the unmodified
//! `neutron-openvswitch-agent` and `neutron-l3-agent` of `.venv-neutron`, talking to a
//! lab's [`Neutron`] over its [`RabbitMq`]. The L3 agent builds the `qrouter-<id>`
//! namespaces of the routers Neutron schedules to it, with Neutron's own device names and
//! iptables rules. The external bridge holds [`EXTERNAL_HOST_ADDRESS`], the "upstream
//! router" of an external network on [`EXTERNAL_CIDR`].
//!
//! Root only. OVS bridges (TAP devices) and namespaces are machine-wide, so one network
//! node lab runs at a time on a machine (a file lock, [`host::lock`]; nextest's
//! `netnode` group). On drop, everything it started goes: agents, the processes they
//! detached (found by the lab's directory in their command line), the Neutron
//! namespaces made while it ran, the bridges, then Open vSwitch.

mod conf;
pub mod host;
mod ovs;

use std::fs::File;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

pub use conf::{EXTERNAL_BRIDGE, INTEGRATION_BRIDGE, TENANT_BRIDGE};
pub use ovs::Ovs;

use crate::neutron::{Neutron, tail};
use crate::process::Group;
use crate::rabbitmq::RabbitMq;

/// The node's host name, as its agents register in Neutron.
pub const HOST: &str = "hostA";
/// The external network tests create on physnet `public`, and the host's address on it.
pub const EXTERNAL_CIDR: &str = "100.127.4.0/24";
pub const EXTERNAL_HOST_ADDRESS: &str = "100.127.4.1";

/// A running network node. Drop order: [`Drop::drop`] (agents, Open vSwitch, detached
/// processes, namespaces), then the files, then the lock.
pub struct NetNode {
    l3_agent: Group,
    ovs_agent: Group,
    /// Its Open vSwitch (for `ovs-vsctl`: [`Ovs::vsctl`]).
    pub ovs: Ovs,
    /// How long it took from the start until Neutron listed both agents alive.
    pub bring_up: Duration,
    namespaces_before: Vec<String>,
    dir: tempfile::TempDir,
    _lock: File,
}

impl NetNode {
    /// Starts the node (waiting for the lock first) for `neutron`, whose bus is `bus`
    /// (`neutron` started with [`NeutronOptions::with_bus`](crate::neutron::NeutronOptions::with_bus)),
    /// and waits until Neutron lists both agents of [`HOST`] alive.
    ///
    /// # Panics
    /// When a bridge name is taken on the machine, or an agent exits or does not come
    /// up within 120 s.
    pub async fn start(neutron: &Neutron, bus: &RabbitMq) -> NetNode {
        let lock = host::lock();
        let started = Instant::now();
        let namespaces_before = host::namespaces();
        let dir = tempfile::tempdir().expect("tempdir");
        let ovs = start_switch(dir.path());
        let files = write_configs(dir.path(), &ovs, bus);
        let ovs_agent = agent(dir.path(), "neutron-openvswitch-agent", &files[1]);
        let l3_agent = agent(dir.path(), "neutron-l3-agent", &files[2]);
        let mut node = NetNode {
            l3_agent,
            ovs_agent,
            ovs,
            bring_up: Duration::ZERO,
            namespaces_before,
            dir,
            _lock: lock,
        };
        node.wait_for_agents(neutron).await;
        node.bring_up = started.elapsed();
        eprintln!("network node {HOST} up after {:?}", node.bring_up);
        node
    }

    /// The tail of an agent's log (`neutron-l3-agent`, `neutron-openvswitch-agent`).
    pub fn log(&self, agent: &str) -> String {
        tail(
            &std::fs::read_to_string(self.dir.path().join(format!("{agent}.log")))
                .unwrap_or_default(),
        )
    }

    /// The directory holding its files (configs, logs, `hostA/`, the agents' state path).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    async fn wait_for_agents(&mut self, neutron: &Neutron) {
        let started = Instant::now();
        loop {
            let agents = neutron
                .call(&neutron.admin, Method::GET, "/v2.0/agents", None)
                .await;
            if alive_agents(&agents.body).len() == 2 {
                return;
            }
            self.check_running();
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the agents of {HOST} are not alive: {}\nL3 agent: {}\nOVS agent: {}\nRPC server: {}",
                agents.body,
                self.log("neutron-l3-agent"),
                self.log("neutron-openvswitch-agent"),
                tail(&neutron.rpc_log())
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Panics (with its log) when an agent or Open vSwitch has exited.
    pub fn check_running(&mut self) {
        let exited = [
            ("neutron-l3-agent", self.l3_agent.exited()),
            ("neutron-openvswitch-agent", self.ovs_agent.exited()),
        ];
        for (name, status) in exited {
            if let Some(status) = status {
                panic!("{name} exited ({status}): {}", self.log(name));
            }
        }
        if let Some(status) = self.ovs.exited() {
            panic!(
                "Open vSwitch exited ({status}): {}",
                self.ovs.log("ovs-vswitchd")
            );
        }
    }
}

impl Drop for NetNode {
    fn drop(&mut self) {
        self.l3_agent.kill();
        self.ovs_agent.kill();
        // Open vSwitch first: its daemons name the lab's directory too, and must not be
        // killed before they have removed their devices.
        self.ovs.stop();
        host::kill_processes_naming(self.dir.path());
        for ns in host::namespaces() {
            if host::is_neutron_namespace(&ns) && !self.namespaces_before.contains(&ns) {
                host::delete_namespace(&ns);
            }
        }
    }
}

/// The agent types of [`HOST`] Neutron lists alive.
fn alive_agents(agents: &Value) -> Vec<String> {
    agents["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["host"] == HOST && a["alive"] == true)
        .filter_map(|a| a["agent_type"].as_str().map(str::to_string))
        .collect()
}

/// Open vSwitch with the three bridges, the external one holding the host's address.
fn start_switch(dir: &Path) -> Ovs {
    let mut ovs = Ovs::start(dir, HOST);
    for bridge in [INTEGRATION_BRIDGE, EXTERNAL_BRIDGE, TENANT_BRIDGE] {
        ovs.add_bridge(bridge);
    }
    let address = format!("{EXTERNAL_HOST_ADDRESS}/{}", prefix_len(EXTERNAL_CIDR));
    ip(&["addr", "replace", &address, "dev", EXTERNAL_BRIDGE]);
    ip(&["link", "set", EXTERNAL_BRIDGE, "up"]);
    ovs
}

fn prefix_len(cidr: &str) -> &str {
    cidr.split_once('/').map_or("32", |(_, len)| len)
}

fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().expect("ip");
    assert!(
        output.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes the node's files; returns `[neutron.conf, ovs_agent.ini, l3_agent.ini]`.
fn write_configs(dir: &Path, ovs: &Ovs, bus: &RabbitMq) -> [std::path::PathBuf; 3] {
    let transport_url = bus.transport_url();
    let venv = crate::neutron::venv();
    let node = conf::NodeConf {
        dir,
        host: HOST,
        transport_url: &transport_url,
        venv: &venv,
        ovs_run_dir: &ovs.run_dir,
        ovsdb_port: ovs.db_port,
        openflow_port: crate::free_port(),
    };
    for sub in [HOST, "lock"] {
        std::fs::create_dir_all(dir.join(sub)).expect("netnode dirs");
    }
    let files = [
        ("neutron.conf", conf::neutron(&node)),
        ("ovs_agent.ini", conf::ovs_agent(&node)),
        ("l3_agent.ini", conf::l3_agent(&node)),
    ];
    files.map(|(name, text)| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("netnode config file");
        path
    })
}

/// An agent of `.venv-neutron` on the node's `neutron.conf` and its own file, logging to
/// `<name>.log`, with `OVS_RUNDIR` for the Open vSwitch tools it runs itself.
fn agent(dir: &Path, name: &str, own_conf: &Path) -> Group {
    let bin = crate::neutron::venv().join("bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new(bin.join(name));
    command
        .env("PATH", path)
        .env("OVS_RUNDIR", dir.join("ovs"))
        .arg("--config-file")
        .arg(dir.join("neutron.conf"))
        .arg("--config-file")
        .arg(own_conf)
        .arg("--log-file")
        .arg(dir.join(format!("{name}.log")));
    Group::spawn(name, command, &dir.join(format!("{name}.out")))
}
