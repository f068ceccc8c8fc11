//! The Libreswan driver: one pluto per router, in the router's namespace (and, for its
//! fixed `/usr/libexec/ipsec/addconn` path, a private mount of the Libreswan root), with
//! its own control socket, run, NSS and ipsec.d directories and log under
//! `<state_dir>/<router>/libreswan/`. Connections are added (`addconn`) and deleted
//! (`whack --delete`) one by one; a change never restarts pluto. Libreswan has no event
//! stream: `whack --status` is read every `status_interval` and on every sync, pluto's
//! log explains failures, and pluto's exit wakes the agent at once.

pub mod conf;
pub mod proposals;
pub mod status;

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use vpnaas_model::agent::{ConnectionSpec, RouterState};
use vpnaas_model::enums::{DriverKind, Initiator, Status, StatusReason};
use vpnaas_model::site_connection::Traffic;

use crate::config::AgentConfig;
use crate::driver::{self, ConnectionState, IkeDriver, Observed};
use crate::{Error, Metrics, Result, command, process};

/// Last failure per connection, learnt from pluto's log.
type Failures = Arc<std::sync::Mutex<driver::Failures>>;

struct Pluto {
    pid: u32,
    dir: PathBuf,
    loaded: HashMap<String, ConnectionSpec>,
    failures: Failures,
    watcher: JoinHandle<()>,
}

impl Drop for Pluto {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl Pluto {
    fn socket(&self) -> PathBuf {
        self.dir.join("run/pluto.ctl")
    }
}

/// The driver for all Libreswan routers of this agent.
pub struct Libreswan {
    config: AgentConfig,
    /// The kernel's refusal of an ESP SA at agent start (pluto's SAs always go there).
    kernel_refuses: Option<String>,
    daemons: Mutex<HashMap<String, Pluto>>,
    wake: mpsc::UnboundedSender<String>,
    restarts: process::Backoff,
    metrics: Metrics,
}

impl Libreswan {
    /// A driver that signals `wake` with a router id when its status may have changed;
    /// `kernel_refuses` is the kernel's refusal of an ESP SA at agent start, if it refused.
    pub fn new(
        config: AgentConfig,
        kernel_refuses: Option<String>,
        wake: mpsc::UnboundedSender<String>,
        metrics: Metrics,
    ) -> Self {
        Libreswan {
            config,
            kernel_refuses,
            daemons: Mutex::new(HashMap::new()),
            wake,
            restarts: process::Backoff::default(),
            metrics,
        }
    }

    fn dir(&self, router_id: &str) -> PathBuf {
        self.config.daemon_dir(router_id, DriverKind::Libreswan)
    }

    async fn whack(&self, socket: &Path, args: &[&str]) -> Result<String> {
        let socket = socket.to_string_lossy();
        let mut all = vec!["--ctlsocket", socket.as_ref()];
        all.extend_from_slice(args);
        command::run(&self.config.libreswan.tool("whack").to_string_lossy(), &all).await
    }

