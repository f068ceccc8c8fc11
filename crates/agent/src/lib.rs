//! The vpnaas agent: for each router the server schedules to this host it fetches the
//! router's whole desired state, brings the host to it (namespace and ports, NAT, one IKE
//! daemon with its connections), and reports what it observes. Level-triggered: a
//! `router_changed` hint, the periodic resync, a daemon event and an agent restart all run
//! the same reconcile, so a lost message or a crash is healed by the next pass.
//!
//! `supervisor` runs one IKE daemon per router for the `strongswan` and `libreswan`
//! drivers, which supply only what differs (`daemon::Daemon`); `status` makes reports of
//! what a daemon shows; `l3` plumbs namespaces, ports and NAT; `fake` simulates tunnels;
//! `liveness` probes HA routers' active agents and claims their leases when they fall
//! silent.

mod apply;
pub mod command;
pub mod config;
pub mod daemon;
pub mod data_plane;
pub mod driver;
pub mod error;
pub mod fake;
#[cfg(test)]
mod fixtures;
pub mod hash;
pub mod l3;
pub mod libreswan;
pub mod liveness;
pub mod metrics;
pub mod process;
pub mod status;
pub mod strongswan;
pub mod supervisor;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::{broadcast, mpsc, watch};
use vpnaas_bus::ControlPlane;
use vpnaas_model::agent::{ConnectionStatus, Heartbeat, RouterChanged, RouterState, StatusReport};
use vpnaas_model::enums::HaRole;

pub use config::{AgentConfig, DataPlane, L3Mode};
pub use error::{Error, Result};
use libreswan::Libreswan;
pub use metrics::Metrics;
use metrics::Trigger;
use strongswan::StrongSwan;

/// `ids` without repeats, in their first order.
fn distinct(ids: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect()
}

/// An unchanged report is sent again after this many resync intervals (so a server that
/// lost it, e.g. restored from a backup, hears it again).
const REPORT_REFRESH_RESYNCS: u32 = 10;

/// Desired states asked for in one call during a full resync.
const FETCH_BATCH: usize = 32;

/// Batches of desired states in flight during a full resync. Each is read from a snapshot
/// without locks, and a resync waits on their latency, not on CPU: with 2 in flight, 2000
/// routers (10,000 connections) took 2.5 s with the agent and servers mostly idle; with 8,
/// 1.15 s (BENCHMARKS.md). The servers' database pools bound what runs at once.
const FETCH_CONCURRENCY: usize = 8;

/// How soon a failed resync (e.g. the server not answering yet) is tried again.
const RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// The agent's heartbeats: a task of their own, so that no resync ever delays one (they
/// register the agent and renew its routers' leases); they stop when this is dropped.
struct Heartbeats(tokio::task::JoinHandle<()>);

impl Heartbeats {
    fn start(
        control: Arc<dyn ControlPlane>,
        beat: Heartbeat,
        period: std::time::Duration,
    ) -> Heartbeats {
        Heartbeats(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                if let Err(error) = control.beat(&beat).await {
                    tracing::warn!(%error, "heartbeat failed; retrying in a second");
                    tick.reset_at(tokio::time::Instant::now() + RETRY);
                }
            }
        }))
    }
}

