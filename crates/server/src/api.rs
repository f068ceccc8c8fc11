//! HTTP routes: the Neutron v2.0 paths of every resource kind, router interface actions,
//! tags, discovery documents (`/`, `/v2.0`, `/v2.0/extensions`) and `/openapi.json`. Each
//! route is an [`Endpoint`]: method, path, handler and OpenAPI description together, and
//! both the router and the document are built from the one list, so they cannot drift.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, MatchedPath, OriginalUri, Request, State};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Json, Router};
use serde_json::{Value, json};
use tower::Layer;
use tower::util::MapRequestLayer;
use vpnaas_model::{Error as Fault, Kind};

use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, neutron_error};
use crate::listing::{ListQuery, project};
use crate::openapi::{self, Operation, operations};
use crate::service::flavors::Association;
use crate::service::tags::{self, TagChange};
use crate::service::{self, InterfaceChange};

/// The API as the HTTP edge serves it: paths normalised, then routed.
pub type ApiService = tower::util::MapRequest<Router, fn(Request) -> Request>;

/// Builds the HTTP service over the application state.
pub fn service(app: App) -> ApiService {
    let normalize: fn(Request) -> Request = normalize_path;
    MapRequestLayer::new(normalize).layer(router(app))
}

/// One served operation: the method and path it answers, its handler and what the
/// OpenAPI document says about it.
pub struct Endpoint {
    /// The method.
    pub method: Method,
    /// The path template (`/v2.0/routers/{id}`).
    pub path: String,
    /// Its description.
    pub operation: Operation,
    handler: MethodRouter<App>,
}

impl Endpoint {
    /// `handler` answering `method` on `path`, described by `operation`.
    pub fn new<H, T>(
        method: Method,
        path: impl Into<String>,
        handler: H,
        operation: Operation,
    ) -> Endpoint
    where
        H: Handler<T, App>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a method axum routes");
        Endpoint {
            method,
            path: path.into(),
            operation,
            handler: on(filter, handler),
        }
    }
}

/// The routes, without path normalisation (for in-process tests).
pub fn router(app: App) -> Router {
    endpoints()
        .into_iter()
        .fold(Router::new(), |routes, e| routes.route(&e.path, e.handler))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(app.clone(), observe_request))
        .with_state(app)
}

/// Path parameters, refused as Neutron refuses them (`HTTPBadRequest` in a `NeutronError`)
/// when they cannot be read (percent-encoded bytes that are not UTF-8; axum's own
/// extractor answers those in plain text) or hold a control character, which no id, tag
/// or host name has (and a NUL is a database error on PostgreSQL).
pub(crate) struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let unreadable = |rejection: axum::extract::rejection::PathRejection| {
            ApiError::from(Fault::http_bad_request(rejection.body_text()))
        };
        let axum::extract::Path(raw) =
            axum::extract::Path::<Vec<(String, String)>>::from_request_parts(parts, state)
                .await
                .map_err(unreadable)?;
        if let Some((name, _)) = raw.iter().find(|(_, v)| v.chars().any(char::is_control)) {
            return Err(Fault::http_bad_request(format!(
                "Invalid URL: `{name}` contains a control character"
            ))
            .into());
        }
        let axum::extract::Path(value) = axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(unreadable)?;
        Ok(Path(value))
    }
}

/// Every operation served.
pub fn endpoints() -> Vec<Endpoint> {
    let mut all = discovery();
    for kind in Kind::ALL {
        all.extend(resource(kind));
        if tags::taggable(kind) {
            all.extend(tag_endpoints(kind));
        }
    }
    all.extend(actions());
    all.extend(crate::agent_api::endpoints());
    all
}

fn discovery() -> Vec<Endpoint> {
    use Method as M;
    use operations::discovery as doc;
    vec![
        Endpoint::new(
            M::GET,
            "/",
            versions,
            doc("API versions", operations::versions()),
        ),
        Endpoint::new(
            M::GET,
            "/v2.0",
            resources,
            doc("resources of API v2.0", operations::resources()),
        ),
        Endpoint::new(
            M::GET,
            "/v2.0/extensions",
            extensions,
            doc("implemented extensions", operations::extensions()),
        ),
        Endpoint::new(
            M::GET,
            "/v2.0/extensions/{alias}",
            extension,
            operations::extension(),
        ),
        Endpoint::new(
            M::GET,
            "/openapi.json",
            openapi_document,
            doc("this document", json!({"type": "object"})),
        ),
        Endpoint::new(
            M::GET,
            "/metrics",
            crate::metrics::scrape,
            operations::metrics(),
        ),
    ]
}

