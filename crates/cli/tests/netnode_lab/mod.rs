//! What the network node VPN test drives besides Neutron's own lab: vpnaas (a server with
//! `auth = "keystone"` and `inventory = "neutron"`, and one agent per network node, logged
//! in to Keystone as vpnaas's service user), the "VMs" plugged into the integration bridge,
//! an echo listener that reports the source address it sees, and a steady ping that
//! measures silences.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use vpnaas_test_support::keystone::{self, Keystone};
use vpnaas_test_support::netnode::{self, NetNode, host};
use vpnaas_test_support::neutron::{Identity, Neutron};
use vpnaas_test_support::process::Group;

const PYTHON: &str = "/usr/bin/python3";
/// How long the listener waits for an echo request.
const LISTEN: Duration = Duration::from_secs(120);

pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// The `vpnaas server` of the lab and a `vpnaas agent` per network node (logs `server`
/// and `agent-<host>`); charons the agents leave are swept on drop, by pid, on each node.
pub struct Vpnaas {
    agents: Vec<(String, Group)>,
    server: Group,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    port: u16,
    keystone_url: String,
    keystone_port: u16,
    /// The project member the test acts as, and Keystone's admin.
    member: Identity,
    admin: Identity,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Vpnaas {
    /// The server, for `neutron_url`, logged in to `keystone` as `service_user` (admin in
    /// project `service`: it reads every project's routers); the test acts as `member`.
    pub fn start(
        neutron_url: &str,
        keystone: &Keystone,
        service_user: &keystone::User,
        member: Identity,
    ) -> Vpnaas {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = vpnaas_test_support::free_port();
        let listen = format!("127.0.0.1:{port}");
        let config = dir.path().join("server.toml");
        let mut neutron = toml::Table::new();
        neutron.insert("url".into(), neutron_url.into());
        neutron.insert("poll_interval".into(), 0.5.into());
        let mut settings = toml::Table::new();
        settings.insert("listen".into(), listen.clone().into());
        let data = dir.path().join("data").display().to_string();
        settings.insert("data_dir".into(), data.into());
        settings.insert("auth".into(), "keystone".into());
        let mut identity = toml::Table::new();
        identity.insert("auth_url".into(), keystone.url.clone().into());
        identity.insert("username".into(), service_user.name.clone().into());
        identity.insert("password".into(), service_user.password.clone().into());
        identity.insert("project_name".into(), keystone::SERVICE_PROJECT.into());
        settings.insert("keystone".into(), identity.into());
        settings.insert("inventory".into(), "neutron".into());
        settings.insert("neutron".into(), neutron.into());
        std::fs::write(&config, settings.to_string()).expect("server.toml");
        let url = format!("http://{listen}");
        let mut server = Command::new(env!("CARGO_BIN_EXE_vpnaas"));
        server.arg("server").arg("--config").arg(&config);
        Vpnaas {
            server: vpnaas(dir.path(), "server", server),
            agents: Vec::new(),
            url,
            port,
            keystone_url: keystone.url.clone(),
            keystone_port: keystone.port(),
            member,
            admin: Identity::Token(keystone.admin_token.clone()),
            http: reqwest::Client::new(),
            dir,
        }
    }

    /// Starts the vpnaas agent of `node` (on the node, the server's port reached there),
    /// with a resync interval long enough that only events keep it in step.
    pub fn start_agent(&mut self, node: &mut NetNode) {
        node.reach(self.port);
        node.reach(self.keystone_port);
        let state = self.dir.path().join(format!("state-{}", node.host));
        let mut agent = node.command(env!("CARGO_BIN_EXE_vpnaas"));
        agent
            .env("VPNAAS_AGENT_KEYSTONE_PASSWORD", keystone::SERVICE_PASSWORD)
            .args(["agent", "--server", &self.url, "--host", node.host])
            .args(["--keystone-auth-url", &self.keystone_url])
            .args(["--keystone-username", keystone::SERVICE_USER])
            .args(["--keystone-project-name", keystone::SERVICE_PROJECT])
            .args(["--libreswan-root", &libreswan_root()])
            .args(["--l3-mode", "neutron", "--resync-interval", "30"])
            .args(["--heartbeat-interval", "2", "--state-dir"])
            .arg(&state);
        let name = format!("agent-{}", node.host);
        let group = vpnaas(self.dir.path(), &name, agent);
        self.agents.push((node.host.to_string(), group));
    }

    pub fn log(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Every log, for a failure's message.
    pub fn logs(&self) -> String {
        let mut logs = format!("== vpnaas server\n{}", self.log("server"));
        for (host, _) in &self.agents {
            let name = format!("agent-{host}");
            logs += &format!("\n== vpnaas {name}\n{}", self.log(&name));
        }
        logs
    }

    pub fn check_running(&mut self) {
        if let Some(status) = self.server.exited() {
            panic!("vpnaas server exited ({status}): {}", self.log("server"));
        }
        for (host, agent) in &mut self.agents {
            if let Some(status) = agent.exited() {
                let name = format!("agent-{host}");
                let log = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")));
                panic!(
                    "vpnaas {name} exited ({status}): {}",
                    log.unwrap_or_default()
                );
            }
        }
    }

    /// `method path` as the test's project member; status and body.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(&self.member, method, path, body).await
    }

    /// `method path` as Keystone's admin; status and body.
    pub async fn call_as_admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call_as(&self.admin, method, path, body).await
    }

