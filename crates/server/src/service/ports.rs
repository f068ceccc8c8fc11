//! A read-only view of the ports vpnaas's routers imply: one `network:router_interface`
//! port per router interface, as `GET /v2.0/ports` and `GET /v2.0/ports/{id}` (what
//! `openstack router show` reads to list a router's interfaces). vpnaas has no other
//! ports: no gateway ports, no DHCP, no instances.

use serde_json::{Value, json};
use vpnaas_model::FaultKind;
use vpnaas_model::network::{Router, RouterInterface, Subnet};
use vpnaas_model::{Error as Fault, Kind};

use crate::App;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::listing::project;

/// Neutron's device owner of a router interface port.
const ROUTER_INTERFACE: &str = "network:router_interface";

/// The attributes a port list may be filtered on (any other is refused, as Neutron's
/// filter validation does).
const FILTERS: &[&str] = &[
    "id",
    "name",
    "network_id",
    "device_id",
    "device_owner",
    "status",
    "tenant_id",
    "project_id",
    "mac_address",
    "admin_state_up",
];

/// `GET /v2.0/ports`: the interface ports of the routers the caller sees, filtered by
/// the query's `key=value` pairs (a repeated key matches any of its values).
pub async fn list(app: &App, caller: &Caller, query: &[(String, String)]) -> ApiResult<Value> {
    if let Some((key, _)) = query
        .iter()
        .find(|(k, _)| k != "fields" && !FILTERS.contains(&k.as_str()))
    {
        return Err(Fault::http_bad_request(format!(
            "['{key}'] is invalid attribute for filtering"
        ))
        .into());
    }
    let fields: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "fields")
        .map(|(_, v)| v.clone())
        .collect();
    let ports: Vec<Value> = all(app, caller)
        .await?
        .into_iter()
        .filter(|port| matches(port, query))
        .map(|port| project(port, &fields))
        .collect();
    Ok(json!({ "ports": ports }))
}

/// `GET /v2.0/ports/{id}`.
pub async fn show(app: &App, caller: &Caller, id: &str) -> ApiResult<Value> {
    all(app, caller)
        .await?
        .into_iter()
        .find(|port| port["id"] == id)
        .map(|port| json!({ "port": port }))
        .ok_or_else(|| {
            Fault::not_found(
                FaultKind::PortNotFound,
                format!("Port {id} could not be found."),
            )
            .into()
        })
}

async fn all(app: &App, caller: &Caller) -> ApiResult<Vec<Value>> {
    caller.require_read("get_port")?;
    let mut ports = Vec::new();
    for record in super::visible_records(app, caller, Kind::Router, None).await? {
        let router: Router = record.decode()?;
        for interface in &router.interfaces {
            let network_id = match app.store.get(Kind::Subnet, &interface.subnet_id).await? {
                Some(subnet) => subnet.decode::<Subnet>()?.network_id,
                None => continue,
            };
            ports.push(interface_port(&router, interface, &network_id));
        }
    }
    Ok(ports)
}

fn interface_port(router: &Router, interface: &RouterInterface, network_id: &str) -> Value {
    json!({
        "id": interface.port_id,
        "name": "",
        "description": "",
        "network_id": network_id,
        "tenant_id": router.tenant_id,
        "project_id": router.project_id,
        "mac_address": mac_address(&interface.port_id),
        "admin_state_up": true,
        "status": "ACTIVE",
        "device_id": router.id,
        "device_owner": ROUTER_INTERFACE,
        "fixed_ips": [{"subnet_id": interface.subnet_id, "ip_address": interface.ip_address}],
    })
}

/// A stable, locally administered MAC for a port (Neutron's `fa:16:3e` prefix), derived
/// from its id.
fn mac_address(port_id: &str) -> String {
    let hex: Vec<char> = port_id.chars().filter(char::is_ascii_hexdigit).collect();
    let byte = |i: usize| {
        hex.get(i * 2..i * 2 + 2)
            .map(String::from_iter)
            .unwrap_or_default()
    };
    format!("fa:16:3e:{}:{}:{}", byte(0), byte(1), byte(2))
}

fn matches(port: &Value, query: &[(String, String)]) -> bool {
    let filters = query.iter().filter(|(k, _)| k != "fields");
    let mut keys: Vec<&str> = filters.clone().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.iter().all(|key| {
        filters
            .clone()
            .filter(|(k, _)| k == key)
            .any(|(_, wanted)| match &port[*key] {
                Value::String(text) => text == wanted,
                other => other.to_string().eq_ignore_ascii_case(wanted),
            })
    })
}