/// Collection and member operations of a kind; a kind clients cannot write (agents) is
/// only listed and shown.
fn resource(kind: Kind) -> Vec<Endpoint> {
    let collection = format!("/v2.0/{}", kind.path());
    let member = format!("{collection}/{{id}}");
    let mut endpoints = vec![
        Endpoint::new(
            Method::GET,
            &collection,
            move |state, caller, uri, headers| list(state, caller, uri, headers, kind),
            operations::list(kind),
        ),
        Endpoint::new(
            Method::GET,
            &member,
            move |state, caller, path, uri| show(state, caller, path, uri, kind),
            operations::show(kind),
        ),
    ];
    if openapi::writable(kind) {
        endpoints.extend([
            Endpoint::new(
                Method::POST,
                &collection,
                move |state, caller, body| create(state, caller, body, kind),
                operations::create(kind),
            ),
            Endpoint::new(
                Method::PUT,
                &member,
                move |state, caller, path, body| update(state, caller, path, body, kind),
                operations::update(kind),
            ),
            Endpoint::new(
                Method::DELETE,
                &member,
                move |state, caller, path| delete(state, caller, path, kind),
                operations::delete(kind),
            ),
        ]);
    }
    endpoints
}

fn tag_endpoints(kind: Kind) -> Vec<Endpoint> {
    let all = format!("/v2.0/{}/{{id}}/tags", kind.path());
    let one = format!("{all}/{{tag}}");
    let doc = |method: &Method, one_tag| operations::tag_operation(kind, method, one_tag);
    vec![
        Endpoint::new(
            Method::GET,
            &all,
            move |state, caller, path| list_tags(state, caller, path, kind),
            doc(&Method::GET, false),
        ),
        Endpoint::new(
            Method::PUT,
            &all,
            move |state, caller, path, body| replace_tags(state, caller, path, body, kind),
            doc(&Method::PUT, false),
        ),
        Endpoint::new(
            Method::DELETE,
            &all,
            move |state, caller, path| clear_tags(state, caller, path, kind),
            doc(&Method::DELETE, false),
        ),
        Endpoint::new(
            Method::GET,
            &one,
            move |state, caller, path| check_tag(state, caller, path, kind),
            doc(&Method::GET, true),
        ),
        Endpoint::new(
            Method::PUT,
            &one,
            move |state, caller, path| add_tag(state, caller, path, kind),
            doc(&Method::PUT, true),
        ),
        Endpoint::new(
            Method::DELETE,
            &one,
            move |state, caller, path| remove_tag(state, caller, path, kind),
            doc(&Method::DELETE, true),
        ),
    ]
}

/// Actions and sub-resources beyond the collections.
fn actions() -> Vec<Endpoint> {
    use Method as M;
    vec![
        Endpoint::new(
            M::GET,
            "/v2.0/vpn/ipsec-site-connections/{id}/events",
            connection_events,
            operations::connection_events(),
        ),
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
        Endpoint::new(M::GET, "/v2.0/ports", list_ports, operations::list_ports()),
        Endpoint::new(
            M::GET,
            "/v2.0/ports/{id}",
            show_port,
            operations::show_port(),
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
    ]
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

/// Reads a request body as Neutron does, whose answers differ between its core
/// resources (networks, subnets) and the resources of its service plugins (everything
/// else): text that is not JSON is `MalformedRequestBody` for the latter and a plain
/// "Body contains invalid data" for the former; JSON that is not an object is "Body
/// contains invalid data"; an empty body is "Resource body required", except for core
/// resources, whose envelope check reports it.
fn parse_body(body: &Bytes, kind: Kind) -> ApiResult<Value> {
    let core = matches!(kind, Kind::Network | Kind::Subnet);
    let unreadable = || ApiError::from(Fault::http_bad_request("Body contains invalid data"));
    let value: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|_| {
            if core {
                unreadable()
            } else {
                Fault::bad_request(
                    "MalformedRequestBody",
                    "Malformed request body: Cannot understand JSON.",
                )
                .into()
            }
        })?
    };
    let empty = value == json!({}) || value == json!([]) || (!core && value.is_null());
    match value {
        _ if empty && core => Ok(json!({})),
        _ if empty => Err(Fault::http_bad_request("Resource body required").into()),
        Value::Object(_) => Ok(value),
        _ => Err(unreadable()),
    }
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
    let created = service::create(&app, &caller, kind, parse_body(&body, kind)?).await?;
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
    let updated = service::update(&app, &caller, kind, &id, parse_body(&body, kind)?).await?;
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

async fn list_ports(
    State(app): State<App>,
    caller: Caller,
    uri: OriginalUri,
) -> ApiResult<Json<Value>> {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    Ok(Json(service::ports::list(&app, &caller, &query).await?))
}

async fn show_port(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(service::ports::show(&app, &caller, &id).await?))
}

