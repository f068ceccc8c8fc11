//! A real VPN between two Neutron routers on a real network node: Neutron (identity from
//! headers, no Keystone, to keep the lab fast) with its RPC server on a RabbitMQ, the
//! network node `hostA` (userspace Open vSwitch, neutron-openvswitch-agent,
//! neutron-l3-agent), a `vpnaas server` with `auth = "noauth"` and `inventory =
//! "neutron"`, and one `vpnaas agent --host hostA --l3-mode neutron`. Two routers on the
//! external network, each with a tenant subnet and a "VM" plugged the way Nova does (a
//! veth on the integration bridge with the port's `iface-id`, its other end in a
//! namespace of the test's own); a connection each way between the routers' gateways. The
//! test waits for both `ACTIVE`, pings VM to VM through the tunnel, checks that VM2 sees
//! VM1's own address (the NAT exemption ahead of Neutron's SNAT), then deletes the VPN
//! and checks that no charon, chain or jump of vpnaas is left in either `qrouter-`
//! namespace and that Neutron's rules there are as they were before the VPN.
//!
//! Root only (skips saying why otherwise; fails when `VPNAAS_TEST_REQUIRE_OPENSTACK` is
//! set and something is missing). Everything it starts is stopped on drop, by pid.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use vpnaas_test_support::netnode::{self, NetNode, host};
use vpnaas_test_support::neutron::{Identity, Neutron, NeutronOptions};
use vpnaas_test_support::process::Group;
use vpnaas_test_support::rabbitmq::RabbitMq;

const CIDRS: [&str; 2] = ["10.1.0.0/24", "10.2.0.0/24"];
const PSK: &str = "a-secret-between-routers";
const CHARON: &str = "/usr/lib/ipsec/charon";
const PYTHON: &str = "/usr/bin/python3";

/// How long any awaited state may take before the test fails with the logs.
const PATIENCE: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vpn_between_two_neutron_routers_carries_unsnated_traffic_and_leaves_nothing() {
    if vpnaas_test_support::skip_without_netnode() || skip_without_ipsec() {
        return;
    }
    let started = Instant::now();
    let mut lab = Lab::start().await;
    let stack_up = started.elapsed();

    let t = Instant::now();
    let sites = lab.sites().await;
    let sites_ready = t.elapsed();
    let before: Vec<Vec<String>> = sites.iter().map(|s| firewall(&s.namespace)).collect();

    let t = Instant::now();
    let connections = lab.vpn(&sites).await;
    for conn in &connections {
        lab.wait_for(&format!("connection {conn} ACTIVE"), || async {
            (lab.vpnaas.status(conn).await == "ACTIVE").then_some(())
        })
        .await;
    }
    let active = t.elapsed();
    // Neutron's L3 agent may rewrite its tables after the agent's last apply (it did here:
    // it processes each router update twice); the agent's next resync puts its jumps back
    // first.
    lab.wait_for("vpnaas's jumps first in both namespaces", || async {
        chains_in_place(&sites).then_some(())
    })
    .await;

    let t = Instant::now();
    let seen = lab.source_seen_by(&sites[1].vm, &sites[0].vm).await;
    assert_eq!(
        seen, sites[0].vm.ip,
        "VM2 must see VM1's own address through the tunnel, not the SNAT address {}",
        sites[0].gateway
    );
    let ping = t.elapsed();

    let t = Instant::now();
    lab.delete_vpn(&connections).await;
    for (site, rules) in sites.iter().zip(&before) {
        lab.wait_for(
            &format!("nothing of vpnaas in {}", site.namespace),
            || async { vpnaas_gone(site).then_some(()) },
        )
        .await;
        assert_eq!(
            firewall(&site.namespace),
            *rules,
            "Neutron's rules in {} changed",
            site.namespace
        );
    }
    let cleaned = t.elapsed();
    eprintln!(
        "stack up {stack_up:?}, routers and VMs {sites_ready:?}, both ACTIVE {active:?}, \
         first unSNATed packet {ping:?}, VPN gone {cleaned:?}, whole test {:?}",
        started.elapsed()
    );
    drop(sites);
    lab.check_running();
}

/// The IKE daemon the agent runs; Python for the far VM's listener.
fn skip_without_ipsec() -> bool {
    let missing: Vec<&str> = [CHARON, PYTHON]
        .into_iter()
        .filter(|tool| !Path::new(tool).exists())
        .collect();
    if missing.is_empty() {
        return false;
    }
    let reason = format!("missing {} (run scripts/setup.sh)", missing.join(", "));
    assert!(
        std::env::var_os(vpnaas_test_support::REQUIRE_OPENSTACK).is_none(),
        "{}: {reason}",
        vpnaas_test_support::REQUIRE_OPENSTACK
    );
    eprintln!("skipped: {reason}");
    true
}

