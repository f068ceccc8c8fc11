//! The dashboard over HTTP, without a browser (the browser's view is
//! crates/cli/tests/e2e_dashboard.rs): signing in presents an identity the API itself
//! judges (a token it refuses is refused here too), pages show what the API lets the
//! caller see (another project's objects never, a reader's `psk` as `***` and no control
//! that writes), tenant-typed text is escaped, writes are JSON like any client's and are
//! refused with the API's own error, and the page's change stream is the caller's.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use vpnaas_model::Kind;

/// A browser's cookie jar, reduced to the dashboard's one cookie.
struct Session {
    url: String,
    cookie: String,
}

impl Session {
    async fn sign_in(url: &str, identity: Value) -> Result<Session, (StatusCode, Value)> {
        let answer = post(url, "/dashboard/login", None, &identity).await;
        let cookie = answer
            .headers()
            .get("set-cookie")
            .map(|c| c.to_str().expect("ascii").to_string());
        let status = answer.status();
        let body: Value = answer.json().await.expect("json");
        match cookie {
            Some(cookie) if status == StatusCode::OK => {
                assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
                let cookie = cookie.split(';').next().expect("pair").to_string();
                assert_eq!(body["redirect"], "/dashboard");
                Ok(Session {
                    url: url.into(),
                    cookie,
                })
            }
            _ => Err((status, body)),
        }
    }

    /// A page, its redirects not followed.
    async fn page(&self, path: &str) -> (StatusCode, String) {
        let answer = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .get(format!("{}{path}", self.url))
            .header("Cookie", &self.cookie)
            .send()
            .await
            .expect("get");
        (answer.status(), answer.text().await.expect("text"))
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let answer = post(&self.url, path, Some(&self.cookie), body).await;
        (answer.status(), answer.json().await.expect("json"))
    }
}

async fn post(url: &str, path: &str, cookie: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    request.send().await.expect("post")
}

#[tokio::test]
async fn pages_show_what_the_api_lets_the_caller_see() {
    let h = start().await;
    let setup = connected_site(&h.client).await;
    let conn = id(&setup.conn);
    h.client
        .update(
            Kind::SiteConnection,
            &conn,
            json!({"name": "<b>bold</b>", "description": "<script>alert(1)</script>"}),
        )
        .await
        .expect("a name with markup");
    h.client
        .as_project("other", "member")
        .create(Kind::IkePolicy, json!({"name": "someone-elses"}))
        .await
        .expect("another project's policy");

    let url = h.server.url();
    let admin = Session::sign_in(&url, json!({"project": "admin", "role": "admin"}))
        .await
        .expect("admin signs in");
    let (status, overview) = admin.page("/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert!(overview.contains("&lt;b&gt;bold&lt;/b&gt;"), "escaped");
    assert!(!overview.contains("<b>bold</b>"), "never markup");
    assert!(
        overview.contains("Needs attention (1)"),
        "the connection is not ACTIVE"
    );
    let (_, page) = admin.page(&format!("/dashboard/connections/{conn}")).await;
    assert!(page.contains("toggle-admin"), "an admin may disable it");
    assert!(
        !page.contains("<script>alert"),
        "the description is escaped or absent"
    );

    let reader = Session::sign_in(&url, json!({"project": "admin", "role": "reader"}))
        .await
        .expect("a reader signs in");
    let (status, page) = reader.page(&format!("/dashboard/connections/{conn}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"<dd data-setting="psk">***</dd>"#),
        "{page}"
    );
    assert!(!page.contains("a long shared secret") && !page.contains("toggle-admin"));
    let (status, body) = reader
        .post(
            &format!("/dashboard/connections/{conn}/disable"),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["NeutronError"]["type"], "PolicyNotAuthorized",
        "the API's own refusal"
    );

    let stranger = Session::sign_in(&url, json!({"project": "other", "role": "member"}))
        .await
        .expect("another project signs in");
    let (_, overview) = stranger.page("/dashboard").await;
    assert!(
        overview.contains("Connections (0)"),
        "another project's connections never appear"
    );
    let (status, _) = stranger
        .page(&format!("/dashboard/connections/{conn}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "as the API: 404");
    let (_, table) = stranger.page("/dashboard/tables/ike-policies").await;
    assert!(table.contains("someone-elses"));
}

#[tokio::test]
async fn writes_answer_with_the_api_error_and_check_fields_by_its_rules() {
    let h = start().await;
    let setup = connected_site(&h.client).await;
    let conn = id(&setup.conn);
    let admin = Session::sign_in(
        &h.server.url(),
        json!({"project": "admin", "role": "admin"}),
    )
    .await
    .expect("signs in");
    let (status, body) = admin
        .post(
            &format!("/dashboard/connections/{conn}/edit"),
            &json!({"name": "ok", "mtu": "99999"}),
        )
        .await;
    let api = h
        .client
        .update(Kind::SiteConnection, &conn, json!({"mtu": "99999"}))
        .await;
    let Err(vpnaas_client::Error::Api { kind, message, .. }) = api else {
        panic!("the API takes mtu 99999");
    };
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["NeutronError"]["type"], json!(kind));
    assert_eq!(body["NeutronError"]["message"], json!(message));

    let (_, checked) = admin
        .page("/dashboard/check?kind=ipsec_site_connection&field=peer_cidrs&value=10.0.0.0/33")
        .await;
    let checked: Value = serde_json::from_str(&checked).expect("json");
    assert!(
        checked["error"]
            .as_str()
            .is_some_and(|e| e.contains("10.0.0.0/33")),
        "{checked}"
    );
    let (_, fine) = admin
        .page("/dashboard/check?kind=ipsec_site_connection&field=peer_cidrs&value=10.0.0.0/24")
        .await;
    assert_eq!(fine, r#"{"error":null}"#);

    let (status, body) = admin
        .post(
            &format!("/dashboard/connections/{conn}/disable"),
            &json!({}),
        )
        .await;
    assert_eq!(
        (status, &body["redirect"]),
        (
            StatusCode::OK,
            &json!(format!("/dashboard/connections/{conn}"))
        )
    );
    let shown = h
        .client
        .show(Kind::SiteConnection, &conn)
        .await
        .expect("show");
    assert_eq!(shown["admin_state_up"], false);
}

#[tokio::test]
async fn a_token_the_api_refuses_is_refused_at_sign_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        "[[token]]\ntoken = \"t-alice\"\nproject_id = \"alice\"\nroles = [\"member\"]\n",
    )
    .expect("write tokens");
    let h = start_with(|s| {
        s.auth = vpnaas_server::AuthMode::Token;
        s.tokens_file = Some(tokens.clone());
    })
    .await;
    let url = h.server.url();
    let (status, body) = Session::sign_in(&url, json!({"token": "t-mallory"}))
        .await
        .err()
        .expect("refused");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["NeutronError"]["type"], "HTTPUnauthorized");
    let alice = Session::sign_in(&url, json!({"token": "t-alice"}))
        .await
        .expect("alice signs in");
    let (status, overview) = alice.page("/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert!(overview.contains("alice · member"));
    let (status, _) = Session {
        url: url.clone(),
        cookie: "vpnaas_dashboard=bm9wZQ".into(),
    }
    .page("/dashboard")
    .await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "an unreadable session goes to the login"
    );
}
