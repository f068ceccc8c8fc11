//! `GET /v2.0/vpn/events/stream` through the real server: each caller hears of the
//! changes to what it may see, as `show` would show it (a reader's `psk` is `***`, another
//! project's objects never appear), deletions included; a caller without a reading role
//! is refused; and an open stream does not hold the server when it stops.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use vpnaas_model::Kind;

/// Events of one open stream, read as they arrive.
struct Events {
    answer: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(h: &Harness, headers: &[(&str, &str)]) -> Events {
        let mut request =
            reqwest::Client::new().get(format!("{}/v2.0/vpn/events/stream", h.server.url()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let answer = request.send().await.expect("stream");
        assert_eq!(answer.status(), 200);
        assert_eq!(
            answer.headers()["content-type"],
            "text/event-stream",
            "an SSE stream"
        );
        let mut events = Events {
            answer,
            buffer: String::new(),
        };
        assert_eq!(events.next().await.0, "ready", "the stream says it listens");
        events
    }

    /// The next event (name, data), keep-alive comments skipped.
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim_start().to_string())
                };
                if let Some(event) = field("event:") {
                    let data = field("data:").unwrap_or_default();
                    return (event, serde_json::from_str(&data).expect("data is JSON"));
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.answer.chunk())
                .await
                .expect("an event within 10 s")
                .expect("read")
                .expect("the stream goes on");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next change event, as `(kind, id, action, data)`.
    async fn change(&mut self) -> (String, String, String, Value) {
        let (event, data) = self.next().await;
        assert_eq!(event, "change", "{data}");
        let text = |k: &str| data[k].as_str().unwrap_or_default().to_string();
        (text("kind"), text("id"), text("action"), data)
    }
}

#[tokio::test]
async fn each_caller_hears_of_what_it_may_see() {
    let h = start().await;
    let admin = &h.client;
    let setup = connected_site(admin).await;
    let conn = id(&setup.conn);
    let mut reader = Events::open(&h, &[("X-Project-Id", "admin"), ("X-Roles", "reader")]).await;
    let mut stranger = Events::open(&h, &[("X-Project-Id", "other"), ("X-Roles", "member")]).await;

    admin
        .update(Kind::SiteConnection, &conn, json!({"mtu": 1400}))
        .await
        .expect("update");
    let (kind, changed, action, data) = reader.change().await;
    assert_eq!(
        (kind.as_str(), changed.as_str(), action.as_str()),
        ("ipsec_site_connection", conn.as_str(), "changed")
    );
    assert_eq!(data["ipsec_site_connection"]["mtu"], 1400);
    assert_eq!(
        data["ipsec_site_connection"]["psk"], "***",
        "a reader never hears the key"
    );

    let theirs = h
        .client
        .as_project("other", "member")
        .create(Kind::IkePolicy, json!({"name": "theirs"}))
        .await
        .expect("other project's policy");
    let (kind, heard, _, data) = stranger.change().await;
    assert_eq!(
        (kind.as_str(), heard),
        ("ikepolicy", id(&theirs)),
        "another project's connection change never reached it: its first event is its own policy"
    );
    assert_eq!(data["ikepolicy"]["name"], "theirs");

    admin
        .delete(Kind::SiteConnection, &conn)
        .await
        .expect("delete");
    let (_, deleted, action, data) = reader.change().await;
    assert_eq!(
        (deleted.as_str(), action.as_str()),
        (conn.as_str(), "deleted")
    );
    assert!(
        data.get("ipsec_site_connection").is_none(),
        "a deletion carries no object"
    );
    let stopping = tokio::time::timeout(Duration::from_secs(10), h.server.stop()).await;
    assert!(stopping.is_ok(), "open streams end when the server stops");
}

#[tokio::test]
async fn a_caller_who_may_not_read_is_refused() {
    let h = start().await;
    let answer = reqwest::Client::new()
        .get(format!("{}/v2.0/vpn/events/stream", h.server.url()))
        .header("X-Project-Id", "p")
        .header("X-Roles", "observer")
        .send()
        .await
        .expect("send");
    assert_eq!(answer.status(), 403);
    let body: Value = answer.json().await.expect("json");
    assert_eq!(body["NeutronError"]["type"], "PolicyNotAuthorized");
}
