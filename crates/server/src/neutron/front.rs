//! The requests the cloud's HTTP front sends to vpnaas before Neutron (`inventory =
//! "neutron"`): deleting a router or a subnet, changing a router's gateway or HA mode,
//! removing a router interface or external gateways. Neutron's own VPN plugin refuses
//! these from inside Neutron while a VPN service needs the object; vpnaas, outside it,
//! refuses them with the same errors (`RouterInUse`, `SubnetInUseByVPNService`, …) and
//! passes everything else on to Neutron unchanged, as the caller, answering what Neutron
//! answers. After a change passed on, the copy of a router in use is read again.

use axum::body::Bytes;
use axum::extract::{FromRequest, OriginalUri, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use vpnaas_model::network::Router;
use vpnaas_model::{Error as Fault, FaultKind, Kind};
use vpnaas_store::Transaction;

use super::{Acting, Neutron, mirror};
use crate::App;
use crate::api::{Endpoint, Path};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::openapi::Operation;
use crate::service::{guards, notify};

/// The guarded operations, for the API's route list.
pub fn endpoints() -> Vec<Endpoint> {
    let guarded = |summary: &str| {
        Operation::new("neutron", summary)
            .answers_empty(200, "Neutron's answer, passed on")
            .refuses(&[400, 401, 404, 409, 503])
    };
    vec![
        Endpoint::new(
            Method::DELETE,
            "/v2.0/routers/{id}",
            delete_router,
            guarded("delete a Neutron router, unless a VPN service is on it"),
        ),
        Endpoint::new(
            Method::PUT,
            "/v2.0/routers/{id}",
            update_router,
            guarded("update a Neutron router, unless it moves the gateway a VPN service uses"),
        ),
        Endpoint::new(
            Method::PUT,
            "/v2.0/routers/{id}/remove_router_interface",
            remove_interface,
            guarded(
                "remove a router interface, unless a VPN service or connection uses the subnet",
            ),
        ),
        Endpoint::new(
            Method::PUT,
            "/v2.0/routers/{id}/remove_external_gateways",
            remove_gateways,
            guarded("remove external gateways, unless a VPN service is on the router"),
        ),
        Endpoint::new(
            Method::DELETE,
            "/v2.0/subnets/{id}",
            delete_subnet,
            guarded("delete a Neutron subnet, unless a VPN service or endpoint group uses it"),
        ),
    ]
}

/// The request as it came, to pass on.
struct Passed {
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl FromRequest<App> for Passed {
    type Rejection = ApiError;

    async fn from_request(request: Request, app: &App) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.clone(), |original| original.0.clone());
        let body = Bytes::from_request(Request::from_parts(parts.clone(), body), app)
            .await
            .map_err(|e| Fault::http_bad_request(e.body_text()))?;
        Ok(Passed {
            method: parts.method,
            uri,
            headers: parts.headers,
            body,
        })
    }
}

fn neutron_of(app: &App) -> ApiResult<&Neutron> {
    app.neutron
        .as_deref()
        .ok_or_else(|| ApiError::Internal("inventory = neutron without a Neutron client".into()))
}

/// `RouterInUse` for the router's own project while a VPN service is on it.
async fn router_unused(app: &App, caller: &Caller, id: &str) -> ApiResult<()> {
    let mut tx = app.store.read().await?;
    if guarded_for(caller, tx.as_mut(), Kind::Router, id).await? {
        guards::router_unused(tx.as_mut(), id).await?;
    }
    Ok(())
}

async fn delete_router(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    request: Passed,
) -> ApiResult<Response> {
    router_unused(&app, &caller, &id).await?;
    pass_on(&app, &caller, request, None).await
}

async fn remove_gateways(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    request: Passed,
) -> ApiResult<Response> {
    router_unused(&app, &caller, &id).await?;
    pass_on(&app, &caller, request, Some(&id)).await
}

async fn update_router(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    request: Passed,
) -> ApiResult<Response> {
    let change: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let change = &change["router"];
    let held: Option<Router> = app.store.read().await?.load(&id).await?;
    if let Some(held) = held
        && (moves_gateway(&held, change) || changes_ha(&held, change))
    {
        router_unused(&app, &caller, &id).await?;
    }
    pass_on(&app, &caller, request, Some(&id)).await
}

/// Whether a router update moves or removes the gateway the copy holds.
fn moves_gateway(held: &Router, change: &Value) -> bool {
    let Some(requested) = change.get("external_gateway_info") else {
        return false;
    };
    let Some(current) = &held.external_gateway_info else {
        return false;
    };
    if requested.get("network_id").and_then(Value::as_str) != Some(current.network_id.as_str()) {
        return true;
    }
    match requested
        .get("external_fixed_ips")
        .and_then(Value::as_array)
    {
        None => false,
        Some(asked) => {
            let held_ips: Vec<&str> = current
                .external_fixed_ips
                .iter()
                .map(|f| f.ip_address.as_str())
                .collect();
            asked.iter().any(|fixed| {
                fixed
                    .get("ip_address")
                    .and_then(Value::as_str)
                    .is_none_or(|ip| !held_ips.contains(&ip))
            })
        }
    }
}

