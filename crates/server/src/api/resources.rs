//! The routes of every resource kind: list, show, create, update and delete, the tags
//! of taggable kinds, and the read-only ports.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use vpnaas_model::Kind;

use crate::App;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::listing::{ListQuery, project};
use crate::openapi::{self, operations};
use crate::service::tags::{self, TagChange};
use crate::service::{self, Stored};

use super::{Endpoint, Path, base_url, parse_body};

/// Collection and member operations of a kind; a kind clients cannot write (agents) is
/// only listed and shown.
/// The routes of one kind.
pub(super) fn of_kind(kind: Kind) -> Vec<Endpoint> {
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

/// The tag routes of a taggable kind.
pub(super) fn tags_of(kind: Kind) -> Vec<Endpoint> {
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
) -> ApiResult<(StatusCode, Json<Wrapped>)> {
    let created = service::create(&app, &caller, kind, parse_body(&body, kind)?).await?;
    Ok((StatusCode::CREATED, wrapped(kind, created)))
}

async fn update(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
    kind: Kind,
) -> ApiResult<Json<Wrapped>> {
    let updated = service::update(&app, &caller, kind, &id, parse_body(&body, kind)?).await?;
    Ok(wrapped(kind, updated))
}

/// A written object's response body, `{"<singular>": {...}}`, serialised straight from
/// the typed resource.
type Wrapped = HashMap<&'static str, Stored>;

fn wrapped(kind: Kind, stored: Stored) -> Json<Wrapped> {
    Json(HashMap::from([(kind.singular(), stored)]))
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

pub(super) async fn list_ports(
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

pub(super) async fn show_port(
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
