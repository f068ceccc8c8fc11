//! One connection: status, reason and since when, traffic over time, the events
//! timeline, its settings (as the API shows them to the caller: a reader's `psk` is
//! `***`), and for those who may write, enable/disable, edit and delete, each answered
//! with the API's own error when refused.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::{Map, Value, json};
use vpnaas_model::Kind;

use super::view::{self, text};
use super::{Viewer, failed_page, field, form, go_to, reasons, traffic};
use crate::App;
use crate::api::Path;
use crate::error::ApiResult;
use crate::service;

/// Events shown on the timeline.
const EVENTS_SHOWN: u32 = 100;

/// The settings shown, in this order.
const SETTINGS: [&str; 14] = [
    "id",
    "peer_address",
    "peer_id",
    "local_id",
    "peer_cidrs",
    "auth_mode",
    "psk",
    "initiator",
    "mtu",
    "dpd",
    "admin_state_up",
    "vpnservice_id",
    "ikepolicy_id",
    "ipsecpolicy_id",
];

pub(super) async fn page(
    State(app): State<App>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Response {
    match content(&app, &viewer, &id).await {
        Ok((title, main)) => view::layout(&viewer, &title, main).into_response(),
        Err(error) => failed_page(&viewer, error).await,
    }
}

async fn content(app: &App, viewer: &Viewer, id: &str) -> ApiResult<(String, Markup)> {
    let caller = &viewer.caller;
    let conn = service::show(app, caller, Kind::SiteConnection, id).await?;
    let events = service::connection_events(app, caller, id, EVENTS_SHOWN).await?;
    let mut samples = app.traffic.of(id);
    if let Some(now) = conn.get("traffic").filter(|t| !t.is_null()) {
        app.traffic
            .record(id, traffic::sample(now, app.clock.now_ms()));
        samples = app.traffic.of(id);
    }
    let name = match text(&conn["name"]) {
        name if name.is_empty() => id.to_string(),
        name => name,
    };
    let reason = text(&conn["status_reason"]);
    let explained = reasons::explain(&reason);
    let main = html! {
        h1 { "Connection " (name) }
        section.card.summary aria-label="Status" {
            p #conn-status { (view::status(&text(&conn["status"]))) " " span.reason { (reason) } }
            @if let Some(explained) = &explained {
                p { (explained.meaning) }
                @if !explained.check.is_empty() { p { strong { "Check: " } (explained.check) } }
            }
            p.muted { "Since " (text(&conn["status_changed_at"])) }
        }
        @if caller.can_write() { (actions(id, &conn)) }
        section aria-labelledby="traffic" {
            h2 #traffic { "Traffic" }
            (counters(&conn["traffic"]))
            (traffic::chart(&samples))
        }
        section aria-labelledby="timeline" {
            h2 #timeline { "Timeline" }
            (timeline(&events["events"]))
        }
        section aria-labelledby="settings" {
            h2 #settings { "Settings" }
            dl.settings #conn-settings {
                @for key in SETTINGS {
                    dt { (key) } dd data-setting=(key) { (text(&conn[key])) }
                }
            }
        }
    };
    Ok((format!("Connection {name}"), main))
}

fn counters(traffic: &Value) -> Markup {
    let count = |name: &str| traffic[name].as_u64().unwrap_or(0);
    html! {
        @if traffic.is_null() {
            p.muted { "No counters reported yet." }
        } @else {
            ul.plain.inline #traffic-counters {
                li { "In " (view::bytes(count("bytes_in"))) " (" (count("packets_in")) " packets)" }
                li { "Out " (view::bytes(count("bytes_out"))) " (" (count("packets_out")) " packets)" }
                li { "Rekeys " (count("rekeys")) }
            }
        }
    }
}

fn timeline(events: &Value) -> Markup {
    let events = events.as_array().map(Vec::as_slice).unwrap_or_default();
    html! {
        @if events.is_empty() {
            p.muted { "No transitions yet." }
        } @else {
            ol.timeline #conn-timeline reversed {
                @for event in events.iter().rev() {
                    li {
                        time { (text(&event["time"])) } " "
                        (view::status(&text(&event["from"]))) " → " (view::status(&text(&event["to"])))
                        " " strong { (text(&event["reason"])) }
                        @let detail = text(&event["detail"]);
                        @if !detail.is_empty() { br; span.detail { (detail) } }
                    }
                }
            }
        }
    }
}

fn actions(id: &str, conn: &Value) -> Markup {
    let base = format!("/dashboard/connections/{id}");
    let enabled = conn["admin_state_up"].as_bool().unwrap_or(true);
    html! {
        section.card.actions aria-labelledby="actions" {
            h2 #actions { "Actions" }
            form data-json action={ (base) "/" (if enabled { "disable" } else { "enable" }) } method="post" {
                button #toggle-admin type="submit" { (if enabled { "Disable" } else { "Enable" }) }
                p.error role="alert" {}
            }
            details {
                summary { "Edit…" }
                form data-json action={ (base) "/edit" } method="post" {
                    label { "Name" input name="name" value=(text(&conn["name"])) data-check="ipsec_site_connection"; }
                    small.field-error {}
                    label { "Description" input name="description" value=(text(&conn["description"])) data-check="ipsec_site_connection"; }
                    small.field-error {}
                    label { "MTU" input name="mtu" value=(text(&conn["mtu"])) inputmode="numeric" data-check="ipsec_site_connection"; }
                    small.field-error {}
                    label { "New pre-shared key (empty: unchanged)" input name="psk" type="password" autocomplete="off"; }
                    p.error role="alert" {}
                    button type="submit" { "Save" }
                }
            }
            details {
                summary { "Delete…" }
                form data-json action={ (base) "/delete" } method="post" {
                    p { "Delete this connection? Its tunnel goes down at once." }
                    p.error role="alert" {}
                    button.danger #confirm-delete type="submit" { "Yes, delete it" }
                }
            }
        }
    }
}

/// `POST /dashboard/connections/{id}/{enable|disable|edit|delete}`.
pub(super) async fn act(
    State(app): State<App>,
    viewer: Viewer,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    match perform(&app, &viewer, &id, &action, &body).await {
        Ok(next) => go_to(&next),
        Err(error) => error.into_response(),
    }
}

async fn perform(
    app: &App,
    viewer: &Viewer,
    id: &str,
    action: &str,
    body: &Bytes,
) -> ApiResult<String> {
    let caller = &viewer.caller;
    let page = format!("/dashboard/connections/{id}");
    let change = match action {
        "enable" => json!({"admin_state_up": true}),
        "disable" => json!({"admin_state_up": false}),
        "edit" => Value::Object(edits(&form(body)?)),
        "delete" => {
            service::delete(app, caller, Kind::SiteConnection, id).await?;
            return Ok("/dashboard".into());
        }
        _ => return Err(vpnaas_model::Error::resource_not_found(Kind::SiteConnection, id).into()),
    };
    let body = json!({ Kind::SiteConnection.singular(): change });
    service::update(app, caller, Kind::SiteConnection, id, body).await?;
    Ok(page)
}

/// The edit form's fields as a PUT body: what was typed, as typed (the API checks it);
/// an empty key leaves the key alone.
fn edits(fields: &Map<String, Value>) -> Map<String, Value> {
    let mut change = Map::new();
    for name in ["name", "description"] {
        let typed = fields.get(name).and_then(Value::as_str).unwrap_or_default();
        change.insert(name.into(), json!(typed));
    }
    for name in ["mtu", "psk"] {
        if let Some(typed) = field(fields, name) {
            change.insert(name.into(), json!(typed));
        }
    }
    change
}
