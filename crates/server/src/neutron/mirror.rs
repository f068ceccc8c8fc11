//! vpnaas's copy of the Neutron objects its VPN services use: each router (with its
//! interfaces, from Neutron's router ports), the subnets of its gateway and interfaces and
//! their networks, and the subnets endpoint groups name. The use cases (guards, desired
//! state, external addresses) read the copy as they read the built-in inventory. The copy
//! keeps what is vpnaas's own on a router: the agents it is scheduled to, its lease epoch
//! and its revision, bumped whenever what Neutron says of it changes, so that its agents
//! fetch the new state.

use std::collections::{BTreeSet, HashMap};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use vpnaas_model::endpoint_group::EndpointGroup;
use vpnaas_model::enums::EndpointType;
use vpnaas_model::network::{FixedIp, Network, Router, RouterInterface, Subnet};
use vpnaas_model::resource::Resource;
use vpnaas_model::standard_attr::StandardAttrs;
use vpnaas_model::{Error as Fault, FaultKind, Kind};
use vpnaas_store::Transaction;

use super::{Acting, Error, Neutron};
use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::service::notify::{self, Touched};
use crate::service::{status, timestamp};

/// The device owners of Neutron's router interface ports.
const INTERFACE_OWNERS: [&str; 3] = [
    "network:router_interface",
    "network:ha_router_replicated_interface",
    "network:router_interface_distributed",
];

/// What Neutron holds of the routers and subnets asked for.
#[derive(Debug, Default)]
pub struct Found {
    /// The routers that exist, with their interfaces.
    pub routers: Vec<Router>,
    /// The routers asked for that Neutron no longer has.
    pub gone: Vec<String>,
    /// Their gateway and interface subnets, and the subnets asked for.
    pub subnets: Vec<Subnet>,
    /// The networks of those subnets and gateways.
    pub networks: Vec<Network>,
    /// Where Neutron's L3 agents host each router found (a router no L3 agent hosts is
    /// absent).
    pub placement: HashMap<String, Hosts>,
}

/// The hosts whose L3 agents hold a router: the active one (an HA router's primary, as
/// Neutron's `ha_state` says) and an HA router's standby.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Hosts {
    /// Runs the router (for an HA router, where keepalived is primary).
    pub active: Option<String>,
    /// Holds an HA router's namespace, ready to take over.
    pub standby: Option<String>,
}

/// Reads the routers and subnets (and what they need) from Neutron as vpnaas's service
/// user.
pub async fn fetch(
    neutron: &Neutron,
    router_ids: &[String],
    subnet_ids: &[String],
) -> Result<Found, Error> {
    let mut routers: Vec<Router> =
        typed(neutron.list_ids("routers", "id", router_ids, &[]).await?)?;
    let found_ids: Vec<String> = routers.iter().map(|r| r.id.clone()).collect();
    let owners: Vec<(&str, &str)> = INTERFACE_OWNERS
        .iter()
        .map(|o| ("device_owner", *o))
        .collect();
    let ports: Vec<Port> = typed(
        neutron
            .list_ids("ports", "device_id", &found_ids, &owners)
            .await?,
    )?;
    for router in &mut routers {
        router.interfaces = interfaces_of(&router.id, &ports);
    }
    let mut wanted_subnets: BTreeSet<String> = subnet_ids.iter().cloned().collect();
    let mut wanted_networks = BTreeSet::new();
    for router in &routers {
        if let Some(gateway) = &router.external_gateway_info {
            wanted_networks.insert(gateway.network_id.clone());
            wanted_subnets.extend(
                gateway
                    .external_fixed_ips
                    .iter()
                    .map(|f| f.subnet_id.clone()),
            );
        }
        wanted_subnets.extend(router.interfaces.iter().map(|i| i.subnet_id.clone()));
    }
    let wanted: Vec<String> = wanted_subnets.into_iter().collect();
    let subnets: Vec<Subnet> = typed(neutron.list_ids("subnets", "id", &wanted, &[]).await?)?;
    wanted_networks.extend(subnets.iter().map(|s| s.network_id.clone()));
    let wanted: Vec<String> = wanted_networks.into_iter().collect();
    let networks: Vec<Network> = typed(neutron.list_ids("networks", "id", &wanted, &[]).await?)?;
    let placement = placement(neutron, &routers).await?;
    let gone = router_ids
        .iter()
        .filter(|id| !found_ids.contains(id))
        .cloned()
        .collect();
    Ok(Found {
        routers,
        gone,
        subnets,
        networks,
        placement,
    })
}

