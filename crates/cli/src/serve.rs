//! `vpnaas server`: settings from defaults, then `--config FILE`, then `VPNAAS_*`
//! environment variables and flags (clap reads both; flags win).

use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::Arc;

use anyhow::{Context, Result};
use vpnaas_server::service::agents::LocalControlPlane;
use vpnaas_server::{AuthMode, Server, Settings};

/// Flags of `vpnaas server`.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// TOML settings file (see `vpnaas default-config`).
    #[arg(long, env = "VPNAAS_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:9696].
    #[arg(long, env = "VPNAAS_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory of the SQLite database [default: /var/lib/vpnaas].
    #[arg(long, env = "VPNAAS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL (overrides --data-dir).
    #[arg(long, env = "VPNAAS_DATABASE_URL")]
    database_url: Option<String>,
    /// How callers are identified [default: noauth].
    #[arg(long, env = "VPNAAS_AUTH", value_enum)]
    auth: Option<AuthMode>,
    /// Tokens file for --auth token.
    #[arg(long, env = "VPNAAS_TOKENS_FILE")]
    tokens_file: Option<PathBuf>,
    /// Accept sha1 and 3des in policies.
    #[arg(long, env = "VPNAAS_ALLOW_WEAK_ALGORITHMS")]
    allow_weak_algorithms: Option<bool>,
    /// Seconds without a heartbeat after which an agent is dead and its routers move
    /// [default: 75].
    #[arg(long, env = "VPNAAS_AGENT_DOWN_TIME")]
    agent_down_time: Option<u64>,
    /// Bus to the agents: `nats://host:4222` (agents then need no route to this server);
    /// without it agents reach the server over HTTP.
    #[arg(long, env = "VPNAAS_BUS")]
    pub bus: Option<String>,
}

impl ServerArgs {
    /// The settings in effect.
    pub fn settings(&self) -> Result<Settings> {
        let mut settings = match &self.config {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        if let Some(listen) = self.listen {
            settings.listen = listen;
        }
        if let Some(dir) = &self.data_dir {
            settings.data_dir = dir.clone();
        }
        if let Some(url) = &self.database_url {
            settings.database_url = Some(url.clone());
        }
        if let Some(auth) = self.auth {
            settings.auth = auth;
        }
        if let Some(path) = &self.tokens_file {
            settings.tokens_file = Some(path.clone());
        }
        if let Some(allow) = self.allow_weak_algorithms {
            settings.allow_weak_algorithms = allow;
        }
        if let Some(seconds) = self.agent_down_time {
            settings.agent_down_time = seconds;
        }
        Ok(settings)
    }
}

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn run(args: &ServerArgs) -> Result<()> {
    let settings = args.settings()?;
    let server = match &args.bus {
        Some(url) => {
            let (client, _) = vpnaas_bus::nats::connect(url).await?;
            let app = vpnaas_server::build_app_with(
                settings,
                Arc::new(vpnaas_bus::nats::NatsNotifier::new(client.clone())),
                prometheus_client::registry::Registry::default(),
            )
            .await
            .context("cannot open the store")?;
            let control = Arc::new(LocalControlPlane::new(app.clone()));
            vpnaas_bus::nats::serve(client, control).await?;
            tracing::info!(bus = %url, "answering agents over NATS");
            Server::start_app(app).await
        }
        None => Server::start(settings).await,
    }
    .context("cannot start the server")?;
    crate::aio::until_stopped().await?;
    tracing::info!("shutting down");
    server.stop().await;
    Ok(())
}
