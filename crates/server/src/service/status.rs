//! Status on the server's side: what agents report becomes each connection's status and
//! reason (a change is a transition in its event history) and rolls up to its service;
//! and where no live agent speaks for a router, the server says so itself: `NO_AGENT`
//! while nobody hosts it, `AGENT_DOWN` when its agent died; of a connection it could not
//! hand to the agent, why (`NO_GATEWAY_FOR_PEER_FAMILY`, `PEER_UNRESOLVED`).

use vpnaas_model::Kind;
use vpnaas_model::agent::{ConnectionEvent, ConnectionStatus, Generations, StatusReport};
use vpnaas_model::enums::{Status, StatusReason};
use vpnaas_model::network::Router;
use vpnaas_model::site_connection::{KeyRotation, SiteConnection};
use vpnaas_model::vpn_service::VpnService;
use vpnaas_store::Transaction;

use crate::App;
use crate::clock::rfc3339;
use crate::error::ApiResult;

/// Whether a live agent speaks for a router's VPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hosting {
    /// Its active agent is alive (or has not yet had the time to prove otherwise): its
    /// reports are the truth.
    Live,
    /// No agent holds it: none was alive when it was placed.
    Unscheduled,
    /// Its active agent stopped beating and no live agent could take over.
    Orphaned,
}

impl Hosting {
    /// What the server says of the router's connections, if anything.
    fn verdict(self) -> Option<(StatusReason, &'static str)> {
        match self {
            Hosting::Live => None,
            Hosting::Unscheduled => Some((
                StatusReason::NoAgent,
                "no live agent hosts the router: start an agent on a gateway host",
            )),
            Hosting::Orphaned => Some((
                StatusReason::AgentDown,
                "the router's agent stopped answering and no live agent can take over",
            )),
        }
    }
}

/// The reason a new connection or service starts with on a router hosted this way.
pub fn initial_reason(hosting: Hosting) -> Option<StatusReason> {
    hosting.verdict().map(|(reason, _)| reason)
}

/// Records what the agent saw of one connection: a change of status or reason becomes a
/// transition in its event history, and so does what it did of a key rotation (see
/// [`rotation_events`]); counters are kept without an event.
async fn record_observation(
    tx: &mut dyn Transaction,
    conn: &mut SiteConnection,
    observed: &ConnectionStatus,
    now_ms: u64,
) -> ApiResult<Vec<ConnectionEvent>> {
    let transition = conn.status != observed.status || conn.status_reason != Some(observed.reason);
    let rotation = rotation_events(&conn.key_rotation, observed);
    if !transition && conn.traffic == observed.traffic && rotation.is_empty() {
        return Ok(vec![]);
    }
    let time = rfc3339(now_ms);
    let mut recorded = Vec::new();
    if transition {
        recorded.push(ConnectionEvent {
            time: time.clone(),
            from: conn.status,
            to: observed.status,
            reason: observed.reason,
            detail: observed.detail.clone(),
        });
        conn.status = observed.status;
        conn.status_reason = Some(observed.reason);
        conn.status_changed_at = Some(time.clone());
    }
    for (reason, detail) in rotation {
        recorded.push(ConnectionEvent {
            time: time.clone(),
            from: observed.status,
            to: observed.status,
            reason,
            detail,
        });
    }
    for event in &recorded {
        tx.append_event(&conn.id, serde_json::to_string(event)?)
            .await?;
    }
    let rotation = &mut conn.key_rotation;
    rotation.credentials_loaded = rotation
        .credentials_loaded
        .max(observed.applied.credentials);
    rotation.reauthenticated = rotation.reauthenticated.max(observed.applied.reauth);
    conn.traffic = observed.traffic.clone();
    tx.save(conn).await?;
    Ok(recorded)
}

/// The events an agent's report of a key rotation makes, beside the transitions: new
/// credentials its daemon took (`CREDENTIALS_LOADED`), a re-authentication it concluded
/// with the tunnel up (`REAUTHENTICATED`; one that failed is told by the transition to
/// `DOWN` and its reason). Each is said once: the report repeats what it applied.
fn rotation_events(
    known: &KeyRotation,
    observed: &ConnectionStatus,
) -> Vec<(StatusReason, String)> {
    let applied = observed.applied;
    let mut events = Vec::new();
    if applied.credentials > known.credentials_loaded {
        events.push((
            StatusReason::CredentialsLoaded,
            format!(
                "new pre-shared key (generation {}) loaded without a bounce: the SAs up keep \
                 carrying traffic, the next authentication uses it",
                applied.credentials
            ),
        ));
    }
    if applied.reauth > known.reauthenticated && observed.status == Status::Active {
        events.push((
            StatusReason::Reauthenticated,
            format!(
                "re-authenticated with the current credentials (re-authentication {})",
                applied.reauth
            ),
        ));
    }
    events
}

