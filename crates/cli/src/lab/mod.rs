//! `vpnaas lab`: a multi-site topology on this machine for tests and demos. Through the
//! API it creates an "internet" (an external network) and, per site, a network, a subnet
//! and a router with a gateway and an interface, so the agent plumbs each router; beside
//! each router it creates a host namespace on the site's network with `.10` and a
//! default route via the router. Every name carries the lab's prefix. With `--agents N`
//! the lab also runs the gateway hosts (see [`gateways`]), so that a failover can be
//! watched on one machine: `lab up --agents 3 --ha`, then `lab power-off 1`.

mod gateways;

use gateways::Gateway;
pub use gateways::power_off;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use vpnaas_agent::{AgentConfig, DataPlane, command, l3};
use vpnaas_client::Client;
use vpnaas_model::Kind;

/// Flags shared by the lab commands.
#[derive(Debug, clap::Args)]
pub struct LabArgs {
    /// Prefix of every name the lab creates (namespaces, API objects).
    #[arg(long, env = "VPNAAS_LAB_PREFIX", default_value = "vlab")]
    prefix: String,
    /// Namespace of the agent's network bridges (as configured for the agent).
    #[arg(long, env = "VPNAAS_FABRIC_NAMESPACE", default_value = "vpnaas-fabric")]
    fabric_namespace: String,
}

/// `vpnaas lab up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    lab: LabArgs,
    /// Number of sites (1 to 200).
    #[arg(long, default_value_t = 2)]
    sites: u8,
    /// Also start this many agents, each a gateway host of its own (`<prefix>-gw<N>`),
    /// on the server at `--url` (give it `--agent-down-time` of a few seconds to watch
    /// failovers). 0: the agents already running host the routers.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=8))]
    agents: u8,
    /// HA routers: each on an active and a standby agent (needs two agents or more).
    #[arg(long)]
    ha: bool,
    /// Where ESP runs, for the agents the lab starts.
    #[arg(long, value_enum, default_value_t = DataPlane::Auto)]
    data_plane: DataPlane,
}

impl UpArgs {
    /// `lab up` of `sites` sites, on the agents already running.
    pub fn new(lab: LabArgs, sites: u8) -> Self {
        UpArgs {
            lab,
            sites,
            agents: 0,
            ha: false,
            data_plane: DataPlane::Auto,
        }
    }

    /// The same with HA routers (or not).
    pub fn with_ha(self, ha: bool) -> Self {
        UpArgs { ha, ..self }
    }
}

/// `vpnaas lab power-off N` / `power-on N`.
#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    #[command(flatten)]
    lab: LabArgs,
    /// Gateway host number (1-based, as started by `lab up --agents`).
    gateway: u8,
}

/// `vpnaas lab exec SITE -- CMD…`.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    #[command(flatten)]
    lab: LabArgs,
    /// Site number (1-based).
    site: u8,
    /// Command to run in the site's host namespace.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

impl LabArgs {
    /// Lab settings for a prefix and the agent's fabric namespace.
    pub fn new(prefix: &str, fabric_namespace: &str) -> Self {
        LabArgs {
            prefix: prefix.into(),
            fabric_namespace: fabric_namespace.into(),
        }
    }

    fn host_namespace(&self, site: u8) -> String {
        format!("{}-h{site}", self.prefix)
    }
    fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }
}

fn id(v: &Value) -> Result<String> {
    v["id"]
        .as_str()
        .map(String::from)
        .context("object without id")
}

/// Builds the lab; returns one description per site.
pub async fn up(client: &Client, args: &UpArgs) -> Result<Vec<Value>> {
    if args.sites == 0 || args.sites > 200 {
        bail!("--sites must be between 1 and 200");
    }
    let lab = &args.lab;
    start_gateways(client, args).await?;
    let internet = client
        .create(
            Kind::Network,
            json!({"name": lab.name("internet"), "router:external": true}),
        )
        .await?;
    client
        .create(Kind::Subnet, json!({"name": lab.name("internet-v4"), "network_id": id(&internet)?, "cidr": "203.0.113.0/24"}))
        .await?;
    let mut sites = Vec::new();
    for site in 1..=args.sites {
        sites.push(build_site(client, args, &id(&internet)?, site).await?);
    }
    Ok(sites)
}

