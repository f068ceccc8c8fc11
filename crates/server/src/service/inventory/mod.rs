//! The network inventory: networks, subnets, routers, router gateways with address
//! allocation, router interfaces and tags, with the guards that protect VPN services
//! (`RouterInUse`, `SubnetInUseBy*`) and Neutron's checks of the attributes vpnaas only
//! stores (DNS servers, host and extra routes, IPv6 modes).

mod interfaces;
mod routers;
mod subnets;

use serde_json::{Map, Value, json};
use vpnaas_model::FaultKind;
use vpnaas_model::grammar;
use vpnaas_model::network::{Network, Subnet};
use vpnaas_model::standard_attr::StandardAttrs;
use vpnaas_model::{Error as Fault, Kind};
use vpnaas_store::Transaction;

use super::{Stored, build, changed, fetch, network_visible, timestamp};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

pub use interfaces::{InterfaceChange, change_router_interface};
use routers::*;
use subnets::*;

const ADMIN_ONLY_NETWORK_ATTRS: &[&str] = &[
    "shared",
    "router:external",
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
    "is_default",
];

/// Neutron's default `max_dns_nameservers`.
const MAX_DNS_NAMESERVERS: usize = 5;

/// Neutron's default `max_subnet_host_routes`.
const MAX_HOST_ROUTES: usize = 20;

/// Neutron's default `max_routes` of a router.
const MAX_ROUTES: usize = 30;

/// The kinds whose use cases live here (`service::Owner` routes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InventoryKind {
    Network,
    Subnet,
    Router,
}

/// Checks a new object and builds it from validated attributes; the caller saves it (and
/// schedules a router first). What it changes on the way, such as a new subnet's network,
/// it saves itself.
pub(super) async fn create(
    tx: &mut dyn Transaction,
    caller: &Caller,
    kind: InventoryKind,
    fields: Map<String, Value>,
) -> ApiResult<Stored> {
    match kind {
        InventoryKind::Network => {
            check_network_attrs(caller, &fields)?;
            let mtu = fields.get("mtu").cloned().unwrap_or(json!(1500));
            let mut network: Network = build(
                fields,
                vec![
                    ("status", json!("ACTIVE")),
                    ("subnets", json!([])),
                    ("mtu", mtu),
                ],
            )?;
            network.standard = StandardAttrs::new(&timestamp());
            check_one_default(tx, &network).await?;
            Ok(network.into())
        }
        InventoryKind::Subnet => create_subnet(tx, caller, fields).await,
        InventoryKind::Router => create_router(tx, caller, fields).await,
    }
}

/// Checks a change and returns the object as changed; the caller saves it.
pub(super) async fn update(
    tx: &mut dyn Transaction,
    caller: &Caller,
    kind: InventoryKind,
    id: &str,
    changes: Map<String, Value>,
) -> ApiResult<Stored> {
    match kind {
        InventoryKind::Network => {
            check_network_attrs(caller, &changes)?;
            let network: Network = fetch_writable_network(tx, caller, id).await?;
            let mut updated = changed(&network, changes)?;
            updated.standard.touch(&timestamp());
            check_one_default(tx, &updated).await?;
            if updated.router_external != network.router_external {
                mark_subnets_external(tx, &updated).await?;
            }
            Ok(updated.into())
        }
        InventoryKind::Subnet => update_subnet(tx, caller, id, changes).await,
        InventoryKind::Router => update_router(tx, caller, id, changes).await,
    }
}

pub(super) async fn delete(
    tx: &mut dyn Transaction,
    caller: &Caller,
    kind: InventoryKind,
    id: &str,
) -> ApiResult<Stored> {
    match kind {
        InventoryKind::Network => Ok(delete_network(tx, caller, id).await?.into()),
        InventoryKind::Subnet => {
            let subnet: Subnet = fetch(tx, caller, id).await?;
            delete_subnet(tx, &subnet).await?;
            Ok(subnet.into())
        }
        InventoryKind::Router => Ok(delete_router(tx, caller, id).await?.into()),
    }
}

fn check_network_attrs(caller: &Caller, fields: &Map<String, Value>) -> ApiResult<()> {
    let privileged = ADMIN_ONLY_NETWORK_ATTRS.iter().find(|a| {
        fields
            .get(**a)
            .is_some_and(|v| !v.is_null() && *v != Value::Bool(false))
    });
    match privileged {
        Some(attr) if !caller.is_admin() => {
            Err(Fault::forbidden(&format!("create_network:{attr}")).into())
        }
        _ => Ok(()),
    }
}