impl Drop for Heartbeats {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The IKE daemon drivers of an agent.
enum Drivers {
    /// Real daemons, each router on the one its state asks for.
    Daemons(Box<Daemons>),
    /// Simulated tunnels for every router (`fake_tunnel_delay_ms`).
    Fake(fake::FakeDriver),
}

/// One driver per IKE daemon.
struct Daemons {
    strongswan: StrongSwan,
    libreswan: Libreswan,
}

impl Daemons {
    /// The drivers, on the data plane chosen now (the kernel is asked whether it holds an
    /// ESP SA); the choice is logged, with why, and exported.
    async fn new(
        config: &AgentConfig,
        wake: mpsc::UnboundedSender<String>,
        metrics: &Metrics,
    ) -> Daemons {
        let chosen = data_plane::Chosen::new(config.data_plane, data_plane::probe().await);
        if chosen.kernel_esp_refused().is_some() {
            tracing::warn!("data plane: {chosen}");
        } else {
            tracing::info!("data plane: {chosen}");
        }
        metrics.data_plane(chosen.esp);
        Daemons {
            strongswan: strongswan::driver(config.clone(), &chosen, wake.clone(), metrics.clone()),
            libreswan: libreswan::driver(
                config.clone(),
                chosen.kernel.refusal().map(String::from),
                wake,
                metrics.clone(),
            ),
        }
    }
}

/// One agent.
pub struct Agent {
    config: AgentConfig,
    control: Arc<dyn ControlPlane>,
    drivers: Drivers,
    wake: mpsc::UnboundedReceiver<String>,
    /// Last state applied per hosted router.
    applied: HashMap<String, RouterState>,
    /// Last statuses reported per hosted router.
    reported: HashMap<String, Vec<ConnectionStatus>>,
    /// The last report the server took per router, and when: an identical one is not sent
    /// again until it is `REPORT_REFRESH_RESYNCS` resyncs old (at scale, unchanged reports
    /// would be most of the server's writes).
    last_sent: HashMap<String, (StatusReport, std::time::Instant)>,
    /// Reports made during the current pass, sent together at its end (a full resync
    /// sends one call per batch of routers, not one per router).
    outbox: Vec<StatusReport>,
    /// A report failed: resync soon rather than at the next tick, so a server that comes
    /// back hears the truth within a second.
    resync_soon: bool,
    metrics: Metrics,
    /// Under Neutron, the router namespaces watched for changes (keepalived's addresses,
    /// Neutron's rules), and the routers whose namespaces changed.
    watches: l3::watch::Watches,
    namespace_events: mpsc::UnboundedReceiver<String>,
    /// Under Neutron, whether each HA router's gateway address is on this node (where
    /// keepalived made the namespace primary) as last seen; no daemon runs for those it is
    /// not on.
    gateway_here: HashMap<String, bool>,
    /// The HA routers this agent is the standby of, whose active agents `liveness` probes.
    watched: watch::Sender<liveness::Watched>,
    /// Routers whose lease the server granted to this agent's claim: taken over at once.
    granted: mpsc::UnboundedReceiver<Vec<String>>,
    granted_tx: mpsc::UnboundedSender<Vec<String>>,
}

impl Agent {
    /// An agent for `config.host`, talking to the server through `control`, recording
    /// into `metrics`. Unless it simulates tunnels, it first asks the kernel whether it
    /// holds an ESP SA, settles its data plane and logs which and why.
    pub async fn new(
        config: AgentConfig,
        control: Arc<dyn ControlPlane>,
        metrics: Metrics,
    ) -> Agent {
        let (wake_tx, wake) = mpsc::unbounded_channel();
        let drivers = match config.fake_tunnel_delay_ms {
            Some(ms) => Drivers::Fake(fake::FakeDriver::new(
                std::time::Duration::from_millis(ms),
                wake_tx,
            )),
            None => Drivers::Daemons(Box::new(Daemons::new(&config, wake_tx, &metrics).await)),
        };
        let (namespace_tx, namespace_events) = mpsc::unbounded_channel();
        let (granted_tx, granted) = mpsc::unbounded_channel();
        Agent {
            watched: watch::Sender::new(liveness::Watched::new()),
            granted,
            granted_tx,
            config,
            control,
            drivers,
            wake,
            watches: l3::watch::Watches::new(namespace_tx),
            namespace_events,
            gateway_here: HashMap::new(),
            applied: HashMap::new(),
            reported: HashMap::new(),
            last_sent: HashMap::new(),
            outbox: Vec::new(),
            resync_soon: false,
            metrics,
        }
    }

    /// Runs until `hints` closes (or is dropped): beats on its own clock, cleans
    /// leftovers, then reconciles on every hint, daemon event and resync tick.
    pub async fn run(mut self, mut hints: broadcast::Receiver<RouterChanged>) {
        let (ha_address, _liveness) = self.start_liveness().await;
        let beat = Heartbeat {
            host: self.config.host.clone(),
            ha_address,
        };
        let _heartbeats = Heartbeats::start(self.control.clone(), beat, self.config.heartbeat());
        let mut tick = tokio::time::interval(self.config.resync());
        let mut awaited = tokio::time::interval(l3::watch::AWAIT_POLL);
        awaited.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut first = true;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(error) = self.resync_all(first).await {
                        tracing::warn!(%error, "resync failed; retrying in a second");
                        tick.reset_at(tokio::time::Instant::now() + RETRY);
                    } else {
                        first = false;
                    }
                }
                hint = hints.recv() => match hint {
                    Ok(hint) => {
                        let mut routers = vec![hint.router_id];
                        while let Ok(more) = hints.try_recv() {
                            routers.push(more.router_id);
                        }
                        for router_id in distinct(routers) {
                            self.sync_one(&router_id, false).await;
                        }
                        self.send_reports().await;
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => tick.reset_immediately(),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                Some(router_id) = self.wake.recv() => {
                    let mut routers = vec![router_id];
                    while let Ok(more) = self.wake.try_recv() {
                        routers.push(more);
                    }
                    self.on_events(routers).await;
                }
                Some(routers) = self.granted.recv() => {
                    self.take_over(routers).await;
                    self.send_reports().await;
                }
                Some(router_id) = self.namespace_events.recv() => {
                    let mut routers = vec![router_id];
                    while let Ok(more) = self.namespace_events.try_recv() {
                        routers.push(more);
                    }
                    self.on_namespace_changes(routers).await;
                }
                _ = awaited.tick(), if self.watches.awaiting() => {
                    let appeared = self.watches.appeared();
                    if !appeared.is_empty() {
                        self.on_namespace_changes(appeared).await;
                    }
                }
            }
            if std::mem::take(&mut self.resync_soon) {
                tick.reset_at(tokio::time::Instant::now() + RETRY);
            }
        }
    }

