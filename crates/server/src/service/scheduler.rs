//! Where routers run: on the live agent with the fewest routers; an HA router on two,
//! an active one and a standby. An agent is live while its last heartbeat is at most
//! `agent_down_time` old.
//!
//! Leadership is a lease in the database: a router's `agent_host` holds it, and every
//! heartbeat of that agent renews the leases of all its routers at once. When the holder
//! stops beating, the next heartbeat of any live agent hands the router on (an HA router's
//! live standby first) and bumps `lease_epoch`, the fencing token: desired states and
//! status reports carry it, and a report under an older epoch is refused; the old holder,
//! should it come back, is told and demotes or drops the router at its next sync. Admins
//! move routers by hand with Neutron's VPN agent scheduler API. This is the slow path of
//! HA failover; the fast one is a standby's claim (`takeover`).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use vpnaas_model::FaultKind;
use vpnaas_model::agent::{Agent, ConnectionEvent};
use vpnaas_model::enums::HaRole;
use vpnaas_model::network::Router;
use vpnaas_model::{Error as Fault, Kind};
use vpnaas_store::Transaction;

use super::liveness::Liveness;
use super::notify::{Touched, notify, told, touched};
use super::status::{Hosting, clear_no_agent, mark_agent_down, mark_hosting};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::{App, InventoryMode};

/// Live agents and how many routers each holds (as active or standby).
pub struct Placement {
    load: BTreeMap<String, usize>,
}

impl Placement {
    /// The live agents (admin state up, recent heartbeat) and their loads in `routers`.
    pub fn of(agents: &[Agent], routers: &[Router], liveness: &Liveness) -> Placement {
        let mut load: BTreeMap<String, usize> = agents
            .iter()
            .filter(|a| a.admin_state_up && liveness.alive(a))
            .map(|a| (a.host.clone(), 0))
            .collect();
        for host in routers.iter().flat_map(Router::hosts) {
            if let Some(count) = load.get_mut(host) {
                *count += 1;
            }
        }
        Placement { load }
    }

    /// Loads agents and routers from the transaction.
    pub async fn load(
        tx: &mut dyn Transaction,
        liveness: &Liveness,
    ) -> ApiResult<(Placement, Vec<Router>)> {
        let agents: Vec<Agent> = tx.load_all().await?;
        let routers: Vec<Router> = tx.load_all().await?;
        Ok((Placement::of(&agents, &routers, liveness), routers))
    }

    /// Whether `host` is a live agent.
    pub fn is_live(&self, host: &str) -> bool {
        self.load.contains_key(host)
    }

    /// Whether a live agent speaks for the router. An active agent that looks dead
    /// before the server could have heard it (`may_move` false) still counts as live.
    pub fn hosting(&self, router: &Router, may_move: bool) -> Hosting {
        match router.agent_host.as_deref() {
            None => Hosting::Unscheduled,
            Some(host) if may_move && !self.is_live(host) => Hosting::Orphaned,
            Some(_) => Hosting::Live,
        }
    }

    /// The least loaded live agent other than `avoid` (ties: by host name), counted as
    /// holding one more router.
    pub fn place(&mut self, avoid: Option<&str>) -> Option<String> {
        let host = self
            .load
            .iter()
            .filter(|(host, _)| Some(host.as_str()) != avoid)
            .min_by_key(|(host, count)| (**count, (*host).clone()))
            .map(|(host, _)| host.clone())?;
        *self.load.entry(host.clone()).or_default() += 1;
        Some(host)
    }
}

/// How rescheduling changed a router's agents.
#[derive(Debug, PartialEq, Eq)]
pub struct Moved {
    /// Agents that held the router and hold it no more (they must let go).
    pub released: Vec<String>,
    /// The active agent was dead and another took over (its tunnels' state is unknown
    /// until the new one reports).
    pub failed_over: bool,
}

