//! The vpnaas API server: Neutron VPNaaS v2.0 (plus the minimal network inventory VPN
//! services need) over HTTP, on the [`vpnaas_store::Store`] seam.

pub mod agent_api;
pub mod api;
pub mod auth;
pub mod changes;
pub mod clock;
pub mod config;
pub mod dashboard;
pub mod edge;
pub mod error;
pub mod keystone;
pub mod listing;
pub mod metrics;
pub mod neutron;
pub mod openapi;
pub mod peer_config;
pub mod pki;
pub mod service;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use vpnaas_model::attr::Rules;
use vpnaas_store::{SqlStore, Store};

use clock::{Clock, SystemClock};

pub use config::{AuthMode, InventoryMode, Settings};

/// Shared state of every request.
#[derive(Clone)]
pub struct App {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Settings in effect.
    pub settings: Arc<Settings>,
    /// Tokens for `auth = "token"`.
    pub tokens: Arc<auth::Tokens>,
    /// The token validator for `auth = "keystone"`.
    pub keystone: Option<Arc<keystone::Keystone>>,
    /// The Neutron whose routers and subnets VPN services use (`inventory = "neutron"`).
    pub neutron: Option<Arc<neutron::Neutron>>,
    /// Tells agents that their routers changed.
    pub notifier: Arc<dyn vpnaas_bus::Notifier>,
    /// Hints waiting for remote agents' polls.
    pub hint_queues: Arc<agent_api::HintQueues>,
    /// Prometheus metrics, served at `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// The time liveness, leases and status events are judged by.
    pub clock: Arc<dyn Clock>,
    /// When this server started (seconds since the epoch, by `clock`).
    pub started_at: u64,
    /// Every committed change of a VPN object, as it happens.
    pub changes: changes::Changes,
    /// Connections' traffic counters over time, for the dashboard's charts.
    pub traffic: Arc<dashboard::traffic::History>,
}

impl App {
    /// The same application on another clock (tests drive a [`clock::ManualClock`]); the
    /// server counts as started at that clock's now.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.started_at = clock.now_secs();
        if let Some(keystone) = &self.keystone {
            let keystone = Arc::new(keystone.with_clock(clock.clone()));
            self.neutron = self
                .neutron
                .map(|n| Arc::new(n.with_keystone(Some(keystone.clone()))));
            self.keystone = Some(keystone);
        }
        self.clock = clock;
        self
    }

    /// Validation rules chosen by the operator.
    pub fn rules(&self) -> Rules {
        Rules {
            allow_weak_algorithms: self.settings.allow_weak_algorithms,
        }
    }
}

/// A failure to start the server.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be created.
    #[error("cannot create data directory {0}: {1}")]
    DataDir(std::path::PathBuf, std::io::Error),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] vpnaas_store::Error),
    /// The tokens file could not be read.
    #[error("{0}")]
    Tokens(String),
    /// The settings cannot work together.
    #[error("{0}")]
    Settings(String),
    /// A CA file of the settings cannot be used.
    #[error(transparent)]
    Certificate(#[from] config::ConfigError),
    /// The address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
}

/// Opens the store and builds the application state, with an in-process bus.
pub async fn build_app(settings: Settings) -> Result<App, StartError> {
    build_app_with(
        settings,
        Arc::new(vpnaas_bus::InProcNotifier::default()),
        prometheus_client::registry::Registry::default(),
    )
    .await
}

/// Opens the store and builds the application state on the given bus, its metrics added
/// to `registry` (which may hold an in-process agent's).
pub async fn build_app_with(
    settings: Settings,
    notifier: Arc<dyn vpnaas_bus::Notifier>,
    registry: prometheus_client::registry::Registry,
) -> Result<App, StartError> {
    if settings.database_url.is_none() {
        std::fs::create_dir_all(&settings.data_dir)
            .map_err(|e| StartError::DataDir(settings.data_dir.clone(), e))?;
    }
    let keyring = vpnaas_store::Keyring::from_file(&settings.secret_key_file())?;
    let store = SqlStore::open(&settings.database_url(), keyring).await?;
    let tokens = match (&settings.auth, &settings.tokens_file) {
        (AuthMode::Token, Some(path)) => auth::Tokens::load(path).map_err(StartError::Tokens)?,
        (AuthMode::Token, None) => {
            return Err(StartError::Tokens(
                "auth = \"token\" needs tokens_file".into(),
            ));
        }
        (AuthMode::Noauth | AuthMode::Keystone, _) => auth::Tokens::default(),
    };
    let keystone = match settings.auth {
        AuthMode::Keystone => {
            let ks = &settings.keystone;
            let http = config::http_client(ks.timeout, ks.ca_file.as_deref())?;
            let clock = Arc::new(SystemClock);
            Some(Arc::new(keystone::Keystone::new(ks.clone(), clock, http)))
        }
        AuthMode::Noauth | AuthMode::Token => None,
    };
    let neutron = match settings.inventory {
        InventoryMode::Neutron if settings.auth == AuthMode::Token => {
            return Err(StartError::Settings(
                "inventory = \"neutron\" needs auth = \"keystone\" (or \"noauth\" for a test cloud): Neutron knows nothing of vpnaas's own tokens".into(),
            ));
        }
        InventoryMode::Neutron => {
            let n = &settings.neutron;
            let http = config::http_client(n.timeout, n.ca_file.as_deref())?;
            Some(Arc::new(neutron::Neutron::new(
                n.clone(),
                http,
                keystone.clone(),
            )))
        }
        InventoryMode::Builtin => None,
    };
    let changes = changes::Changes::default();
    Ok(App {
        store: Arc::new(changes::Watched::new(Arc::new(store), changes.clone())),
        changes,
        traffic: Arc::default(),
        settings: Arc::new(settings),
        tokens: Arc::new(tokens),
        keystone,
        neutron,
        notifier,
        hint_queues: Arc::default(),
        metrics: Arc::new(metrics::Metrics::new(registry)),
        clock: Arc::new(SystemClock),
        started_at: SystemClock.now_secs(),
    })
}

