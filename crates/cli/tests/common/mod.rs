//! The lab the end-to-end tests share: sites in network namespaces with a `vpnaas` server
//! and agents of the test's own (all-in-one, separate over HTTP, over NATS, several gateway
//! hosts), helpers to ping through tunnels and read daemons, and the clean-up of everything
//! a test started, even when it fails. Needs root (CI runs as root); without it the tests
//! fail and say why. Every name carries a random prefix, and only the processes a test
//! started are killed, by pid.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vpnaas_client::Client;
use vpnaas_model::Kind;
pub use vpnaas_test_support::nats::NatsServer;

/// How server and agent run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `vpnaas all-in-one`: one process, in-process bus.
    AllInOne,
    /// `vpnaas server` and `vpnaas agent --server URL`: two processes, bus over HTTP.
    Separate,
    /// `vpnaas server --bus` and `vpnaas agent --bus`: two processes and a nats-server of
    /// the lab's own.
    Nats,
    /// `vpnaas server` (agents dead after 3 s without a heartbeat) and this many agents
    /// beating every second, each a gateway host of its own: the first as in `Separate`,
    /// the second with host `<prefix>-2`, namespaces `<prefix>-s-…` and state directory
    /// `state2`, the third `<prefix>-3`, `<prefix>-t-…`, `state3`.
    Agents(usize),
    /// `vpnaas server` as in `Agents`, and no agent: `lab up --agents N --ha` starts this
    /// many gateway hosts of the lab's own.
    LabGateways(usize),
}

/// The unmanaged site's gateway address (`lab unmanaged up`; the lab's routers take
/// theirs from .2 up) and its network.
pub const FAR_ADDRESS: &str = "203.0.113.200";
pub const FAR_CIDR: &str = "10.200.0.0/24";

pub struct Lab {
    pub prefix: String,
    pub fabric: String,
    pub url: String,
    pub client: Client,
    /// Where the agent's own `/metrics` is (the separate agent); all-in-one serves the
    /// agent's metrics with the server's at `url`.
    pub agent_metrics: String,
    /// The lab's nats-server and its port (mode `Nats`).
    pub nats: Option<NatsServer>,
    pub processes: Vec<Child>,
    /// How each process was started, to restart it.
    pub commands: Vec<(Vec<String>, String)>,
    pub _dir: tempfile::TempDir,
    pub sites: Vec<Value>,
}

pub fn spawn_vpnaas(args: &[String], log: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log");
    Command::new(env!("CARGO_BIN_EXE_vpnaas"))
        .args(args)
        .env("VPNAAS_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start vpnaas")
}

pub fn require_root() {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
        });
    assert_eq!(
        uid.as_deref(),
        Some("0"),
        "this end-to-end test needs root (namespaces, charon); run it as root"
    );
}

pub fn vpnaas(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vpnaas"))
        .args(args)
        .env("VPNAAS_URL", url)
        .output()
        .expect("run vpnaas")
}

impl Lab {
    pub async fn start(sites: u8) -> Lab {
        Lab::start_as(sites, Mode::AllInOne).await
    }

    pub async fn start_as(sites: u8, mode: Mode) -> Lab {
        Lab::start_with(sites, mode, &[]).await
    }

