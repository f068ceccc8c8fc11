//! HTTP routes: the Neutron v2.0 paths of every resource kind, router interface actions,
//! discovery documents (`/`, `/v2.0`, `/v2.0/extensions`) and `/openapi.json`.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{MatchedPath, OriginalUri, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router, ServiceExt};
use serde_json::{Value, json};
use tower::Layer;
use tower::util::MapRequestLayer;
use vpnaas_model::{Error as Fault, Kind};

use crate::App;
use crate::auth::Caller;
use crate::error::{ApiResult, neutron_error};
use crate::listing::{ListQuery, project};
use crate::service::flavors::Association;
use crate::service::{self, InterfaceChange};

/// The service `axum::serve` runs: paths normalised, then routed.
pub type ApiService =
    axum::routing::IntoMakeService<tower::util::MapRequest<Router, fn(Request) -> Request>>;

/// Builds the HTTP service over the application state.
pub fn service(app: App) -> ApiService {
    let normalize: fn(Request) -> Request = normalize_path;
    MapRequestLayer::new(normalize)
        .layer(router(app))
        .into_make_service()
}

/// The routes, without path normalisation (for in-process tests).
pub fn router(app: App) -> Router {
    let mut routes = Router::new()
        .route("/", get(versions))
        .route("/v2.0", get(resources))
        .route("/v2.0/extensions", get(extensions))
        .route("/v2.0/extensions/{alias}", get(extension))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(crate::metrics::scrape))
        .route(
            "/v2.0/vpn/ipsec-site-connections/{id}/events",
            get(connection_events),
        )
        .route(
            "/v2.0/routers/{id}/add_router_interface",
            put(add_interface),
        )
        .route(
            "/v2.0/routers/{id}/remove_router_interface",
            put(remove_interface),
        )
        .route("/v2.0/routers/{id}/migrate_vpn_driver", put(migrate_driver))
        .route("/v2.0/routers/{id}/vpn-agents", get(agents_of_router))
        .route(
            "/v2.0/agents/{id}/vpn-routers",
            get(routers_of_agent).post(add_router_to_agent),
        )
        .route(
            "/v2.0/agents/{id}/vpn-routers/{router_id}",
            axum::routing::delete(remove_router_from_agent),
        )
        .route("/v2.0/service-providers", get(service_providers))
        .route(
            "/v2.0/flavors/{id}/service_profiles",
            axum::routing::post(associate_profile),
        )
        .route(
            "/v2.0/flavors/{id}/service_profiles/{profile_id}",
            axum::routing::delete(disassociate_profile),
        );
    for kind in Kind::ALL {
        routes = routes
            .route(
                &format!("/v2.0/{}", kind.path()),
                get(move |state, caller, uri, headers| list(state, caller, uri, headers, kind))
                    .post(move |state, caller, body| create(state, caller, body, kind)),
            )
            .route(
                &format!("/v2.0/{}/{{id}}", kind.path()),
                get(move |state, caller, path, uri| show(state, caller, path, uri, kind))
                    .put(move |state, caller, path, body| update(state, caller, path, body, kind))
                    .delete(move |state, caller, path| delete(state, caller, path, kind)),
            );
    }
    routes
        .merge(crate::agent_api::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(app.clone(), observe_request))
        .with_state(app)
}

/// Tolerates what Neutron clients send: a `.json` suffix on API paths, a trailing slash, doubled slashes.
fn normalize_path(mut request: Request) -> Request {
    let uri = request.uri();
    let mut path = uri.path().to_string();
    while path.contains("//") {
        path = path.replace("//", "/");
    }
    if let Some(stripped) = path
        .strip_suffix(".json")
        .filter(|p| p.starts_with("/v2.0"))
    {
        path = stripped.to_string();
    }
    if path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    if path != uri.path() {
        let rebuilt = match uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        if let Ok(new_uri) = rebuilt.parse::<Uri>() {
            *request.uri_mut() = new_uri;
        }
    }
    request
}

/// Logs a request and records its latency under its route pattern (never the raw path,
/// which holds ids).
async fn observe_request(State(app): State<App>, request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let code = response.status().as_u16();
    app.metrics
        .request(method.as_str(), &route, code, elapsed.as_secs_f64());
    tracing::debug!(%method, %path, status = code, micros = elapsed.as_micros() as u64, "request");
    response
}

fn parse_body(body: &Bytes) -> ApiResult<Value> {
    if body.is_empty() {
        return Err(Fault::http_bad_request("Resource body required").into());
    }
    serde_json::from_slice(body)
        .map_err(|_| Fault::http_bad_request("Malformed request body").into())
}

