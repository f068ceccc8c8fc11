//! The agents as the server sees them: registration and heartbeats, their liveness on
//! show, and the in-process control plane that answers an agent's calls from this
//! server's store (desired states from `desired`, reports applied by `status`).

use async_trait::async_trait;
use serde_json::Value;
use vpnaas_bus::{ControlPlane, Error as BusError};
use vpnaas_model::FaultClass;
use vpnaas_model::agent::{Agent, Heartbeat, RouterState, StatusReport, TakeoverClaim, new_agent};
use vpnaas_model::network::Router;

use super::desired::router_states;
use super::liveness::Liveness;
use super::notify::{notify, told};
use crate::App;
use crate::error::{ApiError, ApiResult};

/// Marks `alive` on an agent document as it is shown.
pub fn decorate_agent(item: &mut Value, liveness: &Liveness) {
    let alive =
        serde_json::from_value::<Agent>(item.clone()).is_ok_and(|agent| liveness.alive(&agent));
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

/// The bus's view of a failed call: a refusal stays one (the agent would only be refused
/// again), anything else is the server failing.
fn bus_error(e: ApiError) -> BusError {
    match e {
        ApiError::Fault(fault) if fault.class != FaultClass::Unavailable => {
            BusError::Rejected(fault.to_string())
        }
        other => BusError::Unavailable(other.to_string()),
    }
}

#[async_trait]
impl ControlPlane for LocalControlPlane {
    async fn beat(&self, beat: &Heartbeat) -> Result<(), BusError> {
        heartbeat(&self.app, beat).await.map_err(bus_error)
    }

    async fn hosted_routers(&self, host: &str) -> Result<Vec<String>, BusError> {
        let mut tx = self
            .app
            .store
            .read()
            .await
            .map_err(|e| bus_error(e.into()))?;
        let routers: Vec<Router> = tx.load_all().await.map_err(|e| bus_error(e.into()))?;
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
            .map_err(bus_error)
    }

    async fn reports(&self, reports: Vec<StatusReport>) -> Result<(), BusError> {
        super::status::apply_reports(&self.app, &reports)
            .await
            .map_err(bus_error)
    }

    async fn claim(&self, claim: &TakeoverClaim) -> Result<Vec<String>, BusError> {
        super::takeover::claim(&self.app, claim)
            .await
            .map_err(bus_error)
    }
}

/// Registers an agent or records its heartbeat (and where it answers liveness probes);
/// schedules unscheduled routers.
pub async fn heartbeat(app: &App, beat: &Heartbeat) -> ApiResult<()> {
    let host = beat.host.as_str();
    let liveness = Liveness::of(app);
    let mut tx = app.store.begin_observation().await?;
    let agents: Vec<Agent> = tx.as_mut().load_all().await?;
    let (mut agent, revived, moved) = match agents.into_iter().find(|a| a.host == host) {
        Some(mut agent) => {
            let revived = !liveness.alive(&agent);
            agent.beat(liveness.now_ms);
            let moved = agent.ha_address != beat.ha_address;
            (agent, revived, moved)
        }
        None => (
            serde_json::from_value(new_agent(host, liveness.now_ms))?,
            false,
            beat.ha_address.is_some(),
        ),
    };
    agent.ha_address = beat.ha_address;
    tx.save(&agent).await?;
    let places = super::scheduler::places_routers(app);
    let mut orphans = super::scheduler::place_orphans(tx.as_mut(), &liveness, places).await?;
    let routers: Vec<Router> = if revived || moved {
        tx.as_mut().load_all().await?
    } else {
        vec![]
    };
    if revived {
        // What the server said of its routers while it was silent (`AGENT_DOWN`) holds
        // until it reports again: have it look at each of them now.
        orphans.told.extend(
            routers
                .iter()
                .filter(|r| r.role_of(host).is_some())
                .map(|r| told(r, host.to_string())),
        );
        lift_claim_bars(tx.as_mut(), &routers, host).await?;
    }
    if moved {
        // Standbys probe the address their desired state names: have them read it again.
        orphans.told.extend(
            routers
                .iter()
                .filter(|r| r.agent_host.as_deref() == Some(host))
                .filter_map(|r| Some(told(r, r.ha_standby_host.clone()?))),
        );
    }
    tx.commit().await?;
    app.metrics
        .failed_over(orphans.failovers, &orphans.transitions);
    notify(app, orphans.told);
    Ok(())
}

/// An agent back from the dead (a power cut, a restart longer than `agent_down_time`)
/// may claim again what it lost to a claim: it was no partition that took it.
async fn lift_claim_bars(
    tx: &mut dyn vpnaas_store::Transaction,
    routers: &[Router],
    host: &str,
) -> ApiResult<()> {
    for router in routers {
        if router.lease_claimed_from.as_deref() == Some(host) {
            let mut router = router.clone();
            router.lease_claimed_from = None;
            tx.save(&router).await?;
        }
    }
    Ok(())
}
