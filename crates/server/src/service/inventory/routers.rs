//! Routers: creation, updates (gateway with address allocation, extra routes and their
//! next hops), and deletion unless a VPN service or a port holds the router.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value};
use vpnaas_model::FaultKind;
use vpnaas_model::address::IpAddress;
use vpnaas_model::network::{FixedIp, GatewayInfo, HostRoute, Network, Router, Subnet};
use vpnaas_model::{Error as Fault, Kind};
use vpnaas_store::Transaction;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::service::{Stored, changed, fetch, guards, network_visible, timestamp};

use super::*;

/// vpnaas routers have no flavors (Neutron's `l3-flavors`): an unknown flavor is not
/// found, a known one is a VPN flavor, which no router can run on.
pub(super) async fn no_router_flavor(tx: &mut dyn Transaction, flavor_id: &str) -> ApiError {
    match tx.get(Kind::Flavor, flavor_id).await {
        Ok(None) => Fault::resource_not_found(Kind::Flavor, flavor_id).into(),
        Ok(Some(_)) => Fault::bad_request(
            FaultKind::BadRequest,
            format!(
                "Bad router request: flavor {flavor_id} is not a router (L3_ROUTER_NAT) flavor."
            ),
        )
        .into(),
        Err(e) => e.into(),
    }
}

pub(super) async fn update_router(
    tx: &mut dyn Transaction,
    caller: &Caller,
    id: &str,
    mut changes: Map<String, Value>,
) -> ApiResult<Stored> {
    let router: Router = fetch(tx, caller, id).await?;
    let requested = changes.remove("external_gateway_info");
    let mut updated = changed(&router, changes)?;
    updated.standard.touch(&timestamp());
    if updated.ha != router.ha {
        guards::router_unused(tx, id).await?;
    }
    if updated.distributed != router.distributed && router.admin_state_up {
        return Err(Fault::bad_request(
            FaultKind::BadRequest,
            "Bad router request: Cannot change the 'distributed' attribute of active routers. Please set router admin_state_up to False prior to upgrade.",
        )
        .into());
    }
    if let Some(requested) = requested {
        let gateway = gateway_for(tx, caller, &router, &requested).await?;
        let moved = gateway
            .as_ref()
            .map(|g| (&g.network_id, &g.external_fixed_ips))
            != router
                .external_gateway_info
                .as_ref()
                .map(|g| (&g.network_id, &g.external_fixed_ips));
        if moved {
            guards::router_unused(tx, id).await?;
        }
        updated.external_gateway_info = gateway;
    }
    if updated.routes != router.routes {
        check_routes(tx, &updated).await?;
    }
    Ok(updated.into())
}

/// Neutron's extra-route checks: at most 30 routes, each next hop on a subnet the
/// router is connected to and not one of the router's own addresses.
pub(super) async fn check_routes(tx: &mut dyn Transaction, router: &Router) -> ApiResult<()> {
    if router.routes.len() > MAX_ROUTES {
        return Err(Fault::bad_request(
            FaultKind::RoutesExhausted,
            format!(
                "Unable to complete operation for {}. The number of routes exceeds the maximum {MAX_ROUTES}.",
                router.id
            ),
        )
        .into());
    }
    let connected = connected_subnets(tx, router).await?;
    let own: Vec<IpAddr> = router_addresses(router);
    for route in &router.routes {
        let invalid = |why: &str| {
            Fault::bad_request(
                FaultKind::InvalidRoutes,
                format!(
                    "Invalid format for routes: [{{'destination': '{}', 'nexthop': '{}'}}], {why}",
                    route.destination, route.nexthop
                ),
            )
        };
        let nexthop = route.nexthop.ip();
        if !connected.iter().any(|cidr| cidr.contains(&nexthop)) {
            return Err(invalid("the nexthop is not connected with router").into());
        }
        if own.contains(&nexthop) {
            return Err(invalid("the nexthop is used by router").into());
        }
    }
    Ok(())
}