/// Starts the lab's gateway hosts and waits until the server sees each alive (so the
/// routers are spread over all of them).
async fn start_gateways(client: &Client, args: &UpArgs) -> Result<()> {
    let gateways: Vec<Gateway> = (1..=args.agents)
        .map(|n| Gateway::new(&args.lab, n))
        .collect();
    for gateway in &gateways {
        gateway.start(
            client.base_url(),
            &args.lab.fabric_namespace,
            args.data_plane,
        )?;
    }
    let started = std::time::Instant::now();
    loop {
        let agents = client.list(Kind::Agent, &[]).await?;
        let alive = |host: &str| {
            agents
                .iter()
                .any(|a| a["host"] == host && a["alive"] == true)
        };
        if gateways.iter().all(|g| alive(g.host())) {
            return Ok(());
        }
        if started.elapsed() > std::time::Duration::from_secs(15) {
            bail!(
                "the lab's agents did not register within 15 s (see their logs in the lab directory)"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `lab power-off N`: a power cut of gateway host N.
pub async fn power_off_gateway(args: &GatewayArgs) -> Result<()> {
    Gateway::new(&args.lab, args.gateway).power_off().await
}

/// `lab power-on N`: gateway host N starts again.
pub fn power_on_gateway(args: &GatewayArgs) -> Result<()> {
    Gateway::new(&args.lab, args.gateway).power_on()
}

async fn build_site(client: &Client, args: &UpArgs, internet: &str, site: u8) -> Result<Value> {
    let lab = &args.lab;
    let network = client
        .create(
            Kind::Network,
            json!({"name": lab.name(&format!("site{site}"))}),
        )
        .await?;
    let cidr = format!("10.{site}.0.0/24");
    let subnet = client
        .create(Kind::Subnet, json!({"name": lab.name(&format!("site{site}-v4")), "network_id": id(&network)?, "cidr": cidr}))
        .await?;
    let router = client
        .create(Kind::Router, json!({"name": lab.name(&format!("r{site}")), "ha": args.ha, "external_gateway_info": {"network_id": internet}}))
        .await?;
    client
        .add_router_interface(&id(&router)?, &id(&subnet)?)
        .await?;
    let host_address = format!("10.{site}.0.10");
    plug_host(
        lab,
        site,
        &id(&network)?,
        &host_address,
        &format!("10.{site}.0.1"),
    )
    .await?;
    Ok(json!({
        "site": site,
        "router_id": id(&router)?,
        "subnet_id": id(&subnet)?,
        "cidr": cidr,
        "gateway_ip": router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"],
        "host_namespace": lab.host_namespace(site),
        "host_ip": host_address,
    }))
}

async fn plug_host(
    lab: &LabArgs,
    site: u8,
    network_id: &str,
    address: &str,
    via: &str,
) -> Result<()> {
    let config = AgentConfig {
        fabric_namespace: lab.fabric_namespace.clone(),
        ..AgentConfig::default()
    };
    let (bridge_ns, bridge) = l3::ensure_bridge(&config, network_id).await?;
    let host = lab.host_namespace(site);
    l3::ensure_namespace(&host).await?;
    let outer = format!(
        "lh{site}-{}",
        &lab.prefix.chars().take(8).collect::<String>()
    );
    if command::run("ip", &["-n", &host, "link", "show", "dev", "eth0"])
        .await
        .is_err()
    {
        command::run(
            "ip",
            &[
                "-n", &bridge_ns, "link", "add", &outer, "type", "veth", "peer", "name", "eth0",
                "netns", &host,
            ],
        )
        .await?;
    }
    command::run(
        "ip",
        &[
            "-n", &bridge_ns, "link", "set", &outer, "master", &bridge, "up",
        ],
    )
    .await?;
    command::run("ip", &["-n", &host, "link", "set", "eth0", "up"]).await?;
    command::run_idempotent(
        "ip",
        &[
            "-n",
            &host,
            "addr",
            "add",
            &format!("{address}/24"),
            "dev",
            "eth0",
        ],
    )
    .await?;
    command::run(
        "ip",
        &["-n", &host, "route", "replace", "default", "via", via],
    )
    .await?;
    Ok(())
}

/// Removes the lab: its VPN objects, routers, networks, host namespaces and the gateway
/// hosts it started.
pub async fn down(client: &Client, lab: &LabArgs) -> Result<()> {
    let routers: Vec<Value> = client.list(Kind::Router, &[]).await?;
    let ours = |v: &Value| {
        v["name"]
            .as_str()
            .is_some_and(|n| n.starts_with(&format!("{}-", lab.prefix)))
    };
    for router in routers.iter().filter(|r| ours(r)) {
        let router_id = id(router)?;
        for service in client
            .list(Kind::VpnService, &[("router_id", &router_id)])
            .await?
        {
            for conn in client
                .list(Kind::SiteConnection, &[("vpnservice_id", &id(&service)?)])
                .await?
            {
                client.delete(Kind::SiteConnection, &id(&conn)?).await?;
            }
            client.delete(Kind::VpnService, &id(&service)?).await?;
        }
        for interface in router["interfaces"].as_array().into_iter().flatten() {
            let subnet = interface["subnet_id"].as_str().unwrap_or_default();
            client.remove_router_interface(&router_id, subnet).await?;
        }
        client
            .update(
                Kind::Router,
                &router_id,
                json!({"external_gateway_info": null}),
            )
            .await?;
        client.delete(Kind::Router, &router_id).await?;
    }
    for network in client
        .list(Kind::Network, &[])
        .await?
        .iter()
        .filter(|n| ours(n))
    {
        client.delete(Kind::Network, &id(network)?).await?;
    }
    for namespace in l3::namespaces_with_prefix(&format!("{}-h", lab.prefix)).await {
        l3::remove_namespace(&namespace).await?;
    }
    for gateway in Gateway::all(lab) {
        gateway.remove().await?;
    }
    let _ = std::fs::remove_dir_all(gateways::lab_dir(lab));
    let config = AgentConfig {
        fabric_namespace: lab.fabric_namespace.clone(),
        ..AgentConfig::default()
    };
    l3::prune_fabric(&config).await?;
    Ok(())
}

/// Runs a command in a site's host namespace; returns its exit code.
pub async fn exec(args: &ExecArgs) -> Result<i32> {
    let namespace = args.lab.host_namespace(args.site);
    if !l3::namespace_exists(&namespace).await {
        bail!(
            "no lab site {} (namespace {namespace} does not exist)",
            args.site
        );
    }
    let status = tokio::process::Command::new("ip")
        .args(["netns", "exec", &namespace])
        .args(&args.command)
        .status()
        .await
        .context("cannot run ip netns exec")?;
    Ok(status.code().unwrap_or(1))
}
