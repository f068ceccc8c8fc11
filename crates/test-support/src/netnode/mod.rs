//! A real Neutron network node of the test's own, host `hostA`: a userspace Open vSwitch
//! ([`Ovs`]) with the integration, external and tenant bridges, and the unmodified
//! `neutron-openvswitch-agent` and `neutron-l3-agent` of `.venv-neutron`, talking to a
//! lab's [`Neutron`] over its [`RabbitMq`]. The L3 agent builds the `qrouter-<id>`
//! namespaces of the routers Neutron schedules to it, with Neutron's own device names and
//! iptables rules. The external bridge holds [`EXTERNAL_HOST_ADDRESS`], the "upstream
//! router" of an external network on [`EXTERNAL_CIDR`].
//!
//! A second node, `hostC` ([`NetNode::start_second`]), runs the same on a simulated host
//! ([`Place`]): its own namespaces and Open vSwitch, its bridges cabled to hostA's external
//! and tenant bridges by veth pairs, RabbitMQ reached through a [`Forward`]. With both,
//! Neutron's HA routers run keepalived on the two nodes and fail over.
//!
//! Root only. OVS bridges (TAP devices) and namespaces are machine-wide, so one network
//! node lab runs at a time on a machine (a file lock, [`host::Hold`]; nextest's
//! `netnode` group). On drop, everything it started goes: agents, the processes they
//! detached (found by the lab's directory in their command line), the Neutron
//! namespaces made while it ran, the bridges, then Open vSwitch.
//!
//! hostA may also run neutron-vpnaas's own agent side ([`NetNode::start_with_neutron_vpnaas`]):
//! its L3 agent extension with the strongSwan driver inside neutron-l3-agent, which runs
//! an `ipsec` starter and charon in each router namespace holding a VPN service, until
//! [`NetNode::stop_neutron_vpnaas`] restarts the L3 agent without it (the state a
//! migration to vpnaas starts from).

mod conf;
mod forward;
pub mod host;
mod ovs;
mod place;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

pub use conf::{EXTERNAL_BRIDGE, INTEGRATION_BRIDGE, TENANT_BRIDGE};
pub use forward::Forward;
pub use ovs::Ovs;
pub use place::Place;

use crate::neutron::{Neutron, tail};
use crate::process::Group;
use crate::rabbitmq::RabbitMq;

/// The node's host name, as its agents register in Neutron.
pub const HOST: &str = "hostA";
/// The second node's.
pub const SECOND_HOST: &str = "hostC";
/// The second node's veth pairs to hostA's external and tenant bridges: (hostA's end,
/// hostC's end, hostA's bridge, hostC's bridge).
const CABLES: [(&str, &str, &str); 2] = [
    ("vpnaas-cex", "c-ex", EXTERNAL_BRIDGE),
    ("vpnaas-cph", "c-ph", TENANT_BRIDGE),
];
/// The external network tests create on physnet `public`, and the host's address on it.
pub const EXTERNAL_CIDR: &str = "100.127.4.0/24";
pub const EXTERNAL_HOST_ADDRESS: &str = "100.127.4.1";

