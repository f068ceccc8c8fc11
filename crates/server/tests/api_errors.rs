//! Hostile HTTP: every route the server has, with path parameters that cannot be read
//! (percent-encoded bytes that are not UTF-8), odd ones (NUL, dot segments) and methods it
//! does not serve (PATCH, OPTIONS, TRACE, made-up ones). Whatever the answer, an error is a
//! `NeutronError` JSON document, never plain text, and never a 5xx.

mod common;

use common::*;
use serde_json::Value;

/// Routes not in the OpenAPI document (which holds the resources, their members, the
/// events and interface actions, and the discovery documents).
const OTHER_ROUTES: &[&str] = &[
    "/metrics",
    "/v2.0/networks/{id}/tags",
    "/v2.0/networks/{id}/tags/{tag}",
    "/v2.0/routers/{id}/tags/{tag}",
    "/v2.0/routers/{id}/migrate_vpn_driver",
    "/v2.0/routers/{id}/vpn-agents",
    "/v2.0/agents/{id}/vpn-routers",
    "/v2.0/agents/{id}/vpn-routers/{router_id}",
    "/v2.0/service-providers",
    "/v2.0/ports",
    "/v2.0/ports/{id}",
    "/v2.0/flavors/{id}/service_profiles",
    "/v2.0/flavors/{id}/service_profiles/{profile_id}",
    "/v2.0/vpnaas-agent/{host}/heartbeat",
    "/v2.0/vpnaas-agent/{host}/routers",
    "/v2.0/vpnaas-agent/{host}/router-states",
    "/v2.0/vpnaas-agent/{host}/reports",
    "/v2.0/vpnaas-agent/{host}/hints",
    "/v2.0/nothing-here",
];

/// Path parameters a client should never send.
const HOSTILE_SEGMENTS: &[&str] = &["%FF", "%C3%28", "a%00b", "%2e%2e", "x%E2%80%AEy"];

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "FROB",
];

fn routes(openapi: &Value) -> Vec<String> {
    let mut routes: Vec<String> = openapi["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect();
    routes.extend(OTHER_ROUTES.iter().map(|r| r.to_string()));
    routes
}

/// The route with every `{parameter}` replaced by `segment`.
fn filled(route: &str, segment: &str) -> String {
    let mut out = String::new();
    let mut rest = route;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        out.push_str(segment);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn every_error_on_every_route_is_a_neutron_error() {
    let h = start().await;
    let openapi = h.client.get("/openapi.json").await.expect("openapi");
    // A member: agent routes refuse it at once (an admin's hint poll would wait).
    let (project, roles) = ("p", "member");
    let http = reqwest::Client::new();
    let mut checked = 0;
    for route in routes(&openapi) {
        for segment in HOSTILE_SEGMENTS {
            let url = format!("{}{}", h.client.base_url(), filled(&route, segment));
            for method in METHODS {
                let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
                let response = http
                    .request(method.clone(), &url)
                    .header("x-project-id", project)
                    .header("x-roles", roles)
                    .send()
                    .await
                    .expect("an answer");
                let status = response.status().as_u16();
                let content_type = response
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                checked += 1;
                if status < 400 && content_type.starts_with("text/event-stream") {
                    // The change stream answers and never ends: its answer is the check.
                    continue;
                }
                let text = response.text().await.expect("body");
                let what = format!("{method} {url}: {status} {content_type} {text}");
                assert!(status < 500, "{what}");
                if status >= 400 {
                    assert!(content_type.starts_with("application/json"), "{what}");
                    let body: Value = serde_json::from_str(&text).expect(&what);
                    let error = &body["NeutronError"];
                    assert!(
                        error["type"].is_string() && error["message"].is_string(),
                        "{what}"
                    );
                }
            }
        }
    }
    assert!(checked > 1000, "only {checked} requests");
}