/// The whole lab; fields drop in order: vpnaas (agent, server, charons), the network
/// node, Neutron, RabbitMQ.
struct Lab {
    vpnaas: Vpnaas,
    node: NetNode,
    neutron: Neutron,
    _rabbit: RabbitMq,
}

impl Lab {
    async fn start() -> Lab {
        let mut rabbit = RabbitMq::spawn();
        let transport_url = rabbit.transport_url();
        let neutron = Neutron::start(&NeutronOptions::headers().with_bus(&transport_url)).await;
        rabbit.ready();
        let node = NetNode::start(&neutron, &rabbit).await;
        let vpnaas = Vpnaas::start(&neutron.url);
        let lab = Lab {
            vpnaas,
            node,
            neutron,
            _rabbit: rabbit,
        };
        lab.wait_for("the vpnaas agent of hostA alive", || async {
            lab.vpnaas.agent_alive().await.then_some(())
        })
        .await;
        lab
    }

    /// The external network, and per CIDR a router with its gateway there, a tenant
    /// network attached to it and a VM on that network, once the router's namespace is
    /// built and the VM's port is up.
    async fn sites(&mut self) -> Vec<Site> {
        let public = self
            .neutron
            .external_network("public", netnode::EXTERNAL_CIDR)
            .await;
        let mut sites = Vec::new();
        for (n, cidr) in CIDRS.into_iter().enumerate() {
            let router = self
                .neutron
                .router(&member(), &format!("r{n}"), &public.network)
                .await;
            let id = router["id"].as_str().expect("router id").to_string();
            let net = self
                .neutron
                .tenant_network(&member(), &format!("n{n}"), cidr, Some(&id))
                .await;
            let gateway = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
                .as_str()
                .expect("gateway address")
                .to_string();
            let vm = Vm::plug(&self.neutron, &self.node, &net.network, n).await;
            self.vpnaas.namespaces.push(format!("qrouter-{id}"));
            sites.push(Site {
                namespace: format!("qrouter-{id}"),
                router: id,
                subnet: net.subnet,
                cidr,
                gateway,
                vm,
            });
        }
        for site in &sites {
            self.wait_for(&format!("{} built", site.namespace), || async {
                namespace_ready(site).then_some(())
            })
            .await;
            host::without_tx_offload(&site.namespace);
            host::without_tx_offload(&site.vm.namespace);
            self.wait_for(&format!("port {} ACTIVE", site.vm.port), || async {
                (self.port_status(&site.vm.port).await == "ACTIVE").then_some(())
            })
            .await;
        }
        sites
    }