fn changes_ha(held: &Router, change: &Value) -> bool {
    change
        .get("ha")
        .and_then(Value::as_bool)
        .is_some_and(|ha| ha != held.ha)
}

async fn remove_interface(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    request: Passed,
) -> ApiResult<Response> {
    let neutron = neutron_of(&app)?;
    let asked: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let subnets = match (asked["subnet_id"].as_str(), asked["port_id"].as_str()) {
        (Some(subnet), _) => vec![subnet.to_string()],
        (None, Some(port)) => subnets_of_port(neutron, &caller, port).await?,
        (None, None) => vec![],
    };
    let mut tx = app.store.read().await?;
    if guarded_for(&caller, tx.as_mut(), Kind::Router, &id).await? {
        for subnet in &subnets {
            guards::interface_unused(tx.as_mut(), &id, subnet).await?;
        }
    }
    drop(tx);
    pass_on(&app, &caller, request, Some(&id)).await
}

/// The subnets of a port the caller names (none when Neutron does not show it to the
/// caller: Neutron then refuses the request itself).
async fn subnets_of_port(neutron: &Neutron, caller: &Caller, port: &str) -> ApiResult<Vec<String>> {
    let Some(port) = neutron.show(Acting::For(caller), "ports", port).await? else {
        return Ok(vec![]);
    };
    Ok(port["fixed_ips"]
        .as_array()
        .map(|ips| {
            ips.iter()
                .filter_map(|ip| ip["subnet_id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

async fn delete_subnet(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    request: Passed,
) -> ApiResult<Response> {
    let mut tx = app.store.read().await?;
    if guarded_for(&caller, tx.as_mut(), Kind::Subnet, &id).await? {
        subnet_unused(tx.as_mut(), &id).await?;
    }
    drop(tx);
    pass_on(&app, &caller, request, None).await
}

/// `SubnetInUseByVPNService` or `SubnetInUseByEndpointGroup` while VPN objects name it.
async fn subnet_unused(tx: &mut dyn Transaction, id: &str) -> ApiResult<()> {
    if let Some(service) = tx
        .first_referrer(Kind::VpnService, Kind::Subnet, id)
        .await?
    {
        return Err(Fault::conflict(
            FaultKind::SubnetInUseByVPNService,
            format!("Subnet {id} is used by VPNService {service}"),
        )
        .into());
    }
    guards::subnet_unused_by_groups(tx, id).await
}

/// Whether the guards speak to this caller: they do for the object's own project (and
/// admins); to anyone else the request goes on to Neutron, which answers as it answers
/// them (not found), so that a guard never reveals another project's object.
async fn guarded_for(
    caller: &Caller,
    tx: &mut dyn Transaction,
    kind: Kind,
    id: &str,
) -> ApiResult<bool> {
    Ok(match tx.get(kind, id).await? {
        Some(record) => caller.owns(&record.project_id),
        None => true,
    })
}

/// Sends the request on to Neutron as the caller and answers what Neutron answered;
/// after a change to a router vpnaas holds a copy of, reads it again.
async fn pass_on(
    app: &App,
    caller: &Caller,
    request: Passed,
    router_id: Option<&str>,
) -> ApiResult<Response> {
    let neutron = neutron_of(app)?;
    let mut headers = HeaderMap::new();
    for name in ["content-type", "accept", "x-openstack-request-id"] {
        if let Some(value) = request.headers.get(name) {
            headers.insert(name, value.clone());
        }
    }
    let path = request.uri.path_and_query().map_or_else(
        || request.uri.path().to_string(),
        |p| p.as_str().to_string(),
    );
    let answer = neutron
        .send(
            Acting::For(caller),
            request.method,
            &path,
            headers,
            request.body,
        )
        .await?;
    if answer.status.is_success()
        && let Some(id) = router_id
    {
        refresh(app, neutron, id).await;
    }
    let mut response = (answer.status, answer.body).into_response();
    for name in ["content-type", "x-openstack-request-id"] {
        if let Some(value) = answer.headers.get(name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    if response.status() == StatusCode::NO_CONTENT {
        response.headers_mut().remove("content-type");
    }
    Ok(response)
}

/// Reads a router again if vpnaas holds a copy (a failure is left to the next poll).
async fn refresh(app: &App, neutron: &Neutron, router_id: &str) {
    let held = match app.store.get(Kind::Router, router_id).await {
        Ok(held) => held.is_some(),
        Err(error) => {
            tracing::warn!(%error, "cannot read the router copy");
            return;
        }
    };
    if !held {
        return;
    }
    let ids = [router_id.to_string()];
    let result = match mirror::fetch(neutron, &ids, &[]).await {
        Ok(found) => mirror::store(app, found).await,
        Err(error) => Err(error.into()),
    };
    match result {
        Ok(touched) => notify::notify(app, touched),
        Err(error) => tracing::warn!(%error, router_id, "cannot read the router again"),
    }
}
