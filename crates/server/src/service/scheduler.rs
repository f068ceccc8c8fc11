//! Where routers run: on the live agent with the fewest routers. An agent is live while
//! its last heartbeat is at most `agent_down_time` old; the routers of an agent that
//! stopped beating move to live agents at the next heartbeat of any of them (the moved
//! router's old agent, should it come back, drops it at its next resync: it is not its
//! host any more). Admins move routers by hand with Neutron's VPN agent scheduler API.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use vpnaas_model::agent::{Agent, RouterChanged};
use vpnaas_model::network::Router;
use vpnaas_model::{Error as Fault, Kind};
use vpnaas_store::Transaction;

use super::agents::{Touched, notify, now, touched};
use crate::App;
use crate::auth::Caller;
use crate::error::ApiResult;

/// Live agents and how many routers each hosts.
pub struct Placement {
    load: BTreeMap<String, usize>,
}

impl Placement {
    /// The live agents (admin state up, recent heartbeat) and their loads in `routers`.
    pub fn of(agents: &[Agent], routers: &[Router], down_after: u64) -> Placement {
        let now = now();
        let mut load: BTreeMap<String, usize> = agents
            .iter()
            .filter(|a| a.admin_state_up && now.saturating_sub(a.heartbeat_at) <= down_after)
            .map(|a| (a.host.clone(), 0))
            .collect();
        for host in routers.iter().filter_map(|r| r.agent_host.as_ref()) {
            if let Some(count) = load.get_mut(host) {
                *count += 1;
            }
        }
        Placement { load }
    }

    /// Loads agents and routers from the transaction.
    pub async fn load(
        tx: &mut dyn Transaction,
        down_after: u64,
    ) -> ApiResult<(Placement, Vec<Router>)> {
        let agents: Vec<Agent> = tx.load_all().await?;
        let routers: Vec<Router> = tx.load_all().await?;
        Ok((Placement::of(&agents, &routers, down_after), routers))
    }

    /// Whether `host` is a live agent.
    pub fn is_live(&self, host: &str) -> bool {
        self.load.contains_key(host)
    }

    /// The least loaded live agent (ties: by host name), counted as hosting one more.
    pub fn place(&mut self) -> Option<String> {
        let host = self
            .load
            .iter()
            .min_by_key(|(host, count)| (**count, (*host).clone()))
            .map(|(host, _)| host.clone())?;
        *self.load.entry(host.clone()).or_default() += 1;
        Some(host)
    }
}

/// Places routers without a live agent on live agents: unscheduled ones always, those of
/// a dead agent once this server has run for `down_after` (after a server outage every
/// agent's heartbeat looks old until it beats again: nothing must move before they could).
/// Returns who must be told: the new host, and the old one (so a partitioned agent lets go).
pub async fn place_orphans(
    tx: &mut dyn Transaction,
    down_after: u64,
    server_up_since: u64,
) -> ApiResult<Vec<Touched>> {
    let (mut placement, routers) = Placement::load(tx, down_after).await?;
    let may_move = now().saturating_sub(server_up_since) >= down_after;
    let mut touched_hosts = Vec::new();
    for mut router in routers {
        let needs_host = match router.agent_host.as_deref() {
            None => true,
            Some(host) => may_move && !placement.is_live(host),
        };
        if !needs_host {
            continue;
        }
        let Some(host) = placement.place() else { break };
        let old = router.agent_host.replace(host.clone());
        router.revision_number += 1;
        tx.save(&router).await?;
        if let Some(old) = old {
            tracing::warn!(router = %router.id, from = %old, to = %host, "agent down: router moved");
            touched_hosts.push(old_host_told(&router, old));
        }
        touched_hosts.extend(touched(&router));
    }
    Ok(touched_hosts)
}

/// The hint for a router's previous host (so an agent cut off from the heartbeat but still
/// running lets go of it).
fn old_host_told(router: &Router, old: String) -> Touched {
    Touched {
        host: old,
        event: RouterChanged {
            router_id: router.id.clone(),
            revision: router.revision_number,
        },
    }
}

async fn agent_by_id(tx: &mut dyn Transaction, agent_id: &str) -> ApiResult<Agent> {
    tx.load::<Agent>(agent_id)
        .await?
        .ok_or_else(|| Fault::resource_not_found(Kind::Agent, agent_id).into())
}

