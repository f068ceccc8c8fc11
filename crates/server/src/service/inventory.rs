//! The network inventory: networks, subnets, routers, router gateways with address
//! allocation, router interfaces and tags, with the guards that protect VPN services
//! (`RouterInUse`, `SubnetInUseBy*`) and Neutron's checks of the attributes vpnaas only
//! stores (DNS servers, host and extra routes, IPv6 modes).

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value, json};
use vpnaas_model::FaultKind;
use vpnaas_model::endpoint_group::EndpointGroup;
use vpnaas_model::enums::EndpointType;
use vpnaas_model::grammar;
use vpnaas_model::network::{
    AllocationPool, FixedIp, GatewayInfo, HostRoute, Network, Router, RouterInterface, Subnet,
};
use vpnaas_model::site_connection::SiteConnection;
use vpnaas_model::standard_attr::StandardAttrs;
use vpnaas_model::vpn_service::VpnService;
use vpnaas_model::{Error as Fault, Kind};
use vpnaas_store::Transaction;

use super::{build, changed, fetch, fetch_visible_subnet, network_visible, save, timestamp};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

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

pub(super) async fn create(
    tx: &mut dyn Transaction,
    caller: &Caller,
    kind: InventoryKind,
    fields: Map<String, Value>,
) -> ApiResult<Value> {
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
            save(tx, &network).await
        }
        InventoryKind::Subnet => create_subnet(tx, caller, fields).await,
        InventoryKind::Router => create_router(tx, caller, fields).await,
    }
}