    async fn start(&self, namespace: &str, router_id: &str) -> Result<Pluto> {
        let dir = self.dir(router_id);
        for sub in ["run", "nss", "ipsec.d"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(|e| Error::Daemon(format!("{}: {e}", dir.display())))?;
        }
        stop_leftover(&dir).await;
        for stale in ["run/pluto.ctl", "run/pluto.pid", "pluto.log"] {
            let _ = std::fs::remove_file(dir.join(stale));
        }
        write_private(&dir.join("ipsec.conf"), &conf::render(&[]))?;
        write_private(&dir.join("ipsec.secrets"), "")?;
        if !dir.join("nss/cert9.db").exists() {
            let nss = format!("sql:{}", dir.join("nss").display());
            command::run("certutil", &["-N", "-d", &nss, "--empty-password"]).await?;
        }
        let log = std::fs::File::create(dir.join("pluto.out"))
            .map_err(|e| Error::Daemon(e.to_string()))?;
        let path = |p: &str| dir.join(p).to_string_lossy().into_owned();
        // pluto runs addconn from the fixed /usr/libexec/ipsec: bind the Libreswan root's
        // there, in this process's private mount namespace only.
        let child = tokio::process::Command::new("ip")
            .args(["netns", "exec", namespace, "sh", "-c"])
            .arg(
                "mount --bind \"$0\" /usr/libexec && exec \"$1\" --nofork --config \"$2\" \
                 --rundir \"$3\" --dumpdir \"$3\" --nssdir \"$4\" --ipsecdir \"$5\" \
                 --secretsfile \"$6\" --logfile \"$7\"",
            )
            .arg(self.config.libreswan.root.join("usr/libexec"))
            .arg(self.config.libreswan.tool("pluto"))
            .args([
                path("ipsec.conf"),
                path("run"),
                path("nss"),
                path("ipsec.d"),
                path("ipsec.secrets"),
                path("pluto.log"),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| Error::Daemon(e.to_string()))?)
            .stderr(log)
            .spawn()
            .map_err(|e| Error::Daemon(format!("cannot start pluto: {e}")))?;
        let pid = child
            .id()
            .ok_or_else(|| Error::Daemon("pluto exited at once".into()))?;
        let exit = process::reap(child, "pluto");
        let socket = dir.join("run/pluto.ctl");
        self.wait_ready(&socket, pid).await?;
        let failures = Failures::default();
        let watcher = self.watch(router_id, &dir, pid, Some(exit), failures.clone());
        tracing::info!(router = router_id, pid, "pluto started");
        Ok(Pluto {
            pid,
            dir,
            loaded: HashMap::new(),
            failures,
            watcher,
        })
    }

    /// Takes over a pluto left running by an earlier agent process (an agent restart must
    /// not bounce healthy tunnels): connections whose recorded fingerprint matches what is
    /// wanted stay loaded; the others are deleted.
    async fn adopt(&self, router_id: &str, wanted: &[&ConnectionSpec]) -> Option<Pluto> {
        let dir = self.dir(router_id);
        let pid = std::fs::read_to_string(dir.join("run/pluto.pid"))
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()?;
        if !process::alive(pid) || !process::is_named(pid, "pluto") {
            return None;
        }
        let socket = dir.join("run/pluto.ctl");
        self.whack(&socket, &["--status"]).await.ok()?;
        let failures = Failures::default();
        let watcher = self.watch(router_id, &dir, pid, None, failures.clone());
        let recorded = driver::read_loaded(&dir);
        let mut pluto = Pluto {
            pid,
            dir,
            loaded: HashMap::new(),
            failures,
            watcher,
        };
        for spec in wanted {
            if recorded.get(&spec.id) == Some(&driver::fingerprint(spec)) {
                pluto.loaded.insert(spec.id.clone(), (*spec).clone());
            }
        }
        let stale: Vec<&String> = recorded
            .keys()
            .filter(|id| !pluto.loaded.contains_key(*id))
            .collect();
        for id in stale {
            if let Err(error) = self.delete(&mut pluto, id).await {
                tracing::warn!(%error, connection = %id, "cannot delete a stale connection");
            }
        }
        driver::record_loaded(&pluto.dir, &pluto.loaded);
        tracing::info!(
            router = router_id,
            pid,
            kept = pluto.loaded.len(),
            "adopted a running pluto"
        );
        Some(pluto)
    }

