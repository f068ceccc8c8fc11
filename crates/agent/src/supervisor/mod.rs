//! The life cycle of one IKE daemon per router, whatever the daemon: start, adoption of a
//! daemon an earlier agent left running, stop, exit watching, restart backoff, the
//! fingerprints of loaded connections, and the diff of wanted against loaded connections.
//! A [`Daemon`] supplies only what differs (how it starts, how one connection is loaded or
//! unloaded, what it shows).
//!
//! Each router has its own lock: the map of routers is locked only to find a router's
//! entry, never across a daemon's start (up to 5 s), so one router's slow start never
//! delays another's reconcile or report.

mod backoff;
mod fingerprints;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex, OwnedMutexGuard, mpsc};
use tokio::task::JoinHandle;
use vpnaas_model::agent::{ConnectionSpec, Generations, RouterState};

use crate::config::AgentConfig;
use crate::daemon::{Daemon, Loaded};
use crate::driver::IkeDriver;
use crate::error::Teardown;
use crate::process::{self, Process};
use crate::status::{self, ConnectionState, Failure, Observed};
use crate::{Error, Metrics, Result};
use backoff::Backoff;
use fingerprints::Change;

/// How long a daemon just started has to answer on its control socket.
const START_PATIENCE: Duration = Duration::from_secs(5);

/// A task stopped when its owner drops it (a daemon's watchers go with its handle).
pub struct Task(JoinHandle<()>);

impl Task {
    /// Runs `work` until it ends or the handle is dropped.
    pub fn spawn(work: impl Future<Output = ()> + Send + 'static) -> Task {
        Task(tokio::spawn(work))
    }

    /// Whether it has ended.
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One router's daemon while it runs (or has died and waits for its restart).
struct Running<D: Daemon> {
    process: Process,
    dir: PathBuf,
    control: D::Control,
    loaded: Loaded,
    /// Wakes the agent when the daemon exits.
    _exit: Task,
}

impl<D: Daemon> Running<D> {
    fn remember(&mut self, spec: &ConnectionSpec) {
        self.loaded.insert(spec.id.clone(), spec.clone());
        fingerprints::record(&self.dir, &self.loaded);
        tracing::info!(daemon = D::NAME, connection = %spec.id, "connection loaded");
    }

    /// Records a connection kept loaded whose credentials or generations changed.
    fn rotated(&mut self, spec: &ConnectionSpec, change: Change) {
        self.loaded.insert(spec.id.clone(), spec.clone());
        fingerprints::record(&self.dir, &self.loaded);
        tracing::info!(
            daemon = D::NAME,
            connection = %spec.id,
            credentials = change.credentials,
            reauthenticating = change.reauth,
            "connection kept loaded, its SAs untouched"
        );
    }

    fn forget(&mut self, id: &str) {
        self.loaded.remove(id);
        fingerprints::record(&self.dir, &self.loaded);
        tracing::info!(daemon = D::NAME, connection = id, "connection unloaded");
    }
}

/// One router's entry; its lock serialises that router's work only.
struct Slot<D: Daemon> {
    running: Option<Running<D>>,
    /// Enabled connections the daemon cannot take, with why.
    refused: HashMap<String, Failure>,
    /// Taken out of the map: whoever waited for its lock must look the router up again.
    retired: bool,
}

impl<D: Daemon> Default for Slot<D> {
    fn default() -> Self {
        Slot {
            running: None,
            refused: HashMap::new(),
            retired: false,
        }
    }
}

type Slots<D> = std::sync::Mutex<HashMap<String, Arc<Mutex<Slot<D>>>>>;

/// One daemon per router, for every router of this agent that uses `D`.
pub struct Supervisor<D: Daemon> {
    daemon: D,
    config: AgentConfig,
    /// The kernel's refusal of an ESP SA at agent start, when this daemon's SAs go there.
    kernel_refuses: Option<String>,
    routers: Slots<D>,
    restarts: Backoff,
    wake: mpsc::UnboundedSender<String>,
    metrics: Metrics,
}

impl<D: Daemon> Supervisor<D> {
    /// A supervisor of `daemon` that signals `wake` with a router id when that router's
    /// daemon exits or may start again.
    pub fn new(
        daemon: D,
        config: AgentConfig,
        kernel_refuses: Option<String>,
        wake: mpsc::UnboundedSender<String>,
        metrics: Metrics,
    ) -> Self {
        Supervisor {
            daemon,
            config,
            kernel_refuses,
            routers: Slots::default(),
            restarts: Backoff::default(),
            wake,
            metrics,
        }
    }