/// The router's agent died: what its connections do is unknown until an agent reports
/// again, so each one not administratively down becomes DOWN (`AGENT_DOWN`, an event in
/// its history) and its services DOWN.
pub async fn mark_agent_down(
    tx: &mut dyn Transaction,
    router_id: &str,
    detail: &str,
    now_ms: u64,
) -> ApiResult<Vec<ConnectionEvent>> {
    let outcome = Outcome::unattended(StatusReason::AgentDown);
    mark_router(tx, router_id, outcome, detail, now_ms).await
}

/// Says of a router that no live agent speaks for it (`NO_AGENT` or `AGENT_DOWN`), on
/// each of its connections not administratively down and on its services; nothing for
/// a router that is live.
pub async fn mark_hosting(
    tx: &mut dyn Transaction,
    router_id: &str,
    hosting: Hosting,
    now_ms: u64,
) -> ApiResult<Vec<ConnectionEvent>> {
    match hosting.verdict() {
        Some((reason, detail)) => {
            mark_router(tx, router_id, Outcome::unattended(reason), detail, now_ms).await
        }
        None => Ok(vec![]),
    }
}

/// Neutron no longer has the router (`inventory = "neutron"`): its connections not
/// administratively down become `DOWN` and its services `ERROR`, with `ROUTER_DELETED`.
pub async fn mark_router_gone(
    tx: &mut dyn Transaction,
    router_id: &str,
    detail: &str,
    now_ms: u64,
) -> ApiResult<Vec<ConnectionEvent>> {
    let outcome = Outcome {
        reason: StatusReason::RouterDeleted,
        connection: |_| Status::Down,
        service: |_| Status::Error,
    };
    mark_router(tx, router_id, outcome, detail, now_ms).await
}

/// What the server says of a router's connections and services when it speaks for them.
struct Outcome {
    reason: StatusReason,
    connection: fn(Status) -> Status,
    service: fn(Status) -> Status,
}

impl Outcome {
    /// Nobody attends to them: what was never up stays pending, the rest is down.
    fn unattended(reason: StatusReason) -> Outcome {
        Outcome {
            reason,
            connection: unattended,
            service: unattended,
        }
    }
}

async fn mark_router(
    tx: &mut dyn Transaction,
    router_id: &str,
    outcome: Outcome,
    detail: &str,
    now_ms: u64,
) -> ApiResult<Vec<ConnectionEvent>> {
    let mut transitions = Vec::new();
    for (mut service, connections) in vpn_of(tx, router_id).await? {
        for mut conn in connections {
            if conn.status_reason == Some(StatusReason::AdminDown) {
                continue;
            }
            let verdict = ConnectionStatus {
                id: conn.id.clone(),
                status: (outcome.connection)(conn.status),
                reason: outcome.reason,
                detail: detail.into(),
                traffic: conn.traffic.clone(),
                applied: Generations::default(),
            };
            transitions.extend(record_observation(tx, &mut conn, &verdict, now_ms).await?);
        }
        let status = (outcome.service)(service.status);
        if (service.status, service.status_reason) != (status, Some(outcome.reason)) {
            service.status = status;
            service.status_reason = Some(outcome.reason);
            tx.save(&service).await?;
        }
    }
    Ok(transitions)
}

/// A router's VPN services, each with its connections.
async fn vpn_of(
    tx: &mut dyn Transaction,
    router_id: &str,
) -> ApiResult<Vec<(VpnService, Vec<SiteConnection>)>> {
    let services: Vec<VpnService> = tx.load_referrers(Kind::Router, router_id).await?;
    let mut vpn = Vec::with_capacity(services.len());
    for service in services {
        let connections = tx.load_referrers(Kind::VpnService, &service.id).await?;
        vpn.push((service, connections));
    }
    Ok(vpn)
}