pub(super) async fn update(
    tx: &mut dyn Transaction,
    caller: &Caller,
    kind: InventoryKind,
    id: &str,
    changes: Map<String, Value>,
) -> ApiResult<Value> {
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
            save(tx, &updated).await
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
) -> ApiResult<()> {
    match kind {
        InventoryKind::Network => delete_network(tx, caller, id).await,
        InventoryKind::Subnet => {
            let subnet: Subnet = fetch(tx, caller, id).await?;
            delete_subnet(tx, &subnet).await
        }
        InventoryKind::Router => delete_router(tx, caller, id).await,
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

async fn delete_network(tx: &mut dyn Transaction, caller: &Caller, id: &str) -> ApiResult<()> {
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
    Ok(())
}

async fn create_subnet(
    tx: &mut dyn Transaction,
    caller: &Caller,
    fields: Map<String, Value>,
) -> ApiResult<Value> {
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
        let other_net: IpNet = other
            .cidr
            .parse()
            .map_err(|_| ApiError::Internal("stored cidr".into()))?;
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
    save(tx, &subnet).await
}

async fn update_subnet(
    tx: &mut dyn Transaction,
    caller: &Caller,
    id: &str,
    mut changes: Map<String, Value>,
) -> ApiResult<Value> {
    let subnet: Subnet = fetch(tx, caller, id).await?;
    if let Some(given) = changes.get("gateway_ip").cloned() {
        let cidr: IpNet = subnet
            .cidr
            .parse()
            .map_err(|_| ApiError::Internal("stored cidr".into()))?;
        let gateway = if given.is_null() {
            None
        } else {
            Some(check_gateway(cidr, &given)?)
        };
        if gateway.map(|g| g.to_string()) != subnet.gateway_ip
            && subnet_has_router_port(tx, id).await?
        {
            return Err(Fault::conflict(
                FaultKind::SubnetInUse,
                format!("Unable to complete operation on subnet {id}: the gateway_ip is held by a router interface."),
            )
            .into());
        }
        changes.insert(
            "allocation_pools".into(),
            serde_json::to_value(allocation_pools(cidr, gateway))?,
        );
    }
    let mut updated = changed(&subnet, changes)?;
    check_stored_only_attrs(&updated, id)?;
    check_ipv6_modes(&updated)?;
    updated.standard.touch(&timestamp());
    save(tx, &updated).await
}

/// Neutron's checks of the attributes vpnaas stores without acting on them: DNS servers
/// and host routes of the subnet's IP version, within Neutron's default limits.
/// `subject` names the subnet in the limit messages ("new subnet" or its id).
fn check_stored_only_attrs(subnet: &Subnet, subject: &str) -> ApiResult<()> {
    if subnet.dns_nameservers.len() > MAX_DNS_NAMESERVERS {
        return Err(Fault::bad_request(
            FaultKind::DNSNameServersExhausted,
            format!("Unable to complete operation for {subject}. The number of DNS nameservers exceeds the limit {MAX_DNS_NAMESERVERS}."),
        )
        .into());
    }
    if subnet.host_routes.len() > MAX_HOST_ROUTES {
        return Err(Fault::bad_request(
            FaultKind::HostRoutesExhausted,
            format!("Unable to complete operation for {subject}. The number of host routes exceeds the limit {MAX_HOST_ROUTES}."),
        )
        .into());
    }
    let addresses = subnet
        .dns_nameservers
        .iter()
        .map(|ip| ("dns_nameserver", ip.as_str()))
        .chain(subnet.host_routes.iter().flat_map(|r| {
            [
                ("destination", r.destination.as_str()),
                ("nexthop", r.nexthop.as_str()),
            ]
        }));
    for (what, text) in addresses {
        if ip_version_of(text) != Some(subnet.ip_version) {
            return Err(Fault::conversion(format!(
                "{what} '{text}' does not match the ip_version '{}'",
                subnet.ip_version
            ))
            .into());
        }
    }
    Ok(())
}

/// The IP version of an address or CIDR.
fn ip_version_of(text: &str) -> Option<u8> {
    let address = text.split('/').next()?;
    address
        .parse::<IpAddr>()
        .ok()
        .map(|ip| if ip.is_ipv4() { 4 } else { 6 })
}

/// Neutron's rules for `ipv6_ra_mode` and `ipv6_address_mode`: IPv6 only, with DHCP
/// enabled, equal when both are set.
fn check_ipv6_modes(subnet: &Subnet) -> ApiResult<()> {
    let modes = [
        ("ipv6_ra_mode", &subnet.ipv6_ra_mode),
        ("ipv6_address_mode", &subnet.ipv6_address_mode),
    ];
    let invalid = |why: String| Err(Fault::conversion(why).into());
    if let Some((name, _)) = modes.iter().find(|(_, m)| m.is_some()) {
        if subnet.ip_version == 4 {
            return invalid(format!("{name} is not valid when ip_version is 4"));
        }
        if !subnet.enable_dhcp {
            return invalid(
                "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False"
                    .into(),
            );
        }
    }
    if let (Some(ra), Some(address)) = (&subnet.ipv6_ra_mode, &subnet.ipv6_address_mode)
        && ra != address
    {
        return invalid(format!(
            "ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to '{address}' is not valid. If both attributes are set, they must be the same value"
        ));
    }
    Ok(())
}

async fn subnet_has_router_port(tx: &mut dyn Transaction, subnet_id: &str) -> ApiResult<bool> {
    Ok(tx
        .first_referrer(Kind::Router, Kind::Subnet, subnet_id)
        .await?
        .is_some())
}

async fn delete_subnet(tx: &mut dyn Transaction, subnet: &Subnet) -> ApiResult<()> {
    let id = subnet.id.as_str();
    if let Some(group) = tx
        .first_referrer(Kind::EndpointGroup, Kind::Subnet, id)
        .await?
    {
        return Err(Fault::conflict(
            FaultKind::SubnetInUseByEndpointGroup,
            format!("Subnet {id} is used by endpoint group {group}"),
        )
        .into());
    }
    if subnet_has_router_port(tx, id).await? {
        return Err(Fault::conflict(
            FaultKind::SubnetInUse,
            format!("Unable to complete operation on subnet {id}: One or more ports have an IP allocation from this subnet."),
        )
        .into());
    }
    if let Some(mut network) = tx.load::<Network>(&subnet.network_id).await? {
        network.subnets.retain(|s| s != id);
        network.standard.touch(&timestamp());
        tx.save(&network).await?;
    }
    tx.delete(Kind::Subnet, id).await?;
    Ok(())
}

fn check_gateway(cidr: IpNet, given: &Value) -> ApiResult<IpAddr> {
    let text = given.as_str().unwrap_or_default();
    let ip: IpAddr = text.parse().map_err(|_| {
        Fault::invalid_attribute("gateway_ip", format!("'{text}' is not a valid IP address"))
    })?;
    if !cidr.contains(&ip)
        || ip == cidr.network()
        || (cidr.addr().is_ipv4() && ip == cidr.broadcast())
    {
        return Err(Fault::bad_request(
            FaultKind::InvalidInput,
            format!("Invalid input for operation: Gateway {text} is not a valid host address in subnet {cidr}."),
        )
        .into());
    }
    Ok(ip)
}

fn host_range(cidr: IpNet) -> Option<(u128, u128)> {
    let (network, last) = (to_int(cidr.network()), to_int(cidr.broadcast()));
    let (first, last) = match cidr {
        IpNet::V4(_) if cidr.prefix_len() >= 31 => (network, last),
        IpNet::V4(_) => (network + 1, last - 1),
        IpNet::V6(_) => (network + 1, last),
    };
    (first <= last).then_some((first, last))
}

fn first_host(cidr: IpNet) -> Option<IpAddr> {
    host_range(cidr).map(|(first, _)| from_int(first, cidr))
}

fn allocation_pools(cidr: IpNet, gateway: Option<IpAddr>) -> Vec<AllocationPool> {
    let Some((first, last)) = host_range(cidr) else {
        return vec![];
    };
    let pool = |a: u128, b: u128| AllocationPool {
        start: from_int(a, cidr).to_string(),
        end: from_int(b, cidr).to_string(),
    };
    match gateway.map(to_int).filter(|g| (first..=last).contains(g)) {
        None => vec![pool(first, last)],
        Some(g) => {
            let mut pools = Vec::new();
            if g > first {
                pools.push(pool(first, g - 1));
            }
            if g < last {
                pools.push(pool(g + 1, last));
            }
            pools
        }
    }
}

fn to_int(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4).into(),
        IpAddr::V6(v6) => v6.into(),
    }
}

