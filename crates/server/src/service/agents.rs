//! The server's side of the bus: agent registration and heartbeats, scheduling routers to
//! live agents, building a router's whole desired state, applying status reports, and
//! bumping a router's revision (in the same transaction as the change) so that its agent
//! is told to fetch it.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use ipnet::IpNet;
use serde_json::Value;
use vpnaas_bus::{ControlPlane, Error as BusError};
use vpnaas_model::Kind;
use vpnaas_model::agent::{
    Agent, ConnectionEvent, ConnectionSpec, ConnectionStatus, PortAddress, RouterChanged,
    RouterState, StatusReport, new_agent,
};
use vpnaas_model::endpoint_group::EndpointGroup;
use vpnaas_model::enums::{Status, StatusReason};
use vpnaas_model::network::{Router, Subnet};
use vpnaas_model::policy::{IkePolicy, IpsecPolicy};
use vpnaas_model::site_connection::SiteConnection;
use vpnaas_model::vpn_service::VpnService;
use vpnaas_store::Transaction;

use crate::App;
use crate::error::{ApiError, ApiResult};

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    now_ms() / 1000
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// A router whose agent must be told it changed (sent after the transaction commits).
#[derive(Debug, Clone)]
pub struct Touched {
    /// Hosting agent.
    pub host: String,
    /// What changed.
    pub event: RouterChanged,
}

/// Tells the hosting agents, after commit, that their routers changed.
pub fn notify(app: &App, touched: Vec<Touched>) {
    for t in touched {
        app.notifier.router_changed(&t.host, t.event);
    }
}

/// Bumps a router's revision inside the caller's transaction.
pub async fn bump(tx: &mut dyn Transaction, router_id: &str) -> ApiResult<Vec<Touched>> {
    let Some(mut router) = tx.load::<Router>(router_id).await? else {
        return Ok(vec![]);
    };
    router.standard.touch(&super::timestamp());
    tx.save(&router).await?;
    Ok(touched(&router))
}

/// The notifications for a router already saved at its new revision: one per agent
/// holding it (an HA router's standby too).
pub fn touched(router: &Router) -> Vec<Touched> {
    router
        .hosts()
        .map(|host| told(router, host.to_string()))
        .collect()
}

/// The notification of one agent (e.g. one that just lost the router) for a router saved
/// at its new revision.
pub fn told(router: &Router, host: String) -> Touched {
    Touched {
        host,
        event: RouterChanged {
            router_id: router.id.clone(),
            revision: router.standard.revision_number,
        },
    }
}

/// Marks `alive` on an agent document as it is shown.
pub fn decorate_agent(item: &mut Value, down_after: u64) {
    let alive = serde_json::from_value::<Agent>(item.clone())
        .is_ok_and(|agent| agent.alive_at(now_ms(), down_after));
    item["alive"] = Value::Bool(alive);
}

/// The in-process control plane: agent calls answered by this server's store.
pub struct LocalControlPlane {
    app: App,
}

impl LocalControlPlane {
    /// A control plane over the server's state.
    pub fn new(app: App) -> Self {
        LocalControlPlane { app }
    }
}

fn unavailable(e: ApiError) -> BusError {
    BusError::Unavailable(e.to_string())
}

#[async_trait]
impl ControlPlane for LocalControlPlane {
    async fn heartbeat(&self, host: &str) -> Result<(), BusError> {
        heartbeat(&self.app, host).await.map_err(unavailable)
    }

    async fn hosted_routers(&self, host: &str) -> Result<Vec<String>, BusError> {
        let mut tx = self
            .app
            .store
            .read()
            .await
            .map_err(|e| unavailable(e.into()))?;
        let routers: Vec<Router> = tx.load_all().await.map_err(|e| unavailable(e.into()))?;
        Ok(routers
            .into_iter()
            .filter(|r| r.role_of(host).is_some())
            .map(|r| r.id)
            .collect())
    }

    async fn router_states(
        &self,
        host: &str,
        router_ids: &[String],
    ) -> Result<Vec<RouterState>, BusError> {
        router_states(&self.app, host, router_ids)
            .await
            .map_err(unavailable)
    }