    async fn call_as(
        &self,
        who: &Identity,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = who.apply(
            self.http
                .request(method.clone(), format!("{}{path}", self.url)),
        );
        if let Some(body) = body {
            request = request.json(&body);
        }
        match request.send().await {
            Ok(answer) => {
                let status = answer.status().as_u16();
                (status, answer.json().await.unwrap_or(Value::Null))
            }
            Err(error) => (0, json!(error.to_string())),
        }
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub async fn delete(&self, collection: &str, id: &str) {
        let path = format!("/v2.0/vpn/{collection}/{id}");
        let (status, body) = self.call(Method::DELETE, &path, None).await;
        assert_eq!(status, 204, "DELETE {path}: {body}");
    }

    pub async fn status(&self, conn: &str) -> String {
        let path = format!("/v2.0/vpn/ipsec-site-connections/{conn}");
        self.get(&path).await["ipsec_site_connection"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// `GET path` as Keystone's admin; the body, `Null` when the server does not answer.
    pub async fn get_as_admin(&self, path: &str) -> Value {
        let request = self
            .admin
            .apply(self.http.get(format!("{}{path}", self.url)));
        let Ok(answer) = request.send().await else {
            return Value::Null;
        };
        answer.json().await.unwrap_or(Value::Null)
    }

    /// Whether the server lists the agent of `host` alive.
    pub async fn agent_alive(&self, host: &str) -> bool {
        let body = self.get_as_admin("/v2.0/agents").await;
        body["agents"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["host"] == host && a["alive"] == true)
    }

    /// The `ha_state` vpnaas gives each agent holding `router`, as `(host, state)`.
    pub async fn ha_states(&self, router: &str) -> Vec<(String, String)> {
        let path = format!("/v2.0/routers/{router}/vpn-agents");
        let body = self.get_as_admin(&path).await;
        let field = |a: &Value, key: &str| a[key].as_str().unwrap_or_default().to_string();
        body["agents"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| (field(a, "host"), field(a, "ha_state")))
            .collect()
    }
}

impl Drop for Vpnaas {
    /// The agents and the server, then the charons they left (started under the lab's
    /// state directory, so named by it).
    fn drop(&mut self) {
        for (_, agent) in &mut self.agents {
            agent.kill();
        }
        self.server.kill();
        host::kill_processes_naming(self.dir.path());
    }
}

/// A `vpnaas` process of the lab, logging to `<name>.log` in `dir`.
fn vpnaas(dir: &Path, name: &str, mut command: Command) -> Group {
    command.env("VPNAAS_LOG", "info");
    Group::spawn(name, command, &dir.join(format!("{name}.log")))
}

/// Where scripts/setup.sh unpacks Libreswan (or `VPNAAS_LIBRESWAN_ROOT`).
pub fn libreswan_root() -> String {
    std::env::var("VPNAAS_LIBRESWAN_ROOT").unwrap_or("/opt/vpnaas/libreswan".into())
}

/// The pids of the charon processes in `namespace` of `node`.
pub fn charons_in(node: &NetNode, namespace: &str) -> Vec<u32> {
    daemons_in(node, namespace, "charon")
}

/// The pids of the processes named `name` in `namespace` of `node`.
pub fn daemons_in(node: &NetNode, namespace: &str, name: &str) -> Vec<u32> {
    node.pids_in(namespace)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == name)
        })
        .collect()
}