    async fn wait_ready(&self, socket: &Path, pid: u32) -> Result<()> {
        for _ in 0..250 {
            if socket.exists() && self.whack(socket, &["--status"]).await.is_ok() {
                return Ok(());
            }
            if !process::alive(pid) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(Error::Daemon(format!(
            "pluto's control socket {} does not answer",
            socket.display()
        )))
    }

    /// Wakes the agent when pluto exits, and when its status or its log's verdicts change
    /// (read every `status_interval`).
    fn watch(
        &self,
        router_id: &str,
        dir: &Path,
        pid: u32,
        exit: Option<JoinHandle<()>>,
        failures: Failures,
    ) -> JoinHandle<()> {
        let (wake, router) = (self.wake.clone(), router_id.to_string());
        let interval = Duration::from_secs_f64(self.config.libreswan.status_interval.max(0.1));
        let whack = self.config.libreswan.tool("whack");
        let (socket, log) = (dir.join("run/pluto.ctl"), dir.join("pluto.log"));
        tokio::spawn(async move {
            let mut last = String::new();
            // The whole log of this pluto (an adopted one's too): its verdicts still hold
            // until a child SA comes up.
            let mut offset = 0;
            let mut exit = exit;
            loop {
                tokio::select! {
                    _ = exited(&mut exit, pid) => break,
                    _ = tokio::time::sleep(interval) => {
                        let learnt = learn_from_log(&log, &mut offset, &failures);
                        let now = read_status(&whack, &socket).await.unwrap_or_default();
                        if learnt || now != last {
                            last = now;
                            let _ = wake.send(router.clone());
                        }
                    }
                }
            }
            let _ = wake.send(router);
        })
    }

    /// Deletes a loaded connection and all its instances (`<id>/1x2` …).
    async fn delete(&self, pluto: &mut Pluto, id: &str) -> Result<()> {
        let socket = pluto.socket();
        let listed = self.whack(&socket, &["--status"]).await?;
        for name in status::connection_names(&listed) {
            if name == id || name.starts_with(&format!("{id}/")) {
                self.whack(&socket, &["--name", &name, "--delete"]).await?;
            }
        }
        pluto.loaded.remove(id);
        driver::record_loaded(&pluto.dir, &pluto.loaded);
        if let Ok(mut failures) = pluto.failures.lock() {
            failures.remove(id);
        }
        tracing::info!(connection = %id, "connection deleted from pluto");
        Ok(())
    }

    async fn add(&self, pluto: &mut Pluto, spec: &ConnectionSpec) -> Result<()> {
        let socket = pluto.socket();
        let socket = socket.to_string_lossy();
        let config = pluto.dir.join("ipsec.conf");
        command::run(
            &self.config.libreswan.tool("addconn").to_string_lossy(),
            &[
                "--ctlsocket",
                &socket,
                "--config",
                &config.to_string_lossy(),
                &spec.id,
            ],
        )
        .await?;
        pluto.loaded.insert(spec.id.clone(), spec.clone());
        driver::record_loaded(&pluto.dir, &pluto.loaded);
        if let Ok(mut failures) = pluto.failures.lock() {
            failures.remove(&spec.id);
        }
        tracing::info!(connection = %spec.id, "connection added to pluto");
        Ok(())
    }

    async fn initiate(&self, pluto: &Pluto, spec: &ConnectionSpec) -> Result<()> {
        if spec.initiator != Initiator::BiDirectional {
            return Ok(());
        }
        let socket = pluto.socket();
        let listed = self.whack(&socket, &["--status"]).await?;
        for name in status::connection_names(&listed) {
            if name == spec.id || name.starts_with(&format!("{}/", spec.id)) {
                self.whack(&socket, &["--name", &name, "--asynchronous", "--initiate"])
                    .await?;
            }
        }
        Ok(())
    }

    async fn ensure_pluto(&self, namespace: &str, state: &RouterState) -> Result<()> {
        let wanted: Vec<&ConnectionSpec> = state.connections.iter().filter(|c| c.enabled).collect();
        let mut daemons = self.daemons.lock().await;
        if wanted.is_empty() {
            if let Some(pluto) = daemons.remove(&state.router_id) {
                stop(pluto).await;
            }
            return Ok(());
        }
        if !daemons.contains_key(&state.router_id)
            && let Some(pluto) = self.adopt(&state.router_id, &wanted).await
        {
            daemons.insert(state.router_id.clone(), pluto);
        }
        let running = daemons
            .get(&state.router_id)
            .is_some_and(|p| process::alive(p.pid));
        if !running {
            let crashed = daemons.contains_key(&state.router_id);
            self.restarts
                .may_start(&state.router_id, crashed, &self.wake, &self.metrics)
                .map_err(|wait| {
                    Error::Daemon(format!("pluto keeps exiting; next start in {wait:?}"))
                })?;
            daemons.remove(&state.router_id);
            let pluto = self.start(namespace, &state.router_id).await?;
            daemons.insert(state.router_id.clone(), pluto);
        }
        let pluto = daemons
            .get_mut(&state.router_id)
            .ok_or_else(|| Error::Daemon("vanished".into()))?;
        self.reconcile(pluto, &wanted).await
    }

    /// Brings pluto's connections to `wanted`: deletes what changed or went, writes the
    /// files, adds and initiates what is new. Connections Libreswan cannot express are
    /// left out (and reported by `observe`).
    async fn reconcile(&self, pluto: &mut Pluto, wanted: &[&ConnectionSpec]) -> Result<()> {
        if let Ok(mut failures) = pluto.failures.lock() {
            failures.retain(|id, _| wanted.iter().any(|w| &w.id == id));
        }
        let mut conns = Vec::new();
        let mut writable = Vec::new();
        for spec in wanted {
            match conf::Conn::of(spec) {
                Ok(conn) => {
                    conns.push(conn);
                    writable.push(*spec);
                }
                Err(error) => {
                    if let Ok(mut failures) = pluto.failures.lock() {
                        failures.insert(
                            spec.id.clone(),
                            (StatusReason::NoProposalChosen, error.to_string()),
                        );
                    }
                }
            }
        }
        let stale: Vec<String> = pluto
            .loaded
            .iter()
            .filter(|(id, spec)| !writable.iter().any(|w| &w.id == *id && w == spec))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &stale {
            self.delete(pluto, id).await?;
        }
        let new: Vec<&ConnectionSpec> = writable
            .iter()
            .copied()
            .filter(|w| !pluto.loaded.contains_key(&w.id))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        write_private(&pluto.dir.join("ipsec.conf"), &conf::render(&conns))?;
        let secrets = conf::secrets(&writable).map_err(|e| Error::Daemon(e.to_string()))?;
        write_private(&pluto.dir.join("ipsec.secrets"), &secrets)?;
        self.whack(&pluto.socket(), &["--rereadsecrets"]).await?;
        for spec in &new {
            self.add(pluto, spec).await?;
        }
        self.whack(&pluto.socket(), &["--listen"]).await?;
        for spec in &new {
            self.initiate(pluto, spec).await?;
        }
        Ok(())
    }

    async fn observe_pluto(&self, router_id: &str) -> Observed {
        let daemons = self.daemons.lock().await;
        let Some(pluto) = daemons.get(router_id) else {
            return Observed::default();
        };
        if !process::alive(pluto.pid) {
            return Observed::default();
        }
        let whack = self.config.libreswan.tool("whack");
        let Ok(text) = read_status(&whack, &pluto.socket()).await else {
            return Observed {
                daemon_running: true,
                connections: HashMap::new(),
            };
        };
        let (status_text, traffic_text) = text.split_once(TRAFFIC_MARK).unwrap_or((&text, ""));
        let mut sas = status::parse_status(status_text);
        status::add_traffic(&mut sas, traffic_text);
        let failures = pluto.failures.lock().map(|f| f.clone()).unwrap_or_default();
        let mut connections: HashMap<String, ConnectionState> = pluto
            .loaded
            .values()
            .map(|spec| {
                (
                    spec.id.clone(),
                    connection_state(
                        &sas,
                        spec,
                        failures.get(&spec.id),
                        self.kernel_refuses.as_deref(),
                    ),
                )
            })
            .collect();
        // Connections Libreswan cannot express were never added: report why.
        for (id, (reason, detail)) in failures {
            connections.entry(id).or_insert(ConnectionState {
                status: Status::Down,
                reason,
                detail,
                traffic: None,
            });
        }
        Observed {
            daemon_running: true,
            connections,
        }
    }
}

const TRAFFIC_MARK: &str = "\n--- trafficstatus ---\n";

/// Resolves when pluto exits: at once for our child, within 200 ms for an adopted one.
async fn exited(exit: &mut Option<JoinHandle<()>>, pid: u32) {
    match exit {
        Some(handle) => {
            let _ = handle.await;
        }
        None => {
            while process::alive(pid) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// `whack --status` and `--trafficstatus`, one text.
async fn read_status(whack: &Path, socket: &Path) -> Result<String> {
    let whack = whack.to_string_lossy();
    let socket = socket.to_string_lossy();
    let status = command::run(&whack, &["--ctlsocket", &socket, "--status"]).await?;
    let traffic = command::run(&whack, &["--ctlsocket", &socket, "--trafficstatus"])
        .await
        .unwrap_or_default();
    Ok(format!("{status}{TRAFFIC_MARK}{traffic}"))
}

/// Reads what pluto logged since `offset`; returns whether a connection's verdict changed.
fn learn_from_log(log: &Path, offset: &mut u64, failures: &Failures) -> bool {
    let Ok(mut file) = std::fs::File::open(log) else {
        return false;
    };
    let mut text = String::new();
    if file.seek(SeekFrom::Start(*offset)).is_err() || file.read_to_string(&mut text).is_err() {
        return false;
    }
    *offset += text.len() as u64;
    let Ok(mut failures) = failures.lock() else {
        return false;
    };
    let mut changed = false;
    for line in text.lines() {
        let Some(connection) = status::log_connection(line) else {
            continue;
        };
        if status::child_established(line) {
            changed |= failures.remove(connection).is_some();
        } else if let Some(reason) = status::classify(line) {
            let detail = line.split_once('"').map_or(line, |(_, rest)| rest);
            changed |=
                driver::learn_failure(&mut failures, connection, reason, format!("\"{detail}"));
        }
    }
    changed
}

/// ACTIVE when an IKE SA is established and every (local, peer) CIDR pair has its child SA;
/// otherwise down, for the reason [`driver::down_reason`] gives.
fn connection_state(
    sas: &status::Sas,
    spec: &ConnectionSpec,
    failure: Option<&(StatusReason, String)>,
    kernel_refuses: Option<&str>,
) -> ConnectionState {
    let pairs = spec.local_cidrs.len() * spec.peer_cidrs.len();
    let seen = sas.get(&spec.id).cloned().unwrap_or_default();
    if seen.ike_established && seen.children.len() >= pairs.max(1) {
        return ConnectionState {
            status: Status::Active,
            reason: StatusReason::Established,
            detail: String::new(),
            traffic: Some(Traffic {
                bytes_in: seen.bytes_in,
                bytes_out: seen.bytes_out,
                ..Traffic::default()
            }),
        };
    }
    let (reason, detail) = driver::down_reason(failure, seen.ike_established, kernel_refuses);
    ConnectionState {
        status: Status::Down,
        reason,
        detail,
        traffic: None,
    }
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::Daemon(format!("{}: {e}", path.display())))
}

async fn stop(pluto: Pluto) {
    process::terminate(pluto.pid).await;
    tracing::info!(pid = pluto.pid, "pluto stopped");
}

/// Stops a pluto left by an earlier agent run (found by its pid file).
async fn stop_leftover(dir: &Path) {
    if let Some(pid) = std::fs::read_to_string(dir.join("run/pluto.pid"))
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        && process::alive(pid)
        && process::is_named(pid, "pluto")
    {
        process::terminate(pid).await;
    }
}

#[async_trait]
impl IkeDriver for Libreswan {
    async fn ensure(&self, namespace: &str, state: &RouterState) -> Result<()> {
        self.ensure_pluto(namespace, state).await
    }

    async fn remove(&self, router_id: &str) -> Result<()> {
        if let Some(pluto) = self.daemons.lock().await.remove(router_id) {
            stop(pluto).await;
        }
        let dir = self.dir(router_id);
        stop_leftover(&dir).await;
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| Error::Daemon(format!("remove {}: {e}", dir.display())))?;
        }
        Ok(())
    }

    async fn observe(&self, router_id: &str) -> Observed {
        self.observe_pluto(router_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_refusal_in_plutos_log_outlasts_the_peers_notify() {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("pluto.log");
        std::fs::write(
            &log,
            "\"c1\" #2: netlink response for Add SA esp.8deab154@203.0.113.1: Protocol not supported (errno 93)\n\
             \"c1\" #3: IKE_AUTH response rejected Child SA with TS_UNACCEPTABLE\n",
        )
        .expect("log");
        let failures = Failures::default();
        let mut offset = 0;
        assert!(learn_from_log(&log, &mut offset, &failures));
        let failures = failures.lock().expect("lock");
        let (reason, detail) = &failures["c1"];
        assert_eq!(*reason, StatusReason::KernelRefused);
        assert!(
            detail.contains("Protocol not supported (errno 93)"),
            "{detail}"
        );
    }
}