    async fn port_status(&self, port: &str) -> String {
        let path = format!("/v2.0/ports/{port}");
        let answer = self
            .neutron
            .call(&self.neutron.admin, Method::GET, &path, None)
            .await;
        answer.body["port"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Policies, a VPN service per router and a connection each way, through vpnaas's
    /// API; returns the connections' ids.
    async fn vpn(&self, sites: &[Site]) -> Vec<String> {
        let api = &self.vpnaas;
        let ike = api
            .create("ikepolicies", "ikepolicy", json!({"ike_version": "v2"}))
            .await;
        let ipsec = api.create("ipsecpolicies", "ipsecpolicy", json!({})).await;
        let mut connections = Vec::new();
        for (site, peer) in [(&sites[0], &sites[1]), (&sites[1], &sites[0])] {
            let service = api
                .create(
                    "vpnservices",
                    "vpnservice",
                    json!({"router_id": site.router, "subnet_id": site.subnet}),
                )
                .await;
            assert_eq!(
                service["external_v4_ip"],
                json!(site.gateway),
                "the service's address is the router's gateway: {service}"
            );
            let conn = api
                .create(
                    "ipsec-site-connections",
                    "ipsec_site_connection",
                    json!({"vpnservice_id": service["id"], "ikepolicy_id": ike["id"],
                        "ipsecpolicy_id": ipsec["id"], "peer_address": peer.gateway,
                        "peer_id": peer.gateway, "peer_cidrs": [peer.cidr], "psk": PSK}),
                )
                .await;
            connections.push(id(&conn));
        }
        connections
    }

    /// Deletes the connections, then every VPN service.
    async fn delete_vpn(&self, connections: &[String]) {
        for conn in connections {
            self.vpnaas.delete("ipsec-site-connections", conn).await;
        }
        let services = self.vpnaas.get("/v2.0/vpn/vpnservices").await;
        for service in services["vpnservices"].as_array().expect("services") {
            self.vpnaas.delete("vpnservices", &id(service)).await;
        }
    }

    /// The source address `to` sees on the echo requests `from` sends it, once one of
    /// them has been answered (each way through the tunnel).
    async fn source_seen_by(&self, to: &Vm, from: &Vm) -> String {
        let listener = Listener::start(to);
        self.wait_for(&format!("a ping from {} to {}", from.ip, to.ip), || async {
            from.pings(&to.ip).then_some(())
        })
        .await;
        listener.finish()
    }

    /// Polls `probe` until it gives a value, failing with the logs after [`PATIENCE`]
    /// or when a daemon of the lab has died.
    async fn wait_for<T, F, Fut>(&self, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let started = Instant::now();
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "no {what} after {PATIENCE:?}\n== vpnaas server\n{}\n== vpnaas agent\n{}\n\
                 == neutron-l3-agent\n{}\n== neutron-openvswitch-agent\n{}",
                self.vpnaas.log("server"),
                self.vpnaas.log("agent"),
                self.node.log("neutron-l3-agent"),
                self.node.log("neutron-openvswitch-agent"),
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Panics when a process of the lab has exited.
    fn check_running(&mut self) {
        self.node.check_running();
        self.vpnaas.check_running();
    }
}

/// A member of `project-1`, with `reader` as Keystone's role implication would give it.
fn member() -> Identity {
    Identity::headers("project-1", &["member", "reader"])
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// One router of the test, its subnet and its VM.
struct Site {
    router: String,
    namespace: String,
    subnet: String,
    cidr: &'static str,
    gateway: String,
    vm: Vm,
}

/// The router's namespace holds the gateway address and the subnet's gateway, and the L3
/// agent has written the interface's rules (its address scope mark), the last it adds:
/// the "before" snapshot of Neutron's rules is taken after them.
fn namespace_ready(site: &Site) -> bool {
    if !host::namespaces().contains(&site.namespace) {
        return false;
    }
    let addresses = host::netns_exec(&site.namespace, &["ip", "-o", "-4", "addr", "show"]);
    let holds = |address: &str| addresses.contains(&format!(" {address}/"));
    let scoped = firewall(&site.namespace)
        .iter()
        .any(|rule| rule.starts_with("-A neutron-l3-agent-scope -i qr-"));
    holds(&site.gateway) && holds(&site.vm.gateway) && scoped
}

/// The namespace's rules as `iptables-save` shows them, without its comments and
/// counters (traffic changes those, not the rules).
fn firewall(namespace: &str) -> Vec<String> {
    host::netns_exec(namespace, &["iptables-save"])
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| match line.split_once(" [") {
            Some((chain, _)) if line.starts_with(':') => chain.to_string(),
            _ => line.to_string(),
        })
        .collect()
}

/// vpnaas's chains, jumped to first from POSTROUTING and FORWARD, hold the exemption.
fn chains_in_place(sites: &[Site]) -> bool {
    let pairs = [(&sites[0], &sites[1]), (&sites[1], &sites[0])];
    pairs.into_iter().all(|(site, peer)| {
        let rules = firewall(&site.namespace);
        let exemption = format!("-A vpnaas-nat -s {} -d {} -j ACCEPT", site.cidr, peer.cidr);
        let hooks = [
            ("nat", "POSTROUTING", "vpnaas-nat"),
            ("mangle", "FORWARD", "vpnaas-mss"),
        ];
        rules.contains(&exemption)
            && hooks.into_iter().all(|(table, hook, chain)| {
                first_rule(&rules, table, hook) == Some(format!("-A {hook} -j {chain}"))
            })
    })
}

/// The first rule of `table`'s chain `chain` in `iptables-save` lines.
fn first_rule(rules: &[String], table: &str, chain: &str) -> Option<String> {
    let header = format!("*{table}");
    let prefix = format!("-A {chain} ");
    rules
        .iter()
        .skip_while(|line| **line != header)
        .take_while(|line| line.as_str() != "COMMIT")
        .find(|line| line.starts_with(&prefix))
        .cloned()
}

/// No charon in the namespace, no `vpnaas-` chain or jump in its rules.
fn vpnaas_gone(site: &Site) -> bool {
    charons_in(&site.namespace).is_empty()
        && !firewall(&site.namespace)
            .iter()
            .any(|rule| rule.contains("vpnaas-"))
}

/// The pids of the charon processes in `namespace`.
fn charons_in(namespace: &str) -> Vec<String> {
    pids_in(namespace)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "charon")
        })
        .collect()
}