    /// Binds the liveness socket (`[ha] listen`) and starts answering and probing; the
    /// address to tell the server. Without it (or if it cannot be bound) HA failover
    /// waits for the server's `agent_down_time`.
    async fn start_liveness(&self) -> (Option<std::net::SocketAddr>, Option<liveness::Liveness>) {
        let socket = match liveness::bind(&self.config.ha).await {
            Ok(Some(socket)) => socket,
            Ok(None) => return (None, None),
            Err(error) => {
                tracing::error!(%error, listen = ?self.config.ha.listen, "no HA liveness probes: failover waits for agent_down_time");
                return (None, None);
            }
        };
        let address = socket.local_addr().ok();
        tracing::info!(?address, "answering HA liveness probes");
        let links = liveness::Links {
            host: self.config.host.clone(),
            control: self.control.clone(),
            watched: self.watched.subscribe(),
            granted: self.granted_tx.clone(),
        };
        (
            address,
            Some(liveness::Liveness::start(socket, &self.config.ha, links)),
        )
    }

    /// Whether a desired state fetched earlier is older than the one applied since.
    fn superseded(
        &self,
        router_id: &str,
        fetched: &vpnaas_bus::Result<Option<RouterState>>,
    ) -> bool {
        let applied = self.applied.get(router_id).map(|s| s.revision);
        matches!(fetched, Ok(Some(state)) if applied.is_some_and(|a| a > state.revision))
    }

    /// Takes over the routers whose leases the server just granted (and any granted
    /// meanwhile), each on the state the server gives now.
    async fn take_over(&mut self, mut routers: Vec<String>) {
        while let Ok(more) = self.granted.try_recv() {
            routers.extend(more);
        }
        for router_id in distinct(routers) {
            self.sync_one(&router_id, false).await;
        }
    }

    /// Follows what this agent is to an HA router: as its standby it watches the active
    /// agent the state names, under the state's epoch; otherwise it watches nothing there.
    fn watch(&self, router_id: &str, state: Option<&RouterState>) {
        let watch = state.filter(|s| s.role == HaRole::Standby).and_then(|s| {
            Some(liveness::Watch {
                peer: s.active_peer.clone()?,
                lease_epoch: s.lease_epoch,
            })
        });
        self.watched.send_if_modified(|watched| match watch {
            Some(watch) => watched.insert(router_id.to_string(), watch.clone()) != Some(watch),
            None => watched.remove(router_id).is_some(),
        });
    }

    async fn resync_all(&mut self, at_start: bool) -> Result<()> {
        let started = std::time::Instant::now();
        let result = self.resync_every_router(at_start).await;
        if result.is_ok() {
            self.metrics.resynced(started.elapsed().as_secs_f64());
        }
        result
    }

