//! The agent's reconcile loop against a scripted server: reports, HA fencing, and what a
//! demotion does when a teardown step fails.

use std::sync::Mutex;

use serde_json::json;
use vpnaas_model::enums::Status;

use super::*;
use vpnaas_model::enums::DriverKind;

/// A server answering from a table the test edits; it keeps the reports it takes and
/// counts the desired-state calls.
#[derive(Default)]
struct Scripted {
    states: Mutex<HashMap<String, RouterState>>,
    /// The reports, as they came: one list per call.
    reports: Mutex<Vec<Vec<StatusReport>>>,
    state_calls: Mutex<usize>,
}

impl Scripted {
    fn set(&self, state: RouterState) {
        let mut states = self.states.lock().expect("states");
        states.insert(state.router_id.clone(), state);
    }

    fn reports(&self) -> Vec<StatusReport> {
        self.reports.lock().expect("reports").concat()
    }

    fn report_calls(&self) -> usize {
        self.reports.lock().expect("reports").len()
    }

    fn state_calls(&self) -> usize {
        *self.state_calls.lock().expect("calls")
    }
}

#[async_trait::async_trait]
impl ControlPlane for Scripted {
    async fn beat(&self, _beat: &Heartbeat) -> vpnaas_bus::Result<()> {
        Ok(())
    }

    async fn claim(
        &self,
        _claim: &vpnaas_model::agent::TakeoverClaim,
    ) -> vpnaas_bus::Result<Vec<String>> {
        Ok(vec![])
    }

    async fn hosted_routers(&self, _host: &str) -> vpnaas_bus::Result<Vec<String>> {
        Ok(self
            .states
            .lock()
            .expect("states")
            .keys()
            .cloned()
            .collect())
    }

    async fn router_states(
        &self,
        _host: &str,
        router_ids: &[String],
    ) -> vpnaas_bus::Result<Vec<RouterState>> {
        *self.state_calls.lock().expect("calls") += 1;
        let states = self.states.lock().expect("states");
        Ok(router_ids
            .iter()
            .filter_map(|id| states.get(id).cloned())
            .collect())
    }

    async fn reports(&self, reports: Vec<StatusReport>) -> vpnaas_bus::Result<()> {
        self.reports.lock().expect("reports").push(reports);
        Ok(())
    }
}

fn state(ha: bool, role: &str, epoch: u64) -> RouterState {
    serde_json::from_value(json!({
        "router_id": "r", "revision": epoch, "admin_state_up": true, "gateway": [], "enable_snat": false,
        "interfaces": [], "services": [["s", true]], "ha": ha, "role": role, "lease_epoch": epoch,
        "connections": [crate::fixtures::connection("c", 1500)],
    }))
    .expect("state")
}

/// An agent with fake tunnels (up 10 ms after they are loaded) and no L3 of its own.
async fn agent(control: Arc<Scripted>, dir: &std::path::Path) -> Agent {
    let config = AgentConfig {
        host: "gw-a".into(),
        state_dir: dir.to_path_buf(),
        l3_mode: L3Mode::Simulation,
        fake_tunnel_delay_ms: Some(10),
        ..AgentConfig::default()
    };
    Agent::new(config, control, Metrics::default()).await
}

/// Brings router `r` up: applied, tunnel up, ACTIVE reported.
async fn up(agent: &mut Agent) {
    agent.sync("r", false).await;
    let woken = agent.wake.recv().await.expect("the tunnel comes up");
    agent.on_events(vec![woken]).await;
}

#[tokio::test]
async fn an_ha_routers_daemon_event_asks_the_server_and_a_lost_router_is_let_go() {
    let dir = tempfile::tempdir().expect("dir");
    let control = Arc::new(Scripted::default());
    control.set(state(true, "active", 1));
    let mut agent = agent(control.clone(), dir.path()).await;
    up(&mut agent).await;
    let reports = control.reports();
    let last = reports.last().expect("reported");
    assert_eq!(
        (last.lease_epoch, last.connections[0].status),
        (1, Status::Active)
    );

    // Meanwhile the server handed the router to another agent: this one is standby.
    control.set(state(true, "standby", 2));
    let calls = control.state_calls();
    agent.on_events(vec!["r".into()]).await;
    assert_eq!(control.state_calls(), calls + 1, "asked the server first");
    let observed = agent.driver(DriverKind::Strongswan).observe("r").await;
    assert!(
        !observed.daemon_running,
        "the daemon of a router it lost is stopped"
    );
    assert_eq!(
        control.reports().len(),
        reports.len(),
        "a standby does not report"
    );
}

#[tokio::test]
async fn a_daemon_event_of_a_router_that_is_not_ha_needs_no_server() {
    let dir = tempfile::tempdir().expect("dir");
    let control = Arc::new(Scripted::default());
    control.set(state(false, "active", 1));
    let mut agent = agent(control.clone(), dir.path()).await;
    up(&mut agent).await;
    let calls = control.state_calls();
    agent.on_events(vec!["r".into()]).await;
    assert_eq!(control.state_calls(), calls);
}

#[tokio::test]
async fn a_full_resync_sends_its_reports_in_one_call_per_batch() {
    let dir = tempfile::tempdir().expect("dir");
    let control = Arc::new(Scripted::default());
    for n in 0..40 {
        let mut s = state(false, "active", 1);
        s.router_id = format!("r{n}");
        s.connections[0].id = format!("c{n}");
        control.set(s);
    }
    let mut agent = agent(control.clone(), dir.path()).await;
    agent.resync_all(true).await.expect("resync");
    assert_eq!(control.state_calls(), 2, "40 routers: batches of 32 and 8");
    assert_eq!(control.report_calls(), 2);
    assert_eq!(control.reports().len(), 40);
}