fn from_int(n: u128, like: IpNet) -> IpAddr {
    match like {
        IpNet::V4(_) => IpAddr::V4((n as u32).into()),
        IpNet::V6(_) => IpAddr::V6(n.into()),
    }
}

async fn create_router(
    tx: &mut dyn Transaction,
    caller: &Caller,
    mut fields: Map<String, Value>,
) -> ApiResult<Value> {
    let requested = fields
        .remove("external_gateway_info")
        .unwrap_or(Value::Null);
    if let Some(flavor_id) = fields.get("flavor_id").and_then(Value::as_str) {
        return Err(no_router_flavor(tx, flavor_id).await);
    }
    let mut router: Router = build(
        fields,
        vec![
            ("status", json!("ACTIVE")),
            ("external_gateway_info", Value::Null),
            ("interfaces", json!([])),
        ],
    )?;
    router.standard = StandardAttrs::new(&timestamp());
    router.external_gateway_info = gateway_for(tx, caller, &router, &requested).await?;
    save(tx, &router).await
}

/// vpnaas routers have no flavors (Neutron's `l3-flavors`): an unknown flavor is not
/// found, a known one is a VPN flavor, which no router can run on.
async fn no_router_flavor(tx: &mut dyn Transaction, flavor_id: &str) -> ApiError {
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

async fn update_router(
    tx: &mut dyn Transaction,
    caller: &Caller,
    id: &str,
    mut changes: Map<String, Value>,
) -> ApiResult<Value> {
    let router: Router = fetch(tx, caller, id).await?;
    let requested = changes.remove("external_gateway_info");
    let mut updated = changed(&router, changes)?;
    updated.standard.touch(&timestamp());
    if updated.ha != router.ha {
        check_no_vpn_service(tx, id).await?;
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
            check_no_vpn_service(tx, id).await?;
        }
        updated.external_gateway_info = gateway;
    }
    if updated.routes != router.routes {
        check_routes(tx, &updated).await?;
    }
    save(tx, &updated).await
}