    /// A full reconcile of every hosted router (and of routers gone).
    async fn resync_every_router(&mut self, at_start: bool) -> Result<()> {
        let routers = self.control.hosted_routers(&self.config.host).await?;
        if at_start {
            self.remove_leftovers(&routers).await;
        }
        let gone: Vec<String> = self
            .applied
            .keys()
            .filter(|r| !routers.contains(r))
            .cloned()
            .collect();
        // Desired states are fetched in batches, a few batches at a time (the server
        // reads them without locks), and applied one by one, in order.
        let wanted: Vec<String> = routers.into_iter().chain(gone).collect();
        let (control, host) = (self.control.clone(), self.config.host.clone());
        let mut fetched = futures::stream::iter(wanted.chunks(FETCH_BATCH).map(<[String]>::to_vec))
            .map(|batch| {
                let (control, host) = (control.clone(), host.clone());
                async move {
                    let states = control.router_states(&host, &batch).await;
                    (batch, states)
                }
            })
            .buffered(FETCH_CONCURRENCY);
        while let Some((batch, states)) = fetched.next().await {
            for router_id in batch {
                // A takeover waits for no resync: at most for the router being applied.
                if let Ok(granted) = self.granted.try_recv() {
                    self.take_over(granted).await;
                }
                let state = match &states {
                    Ok(states) => Ok(states.iter().find(|s| s.router_id == router_id).cloned()),
                    Err(error) => Err(error.clone()),
                };
                if self.superseded(&router_id, &state) {
                    // Taken over during this pass, on a newer state than this prefetched one.
                    continue;
                }
                self.sync_fetched(&router_id, true, state).await;
            }
            self.send_reports().await;
        }
        Ok(())
    }

    /// Removes namespaces and daemons this agent owns but no longer hosts (a crash's leftovers).
    /// Only routers with a directory under `state_dir` are this agent's: a namespace with
    /// the same prefix but no directory (e.g. another L3 agent's `qrouter-…`) is left alone.
    async fn remove_leftovers(&mut self, hosted: &[String]) {
        for namespace in l3::namespaces_with_prefix(&self.config.namespace_prefix).await {
            let router_id = namespace
                .trim_start_matches(&self.config.namespace_prefix)
                .to_string();
            let ours = self.config.router_dir(&router_id).is_dir();
            if ours && !hosted.contains(&router_id) {
                tracing::info!(%namespace, "removing leftover router");
                self.remove(&router_id).await;
            }
        }
    }

    /// Reconciles one router with its desired state and reports. A full resync
    /// re-applies everything (healing drift); otherwise only what differs from the last
    /// applied state.
    pub async fn sync(&mut self, router_id: &str, full: bool) {
        self.sync_one(router_id, full).await;
        self.send_reports().await;
    }

    /// [`Agent::sync`] with its report left in the outbox.
    async fn sync_one(&mut self, router_id: &str, full: bool) {
        let state = self
            .control
            .router_state(&self.config.host, router_id)
            .await;
        self.sync_fetched(router_id, full, state).await;
    }

    /// [`Agent::sync`] with the desired state already fetched.
    async fn sync_fetched(
        &mut self,
        router_id: &str,
        full: bool,
        state: vpnaas_bus::Result<Option<RouterState>>,
    ) {
        let started = std::time::Instant::now();
        let trigger = if full {
            Trigger::Resync
        } else {
            Trigger::Change
        };
        if self.reconcile(router_id, full, state).await {
            self.metrics
                .reconciled(trigger, started.elapsed().as_secs_f64());
        } else {
            self.metrics.reconcile_failed();
        }
    }

