//! Tables of the project's VPN objects (and for admins, agents and routers with their
//! active and standby hosts): sorted, filtered and paged by the API's own listing
//! (`sort_key`, `sort_dir`, exact-match filters, `limit` and `marker`), so a thousand
//! connections arrive fifty at a time; rows can be deleted by those who may write.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::Value;
use vpnaas_model::Kind;

use super::view::{self, text};
use super::{Viewer, failed_page, go_to, list};
use crate::App;
use crate::api::Path;
use crate::error::ApiResult;
use crate::service;

/// Rows per page.
const PAGE: usize = 50;

/// One table: its path segment, title, kind and columns.
struct Table {
    slug: &'static str,
    title: &'static str,
    kind: Kind,
    columns: &'static [&'static str],
    admin_only: bool,
}

const TABLES: [Table; 7] = [
    Table {
        slug: "ipsec-site-connections",
        title: "Connections",
        kind: Kind::SiteConnection,
        columns: &[
            "name",
            "status",
            "status_reason",
            "peer_address",
            "peer_cidrs",
            "admin_state_up",
        ],
        admin_only: false,
    },
    Table {
        slug: "vpn-services",
        title: "VPN services",
        kind: Kind::VpnService,
        columns: &["name", "status", "router_id", "subnet_id", "external_v4_ip"],
        admin_only: false,
    },
    Table {
        slug: "ike-policies",
        title: "IKE policies",
        kind: Kind::IkePolicy,
        columns: &[
            "name",
            "ike_version",
            "encryption_algorithm",
            "auth_algorithm",
            "pfs",
        ],
        admin_only: false,
    },
    Table {
        slug: "ipsec-policies",
        title: "IPsec policies",
        kind: Kind::IpsecPolicy,
        columns: &[
            "name",
            "transform_protocol",
            "encryption_algorithm",
            "auth_algorithm",
            "pfs",
        ],
        admin_only: false,
    },
    Table {
        slug: "endpoint-groups",
        title: "Endpoint groups",
        kind: Kind::EndpointGroup,
        columns: &["name", "type", "endpoints"],
        admin_only: false,
    },
    Table {
        slug: "agents",
        title: "Agents",
        kind: Kind::Agent,
        columns: &["host", "alive", "admin_state_up", "agent_type"],
        admin_only: true,
    },
    Table {
        slug: "routers",
        title: "Routers",
        kind: Kind::Router,
        columns: &[
            "name",
            "status",
            "ha",
            "agent_host",
            "ha_standby_host",
            "lease_epoch",
        ],
        admin_only: true,
    },
];

fn table(slug: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.slug == slug)
}

pub(super) async fn page(
    State(app): State<App>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let Some(table) = table(&slug) else {
        let missing = vpnaas_model::Error::http_bad_request(format!("No table {slug}"));
        return failed_page(&viewer, missing.into()).await;
    };
    match content(&app, &viewer, table, &query).await {
        Ok(main) => view::layout(&viewer, table.title, main).into_response(),
        Err(error) => failed_page(&viewer, error).await,
    }
}

async fn content(
    app: &App,
    viewer: &Viewer,
    table: &Table,
    query: &[(String, String)],
) -> ApiResult<Markup> {
    let kept = api_params(query);
    let api_query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(kept.iter())
        .append_pair("limit", &(PAGE + 1).to_string())
        .finish();
    let mut rows = list(app, &viewer.caller, table.kind, &api_query).await?;
    let more = rows.len() > PAGE;
    rows.truncate(PAGE);
    let params: HashMap<&str, &str> = kept.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let link = |changes: &[(&str, &str)]| {
        let mut all: Vec<(&str, &str)> = params
            .iter()
            .filter(|(k, _)| !changes.iter().any(|(c, _)| c == *k))
            .map(|(k, v)| (*k, *v))
            .collect();
        all.extend(changes.iter().filter(|(_, v)| !v.is_empty()));
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(all)
            .finish();
        format!("/dashboard/tables/{}?{query}", table.slug)
    };
    let writes = viewer.caller.can_write() && !table.admin_only;
    Ok(html! {
        h1 { (table.title) }
        nav.tabs aria-label="Tables" {
            @for t in TABLES.iter().filter(|t| !t.admin_only || viewer.caller.is_admin()) {
                a href={ "/dashboard/tables/" (t.slug) } aria-current=[(t.slug == table.slug).then_some("page")] { (t.title) }
            }
        }
        form.filter method="get" action={ "/dashboard/tables/" (table.slug) } {
            label { "Filter on"
                select name="filter_key" { @for c in table.columns { option { (c) } } } }
            input name="filter_value" aria-label="Value (exact)" placeholder="exact value";
            button type="submit" { "Filter" }
        }
        table.data {
            thead { tr {
                @for c in table.columns {
                    @let dir = if params.get("sort_key") == Some(c) && params.get("sort_dir") != Some(&"desc") { "desc" } else { "asc" };
                    th { a href=(link(&[("sort_key", c), ("sort_dir", dir), ("marker", "")])) { (c) } }
                }
                @if writes { th { "Actions" } }
            } }
            tbody {
                @for row in &rows {
                    tr { @for c in table.columns { td { (cell(table, row, c)) } }
                        @if writes { td { (delete_form(table, row)) } } }
                }
            }
        }
        @if rows.is_empty() { p.muted { "None." } }
        @if more {
            @let last = rows.last().map(|r| text(&r["id"])).unwrap_or_default();
            a.next href=(link(&[("marker", &last)])) { "Next " (PAGE) " →" }
        }
    })
}

/// The page's query in the API's terms: the filter form's key and value become one
/// exact-match filter; `limit` is the page's own.
fn api_params(query: &[(String, String)]) -> Vec<(String, String)> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut kept: Vec<(String, String)> = query
        .iter()
        .filter(|(k, v)| {
            !["limit", "filter_key", "filter_value"].contains(&k.as_str()) && !v.is_empty()
        })
        .cloned()
        .collect();
    if let (Some(key), Some(value)) = (get("filter_key"), get("filter_value"))
        && !value.is_empty()
    {
        kept.push((key, value));
    }
    kept
}

fn cell(table: &Table, row: &Value, column: &str) -> Markup {
    let value = text(&row[column]);
    html! {
        @match column {
            "status" => (view::status(&value)),
            "name" if table.kind == Kind::SiteConnection => (view::connection_link(row)),
            _ => (value),
        }
    }
}

fn delete_form(table: &Table, row: &Value) -> Markup {
    let id = text(&row["id"]);
    html! {
        details {
            summary { "Delete…" }
            form data-json method="post" action={ "/dashboard/tables/" (table.slug) "/" (id) "/delete" } {
                p.error role="alert" {}
                button.danger type="submit" { "Yes, delete" }
            }
        }
    }
}

/// `POST /dashboard/tables/{kind}/{id}/delete`.
pub(super) async fn delete(
    State(app): State<App>,
    viewer: Viewer,
    Path((slug, id)): Path<(String, String)>,
) -> Response {
    let Some(table) = table(&slug).filter(|t| !t.admin_only) else {
        let missing = vpnaas_model::Error::http_bad_request(format!("No table {slug}"));
        return crate::error::ApiError::from(missing).into_response();
    };
    match service::delete(&app, &viewer.caller, table.kind, &id).await {
        Ok(()) => go_to(&format!("/dashboard/tables/{slug}")),
        Err(error) => error.into_response(),
    }
}
