//! *Connect a site*: one form that makes what a site-to-site connection needs, reusing
//! what exists: IKE and IPsec policies (new ones with sound defaults: IKEv2, AES-256,
//! SHA-256, DH group 14), the VPN service on a chosen router and subnet, and the
//! connection; then the connection's page follows it live. Fields are checked as one
//! types by the API's own attribute validators (`GET /dashboard/check`); what only the
//! whole request can tell is the API's answer to the submit, shown verbatim. When a step
//! is refused, what the earlier steps made is deleted again.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::{Map, Value, json};
use vpnaas_model::{Kind, attr, attributes};

use super::view::{self, text};
use super::{Viewer, failed_page, field, form, go_to, list};
use crate::App;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::service;

/// The select value that asks for a new object.
const NEW: &str = "new";

pub(super) async fn page(State(app): State<App>, viewer: Viewer) -> Response {
    match content(&app, &viewer.caller).await {
        Ok(main) => view::layout_still(&viewer, "Connect a site", main).into_response(),
        Err(error) => failed_page(&viewer, error).await,
    }
}

async fn content(app: &App, caller: &Caller) -> ApiResult<Markup> {
    caller.require_write("create_ipsec_site_connection")?;
    let services = list(app, caller, Kind::VpnService, "").await?;
    let routers = list(app, caller, Kind::Router, "").await?;
    let subnets = list(app, caller, Kind::Subnet, "").await?;
    let ike = list(app, caller, Kind::IkePolicy, "").await?;
    let ipsec = list(app, caller, Kind::IpsecPolicy, "").await?;
    let check = "ipsec_site_connection";
    Ok(html! {
        h1 { "Connect a site" }
        form.card.wide #connect data-json action="/dashboard/connect" method="post" {
            fieldset {
                legend { "This side" }
                label { "VPN service (gateway)"
                    select name="vpnservice" { (options(&services, "a new one on the router below")) } }
                label { "Router (for a new service)"
                    select name="router" { @for r in &routers { option value=(text(&r["id"])) { (label(r)) } } } }
                label { "Local subnet (for a new service)"
                    select name="subnet" { @for s in &subnets {
                        option value=(text(&s["id"])) { (label(s)) " " (text(&s["cidr"])) } } } }
            }
            fieldset {
                legend { "The other site" }
                label { "Connection name" input name="name" data-check=(check) required; }
                small.field-error {}
                label { "Peer gateway address" input name="peer_address" data-check=(check) required placeholder="203.0.113.3"; }
                small.field-error {}
                label { "Peer identity (empty: its address)" input name="peer_id" data-check=(check); }
                small.field-error {}
                label { "Peer networks (comma-separated CIDRs)" input name="peer_cidrs" data-check=(check) required placeholder="10.2.0.0/24"; }
                small.field-error {}
                label { "Pre-shared key" input name="psk" type="password" autocomplete="off" required; }
            }
            fieldset {
                legend { "Policies" }
                label { "IKE policy" select name="ikepolicy" { (options(&ike, "new: IKEv2, AES-256, SHA-256, group 14")) } }
                label { "IPsec policy" select name="ipsecpolicy" { (options(&ipsec, "new: AES-256, SHA-256, group 14")) } }
            }
            p.error role="alert" {}
            button type="submit" { "Connect" }
        }
    })
}

/// "New" first, then the existing objects to reuse.
fn options(objects: &[Value], new: &str) -> Markup {
    html! {
        option value=(NEW) { (new) }
        @for o in objects { option value=(text(&o["id"])) { (label(o)) } }
    }
}

fn label(object: &Value) -> String {
    match text(&object["name"]) {
        name if name.is_empty() => text(&object["id"]),
        name => name,
    }
}

/// `POST /dashboard/connect`: makes each missing piece, then the connection.
pub(super) async fn submit(State(app): State<App>, viewer: Viewer, body: Bytes) -> Response {
    let fields = match form(&body) {
        Ok(fields) => fields,
        Err(error) => return error.into_response(),
    };
    let mut made = Vec::new();
    match connect(&app, &viewer.caller, &fields, &mut made).await {
        Ok(id) => go_to(&format!("/dashboard/connections/{id}")),
        Err(error) => {
            for (kind, id) in made.iter().rev() {
                if let Err(undo) = service::delete(&app, &viewer.caller, *kind, id).await {
                    tracing::warn!(error = %undo, %id, "cannot undo a step of connect-a-site");
                }
            }
            error.into_response()
        }
    }
}

