//! HTTP routes: the Neutron v2.0 paths of every resource kind, router interface actions,
//! tags, discovery documents (`/`, `/v2.0`, `/v2.0/extensions`) and `/openapi.json`. Each
//! route is an [`Endpoint`]: method, path, handler and OpenAPI description together, and
//! both the router and the document are built from the one list, so they cannot drift.

mod actions;
mod discovery;
mod resources;
mod stream;

pub(crate) use stream::events_for;

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter, on};
use serde_json::{Value, json};
use tower::Layer;
use tower::util::MapRequestLayer;
use vpnaas_model::FaultKind;
use vpnaas_model::{Error as Fault, Kind};

use crate::error::{ApiError, ApiResult, neutron_error};
use crate::openapi::Operation;
use crate::service::tags::{self};
use crate::{App, InventoryMode};

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
    endpoints(app.settings.inventory)
        .into_iter()
        .fold(Router::new(), |routes, e| routes.route(&e.path, e.handler))
        .merge(crate::dashboard::routes())
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

/// Every operation served with the given inventory: under `inventory = "neutron"`,
/// Neutron serves networks, subnets, routers and ports, and vpnaas only the router and
/// subnet changes it must allow first ([`crate::neutron::front`]).
pub fn endpoints(inventory: InventoryMode) -> Vec<Endpoint> {
    let ours = |kind: Kind| {
        inventory == InventoryMode::Builtin
            || !matches!(kind, Kind::Network | Kind::Subnet | Kind::Router)
    };
    let mut all = discovery::endpoints();
    for kind in Kind::ALL.into_iter().filter(|k| ours(*k)) {
        all.extend(resources::of_kind(kind));
        if tags::taggable(kind) {
            all.extend(resources::tags_of(kind));
        }
    }
    all.extend(actions::endpoints(inventory));
    all.push(Endpoint::new(
        Method::GET,
        "/v2.0/vpn/events/stream",
        stream::change_stream,
        crate::openapi::operations::change_stream(),
    ));
    all.extend(crate::agent_api::endpoints());
    if inventory == InventoryMode::Neutron {
        all.extend(crate::neutron::front::endpoints());
    }
    all
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

async fn not_found() -> Response {
    neutron_error(
        StatusCode::NOT_FOUND,
        FaultKind::HTTPNotFound,
        "The resource could not be found.",
    )
}

async fn method_not_allowed() -> Response {
    neutron_error(
        StatusCode::METHOD_NOT_ALLOWED,
        FaultKind::HTTPMethodNotAllowed,
        "The method is not allowed for this resource.",
    )
}

/// Reads a request body as Neutron does, whose answers differ between its core
/// resources (networks, subnets) and the resources of its service plugins (everything
/// else): text that is not JSON is `MalformedRequestBody` for the latter and a plain
/// "Body contains invalid data" for the former; JSON that is not an object is "Body
/// contains invalid data"; an empty body is "Resource body required", except for core
/// resources, whose envelope check reports it.
pub(super) fn parse_body(body: &Bytes, kind: Kind) -> ApiResult<Value> {
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
                    FaultKind::MalformedRequestBody,
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

pub(super) fn base_url(headers: &HeaderMap, uri: &Uri) -> String {
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