/// An L3 agent of Neutron's, or one of a router's (with its `ha_state` there).
#[derive(serde::Deserialize)]
struct L3Agent {
    id: String,
    host: String,
    #[serde(default)]
    ha_state: Option<String>,
}

/// A router as an L3 agent's list names it.
#[derive(serde::Deserialize)]
struct Named {
    id: String,
}

/// Where Neutron's L3 agents host `routers`: one request for the L3 agents, one per L3
/// agent for its routers (few agents, many routers), and for each HA router held on
/// several hosts one for the `ha_state` of each.
async fn placement(neutron: &Neutron, routers: &[Router]) -> Result<HashMap<String, Hosts>, Error> {
    if routers.is_empty() {
        return Ok(HashMap::new());
    }
    let agents: Vec<L3Agent> = typed(
        neutron
            .list("agents", &[("agent_type", "L3 agent")])
            .await?,
    )?;
    let mut hosts: HashMap<String, Vec<String>> = HashMap::new();
    for agent in &agents {
        let path = format!("/v2.0/agents/{}/l3-routers", super::encode(&agent.id));
        let held: Vec<Named> = typed(neutron.list_at(&path, "routers").await?)?;
        for router in held {
            hosts.entry(router.id).or_default().push(agent.host.clone());
        }
    }
    let mut placement = HashMap::new();
    for router in routers {
        let Some(mut on) = hosts.remove(&router.id) else {
            continue;
        };
        on.sort();
        let placed = if router.ha && on.len() > 1 {
            ha_hosts(neutron, &router.id, &on).await?
        } else {
            Hosts {
                active: on.first().cloned(),
                standby: None,
            }
        };
        placement.insert(router.id.clone(), placed);
    }
    Ok(placement)
}

/// An HA router's active host (`ha_state` `active`, none while keepalived elects one) and
/// a standby.
async fn ha_hosts(neutron: &Neutron, router_id: &str, on: &[String]) -> Result<Hosts, Error> {
    let path = format!("/v2.0/routers/{}/l3-agents", super::encode(router_id));
    let agents: Vec<L3Agent> = typed(neutron.list_at(&path, "agents").await?)?;
    let active = agents
        .iter()
        .find(|a| a.ha_state.as_deref() == Some("active"))
        .map(|a| a.host.clone());
    let standby = on.iter().find(|h| Some(*h) != active.as_ref()).cloned();
    Ok(Hosts { active, standby })
}

/// A port of Neutron's, as far as a router interface needs it.
#[derive(serde::Deserialize)]
struct Port {
    id: String,
    device_id: String,
    #[serde(default)]
    fixed_ips: Vec<FixedIp>,
}

fn interfaces_of(router_id: &str, ports: &[Port]) -> Vec<RouterInterface> {
    let mut interfaces: Vec<RouterInterface> = ports
        .iter()
        .filter(|p| p.device_id == router_id)
        .flat_map(|p| {
            p.fixed_ips.iter().map(|f| RouterInterface {
                subnet_id: f.subnet_id.clone(),
                port_id: p.id.clone(),
                ip_address: f.ip_address.clone(),
            })
        })
        .collect();
    // Neutron lists ports in no promised order: a stable order keeps an unchanged router
    // unchanged.
    interfaces.sort_by(|a, b| (&a.subnet_id, &a.port_id).cmp(&(&b.subnet_id, &b.port_id)));
    interfaces
}

fn typed<T: DeserializeOwned>(items: Vec<Value>) -> Result<Vec<T>, Error> {
    items
        .into_iter()
        .map(|item| {
            serde_json::from_value(item).map_err(|e| {
                Error::Unavailable(format!("Neutron sent an object vpnaas cannot read: {e}"))
            })
        })
        .collect()
}