    /// A lab whose agent gets `agent_args` too.
    pub async fn start_with(sites: u8, mode: Mode, agent_args: &[&str]) -> Lab {
        require_root();
        let tag: String = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .chars()
            .take(6)
            .collect();
        let prefix = format!("ve{tag}");
        let fabric = format!("{prefix}-fabric");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let listen = format!("127.0.0.1:{port}");
        let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let metrics_listen = format!("127.0.0.1:{metrics_port}");
        let nats = (mode == Mode::Nats).then(NatsServer::start);
        let bus = nats.as_ref().map(NatsServer::url).unwrap_or_default();
        let data = dir.path().join("data").to_string_lossy().into_owned();
        let agent_of = |host: String, namespaces: &str, state: &str| -> Vec<String> {
            let state = dir.path().join(state).to_string_lossy().into_owned();
            ["--host", host.as_str(), "--state-dir", state.as_str()]
                .into_iter()
                .map(String::from)
                .chain([
                    "--namespace-prefix".into(),
                    format!("{prefix}-{namespaces}-"),
                    "--fabric-namespace".into(),
                    fabric.clone(),
                ])
                .chain(agent_args.iter().map(|a| a.to_string()))
                .collect()
        };
        let agent = agent_of(prefix.clone(), "r", "state");
        let with = |head: &[&str], tail: &[String]| {
            head.iter()
                .map(|s| s.to_string())
                .chain(tail.iter().cloned())
                .collect::<Vec<_>>()
        };
        let commands: Vec<(Vec<String>, String)> = match mode {
            Mode::AllInOne => vec![(
                with(
                    &["all-in-one", "--listen", &listen, "--data-dir", &data],
                    &agent,
                ),
                "aio.log".into(),
            )],
            Mode::Separate => vec![
                (
                    with(&["server", "--listen", &listen, "--data-dir", &data], &[]),
                    "server.log".into(),
                ),
                (
                    with(
                        &[
                            "agent",
                            "--server",
                            &url,
                            "--metrics-listen",
                            &metrics_listen,
                        ],
                        &agent,
                    ),
                    "agent.log".into(),
                ),
            ],
            Mode::LabGateways(_) => vec![(
                with(
                    &[
                        "server",
                        "--listen",
                        &listen,
                        "--data-dir",
                        &data,
                        "--agent-down-time",
                        "3",
                    ],
                    &[],
                ),
                "server.log".into(),
            )],
            Mode::Agents(count) => {
                let server = with(
                    &[
                        "server",
                        "--listen",
                        &listen,
                        "--data-dir",
                        &data,
                        "--agent-down-time",
                        "3",
                    ],
                    &[],
                );
                let agents = (1..=count).map(|n| {
                    let own = match n {
                        1 => agent.clone(),
                        _ => agent_of(
                            format!("{prefix}-{n}"),
                            ["r", "s", "t", "u"][n - 1],
                            &format!("state{n}"),
                        ),
                    };
                    let log = match n {
                        1 => "agent.log".to_string(),
                        _ => format!("agent{n}.log"),
                    };
                    (
                        with(
                            &[
                                "agent",
                                "--server",
                                &url,
                                "--resync-interval",
                                "1",
                                "--heartbeat-interval",
                                "1",
                                "--ha-listen",
                                "127.0.0.1:0",
                            ],
                            &own,
                        ),
                        log,
                    )
                });
                std::iter::once((server, "server.log".to_string()))
                    .chain(agents)
                    .collect()
            }
            Mode::Nats => vec![
                (
                    with(
                        &[
                            "server",
                            "--listen",
                            &listen,
                            "--data-dir",
                            &data,
                            "--bus",
                            &bus,
                        ],
                        &[],
                    ),
                    "server.log".into(),
                ),
                (
                    with(
                        &["agent", "--bus", &bus, "--metrics-listen", &metrics_listen],
                        &agent,
                    ),
                    "agent.log".into(),
                ),
            ],
        };
        let processes = commands
            .iter()
            .map(|(args, log)| spawn_vpnaas(args, &dir.path().join(log)))
            .collect();
        let client = Client::new(&url);
        let agent_metrics = match mode {
            Mode::AllInOne => url.clone(),
            Mode::Separate | Mode::Nats | Mode::Agents(_) | Mode::LabGateways(_) => {
                format!("http://{metrics_listen}")
            }
        };
        let mut lab = Lab {
            prefix,
            fabric,
            url,
            client,
            agent_metrics,
            nats,
            processes,
            commands,
            _dir: dir,
            sites: vec![],
        };
        lab.wait_for_api().await;
        let mut lab_up_extra = vec![];
        match mode {
            Mode::LabGateways(count) => {
                lab_up_extra = vec!["--agents".to_string(), count.to_string(), "--ha".into()];
            }
            _ => lab.wait_for_agent().await,
        }
        if let Mode::Agents(count) = mode {
            for n in 2..=count {
                lab.wait_for_host(&format!("{}-{n}", lab.prefix), true)
                    .await;
            }
        }
        let out = vpnaas(
            &lab.url,
            &[
                "-f",
                "json",
                "lab",
                "up",
                "--sites",
                &sites.to_string(),
                "--prefix",
                &lab.prefix,
                "--fabric-namespace",
                &lab.fabric,
            ]
            .into_iter()
            .chain(lab_up_extra.iter().map(String::as_str))
            .collect::<Vec<_>>(),
        );
        assert!(
            out.status.success(),
            "lab up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lab.sites = serde_json::from_slice(&out.stdout).expect("lab up -f json");
        lab
    }

    pub async fn wait_for_api(&self) {
        for _ in 0..200 {
            if self.client.list(Kind::Network, &[]).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("all-in-one did not answer");
    }

    /// Waits until the agent on `host` is (or is no longer) alive; returns its document.
    pub async fn wait_for_host(&self, host: &str, alive: bool) -> Value {
        for _ in 0..400 {
            let agents = self.client.list(Kind::Agent, &[]).await.expect("agents");
            if let Some(agent) = agents
                .into_iter()
                .find(|a| a["host"] == host && a["alive"] == alive)
            {
                return agent;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("agent {host} is not alive={alive} after 10 s");
    }

    pub async fn wait_for_agent(&self) {
        for _ in 0..200 {
            let agents = self.client.list(Kind::Agent, &[]).await.expect("agents");
            if agents
                .iter()
                .any(|a| a["host"] == self.prefix.as_str() && a["alive"] == true)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the agent did not register");
    }

    pub fn site(&self, n: usize) -> &Value {
        &self.sites[n - 1]
    }

    pub async fn policies(&self, ike: Value, ipsec: Value) -> (String, String) {
        let ike = self
            .client
            .create(Kind::IkePolicy, ike)
            .await
            .expect("ike policy");
        let ipsec = self
            .client
            .create(Kind::IpsecPolicy, ipsec)
            .await
            .expect("ipsec policy");
        (id(&ike), id(&ipsec))
    }

    /// A `cert` connection (IKEv2, PFS group14) from site 1 to the unmanaged site at
    /// [`FAR_ADDRESS`], whose identity is `@far.example`; its id.
    pub async fn cert_connection_to_the_far_end(&self) -> String {
        let policies = self
            .policies(json!({"ike_version": "v2"}), json!({"pfs": "group14"}))
            .await;
        let service = self.service(1).await;
        let conn = self
            .client
            .create(
                Kind::SiteConnection,
                json!({"name": "to-unmanaged", "vpnservice_id": service, "ikepolicy_id": policies.0,
                       "ipsecpolicy_id": policies.1, "peer_address": FAR_ADDRESS, "peer_id": "@far.example",
                       "auth_mode": "cert", "peer_cidrs": [FAR_CIDR],
                       "dpd": {"action": "restart", "interval": 5, "timeout": 20}}),
            )
            .await
            .expect("cert connection");
        conn["id"].as_str().expect("id").to_string()
    }

    pub async fn service(&self, site: usize) -> String {
        self.service_of_flavor(site, None).await
    }

    /// A VPN service on a site's router, of a flavor (its driver) or the default.
    pub async fn service_of_flavor(&self, site: usize, flavor: Option<&str>) -> String {
        let s = self.site(site);
        let svc = self
            .client
            .create(
                Kind::VpnService,
                json!({"router_id": s["router_id"], "subnet_id": s["subnet_id"], "flavor_id": flavor}),
            )
            .await
            .expect("service");
        id(&svc)
    }

    /// A flavor whose services run on Libreswan (profile, flavor, association).
    pub async fn libreswan_flavor(&self) -> String {
        let profile = self
            .client
            .create(Kind::ServiceProfile, json!({"driver": "libreswan"}))
            .await
            .expect("profile");
        let flavor = self
            .client
            .create(
                Kind::Flavor,
                json!({"name": "libreswan", "service_type": "VPN"}),
            )
            .await
            .expect("flavor");
        self.client
            .associate_profile(&id(&flavor), &id(&profile))
            .await
            .expect("associate");
        id(&flavor)
    }

    pub async fn connect(
        &self,
        service: &str,
        from: usize,
        to: usize,
        policies: &(String, String),
        psk: &str,
    ) -> String {
        self.connect_as(service, (from, to), policies, psk, "bi-directional")
            .await
    }

    /// A connection `from` → `to` that starts negotiations as `initiator` says.
    pub async fn connect_as(
        &self,
        service: &str,
        (from, to): (usize, usize),
        policies: &(String, String),
        psk: &str,
        initiator: &str,
    ) -> String {
        let peer = self.site(to);
        let conn = self
            .client
            .create(
                Kind::SiteConnection,
                json!({"name": format!("{from}-to-{to}"), "vpnservice_id": service, "ikepolicy_id": policies.0,
                       "ipsecpolicy_id": policies.1, "peer_address": peer["gateway_ip"], "peer_id": peer["gateway_ip"],
                       "psk": psk, "peer_cidrs": [peer["cidr"]], "dpd": {"action": "restart", "interval": 5, "timeout": 20},
                       "initiator": initiator}),
            )
            .await
            .expect("connection");
        id(&conn)
    }

    /// Waits until a connection reports `reason`; returns its events then.
    pub async fn wait_reason(&self, conn: &str, reason: &str, within: Duration) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let shown = self
                .client
                .show(Kind::SiteConnection, conn)
                .await
                .expect("show");
            if shown["status_reason"] == reason {
                return self.events(conn).await;
            }
            assert!(
                started.elapsed() < within,
                "connection {conn} does not report {reason} after {within:?}: {shown}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A connection's status events, oldest first.
    pub async fn events(&self, conn: &str) -> Vec<Value> {
        let events = self
            .client
            .get(&format!("/v2.0/vpn/ipsec-site-connections/{conn}/events"))
            .await
            .expect("events");
        events["events"].as_array().cloned().unwrap_or_default()
    }

    /// The events of a connection after the first `skip`, as `FROM>TO REASON`.
    pub async fn events_since(&self, conn: &str, skip: usize) -> Vec<String> {
        self.events(conn)
            .await
            .iter()
            .skip(skip)
            .map(|e| format!("{}>{} {}", e["from"], e["to"], e["reason"]).replace('"', ""))
            .collect()
    }

    /// Waits until the connection's `key_rotation[field]` reaches `generation`; returns the
    /// connection then.
    pub async fn wait_rotation(&self, conn: &str, field: &str, generation: u64) -> Value {
        let started = Instant::now();
        loop {
            let shown = self
                .client
                .show(Kind::SiteConnection, conn)
                .await
                .expect("show");
            if shown["key_rotation"][field].as_u64() >= Some(generation) {
                return shown;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{conn}: key_rotation.{field} is not {generation} after 20 s: {shown}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What one of the lab's processes logged so far (`aio.log`, `server.log`, …).
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self._dir.path().join(name)).unwrap_or_default()
    }

    pub async fn wait_status(&self, conn: &str, wanted: &str, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let status = self
                .client
                .show(Kind::SiteConnection, conn)
                .await
                .expect("show")["status"]
                .as_str()
                .unwrap_or("")
                .to_string();
            if status == wanted {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "connection {conn} is {status}, not {wanted}, after {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn ping(&self, from: usize, to: usize) -> bool {
        let target = self.site(to)["host_ip"]
            .as_str()
            .expect("host ip")
            .to_string();
        let out = vpnaas(
            &self.url,
            &[
                "lab",
                "exec",
                &from.to_string(),
                "--prefix",
                &self.prefix,
                "--",
                "ping",
                "-c",
                "2",
                "-i",
                "0.2",
                "-W",
                "1",
                &target,
            ],
        );
        out.status.success()
    }

    pub fn namespaces(&self) -> Vec<String> {
        std::fs::read_dir("/run/netns")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect::<Vec<String>>()
            })
            .unwrap_or_default()
            .into_iter()
            .filter(|n: &String| n.starts_with(&self.prefix))
            .collect()
    }

    /// Runs `vpnaas lab ARGS…` on this lab (its prefix and fabric) and checks it succeeded.
    pub fn lab_command(&self, args: &[&str]) {
        let lab_args = ["--prefix", &self.prefix, "--fabric-namespace", &self.fabric];
        let all: Vec<&str> = ["lab"]
            .iter()
            .chain(args)
            .chain(&lab_args)
            .copied()
            .collect();
        let out = vpnaas(&self.url, &all);
        assert!(
            out.status.success(),
            "vpnaas {}: {}",
            all.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Where `lab up --agents` keeps its gateway hosts' pid files.
    pub fn lab_gateway_dir(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("vpnaas-lab-{}", self.prefix))
    }

    /// The pids of the gateway hosts `lab up --agents` started that still run as such.
    pub fn lab_gateway_pids(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.lab_gateway_dir()) else {
            return vec![];
        };
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".pid"))
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .map(|pid| pid.trim().to_string())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&self.prefix))
            })
            .collect()
    }

