//! The strongSwan driver: one charon per router, in the router's namespace with a private
//! `/run`, configured over VICI. Each connection is loaded (`load-shared` + `load-conn`)
//! and removed (`unload-conn` + `terminate` + `unload-shared`) on its own: changing one
//! connection never restarts charon or touches another. Status comes from `list-sas`,
//! refreshed whenever charon sends an up/down/rekey event.

mod conf;
mod proposals;
mod vici;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use vpnaas_model::agent::{ConnectionSpec, RouterState};
use vpnaas_model::enums::{DriverKind, Initiator, Status, StatusReason};
use vpnaas_model::site_connection::Traffic;

use crate::config::AgentConfig;
use crate::data_plane::{Chosen, Esp};
use crate::driver::{self, ConnectionState, IkeDriver, Observed};
use crate::process;
use crate::{Error, Metrics, Result};

/// How long a VICI request may take. A request to a charon that dies while answering
/// never completes; without a bound the agent would wait on it forever instead of
/// restarting charon (it answers in milliseconds otherwise).
const VICI_PATIENCE: Duration = Duration::from_secs(2);

/// How long an initiation may take before it is retried.
const INITIATE_PATIENCE: Duration = Duration::from_secs(3);

/// How long the side with the higher address waits before initiating too: an IKE
/// exchange takes 20–35 ms here, so a peer that could initiate has done so by then.
const INITIATE_GRACE: Duration = Duration::from_millis(100);

/// What charon's events taught about each connection since the daemon started.
#[derive(Debug, Default, Clone)]
struct History {
    /// Last failure, learnt from log lines; cleared when a child SA comes up.
    failures: driver::Failures,
    /// The last netlink error charon logged per connection: the kernel's own words about
    /// the SA it then fails to install.
    netlink_errors: HashMap<String, String>,
    /// Counters of child SAs rekeyed away and the number of rekeys, so a connection's
    /// traffic keeps counting across rekeys.
    rekeyed: HashMap<String, Traffic>,
}

type SharedHistory = Arc<std::sync::Mutex<History>>;

struct Daemon {
    history: SharedHistory,
    pid: u32,
    dir: PathBuf,
    vici: Arc<Mutex<rsvici::Client>>,
    loaded: HashMap<String, ConnectionSpec>,
    initiators: HashMap<String, JoinHandle<()>>,
    events: JoinHandle<()>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.events.abort();
        for task in self.initiators.values() {
            task.abort();
        }
    }
}

/// The driver for all routers of this agent.
pub struct StrongSwan {
    config: AgentConfig,
    /// Where charon's ESP runs.
    esp: Esp,
    /// The kernel's refusal of an ESP SA at agent start, when charon's SAs go there.
    kernel_refuses: Option<String>,
    daemons: Mutex<HashMap<String, Daemon>>,
    wake: mpsc::UnboundedSender<String>,
    restarts: process::Backoff,
    metrics: Metrics,
}

impl StrongSwan {
    /// A driver on the chosen data plane that signals `wake` with a router id when that
    /// router's status may have changed (charon event, charon exit).
    pub fn new(
        config: AgentConfig,
        data_plane: &Chosen,
        wake: mpsc::UnboundedSender<String>,
        metrics: Metrics,
    ) -> Self {
        StrongSwan {
            esp: data_plane.esp,
            kernel_refuses: data_plane.kernel_esp_refused().map(String::from),
            metrics,
            restarts: process::Backoff::default(),
            config,
            daemons: Mutex::new(HashMap::new()),
            wake,
        }
    }