/// Neutron's extra-route checks: at most 30 routes, each next hop on a subnet the
/// router is connected to and not one of the router's own addresses.
async fn check_routes(tx: &mut dyn Transaction, router: &Router) -> ApiResult<()> {
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
        let nexthop: IpAddr = route
            .nexthop
            .parse()
            .map_err(|_| invalid("the nexthop is not a valid IP address"))?;
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
async fn connected_subnets(tx: &mut dyn Transaction, router: &Router) -> ApiResult<Vec<IpNet>> {
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
            let cidr: IpNet = subnet
                .cidr
                .parse()
                .map_err(|_| ApiError::Internal("stored cidr".into()))?;
            connected.push(cidr);
        }
    }
    Ok(connected)
}

/// The router's own addresses: its interfaces' and its gateway's.
fn router_addresses(router: &Router) -> Vec<IpAddr> {
    let gateway = router
        .external_gateway_info
        .iter()
        .flat_map(|g| g.external_fixed_ips.iter().map(|f| f.ip_address.as_str()));
    router
        .interfaces
        .iter()
        .map(|i| i.ip_address.as_str())
        .chain(gateway)
        .filter_map(|ip| ip.parse().ok())
        .collect()
}

/// `RouterInterfaceInUseByRoute` when an extra route goes through the subnet.
fn check_no_route_through(router: &Router, subnet: &Subnet) -> ApiResult<()> {
    let Ok(cidr) = subnet.cidr.parse::<IpNet>() else {
        return Ok(());
    };
    let in_use = router.routes.iter().any(|r: &HostRoute| {
        r.nexthop
            .parse::<IpAddr>()
            .is_ok_and(|hop| cidr.contains(&hop))
    });
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

async fn delete_router(tx: &mut dyn Transaction, caller: &Caller, id: &str) -> ApiResult<()> {
    let router: Router = fetch(tx, caller, id).await?;
    check_no_vpn_service(tx, id).await?;
    if !router.interfaces.is_empty() {
        return Err(Fault::conflict(
            FaultKind::RouterInUse,
            format!("Router {id} still has ports"),
        )
        .into());
    }
    tx.delete(Kind::Router, id).await?;
    Ok(())
}

/// `RouterInUse` when any VPN service runs on the router (its gateway must stay put).
async fn check_no_vpn_service(tx: &mut dyn Transaction, router_id: &str) -> ApiResult<()> {
    let services = tx
        .referrers(Kind::VpnService, Kind::Router, router_id)
        .await?;
    if services.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = services.iter().map(|s| s.id.as_str()).collect();
    Err(Fault::conflict(
        FaultKind::RouterInUse,
        format!(
            "Router {router_id} is currently used by VPN service(s) ({})",
            ids.join(", ")
        ),
    )
    .into())
}

/// Resolves a requested gateway: keeps the current addresses when the network and the
/// requested addresses are unchanged, else validates and allocates.
async fn gateway_for(
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
                ip_address: ip.to_string(),
            });
        }
    }
    for request in wanted {
        let ip = requested_address(tx, &network, &request, &taken).await?;
        taken.push(
            ip.0.parse()
                .map_err(|_| ApiError::Internal("address".into()))?,
        );
        fixed.push(FixedIp {
            subnet_id: ip.1,
            ip_address: ip.0,
        });
    }
    Ok(Some(GatewayInfo {
        network_id: network_id.to_string(),
        enable_snat,
        external_fixed_ips: fixed,
    }))
}