    async fn reports(&self, reports: Vec<StatusReport>) -> Result<(), BusError> {
        apply_reports(&self.app, &reports)
            .await
            .map_err(unavailable)
    }
}

/// Registers an agent or records its heartbeat; schedules unscheduled routers.
pub async fn heartbeat(app: &App, host: &str) -> ApiResult<()> {
    let mut tx = app.store.begin_observation().await?;
    let agents: Vec<Agent> = tx.as_mut().load_all().await?;
    let agent = match agents.into_iter().find(|a| a.host == host) {
        Some(mut agent) => {
            agent.beat(now_ms());
            agent
        }
        None => serde_json::from_value(new_agent(host, now_ms()))?,
    };
    tx.save(&agent).await?;
    let orphans =
        super::scheduler::place_orphans(tx.as_mut(), app.settings.agent_down_time, app.started_at)
            .await?;
    tx.commit().await?;
    app.metrics
        .failed_over(orphans.failovers, &orphans.transitions);
    notify(app, orphans.told);
    Ok(())
}

/// Builds the desired states for `host` of those of `router_ids` it holds (as standby:
/// the same state, marked so), from one snapshot; objects several routers share (their
/// policies, the external subnet) are read once.
pub async fn router_states(
    app: &App,
    host: &str,
    router_ids: &[String],
) -> ApiResult<Vec<RouterState>> {
    let mut tx = app.store.read().await?;
    let mut reads = Reads::default();
    let mut states = Vec::with_capacity(router_ids.len());
    for router_id in router_ids {
        states.extend(router_state(tx.as_mut(), &mut reads, host, router_id).await?);
    }
    Ok(states)
}

/// One router's desired state for `host`, if it holds the router.
async fn router_state(
    tx: &mut dyn Transaction,
    reads: &mut Reads,
    host: &str,
    router_id: &str,
) -> ApiResult<Option<RouterState>> {
    let Some(router) = tx.load::<Router>(router_id).await? else {
        return Ok(None);
    };
    let Some(role) = router.role_of(host) else {
        return Ok(None);
    };
    let mut gateway = Vec::new();
    if let Some(info) = &router.external_gateway_info {
        for fixed in &info.external_fixed_ips {
            gateway.push(
                port_address(
                    tx,
                    reads,
                    &info.network_id,
                    &fixed.subnet_id,
                    &fixed.ip_address,
                )
                .await?,
            );
        }
    }
    let mut interfaces = Vec::new();
    for interface in &router.interfaces {
        let Some(subnet) = reads.load::<Subnet>(tx, &interface.subnet_id).await? else {
            continue;
        };
        interfaces.push(
            port_address(
                tx,
                reads,
                &subnet.network_id,
                &subnet.id,
                &interface.ip_address,
            )
            .await?,
        );
    }
    let services: Vec<VpnService> = tx.load_referrers(Kind::Router, router_id).await?;
    let mut connections = Vec::new();
    for service in &services {
        for conn in tx
            .load_referrers::<SiteConnection>(Kind::VpnService, &service.id)
            .await?
        {
            connections.extend(connection_spec(tx, reads, &router, service, conn).await?);
        }
    }
    Ok(Some(RouterState {
        router_id: router.id.clone(),
        revision: router.standard.revision_number,
        admin_state_up: router.admin_state_up,
        gateway,
        enable_snat: router
            .external_gateway_info
            .as_ref()
            .is_some_and(|g| g.enable_snat),
        interfaces,
        services: services
            .iter()
            .map(|s| (s.id.clone(), s.admin_state_up))
            .collect(),
        connections,
        driver: services.iter().find_map(|s| s.provider),
        ha: router.ha,
        role,
        lease_epoch: router.lease_epoch,
    }))
}