/// A running network node. Drop order: [`Drop::drop`] (agents, Open vSwitch, detached
/// processes, namespaces), then the files, then the hold.
pub struct NetNode {
    /// Its host name (hostA or hostC).
    pub host: &'static str,
    l3_agent: Group,
    /// The L3 agent's own file (with or without neutron-vpnaas's extension).
    l3_conf: std::path::PathBuf,
    /// Whether neutron-vpnaas's extension ran here (its daemons then go on drop).
    neutron_vpnaas: bool,
    ovs_agent: Group,
    /// Its Open vSwitch (for `ovs-vsctl`: [`Ovs::vsctl`]).
    pub ovs: Ovs,
    /// How long it took from the start until Neutron listed both agents alive.
    pub bring_up: Duration,
    namespaces_before: Vec<String>,
    forwards: Vec<Forward>,
    place: Place,
    dir: tempfile::TempDir,
    /// The machine-wide hold, on the first node (the second runs under it).
    hold: Option<host::Hold>,
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
        NetNode::start_first(neutron, bus, false).await
    }

    /// As [`NetNode::start`], with neutron-vpnaas's L3 agent extension in neutron-l3-agent
    /// (the strongSwan driver; `neutron` must have the `vpnaas` service plugin, as the
    /// lab's Neutron has). neutron-vpnaas keeps each router's files under
    /// [`NetNode::neutron_vpnaas_dir`]; charon logs to `charon-<router>.log` in
    /// [`NetNode::dir`].
    ///
    /// # Panics
    /// As [`NetNode::start`].
    pub async fn start_with_neutron_vpnaas(neutron: &Neutron, bus: &RabbitMq) -> NetNode {
        NetNode::start_first(neutron, bus, true).await
    }

    async fn start_first(neutron: &Neutron, bus: &RabbitMq, neutron_vpnaas: bool) -> NetNode {
        let hold = host::Hold::take();
        let dir = tempfile::tempdir().expect("tempdir");
        hold.record(&host::Leftover::Dir(dir.path().to_path_buf()));
        let place = Place::Machine;
        let node = NetNode::boot(HOST, place, dir, Some(hold), bus, neutron_vpnaas, |_, _| {
            let address = format!("{EXTERNAL_HOST_ADDRESS}/{}", prefix_len(EXTERNAL_CIDR));
            ip(&["addr", "replace", &address, "dev", EXTERNAL_BRIDGE]);
            ip(&["link", "set", EXTERNAL_BRIDGE, "up"]);
            Vec::new()
        });
        node.up(neutron).await
    }

    /// Starts [`SECOND_HOST`] on a simulated host beside `first` (whose hold covers it),
    /// cabled to its external and tenant bridges, and waits until Neutron lists both of
    /// its agents alive.
    ///
    /// # Panics
    /// As [`NetNode::start`]; also when a cable's name is taken on the machine.
    pub async fn start_second(neutron: &Neutron, bus: &RabbitMq, first: &NetNode) -> NetNode {
        let dir = tempfile::tempdir().expect("tempdir");
        let tag = dir.path().file_name().expect("name").to_string_lossy()[4..].to_string();
        let netns = format!("vpnaas-hostc{tag}");
        let hold = first.hold.as_ref().expect("the first node holds the lab");
        hold.record(&host::Leftover::Dir(dir.path().to_path_buf()));
        hold.record(&host::Leftover::Namespace(netns.clone()));
        let place = Place::simulated(&netns, dir.path());
        let node = NetNode::boot(SECOND_HOST, place, dir, None, bus, false, |place, ovs| {
            let netns = place.netns().expect("simulated");
            for (outside, inside, bridge) in CABLES {
                ip(&[
                    "link", "add", outside, "type", "veth", "peer", "name", inside, "netns", netns,
                ]);
                ip(&["link", "set", outside, "up"]);
                place.exec(&["ip", "link", "set", inside, "up"]);
                first.ovs.vsctl(&["add-port", bridge, outside]);
                ovs.vsctl(&["add-port", bridge, inside]);
            }
            vec![Forward::start(netns, bus.port)]
        });
        node.up(neutron).await
    }

    /// Open vSwitch with the three bridges, then `prepare` (the cables, the forwards the
    /// agents need), the configuration files, and both agents started.
    fn boot(
        host: &'static str,
        place: Place,
        dir: tempfile::TempDir,
        hold: Option<host::Hold>,
        bus: &RabbitMq,
        neutron_vpnaas: bool,
        prepare: impl FnOnce(&Place, &mut Ovs) -> Vec<Forward>,
    ) -> NetNode {
        let started = Instant::now();
        let namespaces_before = host::namespaces();
        let mut ovs = Ovs::start(dir.path(), host, &place);
        for bridge in [INTEGRATION_BRIDGE, EXTERNAL_BRIDGE, TENANT_BRIDGE] {
            ovs.add_bridge(bridge);
        }
        let forwards = prepare(&place, &mut ovs);
        let files = write_configs(dir.path(), host, &ovs, bus, neutron_vpnaas);
        NetNode {
            host,
            ovs_agent: agent(&place, dir.path(), "neutron-openvswitch-agent", &files[1]),
            l3_agent: agent(&place, dir.path(), "neutron-l3-agent", &files[2]),
            l3_conf: files[2].clone(),
            neutron_vpnaas,
            ovs,
            bring_up: started.elapsed(),
            namespaces_before,
            forwards,
            place,
            dir,
            hold,
        }
    }

    /// Waits until Neutron lists both agents alive.
    async fn up(mut self, neutron: &Neutron) -> NetNode {
        let started = Instant::now() - self.bring_up;
        self.wait_for_agents(neutron).await;
        self.bring_up = started.elapsed();
        eprintln!("network node {} up after {:?}", self.host, self.bring_up);
        self
    }

    /// Stops neutron-l3-agent (SIGKILL, as a crash) and starts it again on the same
    /// files; it rebuilds its routers' rules as on any restart.
    pub fn restart_l3_agent(&mut self) {
        self.l3_agent.kill();
        self.l3_agent = agent(
            &self.place,
            self.dir.path(),
            "neutron-l3-agent",
            &self.l3_conf,
        );
    }

    /// Restarts neutron-l3-agent (as [`NetNode::restart_l3_agent`]) without
    /// neutron-vpnaas's extension. Its daemons, detached, keep running.
    pub fn stop_neutron_vpnaas(&mut self) {
        self.l3_conf = self.dir.path().join("l3_agent.ini");
        self.restart_l3_agent();
    }

    /// Where neutron-vpnaas keeps a directory per router (`[ipsec] config_base_dir`).
    pub fn neutron_vpnaas_dir(&self) -> std::path::PathBuf {
        self.dir.path().join(self.host).join("ipsec")
    }

    /// Makes the machine's loopback port `port` reachable on this node's loopback (on
    /// hostA it is already).
    pub fn reach(&mut self, port: u16) {
        if let Some(netns) = self.place.netns() {
            self.forwards.push(Forward::start(netns, port));
        }
    }

    /// A command running `program` on this node.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.place.command(program)
    }

    /// Runs `args` in namespace `ns` of this node (`ip netns exec`) and returns its output.
    ///
    /// # Panics
    /// When it fails.
    pub fn netns_exec(&self, ns: &str, args: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(args);
        self.place.exec(&full)
    }

    /// The network namespaces of this node.
    pub fn namespaces(&self) -> Vec<String> {
        host::namespace_names(&self.place.exec(&["ip", "netns", "list"]))
    }

    /// The pids of the processes in namespace `ns` of this node (none when it is gone).
    pub fn pids_in(&self, ns: &str) -> Vec<u32> {
        self.command("ip")
            .args(["netns", "pids", ns])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Turns TX checksum offload off on every veth in namespace `ns` of this node (see
    /// [`host::without_tx_offload`]).
    pub fn without_tx_offload(&self, ns: &str) {
        host::without_tx_offload(&self.place, ns);
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
            if alive_agents(&agents.body, self.host).len() == 2 {
                return;
            }
            self.check_running();
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the agents of {} are not alive: {}\nL3 agent: {}\nOVS agent: {}\nRPC server: {}",
                self.host,
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
        self.forwards.clear();
        // A simulated host's namespaces live in its own registry and go with it.
        self.place.end();
        for ns in host::namespaces() {
            if host::is_neutron_namespace(&ns) && !self.namespaces_before.contains(&ns) {
                if self.neutron_vpnaas {
                    // neutron-vpnaas's starter and charon, which name no file of the lab.
                    for pid in self.pids_in(&ns) {
                        let _ = Command::new("kill")
                            .args(["-KILL", &pid.to_string()])
                            .output();
                    }
                }
                host::delete_namespace(&ns);
            }
        }
        for (outside, _, _) in CABLES.into_iter().filter(|_| self.host == SECOND_HOST) {
            let _ = Command::new("ip")
                .args(["link", "delete", outside])
                .output();
        }
    }
}

/// The agent types of `host` Neutron lists alive.
fn alive_agents(agents: &Value, host: &str) -> Vec<String> {
    agents["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["host"] == host && a["alive"] == true)
        .filter_map(|a| a["agent_type"].as_str().map(str::to_string))
        .collect()
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

/// Writes the node's files; returns `[neutron.conf, ovs_agent.ini, l3_agent.ini]` (the
/// last with neutron-vpnaas's extension when `neutron_vpnaas`, beside the plain one).
fn write_configs(
    dir: &Path,
    host: &str,
    ovs: &Ovs,
    bus: &RabbitMq,
    neutron_vpnaas: bool,
) -> [std::path::PathBuf; 3] {
    let transport_url = bus.transport_url();
    let venv = crate::neutron::venv();
    let node = conf::NodeConf {
        dir,
        host,
        transport_url: &transport_url,
        venv: &venv,
        ovs_run_dir: &ovs.run_dir,
        ovsdb_port: ovs.db_port,
        openflow_port: crate::free_port(),
    };
    for sub in [host, "lock"] {
        std::fs::create_dir_all(dir.join(sub)).expect("netnode dirs");
    }
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("netnode config file");
        path
    };
    let mut files = [
        write("neutron.conf", conf::neutron(&node)),
        write("ovs_agent.ini", conf::ovs_agent(&node)),
        write("l3_agent.ini", conf::l3_agent(&node)),
    ];
    if neutron_vpnaas {
        let with = conf::l3_agent(&node) + &conf::neutron_vpnaas_extension(&node);
        files[2] = write("l3_agent_neutron_vpnaas.ini", with);
        write("neutron-rootwrap.conf", conf::rootwrap(&node));
        write(
            "strongswan.conf.template",
            conf::neutron_vpnaas_strongswan(&node),
        );
        let helper = write("root-helper", conf::root_helper_script(&node));
        use std::os::unix::fs::PermissionsExt;
        let executable = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(helper, executable).expect("root helper mode");
    }
    files
}

/// An agent of `.venv-neutron` at `place` on the node's `neutron.conf` and its own file,
/// logging to `<name>.log`, with `OVS_RUNDIR` for the Open vSwitch tools it runs itself.
fn agent(place: &Place, dir: &Path, name: &str, own_conf: &Path) -> Group {
    let bin = crate::neutron::venv().join("bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = place.command(bin.join(name));
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