/// `DefaultExternalNetworkExists` when another network is already the default one.
async fn check_one_default(tx: &mut dyn Transaction, network: &Network) -> ApiResult<()> {
    if !network.is_default {
        return Ok(());
    }
    let other = tx
        .load_all::<Network>()
        .await?
        .into_iter()
        .find(|n| n.is_default && n.id != network.id);
    match other {
        Some(other) => Err(Fault::conflict(
            FaultKind::DefaultExternalNetworkExists,
            format!("A default external network already exists: {}.", other.id),
        )
        .into()),
        None => Ok(()),
    }
}

/// Keeps the subnets' `router:external` equal to their network's.
async fn mark_subnets_external(tx: &mut dyn Transaction, network: &Network) -> ApiResult<()> {
    for subnet_id in &network.subnets {
        if let Some(mut subnet) = tx.load::<Subnet>(subnet_id).await? {
            subnet.router_external = network.router_external;
            tx.save(&subnet).await?;
        }
    }
    Ok(())
}

async fn fetch_writable_network(
    tx: &mut dyn Transaction,
    caller: &Caller,
    id: &str,
) -> ApiResult<Network> {
    let network: Network = tx
        .load(id)
        .await?
        .ok_or_else(|| ApiError::from(Fault::resource_not_found(Kind::Network, id)))?;
    if caller.owns(&network.project_id) {
        Ok(network)
    } else if network_visible(caller, &network) {
        Err(Fault::forbidden("update_network").into())
    } else {
        Err(Fault::resource_not_found(Kind::Network, id).into())
    }
}

/// Deletes a network and its subnets; returns the network as it was.
async fn delete_network(tx: &mut dyn Transaction, caller: &Caller, id: &str) -> ApiResult<Network> {
    let network = fetch_writable_network(tx, caller, id).await?;
    let in_use = || {
        Fault::conflict(
            FaultKind::NetworkInUse,
            format!(
                "Unable to complete operation on network {id}. There are one or more ports still in use on the network."
            ),
        )
    };
    if tx
        .first_referrer(Kind::Router, Kind::Network, id)
        .await?
        .is_some()
    {
        return Err(in_use().into());
    }
    for subnet_id in &network.subnets {
        if let Some(subnet) = tx.load::<Subnet>(subnet_id).await? {
            delete_subnet(tx, &subnet).await?;
        }
    }
    tx.delete(Kind::Network, id).await?;
    Ok(network)
}

async fn create_subnet(
    tx: &mut dyn Transaction,
    caller: &Caller,
    fields: Map<String, Value>,
) -> ApiResult<Stored> {
    let network_id = fields["network_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut network = fetch_writable_network(tx, caller, &network_id).await?;
    if let Some(pool) = fields.get("subnetpool_id").and_then(Value::as_str) {
        return Err(Fault::not_found(
            FaultKind::SubnetPoolNotFound,
            format!("Subnet pool {pool} could not be found."),
        )
        .into());
    }
    let cidr_text = fields["cidr"].as_str().unwrap_or_default();
    let cidr =
        grammar::parse_cidr(cidr_text).map_err(|why| Fault::invalid_attribute("cidr", why))?;
    let version = if cidr.addr().is_ipv4() { 4 } else { 6 };
    if fields
        .get("ip_version")
        .is_some_and(|v| *v != json!(version))
    {
        return Err(Fault::invalid_attribute(
            "ip_version",
            format!("{cidr_text} is not an IPv{} subnet", fields["ip_version"]),
        )
        .into());
    }
    for other_id in &network.subnets {
        let other: Subnet = tx
            .load(other_id)
            .await?
            .ok_or_else(|| ApiError::Internal("dangling subnet".into()))?;
        let other_net = other.cidr.net();
        if other_net.contains(&cidr.network()) || cidr.contains(&other_net.network()) {
            return Err(Fault::bad_request(
                FaultKind::InvalidInput,
                format!("Invalid input for operation: Requested subnet with cidr: {cidr_text} for network: {network_id} overlaps with another subnet."),
            )
            .into());
        }
    }
    let gateway = match fields.get("gateway_ip") {
        None => first_host(cidr),
        Some(Value::Null) => None,
        Some(given) => Some(check_gateway(cidr, given)?),
    };
    let pools = allocation_pools(cidr, gateway);
    let mut subnet: Subnet = build(
        fields,
        vec![
            ("ip_version", json!(version)),
            ("gateway_ip", json!(gateway.map(|g| g.to_string()))),
            ("allocation_pools", serde_json::to_value(pools)?),
            ("router:external", json!(network.router_external)),
        ],
    )?;
    check_stored_only_attrs(&subnet, "new subnet")?;
    check_ipv6_modes(&subnet)?;
    let now = timestamp();
    subnet.standard = StandardAttrs::new(&now);
    network.subnets.push(subnet.id.clone());
    network.standard.touch(&now);
    tx.save(&network).await?;
    Ok(subnet.into())
}
