//! The network node lab works: a real neutron-l3-agent on it, told by a real Neutron over a
//! real RabbitMQ, builds a router's `qrouter-` namespace with Neutron's device names,
//! addresses and SNAT rule, forwards through the userspace Open vSwitch to the external
//! network's host address, and removes the namespace with the router; after the lab,
//! nothing of it is left on the machine.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vpnaas_test_support::netnode::{self, NetNode, host};
use vpnaas_test_support::neutron::{Identity, Neutron, NeutronOptions};
use vpnaas_test_support::rabbitmq::RabbitMq;
use vpnaas_test_support::skip_without_netnode;

const TENANT_CIDR: &str = "10.1.0.0/24";

#[tokio::test]
async fn the_l3_agent_builds_a_routers_namespace_and_removes_it_with_the_router() {
    if skip_without_netnode() {
        return;
    }
    let started = Instant::now();
    let namespaces_before = host::namespaces();
    let mut rabbit = RabbitMq::spawn();
    let transport_url = rabbit.transport_url();
    let neutron = Neutron::start(&NeutronOptions::headers().with_bus(&transport_url)).await;
    rabbit.ready();
    let node = NetNode::start(&neutron, &rabbit).await;
    let stack_up = started.elapsed();

    let router = build_router(&neutron).await;
    let t_router = Instant::now();
    let id = router["id"].as_str().expect("router id").to_string();
    let ns = format!("qrouter-{id}");
    let gateway = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
        .as_str()
        .expect("gateway address")
        .to_string();
    let snat = wait_for(&node, "the namespace with qg-, qr- and SNAT", || {
        namespace_ready(&ns, &gateway)
    })
    .await;
    let namespace_time = t_router.elapsed();
    eprintln!("{ns}: SNAT rule `{snat}` after {namespace_time:?}");
    wait_for(
        &node,
        "a ping from the router to the host's br-ex address",
        || pings(&ns, netnode::EXTERNAL_HOST_ADDRESS).then_some(()),
    )
    .await;
    assert_hosted_by_node(&neutron, &id).await;

    delete_router(&neutron, &id).await;
    let t_delete = Instant::now();
    wait_for(&node, "the namespace to go with the router", || {
        (!host::namespaces().contains(&ns)).then_some(())
    })
    .await;
    eprintln!(
        "{ns} removed {:?} after the router's deletion",
        t_delete.elapsed()
    );

    let leftovers = Leftovers::of(&node, &rabbit);
    let t_down = Instant::now();
    drop(node);
    drop(neutron);
    drop(rabbit);
    eprintln!("lab down in {:?}", t_down.elapsed());
    leftovers.assert_none(&namespaces_before);
    eprintln!(
        "stack up in {stack_up:?}, whole test {:?}",
        started.elapsed()
    );
}

/// A member of `project-1`; `reader` too, as Keystone's role implication would give it
/// (Neutron's policy needs it to read the subnet an interface is added on).
fn member() -> Identity {
    Identity::headers("project-1", &["member", "reader"])
}

/// The external network on the node's external bridge, a project's router with its
/// gateway there and the project's network attached.
async fn build_router(neutron: &Neutron) -> Value {
    let member = member();
    let public = neutron
        .external_network("public", netnode::EXTERNAL_CIDR)
        .await;
    let router = neutron.router(&member, "r1", &public.network).await;
    let id = router["id"].as_str().expect("router id");
    neutron
        .tenant_network(&member, "n1", TENANT_CIDR, Some(id))
        .await;
    router
}