/// Gives a router the agents it lacks: an active one when it has none or, if `may_move`,
/// when its active agent is dead (an HA router's live standby takes over, else the least
/// loaded live agent); and for an HA router a standby other than the active one, replacing
/// a dead one. A router that is not HA loses its standby. `None` when nothing changed.
pub fn reschedule(router: &mut Router, placement: &mut Placement, may_move: bool) -> Option<Moved> {
    let before: Vec<String> = router.hosts().map(String::from).collect();
    let dead = |host: &Option<String>, placement: &Placement| {
        host.as_deref()
            .is_some_and(|h| may_move && !placement.is_live(h))
    };
    let active_dead = dead(&router.agent_host, placement);
    let mut failed_over = false;
    if router.agent_host.is_none() || active_dead {
        let live_standby = router
            .ha_standby_host
            .clone()
            .filter(|h| placement.is_live(h));
        let next = match live_standby {
            Some(standby) => {
                router.ha_standby_host = None;
                Some(standby)
            }
            None => placement.place(None),
        };
        if let Some(next) = next {
            router.agent_host = Some(next);
            router.lease_epoch += 1;
            failed_over = active_dead;
        }
    }
    if !router.ha {
        router.ha_standby_host = None;
    } else if (router.ha_standby_host.is_none() || dead(&router.ha_standby_host, placement))
        && let Some(standby) = placement.place(router.agent_host.as_deref())
    {
        router.ha_standby_host = Some(standby);
    }
    if router.lease_claimed_from != router.ha_standby_host {
        // The bar against claiming back is only ever the standby's.
        router.lease_claimed_from = None;
    }
    let after: Vec<&str> = router.hosts().collect();
    if before.iter().map(String::as_str).eq(after.iter().copied()) {
        return None;
    }
    Some(Moved {
        released: before
            .into_iter()
            .filter(|h| !after.contains(&h.as_str()))
            .collect(),
        failed_over,
    })
}

/// Whether vpnaas places routers on its agents itself: not under `inventory = "neutron"`,
/// where each router is served by the vpnaas agents on the hosts whose Neutron L3 agents
/// host it (`neutron::mirror` follows Neutron's placement).
pub fn places_routers(app: &App) -> bool {
    app.settings.inventory == InventoryMode::Builtin
}

/// Reschedules every router that lacks an agent (when vpnaas `places` routers):
/// unscheduled ones always, those of a dead agent once this server has run for
/// `down_after`. A router no live agent can hold has its VPN objects say so (`NO_AGENT`,
/// `AGENT_DOWN`); one that just found an agent has `NO_AGENT` lifted.
pub async fn place_orphans(
    tx: &mut dyn Transaction,
    liveness: &Liveness,
    places: bool,
) -> ApiResult<Orphans> {
    let (mut placement, routers) = Placement::load(tx, liveness).await?;
    let may_move = liveness.may_move();
    let mut orphans = Orphans::default();
    for mut router in routers {
        let was_unscheduled = router.agent_host.is_none();
        let moved = if places {
            reschedule(&mut router, &mut placement, may_move)
        } else {
            None
        };
        if let Some(moved) = moved {
            router.standard.touch(&super::timestamp());
            tx.save(&router).await?;
            if moved.failed_over {
                tracing::warn!(router = %router.id, from = ?moved.released, to = ?router.agent_host, epoch = router.lease_epoch, "agent down: router taken over");
                orphans.failovers += 1;
                let detail = "the router's agent stopped answering; another agent takes over";
                orphans
                    .transitions
                    .extend(mark_agent_down(tx, &router.id, detail, liveness.now_ms).await?);
            }
            if was_unscheduled && router.agent_host.is_some() {
                clear_no_agent(tx, &router.id).await?;
            }
            orphans
                .told
                .extend(moved.released.into_iter().map(|h| told(&router, h)));
            orphans.told.extend(touched(&router));
        }
        let hosting = placement.hosting(&router, may_move);
        let marked = mark_hosting(tx, &router.id, hosting, liveness.now_ms).await?;
        if hosting == Hosting::Orphaned && !marked.is_empty() {
            // An agent that comes back must report again even if nothing changed on its
            // side (it does not resend an unchanged report): a new revision changes it.
            router.standard.touch(&super::timestamp());
            tx.save(&router).await?;
            orphans.told.extend(touched(&router));
        }
        orphans.transitions.extend(marked);
    }
    Ok(orphans)
}

