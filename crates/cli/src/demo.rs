//! `vpnaas demo`: a real tunnel on this machine in one command. Starts a server and one
//! or more agents (each a gateway host of its own) in this process (SQLite in a temporary
//! directory), builds a 2-site lab, creates policies, a service per router and a
//! connection each way through the API, follows them to `ACTIVE`, pings site 1's host →
//! site 2's host through the tunnel, and prints a timeline. With `--ha` the routers are HA
//! and the demo then powers off the gateway host of site 1's active router, and follows
//! the standby taking over until pings pass again. Stays up until Ctrl-C (or stops with
//! `--exit`), then removes everything it made but its log: the server's and agents' logs
//! go to a file (named at the top of the output), so that the terminal shows the
//! timeline, and only warnings and errors besides.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use vpnaas_agent::{Agent, AgentConfig, DataPlane, Metrics};
use vpnaas_client::Client;
use vpnaas_model::Kind;
use vpnaas_server::service::agents::LocalControlPlane;
use vpnaas_server::{App, Server, Settings};

use crate::lab;

/// Flags of `vpnaas demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Stop and clean up after the first ping instead of waiting for Ctrl-C.
    #[arg(long)]
    exit: bool,
    /// Where ESP runs.
    #[arg(long, value_enum, default_value_t = DataPlane::Auto)]
    data_plane: DataPlane,
    /// Prefix of every namespace and object the demo creates.
    #[arg(long, default_value = "vdemo")]
    prefix: String,
    /// Gateway hosts: this many agents, each with its own host name (`<prefix>-gw<N>`),
    /// namespaces and state.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=8))]
    agents: u8,
    /// HA routers (active and standby on two agents; needs `--agents 2` or more); once
    /// the tunnel is up, the gateway host of site 1's active router loses power and the
    /// demo follows the failover.
    #[arg(long)]
    ha: bool,
}

/// Seconds without a heartbeat after which the demo's server declares an agent dead
/// (agents beat every second).
const DEMO_AGENT_DOWN_TIME: u64 = 3;

/// One gateway host of the demo: an agent running in this process.
struct Gateway {
    config: AgentConfig,
    agent: JoinHandle<()>,
}

struct Timeline {
    start: Instant,
    lines: Vec<(Duration, String)>,
}

impl Timeline {
    fn mark(&mut self, what: impl Into<String>) {
        let at = self.start.elapsed();
        let what = what.into();
        println!("  {:>8.1} ms  {what}", at.as_secs_f64() * 1000.0);
        self.lines.push((at, what));
    }
}