/// `Some(SNAT rule)` once the namespace exists with the gateway address on its `qg-`
/// device, the tenant subnet's gateway on its `qr-` device, and Neutron's SNAT rule for
/// traffic leaving by `qg-`.
fn namespace_ready(ns: &str, gateway: &str) -> Option<String> {
    if !host::namespaces().iter().any(|n| n == ns) {
        return None;
    }
    let addresses = host::netns_exec(ns, &["ip", "-o", "-4", "addr", "show"]);
    let qg = device_holding(&addresses, gateway, "qg-")?;
    device_holding(&addresses, "10.1.0.1", "qr-")?;
    let nat = host::netns_exec(ns, &["iptables-save", "-t", "nat"]);
    let rule =
        format!("-A neutron-l3-agent-snat -o {qg} -j SNAT --to-source {gateway} --random-fully");
    nat.lines().any(|line| line == rule).then_some(rule)
}

/// The device of `ip -o addr` output whose name starts with `prefix` and holds `address`.
fn device_holding(addresses: &str, address: &str, prefix: &str) -> Option<String> {
    addresses.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let device = fields.get(1)?;
        let holds = fields
            .get(3)
            .is_some_and(|cidr| cidr.split('/').next() == Some(address));
        (device.starts_with(prefix) && holds).then(|| (*device).to_string())
    })
}

fn pings(ns: &str, address: &str) -> bool {
    std::process::Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-c1", "-W1", address])
        .output()
        .is_ok_and(|out| out.status.success())
}