/// Places orphans without a heartbeat to trigger it: when no agent is alive nobody
/// beats, yet routers whose agent died must say so.
pub async fn sweep(app: &App) -> ApiResult<()> {
    let liveness = Liveness::of(app);
    let mut tx = app.store.begin_observation().await?;
    let orphans = place_orphans(tx.as_mut(), &liveness, places_routers(app)).await?;
    tx.commit().await?;
    app.metrics
        .failed_over(orphans.failovers, &orphans.transitions);
    notify(app, orphans.told);
    Ok(())
}

/// What placing orphans did.
#[derive(Default)]
pub struct Orphans {
    /// Who must be told: the agents that now hold each changed router, and those that
    /// lost it (so an agent cut off from the heartbeat but still running lets go).
    pub told: Vec<Touched>,
    /// Routers taken over from dead agents.
    pub failovers: usize,
    /// The transitions that caused (connections become `AGENT_DOWN`).
    pub transitions: Vec<ConnectionEvent>,
}

/// Makes `host` the router's active agent (its lease holder, under a new epoch). An HA
/// router keeps its previous active agent as the standby (a switchover when `host` was
/// the standby). Returns the agents that lost the router.
pub fn make_active(router: &mut Router, host: &str) -> Vec<String> {
    router.lease_claimed_from = None;
    let previous = router.agent_host.replace(host.to_string());
    let old_standby = if router.ha {
        std::mem::replace(&mut router.ha_standby_host, previous)
    } else {
        previous
    };
    router.lease_epoch += 1;
    old_standby.into_iter().filter(|h| h != host).collect()
}

/// Takes the router off `host`: a standby is just dropped; an active agent's standby (if
/// any) takes over under a new epoch. Whatever is missing is placed at the next heartbeat.
pub fn release(router: &mut Router, host: &str) {
    router.lease_claimed_from = None;
    if router.ha_standby_host.as_deref() == Some(host) {
        router.ha_standby_host = None;
    } else if router.agent_host.as_deref() == Some(host) {
        router.agent_host = router.ha_standby_host.take();
        router.lease_epoch += 1;
    }
}

/// Refuses a manual placement under `inventory = "neutron"`, where Neutron places routers.
fn placed_by_us(app: &App) -> ApiResult<()> {
    if places_routers(app) {
        return Ok(());
    }
    Err(Fault::http_bad_request(
        "Routers follow Neutron's L3 agents here (inventory = neutron): move the router with `openstack network agent add router --l3` and vpnaas follows",
    )
    .into())
}

async fn agent_by_id(tx: &mut dyn Transaction, agent_id: &str) -> ApiResult<Agent> {
    tx.load::<Agent>(agent_id)
        .await?
        .ok_or_else(|| Fault::resource_not_found(Kind::Agent, agent_id).into())
}

/// `GET /v2.0/agents/{id}/vpn-routers`: the routers the agent holds, each with its
/// `ha_state` there (`active` or `standby`).
pub async fn routers_of_agent(app: &App, caller: &Caller, agent_id: &str) -> ApiResult<Value> {
    caller.require_admin("get_vpn-routers")?;
    let mut tx = app.store.read().await?;
    let agent = agent_by_id(tx.as_mut(), agent_id).await?;
    let routers: Vec<Router> = tx.as_mut().load_all().await?;
    let held: Vec<Value> = routers
        .iter()
        .filter_map(|r| {
            let role = r.role_of(&agent.host)?;
            let mut item = serde_json::to_value(r).unwrap_or_default();
            item["ha_state"] = json!(role);
            Some(item)
        })
        .collect();
    Ok(json!({ "routers": held }))
}

