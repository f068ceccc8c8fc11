//! noauth on a laptop: a request without identity headers is admin, so a web page the
//! user visits must not be able to use the server. It cannot send a body a JSON API
//! would take without a CORS preflight (which is never granted), nor reach it under a
//! foreign name (DNS rebinding); and identity headers that are given must make sense.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use vpnaas_model::Kind;

async fn raw(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", h.server.url()));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    let answer = request.send().await.expect("send");
    let (status, headers) = (answer.status(), answer.headers().clone());
    let text = answer.text().await.expect("body");
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn neutron_type(body: &Value) -> &str {
    body["NeutronError"]["type"].as_str().unwrap_or("")
}

const POLICY: &str = r#"{"ikepolicy": {"name": "from-a-web-page"}}"#;

#[tokio::test]
async fn bodies_must_be_declared_json() {
    let h = start().await;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let headers: Vec<(&str, &str)> =
            content_type.iter().map(|t| ("content-type", *t)).collect();
        let (status, _, body) = raw(
            &h,
            reqwest::Method::POST,
            "/v2.0/vpn/ikepolicies",
            &headers,
            Some(POLICY),
        )
        .await;
        assert_eq!(
            (status.as_u16(), neutron_type(&body)),
            (415, "HTTPUnsupportedMediaType"),
            "{content_type:?}: {body}"
        );
    }
    assert!(
        h.client
            .list(Kind::IkePolicy, &[])
            .await
            .expect("list")
            .is_empty()
    );
    let (status, _, body) = raw(
        &h,
        reqwest::Method::POST,
        "/v2.0/vpn/ikepolicies",
        &[("content-type", "application/json; charset=utf-8")],
        Some(POLICY),
    )
    .await;
    assert_eq!(status.as_u16(), 201, "{body}");
}

#[tokio::test]
async fn only_names_the_server_is_known_by_are_answered_under_noauth() {
    let h = start().await;
    let port = h.server.addr.port();
    for host in ["evil.example", "evil.example:80", "127.0.0.1.evil.example"] {
        let (status, _, body) = raw(
            &h,
            reqwest::Method::POST,
            "/v2.0/vpn/ikepolicies",
            &[("host", host), ("content-type", "application/json")],
            Some(POLICY),
        )
        .await;
        assert_eq!(
            (status.as_u16(), neutron_type(&body)),
            (400, "HTTPBadRequest"),
            "{host}: {body}"
        );
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "[::1]".to_string(),
    ] {
        let (status, _, body) = raw(
            &h,
            reqwest::Method::GET,
            "/v2.0/vpn/ikepolicies",
            &[("host", &host)],
            None,
        )
        .await;
        assert_eq!(status.as_u16(), 200, "{host}: {body}");
    }

    let open = start_with(|s| s.allowed_hosts = Some(vec!["*".into()])).await;
    let (status, _, _) = raw(
        &open,
        reqwest::Method::GET,
        "/v2.0",
        &[("host", "vpn.example.com")],
        None,
    )
    .await;
    assert_eq!(
        status.as_u16(),
        200,
        "allowed_hosts = [\"*\"] answers any name"
    );
}

#[tokio::test]
async fn no_cross_origin_access_is_ever_granted() {
    let h = start().await;
    let (_, preflight, _) = raw(
        &h,
        reqwest::Method::OPTIONS,
        "/v2.0/vpn/ikepolicies",
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type"),
        ],
        None,
    )
    .await;
    let (_, answer, _) = raw(
        &h,
        reqwest::Method::GET,
        "/v2.0/vpn/ikepolicies",
        &[("origin", "https://evil.example")],
        None,
    )
    .await;
    for headers in [preflight, answer] {
        assert!(
            !headers
                .keys()
                .any(|name| name.as_str().starts_with("access-control-")),
            "{headers:?}"
        );
    }
}

#[tokio::test]
async fn identity_headers_that_are_given_must_make_sense() {
    let h = start().await;
    let long = "p".repeat(300);
    for (name, value) in [
        ("x-project-id", ""),
        ("x-project-id", "   "),
        ("x-project-id", long.as_str()),
        ("x-tenant-id", ""),
        ("x-user-id", long.as_str()),
        ("x-roles", ""),
    ] {
        let (status, _, body) = raw(
            &h,
            reqwest::Method::POST,
            "/v2.0/vpn/ikepolicies",
            &[(name, value), ("content-type", "application/json")],
            Some(POLICY),
        )
        .await;
        assert_eq!(
            (status.as_u16(), neutron_type(&body)),
            (400, "HTTPBadRequest"),
            "{name}: {} characters: {body}",
            value.len()
        );
    }
    let huge = "p".repeat(100_000);
    let (status, _, body) = raw(
        &h,
        reqwest::Method::GET,
        "/v2.0/vpn/ikepolicies",
        &[("x-project-id", &huge)],
        None,
    )
    .await;
    assert_eq!(
        (status.as_u16(), neutron_type(&body)),
        (431, "HTTPRequestHeaderFieldsTooLarge")
    );
    assert!(
        h.client
            .list(Kind::IkePolicy, &[])
            .await
            .expect("list")
            .is_empty(),
        "nothing was created as the default project's admin"
    );
    let (status, _, body) = raw(
        &h,
        reqwest::Method::POST,
        "/v2.0/vpn/ikepolicies",
        &[
            ("x-project-id", "demo"),
            ("x-roles", "member"),
            ("content-type", "application/json"),
        ],
        Some(&json!({"ikepolicy": {"name": "fine"}}).to_string()),
    )
    .await;
    assert_eq!(status.as_u16(), 201, "{body}");
    assert_eq!(body["ikepolicy"]["project_id"], "demo");
}