/// Deletes the namespaces it names when dropped (whatever the test met), after killing the
/// processes in them: the test's own (its names are unique), such as a daemon the agent
/// started before the test failed, which would otherwise outlive it.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        let ip = |args: &[&str]| std::process::Command::new("ip").args(args).output();
        for namespace in &self.0 {
            let pids = ip(&["netns", "pids", namespace]).map(|o| o.stdout);
            for pid in String::from_utf8_lossy(&pids.unwrap_or_default()).split_whitespace() {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", pid])
                    .output();
            }
            let _ = ip(&["netns", "del", namespace]);
        }
    }
}

/// An HA router with a gateway port, a disabled VPN service and no connection (so no
/// daemon), in `role`.
fn gateway_router(role: &str, epoch: u64) -> RouterState {
    serde_json::from_value(json!({
        "router_id": "r", "revision": epoch, "admin_state_up": true, "enable_snat": false,
        "gateway": [{"network_id": "n", "subnet_id": "s", "address": "198.51.100.2/24", "gateway": null}],
        "interfaces": [], "services": [["s", false]], "ha": true, "role": role, "lease_epoch": epoch,
        "connections": [],
    }))
    .expect("state")
}

/// Needs root (CI is root): the router's namespace, port and address are real.
#[tokio::test]
async fn a_demotion_drops_the_addresses_even_when_the_daemons_files_will_not_go() {
    assert!(
        crate::fixtures::is_root(),
        "this test makes network namespaces: run it as root"
    );
    let dir = tempfile::tempdir().expect("dir");
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let config = AgentConfig {
        host: "gw-a".into(),
        state_dir: dir.path().to_path_buf(),
        namespace_prefix: format!("vt{tag}-"),
        fabric_namespace: format!("vt{tag}f"),
        ..AgentConfig::default()
    };
    let namespace = config.namespace("r");
    let _namespaces = Namespaces(vec![namespace.clone(), config.fabric_namespace.clone()]);
    let control = Arc::new(Scripted::default());
    control.set(gateway_router("active", 1));
    let mut agent = Agent::new(config.clone(), control.clone(), Metrics::default()).await;
    agent.sync("r", false).await;
    let addresses = || async {
        command::run("ip", &["-n", &namespace, "addr", "show", "dev", "qg-r"])
            .await
            .expect("the gateway port")
    };
    assert!(addresses().await.contains("198.51.100.2/24"), "active");

    // The strongSwan daemon's directory cannot be removed: it is a file here.
    let daemon_dir = config.daemon_dir("r", DriverKind::Strongswan);
    std::fs::write(&daemon_dir, "").expect("a file in the way");
    let demoted = gateway_router("standby", 2);
    let last = agent.applied.get("r").cloned();
    let error = agent
        .apply(&demoted, last.as_ref())
        .await
        .expect_err("the removal failed, and says so");
    assert!(
        matches!(&error, Error::File { path, .. } if *path == daemon_dir),
        "{error}"
    );
    assert!(
        !addresses().await.contains("198.51.100.2"),
        "the address is dropped all the same"
    );

    std::fs::remove_file(&daemon_dir).expect("out of the way");
    agent.remove("r").await;
    assert!(!l3::namespace_exists(&namespace).await);
    assert!(!l3::namespace_exists(&config.fabric_namespace).await);
}

/// Polls `probe` every 20 ms for at most 10 s (a busy machine); whether it held.
async fn eventually<F: Future<Output = bool>>(mut probe: impl FnMut() -> F) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if probe().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

/// Needs root (CI is root): the namespace is real. Under Neutron, a router scheduled here
/// before neutron-l3-agent built its namespace is applied as soon as the namespace is
/// there, not at the next resync (an hour away here): it is awaited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_neutron_a_namespace_not_built_yet_is_awaited_and_applied_when_it_comes() {
    if !crate::fixtures::is_root() {
        eprintln!("skipped: creates a network namespace and iptables rules (needs root)");
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let config = AgentConfig {
        host: "gw-a".into(),
        state_dir: dir.path().to_path_buf(),
        namespace_prefix: format!("qrouter-vt{tag}-"),
        l3_mode: L3Mode::Neutron,
        fake_tunnel_delay_ms: Some(10),
        resync_interval: 3600,
        ..AgentConfig::default()
    };
    let namespace = config.namespace("r");
    let _namespaces = Namespaces(vec![namespace.clone()]);
    let control = Arc::new(Scripted::default());
    control.set(state(false, "active", 1));
    let (hints_tx, hints) = broadcast::channel(4);
    let agent = Agent::new(config, control.clone(), Metrics::default()).await;
    let running = tokio::spawn(agent.run(hints));

    let status = |control: &Scripted| {
        let reports = control.reports();
        reports.last().map(|r| r.connections[0].status)
    };
    assert!(
        eventually(|| async { status(&control).is_some() }).await,
        "the router is reported at the first resync"
    );
    assert_ne!(status(&control), Some(Status::Active), "no namespace yet");
    assert!(!l3::namespace_exists(&namespace).await);

    command::run("ip", &["netns", "add", &namespace])
        .await
        .expect("Neutron's namespace");
    let exemption = || async {
        let args = [
            "netns",
            "exec",
            &namespace,
            "iptables",
            "-w",
            "-t",
            "nat",
            "-S",
            "vpnaas-nat",
        ];
        command::run("ip", &args)
            .await
            .is_ok_and(|rules| rules.contains("-A vpnaas-nat -s 10.1.0.0/24 -d 10.2.0.0/24"))
    };
    assert!(eventually(exemption).await, "the exemption written");
    assert!(
        eventually(|| async { status(&control) == Some(Status::Active) }).await,
        "the tunnel up and reported"
    );
    drop(hints_tx);
    running.await.expect("the agent ends with its hints");
}