/// `GET /v2.0/routers/{id}/vpn-agents`: the agents holding the router, active first, each
/// with its `ha_state` (`active` or `standby`).
pub async fn agents_of_router(app: &App, caller: &Caller, router_id: &str) -> ApiResult<Value> {
    caller.require_admin("get_vpn-agents")?;
    let mut tx = app.store.read().await?;
    let router = router_by_id(tx.as_mut(), router_id).await?;
    let agents: Vec<Agent> = tx.as_mut().load_all().await?;
    let liveness = Liveness::of(app);
    let mut hosting: Vec<(HaRole, Value)> = agents
        .into_iter()
        .filter_map(|a| {
            let role = router.role_of(&a.host)?;
            let mut item = serde_json::to_value(a).unwrap_or_default();
            super::agents::decorate_agent(&mut item, &liveness);
            item["ha_state"] = json!(role);
            Some((role, item))
        })
        .collect();
    hosting.sort_by_key(|(role, _)| *role != HaRole::Active);
    let hosting: Vec<Value> = hosting.into_iter().map(|(_, item)| item).collect();
    Ok(json!({ "agents": hosting }))
}

async fn router_by_id(tx: &mut dyn Transaction, router_id: &str) -> ApiResult<Router> {
    tx.load(router_id)
        .await?
        .ok_or_else(|| Fault::resource_not_found(Kind::Router, router_id).into())
}

/// `POST /v2.0/agents/{id}/vpn-routers` `{"router_id"}`: makes this agent the router's
/// active one (an HA router's previous active agent becomes its standby).
pub async fn add_router(
    app: &App,
    caller: &Caller,
    agent_id: &str,
    body: &Value,
) -> ApiResult<Value> {
    caller.require_admin("create_vpn-router")?;
    placed_by_us(app)?;
    let router_id = body["router_id"]
        .as_str()
        .ok_or_else(|| Fault::http_bad_request("router_id is required"))?;
    let mut tx = app.store.begin().await?;
    let agent = agent_by_id(tx.as_mut(), agent_id).await?;
    let mut router = router_by_id(tx.as_mut(), router_id).await?;
    if router.agent_host.as_deref() == Some(agent.host.as_str()) {
        return Err(Fault::conflict(
            FaultKind::RouterHostedByVPNAgent,
            format!(
                "The router {router_id} has been already hosted by a VPN agent {}.",
                agent.id
            ),
        )
        .into());
    }
    let released = make_active(&mut router, &agent.host);
    router.standard.touch(&super::timestamp());
    tx.save(&router).await?;
    tx.commit().await?;
    let mut told_hosts: Vec<Touched> = released.into_iter().map(|h| told(&router, h)).collect();
    told_hosts.extend(touched(&router));
    notify(app, told_hosts);
    Ok(json!({"router_id": router_id}))
}

