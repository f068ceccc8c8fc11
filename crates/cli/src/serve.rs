//! `vpnaas server`: settings from defaults, then `--config FILE`, then `VPNAAS_*`
//! environment variables and flags (`layers`).

use std::net::SocketAddr;
use std::path::PathBuf;

use std::sync::Arc;

use anyhow::{Context, Result};
use vpnaas_server::config::Secret;
use vpnaas_server::service::agents::LocalControlPlane;
use vpnaas_server::{AuthMode, InventoryMode, Server, Settings};

/// Flags of `vpnaas server`; serialized, they are the top layer of the settings (named as
/// the settings file names them, absent ones skipped).
#[serde_with::skip_serializing_none]
#[derive(Debug, clap::Args, serde::Serialize)]
pub struct ServerArgs {
    /// TOML settings file (see `vpnaas default-config`).
    #[arg(long, env = "VPNAAS_CONFIG")]
    #[serde(skip)]
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
    #[serde(skip)]
    pub bus: Option<String>,
    /// Where routers, subnets and networks come from: vpnaas's own, or a running
    /// Neutron's (see docs/openstack.md) [default: builtin].
    #[arg(long, env = "VPNAAS_INVENTORY", value_enum)]
    inventory: Option<InventoryMode>,
    /// `[keystone]` settings given as flags or variables.
    #[command(flatten)]
    keystone: KeystoneArgs,
    /// `[neutron]` settings given as flags or variables.
    #[command(flatten)]
    neutron: NeutronArgs,
}

/// Where Neutron is, for --inventory neutron.
#[serde_with::skip_serializing_none]
#[derive(Debug, clap::Args, serde::Serialize)]
struct NeutronArgs {
    /// Neutron's internal API endpoint for --inventory neutron (not the cloud's HTTP
    /// front) [default: http://127.0.0.1:9696].
    // Its id is not `url`: that is the global `--url` of the client commands, whose
    // default would land here over the file's `[neutron] url`.
    #[arg(id = "neutron_url", long = "neutron-url", env = "VPNAAS_NEUTRON_URL")]
    url: Option<String>,
}

/// The `[keystone]` settings most often given outside the file: where Keystone is and the
/// service user's password (better in a variable than in a world-readable file).
#[serde_with::skip_serializing_none]
#[derive(Debug, clap::Args, serde::Serialize)]
struct KeystoneArgs {
    /// Keystone's v3 endpoint for --auth keystone.
    #[arg(long = "keystone-auth-url", env = "VPNAAS_KEYSTONE_AUTH_URL")]
    auth_url: Option<String>,
    /// Password of vpnaas's Keystone service user (prefer the variable to the flag).
    #[arg(
        long = "keystone-password",
        env = "VPNAAS_KEYSTONE_PASSWORD",
        hide_env_values = true
    )]
    password: Option<Secret>,
}

impl ServerArgs {
    /// The settings in effect.
    pub fn settings(&self) -> Result<Settings> {
        crate::layers::layered(Settings::default(), self.config.as_deref(), self)
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

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        server: ServerArgs,
    }

    #[test]
    fn server_flags_overlay_the_file_which_overlays_the_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("server.toml");
        std::fs::write(&file, "agent_down_time = 20\nauth = \"token\"\n").expect("write");
        let path = file.to_str().expect("utf-8");
        let parsed = Command::try_parse_from(["server", "--config", path, "--auth", "noauth"]);
        let settings = parsed
            .expect("flags parse")
            .server
            .settings()
            .expect("settings");
        assert_eq!(settings.agent_down_time, 20);
        assert_eq!(settings.auth, AuthMode::Noauth, "the flag wins");
        assert_eq!(settings.listen, Settings::default().listen);
    }

    #[test]
    fn the_keystone_password_flag_joins_the_files_keystone_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("server.toml");
        let text = "auth = \"keystone\"\n[keystone]\nauth_url = \"http://ks:5000/v3\"\nusername = \"vpn\"\n";
        std::fs::write(&file, text).expect("write");
        let path = file.to_str().expect("utf-8");
        let args = ["server", "--config", path, "--keystone-password", "pw"];
        let settings = Command::try_parse_from(args)
            .expect("flags parse")
            .server
            .settings()
            .expect("settings");
        assert_eq!(settings.keystone.password.0, "pw");
        assert_eq!(settings.keystone.auth_url, "http://ks:5000/v3");
        assert_eq!(settings.keystone.username, "vpn");
        assert_eq!(settings.keystone.project_name, "service", "defaults stay");
    }

    #[test]
    fn the_defaults_in_the_help_are_the_settings_defaults() {
        let defaults = serde_json::to_value(Settings::default()).expect("json");
        crate::layers::assert_help_shows(&Command::command(), &defaults);
    }
}