async fn connect(
    app: &App,
    caller: &Caller,
    fields: &Map<String, Value>,
    made: &mut Vec<(Kind, String)>,
) -> ApiResult<String> {
    let name = field(fields, "name").unwrap_or_default();
    let sound =
        json!({"auth_algorithm": "sha256", "encryption_algorithm": "aes-256", "pfs": "group14"});
    let mut ike = sound.clone();
    ike["ike_version"] = json!("v2");
    ike["name"] = json!(format!("{name}-ike"));
    let mut ipsec = sound;
    ipsec["name"] = json!(format!("{name}-ipsec"));
    let ike = reuse_or_create(app, caller, fields, "ikepolicy", Kind::IkePolicy, ike, made).await?;
    let ipsec = reuse_or_create(
        app,
        caller,
        fields,
        "ipsecpolicy",
        Kind::IpsecPolicy,
        ipsec,
        made,
    )
    .await?;
    let new_service = json!({"name": format!("{name}-gateway"), "router_id": field(fields, "router"),
        "subnet_id": field(fields, "subnet")});
    let service = reuse_or_create(
        app,
        caller,
        fields,
        "vpnservice",
        Kind::VpnService,
        new_service,
        made,
    )
    .await?;
    let peer_address = field(fields, "peer_address").unwrap_or_default();
    let conn = json!({"name": name, "vpnservice_id": service, "ikepolicy_id": ike,
        "ipsecpolicy_id": ipsec, "peer_address": peer_address,
        "peer_id": field(fields, "peer_id").unwrap_or(peer_address),
        "peer_cidrs": cidrs(field(fields, "peer_cidrs").unwrap_or_default()),
        "psk": fields.get("psk").and_then(Value::as_str).unwrap_or_default()});
    create(app, caller, Kind::SiteConnection, conn, made).await
}

/// The id chosen in a select, or a new object made of `new`.
async fn reuse_or_create(
    app: &App,
    caller: &Caller,
    fields: &Map<String, Value>,
    select: &str,
    kind: Kind,
    new: Value,
    made: &mut Vec<(Kind, String)>,
) -> ApiResult<String> {
    match field(fields, select) {
        Some(id) if id != NEW => Ok(id.to_string()),
        _ => create(app, caller, kind, new, made).await,
    }
}

async fn create(
    app: &App,
    caller: &Caller,
    kind: Kind,
    object: Value,
    made: &mut Vec<(Kind, String)>,
) -> ApiResult<String> {
    let stored = service::create(app, caller, kind, json!({ kind.singular(): object })).await?;
    let id = text(&serde_json::to_value(&stored)?["id"]);
    made.push((kind, id.clone()));
    Ok(id)
}

/// CIDRs as typed: separated by commas or spaces.
fn cidrs(typed: &str) -> Vec<&str> {
    typed.split([',', ' ']).filter(|c| !c.is_empty()).collect()
}

/// `GET /dashboard/check?kind=&field=&value=`: what the API's validator of that attribute
/// says of the value (`{"error": null}` when it passes). Secrets are never checked here:
/// a query string is no place for them.
pub(super) async fn check(
    State(app): State<App>,
    _viewer: Viewer,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let get = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
    let kind = Kind::ALL.into_iter().find(|k| k.singular() == get("kind"));
    let attr = kind.and_then(|k| attributes(k).iter().find(|a| a.name == get("field")));
    let error = match attr.filter(|a| !a.secret) {
        Some(attr) => {
            let value = match attr.ty {
                attr::AttrType::CidrList => json!(cidrs(get("value"))),
                _ => json!(get("value")),
            };
            attr::validate(attr, value, app.rules())
                .err()
                .map(|e| e.message)
        }
        None => None,
    };
    Json(json!({ "error": error })).into_response()
}
