//! The supervisor's life cycle with a daemon that is a real process (`sleep`, started by
//! `sh` that first writes its pid file) and records what it is asked.

use std::sync::Mutex as SyncMutex;

use tokio::sync::oneshot;
use vpnaas_model::enums::StatusReason;

use super::*;
use crate::daemon::Observation;
use crate::status::SaView;

/// A start that waits: it says when it has begun, then waits to be let go.
type Gate = (oneshot::Sender<()>, oneshot::Receiver<()>);

#[derive(Default)]
struct Sleeper {
    /// Namespace → the gate its start waits at.
    gates: SyncMutex<HashMap<String, Gate>>,
    /// What it was asked, in order (`load c1`, `unload c1`).
    calls: Arc<SyncMutex<Vec<String>>>,
}

impl Sleeper {
    fn called(&self, call: String) {
        self.calls.lock().expect("calls").push(call);
    }
}

#[async_trait]
impl Daemon for Sleeper {
    type Control = ();
    const NAME: &'static str = "sleep";
    const KIND: vpnaas_model::enums::DriverKind = vpnaas_model::enums::DriverKind::Strongswan;
    const PID_FILE: &'static str = "sleep.pid";

    async fn command(&self, namespace: &str, dir: &Path) -> Result<tokio::process::Command> {
        let gate = self.gates.lock().expect("gates").remove(namespace);
        if let Some((begun, go)) = gate {
            let _ = begun.send(());
            let _ = go.await;
        }
        let mut command = tokio::process::Command::new("sh");
        command
            .args(["-c", "echo $$ > \"$0\" && exec sleep 60"])
            .arg(dir.join(Self::PID_FILE));
        Ok(command)
    }

    async fn attach(&self, _router_id: &str, dir: &Path) -> Result<()> {
        let pid_file = dir.join(Self::PID_FILE);
        let written = std::fs::read_to_string(&pid_file).map_err(Error::file(&pid_file))?;
        match written.trim().parse::<u32>() {
            Ok(pid) if process::is_named(pid, Self::NAME) => Ok(()),
            _ => Err(Error::ExitedAtOnce("sleep has not taken over yet")),
        }
    }

    fn refusal(&self, spec: &ConnectionSpec) -> Option<Failure> {
        (spec.mtu < 1000).then(|| (StatusReason::NoProposalChosen, "MTU too small".into()))
    }

    async fn load(&self, _control: &mut (), spec: &ConnectionSpec) -> Result<()> {
        self.called(format!("load {}", spec.id));
        Ok(())
    }

    async fn load_credentials(
        &self,
        _control: &mut (),
        _wanted: &[&ConnectionSpec],
        changed: &[&ConnectionSpec],
    ) -> Result<()> {
        for spec in changed {
            self.called(format!("credentials {}", spec.id));
        }
        Ok(())
    }

    async fn reauthenticate(
        &self,
        _: &mut (),
        spec: &ConnectionSpec,
        concluded: u64,
    ) -> Result<()> {
        self.called(format!(
            "reauth {} {} after {concluded}",
            spec.id, spec.generations.reauth
        ));
        Ok(())
    }

    async fn unload(&self, _control: &mut (), id: &str) -> Result<()> {
        self.called(format!("unload {id}"));
        Ok(())
    }

    async fn negotiate(&self, _: &mut (), _: &Loaded, _: &[&ConnectionSpec]) -> Result<()> {
        Ok(())
    }

    async fn observe(&self, _control: &(), loaded: &Loaded) -> Option<Observation> {
        let up = SaView {
            ike_up: true,
            children_up: true,
            ..SaView::default()
        };
        Some(Observation {
            sas: loaded.keys().map(|id| (id.clone(), up.clone())).collect(),
            failures: Default::default(),
            reauthenticated: Default::default(),
        })
    }
}

struct Harness {
    supervisor: Arc<Supervisor<Sleeper>>,
    woken: mpsc::UnboundedReceiver<String>,
    calls: Arc<SyncMutex<Vec<String>>>,
    config: AgentConfig,
    _dir: tempfile::TempDir,
}

fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("dir");
    let config = AgentConfig {
        state_dir: dir.path().to_path_buf(),
        ..AgentConfig::default()
    };
    let (wake, woken) = mpsc::unbounded_channel();
    let sleeper = Sleeper::default();
    let calls = sleeper.calls.clone();
    let supervisor = Supervisor::new(sleeper, config.clone(), None, wake, Metrics::default());
    Harness {
        supervisor: Arc::new(supervisor),
        woken,
        calls,
        config,
        _dir: dir,
    }
}

impl Harness {
    /// The supervisor a restarted agent would have: same state directory, nothing known.
    fn restarted(&self) -> Supervisor<Sleeper> {
        let (wake, _) = mpsc::unbounded_channel();
        Supervisor::new(
            Sleeper::default(),
            self.config.clone(),
            None,
            wake,
            Metrics::default(),
        )
    }

    fn calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().expect("calls"))
    }

    fn pid(&self, router: &str) -> u32 {
        let file = self
            .config
            .daemon_dir(router, Sleeper::KIND)
            .join("sleep.pid");
        std::fs::read_to_string(file)
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid")
    }
}

/// Router `router` with connections `(id, mtu)`.
fn state(router: &str, connections: &[(&str, u32)]) -> RouterState {
    let connections: Vec<_> = connections
        .iter()
        .map(|(id, mtu)| crate::fixtures::connection(id, *mtu))
        .collect();
    serde_json::from_value(serde_json::json!({
        "router_id": router, "revision": 1, "admin_state_up": true, "gateway": [],
        "enable_snat": false, "interfaces": [], "services": [], "connections": connections,
    }))
    .expect("state")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_routers_slow_start_never_delays_another_router() {
    let harness = harness();
    let (begun, started) = oneshot::channel();
    let (go, gate) = oneshot::channel();
    harness
        .supervisor
        .daemon
        .gates
        .lock()
        .expect("gates")
        .insert("slow".into(), (begun, gate));
    let supervisor = harness.supervisor.clone();
    let slow = tokio::spawn(async move {
        supervisor
            .ensure("slow", &state("slow", &[("s1", 1500)]))
            .await
    });
    started.await.expect("the slow start has begun");

    // The bound only turns a hang into a failure.
    tokio::time::timeout(
        Duration::from_secs(20),
        harness
            .supervisor
            .ensure("fast", &state("fast", &[("f1", 1500)])),
    )
    .await
    .expect("the other router's ensure does not wait for the slow start")
    .expect("ensure");
    let fast = harness.supervisor.observe("fast").await;
    assert!(fast.daemon_running);
    assert!(!slow.is_finished(), "the slow start is still waiting");

    go.send(()).expect("let the slow start go");
    slow.await
        .expect("join")
        .expect("the slow router comes up too");
    assert!(harness.supervisor.observe("slow").await.daemon_running);
    for router in ["slow", "fast"] {
        let pid = harness.pid(router);
        harness.supervisor.remove(router).await.expect("remove");
        assert!(!process::alive(pid), "{router}'s daemon is stopped");
    }
}

#[tokio::test]
async fn a_restarted_agent_adopts_the_daemon_and_keeps_what_did_not_change() {
    let harness = harness();
    let wanted = state("r", &[("c1", 1500), ("c2", 1500)]);
    harness
        .supervisor
        .ensure("r", &wanted)
        .await
        .expect("ensure");
    assert_eq!(harness.calls(), ["load c1", "load c2"]);
    let pid = harness.pid("r");

    let restarted = harness.restarted();
    let changed = state("r", &[("c1", 1500), ("c2", 1400)]);
    restarted.ensure("r", &changed).await.expect("ensure");
    let calls = restarted.daemon.calls.lock().expect("calls").clone();
    assert_eq!(calls, ["unload c2", "load c2"], "c1 is kept as it runs");
    assert_eq!(harness.pid("r"), pid, "the running daemon is adopted");
    let observed = restarted.observe("r").await;
    assert_eq!(observed.connections.len(), 2);

    restarted.remove("r").await.expect("remove");
    assert!(!process::alive(pid));
    assert!(!harness.config.router_dir("r").join("strongswan").exists());
}

#[tokio::test]
async fn a_daemon_that_exits_wakes_the_agent_and_comes_back_with_its_connections() {
    let mut harness = harness();
    let wanted = state("r", &[("c1", 1500), ("tiny", 900)]);
    harness
        .supervisor
        .ensure("r", &wanted)
        .await
        .expect("ensure");
    assert_eq!(
        harness.calls(),
        ["load c1"],
        "what the daemon refuses is not loaded"
    );
    let refused = &harness.supervisor.observe("r").await.connections["tiny"];
    assert_eq!(
        (refused.reason, refused.detail.as_str()),
        (StatusReason::NoProposalChosen, "MTU too small")
    );
    let pid = harness.pid("r");

    process::kill(pid).expect("kill");
    assert_eq!(harness.woken.recv().await.as_deref(), Some("r"));
    assert!(!harness.supervisor.observe("r").await.daemon_running);
    // A daemon that dies right after its start waits out its backoff; the agent is woken
    // when it may start again.
    loop {
        match harness.supervisor.ensure("r", &wanted).await {
            Ok(()) => break,
            Err(Error::Backoff { .. }) => {
                assert_eq!(harness.woken.recv().await.as_deref(), Some("r"));
            }
            Err(other) => panic!("{other}"),
        }
    }
    assert_ne!(harness.pid("r"), pid, "a new daemon");
    assert_eq!(
        harness.calls(),
        ["load c1"],
        "its connection is loaded again"
    );
    assert!(harness.supervisor.observe("r").await.daemon_running);

    harness
        .supervisor
        .ensure("r", &state("r", &[]))
        .await
        .expect("no connection: no daemon");
    assert!(!harness.supervisor.observe("r").await.daemon_running);
}

/// Router `r` with connection `c1` on key `psk` at these generations.
fn rotated(psk: &str, credentials: u64, reauth: u64, mtu: u32) -> RouterState {
    let mut wanted = state("r", &[("c1", mtu)]);
    let spec = &mut wanted.connections[0];
    spec.psk = vpnaas_model::site_connection::Psk::new(psk);
    spec.generations = Generations {
        credentials,
        reauth,
    };
    wanted
}

#[tokio::test]
async fn a_new_key_and_a_reauthentication_are_applied_in_place_and_reported() {
    let harness = harness();
    let supervisor = &harness.supervisor;
    supervisor
        .ensure("r", &rotated("k", 0, 0, 1500))
        .await
        .expect("ensure");
    assert_eq!(harness.calls(), ["load c1"]);
    let pid = harness.pid("r");
    let applied = |observed: &Observed| observed.connections["c1"].applied;

    supervisor
        .ensure("r", &rotated("k2", 1, 0, 1500))
        .await
        .expect("ensure");
    assert_eq!(harness.calls(), ["credentials c1"], "no unload, no reload");
    let observed = supervisor.observe("r").await;
    assert_eq!(
        applied(&observed),
        Generations {
            credentials: 1,
            reauth: 0
        }
    );
    assert_eq!(
        observed.connections["c1"].status,
        vpnaas_model::enums::Status::Active
    );

    supervisor
        .ensure("r", &rotated("k2", 1, 1, 1500))
        .await
        .expect("ensure");
    assert_eq!(harness.calls(), ["reauth c1 1 after 0"]);
    assert_eq!(applied(&supervisor.observe("r").await).reauth, 1);
    supervisor
        .ensure("r", &rotated("k2", 1, 1, 1500))
        .await
        .expect("ensure");
    assert!(harness.calls().is_empty(), "asked once, done once");

    let restarted = harness.restarted();
    restarted
        .ensure("r", &rotated("k3", 2, 1, 1500))
        .await
        .expect("ensure");
    let calls = std::mem::take(&mut *restarted.daemon.calls.lock().expect("calls"));
    assert_eq!(
        calls,
        ["credentials c1"],
        "a restarted agent loads the key it did not see, and does not re-authenticate again"
    );
    assert_eq!(harness.pid("r"), pid, "the same daemon all along");

    restarted
        .ensure("r", &rotated("k3", 2, 1, 1400))
        .await
        .expect("ensure");
    let calls = std::mem::take(&mut *restarted.daemon.calls.lock().expect("calls"));
    assert_eq!(calls, ["unload c1", "load c1"], "a new shape is a reload");
    restarted.remove("r").await.expect("remove");
}