/// A running server.
pub struct Server {
    /// The address it listens on (useful with port 0).
    pub addr: SocketAddr,
    shutdown: tokio::sync::watch::Sender<bool>,
    changes: changes::Changes,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The liveness sweep, and under `inventory = "neutron"` the follower of Neutron.
    background: Vec<tokio::task::AbortHandle>,
}

impl Server {
    /// Binds and starts serving in the background.
    pub async fn start(settings: Settings) -> Result<Server, StartError> {
        Self::start_app(build_app(settings).await?).await
    }

    /// Serves an already built application state.
    pub async fn start_app(app: App) -> Result<Server, StartError> {
        let listen = app.settings.listen;
        if app.settings.auth == AuthMode::Noauth && !listen.ip().is_loopback() {
            tracing::warn!(%listen, "auth = noauth on a non-loopback address: anyone who reaches it is admin");
        }
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| StartError::Listen(listen, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Listen(listen, e))?;
        let (shutdown, stop) = tokio::sync::watch::channel(false);
        let mut background = vec![
            tokio::spawn(sweep_periodically(app.clone())).abort_handle(),
            tokio::spawn(renew_certificates_periodically(app.clone())).abort_handle(),
            tokio::spawn(dashboard::traffic::follow(app.clone())).abort_handle(),
        ];
        if let Some(neutron) = app.neutron.clone() {
            background
                .push(tokio::spawn(neutron::watch::follow(app.clone(), neutron)).abort_handle());
        }
        let policy = app.settings.edge_policy();
        if let Some(listen) = app.settings.metrics_listen {
            let private = TcpListener::bind(listen)
                .await
                .map_err(|e| StartError::Listen(listen, e))?;
            let policy = edge::EdgePolicy {
                allowed_hosts: None,
                ..policy.clone()
            };
            let routes = metrics::private_routes(app.clone());
            tokio::spawn(edge::serve(private, routes, policy, stopped(stop.clone())));
            tracing::info!(%listen, "vpnaas metrics listening");
        }
        let changes = app.changes.clone();
        let service = api::service(app);
        let task = tokio::spawn(async move {
            edge::serve(listener, service, policy, stopped(stop)).await;
            Ok(())
        });
        tracing::info!(%addr, "vpnaas API listening");
        Ok(Server {
            addr,
            shutdown,
            changes,
            task,
            background,
        })
    }

    /// The base URL of the API.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests and waits for the server to finish.
    pub async fn stop(self) {
        for task in &self.background {
            task.abort();
        }
        let _ = self.shutdown.send(true);
        self.changes.close();
        let _ = self.task.await;
    }
}

/// Judges agent liveness on a timer as well as on heartbeats: when every agent is dead
/// no heartbeat comes, yet the routers they held must say so. Twice per
/// `agent_down_time`, at least every 30 s.
async fn sweep_periodically(app: App) {
    let seconds = (app.settings.agent_down_time / 2).clamp(1, 30);
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(seconds));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(error) = service::scheduler::sweep(&app).await {
            tracing::warn!(%error, "liveness sweep failed");
        }
    }
}

/// Renews the gateway certificates near expiry, at start and hourly.
async fn renew_certificates_periodically(app: App) {
    let mut ticks = tokio::time::interval(std::time::Duration::from_secs(3600));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match service::certificates::renew_due(&app).await {
            Ok(0) => {}
            Ok(renewed) => tracing::info!(renewed, "renewed gateway certificates near expiry"),
            Err(error) => tracing::warn!(%error, "certificate renewal failed"),
        }
    }
}

/// Resolves when the server is told to stop (or its handle is dropped).
async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