fn pids_in(namespace: &str) -> Vec<String> {
    let output = Command::new("ip")
        .args(["netns", "pids", namespace])
        .output()
        .expect("ip netns pids");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The `vpnaas server` and `vpnaas agent` of the lab, and the namespaces whose charons
/// are swept after them on drop.
struct Vpnaas {
    agent: Group,
    server: Group,
    url: String,
    http: reqwest::Client,
    namespaces: Vec<String>,
    dir: tempfile::TempDir,
}

impl Vpnaas {
    fn start(neutron_url: &str) -> Vpnaas {
        let dir = tempfile::tempdir().expect("tempdir");
        let listen = format!("127.0.0.1:{}", vpnaas_test_support::free_port());
        let config = dir.path().join("server.toml");
        let mut neutron = toml::Table::new();
        neutron.insert("url".into(), neutron_url.into());
        neutron.insert("poll_interval".into(), 0.5.into());
        let mut settings = toml::Table::new();
        settings.insert("listen".into(), listen.clone().into());
        let data = dir.path().join("data").display().to_string();
        settings.insert("data_dir".into(), data.into());
        settings.insert("auth".into(), "noauth".into());
        settings.insert("inventory".into(), "neutron".into());
        settings.insert("neutron".into(), neutron.into());
        std::fs::write(&config, settings.to_string()).expect("server.toml");
        let url = format!("http://{listen}");
        let server = vpnaas(dir.path(), "server", |c| {
            c.arg("server").arg("--config").arg(&config);
        });
        let state = dir.path().join("state");
        let agent = vpnaas(dir.path(), "agent", |c| {
            c.args(["agent", "--server", &url, "--host", netnode::HOST])
                .args(["--l3-mode", "neutron", "--resync-interval", "5"])
                .args(["--heartbeat-interval", "2", "--state-dir"])
                .arg(&state);
        });
        Vpnaas {
            agent,
            server,
            url,
            http: reqwest::Client::new(),
            namespaces: Vec::new(),
            dir,
        }
    }

    fn log(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn check_running(&mut self) {
        for (name, status) in [
            ("server", self.server.exited()),
            ("agent", self.agent.exited()),
        ] {
            if let Some(status) = status {
                panic!("vpnaas {name} exited ({status}): {}", self.log(name));
            }
        }
    }

    /// `method path` as the member of `project-1`; status and body.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = member().apply(
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

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    async fn create(&self, collection: &str, resource: &str, attributes: Value) -> Value {
        let path = format!("/v2.0/vpn/{collection}");
        let body = json!({ resource: attributes });
        let (status, body) = self.call(Method::POST, &path, Some(body)).await;
        assert_eq!(status, 201, "POST {path}: {body}");
        body[resource].clone()
    }

    async fn delete(&self, collection: &str, id: &str) {
        let path = format!("/v2.0/vpn/{collection}/{id}");
        let (status, body) = self.call(Method::DELETE, &path, None).await;
        assert_eq!(status, 204, "DELETE {path}: {body}");
    }

    async fn status(&self, conn: &str) -> String {
        let path = format!("/v2.0/vpn/ipsec-site-connections/{conn}");
        self.get(&path).await["ipsec_site_connection"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Whether the server lists the agent of `hostA` alive (asked as noauth's default
    /// admin: no identity headers).
    async fn agent_alive(&self) -> bool {
        let Ok(answer) = self
            .http
            .get(format!("{}/v2.0/agents", self.url))
            .send()
            .await
        else {
            return false;
        };
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        body["agents"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["host"] == netnode::HOST && a["alive"] == true)
    }
}

impl Drop for Vpnaas {
    /// The agent and the server, then the charons they left in the routers' namespaces.
    fn drop(&mut self) {
        self.agent.kill();
        self.server.kill();
        for namespace in &self.namespaces {
            for pid in charons_in(namespace) {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
        }
    }
}

/// A `vpnaas` process of the lab, logging to `<name>.log` in `dir`.
fn vpnaas(dir: &Path, name: &str, args: impl FnOnce(&mut Command)) -> Group {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vpnaas"));
    command.env("VPNAAS_LOG", "info");
    args(&mut command);
    Group::spawn(name, command, &dir.join(format!("{name}.log")))
}

/// A "VM" as Nova and os-vif plug one: a Neutron port bound to `hostA`, a veth whose
/// host end is on the integration bridge with the port's id, MAC and status in its
/// external ids, and whose other end (`eth0`, the port's MAC and address, a default route
/// via the subnet's gateway) is in a namespace of the test's own. Unplugged on drop.
struct Vm {
    port: String,
    ip: String,
    gateway: String,
    namespace: String,
    device: String,
    ovs_run_dir: std::path::PathBuf,
}

impl Vm {
    async fn plug(neutron: &Neutron, node: &NetNode, network: &str, n: usize) -> Vm {
        let port = neutron
            .create(
                &neutron.admin,
                "/v2.0/ports",
                "port",
                json!({"network_id": network, "project_id": "project-1", "name": format!("vm{n}"),
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
    fn pings(&self, address: &str) -> bool {
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
struct Listener {
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
    fn start(vm: &Vm) -> Listener {
        let timeout = PATIENCE.as_secs().to_string();
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

    fn finish(mut self) -> String {
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