/// A requested gateway address: `(address, subnet_id)`, checked to lie in a subnet of the
/// external network and to be free.
async fn requested_address(
    tx: &mut dyn Transaction,
    network: &Network,
    request: &Map<String, Value>,
    taken: &[IpAddr],
) -> ApiResult<(String, String)> {
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
            (None, Some(ip)) => s.cidr.parse::<IpNet>().is_ok_and(|c| c.contains(&ip)),
            (None, None) => false,
        })
        .ok_or_else(|| Fault::bad_request(FaultKind::BadRequest, format!("Bad router request: no subnet of network {} matches the requested external_fixed_ips.", network.id)))?;
    let ip = match wanted_ip {
        Some(ip) => {
            let cidr: IpNet = subnet
                .cidr
                .parse()
                .map_err(|_| ApiError::Internal("stored cidr".into()))?;
            if !cidr.contains(&ip) {
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
    Ok((ip.to_string(), subnet.id.clone()))
}

/// Addresses on an external network held by subnet gateways and other routers' gateways.
async fn addresses_in_use(
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
        taken.extend(ips.filter_map(|f| f.ip_address.parse::<IpAddr>().ok()));
    }
    for subnet in tx
        .load_referrers::<Subnet>(Kind::Network, network_id)
        .await?
    {
        taken.extend(subnet.gateway_ip.and_then(|g| g.parse::<IpAddr>().ok()));
    }
    Ok(taken)
}

/// The lowest free address of the subnet's allocation pools.
fn allocate(subnet: &Subnet, taken: &[IpAddr]) -> Option<IpAddr> {
    let cidr: IpNet = subnet.cidr.parse().ok()?;
    subnet.allocation_pools.iter().find_map(|pool| {
        let (start, end): (IpAddr, IpAddr) = (pool.start.parse().ok()?, pool.end.parse().ok()?);
        (to_int(start)..=to_int(end))
            .take(65536)
            .map(|n| from_int(n, cidr))
            .find(|ip| !taken.contains(ip))
    })
}

/// `add_router_interface` or `remove_router_interface`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterfaceChange {
    /// Attach the subnet (the router takes its gateway address).
    Add,
    /// Detach the subnet.
    Remove,
}

/// Adds or removes a router interface by `subnet_id`; returns Neutron's interface info.
pub async fn change_router_interface(
    app: &crate::App,
    caller: &Caller,
    router_id: &str,
    body: Value,
    change: InterfaceChange,
) -> ApiResult<Value> {
    caller.require_write("update_router")?;
    let subnet_id = interface_subnet(&body)?;
    let mut tx = app.store.begin().await?;
    let mut router: Router = fetch(tx.as_mut(), caller, router_id).await?;
    let subnet = fetch_visible_subnet(tx.as_mut(), caller, &subnet_id).await?;
    let port_id = match change {
        InterfaceChange::Add => add_interface(tx.as_mut(), &mut router, &subnet).await?,
        InterfaceChange::Remove => remove_interface(tx.as_mut(), &mut router, &subnet).await?,
    };
    router.standard.touch(&timestamp());
    tx.save(&router).await?;
    tx.commit().await?;
    super::notify::notify(app, super::notify::touched(&router).into_iter().collect());
    Ok(json!({
        "id": router.id, "tenant_id": router.tenant_id, "project_id": router.project_id,
        "port_id": port_id, "subnet_id": subnet.id, "subnet_ids": [subnet.id], "network_id": subnet.network_id,
    }))
}

fn interface_subnet(body: &Value) -> ApiResult<String> {
    let Some(map) = body.as_object() else {
        return Err(Fault::http_bad_request("Body must be a dictionary").into());
    };
    if map.contains_key("port_id") {
        return Err(Fault::bad_request(
            FaultKind::BadRequest,
            "Bad router request: only subnet_id is supported by vpnaas",
        )
        .into());
    }
    let id = map
        .get("subnet_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    grammar::check_uuid(id).map_err(|_| {
        Fault::bad_request(
            FaultKind::BadRequest,
            "Bad router request: Either subnet_id or port_id must be specified",
        )
    })?;
    Ok(id.to_string())
}

