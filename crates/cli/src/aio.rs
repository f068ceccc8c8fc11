//! `vpnaas all-in-one` (the server, one agent and the in-process bus in one process, on the
//! embedded SQLite store) and `vpnaas agent` (an agent talking to a server over HTTP).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use prometheus_client::registry::Registry;
use vpnaas_agent::{Agent, AgentConfig, DataPlane, L3Mode, Metrics};
use vpnaas_bus::http::{HttpControlPlane, KeystoneLogin};
use vpnaas_model::enums::DriverKind;
use vpnaas_server::config::Secret;
use vpnaas_server::service::agents::LocalControlPlane;
use vpnaas_server::{App, Server, Settings};

use crate::flags;
use crate::serve::ServerArgs;

/// Flags of `vpnaas all-in-one`.
#[derive(Debug, clap::Args)]
pub struct AllInOneArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    agent: AgentArgs,
}

/// Flags of `vpnaas agent`.
#[derive(Debug, clap::Args)]
pub struct RemoteAgentArgs {
    /// URL of the vpnaas server's API.
    #[arg(long, env = "VPNAAS_SERVER", default_value = "http://127.0.0.1:9696")]
    server: String,
    /// Reach the servers over this bus (`nats://host:4222`) instead of the API.
    #[arg(long, env = "VPNAAS_BUS")]
    bus: Option<String>,
    #[command(flatten)]
    agent: AgentArgs,
    /// Address to serve the agent's Prometheus `/metrics` on (none by default).
    #[arg(long, env = "VPNAAS_AGENT_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    keystone: AgentKeystoneArgs,
}

/// How `vpnaas agent` logs in to Keystone when the server uses `auth = "keystone"`: a
/// user with the `service` (or `admin`) role, its token renewed before it expires.
#[derive(Debug, clap::Args)]
pub struct AgentKeystoneArgs {
    /// Keystone's v3 endpoint; given, the agent logs in there instead of using --token.
    #[arg(long = "keystone-auth-url", env = "VPNAAS_AGENT_KEYSTONE_AUTH_URL")]
    auth_url: Option<String>,
    /// The agent's Keystone user (default: vpnaas-agent).
    #[arg(long = "keystone-username", env = "VPNAAS_AGENT_KEYSTONE_USERNAME")]
    username: Option<String>,
    /// Its password (prefer the variable to the flag).
    #[arg(
        long = "keystone-password",
        env = "VPNAAS_AGENT_KEYSTONE_PASSWORD",
        hide_env_values = true
    )]
    password: Option<Secret>,
    /// The project its token is scoped to (default: service).
    #[arg(
        long = "keystone-project-name",
        env = "VPNAAS_AGENT_KEYSTONE_PROJECT_NAME"
    )]
    project_name: Option<String>,
    /// The domain of the user and of the project (default: Default).
    #[arg(
        long = "keystone-domain-name",
        env = "VPNAAS_AGENT_KEYSTONE_DOMAIN_NAME"
    )]
    domain_name: Option<String>,
}

impl AgentKeystoneArgs {
    /// The login, when a Keystone is named.
    fn login(&self) -> Result<Option<KeystoneLogin>> {
        let Some(auth_url) = &self.auth_url else {
            return Ok(None);
        };
        let password = self.password.clone().context(
            "--keystone-auth-url needs --keystone-password (or VPNAAS_AGENT_KEYSTONE_PASSWORD)",
        )?;
        let domain = self.domain_name.clone().unwrap_or_else(|| "Default".into());
        Ok(Some(KeystoneLogin {
            auth_url: auth_url.clone(),
            username: self
                .username
                .clone()
                .unwrap_or_else(|| "vpnaas-agent".into()),
            password: password.0,
            user_domain_name: domain.clone(),
            project_name: self
                .project_name
                .clone()
                .unwrap_or_else(|| "service".into()),
            project_domain_name: domain,
        }))
    }
}

