//! `vpnaas bench scale`: many routers on one machine. Starts `--servers` API servers in
//! this process (several need `--database-url postgres://…`) and `--agents` agent
//! processes with the fake driver (no daemons, no namespaces: every tunnel comes up
//! `--delay-ms` after it is loaded), creates `--routers` sites with `--connections` each,
//! and prints: creation time, convergence (every connection `ACTIVE`), an agent's full
//! resync time, server CPU per status report, status-report bytes, memory per agent.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use vpnaas_client::Client;
use vpnaas_model::Kind;
use vpnaas_server::{Server, Settings};

/// Flags of `vpnaas bench scale`.
#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    /// API servers (in this process).
    #[arg(long, default_value_t = 2)]
    servers: usize,
    /// Agent processes.
    #[arg(long, default_value_t = 3)]
    agents: usize,
    /// Routers (one site each).
    #[arg(long, default_value_t = 1000)]
    routers: usize,
    /// Connections per router.
    #[arg(long, default_value_t = 5)]
    connections: usize,
    /// Milliseconds a fake tunnel takes to come up.
    #[arg(long, default_value_t = 200)]
    delay_ms: u64,
    /// Database shared by the servers (PostgreSQL for more than one).
    #[arg(long, env = "VPNAAS_DATABASE_URL")]
    database_url: Option<String>,
    /// Requests in flight while creating.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds of steady state (everything ACTIVE) during which the agents' full resyncs
    /// (every 5 s) are timed.
    #[arg(long, default_value_t = 12)]
    settle_seconds: u64,
}

/// Agent processes, killed (by pid) when dropped.
struct Agents(Vec<(Child, String)>);

