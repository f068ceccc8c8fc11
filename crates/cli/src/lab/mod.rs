//! `vpnaas lab`: a multi-site topology on this machine for tests and demos. Through the
//! API it creates an "internet" (an external network) and, per site, a network, a subnet
//! and a router with a gateway and an interface, so the agent plumbs each router; beside
//! each router it creates a host namespace on the site's network with `.10` and a
//! default route via the router. Every name carries the lab's prefix. With `--agents N`
//! the lab also runs the gateway hosts (see [`gateways`]), so that a failover can be
//! watched on one machine: `lab up --agents 3 --ha`, then `lab power-off 1`. `lab down`
//! removes it all, VPN objects on its routers included, and returns once the agents have
//! removed the routers from the machine (see [`remnants`]); `lab exec` runs a command in
//! a site's host namespace in its own place; `lab unmanaged up N CONNECTION` adds a site
//! vpnaas does not manage, configured only from the connection's downloaded peer
//! configuration (see [`unmanaged`]).

mod far_credentials;
mod gateways;
mod remnants;
pub mod unmanaged;

use gateways::Gateway;
pub use gateways::power_off;
use remnants::RouterRemnants;

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::time::Duration;

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

/// Seconds `lab down` waits for the agents by default.
const DOWN_TIMEOUT: u64 = 30;

/// `vpnaas lab down`.
#[derive(Debug, clap::Args)]
pub struct DownArgs {
    #[command(flatten)]
    lab: LabArgs,
    /// Seconds to wait for the agents to remove the namespaces and daemons of the lab's
    /// routers.
    #[arg(long, default_value_t = DOWN_TIMEOUT)]
    timeout: u64,
}

impl DownArgs {
    /// `lab down` of this lab, waiting as long as by default.
    pub fn new(lab: LabArgs) -> Self {
        DownArgs {
            lab,
            timeout: DOWN_TIMEOUT,
        }
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
    /// Whether the lab made this API object (its name carries the lab's prefix).
    fn owns(&self, object: &Value) -> bool {
        object["name"]
            .as_str()
            .is_some_and(|n| n.starts_with(&format!("{}-", self.prefix)))
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
    // `replace`: the same address again is no error, so a second `lab up` passes here.
    command::run(
        "ip",
        &[
            "-n",
            &host,
            "addr",
            "replace",
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

/// Removes the lab: the VPN objects on its routers, its routers and networks; waits until
/// the agents have removed the routers' namespaces and daemons (they do so after the API
/// calls return); then its gateway hosts, host namespaces and fabric. Fails naming what
/// the agents left (having removed the rest).
pub async fn down(client: &Client, args: &DownArgs) -> Result<()> {
    let lab = &args.lab;
    let routers: Vec<Value> = client
        .list(Kind::Router, &[])
        .await?
        .into_iter()
        .filter(|r| lab.owns(r))
        .collect();
    let router_ids = routers.iter().map(id).collect::<Result<Vec<_>>>()?;
    let mut remnants = RouterRemnants::of(router_ids.clone()).await;
    delete_vpn_objects(client, &router_ids).await?;
    for router in &routers {
        delete_router(client, router).await?;
    }
    for network in client
        .list(Kind::Network, &[])
        .await?
        .iter()
        .filter(|n| lab.owns(n))
    {
        client.delete(Kind::Network, &id(network)?).await?;
    }
    let gateways = Gateway::all(lab);
    for gateway in &gateways {
        gateway.clear_if_powered_off().await?;
    }
    let routers_removed = remnants.wait_gone(Duration::from_secs(args.timeout)).await;
    for gateway in &gateways {
        gateway.remove().await?;
    }
    unmanaged::remove_all(lab).await?;
    for namespace in l3::namespaces_with_prefix(&format!("{}-h", lab.prefix)).await {
        l3::remove_namespace(&namespace).await?;
    }
    let _ = std::fs::remove_dir_all(gateways::lab_dir(lab));
    let config = AgentConfig {
        fabric_namespace: lab.fabric_namespace.clone(),
        ..AgentConfig::default()
    };
    l3::prune_fabric(&config).await?;
    routers_removed
}

/// Deletes the site connections and VPN services on these routers (whoever created them),
/// and the endpoint groups those connections used that no other connection uses.
async fn delete_vpn_objects(client: &Client, router_ids: &[String]) -> Result<()> {
    let mut groups = BTreeSet::new();
    for router_id in router_ids {
        for service in client
            .list(Kind::VpnService, &[("router_id", router_id)])
            .await?
        {
            for conn in client
                .list(Kind::SiteConnection, &[("vpnservice_id", &id(&service)?)])
                .await?
            {
                groups.extend(endpoint_groups(&conn));
                client.delete(Kind::SiteConnection, &id(&conn)?).await?;
            }
            client.delete(Kind::VpnService, &id(&service)?).await?;
        }
    }
    let still_used: BTreeSet<String> = client
        .list(Kind::SiteConnection, &[])
        .await?
        .iter()
        .flat_map(endpoint_groups)
        .collect();
    for group in groups.difference(&still_used) {
        client.delete(Kind::EndpointGroup, group).await?;
    }
    Ok(())
}

/// The endpoint groups a connection uses.
fn endpoint_groups(conn: &Value) -> impl Iterator<Item = String> + '_ {
    ["local_ep_group_id", "peer_ep_group_id"]
        .into_iter()
        .filter_map(|key| conn[key].as_str().map(String::from))
}

async fn delete_router(client: &Client, router: &Value) -> Result<()> {
    let router_id = id(router)?;
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
    Ok(())
}

/// Runs a command in a site's host namespace in place of this process (`ip netns exec`
/// then execs it in turn), so that `lab exec` behaves like the command: signals sent to it
/// reach the command, and its exit status is the command's. Returns only if the command
/// cannot be started.
pub async fn exec(args: &ExecArgs) -> Result<std::convert::Infallible> {
    let namespace = args.lab.host_namespace(args.site);
    if !l3::namespace_exists(&namespace).await {
        bail!(
            "no lab site {} (namespace {namespace} does not exist)",
            args.site
        );
    }
    let error = std::process::Command::new("ip")
        .args(["netns", "exec", &namespace])
        .args(&args.command)
        .exec();
    Err(error).context("cannot run ip netns exec")
}
