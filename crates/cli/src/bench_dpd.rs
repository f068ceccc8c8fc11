//! `vpnaas bench dpd`: how soon a peer that goes silent is `DOWN`/`PEER_UNREACHABLE`, as
//! the connection's `dpd` says. On a running all-in-one with a 2-site lab it makes a
//! connection each way with the given DPD and, per run: keeps the tunnel busy with a ping
//! (so that the peer's last answer is the moment it goes silent), silences site 2's router
//! (its own stack drops everything in and out; charon stays alive), and times site 1's
//! connection until it is `DOWN`; then lets the router answer again and waits for
//! `ACTIVE`. Deletes what it made.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::json;
use vpnaas_client::Client;
use vpnaas_model::Kind;

use crate::bench::{Site, lab_site};

/// Flags of `vpnaas bench dpd`.
#[derive(Debug, clap::Args)]
pub struct DpdArgs {
    /// Prefix of the lab (`vpnaas lab up --prefix`), whose sites 1 and 2 are used.
    #[arg(long, env = "VPNAAS_LAB_PREFIX", default_value = "vlab")]
    prefix: String,
    /// The agent's namespace prefix (a router's namespace is it and the router's id).
    #[arg(long, env = "VPNAAS_NAMESPACE_PREFIX", default_value = "qrouter-")]
    namespace_prefix: String,
    /// IKE version of the connections (`v1`, `v2`).
    #[arg(long, default_value = "v2")]
    ike_version: String,
    /// `dpd.interval` in seconds.
    #[arg(long, default_value_t = 1)]
    interval: u32,
    /// `dpd.timeout` in seconds.
    #[arg(long, default_value_t = 3)]
    timeout: u32,
    /// Number of measured silences.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

/// A router whose own stack drops everything, until dropped.
struct Silence {
    namespace: String,
}

impl Silence {
    const TABLE: &str = "vpnaas_bench_silence";

    fn start(namespace: &str) -> Result<Silence> {
        let rules = format!(
            "table inet {t} {{ chain i {{ type filter hook input priority -10; policy drop; }}; chain o {{ type filter hook output priority -10; policy drop; }}; }}",
            t = Self::TABLE
        );
        let status = std::process::Command::new("ip")
            .args(["netns", "exec", namespace, "nft", &rules])
            .status()?;
        ensure!(status.success(), "cannot silence {namespace}");
        Ok(Silence {
            namespace: namespace.to_string(),
        })
    }
}

impl Drop for Silence {
    fn drop(&mut self) {
        let table = ["delete", "table", "inet", Self::TABLE];
        let _ = std::process::Command::new("ip")
            .args(["netns", "exec", &self.namespace, "nft"])
            .args(table)
            .status();
    }
}

/// Measures; see the module's documentation.
pub async fn run(client: &Client, args: &DpdArgs) -> Result<String> {
    let ike = client
        .create(
            Kind::IkePolicy,
            json!({"name": "bench-dpd-ike", "ike_version": args.ike_version}),
        )
        .await?;
    let ipsec = client
        .create(Kind::IpsecPolicy, json!({"name": "bench-dpd-ipsec"}))
        .await?;
    let sites = [
        lab_site(client, &args.prefix, 1).await?,
        lab_site(client, &args.prefix, 2).await?,
    ];
    let connection = |from: &Site, to: &Site| {
        json!({"vpnservice_id": from.service, "ikepolicy_id": ike["id"], "ipsecpolicy_id": ipsec["id"],
               "peer_address": to.gateway, "peer_id": to.gateway, "psk": "bench-secret", "peer_cidrs": [to.cidr],
               "dpd": {"action": "restart", "interval": args.interval, "timeout": args.timeout}})
    };
    let watched = id(&client
        .create(Kind::SiteConnection, connection(&sites[0], &sites[1]))
        .await?)?;
    let back = id(&client
        .create(Kind::SiteConnection, connection(&sites[1], &sites[0]))
        .await?)?;
    let measured = measure(client, args, &sites, &watched).await;
    for conn in [&watched, &back] {
        client.delete(Kind::SiteConnection, conn).await?;
    }
    for site in &sites {
        client.delete(Kind::VpnService, &site.service).await?;
    }
    client.delete(Kind::IkePolicy, &id(&ike)?).await?;
    client.delete(Kind::IpsecPolicy, &id(&ipsec)?).await?;
    let samples = measured?;
    let s = |d: &Duration| format!("{:.2}", d.as_secs_f64());
    Ok(format!(
        "vpnaas bench dpd: IKE {}, dpd interval {} s, timeout {} s: peer silent (its last answer then) -> DOWN PEER_UNREACHABLE in GET, {} runs\nmin {} s, max {} s\nall: {}",
        args.ike_version,
        args.interval,
        args.timeout,
        samples.len(),
        samples.iter().min().map(s).unwrap_or_default(),
        samples.iter().max().map(s).unwrap_or_default(),
        samples.iter().map(s).collect::<Vec<_>>().join(" ")
    ))
}

fn id(created: &serde_json::Value) -> Result<String> {
    Ok(created["id"].as_str().context("id")?.to_string())
}

async fn measure(
    client: &Client,
    args: &DpdArgs,
    sites: &[Site; 2],
    watched: &str,
) -> Result<Vec<Duration>> {
    let patience = Duration::from_secs(u64::from(args.timeout) + 120);
    let far_host = host_of(&sites[1].cidr)?;
    let mut samples = Vec::new();
    for _ in 0..args.runs {
        wait_for(client, watched, "ACTIVE", patience).await?;
        let _ping = tokio::process::Command::new("ip")
            .args(["netns", "exec", &format!("{}-h1", args.prefix)])
            .args(["ping", "-q", "-i", "0.05", &far_host])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let silence = Silence::start(&format!("{}{}", args.namespace_prefix, sites[1].router))?;
        let silent = Instant::now();
        wait_for(client, watched, "DOWN", patience).await?;
        samples.push(silent.elapsed());
        let shown = client.show(Kind::SiteConnection, watched).await?;
        ensure!(
            shown["status_reason"] == "PEER_UNREACHABLE",
            "DOWN for another reason: {shown}"
        );
        drop(silence);
    }
    Ok(samples)
}

/// The lab's host on a site's subnet (`.10`).
fn host_of(cidr: &str) -> Result<String> {
    let net: ipnet::Ipv4Net = cidr.parse().context("site cidr")?;
    Ok(std::net::Ipv4Addr::from(u32::from(net.network()) + 10).to_string())
}

async fn wait_for(client: &Client, conn: &str, status: &str, patience: Duration) -> Result<()> {
    let started = Instant::now();
    while client.show(Kind::SiteConnection, conn).await?["status"] != status {
        ensure!(
            started.elapsed() < patience,
            "{conn} not {status} after {patience:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
