//! `vpnaas server`: settings from defaults, then `--config FILE`, then `VPNAAS_*`
//! environment variables and flags (clap reads both; flags win).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
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
    /// noauth or token.
    #[arg(long, env = "VPNAAS_AUTH", value_parser = ["noauth", "token"])]
    auth: Option<String>,
    /// Tokens file for --auth token.
    #[arg(long, env = "VPNAAS_TOKENS_FILE")]
    tokens_file: Option<PathBuf>,
    /// Accept sha1 and 3des in policies.
    #[arg(long, env = "VPNAAS_ALLOW_WEAK_ALGORITHMS")]
    allow_weak_algorithms: Option<bool>,
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
        if let Some(auth) = &self.auth {
            settings.auth = if auth == "token" {
                AuthMode::Token
            } else {
                AuthMode::Noauth
            };
        }
        if let Some(path) = &self.tokens_file {
            settings.tokens_file = Some(path.clone());
        }
        if let Some(allow) = self.allow_weak_algorithms {
            settings.allow_weak_algorithms = allow;
        }
        Ok(settings)
    }
}

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn run(args: &ServerArgs) -> Result<()> {
    let server = Server::start(args.settings()?)
        .await
        .context("cannot start the server")?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    server.stop().await;
    Ok(())
}