/// `DELETE /v2.0/agents/{id}/vpn-routers/{router_id}`: takes a router off this agent (an
/// HA router's standby takes over); what is missing is placed again at the next
/// heartbeat, on the least loaded live agents.
pub async fn remove_router(
    app: &App,
    caller: &Caller,
    agent_id: &str,
    router_id: &str,
) -> ApiResult<()> {
    caller.require_admin("delete_vpn-router")?;
    placed_by_us(app)?;
    let mut tx = app.store.begin().await?;
    let agent = agent_by_id(tx.as_mut(), agent_id).await?;
    let mut router = router_by_id(tx.as_mut(), router_id).await?;
    if router.role_of(&agent.host).is_none() {
        return Err(Fault::not_found(
            FaultKind::RouterNotHostedByVPNAgent,
            format!("The router {router_id} is not hosted by VPN agent {agent_id}."),
        )
        .into());
    }
    release(&mut router, &agent.host);
    router.standard.touch(&super::timestamp());
    tx.save(&router).await?;
    tx.commit().await?;
    let mut told_hosts = vec![told(&router, agent.host)];
    told_hosts.extend(touched(&router));
    notify(app, told_hosts);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: u64 = 1_764_748_800_000;

    fn agent(host: &str, alive: bool) -> Agent {
        serde_json::from_value(vpnaas_model::agent::new_agent(
            host,
            if alive { NOW_MS } else { 0 },
        ))
        .expect("agent")
    }

    fn router(ha: bool, active: Option<&str>, standby: Option<&str>) -> Router {
        serde_json::from_value(json!({
            "id": "r", "tenant_id": "p", "project_id": "p", "name": "", "description": "",
            "admin_state_up": true, "ha": ha, "status": "ACTIVE", "external_gateway_info": null,
            "agent_host": active, "ha_standby_host": standby, "lease_epoch": 1,
        }))
        .expect("router")
    }

    fn placement(live: &[&str], dead: &[&str], routers: &[Router]) -> Placement {
        let agents: Vec<Agent> = live
            .iter()
            .map(|h| agent(h, true))
            .chain(dead.iter().map(|h| agent(h, false)))
            .collect();
        let liveness = Liveness {
            now_ms: NOW_MS,
            down_after: 3,
            server_up_since: 0,
        };
        Placement::of(&agents, routers, &liveness)
    }

    fn holders(r: &Router) -> (Option<&str>, Option<&str>, u64) {
        (
            r.agent_host.as_deref(),
            r.ha_standby_host.as_deref(),
            r.lease_epoch,
        )
    }

    #[test]
    fn an_ha_router_gets_two_agents_the_least_loaded_first() {
        let busy = router(false, Some("a"), None);
        let mut places = placement(&["a", "b", "c"], &[], &[busy]);
        let mut r = router(true, None, None);
        let moved = reschedule(&mut r, &mut places, true).expect("placed");
        assert_eq!(holders(&r), (Some("b"), Some("c"), 2));
        assert!(!moved.failed_over && moved.released.is_empty());
        assert_eq!(reschedule(&mut r, &mut places, true), None, "stable");
    }

    #[test]
    fn a_dead_active_agents_standby_takes_over_under_a_new_epoch() {
        let mut r = router(true, Some("a"), Some("b"));
        let mut places = placement(&["b", "c"], &["a"], std::slice::from_ref(&r));
        let moved = reschedule(&mut r, &mut places, true).expect("moved");
        assert_eq!(holders(&r), (Some("b"), Some("c"), 2));
        assert_eq!(
            moved,
            Moved {
                released: vec!["a".into()],
                failed_over: true
            }
        );
    }

    #[test]
    fn nothing_moves_before_the_server_could_have_heard_the_agents() {
        let mut r = router(true, Some("a"), Some("b"));
        let mut places = placement(&["c"], &["a", "b"], std::slice::from_ref(&r));
        assert_eq!(reschedule(&mut r, &mut places, false), None);
        let moved = reschedule(&mut r, &mut places, true).expect("moved");
        assert_eq!(
            holders(&r),
            (Some("c"), Some("b"), 2),
            "no other live agent"
        );
        assert!(moved.failed_over);
    }

    #[test]
    fn a_router_no_longer_ha_lets_its_standby_go() {
        let mut r = router(false, Some("a"), Some("b"));
        let mut places = placement(&["a", "b"], &[], std::slice::from_ref(&r));
        let moved = reschedule(&mut r, &mut places, true).expect("moved");
        assert_eq!(holders(&r), (Some("a"), None, 1));
        assert_eq!(moved.released, ["b"]);
    }

    #[test]
    fn switchover_and_release_by_hand() {
        let mut r = router(true, Some("a"), Some("b"));
        assert!(make_active(&mut r, "b").is_empty());
        assert_eq!(holders(&r), (Some("b"), Some("a"), 2));
        assert_eq!(make_active(&mut r, "c"), ["a"]);
        assert_eq!(holders(&r), (Some("c"), Some("b"), 3));
        release(&mut r, "c");
        assert_eq!(holders(&r), (Some("b"), None, 4));
        let mut single = router(false, Some("a"), None);
        assert_eq!(make_active(&mut single, "b"), ["a"]);
        assert_eq!(holders(&single), (Some("b"), None, 2));
    }
}