/// A "VM" as Nova and os-vif plug one: a Neutron port bound to `hostA`, a veth whose
/// host end is on the integration bridge with the port's id, MAC and status in its
/// external ids, and whose other end (`eth0`, the port's MAC and address, a default route
/// via the subnet's gateway) is in a namespace of the test's own. Unplugged on drop.
pub struct Vm {
    pub port: String,
    pub ip: String,
    pub gateway: String,
    pub namespace: String,
    device: String,
    ovs_run_dir: std::path::PathBuf,
}

impl Vm {
    pub async fn plug(
        neutron: &Neutron,
        node: &NetNode,
        project: &str,
        network: &str,
        n: usize,
    ) -> Vm {
        let port = neutron
            .create(
                &neutron.admin,
                "/v2.0/ports",
                "port",
                json!({"network_id": network, "project_id": project, "name": format!("vm{n}"),
                    "device_owner": "compute:nova", "device_id": format!("vm{n}"),
                    "binding:host_id": netnode::HOST}),
            )
            .await;
        let fixed = &port["fixed_ips"][0];
        let subnet = neutron
            .call(
                &neutron.admin,
                Method::GET,
                &format!(
                    "/v2.0/subnets/{}",
                    fixed["subnet_id"].as_str().expect("subnet")
                ),
                None,
            )
            .await;
        let port_id = id(&port);
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let vm = Vm {
            ip: fixed["ip_address"].as_str().expect("ip").to_string(),
            gateway: subnet.body["subnet"]["gateway_ip"]
                .as_str()
                .expect("gateway")
                .to_string(),
            namespace: format!("vpnaas-vm{n}-{tag}"),
            device: format!("tap{}", &port_id[..11]),
            port: port_id,
            ovs_run_dir: node.ovs.run_dir.clone(),
        };
        vm.wire(port["mac_address"].as_str().expect("mac"), node);
        vm
    }

    fn wire(&self, mac: &str, node: &NetNode) {
        let (ns, dev) = (self.namespace.as_str(), self.device.as_str());
        let address = format!("{}/24", self.ip);
        run("ip", &["netns", "add", ns]);
        run(
            "ip",
            &[
                "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ],
        );
        run("ip", &["link", "set", dev, "up"]);
        for step in [
            &["link", "set", "eth0", "address", mac][..],
            &["addr", "add", &address, "dev", "eth0"],
            &["link", "set", "eth0", "up"],
            &["link", "set", "lo", "up"],
            &["route", "add", "default", "via", &self.gateway],
        ] {
            run("ip", &[&["-n", ns][..], step].concat());
        }
        let ids = [
            format!("external-ids:iface-id={}", self.port),
            format!("external-ids:attached-mac={mac}"),
            "external-ids:iface-status=active".to_string(),
        ];
        let mut args = vec![
            "add-port",
            netnode::INTEGRATION_BRIDGE,
            dev,
            "--",
            "set",
            "Interface",
            dev,
        ];
        args.extend(ids.iter().map(String::as_str));
        node.ovs.vsctl(&args);
    }

    /// One echo request to `address` is answered within a second.
    pub fn pings(&self, address: &str) -> bool {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.namespace,
                "ping",
                "-c1",
                "-W1",
                address,
            ])
            .output()
            .is_ok_and(|out| out.status.success())
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = Command::new("ovs-vsctl")
            .env("OVS_RUNDIR", &self.ovs_run_dir)
            .args(["--timeout=10", "--if-exists", "del-port", &self.device])
            .output();
        let _ = Command::new("ip")
            .args(["link", "delete", &self.device])
            .output();
        host::delete_namespace(&self.namespace);
    }
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().expect(program);
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A raw ICMP socket in a VM's namespace that prints the source address of the first
/// echo request it receives (what the VM itself sees, after every router on the way).
/// It says `ready` once its socket is open, and is not pinged before: an echo request
/// sent earlier would pass unheard and the ping, answered, would not be repeated.
pub struct Listener {
    child: Option<std::process::Child>,
    stdout: Option<std::io::BufReader<std::process::ChildStdout>>,
}