/// Agent flags shared by `all-in-one` and `agent`; serialized, they are the top layer of
/// the agent's settings (named as its settings file names them, absent ones skipped).
#[serde_with::skip_serializing_none]
#[derive(Debug, clap::Args, serde::Serialize)]
pub struct AgentArgs {
    /// Agent settings file (TOML, the keys of the agent's configuration).
    #[arg(long, env = "VPNAAS_AGENT_CONFIG")]
    #[serde(skip)]
    agent_config: Option<PathBuf>,
    /// Directory of the per-router daemon files [default: /var/lib/vpnaas/agent].
    #[arg(long, env = "VPNAAS_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Agent host name [default: this machine's host name].
    #[arg(long, env = "VPNAAS_HOST")]
    host: Option<String>,
    /// Where ESP runs [default: auto].
    #[arg(long, env = "VPNAAS_DATA_PLANE", value_enum)]
    data_plane: Option<DataPlane>,
    /// Router namespace prefix [default: qrouter-].
    #[arg(long, env = "VPNAAS_NAMESPACE_PREFIX")]
    namespace_prefix: Option<String>,
    /// Namespace of the agent-managed network bridges [default: vpnaas-fabric].
    #[arg(long, env = "VPNAAS_FABRIC_NAMESPACE")]
    fabric_namespace: Option<String>,
    /// IKE daemon of routers whose services do not choose one [default: strongswan].
    #[arg(long, env = "VPNAAS_DRIVER", value_parser = flags::wire_enum(DriverKind::ALL, DriverKind::parse))]
    driver: Option<DriverKind>,
    /// Who plumbs the router namespaces [default: standalone].
    #[arg(long, env = "VPNAAS_L3_MODE", value_enum)]
    l3_mode: Option<L3Mode>,
    /// Simulation: no daemons, every tunnel up this many ms after it is loaded.
    #[arg(long, env = "VPNAAS_FAKE_TUNNEL_DELAY_MS")]
    fake_tunnel_delay_ms: Option<u64>,
    /// Seconds between full resyncs [default: 30].
    #[arg(long, env = "VPNAAS_RESYNC_INTERVAL")]
    resync_interval: Option<u64>,
    /// Seconds between heartbeats; keep it well under the server's `--agent-down-time`
    /// [default: 30].
    #[arg(long, env = "VPNAAS_HEARTBEAT_INTERVAL")]
    heartbeat_interval: Option<u64>,
    /// Root Libreswan's files are under (`/` when installed) [default: /].
    #[arg(long, env = "VPNAAS_LIBRESWAN_ROOT")]
    #[serde(rename = "libreswan", serialize_with = "libreswan_root")]
    libreswan_root: Option<PathBuf>,
    /// HA liveness probes between agents.
    #[command(flatten)]
    #[serde(rename = "ha")]
    ha: HaArgs,
}

/// Flags of the `[ha]` settings: liveness probes between the agents of HA routers. Their
/// ids carry `ha_` so they cannot clash with the server's flags in `all-in-one` (its
/// `listen`).
#[serde_with::skip_serializing_none]
#[derive(Debug, clap::Args, serde::Serialize)]
struct HaArgs {
    /// Answer HA liveness probes on this UDP address (`ip:port`, port 0 for any; an
    /// address the other agents reach) and, as a standby, probe the active agents and
    /// claim their routers when they fall silent. Off unless given.
    #[arg(id = "ha_listen", long = "ha-listen", env = "VPNAAS_HA_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Milliseconds between probes to each active agent [default: 100].
    #[arg(
        id = "ha_probe_interval_ms",
        long = "ha-probe-interval-ms",
        env = "VPNAAS_HA_PROBE_INTERVAL_MS"
    )]
    probe_interval_ms: Option<u64>,
    /// Milliseconds without an answer before a standby claims the routers [default: 300].
    #[arg(
        id = "ha_dead_time_ms",
        long = "ha-dead-time-ms",
        env = "VPNAAS_HA_DEAD_TIME_MS"
    )]
    dead_time_ms: Option<u64>,
}

/// `--libreswan-root` as the settings file nests it: `[libreswan] root = …`.
fn libreswan_root<S: serde::Serializer>(root: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry("root", root)?;
    map.end()
}