    /// Brings the router's charon and connections to the desired state.
    async fn ensure_daemon(&self, namespace: &str, state: &RouterState) -> Result<()> {
        let wanted: Vec<&ConnectionSpec> = state.connections.iter().filter(|c| c.enabled).collect();
        let mut daemons = self.daemons.lock().await;
        if wanted.is_empty() {
            match daemons.remove(&state.router_id) {
                Some(daemon) => stop(daemon).await,
                None => {
                    stop_leftover(
                        &self
                            .config
                            .daemon_dir(&state.router_id, DriverKind::Strongswan),
                    )
                    .await
                }
            }
            return Ok(());
        }
        let running = daemons
            .get(&state.router_id)
            .is_some_and(|d| process::alive(d.pid));
        let known = daemons.contains_key(&state.router_id);
        if !running
            && !known
            && let Some(daemon) = self.adopt(&state.router_id, &wanted).await
        {
            daemons.insert(state.router_id.clone(), daemon);
        }
        let running = daemons
            .get(&state.router_id)
            .is_some_and(|d| process::alive(d.pid));
        if !running {
            // A dead daemon stays known until it is started again, so that every wake-up
            // during its backoff still counts it as a crash.
            let crashed = daemons.contains_key(&state.router_id);
            self.restarts
                .may_start(&state.router_id, crashed, &self.wake, &self.metrics)
                .map_err(|wait| {
                    Error::Daemon(format!("charon keeps exiting; next start in {wait:?}"))
                })?;
            daemons.remove(&state.router_id);
            let daemon = self.start(namespace, &state.router_id).await?;
            daemons.insert(state.router_id.clone(), daemon);
        }
        let daemon = daemons
            .get_mut(&state.router_id)
            .ok_or_else(|| Error::Daemon("vanished".into()))?;
        let stale: Vec<String> = daemon
            .loaded
            .iter()
            .filter(|(id, spec)| !wanted.iter().any(|w| &w.id == *id && w == spec))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            unload(daemon, &id).await?;
        }
        for spec in wanted {
            if !daemon.loaded.contains_key(&spec.id) {
                load(daemon, spec).await?;
            }
        }
        self.start_initiators(&state.router_id, daemon).await;
        Ok(())
    }

    /// Takes over a charon left running by an earlier agent process (an agent restart
    /// must not bounce healthy tunnels): connections whose fingerprint matches what is
    /// wanted count as loaded; others are unloaded.
    async fn adopt(&self, router_id: &str, wanted: &[&ConnectionSpec]) -> Option<Daemon> {
        let dir = self.config.daemon_dir(router_id, DriverKind::Strongswan);
        let pid = std::fs::read_to_string(dir.join("run/charon.pid"))
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()?;
        if !process::alive(pid) || !process::is_named(pid, "charon") {
            return None;
        }
        let socket = dir.join("run/charon.vici");
        let vici = rsvici::unix::connect(&socket).await.ok()?;
        let history = SharedHistory::default();
        let events = self
            .watch(router_id, &socket, pid, None, history.clone())
            .await
            .ok()?;
        let recorded = driver::read_loaded(&dir);
        let mut daemon = Daemon {
            history,
            pid,
            dir,
            vici: Arc::new(Mutex::new(vici)),
            loaded: HashMap::new(),
            initiators: HashMap::new(),
            events,
        };
        for spec in wanted {
            if recorded.get(&spec.id) == Some(&driver::fingerprint(spec)) {
                daemon.loaded.insert(spec.id.clone(), (*spec).clone());
            }
        }
        let stale: Vec<String> = recorded
            .keys()
            .filter(|id| !daemon.loaded.contains_key(*id))
            .cloned()
            .collect();
        for id in &stale {
            if let Err(error) = unload(&mut daemon, id).await {
                tracing::warn!(%error, connection = %id, "cannot unload a stale connection");
            }
        }
        driver::record_loaded(&daemon.dir, &daemon.loaded);
        tracing::info!(
            router = router_id,
            pid,
            kept = daemon.loaded.len(),
            "adopted a running charon"
        );
        Some(daemon)
    }

    /// Stops the router's charon and removes its files.
    async fn remove_daemon(&self, router_id: &str) -> Result<()> {
        if let Some(daemon) = self.daemons.lock().await.remove(router_id) {
            stop(daemon).await;
        }
        let dir = self.config.daemon_dir(router_id, DriverKind::Strongswan);
        stop_leftover(&dir).await;
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| Error::Daemon(format!("remove {}: {e}", dir.display())))?;
        }
        Ok(())
    }

    /// What charon says about the router's connections.
    async fn observe_daemon(&self, router_id: &str) -> Observed {
        let daemons = self.daemons.lock().await;
        let Some(daemon) = daemons.get(router_id) else {
            return Observed::default();
        };
        if !process::alive(daemon.pid) {
            return Observed::default();
        }
        let history = daemon.history.lock().map(|h| h.clone()).unwrap_or_default();
        let connections = match list_sas(&daemon.vici).await {
            Ok(sas) => daemon
                .loaded
                .iter()
                .map(|(id, spec)| {
                    let state =
                        connection_state(&sas, spec, &history, self.kernel_refuses.as_deref());
                    (id.clone(), state)
                })
                .collect(),
            Err(_) => HashMap::new(),
        };
        Observed {
            daemon_running: true,
            connections,
        }
    }

    async fn start(&self, namespace: &str, router_id: &str) -> Result<Daemon> {
        let dir = self.config.daemon_dir(router_id, DriverKind::Strongswan);
        let run_dir = dir.join("run");
        let socket_path_len = run_dir.join("charon.vici").as_os_str().len();
        if socket_path_len > 107 {
            return Err(Error::Daemon(format!(
                "state_dir {} is too long: charon's VICI socket path would be {socket_path_len} bytes (unix sockets allow 107)",
                self.config.state_dir.display()
            )));
        }
        std::fs::create_dir_all(&run_dir)
            .map_err(|e| Error::Daemon(format!("{}: {e}", run_dir.display())))?;
        stop_leftover(&dir).await;
        let conf = dir.join("strongswan.conf");
        std::fs::write(&conf, conf::render(&dir, self.esp, self.config.retransmit))
            .map_err(|e| Error::Daemon(format!("{}: {e}", conf.display())))?;
        let _ = std::fs::remove_file(run_dir.join("charon.vici"));
        let log = std::fs::File::create(dir.join("charon.out"))
            .map_err(|e| Error::Daemon(e.to_string()))?;
        let child = tokio::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                namespace,
                "sh",
                "-c",
                "mount --bind \"$0\" /run && exec \"$1\"",
            ])
            .arg(&run_dir)
            .arg(&self.config.charon)
            .env("STRONGSWAN_CONF", &conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| Error::Daemon(e.to_string()))?)
            .stderr(log)
            .spawn()
            .map_err(|e| Error::Daemon(format!("cannot start charon: {e}")))?;
        let pid = child
            .id()
            .ok_or_else(|| Error::Daemon("charon exited at once".into()))?;
        let socket = run_dir.join("charon.vici");
        let vici = connect(&socket).await?;
        let history = SharedHistory::default();
        let events = self
            .watch(
                router_id,
                &socket,
                pid,
                Some(process::reap(child, "charon")),
                history.clone(),
            )
            .await?;
        tracing::info!(router = router_id, pid, "charon started");
        Ok(Daemon {
            history,
            pid,
            dir,
            vici: Arc::new(Mutex::new(vici)),
            loaded: HashMap::new(),
            initiators: HashMap::new(),
            events,
        })
    }

    /// Wakes the agent on every SA event, on log lines that explain a failure, and when
    /// charon exits.
    async fn watch(
        &self,
        router_id: &str,
        socket: &Path,
        pid: u32,
        exit: Option<JoinHandle<()>>,
        history: SharedHistory,
    ) -> Result<JoinHandle<()>> {
        let mut client = connect(socket).await?;
        let wake = self.wake.clone();
        let router = router_id.to_string();
        let metrics = self.metrics.clone();
        let esp = self.esp;
        Ok(tokio::spawn(async move {
            let streams = ["ike-updown", "child-updown", "ike-rekey"].map(|event| {
                client
                    .subscribe::<serde::de::IgnoredAny>(event)
                    .map(|_| ())
                    .boxed()
            });
            let mut events = futures::stream::select_all(streams);
            let mut rekeys = client.subscribe::<vici::ChildRekey>("child-rekey").boxed();
            let mut log = client.subscribe::<vici::LogLine>("log").boxed();
            let mut exit = exit;
            loop {
                tokio::select! {
                    event = events.next() => match event {
                        Some(()) => { let _ = wake.send(router.clone()); }
                        None => break,
                    },
                    Some(rekey) = rekeys.next() => {
                        if let Ok(rekey) = rekey {
                            count_rekeys(&history, &rekey, &metrics);
                        }
                        let _ = wake.send(router.clone());
                    }
                    Some(Ok(line)) = log.next() => {
                        if learn(&history, &line, esp) {
                            let _ = wake.send(router.clone());
                        }
                    }
                    _ = async { match &mut exit { Some(exit) => { let _ = exit.await; } None => std::future::pending().await } } => break,
                }
            }
            // The event stream ends as charon's sockets close, before it has finished
            // exiting: woken too early, the agent would still find it alive.
            process::wait_exit(pid, Duration::from_secs(2)).await;
            let _ = wake.send(router);
        }))
    }

    async fn start_initiators(&self, router_id: &str, daemon: &mut Daemon) {
        daemon.initiators.retain(|_, task| !task.is_finished());
        let sas = list_sas(&daemon.vici).await.unwrap_or_default();
        for spec in daemon.loaded.values() {
            if spec.initiator != Initiator::BiDirectional
                || daemon.initiators.contains_key(&spec.id)
                || status_in(&sas, spec) == Status::Active
            {
                continue;
            }
            let task = initiate(
                daemon.dir.join("run").join("charon.vici"),
                spec.clone(),
                self.wake.clone(),
                router_id.to_string(),
            );
            daemon
                .initiators
                .insert(spec.id.clone(), tokio::spawn(task));
        }
    }
}