/// Fixed program; its one argument is how long it waits.
const ECHO_SOURCE: &str = "import socket,sys
s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP)
s.settimeout(float(sys.argv[1]))
print('ready',flush=True)
d,a=s.recvfrom(2048)
while d[(d[0]&15)*4]!=8: d,a=s.recvfrom(2048)
print(a[0],flush=True)
";

impl Listener {
    pub fn start(vm: &Vm) -> Listener {
        let timeout = LISTEN.as_secs().to_string();
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &vm.namespace,
                PYTHON,
                "-c",
                ECHO_SOURCE,
                &timeout,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        std::io::BufRead::read_line(&mut stdout, &mut line).expect("the listener starts");
        assert_eq!(line.trim(), "ready", "the listener did not open its socket");
        Listener {
            child: Some(child),
            stdout: Some(stdout),
        }
    }

    pub fn finish(mut self) -> String {
        let mut child = self.child.take().expect("the listener runs");
        let mut heard = String::new();
        let stdout = self.stdout.as_mut().expect("stdout");
        std::io::BufRead::read_line(stdout, &mut heard).expect("listener output");
        let status = child.wait().expect("listener");
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
        }
        assert!(
            status.success(),
            "the listener heard no echo request: {stderr}"
        );
        heard.trim().to_string()
    }
}

impl Drop for Listener {
    /// A test that fails before [`Listener::finish`] ends it now.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A steady ping from a VM at 20 per second, each answer's time kept (`ping -D`), to
/// measure the longest silence while something fails over.
pub struct Pinger {
    child: std::process::Child,
    answers: Arc<Mutex<Vec<f64>>>,
}

impl Pinger {
    pub fn start(from: &Vm, to: &str) -> Pinger {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &from.namespace,
                "ping",
                "-D",
                "-i",
                "0.05",
                "-W",
                "1",
            ])
            .arg(to)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ping");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let heard = answers.clone();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(stdout).map_while(Result::ok) {
                if let Some(at) = answer_time(&line) {
                    heard.lock().expect("answers").push(at);
                }
            }
        });
        Pinger { child, answers }
    }

    /// How many answers came so far.
    pub fn answered(&self) -> usize {
        self.answers.lock().expect("answers").len()
    }

    /// The longest time between two answers so far, in seconds.
    pub fn longest_silence(&self) -> f64 {
        let answers = self.answers.lock().expect("answers");
        answers.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The time of an answer line of `ping -D` (`[1733240000.123456] 64 bytes from …`).
fn answer_time(line: &str) -> Option<f64> {
    let (stamp, rest) = line.strip_prefix('[')?.split_once(']')?;
    rest.contains("bytes from").then(|| stamp.parse().ok())?
}

/// One router of a test, its subnet and its VM.
pub struct Site {
    pub router: String,
    pub namespace: String,
    pub subnet: String,
    pub cidr: &'static str,
    pub gateway: String,
    pub vm: Vm,
}

/// How many times `node`'s neutron-l3-agent has logged that it finished processing
/// `router` (its log is appended to across restarts).
pub fn router_updates(node: &NetNode, router: &str) -> usize {
    let log = std::fs::read_to_string(node.dir().join("neutron-l3-agent.log"));
    log.unwrap_or_default()
        .matches(&format!("Finished a router update for {router}"))
        .count()
}

/// The namespace's rules on `node` as `iptables-save` shows them, without its comments
/// and counters (traffic changes those, not the rules).
pub fn firewall(node: &NetNode, namespace: &str) -> Vec<String> {
    node.netns_exec(namespace, &["iptables-save"])
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| match line.split_once(" [") {
            Some((chain, _)) if line.starts_with(':') => chain.to_string(),
            _ => line.to_string(),
        })
        .collect()
}