/// Runs the demo.
pub async fn run(args: &DemoArgs) -> Result<String> {
    if args.ha && args.agents < 2 {
        bail!("--ha needs --agents 2 or more (an active and a standby gateway host)");
    }
    // Short: charon's VICI socket lives below it, and unix socket paths stop at 107 bytes.
    let tag: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(8)
        .collect();
    let dir = std::env::temp_dir().join(format!("vpnaas-demo-{tag}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let log = dir.join("demo.log");
    crate::logging::to_file(&log)?;
    let settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.join("data"),
        agent_down_time: DEMO_AGENT_DOWN_TIME,
        ..Settings::default()
    };
    let metrics = Metrics::default();
    let app = crate::aio::app_hosting_agent(settings, &metrics, None).await?;
    let gateways: Vec<Gateway> = (1..=args.agents)
        .map(|n| {
            // The server's /metrics shows the first gateway's agent.
            let own = if n == 1 {
                metrics.clone()
            } else {
                Metrics::default()
            };
            start_gateway(&app, gateway_config(args, &dir, n), own)
        })
        .collect();
    let server = Server::start_app(app)
        .await
        .context("cannot start the server")?;
    println!(
        "vpnaas demo: API on {}, {} gateway host(s); server and agent logs in {}",
        server.url(),
        gateways.len(),
        log.display()
    );
    println!(
        "dashboard: {}/dashboard/ (sign in as project admin, role admin; live as the demo runs)",
        server.url()
    );
    let client = Client::new(&server.url());
    let fabric = gateways[0].config.fabric_namespace.clone();
    let outcome = match show_tunnel(&client, args, &fabric).await {
        Ok(tunnel) if args.ha => show_failover(&client, &tunnel, &gateways).await,
        other => other.map(|_| ()),
    };
    if outcome.is_ok() && !args.exit {
        println!(
            "\nThe tunnel stays up: try `vpnaas --url {} site-connection list --watch`,",
            server.url()
        );
        println!(
            "or `vpnaas lab exec 2 --prefix {} -- ping 10.1.0.10`. Ctrl-C (or SIGTERM) stops and cleans up.",
            args.prefix
        );
        crate::aio::until_stopped().await?;
    }
    println!("cleaning up…");
    let cleaned = clean_up(&client, args, &gateways[0].config).await;
    for gateway in &gateways {
        gateway.agent.abort();
    }
    server.stop().await;
    // The log stays, to look at what happened.
    let _ = std::fs::remove_dir_all(dir.join("data"));
    for gateway in &gateways {
        let _ = std::fs::remove_dir_all(&gateway.config.state_dir);
    }
    outcome?;
    cleaned?;
    Ok(String::new())
}

/// Gateway host `n` of the demo.
fn gateway_config(args: &DemoArgs, dir: &std::path::Path, n: u8) -> AgentConfig {
    AgentConfig {
        host: format!("{}-gw{n}", args.prefix),
        state_dir: dir.join(format!("gw{n}")),
        namespace_prefix: format!("{}-gw{n}-", args.prefix),
        fabric_namespace: format!("{}-fabric", args.prefix),
        data_plane: args.data_plane,
        heartbeat_interval: 1,
        // The demo's gateway hosts share this machine's loopback.
        ha: vpnaas_agent::config::HaLiveness {
            listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            ..Default::default()
        },
        ..AgentConfig::default()
    }
}

/// Starts an agent in this process, on the server's in-process bus.
fn start_gateway(app: &App, config: AgentConfig, metrics: Metrics) -> Gateway {
    let hints = app.notifier.subscribe(&config.host);
    let control = Arc::new(LocalControlPlane::new(app.clone()));
    let agent_config = config.clone();
    let agent = tokio::spawn(async move {
        Agent::new(agent_config, control, metrics)
            .await
            .run(hints)
            .await
    });
    Gateway { config, agent }
}

/// What the first part of the demo built.
struct Tunnel {
    sites: Vec<Value>,
    /// The connection from site 1 to site 2.
    first: String,
}

async fn show_tunnel(client: &Client, args: &DemoArgs, fabric: &str) -> Result<Tunnel> {
    let lab_args = lab::LabArgs::new(&args.prefix, fabric);
    let sites = lab::up(client, &lab::UpArgs::new(lab_args, 2).with_ha(args.ha)).await?;
    for site in &sites {
        let field = |key: &str| site[key].as_str().unwrap_or_default().to_string();
        println!(
            "site {}: router {} gateway {} subnet {} host {}",
            site["site"],
            field("router_id"),
            field("gateway_ip"),
            field("cidr"),
            field("host_ip")
        );
    }
    let ike = client.create(Kind::IkePolicy, json!({"name": "demo-ike", "ike_version": "v2", "encryption_algorithm": "aes-256", "pfs": "group14"})).await?;
    let esp = client
        .create(
            Kind::IpsecPolicy,
            json!({"name": "demo-esp", "encryption_algorithm": "aes-256", "pfs": "group14"}),
        )
        .await?;
    let mut services = Vec::new();
    for site in &sites {
        let service = client.create(Kind::VpnService, json!({"name": format!("demo-vpn-{}", site["site"]), "router_id": site["router_id"], "subnet_id": site["subnet_id"]})).await?;
        services.push(service["id"].as_str().context("id")?.to_string());
    }
    let psk = uuid::Uuid::new_v4().simple().to_string();
    let connection = |from: usize, to: usize| {
        json!({"name": format!("demo-{}-to-{}", from + 1, to + 1), "vpnservice_id": services[from], "ikepolicy_id": ike["id"],
               "ipsecpolicy_id": esp["id"], "peer_address": sites[to]["gateway_ip"], "peer_id": sites[to]["gateway_ip"],
               "psk": psk, "peer_cidrs": [sites[to]["cidr"]]})
    };
    println!("\ntimeline (from the POST of the second connection):");
    let first = client
        .create(Kind::SiteConnection, connection(0, 1))
        .await?;
    let mut timeline = Timeline {
        start: Instant::now(),
        lines: vec![],
    };
    let second = client
        .create(Kind::SiteConnection, connection(1, 0))
        .await?;
    timeline.mark("request accepted (201)");
    let id = second["id"].as_str().context("id")?.to_string();
    follow(client, &id, 0, &mut timeline).await?;
    first_ping(&sites, &mut timeline).await?;
    Ok(Tunnel {
        first: first["id"].as_str().context("id")?.to_string(),
        sites,
    })
}

/// Pings site 2's host from site 1's until a reply comes.
async fn first_ping(sites: &[Value], timeline: &mut Timeline) -> Result<()> {
    let host = sites[1]["host_ip"].as_str().context("host")?.to_string();
    let namespace = sites[0]["host_namespace"]
        .as_str()
        .context("namespace")?
        .to_string();
    let started = Instant::now();
    loop {
        let reply = tokio::process::Command::new("ip")
            .args([
                "netns", "exec", &namespace, "ping", "-c", "1", "-W", "0.2", &host,
            ])
            .output()
            .await?;
        if reply.status.success() {
            timeline.mark(format!(
                "first ping reply: host 1 → {host} through the tunnel"
            ));
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("no ping reply within 30 s");
        }
    }
}

/// Powers off the gateway host of site 1's active router (its agent stops, its charons
/// and namespaces go) and follows the standby taking over until pings pass again.
async fn show_failover(client: &Client, tunnel: &Tunnel, gateways: &[Gateway]) -> Result<()> {
    let router_id = tunnel.sites[0]["router_id"].as_str().context("router")?;
    let router = client.show(Kind::Router, router_id).await?;
    let active = router["agent_host"].as_str().context("active agent")?;
    println!(
        "\nsite 1's router is HA: active on {active}, standby on {}",
        router["ha_standby_host"].as_str().unwrap_or("none")
    );
    let gateway = gateways
        .iter()
        .find(|g| g.config.host == active)
        .context("the active gateway is not the demo's")?;
    let seen = client
        .get(&format!(
            "/v2.0/{}/{}/events",
            Kind::SiteConnection.path(),
            tunnel.first
        ))
        .await?["events"]
        .as_array()
        .map_or(0, Vec::len);
    println!(
        "timeline (from the power cut; the standby probes the active agent every {} ms and claims the router after {} ms without an answer; the server's fallback declares an agent dead after {DEMO_AGENT_DOWN_TIME} s without heartbeats):",
        gateway.config.ha.probe_interval_ms, gateway.config.ha.dead_time_ms
    );
    let mut timeline = Timeline {
        start: Instant::now(),
        lines: vec![],
    };
    gateway.agent.abort();
    lab::power_off(&gateway.config.namespace_prefix).await?;
    timeline.mark(format!(
        "gateway host {active} powered off: agent, charon and namespaces gone"
    ));
    follow(client, &tunnel.first, seen, &mut timeline).await?;
    let router = client.show(Kind::Router, router_id).await?;
    timeline.mark(format!(
        "site 1's router now active on {} (lease epoch {})",
        router["agent_host"].as_str().unwrap_or("none"),
        router["lease_epoch"]
    ));
    first_ping(&tunnel.sites, &mut timeline).await
}

/// Marks each new event of a connection (after the first `seen`): when the agent applied
/// it, when IKE established it, and why it went down; returns once it is `ACTIVE` in GET
/// after a new event.
async fn follow(client: &Client, id: &str, mut seen: usize, timeline: &mut Timeline) -> Result<()> {
    let start_seen = seen;
    loop {
        // Events first: a status read after them is at least as new.
        let events = client
            .get(&format!(
                "/v2.0/{}/{id}/events",
                Kind::SiteConnection.path()
            ))
            .await?;
        let conn = client.show(Kind::SiteConnection, id).await?;
        let events: Vec<Value> = events["events"].as_array().cloned().unwrap_or_default();
        for event in events.iter().skip(seen) {
            let label = match event["reason"].as_str().unwrap_or("") {
                "ESTABLISHED" => format!(
                    "IKE established ({})",
                    event["detail"].as_str().unwrap_or("")
                ),
                "CONNECTING" => "config applied by the agent, negotiating".to_string(),
                "AGENT_DOWN" => format!(
                    "DOWN (AGENT_DOWN): {}",
                    event["detail"].as_str().unwrap_or("")
                ),
                other => format!("{} ({other})", event["to"].as_str().unwrap_or("")),
            };
            timeline.mark(format!(
                "{label} — reported at {}",
                event["time"].as_str().unwrap_or("")
            ));
        }
        seen = events.len();
        let reached_active = events.last().is_some_and(|e| e["to"] == "ACTIVE");
        if reached_active && seen > start_seen && conn["status"] == "ACTIVE" {
            timeline.mark("ACTIVE in GET");
            return Ok(());
        }
        if timeline.start.elapsed() > Duration::from_secs(30) {
            bail!(
                "connection not ACTIVE within 30 s (last: {} {})",
                conn["status"],
                conn["status_reason"]
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn clean_up(client: &Client, args: &DemoArgs, config: &AgentConfig) -> Result<()> {
    let lab_args = lab::LabArgs::new(&args.prefix, &config.fabric_namespace);
    lab::down(client, &lab::DownArgs::new(lab_args)).await?;
    for policy in client
        .list(Kind::IkePolicy, &[("name", "demo-ike")])
        .await?
    {
        client
            .delete(Kind::IkePolicy, policy["id"].as_str().unwrap_or_default())
            .await?;
    }
    for policy in client
        .list(Kind::IpsecPolicy, &[("name", "demo-esp")])
        .await?
    {
        client
            .delete(Kind::IpsecPolicy, policy["id"].as_str().unwrap_or_default())
            .await?;
    }
    Ok(())
}