    fn dir(&self, router_id: &str) -> PathBuf {
        self.config.daemon_dir(router_id, D::KIND)
    }

    /// Locks a router's entry (made if missing). The map is locked only to find it.
    async fn lock(&self, router_id: &str) -> OwnedMutexGuard<Slot<D>> {
        loop {
            let slot = self
                .routers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(router_id.to_string())
                .or_default()
                .clone();
            let guard = slot.lock_owned().await;
            if !guard.retired {
                return guard;
            }
        }
    }

    /// Takes a router's entry out of the map (it runs no daemon any more).
    fn retire(&self, router_id: &str, mut slot: OwnedMutexGuard<Slot<D>>) {
        slot.retired = true;
        self.routers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(router_id);
    }

    /// Brings the router's daemon and its enabled connections to the desired state (the
    /// daemon runs while [`RouterState::runs_daemon`]).
    pub async fn ensure(&self, namespace: &str, state: &RouterState) -> Result<()> {
        let router_id = &state.router_id;
        let enabled: Vec<&ConnectionSpec> =
            state.connections.iter().filter(|c| c.enabled).collect();
        let mut slot = self.lock(router_id).await;
        if !state.runs_daemon() {
            let stopped = self.stop(slot.running.take(), &self.dir(router_id)).await;
            self.retire(router_id, slot);
            return stopped;
        }
        slot.refused = enabled
            .iter()
            .filter_map(|spec| Some((spec.id.clone(), self.daemon.refusal(spec)?)))
            .collect();
        let wanted: Vec<&ConnectionSpec> = enabled
            .into_iter()
            .filter(|spec| !slot.refused.contains_key(&spec.id))
            .collect();
        let mut running = self
            .running(namespace, router_id, &mut slot, &wanted)
            .await?;
        let converged = self.converge(&mut running, &wanted).await;
        slot.running = Some(running);
        converged
    }

    /// The router's daemon, running: the one known, else one an earlier agent left, else
    /// a new one (after a crash, once its backoff allows).
    async fn running(
        &self,
        namespace: &str,
        router_id: &str,
        slot: &mut Slot<D>,
        wanted: &[&ConnectionSpec],
    ) -> Result<Running<D>> {
        let known = match slot.running.take() {
            None => self.adopt(router_id, wanted).await,
            known => known,
        };
        match known {
            Some(running) if running.process.alive() => Ok(running),
            dead => {
                // A dead daemon stays known until it is started again, so that every
                // wake-up during its backoff still counts it as a crash.
                let crashed = dead.is_some();
                let allowed =
                    self.restarts
                        .may_start(router_id, crashed, &self.wake, &self.metrics);
                if let Err(wait) = allowed {
                    slot.running = dead;
                    return Err(Error::Backoff {
                        daemon: D::NAME,
                        wait,
                    });
                }
                drop(dead);
                self.start(namespace, router_id).await
            }
        }
    }