/// The CIDRs of the subnets a router has addresses on (interfaces and gateway).
pub(super) async fn connected_subnets(
    tx: &mut dyn Transaction,
    router: &Router,
) -> ApiResult<Vec<IpNet>> {
    let gateway_subnets = router
        .external_gateway_info
        .iter()
        .flat_map(|g| g.external_fixed_ips.iter().map(|f| f.subnet_id.clone()));
    let ids: Vec<String> = router
        .interfaces
        .iter()
        .map(|i| i.subnet_id.clone())
        .chain(gateway_subnets)
        .collect();
    let mut connected = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(subnet) = tx.load::<Subnet>(&id).await? {
            connected.push(subnet.cidr.net());
        }
    }
    Ok(connected)
}

/// The router's own addresses: its interfaces' and its gateway's.
pub(super) fn router_addresses(router: &Router) -> Vec<IpAddr> {
    let gateway = router
        .external_gateway_info
        .iter()
        .flat_map(|g| g.external_fixed_ips.iter().map(|f| f.ip_address.ip()));
    router
        .interfaces
        .iter()
        .map(|i| i.ip_address.ip())
        .chain(gateway)
        .collect()
}

/// `RouterInterfaceInUseByRoute` when an extra route goes through the subnet.
pub(super) fn check_no_route_through(router: &Router, subnet: &Subnet) -> ApiResult<()> {
    let cidr = subnet.cidr.net();
    let in_use = router
        .routes
        .iter()
        .any(|r: &HostRoute| cidr.contains(&r.nexthop.ip()));
    if in_use {
        return Err(Fault::conflict(
            FaultKind::RouterInterfaceInUseByRoute,
            format!(
                "Router interface for subnet {} on router {} cannot be deleted, as it is required by one or more routes.",
                subnet.id, router.id
            ),
        )
        .into());
    }
    Ok(())
}

pub(super) async fn delete_router(
    tx: &mut dyn Transaction,
    caller: &Caller,
    id: &str,
) -> ApiResult<Router> {
    let router: Router = fetch(tx, caller, id).await?;
    guards::router_unused(tx, id).await?;
    if !router.interfaces.is_empty() {
        return Err(Fault::conflict(
            FaultKind::RouterInUse,
            format!("Router {id} still has ports"),
        )
        .into());
    }
    tx.delete(Kind::Router, id).await?;
    Ok(router)
}

/// Resolves a requested gateway: keeps the current addresses when the network and the
/// requested addresses are unchanged, else validates and allocates.
pub(super) async fn gateway_for(
    tx: &mut dyn Transaction,
    caller: &Caller,
    router: &Router,
    requested: &Value,
) -> ApiResult<Option<GatewayInfo>> {
    let Value::Object(request) = requested else {
        return Ok(None);
    };
    let network_id = request["network_id"].as_str().unwrap_or_default();
    let network: Network = tx
        .load(network_id)
        .await?
        .filter(|n| network_visible(caller, n))
        .ok_or_else(|| Fault::resource_not_found(Kind::Network, network_id))?;
    if !network.router_external {
        return Err(Fault::bad_request(
            FaultKind::BadRequest,
            format!("Bad router request: Network {network_id} is not an external network."),
        )
        .into());
    }
    let enable_snat = request
        .get("enable_snat")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let wanted: Vec<Map<String, Value>> = request
        .get("external_fixed_ips")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(|v| v.as_object().cloned()).collect())
        .unwrap_or_default();
    if let Some(current) = &router.external_gateway_info
        && current.network_id == network_id
        && wanted.is_empty()
    {
        return Ok(Some(GatewayInfo {
            enable_snat,
            ..current.clone()
        }));
    }
    let mut taken = addresses_in_use(tx, network_id, &router.id).await?;
    let mut fixed = Vec::new();
    if wanted.is_empty() {
        for subnet_id in &network.subnets {
            let subnet: Subnet = tx
                .load(subnet_id)
                .await?
                .ok_or_else(|| ApiError::Internal("dangling subnet".into()))?;
            let ip = allocate(&subnet, &taken).ok_or_else(|| {
                Fault::conflict(
                    FaultKind::IpAddressGenerationFailure,
                    format!("No more IP addresses available on network {network_id}."),
                )
            })?;
            taken.push(ip);
            fixed.push(FixedIp {
                subnet_id: subnet.id.clone(),
                ip_address: ip.into(),
            });
        }
    }
    for request in wanted {
        let (ip, subnet_id) = requested_address(tx, &network, &request, &taken).await?;
        taken.push(ip);
        fixed.push(FixedIp {
            subnet_id,
            ip_address: ip.into(),
        });
    }
    Ok(Some(GatewayInfo {
        network_id: network_id.to_string(),
        enable_snat,
        external_fixed_ips: fixed,
    }))
}