async fn port_address(
    tx: &mut dyn Transaction,
    reads: &mut Reads,
    network_id: &str,
    subnet_id: &str,
    ip: &str,
) -> ApiResult<PortAddress> {
    let subnet: Subnet = reads
        .load(tx, subnet_id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("subnet {subnet_id} vanished")))?;
    let cidr: IpNet = subnet
        .cidr
        .parse()
        .map_err(|_| ApiError::Internal("stored cidr".into()))?;
    let address = IpNet::new(
        ip.parse()
            .map_err(|_| ApiError::Internal("stored address".into()))?,
        cidr.prefix_len(),
    )
    .map_err(|_| ApiError::Internal("prefix".into()))?;
    Ok(PortAddress {
        network_id: network_id.to_string(),
        subnet_id: subnet_id.to_string(),
        address,
        gateway: subnet.gateway_ip.and_then(|g| g.parse().ok()),
    })
}

fn cidrs(texts: &[String]) -> Vec<IpNet> {
    texts
        .iter()
        .filter_map(|c| c.parse::<IpNet>().ok())
        .map(|c| c.trunc())
        .collect()
}

async fn connection_spec(
    tx: &mut dyn Transaction,
    reads: &mut Reads,
    router: &Router,
    service: &VpnService,
    conn: SiteConnection,
) -> ApiResult<Option<ConnectionSpec>> {
    let (Some(ike), Some(ipsec)) = (
        reads.load::<IkePolicy>(tx, &conn.ikepolicy_id).await?,
        reads.load::<IpsecPolicy>(tx, &conn.ipsecpolicy_id).await?,
    ) else {
        return Ok(None);
    };
    let (local_cidrs, peer_cidrs) = match &service.subnet_id {
        Some(subnet_id) => {
            let subnet: Option<Subnet> = reads.load(tx, subnet_id).await?;
            (
                subnet.map(|s| cidrs(&[s.cidr])).unwrap_or_default(),
                cidrs(&conn.peer_cidrs),
            )
        }
        None => {
            let mut local = Vec::new();
            if let Some(group) = load_group(tx, reads, &conn.local_ep_group_id).await? {
                for subnet_id in &group.endpoints {
                    if let Some(subnet) = reads.load::<Subnet>(tx, subnet_id).await? {
                        local.extend(cidrs(&[subnet.cidr]));
                    }
                }
            }
            let peer = load_group(tx, reads, &conn.peer_ep_group_id)
                .await?
                .map(|g| cidrs(&g.endpoints))
                .unwrap_or_default();
            (local, peer)
        }
    };
    let Ok(peer_address) = conn.peer_address.parse::<std::net::IpAddr>() else {
        return Ok(None);
    };
    let Some(local_address) = router.gateway_ip(if peer_address.is_ipv4() { 4 } else { 6 }) else {
        return Ok(None);
    };
    let local_id = if conn.local_id.is_empty() {
        local_address.to_string()
    } else {
        conn.local_id.clone()
    };
    Ok(Some(ConnectionSpec {
        enabled: service.admin_state_up && conn.admin_state_up && router.admin_state_up,
        service_id: service.id.clone(),
        local_address,
        local_id,
        peer_address,
        peer_id: conn.peer_id.clone(),
        psk: conn.psk.clone(),
        local_cidrs,
        peer_cidrs,
        ike,
        ipsec,
        dpd: conn.dpd.clone(),
        initiator: conn.initiator,
        mtu: conn.mtu,
        id: conn.id,
    }))
}

async fn load_group(
    tx: &mut dyn Transaction,
    reads: &mut Reads,
    id: &Option<String>,
) -> ApiResult<Option<EndpointGroup>> {
    match id {
        Some(id) => reads.load(tx, id).await,
        None => Ok(None),
    }
}

/// The objects read while building one desired state, each fetched once: a router's
/// connections usually share their policies and subnets.
#[derive(Default)]
struct Reads(HashMap<(Kind, String), Option<String>>);

impl Reads {
    async fn load<R: vpnaas_model::Resource>(
        &mut self,
        tx: &mut dyn Transaction,
        id: &str,
    ) -> ApiResult<Option<R>> {
        let key = (R::KIND, id.to_string());
        if !self.0.contains_key(&key) {
            let body = tx.get(R::KIND, id).await?.map(|r| r.body);
            self.0.insert(key.clone(), body);
        }
        match self.0.get(&key).and_then(Option::as_ref) {
            Some(body) => Ok(Some(serde_json::from_str(body)?)),
            None => Ok(None),
        }
    }
}

