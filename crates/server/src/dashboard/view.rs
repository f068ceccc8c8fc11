//! The page frame and the small pieces every page shares: navigation, identity, status
//! badges (a word and a symbol beside the colour), numbers and times for people. maud
//! escapes every value interpolated, so tenant-typed text is never markup.

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::Viewer;

/// A page of the dashboard for a signed-in viewer; `main` is replaced live.
pub(super) fn layout(viewer: &Viewer, title: &str, main: Markup) -> Markup {
    frame(viewer, title, html! { main #live data-live { (main) } })
}

/// A page whose `main` holds a form being filled: never replaced under the typist.
pub(super) fn layout_still(viewer: &Viewer, title: &str, main: Markup) -> Markup {
    frame(viewer, title, html! { main { (main) } })
}

fn frame(viewer: &Viewer, title: &str, main: Markup) -> Markup {
    let caller = &viewer.caller;
    let links = [
        ("/dashboard", "Overview"),
        ("/dashboard/map", "Map"),
        ("/dashboard/connect", "Connect a site"),
        ("/dashboard/tables/ipsec-site-connections", "Tables"),
    ];
    page(
        title,
        html! {
            header {
                nav aria-label="Dashboard" {
                    strong { "vpnaas" }
                    @for (href, text) in links {
                        @if href != "/dashboard/connect" || caller.can_write() {
                            a href=(href) { (text) }
                        }
                    }
                }
                div.who {
                    span #live-state role="status" { "connecting…" }
                    span { (caller.project_id) " · " (caller.roles.join(",")) }
                    form data-json action="/dashboard/logout" method="post" {
                        button type="submit" { "Sign out" }
                    }
                }
            }
            (main)
        },
    )
}

/// A page without navigation (the login).
pub(super) fn bare(title: &str, main: Markup) -> Markup {
    page(title, html! { main { (main) } })
}

fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · vpnaas" }
                link rel="stylesheet" href="/dashboard/assets/dashboard.css";
                script defer src="/dashboard/assets/dashboard.js" {}
            }
            body { (body) }
        }
    }
}

/// A status as a badge: its symbol and word carry it without the colour.
pub(super) fn status(status: &str) -> Markup {
    let (symbol, class) = match status {
        "ACTIVE" => ("✔", "ok"),
        "DOWN" => ("✖", "down"),
        "ERROR" => ("⚠", "error"),
        _ => ("…", "pending"),
    };
    html! { span.status.(class) data-status=(status) { span aria-hidden="true" { (symbol) } " " (status) } }
}

/// A JSON value as text: strings bare, nothing for null, lists joined.
pub(super) fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Bytes for people (KiB, MiB, …).
pub(super) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

/// A link to a connection's page, by its name (its id when it has none).
pub(super) fn connection_link(conn: &Value) -> Markup {
    let id = text(&conn["id"]);
    let name = match text(&conn["name"]) {
        name if name.is_empty() => id.clone(),
        name => name,
    };
    html! { a href={ "/dashboard/connections/" (id) } { (name) } }
}