    /// [`Agent::sync`]'s work; false when the router could not be brought to its state.
    async fn reconcile(
        &mut self,
        router_id: &str,
        full: bool,
        fetched: vpnaas_bus::Result<Option<RouterState>>,
    ) -> bool {
        let state = match fetched {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(%error, router = router_id, "cannot fetch desired state");
                self.resync_soon = true;
                return false;
            }
        };
        match state {
            Some(state) => {
                let last = if full {
                    None
                } else {
                    self.applied.get(router_id).cloned()
                };
                let applied = self.apply(&state, last.as_ref()).await;
                if let Err(error) = &applied {
                    tracing::error!(%error, router = router_id, "apply failed");
                }
                self.report(&state).await;
                self.watch(router_id, Some(&state));
                self.applied.insert(router_id.to_string(), state);
                applied.is_ok()
            }
            None => {
                self.remove(router_id).await;
                true
            }
        }
    }

    async fn remove(&mut self, router_id: &str) {
        if let Err(error) = self.stop_daemons(router_id).await {
            tracing::warn!(%error, router = router_id, "daemon removal failed");
        }
        let dir = self.config.router_dir(router_id);
        if dir.exists()
            && let Err(error) = std::fs::remove_dir_all(&dir)
        {
            tracing::warn!(%error, router = router_id, "cannot remove the router's files");
        }
        let namespace = self.config.namespace(router_id);
        match self.config.l3_mode {
            L3Mode::Standalone => {
                if let Err(error) = l3::remove_namespace(&namespace).await {
                    tracing::warn!(%error, router = router_id, "namespace removal failed");
                }
                if let Err(error) = l3::prune_fabric(&self.config).await {
                    tracing::warn!(%error, "fabric cleanup failed");
                }
            }
            L3Mode::Neutron => {
                if let Err(error) = l3::neutron::remove(&namespace).await {
                    tracing::warn!(%error, router = router_id, "cannot remove vpnaas's rules");
                }
            }
            L3Mode::Simulation => {}
        }
        self.watches.unwatch(router_id);
        self.watch(router_id, None);
        self.gateway_here.remove(router_id);
        self.applied.remove(router_id);
        self.reported.remove(router_id);
        self.last_sent.remove(router_id);
    }

    /// Changes in router namespaces Neutron owns: each router is reconciled whole, on the
    /// state the server gives now (an HA router's daemon starts only on that, see
    /// [`Agent::on_event`]).
    async fn on_namespace_changes(&mut self, routers: Vec<String>) {
        for router_id in distinct(routers) {
            if self.applied.contains_key(&router_id) {
                self.sync_one(&router_id, false).await;
            }
        }
        self.send_reports().await;
    }

    /// Daemon events (those that came together: one report call for all of them).
    async fn on_events(&mut self, routers: Vec<String>) {
        for router_id in distinct(routers) {
            self.on_event(&router_id).await;
        }
        self.send_reports().await;
    }

    /// A daemon event: the desired state has not changed, so re-check the daemon (a
    /// charon that exited is restarted here) and report, without asking the server. An
    /// HA router is the exception (fencing): its daemon is only ever (re)started on a
    /// state the server gives now, naming this agent the lease holder, never on a
    /// remembered one (this agent may have been frozen or cut off while another took over).
    async fn on_event(&mut self, router_id: &str) {
        let Some(state) = self.applied.get(router_id).cloned() else {
            return;
        };
        if state.ha {
            self.sync_one(router_id, false).await;
            return;
        }
        let started = std::time::Instant::now();
        if let Err(error) = self
            .driver(self.kind(&state))
            .ensure(&self.config.namespace(router_id), &state)
            .await
        {
            tracing::error!(%error, router = router_id, "daemon recovery failed");
            self.metrics.reconcile_failed();
        }
        self.report(&state).await;
        self.metrics
            .reconciled(Trigger::DaemonEvent, started.elapsed().as_secs_f64());
    }

    /// Puts in the outbox what the daemon shows of the router's connections, unless the
    /// server already took the same report recently.
    async fn report(&mut self, state: &RouterState) {
        let primary = self.holds_ha_gateway(state);
        if state.role == HaRole::Standby && !primary {
            // Only the lease holder speaks for the router (or, under Neutron, the node
            // keepalived made primary: it claims the lease).
            self.reported.remove(&state.router_id);
            self.last_sent.remove(&state.router_id);
            return;
        }
        let mut report = if self.gateway_here.get(&state.router_id) == Some(&false) {
            status::failing_over(&self.config.host, state)
        } else {
            let observed = self
                .driver(self.kind(state))
                .observe(&state.router_id)
                .await;
            status::report(&self.config.host, state, &observed)
        };
        report.primary = primary;
        self.reported
            .insert(state.router_id.clone(), report.connections.clone());
        let refresh = self.config.resync() * REPORT_REFRESH_RESYNCS;
        if self
            .last_sent
            .get(&state.router_id)
            .is_some_and(|(sent, at)| *sent == report && at.elapsed() < refresh)
        {
            return;
        }
        self.outbox.push(report);
    }

    /// Under Neutron, whether this node holds the HA router's gateway address (keepalived
    /// made it primary here).
    fn holds_ha_gateway(&self, state: &RouterState) -> bool {
        state.ha && self.gateway_here.get(&state.router_id) == Some(&true)
    }

    /// Sets the gauges of what is hosted, then sends the outbox in one call. Reports the
    /// server does not take are not kept: the next resync (soon) reports the state as it
    /// is then.
    async fn send_reports(&mut self) {
        // Every pass that reports ends here, so the gauges are counted once per pass, not
        // once per router: each count walks every hosted connection, which made a full
        // resync of 10,000 connections quadratic.
        self.metrics.hosted(&self.reported);
        let reports = std::mem::take(&mut self.outbox);
        if reports.is_empty() {
            return;
        }
        match self.control.reports(reports.clone()).await {
            Ok(()) => {
                let now = std::time::Instant::now();
                for report in reports {
                    self.last_sent
                        .insert(report.router_id.clone(), (report, now));
                }
            }
            Err(error) => {
                tracing::warn!(%error, reports = reports.len(), "status reports failed");
                self.metrics.report_failed(reports.len());
                self.resync_soon = true;
            }
        }
    }
}
