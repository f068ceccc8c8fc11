//! `vpnaas router migrate-driver ROUTER --to strongswan|libreswan`: asks the server to move
//! a router's VPN to the other IKE daemon, then follows its connections until every
//! enabled one is `ACTIVE` again, printing each change with the time since the request.
//! When they are not all back within `--timeout` it moves the router back to the driver it
//! came from and fails.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Arg, ArgMatches, Command};
use serde_json::Value;
use vpnaas_client::Client;
use vpnaas_model::Kind;
use vpnaas_model::enums::DriverKind;

/// The subcommand.
pub fn command() -> Command {
    Command::new("migrate-driver")
        .about("Move a router's VPN to another IKE daemon (admin); rolls back on failure")
        .arg(Arg::new("router").value_name("ROUTER").required(true))
        .arg(
            Arg::new("to")
                .long("to")
                .required(true)
                .value_parser(crate::flags::wire_enum(DriverKind::ALL, DriverKind::parse)),
        )
        .arg(
            Arg::new("timeout")
                .long("timeout")
                .value_name("SECONDS")
                .default_value("60")
                .value_parser(clap::value_parser!(u64)),
        )
}

/// Runs it; the result is the closing line.
pub async fn run(client: &Client, args: &ArgMatches) -> Result<String> {
    let router = crate::resource_cmd::resolve(
        client,
        Kind::Router,
        args.get_one::<String>("router").context("router")?,
    )
    .await?;
    let to = *args.get_one::<DriverKind>("to").context("--to")?;
    let timeout = Duration::from_secs(args.get_one::<u64>("timeout").copied().unwrap_or(60));
    let started = Instant::now();
    let answer = client.migrate_router_driver(&router, to.as_str()).await?;
    let from = answer["previous_driver"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    println!(
        "{:>9.1} ms  migration {from} → {to} accepted ({} services)",
        ms(started),
        answer["services"]
    );
    if follow(client, &router, started, timeout).await? {
        return Ok(format!(
            "router {router} runs on {to}: every connection ACTIVE after {:.1} ms",
            ms(started)
        ));
    }
    println!(
        "{:>9.1} ms  not ACTIVE within {timeout:?}: rolling back to {from}",
        ms(started)
    );
    client.migrate_router_driver(&router, &from).await?;
    bail!("migration of router {router} to {to} failed; rolled back to {from}")
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Prints every status change of the router's enabled connections; true once all are
/// ACTIVE (after the agent took the change), false at the timeout.
async fn follow(
    client: &Client,
    router: &str,
    started: Instant,
    timeout: Duration,
) -> Result<bool> {
    let mut last: HashMap<String, String> = HashMap::new();
    let mut seen_down = false;
    while started.elapsed() < timeout {
        let connections = router_connections(client, router).await?;
        for conn in &connections {
            let shown = format!(
                "{} ({})",
                conn["status"].as_str().unwrap_or("?"),
                conn["status_reason"].as_str().unwrap_or("")
            );
            let name = conn["name"].as_str().unwrap_or_default().to_string();
            if last.get(&name) != Some(&shown) {
                println!("{:>9.1} ms  {name}: {shown}", ms(started));
                last.insert(name, shown);
            }
        }
        let all_active = connections.iter().all(|c| c["status"] == "ACTIVE");
        seen_down |= !all_active;
        // The old daemon's ACTIVE may still show before the agent acts: a migration is
        // done when the connections went down and came back, or stayed up for a second.
        if all_active && (seen_down || started.elapsed() > Duration::from_secs(1)) {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(false)
}

async fn router_connections(client: &Client, router: &str) -> Result<Vec<Value>> {
    let services = client
        .list(Kind::VpnService, &[("router_id", router)])
        .await?;
    let mut out = Vec::new();
    for service in services {
        let id = service["id"].as_str().unwrap_or_default();
        for conn in client
            .list(Kind::SiteConnection, &[("vpnservice_id", id)])
            .await?
        {
            if conn["admin_state_up"] == true {
                out.push(conn);
            }
        }
    }
    Ok(out)
}
