//! Subnets: creation with Neutron's checks (gateway, allocation pools, DNS servers, host
//! routes, IPv6 modes), updates of what may change, and deletion unless a VPN object or a
//! router port uses the subnet.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value, json};
use vpnaas_model::FaultKind;
use vpnaas_model::network::{AllocationPool, Network, Router, Subnet};
use vpnaas_model::standard_attr::StandardAttrs;
use vpnaas_model::{Error as Fault, Kind};
use vpnaas_store::Transaction;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::service::{Stored, build, changed, fetch, guards, timestamp};

use super::*;

pub(super) async fn update_subnet(
    tx: &mut dyn Transaction,
    caller: &Caller,
    id: &str,
    changes: Map<String, Value>,
) -> ApiResult<Stored> {
    let subnet: Subnet = fetch(tx, caller, id).await?;
    let mut pools = None;
    if let Some(given) = changes.get("gateway_ip") {
        let cidr = subnet.cidr.net();
        let gateway = if given.is_null() {
            None
        } else {
            Some(check_gateway(cidr, given)?)
        };
        if gateway.map(|g| g.to_string()) != subnet.gateway_ip.as_ref().map(|g| g.to_string())
            && subnet_has_router_port(tx, id).await?
        {
            return Err(Fault::conflict(
                FaultKind::SubnetInUse,
                format!("Unable to complete operation on subnet {id}: the gateway_ip is held by a router interface."),
            )
            .into());
        }
        pools = Some(allocation_pools(cidr, gateway));
    }
    let mut updated = changed(&subnet, changes)?;
    if let Some(pools) = pools {
        updated.allocation_pools = pools;
    }
    check_stored_only_attrs(&updated, id)?;
    check_ipv6_modes(&updated)?;
    updated.standard.touch(&timestamp());
    Ok(updated.into())
}

/// Neutron's checks of the attributes vpnaas stores without acting on them: DNS servers
/// and host routes of the subnet's IP version, within Neutron's default limits.
/// `subject` names the subnet in the limit messages ("new subnet" or its id).
pub(super) fn check_stored_only_attrs(subnet: &Subnet, subject: &str) -> ApiResult<()> {
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
        .map(|ip| ("dns_nameserver", ip.as_str(), ip.version()))
        .chain(subnet.host_routes.iter().flat_map(|r| {
            [
                (
                    "destination",
                    r.destination.as_str(),
                    r.destination.version(),
                ),
                ("nexthop", r.nexthop.as_str(), r.nexthop.version()),
            ]
        }));
    for (what, text, version) in addresses {
        if version != subnet.ip_version {
            return Err(Fault::conversion(format!(
                "{what} '{text}' does not match the ip_version '{}'",
                subnet.ip_version
            ))
            .into());
        }
    }
    Ok(())
}

/// Neutron's rules for `ipv6_ra_mode` and `ipv6_address_mode`: IPv6 only, with DHCP
/// enabled, equal when both are set.
pub(super) fn check_ipv6_modes(subnet: &Subnet) -> ApiResult<()> {
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

pub(super) async fn subnet_has_router_port(
    tx: &mut dyn Transaction,
    subnet_id: &str,
) -> ApiResult<bool> {
    Ok(tx
        .first_referrer(Kind::Router, Kind::Subnet, subnet_id)
        .await?
        .is_some())
}

pub(super) async fn delete_subnet(tx: &mut dyn Transaction, subnet: &Subnet) -> ApiResult<()> {
    let id = subnet.id.as_str();
    guards::subnet_unused_by_groups(tx, id).await?;
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

pub(super) fn check_gateway(cidr: IpNet, given: &Value) -> ApiResult<IpAddr> {
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

pub(super) fn host_range(cidr: IpNet) -> Option<(u128, u128)> {
    let (network, last) = (to_int(cidr.network()), to_int(cidr.broadcast()));
    let (first, last) = match cidr {
        IpNet::V4(_) if cidr.prefix_len() >= 31 => (network, last),
        IpNet::V4(_) => (network + 1, last - 1),
        IpNet::V6(_) => (network + 1, last),
    };
    (first <= last).then_some((first, last))
}

pub(super) fn first_host(cidr: IpNet) -> Option<IpAddr> {
    host_range(cidr).map(|(first, _)| from_int(first, cidr))
}

pub(super) fn allocation_pools(cidr: IpNet, gateway: Option<IpAddr>) -> Vec<AllocationPool> {
    let Some((first, last)) = host_range(cidr) else {
        return vec![];
    };
    let pool = |a: u128, b: u128| AllocationPool {
        start: from_int(a, cidr).into(),
        end: from_int(b, cidr).into(),
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

pub(super) fn to_int(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4).into(),
        IpAddr::V6(v6) => v6.into(),
    }
}

pub(super) fn from_int(n: u128, like: IpNet) -> IpAddr {
    match like {
        IpNet::V4(_) => IpAddr::V4((n as u32).into()),
        IpNet::V6(_) => IpAddr::V6(n.into()),
    }
}

pub(super) async fn create_router(
    tx: &mut dyn Transaction,
    caller: &Caller,
    mut fields: Map<String, Value>,
) -> ApiResult<Stored> {
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
    Ok(router.into())
}