async fn connect(socket: &Path) -> Result<rsvici::Client> {
    for _ in 0..250 {
        if let Ok(client) = rsvici::unix::connect(socket).await {
            return Ok(client);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(Error::Daemon(format!(
        "charon's VICI socket {} does not answer",
        socket.display()
    )))
}

async fn command<T: serde::Serialize>(
    vici: &Mutex<rsvici::Client>,
    name: &str,
    message: T,
) -> Result<()> {
    let mut client = vici.lock().await;
    let answer: vici::Answer = tokio::time::timeout(VICI_PATIENCE, client.request(name, message))
        .await
        .map_err(|_| Error::Daemon(format!("{name}: charon does not answer")))?
        .map_err(|e| Error::Daemon(format!("{name}: {e}")))?;
    if answer.success {
        Ok(())
    } else {
        Err(Error::Daemon(format!(
            "{name}: {}",
            answer.errmsg.unwrap_or_default()
        )))
    }
}

async fn load(daemon: &mut Daemon, spec: &ConnectionSpec) -> Result<()> {
    if let Ok(mut history) = daemon.history.lock() {
        history.failures.remove(&spec.id);
        history.netlink_errors.remove(&spec.id);
        history.rekeyed.remove(&spec.id);
    }
    command(&daemon.vici, "load-shared", vici::SharedKey::of(spec)).await?;
    command(&daemon.vici, "load-conn", vici::load_conn(spec)).await?;
    daemon.loaded.insert(spec.id.clone(), spec.clone());
    driver::record_loaded(&daemon.dir, &daemon.loaded);
    tracing::info!(connection = %spec.id, "connection loaded");
    Ok(())
}

/// Unloading does not tear down established SAs: terminate them too.
async fn unload(daemon: &mut Daemon, id: &str) -> Result<()> {
    if let Some(task) = daemon.initiators.remove(id) {
        task.abort();
    }
    command(
        &daemon.vici,
        "unload-conn",
        vici::Unload {
            name: id.to_string(),
        },
    )
    .await?;
    let terminate = vici::Terminate {
        ike: id.to_string(),
        force: true,
        timeout: -1,
    };
    if let Err(error) = command(&daemon.vici, "terminate", terminate).await {
        tracing::debug!(%error, connection = id, "nothing to terminate");
    }
    let _ = command(
        &daemon.vici,
        "unload-shared",
        vici::UnloadShared {
            id: vici::secret_id(id),
        },
    )
    .await;
    daemon.loaded.remove(id);
    driver::record_loaded(&daemon.dir, &daemon.loaded);
    tracing::info!(connection = id, "connection unloaded");
    Ok(())
}

#[async_trait::async_trait]
impl IkeDriver for StrongSwan {
    async fn ensure(&self, namespace: &str, state: &RouterState) -> Result<()> {
        self.ensure_daemon(namespace, state).await
    }

    async fn remove(&self, router_id: &str) -> Result<()> {
        self.remove_daemon(router_id).await
    }

    async fn observe(&self, router_id: &str) -> Observed {
        self.observe_daemon(router_id).await
    }
}

/// Initiates a bi-directional connection until it is up. When both ends initiate at once
/// they build duplicate SAs, so the end with the lower address goes first and the other
/// only after a grace period; an initiator whose peer is not ready yet is refused and
/// does not retry by itself, so this retries with backoff.
async fn initiate(
    socket: PathBuf,
    spec: ConnectionSpec,
    wake: mpsc::UnboundedSender<String>,
    router: String,
) {
    let first = goes_first(spec.local_address, spec.peer_address);
    if !first {
        tokio::time::sleep(INITIATE_GRACE).await;
    }
    let mut backoff = Duration::from_millis(500);
    loop {
        let Ok(mut client) = rsvici::unix::connect(&socket).await else {
            return;
        };
        let sas = collect_sas(&mut client).await.unwrap_or_default();
        if status_in(&sas, &spec) == Status::Active {
            return;
        }
        if !first && sas.negotiating_with(&spec.id, spec.peer_address) {
            // The peer's negotiation is under way: let it finish rather than race it.
            tokio::time::sleep(INITIATE_GRACE).await;
            continue;
        }
        match initiate_children(&mut client, &spec, &sas).await {
            Ok(answer) if answer.success => {
                if came_up(&mut client, &spec).await {
                    let _ = wake.send(router);
                    return;
                }
                tracing::info!(connection = %spec.id, "no tunnel after initiating; retrying");
            }
            Ok(answer) => {
                tracing::info!(connection = %spec.id, reason = answer.errmsg.unwrap_or_default(), "initiate failed; retrying")
            }
            Err(error) => {
                tracing::info!(connection = %spec.id, %error, "initiate failed; retrying")
            }
        }
        let _ = wake.send(router.clone());
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Follows an initiation (made asynchronous, see `initiate_children`) until the tunnel is
/// up (true) or the negotiation is gone or too slow (false).
async fn came_up(client: &mut rsvici::Client, spec: &ConnectionSpec) -> bool {
    let deadline = tokio::time::Instant::now() + INITIATE_PATIENCE;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let Ok(sas) = collect_sas(client).await else {
            return false;
        };
        if status_in(&sas, spec) == Status::Active {
            return true;
        }
        if !sas.negotiating_with(&spec.id, spec.peer_address) {
            return false;
        }
    }
    false
}

/// Initiates every child SA of the connection that is not installed yet. `timeout = -1`
/// makes each command asynchronous: a blocking `initiate` or `terminate` registers a
/// logger inside charon 5.9.8 that can deadlock the daemon (strongSwan issue #566).
async fn initiate_children(
    client: &mut rsvici::Client,
    spec: &ConnectionSpec,
    sas: &vici::Sas,
) -> std::result::Result<vici::Answer, rsvici::Error> {
    let installed = |name: &str| {
        sas.installed_children(&spec.id)
            .iter()
            .any(|c| c.name == name)
    };
    for (child, _, _) in vici::children(spec) {
        if installed(&child) {
            continue;
        }
        let message = vici::Initiate {
            child,
            ike: spec.id.clone(),
            timeout: -1,
            init_limits: false,
        };
        let answer: vici::Answer = client.request("initiate", message).await?;
        if !answer.success {
            return Ok(answer);
        }
    }
    Ok(vici::Answer {
        success: true,
        errmsg: None,
    })
}

fn goes_first(local: IpAddr, peer: IpAddr) -> bool {
    local < peer
}

async fn collect_sas(client: &mut rsvici::Client) -> Result<vici::Sas> {
    let mut stream = Box::pin(client.stream_request::<_, vici::ListSa>("list-sas", "list-sa", ()));
    let mut all = vici::Sas::default();
    while let Some(item) = stream.next().await {
        all.0
            .extend(item.map_err(|e| Error::Daemon(format!("list-sas: {e}")))?);
    }
    Ok(all)
}

async fn list_sas(vici: &Mutex<rsvici::Client>) -> Result<vici::Sas> {
    let mut client = vici.lock().await;
    tokio::time::timeout(VICI_PATIENCE, collect_sas(&mut client))
        .await
        .map_err(|_| Error::Daemon("list-sas: charon does not answer".into()))?
}

/// Learns a failure (or its end) from a log line about one of our connections; returns
/// whether it changed what the agent would report. A refused SA is the kernel's refusal on
/// kernel ESP (its detail leads with the kernel's words from the netlink error before it),
/// and `CHILD_SA_FAILED` on userspace ESP.
fn learn(history: &SharedHistory, line: &vici::LogLine, esp: Esp) -> bool {
    let Some(connection) = &line.ikesa_name else {
        return false;
    };
    let Ok(mut history) = history.lock() else {
        return false;
    };
    if line.msg.contains("CHILD_SA") && line.msg.contains("established with SPIs") {
        history.netlink_errors.remove(connection);
        return history.failures.remove(connection).is_some();
    }
    if line.msg.starts_with("received netlink error") {
        history
            .netlink_errors
            .insert(connection.clone(), line.msg.clone());
        return false;
    }
    let (reason, detail) = match classify(&line.msg) {
        Some(StatusReason::KernelRefused) => {
            let detail = match history.netlink_errors.remove(connection) {
                Some(kernel) => format!("{kernel}; {}", line.msg),
                None => line.msg.clone(),
            };
            let reason = match esp {
                Esp::Kernel => StatusReason::KernelRefused,
                Esp::Userspace => StatusReason::ChildSaFailed,
            };
            (reason, detail)
        }
        Some(reason) => (reason, line.msg.clone()),
        None => return false,
    };
    driver::learn_failure(&mut history.failures, connection, reason, detail)
}

/// Adds the counters of the child SAs a `child-rekey` event retired to their connection's
/// history, and counts the rekeys.
fn count_rekeys(history: &SharedHistory, event: &vici::ChildRekey, metrics: &Metrics) {
    let Ok(mut history) = history.lock() else {
        return;
    };
    for (connection, ike) in event {
        for rekey in ike.child_sas.values() {
            let carried = history.rekeyed.entry(connection.clone()).or_default();
            if let Some(old) = &rekey.old {
                carried.bytes_in += old.counter(|c| &c.bytes_in);
                carried.bytes_out += old.counter(|c| &c.bytes_out);
                carried.packets_in += old.counter(|c| &c.packets_in);
                carried.packets_out += old.counter(|c| &c.packets_out);
            }
            carried.rekeys += 1;
            metrics.rekeyed();
        }
    }
}

/// The reason a charon log line gives for a tunnel not being up, if any. An SA the data
/// plane would not take is `KERNEL_REFUSED` here; [`learn`] tells the kernel's refusal from
/// userspace ESP's.
pub fn classify(msg: &str) -> Option<StatusReason> {
    let has = |needle: &str| msg.contains(needle);
    if has("AUTHENTICATION_FAILED")
        || has("MAC mismatched")
        || (has("authentication of") && has("failed"))
    {
        Some(StatusReason::AuthFailed)
    } else if has("unable to add SAD entry") || (has("unable to install") && has("in kernel")) {
        Some(StatusReason::KernelRefused)
    } else if has("TS_UNACCEPTABLE") || (has("traffic selectors") && has("unacceptable")) {
        Some(StatusReason::TsUnacceptable)
    } else if has("NO_PROPOSAL_CHOSEN")
        || has("no acceptable proposal")
        || has("proposals unacceptable")
        || has("no matching proposal")
    {
        Some(StatusReason::NoProposalChosen)
    } else if has("giving up after") && has("retransmits") {
        Some(StatusReason::PeerUnreachable)
    } else if has("received DELETE for IKE_SA") {
        Some(StatusReason::PeerClosed)
    } else {
        None
    }
}

/// A connection's status from `list-sas`; its traffic counts the installed child SAs plus
/// those rekeyed away. `kernel_refuses`: see [`driver::down_reason`].
fn connection_state(
    sas: &vici::Sas,
    spec: &ConnectionSpec,
    history: &History,
    kernel_refuses: Option<&str>,
) -> ConnectionState {
    let children = sas.installed_children(&spec.id);
    let count = |field: fn(&vici::ChildSa) -> &Option<String>| -> u64 {
        children.iter().map(|c| c.counter(field)).sum()
    };
    if status_in(sas, spec) == Status::Active {
        let carried = history.rekeyed.get(&spec.id).cloned().unwrap_or_default();
        return ConnectionState {
            status: Status::Active,
            reason: StatusReason::Established,
            detail: children.first().map(|c| c.proposal()).unwrap_or_default(),
            traffic: Some(Traffic {
                bytes_in: carried.bytes_in + count(|c| &c.bytes_in),
                bytes_out: carried.bytes_out + count(|c| &c.bytes_out),
                packets_in: carried.packets_in + count(|c| &c.packets_in),
                packets_out: carried.packets_out + count(|c| &c.packets_out),
                rekeys: carried.rekeys,
            }),
        };
    }
    let ike_up = sas.of(&spec.id).any(|ike| ike.state == "ESTABLISHED");
    let (reason, detail) =
        driver::down_reason(history.failures.get(&spec.id), ike_up, kernel_refuses);
    ConnectionState {
        status: Status::Down,
        reason,
        detail,
        traffic: None,
    }
}

/// ACTIVE when an IKE SA of the connection is established and every one of its child
/// SAs is installed (in any of its IKE SAs: duplicates may split them).
fn status_in(sas: &vici::Sas, spec: &ConnectionSpec) -> Status {
    let installed = sas.installed_children(&spec.id);
    let established = sas.of(&spec.id).any(|ike| ike.state == "ESTABLISHED");
    let up = established
        && vici::children(spec)
            .iter()
            .all(|(name, _, _)| installed.iter().any(|c| &c.name == name));
    if up { Status::Active } else { Status::Down }
}

async fn stop(daemon: Daemon) {
    process::terminate(daemon.pid).await;
    tracing::info!(pid = daemon.pid, "charon stopped");
}

/// Stops a charon left by an earlier agent run (found by its pid file).
async fn stop_leftover(dir: &Path) {
    let pid_file = dir.join("run").join("charon.pid");
    if let Some(pid) = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        && process::alive(pid)
        && process::is_named(pid, "charon")
    {
        process::terminate(pid).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charon_log_lines_map_to_status_reasons() {
        let cases = [
            (
                "received AUTHENTICATION_FAILED notify error",
                Some(StatusReason::AuthFailed),
            ),
            (
                "tried 1 shared key for '203.0.113.2' - '203.0.113.3', but MAC mismatched",
                Some(StatusReason::AuthFailed),
            ),
            (
                "received NO_PROPOSAL_CHOSEN notify error",
                Some(StatusReason::NoProposalChosen),
            ),
            (
                "no acceptable proposal found",
                Some(StatusReason::NoProposalChosen),
            ),
            (
                "received TS_UNACCEPTABLE notify, no CHILD_SA built",
                Some(StatusReason::TsUnacceptable),
            ),
            (
                "traffic selectors 10.2.0.0/24 === 10.1.0.0/24 unacceptable",
                Some(StatusReason::TsUnacceptable),
            ),
            (
                "giving up after 5 retransmits",
                Some(StatusReason::PeerUnreachable),
            ),
            (
                "received DELETE for IKE_SA c1[3]",
                Some(StatusReason::PeerClosed),
            ),
            (
                "unable to add SAD entry with SPI c72c6092 (FAILED)",
                Some(StatusReason::KernelRefused),
            ),
            (
                "unable to install inbound and outbound IPsec SA (SAD) in kernel",
                Some(StatusReason::KernelRefused),
            ),
            (
                "unable to install IPsec policies (SPD) in kernel",
                Some(StatusReason::KernelRefused),
            ),
            ("sending keep alive to 203.0.113.3[4500]", None),
            ("received netlink error: Protocol not supported (93)", None),
        ];
        for (line, reason) in cases {
            assert_eq!(classify(line), reason, "{line}");
        }
    }

    #[test]
    fn a_failure_is_attributed_to_its_connection_and_cleared_when_it_comes_up() {
        let failures = SharedHistory::default();
        let line = |name: Option<&str>, msg: &str| vici::LogLine {
            ikesa_name: name.map(String::from),
            msg: msg.into(),
        };
        assert!(
            !learn(
                &failures,
                &line(None, "received AUTHENTICATION_FAILED notify error"),
                Esp::Kernel
            ),
            "no IKE SA, no owner"
        );
        assert!(learn(
            &failures,
            &line(Some("c1"), "received AUTHENTICATION_FAILED notify error"),
            Esp::Kernel
        ));
        assert_eq!(
            failures
                .lock()
                .expect("lock")
                .failures
                .get("c1")
                .map(|f| f.0),
            Some(StatusReason::AuthFailed)
        );
        assert!(learn(
            &failures,
            &line(
                Some("c1"),
                "CHILD_SA c1{2} established with SPIs c1_i c2_o and TS 10.1.0.0/24 === 10.2.0.0/24"
            ),
            Esp::Kernel
        ));
        assert!(failures.lock().expect("lock").failures.is_empty());
    }

    /// What charon 5.9.8 logs about one IKE SA, as responder, on a kernel without ESP
    /// (reference: ipsec-lab.md §0), then the peer's answer to its own retry.
    const KERNEL_REFUSAL: [&str; 7] = [
        "selected proposal: ESP:AES_CBC_128/HMAC_SHA2_256_128/NO_EXT_SEQ",
        "received netlink error: Protocol not supported (93)",
        "unable to add SAD entry with SPI c72c6092 (FAILED)",
        "received netlink error: Protocol not supported (93)",
        "unable to add SAD entry with SPI c2f4d0da (FAILED)",
        "unable to install inbound and outbound IPsec SA (SAD) in kernel",
        "received NO_PROPOSAL_CHOSEN notify, no CHILD_SA built",
    ];

    fn learn_all(esp: Esp) -> Option<(StatusReason, String)> {
        let history = SharedHistory::default();
        for msg in KERNEL_REFUSAL {
            let line = vici::LogLine {
                ikesa_name: Some("c1".into()),
                msg: msg.into(),
            };
            learn(&history, &line, esp);
        }
        let failures = &history.lock().expect("lock").failures;
        failures.get("c1").cloned()
    }

    #[test]
    fn an_sa_the_kernel_refused_is_kernel_refused_with_the_kernels_words() {
        assert_eq!(
            learn_all(Esp::Kernel),
            Some((
                StatusReason::KernelRefused,
                "received netlink error: Protocol not supported (93); unable to add SAD entry with SPI c72c6092 (FAILED)".into()
            )),
            "the peer's NO_PROPOSAL_CHOSEN that follows does not replace it"
        );
    }

    #[test]
    fn an_sa_userspace_esp_refused_is_a_child_sa_failure() {
        assert_eq!(
            learn_all(Esp::Userspace).map(|f| f.0),
            Some(StatusReason::ChildSaFailed)
        );
    }
}