    pub fn router_namespace(&self, site: usize) -> String {
        format!(
            "{}-r-{}",
            self.prefix,
            self.site(site)["router_id"].as_str().expect("router")
        )
    }
}

impl Lab {
    /// Kills the processes this test started (server, agents, nats-server), by pid.
    pub fn kill_processes(&mut self) {
        for process in self.processes.iter_mut() {
            let _ = process.kill();
            let _ = process.wait();
        }
        self.nats = None;
    }
}

impl Drop for Lab {
    /// Stops what this test started, by pid: the all-in-one process, then every process
    /// left in this lab's namespaces (its charons), then the namespaces.
    fn drop(&mut self) {
        self.kill_processes();
        for pid in self.lab_gateway_pids() {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
        let _ = std::fs::remove_dir_all(self.lab_gateway_dir());
        for namespace in self.namespaces() {
            let pids = Command::new("ip")
                .args(["netns", "pids", &namespace])
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default();
            for pid in String::from_utf8_lossy(&pids).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).status();
            }
            let _ = Command::new("ip")
                .args(["netns", "del", &namespace])
                .status();
        }
    }
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// The kernel's refusal of an ESP SA, as the agent's probe hears it. The data plane tests
/// are about kernels without ESP, as these machines' and CI's.
pub async fn kernel_esp_refusal() -> String {
    require_root();
    match vpnaas_agent::data_plane::probe().await {
        vpnaas_agent::data_plane::KernelEsp::Refused(message) => message,
        other => panic!("this test is about a kernel without ESP (as CI's); this one: {other:?}"),
    }
}

