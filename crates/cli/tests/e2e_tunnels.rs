//! End to end on real strongSwan: `vpnaas all-in-one` (server + agent, on the data plane
//! it chooses: userspace ESP on these kernels, which have none) and `vpnaas lab` build sites in network namespaces; connections created through the API
//! become real tunnels carrying real pings, and their status says so. Needs root (CI runs
//! as root); without it these tests fail and say why. Every name carries a random prefix,
//! and everything started is removed, even when a test fails.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vpnaas_client::Client;
use vpnaas_model::Kind;

/// How server and agent run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
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

struct Lab {
    prefix: String,
    fabric: String,
    url: String,
    client: Client,
    /// Where the agent's own `/metrics` is (the separate agent); all-in-one serves the
    /// agent's metrics with the server's at `url`.
    agent_metrics: String,
    /// The lab's nats-server and its port (mode `Nats`).
    nats: Option<(Child, u16)>,
    processes: Vec<Child>,
    /// How each process was started, to restart it.
    commands: Vec<(Vec<String>, String)>,
    _dir: tempfile::TempDir,
    sites: Vec<Value>,
}

fn spawn_vpnaas(args: &[String], log: &std::path::Path) -> Child {
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port()
}

/// A nats-server of the test's own on `port`, ready.
fn start_nats(port: u16) -> (Child, u16) {
    let child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server (scripts/setup.sh installs it)");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, port)
}