impl Drop for Agents {
    fn drop(&mut self) {
        for (child, _) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the benchmark; returns the report.
pub async fn run(args: &ScaleArgs) -> Result<String> {
    if args.servers > 1
        && !args
            .database_url
            .as_deref()
            .is_some_and(|u| u.starts_with("postgres"))
    {
        bail!(
            "several servers need --database-url postgres://… (one SQLite file serves one server)"
        );
    }
    let dir = tempfile::tempdir()?;
    let servers = start_servers(args, dir.path()).await?;
    let clients: Vec<Client> = servers.iter().map(|s| Client::new(&s.url())).collect();
    let agents = start_agents(args, &servers, &dir.path().join("first"))?;
    wait_agents(&clients[0], args.agents).await?;
    let cpu_before = cpu_seconds();

    let started = Instant::now();
    let created = populate(&clients, args).await?;
    let creation = started.elapsed();
    let converged = wait_active(&clients[0], created, Duration::from_secs(600)).await?;
    let convergence = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    let metrics = clients[0].get_text("/metrics").await?;
    let route_ms = |route: &str, method: &str| {
        let labels = format!(r#"{{method="{method}",route="{route}",code="#);
        let sum = metric_sum(
            &metrics,
            "vpnaas_http_request_duration_seconds_sum",
            &labels,
        );
        let count = metric_sum(
            &metrics,
            "vpnaas_http_request_duration_seconds_count",
            &labels,
        );
        sum * 1000.0 / count.max(1.0)
    };
    let state_ms = route_ms("/v2.0/vpnaas-agent/{host}/router-states", "POST");
    let report_ms = route_ms("/v2.0/vpnaas-agent/{host}/reports", "POST");
    let mut reports = 0.0;
    let mut report_bytes = 0.0;
    for client in &clients {
        let text = client.get_text("/metrics").await?;
        reports += metric(&text, "vpnaas_status_reports_total");
        report_bytes += metric(&text, "vpnaas_status_report_bytes_total");
    }
    let converging = resync_totals(&agents).await?;
    tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
    let settled = resync_totals(&agents).await?;
    let mean = |(sum, count): (f64, f64)| {
        if count > 0.0 {
            format!("{:.0} ms", sum * 1000.0 / count)
        } else {
            "none".to_string()
        }
    };
    let resyncs_converging: Vec<String> = converging.iter().map(|t| mean(*t)).collect();
    let resyncs_steady: Vec<String> = settled
        .iter()
        .zip(&converging)
        .map(|(after, before)| mean((after.0 - before.0, after.1 - before.1)))
        .collect();
    let memory: Vec<f64> = agents
        .0
        .iter()
        .map(|(child, _)| rss_mib(child.id()))
        .collect();
    drop(agents);
    for server in servers {
        server.stop().await;
    }
    let cold = cold_start(args, dir.path(), created).await?;
    Ok(format!(
        "{} servers, {} agents, {} routers × {} connections ({} connections), fake tunnels up after {} ms\n\
         creation through the API:          {:.1} s\n\
         creation start → all ACTIVE:       {:.1} s ({converged} ACTIVE)\n\
         cold start → all ACTIVE again:     {:.1} s (servers and agents started anew on the populated database)\n\
         full resync per agent (mean), steady state: {}\n\
         full resync per agent (mean), from start to all ACTIVE: {}\n\
         server CPU per status report:      {:.3} ms ({reports} reports, {:.1} CPU s in the servers' process during creation and convergence)\n\
         status report size (mean):         {:.0} bytes\n\
         server time per agent call (mean): desired states (up to 32) {state_ms:.1} ms, report {report_ms:.1} ms (first server)\n\
         agent memory (RSS):                {}",
        args.servers.max(1),
        args.agents,
        args.routers,
        args.connections,
        created,
        args.delay_ms,
        creation.as_secs_f64(),
        convergence.as_secs_f64(),
        cold.as_secs_f64(),
        resyncs_steady.join(", "),
        resyncs_converging.join(", "),
        cpu * 1000.0 / reports.max(1.0),
        cpu,
        report_bytes / reports.max(1.0),
        memory
            .iter()
            .map(|m| format!("{m:.1} MiB"))
            .collect::<Vec<_>>()
            .join(", "),
    ))
}

async fn start_servers(args: &ScaleArgs, dir: &std::path::Path) -> Result<Vec<Server>> {
    let mut servers = Vec::new();
    for i in 0..args.servers.max(1) {
        let settings = Settings {
            listen: "127.0.0.1:0".parse()?,
            data_dir: dir.join(format!("server{i}")),
            database_url: args.database_url.clone(),
            // The servers of one database seal its secrets with one key.
            secret_key_file: Some(dir.join("secret.key")),
            ..Settings::default()
        };
        servers.push(Server::start(settings).await.context("server")?);
    }
    Ok(servers)
}

/// Starts servers and agents anew (agents with empty state, as after a power cut) on the
/// populated database; the time until the agents see all `connections` ACTIVE again.
async fn cold_start(
    args: &ScaleArgs,
    dir: &std::path::Path,
    connections: usize,
) -> Result<Duration> {
    let started = Instant::now();
    let servers = start_servers(args, dir).await?;
    let agents = start_agents(args, &servers, &dir.join("cold"))?;
    loop {
        let mut active = 0.0;
        for (_, metrics_url) in &agents.0 {
            if let Ok(text) = Client::new(metrics_url).get_text("/metrics").await {
                active += connections_active(&text);
            }
        }
        if active >= connections as f64 {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("{active} of {connections} connections ACTIVE 600 s after a cold start");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = started.elapsed();
    drop(agents);
    for server in servers {
        server.stop().await;
    }
    Ok(took)
}

/// The connections an agent's `/metrics` counts as ACTIVE.
fn connections_active(text: &str) -> f64 {
    metric_sum(text, "vpnaas_agent_connections", r#"{status="ACTIVE","#)
}

/// The sum of metric `name` over its label sets that start with `labels`.
fn metric_sum(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(labels))
        .filter_map(|rest| rest.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Each agent's `(seconds, count)` of full resyncs so far.
async fn resync_totals(agents: &Agents) -> Result<Vec<(f64, f64)>> {
    let mut totals = Vec::new();
    for (_, metrics_url) in &agents.0 {
        let text = Client::new(metrics_url).get_text("/metrics").await?;
        totals.push((
            metric(&text, "vpnaas_agent_resync_duration_seconds_sum"),
            metric(&text, "vpnaas_agent_resync_duration_seconds_count"),
        ));
    }
    Ok(totals)
}

fn start_agents(args: &ScaleArgs, servers: &[Server], dir: &std::path::Path) -> Result<Agents> {
    let mut agents = Vec::new();
    for i in 0..args.agents {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let server = servers[i % servers.len()].url();
        let child = Command::new(std::env::current_exe()?)
            .args([
                "agent",
                "--server",
                &server,
                "--host",
                &format!("scale-{i}"),
            ])
            .args(["--l3-mode", "simulation", "--resync-interval", "5"])
            .args(["--fake-tunnel-delay-ms", &args.delay_ms.to_string()])
            .args(["--namespace-prefix", &format!("vscale{i}-")])
            .arg("--state-dir")
            .arg(dir.join(format!("agent{i}")))
            .args(["--metrics-listen", &format!("127.0.0.1:{port}")])
            .env("VPNAAS_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .context("agent process")?;
        agents.push((child, format!("http://127.0.0.1:{port}")));
    }
    Ok(Agents(agents))
}

async fn wait_agents(client: &Client, count: usize) -> Result<()> {
    for _ in 0..400 {
        let alive = client
            .list(Kind::Agent, &[])
            .await?
            .iter()
            .filter(|a| a["alive"] == true)
            .count();
        if alive >= count {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("the agents did not register")
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap_or_default().to_string()
}

/// Creates the sites, spreading requests over the servers; returns the connection count.
async fn populate(clients: &[Client], args: &ScaleArgs) -> Result<usize> {
    let c = &clients[0];
    let public = c
        .create(
            Kind::Network,
            json!({"name": "scale-public", "router:external": true}),
        )
        .await?;
    c.create(
        Kind::Subnet,
        json!({"network_id": id(&public), "cidr": "198.18.0.0/15", "ip_version": 4}),
    )
    .await?;
    let ike = c.create(Kind::IkePolicy, json!({"name": "scale"})).await?;
    let ipsec = c
        .create(Kind::IpsecPolicy, json!({"name": "scale"}))
        .await?;
    let shared = Arc::new((id(&public), id(&ike), id(&ipsec), args.connections));
    let mut tasks = JoinSet::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for worker in 0..args.concurrency.max(1) {
        let (client, shared, next, total) = (
            clients[worker % clients.len()].clone(),
            shared.clone(),
            next.clone(),
            args.routers,
        );
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= total {
                    return Ok::<(), anyhow::Error>(());
                }
                site(&client, n, &shared).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(args.routers * args.connections)
}

async fn site(c: &Client, n: usize, shared: &(String, String, String, usize)) -> Result<()> {
    let (public, ike, ipsec, connections) = shared;
    let net = c
        .create(Kind::Network, json!({"name": format!("s{n}")}))
        .await?;
    let cidr = format!("10.{}.{}.0/24", n / 256, n % 256);
    let subnet = c
        .create(
            Kind::Subnet,
            json!({"network_id": id(&net), "cidr": cidr, "ip_version": 4}),
        )
        .await?;
    let router = c
        .create(
            Kind::Router,
            json!({"name": format!("r{n}"), "external_gateway_info": {"network_id": public}}),
        )
        .await?;
    c.add_router_interface(&id(&router), &id(&subnet)).await?;
    let service = c
        .create(
            Kind::VpnService,
            json!({"router_id": id(&router), "subnet_id": id(&subnet)}),
        )
        .await?;
    for k in 0..*connections {
        c.create(
            Kind::SiteConnection,
            json!({"vpnservice_id": id(&service), "ikepolicy_id": ike, "ipsecpolicy_id": ipsec,
                   "peer_address": format!("192.0.2.{}", k + 1), "peer_id": format!("192.0.2.{}", k + 1),
                   "psk": "scale-secret", "peer_cidrs": [format!("172.16.{k}.0/24")]}),
        )
        .await?;
    }
    Ok(())
}

async fn wait_active(client: &Client, wanted: usize, within: Duration) -> Result<usize> {
    let started = Instant::now();
    loop {
        let active = client
            .list(
                Kind::SiteConnection,
                &[("status", "ACTIVE"), ("fields", "id")],
            )
            .await?
            .len();
        if active >= wanted {
            return Ok(active);
        }
        if started.elapsed() > within {
            bail!("{active} of {wanted} connections ACTIVE after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of an unlabelled metric line.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// CPU time (user + system) of this process, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After the command name: state is field 0, utime 11, stime 12 (clock ticks of 100 Hz).
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}
