//! Router interfaces: adding a subnet to a router and removing it, refused while a VPN
//! service, endpoint group or connection needs it.

use serde_json::{Value, json};
use vpnaas_model::FaultKind;
use vpnaas_model::grammar;
use vpnaas_model::network::{Router, RouterInterface, Subnet};
use vpnaas_model::{Error as Fault, Kind};
use vpnaas_store::Transaction;

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::service::{fetch, fetch_visible_subnet, guards, timestamp};

use super::*;

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
    crate::service::notify::notify(
        app,
        crate::service::notify::touched(&router)
            .into_iter()
            .collect(),
    );
    Ok(json!({
        "id": router.id, "tenant_id": router.tenant_id, "project_id": router.project_id,
        "port_id": port_id, "subnet_id": subnet.id, "subnet_ids": [subnet.id], "network_id": subnet.network_id,
    }))
}

pub(super) fn interface_subnet(body: &Value) -> ApiResult<String> {
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

pub(super) async fn add_interface(
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
    let cidr = subnet.cidr.net();
    for other in &router.interfaces {
        let Some(other_subnet) = tx.load::<Subnet>(&other.subnet_id).await? else {
            continue;
        };
        let other_cidr = other_subnet.cidr.net();
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

pub(super) async fn remove_interface(
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
    guards::interface_unused(tx, &router.id, &subnet.id).await?;
    Ok(router.interfaces.remove(position).port_id)
}