fn require_root() {
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

fn vpnaas(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vpnaas"))
        .args(args)
        .env("VPNAAS_URL", url)
        .output()
        .expect("run vpnaas")
}

impl Lab {
    async fn start(sites: u8) -> Lab {
        Lab::start_as(sites, Mode::AllInOne).await
    }

    async fn start_as(sites: u8, mode: Mode) -> Lab {
        Lab::start_with(sites, mode, &[]).await
    }

    /// A lab whose agent gets `agent_args` too.
    async fn start_with(sites: u8, mode: Mode, agent_args: &[&str]) -> Lab {
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
        let nats = (mode == Mode::Nats).then(|| start_nats(free_port()));
        let bus = nats
            .as_ref()
            .map(|(_, port)| format!("nats://127.0.0.1:{port}"))
            .unwrap_or_default();
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

    async fn wait_for_api(&self) {
        for _ in 0..200 {
            if self.client.list(Kind::Network, &[]).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("all-in-one did not answer");
    }

    /// Waits until the agent on `host` is (or is no longer) alive; returns its document.
    async fn wait_for_host(&self, host: &str, alive: bool) -> Value {
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

    async fn wait_for_agent(&self) {
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

    fn site(&self, n: usize) -> &Value {
        &self.sites[n - 1]
    }

    async fn policies(&self, ike: Value, ipsec: Value) -> (String, String) {
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

    async fn service(&self, site: usize) -> String {
        self.service_of_flavor(site, None).await
    }

    /// A VPN service on a site's router, of a flavor (its driver) or the default.
    async fn service_of_flavor(&self, site: usize, flavor: Option<&str>) -> String {
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
    async fn libreswan_flavor(&self) -> String {
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

    async fn connect(
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
    async fn connect_as(
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
    async fn wait_reason(&self, conn: &str, reason: &str, within: Duration) -> Vec<Value> {
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
    async fn events(&self, conn: &str) -> Vec<Value> {
        let events = self
            .client
            .get(&format!("/v2.0/vpn/ipsec-site-connections/{conn}/events"))
            .await
            .expect("events");
        events["events"].as_array().cloned().unwrap_or_default()
    }

    /// What one of the lab's processes logged so far (`aio.log`, `server.log`, …).
    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self._dir.path().join(name)).unwrap_or_default()
    }

    async fn wait_status(&self, conn: &str, wanted: &str, within: Duration) -> Duration {
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

    fn ping(&self, from: usize, to: usize) -> bool {
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

    fn namespaces(&self) -> Vec<String> {
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
    fn lab_command(&self, args: &[&str]) {
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
    fn lab_gateway_dir(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("vpnaas-lab-{}", self.prefix))
    }

    /// The pids of the gateway hosts `lab up --agents` started that still run as such.
    fn lab_gateway_pids(&self) -> Vec<String> {
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

    fn router_namespace(&self, site: usize) -> String {
        format!(
            "{}-r-{}",
            self.prefix,
            self.site(site)["router_id"].as_str().expect("router")
        )
    }
}

impl Lab {
    /// Kills the processes this test started (server, agents, nats-server), by pid.
    fn kill_processes(&mut self) {
        for process in self
            .processes
            .iter_mut()
            .chain(self.nats.as_mut().map(|(c, _)| c))
        {
            let _ = process.kill();
            let _ = process.wait();
        }
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

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

async fn two_sites_ping(ike: Value, ipsec: Value) {
    two_sites_ping_as(ike, ipsec, Mode::AllInOne).await;
}

async fn two_sites_ping_as(ike: Value, ipsec: Value, mode: Mode) {
    two_sites_ping_on(&Lab::start_as(2, mode).await, ike, ipsec).await;
}

/// Connections each way between the lab's two sites come up, report why, and carry pings.
async fn two_sites_ping_on(lab: &Lab, ike: Value, ipsec: Value) {
    assert!(
        !lab.ping(1, 2),
        "no tunnel yet, so no route to the other site"
    );
    let policies = lab.policies(ike, ipsec).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "a-shared-secret").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "a-shared-secret").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    assert_eq!(
        lab.client.show(Kind::VpnService, &s1).await.expect("svc")["status"],
        "ACTIVE"
    );
    assert!(
        lab.ping(1, 2),
        "host 1 cannot ping host 2 through the tunnel"
    );
    assert!(
        lab.ping(2, 1),
        "host 2 cannot ping host 1 through the tunnel"
    );
    let shown = lab
        .client
        .show(Kind::SiteConnection, &c12)
        .await
        .expect("show");
    assert_eq!(shown["status_reason"], "ESTABLISHED");
    let events = lab
        .client
        .get(&format!("/v2.0/vpn/ipsec-site-connections/{c12}/events"))
        .await
        .expect("events");
    let last = events["events"]
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .expect("a transition");
    assert_eq!(
        (last["to"].as_str(), last["reason"].as_str()),
        (Some("ACTIVE"), Some("ESTABLISHED"))
    );
    assert!(
        !last["detail"].as_str().unwrap_or("").is_empty(),
        "the negotiated proposal is recorded: {last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ikev2_tunnel_between_two_sites_carries_pings() {
    two_sites_ping(
        json!({"ike_version": "v2", "encryption_algorithm": "aes-256", "pfs": "group14"}),
        json!({"encryption_algorithm": "aes-256", "pfs": "group14"}),
    )
    .await;
}

/// The kernel's refusal of an ESP SA, as the agent's probe hears it. The data plane tests
/// are about kernels without ESP, as these machines' and CI's.
async fn kernel_esp_refusal() -> String {
    require_root();
    match vpnaas_agent::data_plane::probe().await {
        vpnaas_agent::data_plane::KernelEsp::Refused(message) => message,
        other => panic!("this test is about a kernel without ESP (as CI's); this one: {other:?}"),
    }
}

/// With no `--data-plane` the agent asks the kernel, which holds no ESP SA here: it takes
/// userspace ESP, says so and why in its log and its metrics, and the tunnel carries pings
/// (kernel ESP, the default before, left both connections NO_PROPOSAL_CHOSEN).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_the_agent_takes_the_data_plane_this_kernel_can_carry() {
    let refusal = kernel_esp_refusal().await;
    let lab = Lab::start(2).await;
    two_sites_ping_on(&lab, json!({"ike_version": "v2"}), json!({})).await;
    let said = format!("data plane: userspace (kernel refused an ESP SA: {refusal})");
    assert!(
        lab.log("aio.log").contains(&said),
        "the agent's log lacks `{said}`:\n{}",
        lab.log("aio.log")
    );
    lab.wait_metric(
        &lab.url,
        r#"vpnaas_agent_data_plane{plane="userspace"} 1"#,
        Duration::from_secs(5),
    )
    .await;
}

/// `--data-plane kernel` on a kernel without ESP: the IKE SA comes up, no child SA can, and
/// both connections say the kernel refused it, with the kernel's words in their events.
/// Before, both said NO_PROPOSAL_CHOSEN: the notify charon answers its peer with when its
/// kernel refuses, which sends the user to check algorithms. Site 2 only responds, so its
/// charon is the one that asks the kernel, and site 1 only hears the notify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_esp_forced_on_a_kernel_without_it_reports_kernel_refused() {
    let refusal = kernel_esp_refusal().await;
    let lab = Lab::start_with(2, Mode::AllInOne, &["--data-plane", "kernel"]).await;
    assert!(
        lab.log("aio.log")
            .contains("data plane: kernel (configured, but the kernel refused an ESP SA"),
        "the agent warns at start:\n{}",
        lab.log("aio.log")
    );
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "kernel-secret").await;
    let c21 = lab
        .connect_as(&s2, (2, 1), &policies, "kernel-secret", "response-only")
        .await;
    let mut details = Vec::new();
    for conn in [&c12, &c21] {
        let events = lab
            .wait_reason(conn, "KERNEL_REFUSED", Duration::from_secs(20))
            .await;
        let last = events.last().expect("events");
        assert_eq!(
            (last["to"].as_str(), last["reason"].as_str()),
            (Some("DOWN"), Some("KERNEL_REFUSED")),
            "{events:?}"
        );
        details.push(last["detail"].as_str().unwrap_or("").to_string());
    }
    assert!(
        details[1].contains("received netlink error: Protocol not supported (93)"),
        "the responder's charon reports the kernel's own error: {details:?}"
    );
    assert!(
        details[0].contains(&refusal) && details[0].contains("NO_PROPOSAL_CHOSEN"),
        "the initiator hears the peer's notify on a host whose kernel refused an ESP SA: {details:?}"
    );
    assert!(!lab.ping(1, 2));
    eprintln!("kernel ESP forced, KERNEL_REFUSED: {details:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_agent_process_over_http_builds_the_tunnel() {
    two_sites_ping_as(json!({"ike_version": "v2"}), json!({}), Mode::Separate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ikev1_tunnel_carries_pings() {
    two_sites_ping(json!({"ike_version": "v1"}), json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aes_gcm_tunnel_carries_pings() {
    two_sites_ping(
        json!({"ike_version": "v2", "encryption_algorithm": "aes-256-gcm-16", "pfs": "group19"}),
        json!({"encryption_algorithm": "aes-128-gcm-16", "pfs": "group19"}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_psk_leaves_the_connection_down() {
    let lab = Lab::start(2).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "the-right-secret").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "a-wrong-secret").await;
    lab.wait_status(&c12, "DOWN", Duration::from_secs(10)).await;
    lab.wait_status(&c21, "DOWN", Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for conn in [&c12, &c21] {
        let shown = lab
            .client
            .show(Kind::SiteConnection, conn)
            .await
            .expect("show");
        assert_eq!(shown["status"], "DOWN", "a wrong PSK must never be ACTIVE");
        assert_eq!(
            shown["status_reason"], "AUTH_FAILED",
            "the reason says why: {shown}"
        );
    }
    assert!(!lab.ping(1, 2));
}

/// Three sites, a tunnel between each pair, pings all ways. Then, as the README does,
/// `lab down` and the all-in-one killed at once: no namespace (router, host, fabric),
/// charon or router file of the lab is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sites_full_mesh_and_everything_is_removed_afterwards() {
    let mut lab = Lab::start(3).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let services = [
        lab.service(1).await,
        lab.service(2).await,
        lab.service(3).await,
    ];
    let mut conns = Vec::new();
    for from in 1..=3 {
        for to in (1..=3).filter(|t| *t != from) {
            conns.push(
                lab.connect(&services[from - 1], from, to, &policies, "mesh-secret")
                    .await,
            );
        }
    }
    for conn in &conns {
        lab.wait_status(conn, "ACTIVE", Duration::from_secs(30))
            .await;
    }
    for from in 1..=3 {
        for to in (1..=3).filter(|t| *t != from) {
            assert!(lab.ping(from, to), "site {from} cannot ping site {to}");
        }
    }
    let router_ns = lab.router_namespace(1);
    let out = Command::new("ip")
        .args([
            "netns", "exec", &router_ns, "nft", "list", "table", "ip", "vpnaas",
        ])
        .output()
        .expect("nft");
    let table = String::from_utf8_lossy(&out.stdout);
    let exemptions = table
        .lines()
        .filter(|l| l.contains("ip saddr 10.1.0.0/24 ip daddr") && l.trim_end().ends_with("accept"))
        .count();
    assert_eq!(
        exemptions, 2,
        "one exemption per (local, peer) pair:\n{table}"
    );

    let started = Instant::now();
    lab.lab_command(&["down"]);
    eprintln!("lab down took {:?}", started.elapsed());
    // As in the README (`lab down; kill %1`): the agent stops at once.
    lab.kill_processes();
    assert!(
        lab.namespaces().is_empty(),
        "namespaces left (the routers', whose nft tables they hold, or the fabric): {:?}",
        lab.namespaces()
    );
    let ours = lab._dir.path().to_string_lossy().into_owned();
    let charons: Vec<String> = std::fs::read_dir("/proc")
        .expect("proc")
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .is_ok_and(|env| String::from_utf8_lossy(&env).contains(&ours))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "charon")
        })
        .collect();
    assert!(charons.is_empty(), "charon processes left: {charons:?}");
    let state = lab._dir.path().join("state");
    let left: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "files left: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_nat_exemption_the_tunnel_breaks() {
    let lab = Lab::start(2).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "nat-secret").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "nat-secret").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    assert!(lab.ping(1, 2));
    let router_ns = lab.router_namespace(1);
    let gateway = lab.site(1)["gateway_ip"].as_str().expect("gw").to_string();
    let snat_only = format!(
        "flush chain ip vpnaas postrouting\nadd rule ip vpnaas postrouting ip saddr 10.1.0.0/24 ip daddr != 10.1.0.0/24 snat to {gateway}\n"
    );
    let mut nft = Command::new("ip")
        .args(["netns", "exec", &router_ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("nft");
    std::io::Write::write_all(nft.stdin.as_mut().expect("stdin"), snat_only.as_bytes())
        .expect("write");
    assert!(nft.wait().expect("nft").success());
    let _ = Command::new("ip")
        .args(["netns", "exec", &router_ns, "conntrack", "-F"])
        .status();
    assert!(
        !lab.ping(1, 2),
        "with SNAT and no exemption, host 1's traffic must not pass the tunnel"
    );
    // A change to the connection makes the agent render the router's rules again.
    lab.client
        .update(Kind::SiteConnection, &c12, json!({"mtu": 1450}))
        .await
        .expect("nudge");
    let started = Instant::now();
    while !lab.ping(1, 2) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the agent did not restore the exemption"
        );
    }
}

/// Several local and several peer CIDRs: site 1 reaches site 2's two subnets through one
/// connection (IKEv2: one child for all selectors; IKEv1: one child per pair).
async fn several_cidrs(version: &str) {
    let lab = Lab::start(2).await;
    let c = &lab.client;
    let (r2, s1, s2) = (
        lab.site(2)["router_id"]
            .as_str()
            .expect("router")
            .to_string(),
        lab.site(1)["subnet_id"]
            .as_str()
            .expect("subnet")
            .to_string(),
        lab.site(2)["subnet_id"]
            .as_str()
            .expect("subnet")
            .to_string(),
    );
    let extra_net = c
        .create(
            Kind::Network,
            json!({"name": format!("{}-extra", lab.prefix)}),
        )
        .await
        .expect("net");
    let extra = c
        .create(
            Kind::Subnet,
            json!({"network_id": id(&extra_net), "cidr": "10.20.0.0/24"}),
        )
        .await
        .expect("subnet");
    c.add_router_interface(&r2, &id(&extra))
        .await
        .expect("second interface");
    let policies = lab
        .policies(json!({"ike_version": version}), json!({}))
        .await;
    let group = |kind: &str, endpoints: Value| {
        let c = c.clone();
        let kind = kind.to_string();
        async move {
            id(&c
                .create(
                    Kind::EndpointGroup,
                    json!({"type": kind, "endpoints": endpoints}),
                )
                .await
                .expect("group"))
        }
    };
    let (local1, peer1) = (
        group("subnet", json!([s1])).await,
        group("cidr", json!(["10.2.0.0/24", "10.20.0.0/24"])).await,
    );
    let (local2, peer2) = (
        group("subnet", json!([s2, id(&extra)])).await,
        group("cidr", json!(["10.1.0.0/24"])).await,
    );
    let mut conns = Vec::new();
    for (site, local, peer, to) in [(1, &local1, &peer1, 2), (2, &local2, &peer2, 1)] {
        let svc = c
            .create(
                Kind::VpnService,
                json!({"router_id": lab.site(site)["router_id"]}),
            )
            .await
            .expect("svc");
        let gateway = lab.site(to)["gateway_ip"].clone();
        let conn = c
            .create(
                Kind::SiteConnection,
                json!({"vpnservice_id": id(&svc), "ikepolicy_id": policies.0, "ipsecpolicy_id": policies.1,
                       "peer_address": gateway, "peer_id": gateway, "psk": "multi-secret",
                       "local_ep_group_id": local, "peer_ep_group_id": peer}),
            )
            .await
            .expect("connection");
        conns.push(id(&conn));
    }
    for conn in &conns {
        lab.wait_status(conn, "ACTIVE", Duration::from_secs(20))
            .await;
    }
    assert!(lab.ping(1, 2), "host 1 cannot reach site 2's first subnet");
    let out = vpnaas(
        &lab.url,
        &[
            "lab",
            "exec",
            "1",
            "--prefix",
            &lab.prefix,
            "--",
            "ping",
            "-c",
            "2",
            "-i",
            "0.2",
            "-W",
            "1",
            "10.20.0.1",
        ],
    );
    assert!(
        out.status.success(),
        "host 1 cannot reach site 2's second subnet through the tunnel"
    );
    lab.lab_command(&["down"]);
    let groups = c.list(Kind::EndpointGroup, &[]).await.expect("groups");
    assert!(
        groups.is_empty(),
        "lab down leaves the endpoint groups of its routers' connections: {groups:?}"
    );
    assert_eq!(lab.namespaces(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_local_and_peer_cidrs_with_ikev2() {
    several_cidrs("v2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_local_and_peer_cidrs_with_ikev1() {
    several_cidrs("v1").await;
}

/// Pings from a site's host at 20 packets/s in the background; `finish` returns
/// (sent, received).
struct Pinger {
    child: Child,
}

impl Pinger {
    fn start(lab: &Lab, from: usize, to: usize, seconds: u32) -> Pinger {
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

    fn finish(self) -> (u32, u32) {
        let out = self.child.wait_with_output().expect("ping output");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text
            .lines()
            .find(|l| l.contains("packets transmitted"))
            .unwrap_or_default()
            .to_string();
        let number = |word: &str| {
            line.split(',')
                .find(|p| p.contains(word))
                .and_then(|p| p.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        (number("transmitted"), number("received"))
    }
}

fn charon_pid(lab: &Lab, site: usize) -> String {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_one_connection_never_disturbs_another() {
    let lab = Lab::start(3).await;
    let c = &lab.client;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let only_for_2 = lab
        .policies(
            json!({"ike_version": "v2", "name": "only-conn-2"}),
            json!({}),
        )
        .await;
    let services = [
        lab.service(1).await,
        lab.service(2).await,
        lab.service(3).await,
    ];
    let conn1 = lab
        .connect(&services[0], 1, 2, &policies, "secret-one")
        .await;
    let back1 = lab
        .connect(&services[1], 2, 1, &policies, "secret-one")
        .await;
    let back2 = lab
        .connect(&services[2], 3, 1, &only_for_2, "secret-two")
        .await;
    for conn in [&conn1, &back1] {
        lab.wait_status(conn, "ACTIVE", Duration::from_secs(20))
            .await;
    }
    let pid = charon_pid(&lab, 1);
    let pinger = Pinger::start(&lab, 1, 2, 8);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let conn2 = lab
        .connect(&services[0], 1, 3, &only_for_2, "secret-two")
        .await;
    lab.wait_status(&conn2, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&back2, "ACTIVE", Duration::from_secs(20))
        .await;
    for change in [
        json!({"peer_cidrs": ["10.3.0.0/24", "10.33.0.0/24"]}),
        json!({"dpd": {"action": "restart", "interval": 7, "timeout": 30}}),
        json!({"psk": "secret-two"}),
        json!({"admin_state_up": false}),
        json!({"admin_state_up": true}),
    ] {
        c.update(Kind::SiteConnection, &conn2, change)
            .await
            .expect("update connection 2");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    c.update(Kind::IkePolicy, &only_for_2.0, json!({"name": "renamed"}))
        .await
        .expect("rename its policy");
    c.delete(Kind::SiteConnection, &conn2)
        .await
        .expect("delete connection 2");
    let (sent, received) = pinger.finish();
    assert!(sent >= 150, "the ping ran ({sent} sent)");
    assert_eq!(
        sent,
        received,
        "connection 1 lost {} of {sent} packets while connection 2 changed",
        sent - received
    );
    assert_eq!(charon_pid(&lab, 1), pid, "charon was restarted");

    c.update(
        Kind::SiteConnection,
        &conn1,
        json!({"peer_cidrs": ["10.2.0.0/24", "10.22.0.0/24"]}),
    )
    .await
    .expect("change connection 1");
    let started = Instant::now();
    while !lab.ping(1, 2) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "connection 1 did not come back after its own change"
        );
    }
    lab.wait_status(&conn1, "ACTIVE", Duration::from_secs(10))
        .await;
    assert_eq!(
        charon_pid(&lab, 1),
        pid,
        "a change to connection 1 is applied in place, without a restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_charon_is_restarted_and_the_tunnel_comes_back() {
    let lab = Lab::start(2).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "heal-secret").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "heal-secret").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    let pid = charon_pid(&lab, 1);
    let killed = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let started = Instant::now();
    loop {
        let new_pid = std::fs::read_to_string(
            lab._dir
                .path()
                .join("state")
                .join(lab.site(1)["router_id"].as_str().expect("r"))
                .join("strongswan/run/charon.pid"),
        )
        .unwrap_or_default();
        if !new_pid.trim().is_empty() && new_pid.trim() != pid {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "charon was not restarted; the agent's log ends with:\n{}",
            lab.log_tail(60)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    while !lab.ping(1, 2) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the tunnel did not come back"
        );
    }
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(10))
        .await;
    eprintln!(
        "kill -9 of charon -> ACTIVE and pinging again: {:?}",
        killed.elapsed()
    );
    lab.wait_metric(
        &lab.url,
        "vpnaas_agent_daemon_restarts_total 1",
        Duration::from_secs(1),
    )
    .await;
    lab.wait_metric(
        &lab.url,
        r#"vpnaas_connections{status="ACTIVE"} 2"#,
        Duration::from_secs(5),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_waits_for_active_explains_failures_and_shows_events() {
    let lab = Lab::start(2).await;
    let c = &lab.client;
    let policies = lab
        .policies(
            json!({"ike_version": "v2", "name": "cli-ike"}),
            json!({"name": "cli-esp"}),
        )
        .await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    lab.connect(&s1, 1, 2, &policies, "the-cli-secret").await;
    let (g1, cidr1) = (
        lab.site(1)["gateway_ip"].as_str().expect("gw").to_string(),
        lab.site(1)["cidr"].as_str().expect("cidr").to_string(),
    );
    let create = |name: &str, psk: &str| {
        vec![
            "site-connection".to_string(),
            "create".into(),
            name.into(),
            "--vpnservice".into(),
            s2.clone(),
            "--ikepolicy".into(),
            "cli-ike".into(),
            "--ipsecpolicy".into(),
            "cli-esp".into(),
            "--peer-address".into(),
            g1.clone(),
            "--peer-id".into(),
            g1.clone(),
            "--psk".into(),
            psk.into(),
            "--peer-cidr".into(),
            cidr1.clone(),
            "--wait".into(),
            "--timeout".into(),
            "15".into(),
        ]
    };
    let run = |args: Vec<String>| {
        let url = lab.url.clone();
        tokio::task::spawn_blocking(move || {
            vpnaas(&url, &args.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };
    let refused = run(create("wrong", "not-the-secret")).await.expect("join");
    assert!(
        !refused.status.success(),
        "--wait must fail when the tunnel cannot come up"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("AUTH_FAILED"),
        "the failure says why: {stderr}"
    );
    let wrong = c
        .find(Kind::SiteConnection, "wrong")
        .await
        .expect("created anyway");
    c.delete(Kind::SiteConnection, &id(&wrong))
        .await
        .expect("delete");

    let waited = run(create("right", "the-cli-secret")).await.expect("join");
    assert!(
        waited.status.success(),
        "--wait failed: {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    assert!(String::from_utf8_lossy(&waited.stdout).contains("ESTABLISHED"));
    assert!(
        String::from_utf8_lossy(&waited.stderr).contains("ACTIVE"),
        "progress is shown"
    );

    let events = run(vec![
        "site-connection".into(),
        "events".into(),
        "right".into(),
    ])
    .await
    .expect("join");
    let table = String::from_utf8_lossy(&events.stdout);
    assert!(
        events.status.success()
            && table.contains("ESTABLISHED")
            && table.contains("PENDING_CREATE"),
        "{table}"
    );

    let url = lab.url.clone();
    let watched = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .args([
                "-s",
                "INT",
                "1.5",
                env!("CARGO_BIN_EXE_vpnaas"),
                "site-connection",
                "list",
                "--watch",
                "--interval",
                "0.2",
            ])
            .env("VPNAAS_URL", url)
            .output()
            .expect("watch")
    })
    .await
    .expect("join");
    let screen = String::from_utf8_lossy(&watched.stdout);
    assert!(
        screen.matches("refreshing every").count() >= 3,
        "the table is redrawn: {screen}"
    );
    assert!(
        screen.contains("ESTABLISHED") && screen.contains("bytes in/out"),
        "{screen}"
    );
}

impl Lab {
    /// Kills the process that runs the agent (all-in-one, or the separate agent) without
    /// warning, and starts it again the same way.
    fn restart_agent(&mut self) {
        let last = self.processes.len() - 1;
        self.kill_process(last);
        self.start_process(last);
    }

    /// The last `lines` lines of the logs of the lab's vpnaas processes.
    fn log_tail(&self, lines: usize) -> String {
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
    fn kill_process(&mut self, index: usize) {
        let _ = self.processes[index].kill();
        let _ = self.processes[index].wait();
    }

    /// Starts a killed process again, as it was started first.
    fn start_process(&mut self, index: usize) {
        let (args, log) = self.commands[index].clone();
        self.processes[index] = spawn_vpnaas(&args, &self._dir.path().join(log));
    }

    /// The lines of a `/metrics` page.
    async fn metrics(&self, base: &str) -> Vec<String> {
        Client::new(base)
            .get_text("/metrics")
            .await
            .expect("metrics")
            .lines()
            .map(String::from)
            .collect()
    }

    /// Waits until a `/metrics` page holds `line`.
    async fn wait_metric(&self, base: &str, line: &str, within: Duration) {
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

    async fn packets_out(&self, conn: &str) -> u64 {
        self.client
            .show(Kind::SiteConnection, conn)
            .await
            .expect("show")["traffic"]["packets_out"]
            .as_u64()
            .unwrap_or(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_keeps_tunnels_up_and_reporting_resumes() {
    let mut lab = Lab::start_as(2, Mode::Separate).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "server-gone").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "server-gone").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    let pids = (charon_pid(&lab, 1), charon_pid(&lab, 2));
    let counted = lab.packets_out(&c12).await;

    lab.kill_process(0);
    let pinger = Pinger::start(&lab, 1, 2, 4);
    let (sent, received) = pinger.finish();
    assert!(sent >= 70, "the ping ran ({sent} sent)");
    assert_eq!(
        sent,
        received,
        "{} of {sent} packets lost while the server was down",
        sent - received
    );
    let agent = lab.metrics(&lab.agent_metrics).await;
    assert!(
        agent.iter().any(|l| l == "vpnaas_agent_routers 2"),
        "the agent keeps serving its routers: {agent:?}"
    );

    lab.start_process(0);
    lab.wait_for_api().await;
    let back = Instant::now();
    while lab.packets_out(&c12).await < counted + u64::from(sent) {
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "the agent did not report again after the server came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "server back -> first fresh status report: {:?}",
        back.elapsed()
    );
    assert_eq!(
        (charon_pid(&lab, 1), charon_pid(&lab, 2)),
        pids,
        "no daemon was restarted"
    );
    lab.client
        .update(Kind::SiteConnection, &c12, json!({"admin_state_up": false}))
        .await
        .expect("a change after the restart");
    lab.wait_status(&c12, "DOWN", Duration::from_secs(5)).await;
    lab.client
        .update(Kind::SiteConnection, &c12, json!({"admin_state_up": true}))
        .await
        .expect("and back");
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    assert!(lab.ping(1, 2), "the tunnel carries traffic again");
    lab.wait_metric(
        &lab.agent_metrics,
        r#"vpnaas_agent_connections{status="ACTIVE",reason="ESTABLISHED"} 2"#,
        Duration::from_secs(5),
    )
    .await;
    let agent = lab.metrics(&lab.agent_metrics).await;
    assert!(
        agent
            .iter()
            .any(|l| l
                .starts_with(r#"vpnaas_agent_reconcile_duration_seconds_count{trigger="change"}"#)),
        "{agent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_restart_leaves_running_tunnels_alone() {
    let mut lab = Lab::start_as(2, Mode::Separate).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "stay-up").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "stay-up").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    let pids = (charon_pid(&lab, 1), charon_pid(&lab, 2));
    let pinger = Pinger::start(&lab, 1, 2, 6);
    tokio::time::sleep(Duration::from_millis(500)).await;
    lab.restart_agent();
    lab.wait_for_agent().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (sent, received) = pinger.finish();
    assert!(sent >= 100, "the ping ran ({sent} sent)");
    assert_eq!(
        sent,
        received,
        "{} of {sent} packets lost across the agent restart",
        sent - received
    );
    assert_eq!(
        (charon_pid(&lab, 1), charon_pid(&lab, 2)),
        pids,
        "the agent restarted charon"
    );
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(5))
        .await;
    lab.client
        .update(Kind::SiteConnection, &c12, json!({"mtu": 1400}))
        .await
        .expect("a change after the restart");
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    assert!(lab.ping(1, 2), "the adopted charon still takes changes");
    assert_eq!(charon_pid(&lab, 1), pids.0);
}

/// Runs `vpnaas demo --exit` with `args` under a prefix of its own; its output, after
/// checking that it succeeded and left no namespace (any it left is removed).
async fn run_demo(args: &[&str]) -> String {
    require_root();
    let tag: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(6)
        .collect();
    let prefix = format!("vd{tag}");
    let args: Vec<String> = ["demo", "--exit", "--prefix", &prefix]
        .iter()
        .chain(args)
        .map(|a| a.to_string())
        .collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_vpnaas"))
            .args(&args)
            .output()
            .expect("demo")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let log = demo_log(&stdout);
    let leftovers: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<String>>()
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    power_off(&prefix);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(
        leftovers.is_empty(),
        "the demo left namespaces: {leftovers:?}"
    );
    assert_reads_cleanly(&stdout, &stderr, &log);
    stdout
}

/// The log file the demo names in its first line (read, then removed with its directory).
fn demo_log(stdout: &str) -> String {
    let path = stdout
        .lines()
        .next()
        .and_then(|l| l.split_once("logs in "))
        .map(|(_, path)| std::path::PathBuf::from(path.trim()))
        .unwrap_or_default();
    let log = std::fs::read_to_string(&path).unwrap_or_default();
    if path.ends_with("demo.log")
        && let Some(dir) = path.parent()
    {
        let _ = std::fs::remove_dir_all(dir);
    }
    log
}

/// The demo's terminal shows its timeline (and warnings, if any): no colour codes, no
/// INFO line; those are in its log file, without colour codes either.
fn assert_reads_cleanly(stdout: &str, stderr: &str, log: &str) {
    for (name, text) in [("stdout", stdout), ("stderr", stderr)] {
        assert!(!text.contains('\x1b'), "ANSI codes on {name}:\n{text}");
        assert!(
            !text.lines().any(|l| l.contains(" INFO ")),
            "INFO log lines on {name}:\n{text}"
        );
    }
    for logged in [
        "INFO vpnaas_server",
        "vpnaas API listening",
        "charon started",
    ] {
        assert!(
            log.contains(logged),
            "the log file named in the first line lacks '{logged}':\n{stdout}\n{log}"
        );
    }
    assert!(!log.contains('\x1b'), "ANSI codes in the log file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_a_real_tunnel_and_cleans_up() {
    let stdout = run_demo(&[]).await;
    for step in [
        "request accepted",
        "IKE established",
        "ACTIVE in GET",
        "first ping reply",
    ] {
        assert!(
            stdout.contains(step),
            "the timeline lacks '{step}':\n{stdout}"
        );
    }
}

/// `vpnaas demo --agents 3 --ha`: the tunnel, then the power cut of site 1's active
/// gateway host and the standby taking over, until pings pass again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ha_demo_shows_a_failover_and_cleans_up() {
    let stdout = run_demo(&["--agents", "3", "--ha"]).await;
    for step in [
        "site 1's router is HA: active on",
        "powered off",
        "DOWN (AGENT_DOWN)",
        "now active on",
    ] {
        assert!(
            stdout.contains(step),
            "the timeline lacks '{step}':\n{stdout}"
        );
    }
    assert_eq!(
        stdout.matches("first ping reply").count(),
        2,
        "a ping before and after the failover:\n{stdout}"
    );
    eprintln!("{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_removes_its_leftovers_and_nothing_else() {
    let mut lab = Lab::start_as(2, Mode::Separate).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "leftover").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "leftover").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    let foreign = format!("{}-r-{}", lab.prefix, uuid::Uuid::new_v4());
    assert!(
        Command::new("ip")
            .args(["netns", "add", &foreign])
            .status()
            .expect("ip")
            .success()
    );
    let router1 = lab.site(1)["router_id"]
        .as_str()
        .expect("router")
        .to_string();
    let namespace1 = lab.router_namespace(1);
    let pid1 = charon_pid(&lab, 1);

    let agent = lab.processes.len() - 1;
    let _ = lab.processes[agent].kill();
    let _ = lab.processes[agent].wait();
    lab.client
        .delete(Kind::SiteConnection, &c12)
        .await
        .expect("delete while the agent is down");
    lab.client
        .delete(Kind::VpnService, &s1)
        .await
        .expect("delete service");
    lab.client
        .remove_router_interface(&router1, lab.site(1)["subnet_id"].as_str().expect("subnet"))
        .await
        .expect("interface");
    lab.client
        .update(
            Kind::Router,
            &router1,
            json!({"external_gateway_info": null}),
        )
        .await
        .expect("gateway");
    lab.client
        .delete(Kind::Router, &router1)
        .await
        .expect("delete router");
    let (args, log) = lab.commands[agent].clone();
    lab.processes[agent] = spawn_vpnaas(&args, &lab._dir.path().join(log));

    let started = Instant::now();
    while std::path::Path::new("/run/netns")
        .join(&namespace1)
        .exists()
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the leftover router namespace was not removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A charon whose parent (the killed agent) is gone is reaped by PID 1 a little later;
    // until then it is a zombie, which is dead.
    let state = std::fs::read_to_string(format!("/proc/{pid1}/stat")).unwrap_or_default();
    let running = state
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .is_some_and(|s| s != "Z");
    assert!(!running, "the leftover charon still runs");
    assert!(
        std::path::Path::new("/run/netns").join(&foreign).exists(),
        "a namespace the agent does not own was removed"
    );
    let _ = Command::new("ip").args(["netns", "del", &foreign]).status();
    lab.wait_status(&c21, "DOWN", Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rekeys_are_counted_lose_nothing_and_traffic_carries_across() {
    let lab = Lab::start(2).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    // One child SA, so one rekey is one count: when both ends initiate, a busy machine can
    // have both negotiations cross and build a second child SA, which `--rekey` rekeys too.
    let c12 = lab.connect(&s1, 1, 2, &policies, "rekey-me").await;
    let c21 = lab
        .connect_as(&s2, (2, 1), &policies, "rekey-me", "response-only")
        .await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    assert!(lab.ping(1, 2));
    let pinger = Pinger::start(&lab, 1, 2, 4);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = lab.packets_out(&c12).await;
    let router = lab.site(1)["router_id"].as_str().expect("router");
    let socket = lab
        ._dir
        .path()
        .join("state")
        .join(router)
        .join("strongswan/run/charon.vici");
    let out = Command::new("swanctl")
        .args(["--rekey", "--child", &c12, "--uri"])
        .arg(format!("unix://{}", socket.display()))
        .output()
        .expect("swanctl");
    assert!(
        out.status.success(),
        "swanctl --rekey: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let started = Instant::now();
    loop {
        let shown = lab
            .client
            .show(Kind::SiteConnection, &c12)
            .await
            .expect("show");
        if shown["traffic"]["rekeys"] == 1 {
            let after = shown["traffic"]["packets_out"].as_u64().unwrap_or(0);
            assert!(
                after >= before,
                "the counters carry on across the rekey ({before} before, {after} after)"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the rekey was not counted: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (sent, received) = pinger.finish();
    assert!(sent >= 70, "the ping ran ({sent} sent)");
    assert_eq!(
        sent,
        received,
        "{} of {sent} packets lost across the rekey",
        sent - received
    );
    lab.wait_metric(
        &lab.url,
        "vpnaas_agent_rekeys_total 2",
        Duration::from_secs(5),
    )
    .await;
}

/// Makes a router's own stack silent (nothing in, nothing out) until dropped, through a
/// table of its own beside the agent's.
struct Silence {
    namespace: String,
}

impl Silence {
    const TABLE: &str = "vpnaas_test_silence";

    fn start(namespace: &str) -> Silence {
        let rules = format!(
            "table inet {t} {{ chain i {{ type filter hook input priority -10; policy drop; }}; chain o {{ type filter hook output priority -10; policy drop; }}; }}",
            t = Self::TABLE
        );
        let status = Command::new("ip")
            .args(["netns", "exec", namespace, "nft", &rules])
            .status()
            .expect("nft");
        assert!(status.success(), "cannot silence {namespace}");
        Silence {
            namespace: namespace.to_string(),
        }
    }
}

impl Drop for Silence {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.namespace,
                "nft",
                "delete",
                "table",
                "inet",
                Self::TABLE,
            ])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silently_dead_peer_is_noticed_by_dpd_and_the_tunnel_heals() {
    let lab = Lab::start(2).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let dpd = json!({"action": "restart", "interval": 2, "timeout": 10});
    let c12 = lab.connect(&s1, 1, 2, &policies, "quiet-peer").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "quiet-peer").await;
    for conn in [&c12, &c21] {
        lab.client
            .update(Kind::SiteConnection, conn, json!({"dpd": dpd}))
            .await
            .expect("dpd");
    }
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    let silence = Silence::start(&lab.router_namespace(2));
    let silent = Instant::now();
    let noticed = lab.wait_status(&c12, "DOWN", Duration::from_secs(30)).await;
    let shown = lab
        .client
        .show(Kind::SiteConnection, &c12)
        .await
        .expect("show");
    eprintln!(
        "peer silent -> DOWN ({}) after {noticed:?} (DPD interval 2 s)",
        shown["status_reason"]
    );
    assert_eq!(shown["status_reason"], "PEER_UNREACHABLE", "{shown}");
    assert!(
        noticed >= Duration::from_secs(10),
        "DOWN after {noticed:?}: before DPD and the retransmits could have run"
    );
    drop(silence);
    let back = Instant::now();
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(40))
        .await;
    while !lab.ping(1, 2) {
        assert!(
            back.elapsed() < Duration::from_secs(40),
            "the tunnel did not heal"
        );
    }
    eprintln!(
        "peer answers again -> ACTIVE and pinging: {:?} (silent for {:?})",
        back.elapsed(),
        back - silent
    );
}

fn libreswan_root() -> String {
    let root = std::env::var("VPNAAS_LIBRESWAN_ROOT").unwrap_or("/opt/vpnaas/libreswan".into());
    assert!(
        std::path::Path::new(&root)
            .join("usr/libexec/ipsec/pluto")
            .exists(),
        "Libreswan is not unpacked in {root}: run scripts/setup.sh"
    );
    root
}

fn whack_status(lab: &Lab, site: usize) -> String {
    let router = lab.site(site)["router_id"].as_str().expect("router");
    let dir = lab._dir.path().join("state").join(router).join("libreswan");
    let out = Command::new(format!("{}/usr/libexec/ipsec/whack", libreswan_root()))
        .arg("--ctlsocket")
        .arg(dir.join("run/pluto.ctl"))
        .arg("--status")
        .output()
        .expect("whack");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// This kernel has no ESP: two plutos establish the IKE SA, the kernel refuses the child
/// SAs (errno 93), and the driver says so (KERNEL_REFUSED, with the kernel's words) on both
/// sides instead of claiming a tunnel, or blaming the traffic selectors (the notify the
/// refusing side sends its peer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libreswan_routers_establish_ike_and_report_the_kernels_refusal() {
    let refusal = kernel_esp_refusal().await;
    let root = libreswan_root();
    let lab = Lab::start_with(2, Mode::AllInOne, &["--libreswan-root", &root]).await;
    let flavor = lab.libreswan_flavor().await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (
        lab.service_of_flavor(1, Some(&flavor)).await,
        lab.service_of_flavor(2, Some(&flavor)).await,
    );
    let c12 = lab.connect(&s1, 1, 2, &policies, "pluto-secret").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "pluto-secret").await;
    let started = Instant::now();
    let mut details = Vec::new();
    for conn in [&c12, &c21] {
        let events = lab
            .wait_reason(conn, "KERNEL_REFUSED", Duration::from_secs(30))
            .await;
        let refused = events
            .iter()
            .find(|e| e["reason"] == "KERNEL_REFUSED")
            .expect("a KERNEL_REFUSED event");
        assert_eq!(refused["to"], "DOWN", "{refused}");
        let detail = refused["detail"].as_str().unwrap_or("").to_string();
        assert!(
            detail.contains("errno 93") || detail.contains(&refusal),
            "the event holds the kernel's words: {refused}"
        );
        details.push(detail);
    }
    assert!(
        details
            .iter()
            .any(|d| d.contains("Add SA") && d.contains("errno 93")),
        "the side whose kernel pluto asked first reports the kernel's own error: {details:?}"
    );
    for site in [1, 2] {
        let status = whack_status(&lab, site);
        assert!(
            status.contains("established IKE SA") || status.contains("ISAKMP SA established"),
            "site {site}: no IKE SA in\n{status}"
        );
    }
    eprintln!(
        "libreswan: KERNEL_REFUSED reported on both sides {:?} after the connections were created: {details:#?}",
        started.elapsed()
    );
}

fn pluto_pid(lab: &Lab, site: usize) -> String {
    let router = lab.site(site)["router_id"].as_str().expect("router");
    std::fs::read_to_string(
        lab._dir
            .path()
            .join("state")
            .join(router)
            .join("libreswan/run/pluto.pid"),
    )
    .unwrap_or_default()
    .trim()
    .to_string()
}

/// Serials of the established IKE SAs of a connection in `whack --status`.
fn ike_serials(status: &str, conn: &str) -> Vec<String> {
    status
        .lines()
        .filter(|l| l.contains(&format!("\"{conn}")) && l.contains("established IKE SA"))
        .filter_map(|l| l.split('#').nth(1))
        .filter_map(|rest| rest.split(':').next())
        .map(String::from)
        .collect()
}

async fn wait_ike(lab: &Lab, site: usize, conn: &str, within: Duration) -> Vec<String> {
    let started = Instant::now();
    loop {
        let serials = ike_serials(&whack_status(lab, site), conn);
        if !serials.is_empty() {
            return serials;
        }
        assert!(
            started.elapsed() < within,
            "no IKE SA for {conn} at site {site} after {within:?}:\n{}",
            whack_status(lab, site)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The driver-level suite as far as this kernel allows Libreswan (IKE only): a change to
/// one connection leaves pluto and the other connection's IKE SA alone, a wrong PSK is
/// reported as such, a killed pluto is restarted at once, and nothing is left afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libreswan_changes_touch_one_connection_and_a_killed_pluto_comes_back() {
    let root = libreswan_root();
    let lab = Lab::start_with(3, Mode::AllInOne, &["--libreswan-root", &root]).await;
    let c = &lab.client;
    let flavor = lab.libreswan_flavor().await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let services = [
        lab.service_of_flavor(1, Some(&flavor)).await,
        lab.service_of_flavor(2, Some(&flavor)).await,
        lab.service_of_flavor(3, Some(&flavor)).await,
    ];
    let conn1 = lab
        .connect(&services[0], 1, 2, &policies, "secret-one")
        .await;
    lab.connect(&services[1], 2, 1, &policies, "secret-one")
        .await;
    let conn2 = lab
        .connect(&services[0], 1, 3, &policies, "secret-two")
        .await;
    let back2 = lab
        .connect(&services[2], 3, 1, &policies, "secret-two")
        .await;
    let serials = wait_ike(&lab, 1, &conn1, Duration::from_secs(20)).await;
    wait_ike(&lab, 1, &conn2, Duration::from_secs(20)).await;
    let pid = pluto_pid(&lab, 1);
    assert!(!pid.is_empty());

    for change in [
        json!({"peer_cidrs": ["10.3.0.0/24", "10.33.0.0/24"]}),
        json!({"dpd": {"action": "restart", "interval": 7, "timeout": 30}}),
        json!({"admin_state_up": false}),
        json!({"admin_state_up": true}),
        json!({"psk": "not-what-site-3-has"}),
    ] {
        c.update(Kind::SiteConnection, &conn2, change)
            .await
            .expect("update connection 2");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    lab.wait_status(&back2, "DOWN", Duration::from_secs(5))
        .await;
    let started = Instant::now();
    loop {
        let mut seen = Vec::new();
        for conn in [&conn2, &back2] {
            let shown = c.show(Kind::SiteConnection, conn).await.expect("show");
            seen.push(shown["status_reason"].as_str().unwrap_or("").to_string());
        }
        if seen.iter().any(|r| r == "AUTH_FAILED") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "a PSK mismatch is not reported as AUTH_FAILED: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        pluto_pid(&lab, 1),
        pid,
        "pluto was restarted by a connection change"
    );
    let now = ike_serials(&whack_status(&lab, 1), &conn1);
    assert!(
        serials.iter().all(|s| now.contains(s)),
        "connection 1's IKE SA changed ({serials:?} → {now:?}) while connection 2 did"
    );

    assert!(
        Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let killed = Instant::now();
    let restarted = loop {
        let new_pid = pluto_pid(&lab, 1);
        if !new_pid.is_empty()
            && new_pid != pid
            && std::path::Path::new(&format!("/proc/{new_pid}")).exists()
        {
            break new_pid;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "pluto was not restarted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    wait_ike(&lab, 1, &conn1, Duration::from_secs(20)).await;
    eprintln!("kill -9 of pluto -> IKE SA again: {:?}", killed.elapsed());
    lab.wait_metric(
        &lab.url,
        "vpnaas_agent_daemon_restarts_total 1",
        Duration::from_secs(2),
    )
    .await;

    for conn in c.list(Kind::SiteConnection, &[]).await.expect("list") {
        c.delete(Kind::SiteConnection, &id(&conn))
            .await
            .expect("delete");
    }
    let running = |pid: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                != Some("Z")
        })
    };
    let started = Instant::now();
    while running(&restarted) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "pluto {restarted} still runs after the router's connections were deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One ping from a site's host with a 200 ms deadline.
fn ping_once(lab: &Lab, from: usize, to: usize) -> bool {
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

/// Two routers on Libreswan (IKE up, no data path on this kernel) move to strongSwan
/// with `vpnaas router migrate-driver`: the tunnel comes up and carries pings, and pluto
/// is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrating_two_libreswan_routers_to_strongswan_brings_the_tunnel_up() {
    let root = libreswan_root();
    let lab = Lab::start_with(2, Mode::AllInOne, &["--libreswan-root", &root]).await;
    let flavor = lab.libreswan_flavor().await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (
        lab.service_of_flavor(1, Some(&flavor)).await,
        lab.service_of_flavor(2, Some(&flavor)).await,
    );
    let c12 = lab.connect(&s1, 1, 2, &policies, "move-me").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "move-me").await;
    wait_ike(&lab, 1, &c12, Duration::from_secs(20)).await;
    let plutos = (pluto_pid(&lab, 1), pluto_pid(&lab, 2));
    assert!(
        !ping_once(&lab, 1, 2),
        "Libreswan has no data path on this kernel"
    );

    let started = Instant::now();
    let migrations: Vec<Child> = [1, 2]
        .into_iter()
        .map(|site| {
            let router = lab.site(site)["router_id"]
                .as_str()
                .expect("router")
                .to_string();
            Command::new(env!("CARGO_BIN_EXE_vpnaas"))
                .args([
                    "router",
                    "migrate-driver",
                    &router,
                    "--to",
                    "strongswan",
                    "--timeout",
                    "30",
                ])
                .env("VPNAAS_URL", &lab.url)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("vpnaas router migrate-driver")
        })
        .collect();
    while !ping_once(&lab, 1, 2) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no ping after the migration"
        );
    }
    let first_ping = started.elapsed();
    for migration in migrations {
        let out = migration.wait_with_output().expect("migrate-driver");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("every connection ACTIVE"), "{text}");
    }
    eprintln!(
        "migrate-driver libreswan -> strongswan: first ping through the tunnel {first_ping:?} after the call"
    );
    for conn in [&c12, &c21] {
        lab.wait_status(conn, "ACTIVE", Duration::from_secs(5))
            .await;
    }
    assert_eq!(
        lab.client.show(Kind::VpnService, &s1).await.expect("svc")["provider"],
        "strongswan"
    );
    for pid in [plutos.0, plutos.1] {
        assert!(
            !std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "pluto"),
            "pluto {pid} still runs"
        );
    }
    assert!(!charon_pid(&lab, 1).is_empty(), "charon runs instead");
}

/// A migration that cannot finish (Libreswan has no data path on this kernel) is rolled
/// back: the command fails, the router is on strongSwan again and the tunnel carries pings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_that_cannot_finish_is_rolled_back() {
    let root = libreswan_root();
    let lab = Lab::start_with(2, Mode::AllInOne, &["--libreswan-root", &root]).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "stay-put").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "stay-put").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    let router = lab.site(1)["router_id"]
        .as_str()
        .expect("router")
        .to_string();
    let out = vpnaas(
        &lab.url,
        &[
            "router",
            "migrate-driver",
            &router,
            "--to",
            "libreswan",
            "--timeout",
            "3",
        ],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("rolled back to strongswan"), "{text}");
    assert_eq!(
        lab.client.show(Kind::VpnService, &s1).await.expect("svc")["provider"],
        "strongswan"
    );
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    let started = Instant::now();
    while !lab.ping(1, 2) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the tunnel did not come back"
        );
    }
}

/// As with strongSwan, a restarted agent adopts the running plutos: same pids, same IKE
/// SAs, and later changes still reach them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_restart_leaves_running_plutos_alone() {
    let root = libreswan_root();
    let mut lab = Lab::start_with(2, Mode::Separate, &["--libreswan-root", &root]).await;
    let flavor = lab.libreswan_flavor().await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (
        lab.service_of_flavor(1, Some(&flavor)).await,
        lab.service_of_flavor(2, Some(&flavor)).await,
    );
    let c12 = lab.connect(&s1, 1, 2, &policies, "keep-pluto").await;
    lab.connect(&s2, 2, 1, &policies, "keep-pluto").await;
    let serials = wait_ike(&lab, 1, &c12, Duration::from_secs(20)).await;
    let pids = (pluto_pid(&lab, 1), pluto_pid(&lab, 2));
    lab.restart_agent();
    lab.wait_for_agent().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        (pluto_pid(&lab, 1), pluto_pid(&lab, 2)),
        pids,
        "the agent restarted pluto"
    );
    let now = ike_serials(&whack_status(&lab, 1), &c12);
    assert!(
        serials.iter().all(|s| now.contains(s)),
        "the IKE SA changed across the agent restart ({serials:?} → {now:?})"
    );
    lab.client
        .update(
            Kind::SiteConnection,
            &c12,
            json!({"dpd": {"action": "restart", "interval": 9, "timeout": 40}}),
        )
        .await
        .expect("a change after the restart");
    let started = Instant::now();
    while ike_serials(&whack_status(&lab, 1), &c12) == now {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the change did not reach the adopted pluto"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_ike(&lab, 1, &c12, Duration::from_secs(20)).await;
    assert_eq!(
        pluto_pid(&lab, 1),
        pids.0,
        "the change went to the adopted pluto"
    );
}

/// Server and agent talk over NATS only; NATS restarts under a running tunnel: nothing is
/// dropped, and changes flow again once everyone has reconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_nats_a_tunnel_survives_a_nats_restart() {
    let mut lab = Lab::start_as(2, Mode::Nats).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "over-nats").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "over-nats").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    assert!(lab.ping(1, 2));
    let pids = (charon_pid(&lab, 1), charon_pid(&lab, 2));
    let pinger = Pinger::start(&lab, 1, 2, 5);
    let (mut child, port) = lab.nats.take().expect("nats");
    let _ = child.kill();
    let _ = child.wait();
    tokio::time::sleep(Duration::from_secs(1)).await;
    lab.nats = Some(start_nats(port));
    let (sent, received) = pinger.finish();
    assert!(sent >= 90, "the ping ran ({sent} sent)");
    assert_eq!(
        sent,
        received,
        "{} of {sent} packets lost across the NATS restart",
        sent - received
    );
    assert_eq!(
        (charon_pid(&lab, 1), charon_pid(&lab, 2)),
        pids,
        "a daemon was restarted"
    );
    let changed = Instant::now();
    lab.client
        .update(Kind::SiteConnection, &c12, json!({"admin_state_up": false}))
        .await
        .expect("a change after the restart");
    lab.wait_status(&c12, "DOWN", Duration::from_secs(15)).await;
    eprintln!(
        "over NATS, after its restart: a change applied and reported in {:?}",
        changed.elapsed()
    );
    lab.client
        .update(Kind::SiteConnection, &c12, json!({"admin_state_up": true}))
        .await
        .expect("and back");
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
}

/// Pings until one passes; the time it took.
fn until_ping(lab: &Lab, from: usize, to: usize, within: Duration) -> Duration {
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
fn power_off(prefix: &str) {
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

/// Two agents, a router on each and a tunnel between them. The second gateway host dies
/// (agent killed, its routers' namespaces and daemons gone): after 3 s without heartbeats
/// its router moves to the first agent and the tunnel comes back. The agent returns and an
/// admin moves the router back by hand; the tunnel follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_agents_router_moves_to_a_live_one_and_can_be_moved_back() {
    let mut lab = Lab::start_as(2, Mode::Agents(2)).await;
    let (first, second) = (lab.prefix.clone(), format!("{}-2", lab.prefix));
    let router = |site: usize| {
        lab.site(site)["router_id"]
            .as_str()
            .expect("router")
            .to_string()
    };
    let (r1, r2) = (router(1), router(2));
    let client = lab.client.clone();
    let host_of = |r: &str| {
        let (c, r) = (client.clone(), r.to_string());
        async move { c.show(Kind::Router, &r).await.expect("router")["agent_host"].clone() }
    };
    assert_eq!(
        (host_of(&r1).await, host_of(&r2).await),
        (json!(first), json!(second)),
        "fewest routers first: one router per agent"
    );
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "two-hosts").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "two-hosts").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    until_ping(&lab, 1, 2, Duration::from_secs(10));

    let killed = Instant::now();
    lab.kill_process(2);
    power_off(&format!("{}-s-", lab.prefix));
    until_ping(&lab, 1, 2, Duration::from_secs(30));
    let failover = killed.elapsed();
    eprintln!(
        "gateway host 2 dead -> its router on agent 1, tunnel pinging: {failover:?} (agent_down_time 3 s, heartbeats every 1 s)"
    );
    assert_eq!(host_of(&r2).await, json!(first));
    lab.wait_for_host(&second, false).await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(10))
        .await;
    assert!(
        failover >= Duration::from_secs(2),
        "moved before the agent missed 3 s of heartbeats (its last one was at most 1 s before it died)"
    );

    lab.start_process(2);
    let back = lab.wait_for_host(&second, true).await;
    let moved = Instant::now();
    let (status, body) = lab
        .client
        .raw(
            vpnaas_client::Method::POST,
            &format!("/v2.0/agents/{}/vpn-routers", id(&back)),
            Some(&json!({"router_id": r2})),
        )
        .await
        .expect("move by hand");
    assert_eq!(status.as_u16(), 201, "{body}");
    while host_of(&r2).await != json!(second) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    while lab
        .namespaces()
        .iter()
        .any(|n| n == &format!("{}-r-{r2}", lab.prefix))
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "agent 1 kept the moved router"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    until_ping(&lab, 1, 2, Duration::from_secs(30));
    eprintln!(
        "router moved back by hand -> pinging: {:?}",
        moved.elapsed()
    );
    let agents = lab
        .client
        .get(&format!("/v2.0/routers/{r2}/vpn-agents"))
        .await
        .expect("vpn-agents");
    assert_eq!(agents["agents"][0]["host"], second.as_str());
}

/// Whether any process runs in a namespace.
fn runs_anything(namespace: &str) -> bool {
    let pids = Command::new("ip")
        .args(["netns", "pids", namespace])
        .output()
        .expect("ip");
    !String::from_utf8_lossy(&pids.stdout).trim().is_empty()
}

/// The IPv4 addresses in a namespace, but loopback's.
fn addresses_in(namespace: &str) -> String {
    let out = Command::new("ip")
        .args([
            "-n", namespace, "-4", "-o", "addr", "show", "scope", "global",
        ])
        .output()
        .expect("ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `check` holds, or fails with `what`.
async fn eventually(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < within, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three agents, each a gateway host. Site 1's router is HA: active on agent 1, standby on
/// agent 3, whose namespace is ready (ports, no addresses, no daemon); site 2's router is
/// on agent 2. Agent 1's host dies (agent killed, its namespaces and charons gone) while a
/// ping runs: the standby takes the gateway address, starts charon, the tunnel comes back
/// and the ping resumes (the times are printed; BENCHMARKS.md keeps them). Agent 1 comes
/// back and runs nothing for the router it lost (fencing) while pings pass unharmed. A
/// switchover by hand makes agent 2 active and demotes agent 3 (its charon stops).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ha_routers_standby_takes_over_and_the_old_master_stays_fenced() {
    let mut lab = Lab::start_as(2, Mode::Agents(3)).await;
    let host = |n: usize| match n {
        1 => lab.prefix.clone(),
        _ => format!("{}-{n}", lab.prefix),
    };
    let (host1, host2, host3) = (host(1), host(2), host(3));
    let (r1, _) = (
        lab.site(1)["router_id"].as_str().expect("r1").to_string(),
        lab.site(2)["router_id"].as_str().expect("r2").to_string(),
    );
    let client = lab.client.clone();
    let holders = |r: &str| {
        let (c, r) = (client.clone(), r.to_string());
        async move {
            let router = c.show(Kind::Router, &r).await.expect("router");
            (
                router["agent_host"].clone(),
                router["ha_standby_host"].clone(),
            )
        }
    };
    lab.client
        .update(Kind::Router, &r1, json!({"ha": true}))
        .await
        .expect("HA");
    eventually(
        "a standby for the HA router",
        Duration::from_secs(10),
        async || holders(&r1).await == (json!(host1), json!(host3)),
    )
    .await;
    let standby_ns = format!("{}-t-{r1}", lab.prefix);
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "ha-secret").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "ha-secret").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    until_ping(&lab, 1, 2, Duration::from_secs(10));
    eventually(
        "the standby's namespace",
        Duration::from_secs(10),
        async || lab.namespaces().contains(&standby_ns),
    )
    .await;
    assert_eq!(addresses_in(&standby_ns), "", "a standby holds no address");
    assert!(!runs_anything(&standby_ns), "a standby runs no daemon");

    let pinger = Pinger::start(&lab, 2, 1, 12);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Instant::now();
    lab.kill_process(1);
    power_off(&format!("{}-r-", lab.prefix));
    until_ping(&lab, 1, 2, Duration::from_secs(30));
    let pinging = killed.elapsed();
    let mut active_again = None;
    eventually(
        "ACTIVE after AGENT_DOWN",
        Duration::from_secs(30),
        async || {
            let conn = lab
                .client
                .show(Kind::SiteConnection, &c12)
                .await
                .expect("conn");
            let events = lab
                .client
                .get(&format!("/v2.0/vpn/ipsec-site-connections/{c12}/events"))
                .await
                .expect("events");
            let saw_down = events["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["reason"] == "AGENT_DOWN"));
            if saw_down && conn["status"] == "ACTIVE" {
                active_again.get_or_insert(killed.elapsed());
            }
            active_again.is_some()
        },
    )
    .await;
    let (sent, received) = pinger.finish();
    eprintln!(
        "HA failover: active gateway host dead -> pinging again {pinging:?}, ACTIVE again {:?}; continuous ping every 50 ms lost {} of {sent} (agent_down_time 3 s, heartbeats every 1 s)",
        active_again.unwrap_or_default(),
        sent - received
    );
    assert!(
        pinging >= Duration::from_secs(2),
        "taken over before the agent missed 3 s of heartbeats (its last one was at most 1 s before it died)"
    );
    assert_eq!(holders(&r1).await, (json!(host3), json!(host2)));
    assert!(addresses_in(&standby_ns).contains(lab.site(1)["gateway_ip"].as_str().expect("gw")));

    let pinger = Pinger::start(&lab, 1, 2, 6);
    lab.start_process(1);
    lab.wait_for_host(&host1, true).await;
    let leftover = lab._dir.path().join("state").join(&r1);
    eventually(
        "the revived agent drops the lost router",
        Duration::from_secs(10),
        async || !leftover.exists(),
    )
    .await;
    assert!(
        !lab.namespaces().contains(&format!("{}-r-{r1}", lab.prefix)),
        "the revived old master runs nothing for the router it lost"
    );
    let (sent, received) = pinger.finish();
    assert!(
        sent - received <= 1,
        "the old master's return disturbed the tunnel: {received} of {sent}"
    );

    let agents = lab.client.list(Kind::Agent, &[]).await.expect("agents");
    let agent2 = id(agents.iter().find(|a| a["host"] == host2).expect("agent 2"));
    let switched = Instant::now();
    let (status, body) = lab
        .client
        .raw(
            vpnaas_client::Method::POST,
            &format!("/v2.0/agents/{agent2}/vpn-routers"),
            Some(&json!({"router_id": r1})),
        )
        .await
        .expect("switchover");
    assert_eq!(status.as_u16(), 201, "{body}");
    assert_eq!(holders(&r1).await, (json!(host2), json!(host3)));
    eventually(
        "the demoted agent stops its charon",
        Duration::from_secs(10),
        async || !runs_anything(&standby_ns) && addresses_in(&standby_ns).is_empty(),
    )
    .await;
    let pinging = until_ping(&lab, 1, 2, Duration::from_secs(30));
    eprintln!(
        "HA switchover by hand -> pinging {pinging:?} (API call {:?} ago)",
        switched.elapsed()
    );
}

/// `vpnaas lab up --agents 2 --ha` on a `vpnaas server`: the lab runs its own gateway
/// hosts and its routers are HA on them. `lab power-off 1` cuts one: the other takes over
/// and pings pass again; `lab power-on 1` brings it back; `lab down` stops the lab's
/// agents and leaves no namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_runs_its_own_gateway_hosts_and_cuts_their_power() {
    let lab = Lab::start_as(2, Mode::LabGateways(2)).await;
    let (gw1, gw2) = (format!("{}-gw1", lab.prefix), format!("{}-gw2", lab.prefix));
    let r1 = lab.site(1)["router_id"].as_str().expect("r1").to_string();
    let router = lab.client.show(Kind::Router, &r1).await.expect("router");
    assert_eq!(
        (&router["agent_host"], &router["ha_standby_host"]),
        (&json!(gw1), &json!(gw2))
    );
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "lab-ha").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "lab-ha").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    until_ping(&lab, 1, 2, Duration::from_secs(10));

    lab.lab_command(&["power-off", "1"]);
    assert!(
        !lab.namespaces().iter().any(|n| n.starts_with(&gw1)),
        "a powered-off gateway keeps no namespace"
    );
    let pinging = until_ping(&lab, 1, 2, Duration::from_secs(30));
    eprintln!("lab power-off 1 -> pinging through gateway 2: {pinging:?}");
    lab.wait_for_host(&gw1, false).await;
    let router = lab.client.show(Kind::Router, &r1).await.expect("router");
    assert_eq!(router["agent_host"], gw2.as_str());
    lab.lab_command(&["power-on", "1"]);
    lab.wait_for_host(&gw1, true).await;
    let agents = lab.lab_gateway_pids();
    assert_eq!(agents.len(), 2);

    lab.lab_command(&["down"]);
    let running: Vec<&String> = agents
        .iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&lab.prefix))
        })
        .collect();
    assert!(
        running.is_empty(),
        "lab down left agents running: {running:?}"
    );
    assert_eq!(lab.namespaces(), Vec::<String>::new());
}

/// How a command ended: its exit code or the signal that killed it, and whether it
/// printed ping's summary.
#[derive(Debug, PartialEq, Eq)]
struct Ended {
    code: Option<i32>,
    signal: Option<i32>,
    summary: bool,
}

/// Runs `command` (a ping) until it printed two replies, sends it `signal` (by its pid
/// only) and returns how it ended.
fn ping_until_signalled(mut command: Command, signal: &str) -> Ended {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the ping");
    let stdout = child.stdout.take().expect("stdout");
    let (lines, printed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let mut output = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while output.matches("bytes from").count() < 2 {
        let Ok(line) = printed.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        else {
            let _ = child.kill();
            panic!("no two ping replies within 20 s:\n{output}");
        };
        output += &line;
        output.push('\n');
    }
    let _ = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    // The rest of its output, until the pipe closes (bounded: a ping left running would
    // keep it open).
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Ok(line) = printed.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        output += &line;
        output.push('\n');
    }
    Ended {
        code: status.code(),
        signal: status.signal(),
        summary: output.contains("packets transmitted"),
    }
}

/// `vpnaas lab exec` behaves like the command it runs: a ping through it, sent SIGINT or
/// SIGTERM, ends as the same ping run directly in the namespace does (SIGINT: summary,
/// exit 0; SIGTERM: killed) and leaves nothing running; an exit status is the command's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_exec_behaves_like_the_command_it_runs() {
    let lab = Lab::start(1).await;
    let namespace = format!("{}-h1", lab.prefix);
    let ping = ["ping", "-i", "0.2", "10.1.0.1"];
    let through_lab = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vpnaas"));
        command
            .args(["lab", "exec", "1", "--prefix", &lab.prefix, "--"])
            .args(ping);
        command
    };
    let directly = || {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &namespace]).args(ping);
        command
    };
    for signal in ["INT", "TERM"] {
        let direct = ping_until_signalled(directly(), signal);
        assert!(!runs_anything(&namespace), "the direct ping stopped");
        let through = ping_until_signalled(through_lab(), signal);
        assert_eq!(through, direct, "SIG{signal}");
        assert!(
            !runs_anything(&namespace),
            "SIG{signal} left the ping running"
        );
    }
    assert_eq!(
        ping_until_signalled(through_lab(), "INT"),
        Ended {
            code: Some(0),
            signal: None,
            summary: true
        }
    );
    let out = vpnaas(
        &lab.url,
        &[
            "lab",
            "exec",
            "1",
            "--prefix",
            &lab.prefix,
            "--",
            "sh",
            "-c",
            "exit 7",
        ],
    );
    assert_eq!(out.status.code(), Some(7));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `lab down` waits for the agents to remove the lab's routers, bounded: with the agent
/// killed, it fails after `--timeout` naming the router's namespace and its charon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_down_names_what_a_dead_agent_left() {
    let mut lab = Lab::start_as(2, Mode::Separate).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let s1 = lab.service(1).await;
    let c12 = lab.connect(&s1, 1, 2, &policies, "left-behind").await;
    lab.wait_status(&c12, "DOWN", Duration::from_secs(20)).await;
    let charon = charon_pid(&lab, 1);
    let agent = &mut lab.processes[1];
    agent.kill().expect("kill the agent");
    agent.wait().expect("reap the agent");
    let out = vpnaas(
        &lab.url,
        &[
            "lab",
            "down",
            "--timeout",
            "1",
            "--prefix",
            &lab.prefix,
            "--fabric-namespace",
            &lab.fabric,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    for left in [
        format!("namespace {}", lab.router_namespace(1)),
        format!("charon (pid {charon}"),
    ] {
        assert!(stderr.contains(&left), "'{left}' not named: {stderr}");
    }
}