    /// Unloads what went or changed shape, takes new credentials and re-authenticates in
    /// place, loads what is new, and lets the daemon negotiate.
    async fn converge(&self, running: &mut Running<D>, wanted: &[&ConnectionSpec]) -> Result<()> {
        let stale: Vec<String> = running
            .loaded
            .iter()
            .filter(|(id, spec)| {
                !wanted
                    .iter()
                    .any(|w| &w.id == *id && !Change::between(spec, w).shape)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            self.daemon.unload(&mut running.control, &id).await?;
            running.forget(&id);
        }
        self.rotate(running, wanted).await?;
        let new: Vec<&ConnectionSpec> = wanted
            .iter()
            .copied()
            .filter(|w| !running.loaded.contains_key(&w.id))
            .collect();
        if !new.is_empty() {
            self.daemon.prepare(&mut running.control, wanted).await?;
            for spec in &new {
                self.daemon.load(&mut running.control, spec).await?;
                running.remember(spec);
            }
        }
        self.daemon
            .negotiate(&mut running.control, &running.loaded, &new)
            .await
    }

    /// For connections that stay loaded in the same shape: loads their new credentials
    /// (all at once), then starts the re-authentications asked, and records the rest of
    /// what changed (generations).
    async fn rotate(&self, running: &mut Running<D>, wanted: &[&ConnectionSpec]) -> Result<()> {
        let changed: Vec<(&ConnectionSpec, Change, u64)> = wanted
            .iter()
            .filter_map(|w| {
                let loaded = running.loaded.get(&w.id).filter(|l| l != w)?;
                Some((*w, Change::between(loaded, w), loaded.generations.reauth))
            })
            .collect();
        let credentials: Vec<&ConnectionSpec> = changed
            .iter()
            .filter(|(_, change, _)| change.credentials)
            .map(|(spec, _, _)| *spec)
            .collect();
        if !credentials.is_empty() {
            self.daemon
                .load_credentials(&mut running.control, wanted, &credentials)
                .await?;
        }
        for (spec, change, concluded) in changed {
            if change.reauth {
                self.daemon
                    .reauthenticate(&mut running.control, spec, concluded)
                    .await?;
            }
            running.rotated(spec, change);
        }
        Ok(())
    }

    /// Takes over a daemon left running by an earlier agent process (an agent restart
    /// must not bounce healthy tunnels): connections whose shape matches what is wanted
    /// stay loaded (with their recorded credentials and generations, so that converging
    /// loads new credentials in place); the others are unloaded.
    async fn adopt(&self, router_id: &str, wanted: &[&ConnectionSpec]) -> Option<Running<D>> {
        let dir = self.dir(router_id);
        let process = Process::from_pid_file(&dir.join(D::PID_FILE), D::NAME)?;
        let pid = process.pid();
        let mut control = self.daemon.attach(router_id, &dir).await.ok()?;
        let recorded = fingerprints::read(&dir);
        let loaded: Loaded = wanted
            .iter()
            .filter_map(|spec| Some((spec.id.clone(), recorded.get(&spec.id)?.loaded_as(spec)?)))
            .collect();
        for id in recorded.keys().filter(|id| !loaded.contains_key(*id)) {
            if let Err(error) = self.daemon.unload(&mut control, id).await {
                tracing::warn!(%error, connection = %id, "cannot unload a stale connection");
            }
        }
        fingerprints::record(&dir, &loaded);
        if let Err(error) = self.daemon.adopted(&mut control, &loaded).await {
            tracing::warn!(%error, router = router_id, "cannot learn the adopted connections");
        }
        let watched = Process::open(pid)?;
        let exit = self.watch_exit(router_id, async move { watched.exited().await });
        tracing::info!(
            router = router_id,
            pid,
            kept = loaded.len(),
            "adopted a running {}",
            D::NAME
        );
        Some(Running {
            process,
            dir,
            control,
            loaded,
            _exit: exit,
        })
    }

    async fn start(&self, namespace: &str, router_id: &str) -> Result<Running<D>> {
        let dir = self.dir(router_id);
        std::fs::create_dir_all(&dir).map_err(Error::file(&dir))?;
        self.stop_leftover(&dir).await?;
        let mut command = self.daemon.command(namespace, &dir).await?;
        let out = dir.join(format!("{}.out", D::NAME));
        let log = std::fs::File::create(&out).map_err(Error::file(&out))?;
        let stdout = log.try_clone().map_err(Error::file(&out))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .map_err(|source| Error::Spawn {
                program: D::NAME.into(),
                source,
            })?;
        let process = child.id().and_then(Process::open);
        let reaped = process::reap(child, D::NAME);
        let process = process.ok_or(Error::ExitedAtOnce(D::NAME))?;
        let control = match self.attach_when_ready(router_id, &dir, &process).await {
            Ok(control) => control,
            Err(error) => {
                let _ = process.terminate().await;
                return Err(error);
            }
        };
        let exit = self.watch_exit(router_id, async move {
            let _ = reaped.await;
        });
        tracing::info!(
            router = router_id,
            pid = process.pid(),
            "{} started",
            D::NAME
        );
        Ok(Running {
            process,
            dir,
            control,
            loaded: Loaded::new(),
            _exit: exit,
        })
    }

    /// Attaches to a daemon just started, once it answers.
    async fn attach_when_ready(
        &self,
        router_id: &str,
        dir: &Path,
        process: &Process,
    ) -> Result<D::Control> {
        let deadline = tokio::time::Instant::now() + START_PATIENCE;
        loop {
            let error = match self.daemon.attach(router_id, dir).await {
                Ok(control) => return Ok(control),
                Err(error) => error,
            };
            if !process.alive() {
                return Err(Error::ExitedAtOnce(D::NAME));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::NoAnswer {
                    daemon: D::NAME,
                    dir: dir.to_path_buf(),
                    source: Box::new(error),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wakes the agent for `router_id` once `exited` resolves.
    fn watch_exit(
        &self,
        router_id: &str,
        exited: impl Future<Output = ()> + Send + 'static,
    ) -> Task {
        let (wake, router) = (self.wake.clone(), router_id.to_string());
        Task::spawn(async move {
            exited.await;
            let _ = wake.send(router);
        })
    }

    /// Stops a router's daemon: the one known, or else one an earlier agent run left.
    async fn stop(&self, running: Option<Running<D>>, dir: &Path) -> Result<()> {
        let Some(running) = running else {
            return self.stop_leftover(dir).await;
        };
        // Its watchers go first: a deliberate stop wakes nobody.
        let Running {
            process,
            control,
            _exit: exit,
            ..
        } = running;
        drop((exit, control));
        let pid = process.pid();
        process.terminate().await?;
        tracing::info!(pid, "{} stopped", D::NAME);
        Ok(())
    }

    /// Stops a daemon left by an earlier agent run (found by its pid file).
    async fn stop_leftover(&self, dir: &Path) -> Result<()> {
        match Process::from_pid_file(&dir.join(D::PID_FILE), D::NAME) {
            Some(process) => process.terminate().await,
            None => Ok(()),
        }
    }

    /// Stops the router's daemon and removes its files; every step is tried, whatever
    /// the ones before it met.
    pub async fn remove(&self, router_id: &str) -> Result<()> {
        let dir = self.dir(router_id);
        let mut teardown = Teardown::default();
        let mut slot = self.lock(router_id).await;
        teardown.step(self.stop(slot.running.take(), &dir).await);
        teardown.step(self.stop_leftover(&dir).await);
        if dir.exists() {
            teardown.step(std::fs::remove_dir_all(&dir).map_err(Error::file(&dir)));
        }
        self.retire(router_id, slot);
        teardown.finish()
    }

    /// What the daemon says about the router's connections.
    pub async fn observe(&self, router_id: &str) -> Observed {
        let slot = self
            .routers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(router_id)
            .cloned();
        let Some(slot) = slot else {
            return Observed::default();
        };
        let slot = slot.lock().await;
        let Some(running) = slot.running.as_ref().filter(|r| r.process.alive()) else {
            return Observed::default();
        };
        let mut connections: HashMap<String, ConnectionState> =
            match self.daemon.observe(&running.control, &running.loaded).await {
                Some(seen) => running
                    .loaded
                    .iter()
                    .map(|(id, spec)| {
                        let mut state = status::connection_state(
                            seen.sas.get(id),
                            seen.failures.get(id),
                            self.kernel_refuses.as_deref(),
                        );
                        state.applied = Generations {
                            credentials: spec.generations.credentials,
                            reauth: seen
                                .reauthenticated
                                .get(id)
                                .copied()
                                .unwrap_or(spec.generations.reauth),
                        };
                        (id.clone(), state)
                    })
                    .collect(),
                None => HashMap::new(),
            };
        for (id, refusal) in &slot.refused {
            connections.insert(id.clone(), ConnectionState::down(refusal.clone()));
        }
        Observed {
            daemon_running: true,
            connections,
        }
    }
}

#[async_trait]
impl<D: Daemon> IkeDriver for Supervisor<D> {
    async fn ensure(&self, namespace: &str, state: &RouterState) -> Result<()> {
        Supervisor::ensure(self, namespace, state).await
    }

    async fn remove(&self, router_id: &str) -> Result<()> {
        Supervisor::remove(self, router_id).await
    }

    async fn observe(&self, router_id: &str) -> Observed {
        Supervisor::observe(self, router_id).await
    }
}