/// The status of an object nobody attends to: one never brought up is still pending;
/// one that was up is down.
fn unattended(status: Status) -> Status {
    match status {
        Status::PendingCreate => Status::PendingCreate,
        _ => Status::Down,
    }
}

/// A router just found a live agent: the server's `NO_AGENT` no longer holds. Its
/// connections and services keep their status, without a reason, until the agent
/// reports.
pub async fn clear_no_agent(tx: &mut dyn Transaction, router_id: &str) -> ApiResult<()> {
    for (mut service, connections) in vpn_of(tx, router_id).await? {
        for mut conn in connections {
            if conn.status_reason == Some(StatusReason::NoAgent) {
                conn.status_reason = None;
                tx.save(&conn).await?;
            }
        }
        if service.status_reason == Some(StatusReason::NoAgent) {
            service.status_reason = None;
            tx.save(&service).await?;
        }
    }
    Ok(())
}

/// What the server says of a connection it left out of the router's desired state
/// because no agent could run it (`desired::tunnel_ends`): `ERROR`, with the reason.
fn unplaceable(router: &Router, conn: &SiteConnection) -> Option<ConnectionStatus> {
    let why = super::desired::tunnel_ends(router, conn).err()?;
    Some(ConnectionStatus {
        id: conn.id.clone(),
        status: Status::Error,
        reason: why.reason,
        detail: why.detail,
        traffic: None,
        applied: Generations::default(),
    })
}

/// Applies agents' reports in one transaction (a full resync sends its reports together:
/// one write for many routers). Each report sets connection statuses, then each
/// service's status (ACTIVE when one of its connections is, ERROR when its daemon cannot
/// run, DOWN otherwise). Statuses are observations, not desired state: revisions do not
/// move.
pub async fn apply_reports(app: &App, reports: &[StatusReport]) -> ApiResult<()> {
    if app.settings.inventory == crate::InventoryMode::Neutron {
        crate::neutron::ha::follow_primaries(app, reports).await?;
    }
    let mut tx = app.store.begin_observation().await?;
    let now_ms = app.clock.now_ms();
    let mut applied = Vec::with_capacity(reports.len());
    for report in reports {
        applied.push(apply_report(tx.as_mut(), report, now_ms).await?);
    }
    tx.commit().await?;
    for transitions in applied.iter().flatten() {
        app.metrics.report_applied(transitions);
    }
    Ok(())
}

/// One report; its transitions, or `None` when it was refused (not from the router's
/// lease holder under the current epoch).
async fn apply_report(
    tx: &mut dyn Transaction,
    report: &StatusReport,
    now_ms: u64,
) -> ApiResult<Option<Vec<ConnectionEvent>>> {
    let Some(router) = tx.load::<Router>(&report.router_id).await? else {
        return Ok(None);
    };
    // Fencing: only the lease holder under the current epoch speaks for the router.
    if router.agent_host.as_deref() != Some(report.host.as_str())
        || router.lease_epoch != report.lease_epoch
    {
        tracing::debug!(router = %router.id, host = %report.host, epoch = report.lease_epoch, "report from a former holder refused");
        return Ok(None);
    }
    let mut transitions = Vec::new();
    for (service, connections) in vpn_of(tx, &router.id).await? {
        let (mut any_active, mut any_enabled) = (false, false);
        for mut conn in connections {
            any_enabled |= conn.admin_state_up;
            let observed = report.connections.iter().find(|c| c.id == conn.id);
            let status = observed.map_or(Status::Down, |c| c.status);
            any_active |= status == Status::Active;
            let verdict = match observed {
                Some(observed) => Some(observed.clone()),
                None => unplaceable(&router, &conn),
            };
            if let Some(verdict) = verdict {
                transitions.extend(record_observation(tx, &mut conn, &verdict, now_ms).await?);
            }
        }
        let rolled_up = if any_active {
            (Status::Active, None)
        } else if !report.daemon_running && service.admin_state_up && any_enabled {
            (Status::Error, Some(StatusReason::DaemonDown))
        } else {
            (Status::Down, None)
        };
        if (service.status, service.status_reason) != rolled_up {
            let mut service = service;
            (service.status, service.status_reason) = rolled_up;
            tx.save(&service).await?;
        }
    }
    tracing::debug!(router = %report.router_id, revision = report.applied_revision, host = %report.host, "status report applied");
    Ok(Some(transitions))
}
