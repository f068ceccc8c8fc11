//! The Map: the project's VPN services (its gateways) and the peers they connect to as
//! nodes, connections as edges, drawn by the server as SVG. A peer whose address is one of
//! the project's own gateways is that gateway's node, so two sites connected both ways
//! show as two gateways and two edges. Each edge links to its connection; its status is
//! its colour, its line style (solid when up, dashed otherwise) and its label.

use std::collections::BTreeMap;
use std::f64::consts::PI;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde_json::Value;
use vpnaas_model::Kind;

use super::view::{self, text};
use super::{Viewer, failed_page, list};
use crate::App;
use crate::error::ApiResult;

const SIZE: f64 = 640.0;
const RADIUS: f64 = 240.0;

pub(super) async fn page(State(app): State<App>, viewer: Viewer) -> Response {
    match content(&app, &viewer).await {
        Ok(main) => view::layout(&viewer, "Map", main).into_response(),
        Err(error) => failed_page(&viewer, error).await,
    }
}

/// A node: a gateway (one of our services) or a peer we know only by its address.
struct Node {
    label: String,
    address: String,
    gateway: bool,
}

async fn content(app: &App, viewer: &Viewer) -> ApiResult<Markup> {
    let services = list(app, &viewer.caller, Kind::VpnService, "").await?;
    let connections = list(app, &viewer.caller, Kind::SiteConnection, "").await?;
    let (nodes, index) = nodes(&services, &connections);
    let at = |i: usize| {
        let angle = 2.0 * PI * i as f64 / nodes.len().max(1) as f64 - PI / 2.0;
        (
            SIZE / 2.0 + RADIUS * angle.cos(),
            SIZE / 2.0 + RADIUS * angle.sin(),
        )
    };
    Ok(html! {
        h1 { "Map" }
        @if nodes.is_empty() {
            p.muted { "No VPN services yet." }
        } @else {
            svg #map viewBox={ "0 0 " (SIZE) " " (SIZE) } role="img" aria-label="Gateways, peers and connections" {
                @for conn in &connections {
                    @let from = index.get(&text(&conn["vpnservice_id"])).copied();
                    @let to = index.get(&peer_key(conn)).copied();
                    @if let (Some(from), Some(to)) = (from, to) {
                        (edge(conn, at(from), at(to)))
                    }
                }
                @for (i, node) in nodes.iter().enumerate() {
                    @let (x, y) = at(i);
                    g.node.(if node.gateway { "gateway" } else { "peer" }) {
                        circle cx=(x) cy=(y) r="18" {}
                        text x=(x) y=(y + 34.0) text-anchor="middle" { (node.label) }
                        text.address x=(x) y=(y + 48.0) text-anchor="middle" { (node.address) }
                    }
                }
            }
            p.muted { "Solid: ACTIVE. Dashed: anything else. Gateways are filled, peers hollow. Select an edge for its connection." }
        }
    })
}

/// The peer end of a connection: a node key.
fn peer_key(conn: &Value) -> String {
    format!("peer:{}", text(&conn["peer_address"]))
}

/// The nodes, and each key's position: services by id, peers by `peer:<address>` (a
/// peer address that is a service's gateway address maps to that service).
fn nodes(services: &[Value], connections: &[Value]) -> (Vec<Node>, BTreeMap<String, usize>) {
    let mut nodes = Vec::new();
    let mut index = BTreeMap::new();
    for service in services {
        let address = text(&service["external_v4_ip"]);
        let name = text(&service["name"]);
        index.insert(text(&service["id"]), nodes.len());
        if !address.is_empty() {
            index.insert(format!("peer:{address}"), nodes.len());
        }
        nodes.push(Node {
            label: if name.is_empty() {
                text(&service["id"])
            } else {
                name
            },
            address,
            gateway: true,
        });
    }
    for conn in connections {
        if let std::collections::btree_map::Entry::Vacant(slot) = index.entry(peer_key(conn)) {
            slot.insert(nodes.len());
            nodes.push(Node {
                label: "peer".into(),
                address: text(&conn["peer_address"]),
                gateway: false,
            });
        }
    }
    (nodes, index)
}

/// A connection's edge: a curve (so the two directions between two gateways stay apart)
/// with its name and status at the middle, a link to its page.
fn edge(conn: &Value, (x1, y1): (f64, f64), (x2, y2): (f64, f64)) -> Markup {
    let status = text(&conn["status"]);
    let class = match status.as_str() {
        "ACTIVE" => "ok",
        "ERROR" => "error",
        "DOWN" => "down",
        _ => "pending",
    };
    // Bend to the left of the direction of travel.
    let (mx, my) = (
        (x1 + x2) / 2.0 - (y2 - y1) * 0.15,
        (y1 + y2) / 2.0 + (x2 - x1) * 0.15,
    );
    let id = text(&conn["id"]);
    html! {
        a href={ "/dashboard/connections/" (id) } data-edge=(id) data-status=(status) {
            path.edge.(class) d={ "M" (x1) "," (y1) " Q" (mx) "," (my) " " (x2) "," (y2) } {}
            text.edge-label x=(mx) y=(my) text-anchor="middle" {
                (text(&conn["name"])) " · " (status)
            }
        }
    }
}