async fn add_interface(
    tx: &mut dyn Transaction,
    router: &mut Router,
    subnet: &Subnet,
) -> ApiResult<String> {
    let bad = |msg: String| {
        ApiError::from(Fault::bad_request(
            FaultKind::BadRequest,
            format!("Bad router request: {msg}"),
        ))
    };
    if router.has_interface_on(&subnet.id) {
        return Err(bad(format!(
            "Router already has a port on subnet {}.",
            subnet.id
        )));
    }
    let gateway = subnet
        .gateway_ip
        .clone()
        .ok_or_else(|| bad(format!("Subnet {} has no gateway_ip.", subnet.id)))?;
    let cidr: IpNet = subnet
        .cidr
        .parse()
        .map_err(|_| ApiError::Internal("stored cidr".into()))?;
    for other in &router.interfaces {
        let Some(other_subnet) = tx.load::<Subnet>(&other.subnet_id).await? else {
            continue;
        };
        let other_cidr: IpNet = other_subnet
            .cidr
            .parse()
            .map_err(|_| ApiError::Internal("stored cidr".into()))?;
        if other_cidr.contains(&cidr.network()) || cidr.contains(&other_cidr.network()) {
            return Err(bad(format!(
                "Cidr {} of subnet {} overlaps with cidr {} of subnet {}.",
                subnet.cidr, subnet.id, other_subnet.cidr, other_subnet.id
            )));
        }
    }
    if let Some(holder) = tx
        .load_referrers::<Router>(Kind::Subnet, &subnet.id)
        .await?
        .into_iter()
        .find(|r| r.has_interface_on(&subnet.id))
    {
        return Err(Fault::conflict(
            FaultKind::IpAddressAlreadyAllocated,
            format!(
                "IP address {gateway} already allocated in subnet {} (router {})",
                subnet.id, holder.id
            ),
        )
        .into());
    }
    let port_id = uuid::Uuid::new_v4().to_string();
    router.interfaces.push(RouterInterface {
        subnet_id: subnet.id.clone(),
        port_id: port_id.clone(),
        ip_address: gateway,
    });
    Ok(port_id)
}

async fn remove_interface(
    tx: &mut dyn Transaction,
    router: &mut Router,
    subnet: &Subnet,
) -> ApiResult<String> {
    let position = router
        .interfaces
        .iter()
        .position(|i| i.subnet_id == subnet.id)
        .ok_or_else(|| {
            Fault::not_found(
                FaultKind::RouterInterfaceNotFoundForSubnet,
                format!(
                    "Router {} has no interface on subnet {}",
                    router.id, subnet.id
                ),
            )
        })?;
    check_no_route_through(router, subnet)?;
    for service in tx
        .load_referrers::<VpnService>(Kind::Router, &router.id)
        .await?
    {
        if service.subnet_id.as_deref() == Some(subnet.id.as_str()) {
            return Err(Fault::conflict(
                FaultKind::SubnetInUseByVPNService,
                format!("Subnet {} is used by VPNService {}", subnet.id, service.id),
            )
            .into());
        }
        for conn in tx
            .load_referrers::<SiteConnection>(Kind::VpnService, &service.id)
            .await?
        {
            if local_group_holds(tx, &conn, &subnet.id).await? {
                return Err(Fault::conflict(
                    FaultKind::SubnetInUseByIPsecSiteConnection,
                    format!(
                        "Subnet {} is used by ipsec site connection {}",
                        subnet.id, conn.id
                    ),
                )
                .into());
            }
        }
    }
    Ok(router.interfaces.remove(position).port_id)
}

async fn local_group_holds(
    tx: &mut dyn Transaction,
    conn: &SiteConnection,
    subnet_id: &str,
) -> ApiResult<bool> {
    let Some(group_id) = &conn.local_ep_group_id else {
        return Ok(false);
    };
    let group: Option<EndpointGroup> = tx.load(group_id).await?;
    Ok(group.is_some_and(|g| {
        g.endpoint_type == EndpointType::Subnet && g.endpoints.iter().any(|e| e == subnet_id)
    }))
}
