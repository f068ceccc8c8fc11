//! The web dashboard at `/dashboard`: server-rendered HTML (maud) over the same use cases,
//! identity and policy as the REST API, with a little hand-written script for live
//! updates (the change stream, [`crate::changes`]), forms sent as JSON and checks as one
//! types. Every asset is inside the binary. What a caller sees is what the API lets it
//! see: the dashboard presents the identity of its session (`session`) to the API's own
//! `Caller` extractor, and reads and writes through `crate::service`.
//!
//! Writes are JSON `POST`s from the page's script, like any API client's: the edge's rule
//! that bodies are `application/json` keeps cross-site forms out here too, and the
//! session cookie is `SameSite=Strict`.

mod connect;
mod connection;
mod map;
mod overview;
mod reasons;
mod session;
mod tables;
pub mod traffic;
mod view;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value};
use vpnaas_model::{Error as Fault, Kind};

use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::listing::ListQuery;
use crate::service;

use session::Session;

const STYLE: &str = include_str!("assets/dashboard.css");
const SCRIPT: &str = include_str!("assets/dashboard.js");

/// The dashboard's routes (paths arrive without a trailing slash: `/dashboard/` is
/// `/dashboard`).
pub fn routes() -> Router<App> {
    Router::new()
        .route("/dashboard", get(overview::page))
        .route("/dashboard/login", get(session::page).post(session::login))
        .route("/dashboard/logout", post(session::logout))
        .route("/dashboard/stream", get(stream))
        .route("/dashboard/map", get(map::page))
        .route(
            "/dashboard/connect",
            get(connect::page).post(connect::submit),
        )
        .route("/dashboard/check", get(connect::check))
        .route("/dashboard/connections/{id}", get(connection::page))
        .route(
            "/dashboard/connections/{id}/{action}",
            post(connection::act),
        )
        .route("/dashboard/tables/{kind}", get(tables::page))
        .route("/dashboard/tables/{kind}/{id}/delete", post(tables::delete))
        .route("/dashboard/assets/dashboard.css", get(style))
        .route("/dashboard/assets/dashboard.js", get(script))
}

/// Who is looking: the session's identity, as the API judged it.
pub(crate) struct Viewer {
    caller: Caller,
}

impl FromRequestParts<App> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let to_login = || Redirect::to("/dashboard/login").into_response();
        let session = Session::from_headers(&parts.headers).ok_or_else(to_login)?;
        let caller = session.caller(app).await.map_err(|_| to_login())?;
        Ok(Viewer { caller })
    }
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        text,
    )
        .into_response()
}

/// The change stream for the page's script, under the session's identity (a browser's
/// `EventSource` cannot send identity headers).
async fn stream(State(app): State<App>, viewer: Viewer) -> Response {
    let events = crate::api::events_for(app, viewer.caller);
    axum::response::sse::Sse::new(events)
        .keep_alive(axum::response::sse::KeepAlive::default())
        .into_response()
}

/// The objects of `kind` the caller may list, through the API's own listing (`query`
/// in its syntax: filters, `sort_key`, `limit`, `marker`).
async fn list(app: &App, caller: &Caller, kind: Kind, query: &str) -> ApiResult<Vec<Value>> {
    let query = ListQuery::parse(kind, Some(query))?;
    let body = service::list(app, caller, kind, &query, "/dashboard").await?;
    let mut page: Value = serde_json::from_str(&body)?;
    match page[kind.plural()].take() {
        Value::Array(items) => Ok(items),
        _ => Err(ApiError::Internal("a list without its items".into())),
    }
}

/// A JSON `POST` body of the page's script: an object of strings.
fn form(body: &Bytes) -> ApiResult<Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        _ => Err(Fault::http_bad_request("The dashboard sends a JSON object").into()),
    }
}

/// A form field's text, trimmed; `None` when empty.
fn field<'a>(fields: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// What a successful write tells the page's script: where to go next.
fn go_to(url: &str) -> Response {
    axum::Json(serde_json::json!({ "redirect": url })).into_response()
}

/// A page the caller may not or cannot see: the API's refusal, as the API words it.
async fn failed_page(viewer: &Viewer, error: ApiError) -> Response {
    let (status, refusal) = refusal(error).await;
    let body = view::layout(
        viewer,
        "Error",
        maud::html! { p.error role="alert" { (refusal) } },
    );
    (status, body).into_response()
}

/// The status and `type: message` of the API's answer to an error (internal causes stay
/// in the log, as the API keeps them).
async fn refusal(error: ApiError) -> (StatusCode, String) {
    let answer = error.into_response();
    let status = answer.status();
    let bytes = axum::body::to_bytes(answer.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let fault = &body["NeutronError"];
    let text = format!(
        "{}: {}",
        fault["type"].as_str().unwrap_or("Error"),
        fault["message"].as_str().unwrap_or("the request failed")
    );
    (status, text)
}
