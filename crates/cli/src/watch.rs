//! Live views of site connections for people: `list --watch` redraws a table as statuses
//! change, `create --wait` follows a new connection until it is up (or says why not),
//! and `events` shows a connection's transitions.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::Value;
use vpnaas_client::Client;
use vpnaas_model::Kind;

use crate::output::{self, Format};

/// Reasons that mean the tunnel will not come up without a change, and what to check.
const FAILURES: &[(&str, &str)] = &[
    (
        "AUTH_FAILED",
        "the two ends disagree on the pre-shared key or on peer_id/local_id",
    ),
    (
        "NO_PROPOSAL_CHOSEN",
        "the two ends' IKE or IPsec policies share no algorithms",
    ),
    (
        "TS_UNACCEPTABLE",
        "the peer does not accept these local/peer CIDRs",
    ),
    (
        "PEER_UNREACHABLE",
        "the peer does not answer at peer_address",
    ),
    (
        "KERNEL_REFUSED",
        "a kernel refused the child SA (its message is in `site-connection events`); on a kernel without ESP run the agent with --data-plane auto or userspace",
    ),
    (
        "NO_AGENT",
        "no live agent hosts the router: start `vpnaas agent` (or `vpnaas all-in-one`) on a gateway host",
    ),
];

const COLUMNS: &[&str] = &[
    "id",
    "name",
    "peer_address",
    "status",
    "reason",
    "since",
    "bytes in/out",
];

fn row(conn: &Value) -> Value {
    let traffic = &conn["traffic"];
    let bytes = match (traffic["bytes_in"].as_u64(), traffic["bytes_out"].as_u64()) {
        (Some(i), Some(o)) => format!("{i}/{o}"),
        _ => String::new(),
    };
    serde_json::json!({
        "id": conn["id"], "name": conn["name"], "peer_address": conn["peer_address"], "status": conn["status"],
        "reason": conn["status_reason"], "since": conn["status_changed_at"], "bytes in/out": bytes,
    })
}

/// Redraws the list every `interval` until interrupted. The interrupt is listened for
/// once, from the start: a Ctrl-C that arrives while the list is being fetched is kept
/// until the loop looks, not lost between two listeners.
pub async fn watch(client: &Client, interval: Duration) -> Result<String> {
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        let listed = tokio::select! {
            listed = client.list(Kind::SiteConnection, &[]) => listed?,
            _ = interrupt.recv() => return Ok(String::new()),
        };
        let rows: Vec<Value> = listed.iter().map(row).collect();
        print!(
            "\x1b[2J\x1b[H{}\n(refreshing every {:?}; Ctrl-C to stop)\n",
            output::list(Format::Table, &rows, COLUMNS),
            interval
        );
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = interrupt.recv() => return Ok(String::new()),
        }
    }
}

/// Follows a connection until it is ACTIVE; fails on a failure reason or at `timeout`.
pub async fn wait_active(client: &Client, id: &str, timeout: Duration) -> Result<Value> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let conn = client.show(Kind::SiteConnection, id).await?;
        let (status, reason) = (
            conn["status"].as_str().unwrap_or(""),
            conn["status_reason"].as_str().unwrap_or(""),
        );
        let now = if reason.is_empty() {
            status.to_string()
        } else {
            format!("{status} ({reason})")
        };
        if now != last {
            eprintln!("{:>7.3} s  {now}", started.elapsed().as_secs_f64());
            last = now;
        }
        if status == "ACTIVE" {
            return Ok(conn);
        }
        if let Some((_, check)) = FAILURES.iter().find(|(r, _)| *r == reason) {
            bail!("connection {id} is {status}: {reason} ({check})");
        }
        if started.elapsed() > timeout {
            bail!("connection {id} is not ACTIVE after {timeout:?} (last: {last})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A connection's transitions as a table.
pub async fn events(client: &Client, format: Format, id: &str) -> Result<String> {
    let body = client
        .get(&format!(
            "/v2.0/{}/{id}/events",
            Kind::SiteConnection.path()
        ))
        .await?;
    let events = body["events"].as_array().cloned().unwrap_or_default();
    Ok(output::list(
        format,
        &events,
        &["time", "from", "to", "reason", "detail"],
    ))
}
