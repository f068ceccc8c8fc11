//! The HTTP edge under the attacks an outside test used: clients that never finish their
//! request head, bodies sent a byte at a time, idle keep-alive connections, more
//! connections than the server serves, and heads or bodies too large. Raw TCP on
//! loopback, against a real server; every wait is bounded and waits for the state it
//! asserts.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for the server to act before calling it a failure: far above the
/// limits under test, so a busy machine does not fail it, and far below "never".
const PATIENCE: Duration = Duration::from_secs(20);

async fn connect(h: &Harness) -> TcpStream {
    TcpStream::connect(h.server.addr).await.expect("connect")
}

/// Reads until the server closes the connection; what it sent, or a panic after `PATIENCE`.
async fn read_until_closed(tcp: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tcp.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&seen).into_owned(),
            Ok(Ok(n)) => seen.extend_from_slice(&buffer[..n]),
            Err(_) => panic!(
                "the server kept the connection open for {PATIENCE:?}; it sent: {}",
                String::from_utf8_lossy(&seen)
            ),
        }
    }
}

/// Status code and `NeutronError.type` of a raw HTTP answer.
fn status_and_type(answer: &str) -> (u16, String) {
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let error: Value =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("the body is not JSON: {answer:?}"));
    let kind = error["NeutronError"]["type"]
        .as_str()
        .unwrap_or_else(|| panic!("not a NeutronError: {answer:?}"))
        .to_string();
    (status, kind)
}

#[tokio::test]
async fn a_request_head_that_never_ends_is_cut_off() {
    let h = start_with(|s| s.http_header_timeout = 0.5).await;
    let mut tcp = connect(&h).await;
    tcp.write_all(b"GET /v2.0 HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .expect("write");
    read_until_closed(&mut tcp).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let h = start_with(|s| s.http_header_timeout = 0.5).await;
    let mut tcp = connect(&h).await;
    tcp.write_all(b"GET /v2.0 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let answer = read_until_closed(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_body_sent_a_byte_at_a_time_is_answered_408_and_closed() {
    let h = start_with(|s| s.http_body_timeout = 1.0).await;
    let (mut reader, mut writer) = connect(&h).await.into_split();
    writer
        .write_all(
            b"POST /v2.0/vpn/ikepolicies HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        )
        .await
        .expect("write");
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            if writer.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let mut seen = Vec::new();
    tokio::time::timeout(PATIENCE, reader.read_to_end(&mut seen))
        .await
        .expect("the server kept reading the trickle")
        .expect("read");
    trickle.abort();
    let answer = String::from_utf8_lossy(&seen);
    assert_eq!(
        status_and_type(&answer),
        (408, "HTTPRequestTimeout".to_string()),
        "{answer}"
    );
    assert!(
        h.client
            .list(vpnaas_model::Kind::IkePolicy, &[])
            .await
            .expect("list")
            .is_empty(),
        "nothing was created"
    );
}

#[tokio::test]
async fn connections_over_the_cap_are_answered_503_and_the_server_recovers() {
    let h = start_with(|s| {
        s.http_max_connections = 4;
        s.http_header_timeout = 60.0;
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut tcp = connect(&h).await;
        tcp.write_all(b"GET /v2.0 HTTP/1.1\r\n")
            .await
            .expect("write");
        held.push(tcp);
    }
    // The server takes the four in the order they came; the fifth is over the cap.
    let mut fifth = connect(&h).await;
    fifth
        .write_all(b"GET /v2.0 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let answer = read_until_closed(&mut fifth).await;
    assert_eq!(
        status_and_type(&answer),
        (503, "HTTPServiceUnavailable".to_string()),
        "{answer}"
    );
    drop(held);
    let deadline = Instant::now() + PATIENCE;
    while h.client.get("/v2.0").await.is_err() {
        assert!(Instant::now() < deadline, "the server never served again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends one raw request and returns the answer (the server closes after refusing).
async fn exchange(h: &Harness, request: &[u8]) -> String {
    let (mut reader, mut writer) = connect(h).await.into_split();
    let send = tokio::spawn({
        let request = request.to_vec();
        async move {
            // The server may answer and close before it has read everything.
            let _ = writer.write_all(&request).await;
            writer
        }
    });
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, reader.read_to_end(&mut seen)).await;
    let _ = send.await;
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn requests_too_large_get_neutron_errors() {
    let h = start().await;
    let long_uri = format!(
        "GET /v2.0/vpn/ikepolicies?name={} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        "a".repeat(20_000)
    );
    assert_eq!(
        status_and_type(&exchange(&h, long_uri.as_bytes()).await),
        (414, "HTTPRequestURITooLong".to_string())
    );
    let many_headers: String = (0..150).map(|i| format!("X-Extra-{i}: x\r\n")).collect();
    let many =
        format!("GET /v2.0 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{many_headers}\r\n");
    assert_eq!(
        status_and_type(&exchange(&h, many.as_bytes()).await),
        (431, "HTTPRequestHeaderFieldsTooLarge".to_string())
    );
    let big_header = format!(
        "GET /v2.0 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
        "b".repeat(40_000)
    );
    assert_eq!(
        status_and_type(&exchange(&h, big_header.as_bytes()).await),
        (431, "HTTPRequestHeaderFieldsTooLarge".to_string())
    );
    let body = format!(
        "{{\"ikepolicy\": {{\"name\": \"{}\"}}}}",
        "c".repeat(2_000_000)
    );
    let big_body = format!(
        "POST /v2.0/vpn/ikepolicies HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(
        status_and_type(&exchange(&h, big_body.as_bytes()).await),
        (413, "HTTPRequestEntityTooLarge".to_string())
    );
}