/// Stores what was found, in one transaction: networks and subnets as Neutron holds
/// them; each router with vpnaas's own fields kept (a new one scheduled to an agent),
/// its revision bumped when Neutron's side changed; routers Neutron no longer has
/// removed, their VPN services `ERROR` (`ROUTER_DELETED`). Returns the agents to tell.
pub async fn store(app: &App, found: Found) -> ApiResult<Vec<Touched>> {
    let now_ms = app.clock.now_ms();
    let mut tx = app.store.begin().await?;
    for network in &found.networks {
        save_if_changed(tx.as_mut(), network).await?;
    }
    for subnet in &found.subnets {
        save_if_changed(tx.as_mut(), subnet).await?;
    }
    let mut touched = Vec::new();
    for router in found.routers {
        let hosts = found.placement.get(&router.id).cloned().unwrap_or_default();
        touched.extend(store_router(tx.as_mut(), router, hosts).await?);
    }
    for id in &found.gone {
        touched.extend(forget_router(tx.as_mut(), id, now_ms).await?);
    }
    tx.commit().await?;
    Ok(touched)
}

async fn save_if_changed<R: Resource + PartialEq>(
    tx: &mut dyn Transaction,
    resource: &R,
) -> ApiResult<()> {
    if tx.load::<R>(resource.id()).await?.as_ref() != Some(resource) {
        tx.save(resource).await?;
    }
    Ok(())
}

async fn store_router(
    tx: &mut dyn Transaction,
    mut router: Router,
    hosts: Hosts,
) -> ApiResult<Vec<Touched>> {
    let now = timestamp();
    let held = tx.load::<Router>(&router.id).await?;
    match &held {
        Some(held) => keep_own_fields(&mut router, held),
        None => router.standard = StandardAttrs::new(&now),
    }
    let released = place(&mut router, hosts);
    if held.as_ref() == Some(&router) {
        return Ok(vec![]);
    }
    router.standard.touch(&now);
    tx.save(&router).await?;
    let mut touched = notify::touched(&router);
    touched.extend(released.into_iter().map(|h| notify::told(&router, h)));
    Ok(touched)
}

/// Puts the router where Neutron's L3 agents are; a new active host takes a new lease
/// epoch (fencing the old one's reports). An HA router whose active host is still one of
/// Neutron's keeps it: that is the node whose agent holds the gateway address
/// ([`super::ha`]), which Neutron's `ha_state` only catches up with. Returns the hosts that
/// lost it.
fn place(router: &mut Router, hosts: Hosts) -> Vec<String> {
    let before: Vec<String> = router.hosts().map(String::from).collect();
    let held: Vec<String> = hosts.active.iter().chain(&hosts.standby).cloned().collect();
    let hosts = match &router.agent_host {
        Some(active) if router.ha && held.contains(active) => Hosts {
            standby: held.iter().find(|h| *h != active).cloned(),
            active: Some(active.clone()),
        },
        _ => hosts,
    };
    if router.agent_host != hosts.active {
        router.lease_epoch += 1;
    }
    router.agent_host = hosts.active;
    router.ha_standby_host = hosts.standby;
    let after: Vec<&str> = router.hosts().collect();
    before
        .into_iter()
        .filter(|h| !after.contains(&h.as_str()))
        .collect()
}

/// Carries over what vpnaas, not Neutron, says of a router: its revision, its placement
/// (then compared with Neutron's) and its lease epoch.
fn keep_own_fields(router: &mut Router, held: &Router) {
    router.standard = held.standard.clone();
    router.agent_host = held.agent_host.clone();
    router.ha_standby_host = held.ha_standby_host.clone();
    router.lease_epoch = held.lease_epoch;
}

/// Removes a router Neutron no longer has: its services `ERROR`, its connections `DOWN`
/// (`ROUTER_DELETED`), its agents told to drop it.
async fn forget_router(
    tx: &mut dyn Transaction,
    router_id: &str,
    now_ms: u64,
) -> ApiResult<Vec<Touched>> {
    let Some(mut router) = tx.load::<Router>(router_id).await? else {
        return Ok(vec![]);
    };
    let detail = format!("Neutron no longer has router {router_id}");
    status::mark_router_gone(tx, router_id, &detail, now_ms).await?;
    tx.delete(Kind::Router, router_id).await?;
    router.standard.touch(&timestamp());
    Ok(router
        .hosts()
        .map(|host| notify::told(&router, host.to_string()))
        .collect())
}