/// A requested gateway address and its subnet's id, checked to lie in a subnet of the
/// external network and to be free.
pub(super) async fn requested_address(
    tx: &mut dyn Transaction,
    network: &Network,
    request: &Map<String, Value>,
    taken: &[IpAddr],
) -> ApiResult<(IpAddr, String)> {
    let mut subnets = Vec::new();
    for id in &network.subnets {
        subnets.extend(tx.load::<Subnet>(id).await?);
    }
    let wanted_ip: Option<IpAddr> = request
        .get("ip_address")
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok());
    let wanted_subnet = request.get("subnet_id").and_then(Value::as_str);
    let subnet = subnets
        .iter()
        .find(|s| match (wanted_subnet, wanted_ip) {
            (Some(id), _) => s.id == id,
            (None, Some(ip)) => s.cidr.net().contains(&ip),
            (None, None) => false,
        })
        .ok_or_else(|| Fault::bad_request(FaultKind::BadRequest, format!("Bad router request: no subnet of network {} matches the requested external_fixed_ips.", network.id)))?;
    let ip = match wanted_ip {
        Some(ip) => {
            if !subnet.cidr.net().contains(&ip) {
                return Err(Fault::bad_request(
                    FaultKind::InvalidIpForSubnet,
                    format!("IP address {ip} is not a valid IP for the specified subnet."),
                )
                .into());
            }
            if taken.contains(&ip) {
                return Err(Fault::conflict(
                    FaultKind::IpAddressAlreadyAllocated,
                    format!("IP address {ip} already allocated in subnet {}", subnet.id),
                )
                .into());
            }
            ip
        }
        None => allocate(subnet, taken).ok_or_else(|| {
            Fault::conflict(
                FaultKind::IpAddressGenerationFailure,
                format!("No more IP addresses available on network {}.", network.id),
            )
        })?,
    };
    Ok((ip, subnet.id.clone()))
}

/// Addresses on an external network held by subnet gateways and other routers' gateways.
pub(super) async fn addresses_in_use(
    tx: &mut dyn Transaction,
    network_id: &str,
    except_router: &str,
) -> ApiResult<Vec<IpAddr>> {
    let mut taken = Vec::new();
    for router in tx
        .load_referrers::<Router>(Kind::Network, network_id)
        .await?
    {
        if router.id == except_router {
            continue;
        }
        let ips = router
            .external_gateway_info
            .iter()
            .flat_map(|g| &g.external_fixed_ips);
        taken.extend(ips.map(|f| f.ip_address.ip()));
    }
    for subnet in tx
        .load_referrers::<Subnet>(Kind::Network, network_id)
        .await?
    {
        taken.extend(subnet.gateway_ip.as_ref().map(IpAddress::ip));
    }
    Ok(taken)
}

/// The lowest free address of the subnet's allocation pools.
pub(super) fn allocate(subnet: &Subnet, taken: &[IpAddr]) -> Option<IpAddr> {
    let cidr = subnet.cidr.net();
    subnet.allocation_pools.iter().find_map(|pool| {
        (to_int(pool.start.ip())..=to_int(pool.end.ip()))
            .take(65536)
            .map(|n| from_int(n, cidr))
            .find(|ip| !taken.contains(ip))
    })
}