fn base_url(headers: &HeaderMap, uri: &Uri) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("http");
    format!("{scheme}://{host}{}", uri.path())
}

async fn list(
    State(app): State<App>,
    caller: Caller,
    uri: OriginalUri,
    headers: HeaderMap,
    kind: Kind,
) -> ApiResult<Response> {
    let query = ListQuery::parse(kind, uri.query())?;
    let body = service::list(&app, &caller, kind, &query, &base_url(&headers, &uri)).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

async fn show(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    uri: OriginalUri,
    kind: Kind,
) -> ApiResult<Json<Value>> {
    let query = ListQuery::parse(kind, uri.query())?;
    let item = service::show(&app, &caller, kind, &id).await?;
    Ok(Json(
        json!({ kind.singular(): project(item, &query.fields) }),
    ))
}

async fn create(
    State(app): State<App>,
    caller: Caller,
    body: Bytes,
    kind: Kind,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let created = service::create(&app, &caller, kind, parse_body(&body)?).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ kind.singular(): created })),
    ))
}

async fn update(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
    kind: Kind,
) -> ApiResult<Json<Value>> {
    let updated = service::update(&app, &caller, kind, &id, parse_body(&body)?).await?;
    Ok(Json(json!({ kind.singular(): updated })))
}

async fn delete(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    kind: Kind,
) -> ApiResult<StatusCode> {
    service::delete(&app, &caller, kind, &id).await?;
    Ok(StatusCode::NO_CONTENT)
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
        parse_body(&body)?,
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
    let body = parse_body(&body)?;
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
    let body = parse_body(&body)?;
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
    let body = parse_body(&body)?;
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
        parse_body(&body)?,
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

async fn versions(headers: HeaderMap) -> Json<Value> {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    Json(json!({"versions": [{
        "id": "v2.0", "status": "CURRENT",
        "links": [{"href": format!("http://{host}/v2.0/"), "rel": "self"}],
    }]}))
}

async fn resources(headers: HeaderMap) -> Json<Value> {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let resources: Vec<Value> = Kind::ALL
        .iter()
        .map(|k| {
            json!({"name": k.singular(), "collection": k.plural(),
                   "links": [{"href": format!("http://{host}/v2.0/{}", k.path()), "rel": "self"}]})
        })
        .collect();
    Json(json!({ "resources": resources }))
}

/// The extensions this server implements, Neutron-style.
pub const EXTENSIONS: &[(&str, &str, &str)] = &[
    (
        "vpnaas",
        "VPN service",
        "Extension for VPN service (IKE/IPsec policies, VPN services, IPsec site connections)",
    ),
    (
        "vpn-endpoint-groups",
        "VPN Endpoint Groups",
        "Endpoint groups for VPN site-to-site connections",
    ),
    (
        "vpn-aes-ctr",
        "VPN AES CTR",
        "AES CTR encryption algorithms for IKE and IPsec policies",
    ),
    (
        "vpn-no-sha1-3des",
        "VPN without SHA1 and 3DES",
        "sha256 is the default auth_algorithm; sha1 and 3des are refused unless the operator allows weak algorithms",
    ),
    (
        "router",
        "Neutron L3 Router",
        "Routers with external gateways and interfaces (the subset VPN services need)",
    ),
    (
        "external-net",
        "Neutron external network",
        "Adds the router:external attribute to networks",
    ),
    (
        "provider",
        "Provider Network",
        "provider:* attributes on networks, accepted and stored",
    ),
];

fn extension_doc(alias: &str, name: &str, description: &str) -> Value {
    json!({"alias": alias, "name": name, "description": description, "updated": "2026-11-26T00:00:00-00:00", "links": []})
}

async fn extensions() -> Json<Value> {
    let list: Vec<Value> = EXTENSIONS
        .iter()
        .map(|(a, n, d)| extension_doc(a, n, d))
        .collect();
    Json(json!({ "extensions": list }))
}

async fn extension(Path(alias): Path<String>) -> Response {
    match EXTENSIONS.iter().find(|(a, _, _)| *a == alias) {
        Some((a, n, d)) => Json(json!({ "extension": extension_doc(a, n, d) })).into_response(),
        None => neutron_error(
            StatusCode::NOT_FOUND,
            "HTTPNotFound",
            &format!("Extension with alias {alias} does not exist"),
        ),
    }
}

async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}

async fn not_found() -> Response {
    neutron_error(
        StatusCode::NOT_FOUND,
        "HTTPNotFound",
        "The resource could not be found.",
    )
}

async fn method_not_allowed() -> Response {
    neutron_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTPMethodNotAllowed",
        "The method is not allowed for this resource.",
    )
}