async fn list_tags(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    kind: Kind,
) -> ApiResult<Json<Value>> {
    let tags = tags::tags(&app, &caller, kind, &id).await?;
    Ok(Json(json!({ "tags": tags })))
}

async fn replace_tags(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
    kind: Kind,
) -> ApiResult<Json<Value>> {
    let change = TagChange::Replace(parse_body(&body, kind)?);
    let tags = tags::change(&app, &caller, kind, &id, change).await?;
    Ok(Json(json!({ "tags": tags })))
}

async fn clear_tags(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    kind: Kind,
) -> ApiResult<StatusCode> {
    tags::change(&app, &caller, kind, &id, TagChange::Clear).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn check_tag(
    State(app): State<App>,
    caller: Caller,
    Path((id, tag)): Path<(String, String)>,
    kind: Kind,
) -> ApiResult<StatusCode> {
    tags::check_tag(&app, &caller, kind, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_tag(
    State(app): State<App>,
    caller: Caller,
    Path((id, tag)): Path<(String, String)>,
    kind: Kind,
) -> ApiResult<(StatusCode, Json<Value>)> {
    tags::change(&app, &caller, kind, &id, TagChange::Add(tag)).await?;
    Ok((StatusCode::CREATED, Json(Value::Null)))
}

async fn remove_tag(
    State(app): State<App>,
    caller: Caller,
    Path((id, tag)): Path<(String, String)>,
    kind: Kind,
) -> ApiResult<StatusCode> {
    tags::change(&app, &caller, kind, &id, TagChange::Remove(tag)).await?;
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

/// One API extension, as `GET /v2.0/extensions` lists it.
pub struct Extension {
    /// Its alias, the key clients look it up by.
    pub alias: &'static str,
    /// Its name.
    pub name: &'static str,
    /// What it adds.
    pub description: &'static str,
    /// Its version date.
    pub updated: &'static str,
}

/// Every extension this server serves, with Neutron's names, descriptions and dates
/// (`vpn-no-sha1-3des` is vpnaas's own). Clients probe these before using a feature, so
/// a feature served but not listed is a feature they will not use.
pub const EXTENSIONS: &[Extension] = &[
    Extension {
        alias: "vpnaas",
        name: "VPN service",
        description: "Extension for VPN service",
        updated: "2013-05-29T10:00:00-00:00",
    },
    Extension {
        alias: "vpn-endpoint-groups",
        name: "VPN Endpoint Groups",
        description: "VPN endpoint groups support",
        updated: "2015-08-04T10:00:00-00:00",
    },
    Extension {
        alias: "vpn-aes-ctr",
        name: "VPN support for AES CTR mode",
        description: "Add AES CTR choices for encryption algorithm",
        updated: "2024-01-09T09:00:00-00:00",
    },
    Extension {
        alias: "vpn-no-sha1-3des",
        name: "VPN without SHA1 and 3DES",
        description: "sha256 is the default auth_algorithm; sha1 and 3des are refused unless the operator allows weak algorithms",
        updated: "2026-11-26T00:00:00-00:00",
    },
    Extension {
        alias: "vpn-flavors",
        name: "VPN Service Flavor Extension",
        description: "Flavor support for vpnservices.",
        updated: "2017-04-19T00:00:00-00:00",
    },
    Extension {
        alias: "vpn-agent-scheduler",
        name: "VPN Agent Scheduler",
        description: "Schedule VPN services of routers among VPN agents",
        updated: "2016-08-15T10:00:00-00:00",
    },
    Extension {
        alias: "flavors",
        name: "Neutron Service Flavors",
        description: "Flavor specification for Neutron advanced services.",
        updated: "2015-09-17T10:00:00-00:00",
    },
    Extension {
        alias: "service-type",
        name: "Neutron Service Type Management",
        description: "API for retrieving service providers for Neutron advanced services",
        updated: "2013-01-20T00:00:00-00:00",
    },
    Extension {
        alias: "agent",
        name: "agent",
        description: "The agent management extension.",
        updated: "2013-02-03T10:00:00-00:00",
    },
    Extension {
        alias: "router",
        name: "Neutron L3 Router",
        description: "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway.",
        updated: "2012-07-20T10:00:00-00:00",
    },
    Extension {
        alias: "ext-gw-mode",
        name: "Neutron L3 Configurable external gateway mode",
        description: "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway",
        updated: "2013-03-28T10:00:00-00:00",
    },
    Extension {
        alias: "extraroute",
        name: "Neutron Extra Route",
        description: "Extra routes configuration for L3 router",
        updated: "2013-02-01T10:00:00-00:00",
    },
    Extension {
        alias: "l3-ha",
        name: "HA Router extension",
        description: "Adds HA capability to routers.",
        updated: "2014-04-26T00:00:00-00:00",
    },
    Extension {
        alias: "external-net",
        name: "Neutron external network",
        description: "Adds external network attribute to network resource.",
        updated: "2013-01-14T10:00:00-00:00",
    },
    Extension {
        alias: "provider",
        name: "Provider Network",
        description: "Expose mapping of virtual networks to physical networks",
        updated: "2012-09-07T10:00:00-00:00",
    },
    Extension {
        alias: "net-mtu",
        name: "Network MTU",
        description: "Provides MTU attribute for a network resource.",
        updated: "2015-03-25T10:00:00-00:00",
    },
    Extension {
        alias: "net-mtu-writable",
        name: "Network MTU (writable)",
        description: "Provides a writable MTU attribute for a network resource.",
        updated: "2017-07-12T00:00:00-00:00",
    },
    Extension {
        alias: "port-security",
        name: "Port Security",
        description: "Provides port security",
        updated: "2012-07-23T10:00:00-00:00",
    },
    Extension {
        alias: "vlan-transparent",
        name: "Vlantransparent",
        description: "Provides Vlan Transparent Networks",
        updated: "2015-03-23T09:00:00-00:00",
    },
    Extension {
        alias: "qinq",
        name: "QinQ networks",
        description: "Expose network 'qinq' attribute in the API. This allows to configure network to allow vlan in vlan configuration using 0x88a8 ethertype (QinQ).",
        updated: "2024-12-02T10:00:00-00:00",
    },
    Extension {
        alias: "subnet-service-types",
        name: "Subnet service types",
        description: "Provides ability to set the subnet service_types field",
        updated: "2016-03-15T18:00:00-00:00",
    },
    Extension {
        alias: "subnet-external-network",
        name: "Subnet belongs to an external network",
        description: "Informs if the subnet belongs to an external network",
        updated: "2024-02-05T18:00:00-00:00",
    },
    Extension {
        alias: "standard-attr-description",
        name: "standard-attr-description",
        description: "Extension to add descriptions to standard attributes",
        updated: "2016-02-10T10:00:00-00:00",
    },
    Extension {
        alias: "standard-attr-revisions",
        name: "Resource revision numbers",
        description: "This extension will display the revision number of neutron resources.",
        updated: "2016-04-11T10:00:00-00:00",
    },
    Extension {
        alias: "standard-attr-timestamp",
        name: "Resource timestamps",
        description: "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.",
        updated: "2016-09-12T10:00:00-00:00",
    },
    Extension {
        alias: "standard-attr-tag",
        name: "Tag support for resources with standard attribute: subnet, network, router",
        description: "Enables to set tag on resources with standard attribute.",
        updated: "2017-01-01T00:00:00-00:00",
    },
    Extension {
        alias: "project-id",
        name: "project_id field enabled",
        description: "Extension that indicates that project_id field is enabled.",
        updated: "2016-09-09T09:09:09-09:09",
    },
    Extension {
        alias: "pagination",
        name: "Pagination support",
        description: "Extension that indicates that pagination is enabled.",
        updated: "2016-06-12T00:00:00-00:00",
    },
    Extension {
        alias: "sorting",
        name: "Sorting support",
        description: "Extension that indicates that sorting is enabled.",
        updated: "2016-06-12T00:00:00-00:00",
    },
    Extension {
        alias: "filter-validation",
        name: "Filter parameters validation",
        description: "Provides validation on filter parameters.",
        updated: "2018-07-04T10:00:00-00:00",
    },
];

fn extension_doc(extension: &Extension) -> Value {
    json!({"alias": extension.alias, "name": extension.name, "description": extension.description,
           "updated": extension.updated, "links": []})
}

async fn extensions() -> Json<Value> {
    let list: Vec<Value> = EXTENSIONS.iter().map(extension_doc).collect();
    Json(json!({ "extensions": list }))
}

async fn extension(Path(alias): Path<String>) -> Response {
    match EXTENSIONS.iter().find(|e| e.alias == alias) {
        Some(found) => Json(json!({ "extension": extension_doc(found) })).into_response(),
        None => neutron_error(
            StatusCode::NOT_FOUND,
            "HTTPNotFound",
            &format!("Extension with alias {alias} does not exist"),
        ),
    }
}

async fn openapi_document(State(app): State<App>) -> Json<Value> {
    let endpoints = endpoints();
    Json(openapi::document(
        app.rules(),
        endpoints
            .iter()
            .map(|e| (&e.method, e.path.as_str(), &e.operation)),
    ))
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
