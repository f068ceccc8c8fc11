//! `vpnaas demo`: a real tunnel on this machine in one command. Starts server and agent
//! in this process (SQLite in a temporary directory), builds a 2-site lab, creates
//! policies, a service per router and a connection each way through the API, follows
//! them to `ACTIVE`, pings site 1's host → site 2's host through the tunnel, and prints a
//! timeline. Stays up until Ctrl-C (or stops after the ping with `--exit`), then removes
//! everything it made.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use vpnaas_agent::{Agent, AgentConfig, DataPlane, Metrics, l3};
use vpnaas_client::Client;
use vpnaas_model::Kind;
use vpnaas_server::service::agents::LocalControlPlane;
use vpnaas_server::{Server, Settings};

use crate::lab;

/// Flags of `vpnaas demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Stop and clean up after the first ping instead of waiting for Ctrl-C.
    #[arg(long)]
    exit: bool,
    /// kernel or userspace ESP (userspace works on kernels without ESP).
    #[arg(long, default_value = "userspace", value_parser = ["kernel", "userspace"])]
    data_plane: String,
    /// Prefix of every namespace and object the demo creates.
    #[arg(long, default_value = "vdemo")]
    prefix: String,
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
    // Short: charon's VICI socket lives below it, and unix socket paths stop at 107 bytes.
    let tag: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(8)
        .collect();
    let dir = std::env::temp_dir().join(format!("vpnaas-demo-{tag}"));
    let settings = Settings {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.join("data"),
        ..Settings::default()
    };
    let config = AgentConfig {
        host: format!("{}-agent", args.prefix),
        state_dir: dir.join("state"),
        namespace_prefix: format!("{}-r-", args.prefix),
        fabric_namespace: format!("{}-fabric", args.prefix),
        data_plane: if args.data_plane == "kernel" {
            DataPlane::Kernel
        } else {
            DataPlane::Userspace
        },
        ..AgentConfig::default()
    };
    let metrics = Metrics::default();
    let app = crate::aio::app_hosting_agent(settings, &metrics, None).await?;
    let hints = app.notifier.subscribe(&config.host);
    let control = Arc::new(LocalControlPlane::new(app.clone()));
    let server = Server::start_app(app)
        .await
        .context("cannot start the server")?;
    let agent = tokio::spawn(Agent::new(config.clone(), control, metrics).run(hints));
    println!(
        "vpnaas demo: API on {} (data in {})",
        server.url(),
        dir.display()
    );
    let client = Client::new(&server.url());
    let outcome = show_tunnel(&client, args, &config).await;
    if outcome.is_ok() && !args.exit {
        println!(
            "\nThe tunnel stays up: try `vpnaas --url {} site-connection list --watch`,",
            server.url()
        );
        println!(
            "or `vpnaas lab exec 2 --prefix {} -- ping 10.1.0.10`. Ctrl-C stops and cleans up.",
            args.prefix
        );
        tokio::signal::ctrl_c().await?;
    }
    println!("cleaning up…");
    let cleaned = clean_up(&client, args, &config).await;
    agent.abort();
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome?;
    cleaned?;
    Ok(String::new())
}

async fn show_tunnel(client: &Client, args: &DemoArgs, config: &AgentConfig) -> Result<()> {
    let lab_args = lab::LabArgs::new(&args.prefix, &config.fabric_namespace);
    let sites = lab::up(client, &lab::UpArgs::new(lab_args, 2)).await?;
    for site in &sites {
        println!(
            "site {}: router {} gateway {} subnet {} host {}",
            site["site"], site["router_id"], site["gateway_ip"], site["cidr"], site["host_ip"]
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
    client
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
    follow(client, &id, &mut timeline).await?;
    let host = sites[1]["host_ip"].as_str().context("host")?.to_string();
    let namespace = sites[0]["host_namespace"]
        .as_str()
        .context("namespace")?
        .to_string();
    loop {
        let reply = tokio::process::Command::new("ip")
            .args([
                "netns", "exec", &namespace, "ping", "-c", "1", "-W", "1", &host,
            ])
            .output()
            .await?;
        if reply.status.success() {
            timeline.mark(format!(
                "first ping reply: host 1 → {host} through the tunnel"
            ));
            return Ok(());
        }
        if timeline.start.elapsed() > Duration::from_secs(30) {
            bail!("no ping reply within 30 s");
        }
    }
}

/// Marks when the agent applied the connection, when IKE established it (from its events)
/// and when `ACTIVE` became visible in GET.
async fn follow(client: &Client, id: &str, timeline: &mut Timeline) -> Result<()> {
    let mut seen = 0;
    loop {
        let conn = client.show(Kind::SiteConnection, id).await?;
        let events = client
            .get(&format!(
                "/v2.0/{}/{id}/events",
                Kind::SiteConnection.path()
            ))
            .await?;
        let events: Vec<Value> = events["events"].as_array().cloned().unwrap_or_default();
        for event in events.iter().skip(seen) {
            let label = match event["reason"].as_str().unwrap_or("") {
                "ESTABLISHED" => format!(
                    "IKE established ({})",
                    event["detail"].as_str().unwrap_or("")
                ),
                "CONNECTING" => "config applied by the agent, negotiating".to_string(),
                other => format!("{} ({other})", event["to"].as_str().unwrap_or("")),
            };
            timeline.mark(format!(
                "{label} — reported at {}",
                event["time"].as_str().unwrap_or("")
            ));
        }
        seen = events.len();
        if conn["status"] == "ACTIVE" {
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
    lab::down(
        client,
        &lab::LabArgs::new(&args.prefix, &config.fabric_namespace),
    )
    .await?;
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
    let started = Instant::now();
    while !l3::namespaces_with_prefix(&config.namespace_prefix)
        .await
        .is_empty()
        && started.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    l3::prune_fabric(config).await?;
    Ok(())
}
