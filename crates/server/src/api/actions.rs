//! The routes that are not plain resources: router interfaces, driver migration, the VPN
//! agent scheduler, service providers, flavor profiles, connection events, the
//! configuration of a connection's far end and its forced re-authentication, credentials
//! for a peer without a PKI and the renewal of a gateway certificate.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use vpnaas_model::Kind;

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::openapi::operations;
use crate::service::flavors::Association;
use crate::service::{self, InterfaceChange};
use crate::{App, InventoryMode};

use super::resources::{list_ports, show_port};
use super::{Endpoint, Path, parse_body};

/// The action routes; those of the built-in inventory (router interfaces, ports) only
/// with it.
pub(super) fn endpoints(inventory: InventoryMode) -> Vec<Endpoint> {
    use Method as M;
    let mut all = vec![
        Endpoint::new(
            M::GET,
            "/v2.0/vpn/ipsec-site-connections/{id}/events",
            connection_events,
            operations::connection_events(),
        ),
        Endpoint::new(
            M::GET,
            "/v2.0/vpn/ipsec-site-connections/{id}/peer-config",
            peer_config,
            operations::peer_config(),
        ),
        Endpoint::new(
            M::POST,
            "/v2.0/vpn/ipsec-site-connections/{id}/reauthenticate",
            reauthenticate,
            operations::reauthenticate(),
        ),
        Endpoint::new(
            M::POST,
            "/v2.0/vpn/ipsec-site-connections/{id}/peer-credentials",
            peer_credentials,
            operations::peer_credentials(),
        ),
        Endpoint::new(
            M::POST,
            "/v2.0/vpn/vpnservices/{id}/renew-certificate",
            renew_certificate,
            operations::renew_certificate(),
        ),
        Endpoint::new(
            M::PUT,
            "/v2.0/routers/{id}/migrate_vpn_driver",
            migrate_driver,
            operations::migrate_driver(),
        ),
        Endpoint::new(
            M::GET,
            "/v2.0/routers/{id}/vpn-agents",
            agents_of_router,
            operations::agents_of_router(),
        ),
        Endpoint::new(
            M::GET,
            "/v2.0/agents/{id}/vpn-routers",
            routers_of_agent,
            operations::routers_of_agent(),
        ),
        Endpoint::new(
            M::POST,
            "/v2.0/agents/{id}/vpn-routers",
            add_router_to_agent,
            operations::add_router_to_agent(),
        ),
        Endpoint::new(
            M::DELETE,
            "/v2.0/agents/{id}/vpn-routers/{router_id}",
            remove_router_from_agent,
            operations::remove_router_from_agent(),
        ),
        Endpoint::new(
            M::GET,
            "/v2.0/service-providers",
            service_providers,
            operations::service_providers(),
        ),
        Endpoint::new(
            M::POST,
            "/v2.0/flavors/{id}/service_profiles",
            associate_profile,
            operations::associate_profile(),
        ),
        Endpoint::new(
            M::DELETE,
            "/v2.0/flavors/{id}/service_profiles/{profile_id}",
            disassociate_profile,
            operations::disassociate_profile(),
        ),
    ];
    if inventory == InventoryMode::Builtin {
        all.extend(inventory_endpoints());
    }
    all
}

/// Router interfaces and ports of the built-in inventory.
fn inventory_endpoints() -> Vec<Endpoint> {
    use Method as M;
    vec![
        Endpoint::new(
            M::PUT,
            "/v2.0/routers/{id}/add_router_interface",
            add_interface,
            operations::router_interface("add_router_interface"),
        ),
        Endpoint::new(
            M::PUT,
            "/v2.0/routers/{id}/remove_router_interface",
            remove_interface,
            operations::router_interface("remove_router_interface"),
        ),
        Endpoint::new(M::GET, "/v2.0/ports", list_ports, operations::list_ports()),
        Endpoint::new(
            M::GET,
            "/v2.0/ports/{id}",
            show_port,
            operations::show_port(),
        ),
    ]
}

async fn add_interface(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let info = service::change_router_interface(
        &app,
        &caller,
        &id,
        parse_body(&body, Kind::Router)?,
        InterfaceChange::Add,
    )
    .await?;
    Ok(Json(info))
}

async fn migrate_driver(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let body = parse_body(&body, Kind::Router)?;
    Ok(Json(
        service::flavors::migrate_router(&app, &caller, &id, &body).await?,
    ))
}

async fn agents_of_router(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        service::scheduler::agents_of_router(&app, &caller, &id).await?,
    ))
}

async fn routers_of_agent(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        service::scheduler::routers_of_agent(&app, &caller, &id).await?,
    ))
}

async fn add_router_to_agent(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let body = parse_body(&body, Kind::Agent)?;
    let answer = service::scheduler::add_router(&app, &caller, &id, &body).await?;
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn remove_router_from_agent(
    State(app): State<App>,
    caller: Caller,
    Path((id, router_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    service::scheduler::remove_router(&app, &caller, &id, &router_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn service_providers(State(app): State<App>, caller: Caller) -> ApiResult<Json<Value>> {
    Ok(Json(service::flavors::providers(
        &caller,
        app.settings.default_driver,
    )?))
}

async fn associate_profile(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let body = parse_body(&body, Kind::Flavor)?;
    let answer =
        service::flavors::change_association(&app, &caller, &id, Association::Add(&body)).await?;
    Ok((StatusCode::CREATED, Json(answer.unwrap_or_default())).into_response())
}

async fn disassociate_profile(
    State(app): State<App>,
    caller: Caller,
    Path((id, profile_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    service::flavors::change_association(&app, &caller, &id, Association::Remove(&profile_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_interface(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let info = service::change_router_interface(
        &app,
        &caller,
        &id,
        parse_body(&body, Kind::Router)?,
        InterfaceChange::Remove,
    )
    .await?;
    Ok(Json(info))
}

async fn connection_events(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    uri: OriginalUri,
) -> ApiResult<Json<Value>> {
    let limit = uri
        .query()
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "limit")
                .and_then(|(_, v)| v.parse().ok())
        })
        .unwrap_or(50);
    Ok(Json(
        service::connection_events(&app, &caller, &id, limit).await?,
    ))
}

async fn reauthenticate(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let conn = service::rotation::reauthenticate(&app, &caller, &id).await?;
    let body = serde_json::json!({ Kind::SiteConnection.singular(): conn });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

async fn peer_credentials(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let body = service::certificates::peer_credentials(&app, &caller, &id).await?;
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(body),
    )
        .into_response())
}

async fn renew_certificate(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let service = service::certificates::renew(&app, &caller, &id).await?;
    Ok(Json(
        serde_json::json!({ Kind::VpnService.singular(): service }),
    ))
}

async fn peer_config(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    uri: OriginalUri,
) -> ApiResult<Response> {
    let request = service::peer_config::Request::from_query(uri.query());
    Ok(
        match service::peer_config::peer_config(&app, &caller, &id, &request).await? {
            service::peer_config::Answer::Formats(list) => Json(list).into_response(),
            service::peer_config::Answer::Config { text, secret } => {
                let cache = if secret { "no-store" } else { "no-cache" };
                (
                    [
                        (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                        (header::CACHE_CONTROL, cache),
                    ],
                    text,
                )
                    .into_response()
            }
        },
    )
}