/// Pings from a site's host at 20 packets/s in the background; `finish` returns
/// (sent, received).
pub struct Pinger {
    pub child: Child,
}

impl Pinger {
    pub fn start(lab: &Lab, from: usize, to: usize, seconds: u32) -> Pinger {
        let target = lab.site(to)["host_ip"]
            .as_str()
            .expect("host ip")
            .to_string();
        let namespace = lab.site(from)["host_namespace"]
            .as_str()
            .expect("ns")
            .to_string();
        let count = (seconds * 20).to_string();
        // A reply that is late is not lost: on a busy machine the userspace data plane
        // can take a second to answer, and ping stops waiting for the last replies
        // after `-W` seconds.
        let child = Command::new("ip")
            .args([
                "netns", "exec", &namespace, "ping", "-q", "-i", "0.05", "-c", &count, "-W", "3",
                &target,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ping");
        Pinger { child }
    }

    /// A ping like [`Pinger::start`] that prints each reply with its time (`ping -D`), so
    /// [`Pinger::finish_timed`] can tell the longest silence.
    pub fn timed(lab: &Lab, from: usize, to: usize, seconds: u32) -> Pinger {
        let target = lab.site(to)["host_ip"]
            .as_str()
            .expect("host ip")
            .to_string();
        let namespace = lab.site(from)["host_namespace"]
            .as_str()
            .expect("ns")
            .to_string();
        let count = (seconds * 20).to_string();
        let child = Command::new("ip")
            .args([
                "netns", "exec", &namespace, "ping", "-D", "-i", "0.05", "-c", &count, "-W", "3",
                &target,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ping");
        Pinger { child }
    }

    pub fn finish(self) -> (u32, u32) {
        let text = self.output();
        summary(&text)
    }

    /// Sent, received, and the longest time between two replies in a row (a [`Pinger::timed`]).
    pub fn finish_timed(self) -> (u32, u32, Duration) {
        let text = self.output();
        let (sent, received) = summary(&text);
        let times: Vec<f64> = text
            .lines()
            .filter(|l| l.contains("bytes from"))
            .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
            .collect();
        let longest = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        (sent, received, Duration::from_secs_f64(longest))
    }

    fn output(self) -> String {
        let out = self.child.wait_with_output().expect("ping output");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Transmitted and received of ping's summary.
fn summary(text: &str) -> (u32, u32) {
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_default();
    let number = |word: &str| {
        line.split(',')
            .find(|p| p.contains(word))
            .and_then(|p| p.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (number("transmitted"), number("received"))
}

pub fn charon_pid(lab: &Lab, site: usize) -> String {
    let router = lab.site(site)["router_id"].as_str().expect("router");
    std::fs::read_to_string(
        lab._dir
            .path()
            .join("state")
            .join(router)
            .join("strongswan/run/charon.pid"),
    )
    .expect("pid file")
    .trim()
    .to_string()
}

impl Lab {
    /// Kills the process that runs the agent (all-in-one, or the separate agent) without
    /// warning, and starts it again the same way.
    pub fn restart_agent(&mut self) {
        let last = self.processes.len() - 1;
        self.kill_process(last);
        self.start_process(last);
    }

    /// The last `lines` lines of the logs of the lab's vpnaas processes.
    pub fn log_tail(&self, lines: usize) -> String {
        self.commands
            .iter()
            .map(|(_, log)| {
                let text = std::fs::read_to_string(self._dir.path().join(log)).unwrap_or_default();
                let all: Vec<&str> = text.lines().collect();
                format!(
                    "== {log}\n{}",
                    all[all.len().saturating_sub(lines)..].join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// SIGKILL of one of the lab's vpnaas processes (0 is the server).
    pub fn kill_process(&mut self, index: usize) {
        let _ = self.processes[index].kill();
        let _ = self.processes[index].wait();
    }

    /// Starts a killed process again, as it was started first.
    pub fn start_process(&mut self, index: usize) {
        let (args, log) = self.commands[index].clone();
        self.processes[index] = spawn_vpnaas(&args, &self._dir.path().join(log));
    }

    /// The lines of a `/metrics` page.
    pub async fn metrics(&self, base: &str) -> Vec<String> {
        Client::new(base)
            .get_text("/metrics")
            .await
            .expect("metrics")
            .lines()
            .map(String::from)
            .collect()
    }

    /// Waits until a `/metrics` page holds `line`.
    pub async fn wait_metric(&self, base: &str, line: &str, within: Duration) {
        let started = Instant::now();
        loop {
            let lines = self.metrics(base).await;
            if lines.iter().any(|l| l == line) {
                return;
            }
            assert!(
                started.elapsed() < within,
                "no `{line}` at {base}/metrics after {within:?}:\n{}",
                lines.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn packets_out(&self, conn: &str) -> u64 {
        self.client
            .show(Kind::SiteConnection, conn)
            .await
            .expect("show")["traffic"]["packets_out"]
            .as_u64()
            .unwrap_or(0)
    }
}

/// One ping from a site's host with a 200 ms deadline.
pub fn ping_once(lab: &Lab, from: usize, to: usize) -> bool {
    let target = lab.site(to)["host_ip"]
        .as_str()
        .expect("host ip")
        .to_string();
    let namespace = lab.site(from)["host_namespace"]
        .as_str()
        .expect("ns")
        .to_string();
    Command::new("ip")
        .args([
            "netns", "exec", &namespace, "ping", "-c", "1", "-W", "0.2", &target,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Pings until one passes; the time it took.
pub fn until_ping(lab: &Lab, from: usize, to: usize, within: Duration) -> Duration {
    let started = Instant::now();
    while !ping_once(lab, from, to) {
        assert!(
            started.elapsed() < within,
            "no ping from site {from} to {to} within {within:?}"
        );
    }
    started.elapsed()
}

/// Kills every process in the namespaces whose names start with `prefix` and deletes the
/// namespaces: what a gateway host's power cut does to its routers.
pub fn power_off(prefix: &str) {
    let namespaces: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default();
    for namespace in namespaces {
        let pids = Command::new("ip")
            .args(["netns", "pids", &namespace])
            .output()
            .expect("ip");
        for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &namespace])
            .status();
    }
}

/// The names of the processes running in a namespace.
fn processes_in(namespace: &str) -> Vec<String> {
    let pids = Command::new("ip")
        .args(["netns", "pids", namespace])
        .output()
        .expect("ip");
    String::from_utf8_lossy(&pids.stdout)
        .split_whitespace()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok())
        .map(|name| name.trim().to_string())
        .collect()
}

/// The pids of the IKE daemons (charon, its starter, pluto) in a namespace.
pub fn daemon_pids(namespace: &str) -> Vec<u32> {
    let pids = Command::new("ip")
        .args(["netns", "pids", namespace])
        .output()
        .expect("ip");
    String::from_utf8_lossy(&pids.stdout)
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|name| matches!(name.trim(), "charon" | "starter" | "pluto"))
        })
        .collect()
}

/// Whether any process runs in a namespace.
pub fn runs_anything(namespace: &str) -> bool {
    !processes_in(namespace).is_empty()
}

/// Whether an IKE daemon (charon, its starter, pluto) runs in a namespace. The agent's own
/// short commands there (`nft -f`, `arping`) come and go and are not daemons.
pub fn runs_a_daemon(namespace: &str) -> bool {
    processes_in(namespace)
        .iter()
        .any(|name| matches!(name.as_str(), "charon" | "starter" | "pluto"))
}