impl AgentArgs {
    fn config(&self) -> Result<AgentConfig> {
        let defaults = AgentConfig {
            host: host_name(),
            ..AgentConfig::default()
        };
        crate::layers::layered(defaults, self.agent_config.as_deref(), self)
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Runs server and agent until Ctrl-C or SIGTERM. Running tunnels are left up.
pub async fn run(args: &AllInOneArgs) -> Result<()> {
    let settings = args.server.settings()?;
    let config = args.agent.config()?;
    let metrics = Metrics::default();
    let app = app_hosting_agent(settings, &metrics, args.server.bus.as_deref()).await?;
    let hints = app.notifier.subscribe(&config.host);
    let control = Arc::new(LocalControlPlane::new(app.clone()));
    let server = Server::start_app(app)
        .await
        .context("cannot start the server")?;
    println!(
        "vpnaas all-in-one: API on {}, agent {}",
        server.url(),
        config.host
    );
    let agent = tokio::spawn(Agent::new(config, control, metrics).await.run(hints));
    until_stopped().await?;
    agent.abort();
    server.stop().await;
    Ok(())
}

/// Runs an agent against a remote server until Ctrl-C or SIGTERM.
pub async fn run_agent(args: &RemoteAgentArgs, token: Option<String>) -> Result<()> {
    let config = args.agent.config()?;
    let (control, hints): (Arc<dyn vpnaas_bus::ControlPlane>, _) = match &args.bus {
        Some(url) => {
            let control = vpnaas_bus::nats::NatsControlPlane::connect(url).await?;
            let hints = control.hints(&config.host);
            (control, hints)
        }
        None => {
            let control = Arc::new(match args.keystone.login()? {
                Some(login) => HttpControlPlane::with_keystone(&args.server, login),
                None => HttpControlPlane::new(&args.server, token),
            });
            let hints = control.hints(&config.host);
            (control, hints)
        }
    };
    let metrics = Metrics::default();
    if let Some(listen) = args.metrics_listen {
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let addr = vpnaas_server::metrics::serve(listen, registry)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        println!("vpnaas agent metrics on http://{addr}/metrics");
    }
    println!(
        "vpnaas agent {} for {}",
        config.host,
        args.bus.as_deref().unwrap_or(&args.server)
    );
    let agent = tokio::spawn(Agent::new(config, control, metrics).await.run(hints));
    until_stopped().await?;
    agent.abort();
    Ok(())
}

/// The server's state for a process that also runs an agent: one `/metrics` holding both
/// the server's and the agent's metrics, and the in-process bus, or NATS (`bus`) when
/// other agents are to join.
pub async fn app_hosting_agent(
    settings: Settings,
    metrics: &Metrics,
    bus: Option<&str>,
) -> Result<App> {
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let nats = match bus {
        Some(url) => Some(vpnaas_bus::nats::connect(url).await?.0),
        None => None,
    };
    let notifier: Arc<dyn vpnaas_bus::Notifier> = match &nats {
        Some(client) => Arc::new(vpnaas_bus::nats::NatsNotifier::new(client.clone())),
        None => Arc::new(vpnaas_bus::InProcNotifier::default()),
    };
    let app = vpnaas_server::build_app_with(settings, notifier, registry)
        .await
        .context("cannot open the store")?;
    if let Some(client) = nats {
        vpnaas_bus::nats::serve(client, Arc::new(LocalControlPlane::new(app.clone()))).await?;
    }
    Ok(app)
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn until_stopped() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        agent: AgentArgs,
    }

    fn config(args: &[&str]) -> AgentConfig {
        let parsed = Command::try_parse_from(std::iter::once("agent").chain(args.iter().copied()));
        parsed
            .expect("flags parse")
            .agent
            .config()
            .expect("settings")
    }

    #[test]
    fn agent_flags_overlay_the_file_which_overlays_the_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("agent.toml");
        std::fs::write(
            &file,
            "host = \"gw-file\"\nresync_interval = 7\n[libreswan]\nstatus_interval = 2.5\n",
        )
        .expect("write");
        let plain = config(&[]);
        assert_eq!(plain.host, host_name());
        assert_eq!(
            plain.resync_interval,
            AgentConfig::default().resync_interval
        );
        let path = file.to_str().expect("utf-8");
        let from_file = config(&["--agent-config", path]);
        assert_eq!(
            (from_file.host.as_str(), from_file.resync_interval),
            ("gw-file", 7)
        );
        let flagged = config(&[
            "--agent-config",
            path,
            "--host",
            "gw-flag",
            "--libreswan-root",
            "/opt/ls",
        ]);
        assert_eq!(flagged.host, "gw-flag");
        assert_eq!(flagged.resync_interval, 7, "the file's value stays");
        assert_eq!(flagged.libreswan.root, PathBuf::from("/opt/ls"));
        assert_eq!(
            flagged.libreswan.status_interval, 2.5,
            "a nested key the flag leaves"
        );
    }

    #[test]
    fn the_defaults_in_the_help_are_the_agents_defaults() {
        let mut defaults = serde_json::to_value(AgentConfig::default()).expect("json");
        defaults["host"] = "this machine's host name".into();
        defaults["libreswan_root"] = defaults["libreswan"]["root"].clone();
        crate::layers::assert_help_shows(&Command::command(), &defaults);
    }
}
