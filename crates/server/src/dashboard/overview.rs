//! The Overview: how many connections and services are in each status, and every
//! connection that is not `ACTIVE`, worst first, with its reason in words and what to
//! check.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::Value;
use vpnaas_model::Kind;

use super::view::{self, text};
use super::{Viewer, failed_page, list, reasons};
use crate::App;
use crate::error::ApiResult;

/// Problems shown on the page; the rest are counted (the tables page through them all).
const PROBLEMS_SHOWN: usize = 200;

pub(super) async fn page(State(app): State<App>, viewer: Viewer) -> Response {
    match content(&app, &viewer).await {
        Ok(main) => view::layout(&viewer, "Overview", main).into_response(),
        Err(error) => failed_page(&viewer, error).await,
    }
}

async fn content(app: &App, viewer: &Viewer) -> ApiResult<Markup> {
    let caller = &viewer.caller;
    let connections = list(app, caller, Kind::SiteConnection, "").await?;
    let services = list(app, caller, Kind::VpnService, "").await?;
    let mut problems: Vec<&Value> = connections
        .iter()
        .filter(|c| c["status"] != "ACTIVE")
        .collect();
    problems.sort_by_key(|c| severity(c));
    Ok(html! {
        h1 { "Overview" }
        div.counts {
            (counts("Connections", &connections))
            (counts("VPN services", &services))
        }
        section aria-labelledby="problems" {
            h2 #problems { "Needs attention (" (problems.len()) ")" }
            @if problems.is_empty() {
                p.good { "All " (connections.len()) " connections are ACTIVE." }
            } @else {
                (problem_table(&problems))
            }
        }
    })
}

/// Errors first, then down, then pending; disabled ones last (someone chose that).
fn severity(conn: &Value) -> (u8, String) {
    let rank = match (conn["admin_state_up"].as_bool(), conn["status"].as_str()) {
        (Some(false), _) => 4,
        (_, Some("ERROR")) => 0,
        (_, Some("DOWN")) => 1,
        _ => 2,
    };
    (rank, text(&conn["name"]))
}

fn counts(title: &str, objects: &[Value]) -> Markup {
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for object in objects {
        *by_status.entry(text(&object["status"])).or_default() += 1;
    }
    html! {
        section.card aria-label=(title) {
            h2 { (title) " (" (objects.len()) ")" }
            @if by_status.is_empty() { p.muted { "None." } }
            ul.plain {
                @for (status, count) in &by_status {
                    li { (view::status(status)) " " strong.count { (count) } }
                }
            }
        }
    }
}

fn problem_table(problems: &[&Value]) -> Markup {
    html! {
        table.problems {
            thead { tr { th { "Connection" } th { "Status" } th { "Why" } th { "What to check" } th { "Since" } } }
            tbody {
                @for conn in problems.iter().take(PROBLEMS_SHOWN) {
                    @let reason = text(&conn["status_reason"]);
                    @let explained = reasons::explain(&reason);
                    tr data-connection=(text(&conn["id"])) {
                        td { (view::connection_link(conn)) }
                        td { (view::status(&text(&conn["status"]))) br; small.reason { (reason) } }
                        td { (explained.as_ref().map_or("Not reported yet.", |e| e.meaning)) }
                        td { (explained.as_ref().map_or("", |e| e.check)) }
                        td { (text(&conn["status_changed_at"])) }
                    }
                }
            }
        }
        @if problems.len() > PROBLEMS_SHOWN {
            p.muted { "And " (problems.len() - PROBLEMS_SHOWN) " more: see "
                a href="/dashboard/tables/ipsec-site-connections" { "the connections table" } "." }
        }
    }
}