/// `GET /v2.0/agents/{id}/vpn-routers`.
pub async fn routers_of_agent(app: &App, caller: &Caller, agent_id: &str) -> ApiResult<Value> {
    caller.require_admin("get_vpn-routers")?;
    let mut tx = app.store.read().await?;
    let agent = agent_by_id(tx.as_mut(), agent_id).await?;
    let routers: Vec<Router> = tx.as_mut().load_all().await?;
    let hosted: Vec<&Router> = routers
        .iter()
        .filter(|r| r.agent_host.as_deref() == Some(agent.host.as_str()))
        .collect();
    Ok(json!({ "routers": hosted }))
}

/// `GET /v2.0/routers/{id}/vpn-agents`.
pub async fn agents_of_router(app: &App, caller: &Caller, router_id: &str) -> ApiResult<Value> {
    caller.require_admin("get_vpn-agents")?;
    let mut tx = app.store.read().await?;
    let router: Router = tx
        .as_mut()
        .load(router_id)
        .await?
        .ok_or_else(|| Fault::resource_not_found(Kind::Router, router_id))?;
    let agents: Vec<Agent> = tx.as_mut().load_all().await?;
    let hosting: Vec<Value> = agents
        .into_iter()
        .filter(|a| router.agent_host.as_deref() == Some(a.host.as_str()))
        .map(|a| {
            let mut item = serde_json::to_value(a).unwrap_or_default();
            super::agents::decorate_agent(&mut item, app.settings.agent_down_time);
            item
        })
        .collect();
    Ok(json!({ "agents": hosting }))
}

/// `POST /v2.0/agents/{id}/vpn-routers` `{"router_id"}`: moves a router to this agent.
pub async fn add_router(
    app: &App,
    caller: &Caller,
    agent_id: &str,
    body: &Value,
) -> ApiResult<Value> {
    caller.require_admin("create_vpn-router")?;
    let router_id = body["router_id"]
        .as_str()
        .ok_or_else(|| Fault::http_bad_request("router_id is required"))?;
    let mut tx = app.store.begin().await?;
    let agent = agent_by_id(tx.as_mut(), agent_id).await?;
    let mut router: Router = tx
        .as_mut()
        .load(router_id)
        .await?
        .ok_or_else(|| Fault::resource_not_found(Kind::Router, router_id))?;
    if router.agent_host.as_deref() == Some(agent.host.as_str()) {
        return Err(Fault::conflict(
            "RouterHostedByVPNAgent",
            format!(
                "The router {router_id} has been already hosted by a VPN agent {}.",
                agent.id
            ),
        )
        .into());
    }
    let old = router.agent_host.replace(agent.host.clone());
    router.revision_number += 1;
    tx.save(&router).await?;
    tx.commit().await?;
    let mut told: Vec<Touched> = old.map(|o| old_host_told(&router, o)).into_iter().collect();
    told.extend(touched(&router));
    notify(app, told);
    Ok(json!({"router_id": router_id}))
}

/// `DELETE /v2.0/agents/{id}/vpn-routers/{router_id}`: takes a router off this agent; it
/// is placed again at the next heartbeat (on the least loaded live agent).
pub async fn remove_router(
    app: &App,
    caller: &Caller,
    agent_id: &str,
    router_id: &str,
) -> ApiResult<()> {
    caller.require_admin("delete_vpn-router")?;
    let mut tx = app.store.begin().await?;
    let agent = agent_by_id(tx.as_mut(), agent_id).await?;
    let mut router: Router = tx
        .as_mut()
        .load(router_id)
        .await?
        .ok_or_else(|| Fault::resource_not_found(Kind::Router, router_id))?;
    if router.agent_host.as_deref() != Some(agent.host.as_str()) {
        return Err(Fault::not_found(
            "RouterNotHostedByVPNAgent",
            format!("The router {router_id} is not hosted by VPN agent {agent_id}."),
        )
        .into());
    }
    router.agent_host = None;
    router.revision_number += 1;
    tx.save(&router).await?;
    tx.commit().await?;
    notify(app, vec![old_host_told(&router, agent.host)]);
    Ok(())
}