/// Before a VPN object is created or changed under `inventory = "neutron"`: checks that
/// the caller may use the routers and subnets it names (asking Neutron with the caller's
/// own credentials: what Neutron does not show the caller does not exist for it), then
/// brings them into the copy. Names not found fail as the built-in inventory fails them.
pub async fn admit(
    app: &App,
    neutron: &Neutron,
    caller: &Caller,
    kind: Kind,
    fields: &Map<String, Value>,
) -> ApiResult<Vec<Touched>> {
    let text = |key: &str| fields.get(key).and_then(Value::as_str).map(String::from);
    let mut routers = Vec::new();
    let mut subnets = Vec::new();
    match kind {
        Kind::VpnService => {
            if let Some(id) = text("router_id") {
                visible(neutron, caller, "routers", &id, || {
                    Fault::resource_not_found(Kind::Router, &id)
                })
                .await?;
                routers.push(id);
            }
            if let Some(id) = text("subnet_id") {
                visible(neutron, caller, "subnets", &id, || {
                    Fault::resource_not_found(Kind::Subnet, &id)
                })
                .await?;
                subnets.push(id);
            }
        }
        Kind::EndpointGroup if text("type").as_deref() == Some(EndpointType::Subnet.as_str()) => {
            for id in endpoints(fields) {
                visible(neutron, caller, "subnets", &id, || {
                    Fault::not_found(
                        FaultKind::NonExistingSubnetInEndpointGroup,
                        format!("Subnet {id} in endpoint group does not exist"),
                    )
                })
                .await?;
                subnets.push(id);
            }
        }
        _ => return Ok(vec![]),
    }
    let found = fetch(neutron, &routers, &subnets).await?;
    store(app, found).await
}

fn endpoints(fields: &Map<String, Value>) -> Vec<String> {
    fields
        .get("endpoints")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

async fn visible(
    neutron: &Neutron,
    caller: &Caller,
    collection: &str,
    id: &str,
    missing: impl FnOnce() -> Fault,
) -> ApiResult<()> {
    match neutron.show(Acting::For(caller), collection, id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::from(missing())),
    }
}

/// The routers vpnaas must follow: those its VPN services are on, and those it holds a
/// copy of.
pub async fn routers_in_use(app: &App) -> ApiResult<(Vec<String>, Vec<String>)> {
    let mut tx = app.store.read().await?;
    let services: Vec<vpnaas_model::vpn_service::VpnService> = tx.load_all().await?;
    let held: Vec<Router> = tx.load_all().await?;
    let used: BTreeSet<String> = services.into_iter().map(|s| s.router_id).collect();
    let unused = held
        .into_iter()
        .map(|r| r.id)
        .filter(|id| !used.contains(id))
        .collect();
    Ok((used.into_iter().collect(), unused))
}

/// The subnets endpoint groups name, by id.
pub async fn group_subnets(app: &App) -> ApiResult<Vec<String>> {
    let mut tx = app.store.read().await?;
    let groups: Vec<EndpointGroup> = tx.load_all().await?;
    let ids: BTreeSet<String> = groups
        .into_iter()
        .filter(|g| g.endpoint_type == EndpointType::Subnet)
        .flat_map(|g| g.endpoints)
        .map(|e| e.as_str().to_string())
        .collect();
    Ok(ids.into_iter().collect())
}

/// Drops the copies of routers no VPN service uses any more; their agents are told.
pub async fn drop_unused(app: &App, router_ids: &[String]) -> ApiResult<Vec<Touched>> {
    let mut tx = app.store.begin().await?;
    let mut touched = Vec::new();
    for id in router_ids {
        if !tx
            .referrers(Kind::VpnService, Kind::Router, id)
            .await?
            .is_empty()
        {
            continue;
        }
        if let Some(mut router) = tx.load::<Router>(id).await? {
            tx.delete(Kind::Router, id).await?;
            router.standard.touch(&timestamp());
            touched.extend(router.hosts().map(|h| notify::told(&router, h.to_string())));
        }
    }
    tx.commit().await?;
    Ok(touched)
}