/// Records what the agent saw of one connection: a change of status or reason becomes a
/// transition in its event history; counters are kept without an event.
async fn record_observation(
    tx: &mut dyn Transaction,
    conn: &mut SiteConnection,
    observed: &ConnectionStatus,
) -> ApiResult<Option<ConnectionEvent>> {
    let transition = conn.status != observed.status || conn.status_reason != Some(observed.reason);
    if !transition && conn.traffic == observed.traffic {
        return Ok(None);
    }
    let mut recorded = None;
    if transition {
        let time = rfc3339_now();
        let event = ConnectionEvent {
            time: time.clone(),
            from: conn.status,
            to: observed.status,
            reason: observed.reason,
            detail: observed.detail.clone(),
        };
        tx.append_event(&conn.id, serde_json::to_string(&event)?)
            .await?;
        conn.status = observed.status;
        conn.status_reason = Some(observed.reason);
        conn.status_changed_at = Some(time);
        recorded = Some(event);
    }
    conn.traffic = observed.traffic.clone();
    tx.save(conn).await?;
    Ok(recorded)
}

/// The router's agent died: what its connections do is unknown until the agent taking
/// over reports, so each one not administratively down becomes DOWN (`AGENT_DOWN`, an
/// event in its history) and its services DOWN.
pub async fn mark_agent_down(
    tx: &mut dyn Transaction,
    router_id: &str,
) -> ApiResult<Vec<ConnectionEvent>> {
    let mut transitions = Vec::new();
    for mut service in tx
        .load_referrers::<VpnService>(Kind::Router, router_id)
        .await?
    {
        for mut conn in tx
            .load_referrers::<SiteConnection>(Kind::VpnService, &service.id)
            .await?
        {
            if conn.status_reason == Some(StatusReason::AdminDown) {
                continue;
            }
            let unknown = ConnectionStatus {
                id: conn.id.clone(),
                status: Status::Down,
                reason: StatusReason::AgentDown,
                detail: "the router's agent stopped answering; another agent takes over".into(),
                traffic: conn.traffic.clone(),
            };
            transitions.extend(record_observation(tx, &mut conn, &unknown).await?);
        }
        if service.status != Status::Down {
            service.status = Status::Down;
            tx.save(&service).await?;
        }
    }
    Ok(transitions)
}

/// Now in RFC 3339 (UTC, milliseconds).
pub fn rfc3339_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    now.format(&format).unwrap_or_default()
}

/// Applies agents' reports in one transaction (a full resync sends its reports together:
/// one write for many routers). Each report sets connection statuses, then each
/// service's status (ACTIVE when one of its connections is, ERROR when its daemon cannot
/// run, DOWN otherwise). Statuses are observations, not desired state: revisions do not
/// move.
pub async fn apply_reports(app: &App, reports: &[StatusReport]) -> ApiResult<()> {
    let mut tx = app.store.begin_observation().await?;
    let mut applied = Vec::with_capacity(reports.len());
    for report in reports {
        applied.push(apply_report(tx.as_mut(), report).await?);
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
    for service in tx
        .load_referrers::<VpnService>(Kind::Router, &router.id)
        .await?
    {
        let (mut any_active, mut any_enabled) = (false, false);
        for mut conn in tx
            .load_referrers::<SiteConnection>(Kind::VpnService, &service.id)
            .await?
        {
            any_enabled |= conn.admin_state_up;
            let observed = report.connections.iter().find(|c| c.id == conn.id);
            let status = observed.map_or(Status::Down, |c| c.status);
            any_active |= status == Status::Active;
            if let Some(observed) = observed {
                transitions.extend(record_observation(tx, &mut conn, observed).await?);
            }
        }
        let status = if any_active {
            Status::Active
        } else if !report.daemon_running && service.admin_state_up && any_enabled {
            Status::Error
        } else {
            Status::Down
        };
        if service.status != status {
            let mut service = service;
            service.status = status;
            tx.save(&service).await?;
        }
    }
    tracing::debug!(router = %report.router_id, revision = report.applied_revision, host = %report.host, "status report applied");
    Ok(Some(transitions))
}