async fn assert_hosted_by_node(neutron: &Neutron, router: &str) {
    let path = format!("/v2.0/routers/{router}/l3-agents");
    let answer = neutron.call(&neutron.admin, Method::GET, &path, None).await;
    assert_eq!(answer.status, StatusCode::OK, "{path}: {:?}", answer.body);
    let hosts: Vec<&str> = answer.body["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|agent| agent["host"].as_str())
        .collect();
    assert_eq!(hosts, [netnode::HOST], "{path}: {}", answer.body);
}

async fn delete_router(neutron: &Neutron, router: &str) {
    let member = member();
    let ports = neutron
        .call(
            &neutron.admin,
            Method::GET,
            &format!("/v2.0/ports?device_id={router}&device_owner=network:router_interface"),
            None,
        )
        .await;
    for port in ports.body["ports"].as_array().expect("ports") {
        let path = format!("/v2.0/routers/{router}/remove_router_interface");
        let body = json!({"port_id": port["id"]});
        let answer = neutron.call(&member, Method::PUT, &path, Some(body)).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {:?}", answer.body);
    }
    let path = format!("/v2.0/routers/{router}");
    let answer = neutron.call(&member, Method::DELETE, &path, None).await;
    assert_eq!(
        answer.status,
        StatusCode::NO_CONTENT,
        "{path}: {:?}",
        answer.body
    );
}

/// Polls `probe` until it gives a value (the agents act asynchronously), panicking with
/// the agents' logs after 90 s or when one of them has died.
async fn wait_for<T>(node: &NetNode, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no {what}:\nL3 agent: {}\nOVS agent: {}",
            node.log("neutron-l3-agent"),
            node.log("neutron-openvswitch-agent")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What the lab must not leave behind: its processes (its directory in their command
/// line, or the broker's pid), its bridges, namespaces made while it ran.
struct Leftovers {
    dir: PathBuf,
    broker: u32,
}

impl Leftovers {
    fn of(node: &NetNode, rabbit: &RabbitMq) -> Leftovers {
        Leftovers {
            dir: node.dir().to_path_buf(),
            broker: rabbit.pid(),
        }
    }

    fn assert_none(&self, namespaces_before: &[String]) {
        let processes = host::processes_naming(&self.dir);
        assert!(processes.is_empty(), "processes left: {processes:?}");
        assert!(
            !PathBuf::from(format!("/proc/{}", self.broker)).exists(),
            "rabbitmq-server left running"
        );
        for bridge in [
            netnode::INTEGRATION_BRIDGE,
            netnode::EXTERNAL_BRIDGE,
            netnode::TENANT_BRIDGE,
        ] {
            let device = PathBuf::from("/sys/class/net").join(bridge);
            assert!(!device.exists(), "bridge {bridge} left");
        }
        let new: Vec<String> = host::namespaces()
            .into_iter()
            .filter(|ns| host::is_neutron_namespace(ns) && !namespaces_before.contains(ns))
            .collect();
        assert!(new.is_empty(), "namespaces left: {new:?}");
    }
}

/// Set in the child that plays a lab killed mid-run: the directory and namespace it makes.
const PLAY_KILLED_LAB: &str = "VPNAAS_TEST_PLAY_KILLED_LAB";

/// A lab killed before its cleanup (a child process taking the hold, recording its directory
/// and a namespace, starting a daemon naming the directory and a process in the namespace,
/// then aborting) leaves them running; the next lab's hold ends them before that lab starts.
#[test]
fn the_next_lab_ends_what_a_killed_lab_left_behind() {
    if let Ok(what) = std::env::var(PLAY_KILLED_LAB) {
        play_killed_lab(&what);
    }
    if skip_without_netnode() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let tag = &dir.path().file_name().expect("name").to_string_lossy()[4..];
    let netns = format!("vpnaas-killed{tag}");
    let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "the_next_lab_ends_what_a_killed_lab_left_behind"])
        .env(PLAY_KILLED_LAB, format!("{} {netns}", dir.path().display()))
        .status()
        .expect("the killed lab");
    assert!(!status.success(), "the killed lab did not die: {status:?}");
    let daemons = host::processes_naming(dir.path());
    let inside = namespace_pids(&netns);
    assert!(
        !daemons.is_empty() && !inside.is_empty(),
        "the killed lab left nothing running: {daemons:?} {inside:?}"
    );

    let next = host::Hold::take();
    for pid in daemons.iter().chain(&inside) {
        assert!(!running(*pid), "{pid} of the killed lab still runs");
    }
    assert!(
        !host::namespaces().contains(&netns),
        "the killed lab's namespace is still there"
    );
    assert!(
        !dir.path().exists(),
        "the killed lab's directory is still there"
    );
    drop(next);
}

/// The killed lab: takes the hold, records `what` ("DIR NETNS"), starts a daemon naming DIR
/// and a process in NETNS, and SIGKILLs itself (no drop runs).
#[expect(
    clippy::zombie_processes,
    reason = "a killed lab leaves its processes running, for the next lab to end"
)]
fn play_killed_lab(what: &str) -> ! {
    use std::os::unix::process::CommandExt as _;
    let (dir, netns) = what.split_once(' ').expect("DIR NETNS");
    let hold = host::Hold::take();
    hold.record(&host::Leftover::Dir(dir.into()));
    hold.record(&host::Leftover::Namespace(netns.to_string()));
    // A daemon names the lab's directory in its command line, as the lab's all do.
    let log = PathBuf::from(dir).join("daemon.log");
    std::fs::write(&log, "").expect("the daemon's log");
    std::process::Command::new("tail")
        .arg("-f")
        .arg(&log)
        .process_group(0)
        .spawn()
        .expect("a daemon naming the lab's directory");
    let added = std::process::Command::new("ip")
        .args(["netns", "add", netns])
        .status()
        .expect("ip netns add");
    assert!(added.success(), "ip netns add {netns}");
    std::process::Command::new("ip")
        .args(["netns", "exec", netns, "sleep", "600"])
        .process_group(0)
        .spawn()
        .expect("a process in the lab's namespace");
    let started = Instant::now();
    while host::processes_naming(Path::new(dir)).is_empty() || namespace_pids(netns).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nothing started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &std::process::id().to_string()])
        .status();
    unreachable!("a SIGKILLed process runs no further");
}

/// The pids of the processes in namespace `ns` of the machine.
fn namespace_pids(ns: &str) -> Vec<u32> {
    let output = std::process::Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .expect("ip netns pids");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .collect()
}

/// Whether `pid` is a live process (a zombie no reaper has collected is not).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| Some(stat.rsplit_once(") ")?.1.starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}
