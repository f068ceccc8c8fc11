//! `auth = "keystone"` against a real Keystone 30 of each test's own (test-support's lab):
//! project and roles from the token, 401 with `WWW-Authenticate` for a missing, invalid,
//! expired or revoked token, the `service` role on the agents' API, 503 (never a pass)
//! when Keystone is down, and password logins of openstacksdk and the `openstack` CLI.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vpnaas_bus::ControlPlane;
use vpnaas_server::clock::ManualClock;
use vpnaas_server::{AuthMode, Server, Settings};
use vpnaas_test_support::keystone::{self, Keystone};

/// A vpnaas server validating tokens against `keystone` settings, on `clock` if given.
async fn vpnaas(
    dir: &std::path::Path,
    keystone: vpnaas_server::config::KeystoneSettings,
    clock: Option<Arc<ManualClock>>,
) -> Server {
    let settings = Settings {
        auth: AuthMode::Keystone,
        keystone,
        ..common::settings(dir)
    };
    let mut app = vpnaas_server::build_app(settings).await.expect("app");
    if let Some(clock) = clock {
        app = app.with_clock(clock);
    }
    Server::start_app(app).await.expect("server starts")
}

struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    body: Value,
}

async fn call(
    server: &Server,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", server.url()));
    if let Some(token) = token {
        request = request.header("x-auth-token", token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("vpnaas answers");
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ascii").to_string());
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        challenge,
        body,
    }
}

async fn list_ike(server: &Server, token: &str) -> Answer {
    call(
        server,
        Method::GET,
        "/v2.0/vpn/ikepolicies",
        Some(token),
        None,
    )
    .await
}

fn names(answer: &Answer) -> Vec<String> {
    let mut names: Vec<String> = answer.body["ikepolicies"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect();
    names.sort();
    names
}

async fn token(keystone: &Keystone, user: &keystone::User, project: &str) -> String {
    keystone
        .login(&user.name, &user.password, project)
        .await
        .expect("login")
}

#[tokio::test]
async fn tokens_give_the_project_and_roles_of_their_scope() {
    let keystone = Keystone::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = vpnaas(dir.path(), common::keystone_settings(&keystone), None).await;
    let [p1, p2] = &keystone.projects;
    let member1 = token(&keystone, &p1.member, &p1.name).await;
    let reader1 = token(&keystone, &p1.reader, &p1.name).await;
    let member2 = token(&keystone, &p2.member, &p2.name).await;
    let admin2 = token(&keystone, &p2.admin, &p2.name).await;

    let create = |name: &str| Some(json!({"ikepolicy": {"name": name}}));
    for (member, project, name) in [(&member1, p1, "p1-ike"), (&member2, p2, "p2-ike")] {
        let made = call(
            &server,
            Method::POST,
            "/v2.0/vpn/ikepolicies",
            Some(member),
            create(name),
        )
        .await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
        assert_eq!(made.body["ikepolicy"]["project_id"], project.id.as_str());
    }

    let refused = call(
        &server,
        Method::POST,
        "/v2.0/vpn/ikepolicies",
        Some(&reader1),
        create("no"),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "a reader may not create"
    );
    assert_eq!(
        names(&list_ike(&server, &reader1).await),
        ["p1-ike"],
        "a reader reads its project"
    );
    assert_eq!(names(&list_ike(&server, &member1).await), ["p1-ike"]);
    assert_eq!(names(&list_ike(&server, &member2).await), ["p2-ike"]);
    assert_eq!(
        names(&list_ike(&server, &admin2).await),
        ["p1-ike", "p2-ike"],
        "an admin sees all"
    );

    // The agents' API: the service role (vpnaas's own user here) and admins, nobody else.
    let service = keystone
        .login("vpnaas", keystone::SERVICE_PASSWORD, "service")
        .await
        .expect("service login");
    let agent = vpnaas_bus::http::HttpControlPlane::new(&server.url(), Some(service.clone()));
    agent
        .heartbeat("host-a")
        .await
        .expect("a service token may beat");
    assert_eq!(
        agent.hosted_routers("host-a").await.expect("routers"),
        Vec::<String>::new()
    );
    let as_member = vpnaas_bus::http::HttpControlPlane::new(&server.url(), Some(member1.clone()));
    assert!(
        as_member.heartbeat("host-a").await.is_err(),
        "a member may not act as an agent"
    );
    let projects_api = list_ike(&server, &service).await;
    assert_eq!(
        projects_api.status,
        StatusCode::FORBIDDEN,
        "the service role is only for agents"
    );

    // /metrics on the API: an admin's token, not a member's, and not without one.
    let metrics = |token: Option<String>| {
        let server = &server;
        async move {
            call(server, Method::GET, "/metrics", token.as_deref(), None)
                .await
                .status
        }
    };
    assert_eq!(metrics(Some(admin2.clone())).await, StatusCode::OK);
    assert_eq!(metrics(Some(member1.clone())).await, StatusCode::FORBIDDEN);
    assert_eq!(metrics(None).await, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test]
async fn an_agent_logs_in_to_keystone_with_its_service_user() {
    let keystone = Keystone::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::starting_now());
    let settings = common::keystone_settings(&keystone);
    let ttl = settings.revocation_ttl;
    let server = vpnaas(dir.path(), settings, Some(clock.clone())).await;
    let service = keystone
        .call(Method::GET, "/projects?name=service", None)
        .await;
    let service = service["projects"][0]["id"]
        .as_str()
        .expect("service project");
    let agent_user = keystone.user("vpnaas-agent", service, "service").await;
    let login = |password: &str| vpnaas_bus::http::KeystoneLogin {
        auth_url: keystone.url.clone(),
        username: agent_user.name.clone(),
        password: password.into(),
        user_domain_name: "Default".into(),
        project_name: "service".into(),
        project_domain_name: "Default".into(),
    };
    let agent = vpnaas_bus::http::HttpControlPlane::with_keystone(
        &server.url(),
        login(&agent_user.password),
    );
    agent
        .heartbeat("host-k")
        .await
        .expect("the agent logs in and beats");
    agent
        .heartbeat("host-k")
        .await
        .expect("and again on the same token");
    // Disabling the user revokes its tokens: once the server honours that, the agent's
    // call is refused, and its next call logs in afresh.
    let user_path = format!("/users/{}", agent_user.id);
    let enabled = |on: bool| Some(json!({"user": {"enabled": on}}));
    keystone
        .call(Method::PATCH, &user_path, enabled(false))
        .await;
    keystone
        .call(Method::PATCH, &user_path, enabled(true))
        .await;
    // Keystone's revocation event also covers tokens issued later within its second
    // (token times have whole seconds): a login must come after that second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    clock.advance(Duration::from_secs(ttl + 1));
    let revoked = agent.heartbeat("host-k").await;
    assert!(
        matches!(revoked, Err(vpnaas_bus::Error::Rejected(ref why)) if why.contains("401")),
        "{revoked:?}"
    );
    agent
        .heartbeat("host-k")
        .await
        .expect("the agent logged in again after the 401");
    let wrong = vpnaas_bus::http::HttpControlPlane::with_keystone(&server.url(), login("wrong"));
    let refused = wrong.heartbeat("host-k").await;
    assert!(
        matches!(refused, Err(vpnaas_bus::Error::Rejected(_))),
        "{refused:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn missing_invalid_and_revoked_tokens_get_401_with_a_keystone_challenge() {
    let keystone = Keystone::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::starting_now());
    let settings = common::keystone_settings(&keystone);
    let ttl = settings.revocation_ttl;
    let server = vpnaas(dir.path(), settings, Some(clock.clone())).await;
    let challenge = format!("Keystone uri=\"{}\"", keystone.url);

    let unscoped = keystone.login_unscoped("p1-member", "pw-p1-member").await;
    let long = "a".repeat(20_000);
    let refused = [
        None,
        Some("not-a-token"),
        Some("gAAAAABnot-a-fernet-token"),
        Some(long.as_str()),
        Some(unscoped.as_str()),
    ];
    for token in refused {
        let answer = call(&server, Method::GET, "/v2.0/vpn/ikepolicies", token, None).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(
            answer.challenge.as_deref(),
            Some(challenge.as_str()),
            "{token:?}"
        );
        assert_eq!(answer.body["NeutronError"]["type"], "HTTPUnauthorized");
    }

    let p1 = &keystone.projects[0];
    let member = token(&keystone, &p1.member, &p1.name).await;
    assert_eq!(list_ike(&server, &member).await.status, StatusCode::OK);
    keystone.revoke(&member).await;
    // Within revocation_ttl the cached answer stands (Keystone is not asked again)...
    clock.advance(Duration::from_secs(ttl - 1));
    assert_eq!(list_ike(&server, &member).await.status, StatusCode::OK);
    // ...and after it the revocation is honoured.
    clock.advance(Duration::from_secs(2));
    let answer = list_ike(&server, &member).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    assert_eq!(answer.challenge.as_deref(), Some(challenge.as_str()));
    server.stop().await;
}

#[tokio::test]
async fn an_expired_token_is_refused_even_when_cached() {
    let keystone = Keystone::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = vpnaas(dir.path(), common::keystone_settings(&keystone), None).await;
    let p1 = &keystone.projects[0];
    // Keystone caps a token's expiry at its application credential's. 15 s leaves room
    // for the two Keystone calls before it on a busy machine (4 s did not, under load).
    let member = token(&keystone, &p1.member, &p1.name).await;
    let expires = time::OffsetDateTime::now_utc() + Duration::from_secs(15);
    let expires_at = expires
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let credential = reqwest::Client::new()
        .post(format!(
            "{}/users/{}/application_credentials",
            keystone.url, p1.member.id
        ))
        .header("x-auth-token", &member)
        .json(&json!({"application_credential": {"name": "short", "expires_at": expires_at}}))
        .send()
        .await
        .expect("Keystone answers");
    assert_eq!(credential.status(), StatusCode::CREATED);
    let credential: Value = credential.json().await.expect("json");
    let login = json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"id": credential["application_credential"]["id"],
            "secret": credential["application_credential"]["secret"]}}}});
    let short = reqwest::Client::new()
        .post(format!("{}/auth/tokens?nocatalog", keystone.url))
        .json(&login)
        .send()
        .await
        .expect("Keystone answers");
    assert_eq!(short.status(), StatusCode::CREATED);
    let short = short.headers()["x-subject-token"]
        .to_str()
        .expect("token")
        .to_string();

    assert_eq!(
        list_ike(&server, &short).await.status,
        StatusCode::OK,
        "valid before expiry"
    );
    // Wait for the instant of expiry itself (revocation_ttl is longer: only the
    // expiry can end the cached answer).
    let left = expires - time::OffsetDateTime::now_utc();
    tokio::time::sleep(left.unsigned_abs() + Duration::from_millis(100)).await;
    let answer = list_ike(&server, &short).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    assert!(answer.challenge.is_some());
    server.stop().await;
}

#[tokio::test]
async fn keystone_down_is_503_never_a_pass() {
    let mut keystone = Keystone::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::starting_now());
    let settings = common::keystone_settings(&keystone);
    let ttl = settings.revocation_ttl;
    let server = vpnaas(dir.path(), settings, Some(clock.clone())).await;
    let p1 = &keystone.projects[0];
    let member = token(&keystone, &p1.member, &p1.name).await;
    let other = token(&keystone, &p1.reader, &p1.name).await;
    assert_eq!(list_ike(&server, &member).await.status, StatusCode::OK);
    let document = call(&server, Method::GET, "/openapi.json", None, None).await;
    assert!(
        document.body["paths"]["/v2.0/vpn/ikepolicies"]["get"]["responses"]["503"].is_object(),
        "the document says a token check may find Keystone down"
    );

    // A service user Keystone refuses is vpnaas's fault, not the caller's: 503, not 401.
    let misconfigured = vpnaas_server::config::KeystoneSettings {
        password: vpnaas_server::config::Secret("wrong".into()),
        ..common::keystone_settings(&keystone)
    };
    let other_dir = tempfile::tempdir().expect("tempdir");
    let refused = vpnaas(other_dir.path(), misconfigured, None).await;
    let answer = list_ike(&refused, &member).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    let message = answer.body["NeutronError"]["message"]
        .as_str()
        .expect("message");
    assert!(message.contains("service user cannot log in"), "{message}");
    refused.stop().await;

    keystone.stop();
    let unchecked = list_ike(&server, &other).await;
    assert_eq!(
        unchecked.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        unchecked.body
    );
    assert_eq!(
        unchecked.body["NeutronError"]["type"],
        "HTTPServiceUnavailable"
    );
    let message = unchecked.body["NeutronError"]["message"]
        .as_str()
        .expect("message");
    assert!(
        message.contains("Keystone") && message.contains("cannot be reached"),
        "{message}"
    );
    clock.advance(Duration::from_secs(ttl + 1));
    let stale = list_ike(&server, &member).await;
    assert_eq!(
        stale.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        stale.body
    );
    let missing = call(&server, Method::GET, "/v2.0/vpn/ikepolicies", None, None).await;
    assert_eq!(
        missing.status,
        StatusCode::UNAUTHORIZED,
        "no token needs no Keystone"
    );
    server.stop().await;
}

fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("VPNAAS_TEST_PYTHON") {
        return path.into();
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
}

#[tokio::test]
async fn openstacksdk_and_the_openstack_cli_log_in_with_passwords() {
    let keystone = Keystone::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = vpnaas(dir.path(), common::keystone_settings(&keystone), None).await;
    keystone.register_endpoint("network", &server.url()).await;
    let python = python();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compat/keystone_login_flow.py");
    let [p1, p2] = &keystone.projects;
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&keystone.url)
        .arg(python.with_file_name("openstack"))
        .args([&p1.name, &p1.member.name, &p1.member.password])
        .args([&p1.reader.name, &p1.reader.password])
        .args([&p2.name, &p2.member.name, &p2.member.password])
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); run scripts/setup.sh",
                python.display()
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "keystone login flow failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("keystone login flow passed"), "{stdout}");
    server.stop().await;
}

#[tokio::test]
async fn keystone_over_https_is_trusted_through_the_configured_ca_only() {
    let keystone = Keystone::start().await;
    let tls = vpnaas_test_support::tls::TlsProxy::start(&format!("127.0.0.1:{}", keystone.port()));
    let https = vpnaas_server::config::KeystoneSettings {
        auth_url: format!("{}/v3", tls.url),
        ..common::keystone_settings(&keystone)
    };
    let p1 = &keystone.projects[0];
    let member = token(&keystone, &p1.member, &p1.name).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let trusting = vpnaas_server::config::KeystoneSettings {
        ca_file: Some(tls.ca.clone()),
        ..https.clone()
    };
    let server = vpnaas(dir.path(), trusting, None).await;
    let answer = list_ike(&server, &member).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    server.stop().await;

    // Without the CA, Keystone's certificate is not trusted: 503, never a pass.
    let dir = tempfile::tempdir().expect("tempdir");
    let server = vpnaas(dir.path(), https, None).await;
    let answer = list_ike(&server, &member).await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    server.stop().await;

    // A CA file that holds no certificate stops the start.
    let bad = dir.path().join("not-a-ca.pem");
    std::fs::write(&bad, "not a certificate").expect("write");
    let settings = Settings {
        auth: AuthMode::Keystone,
        keystone: vpnaas_server::config::KeystoneSettings {
            ca_file: Some(bad),
            ..common::keystone_settings(&keystone)
        },
        ..common::settings(dir.path())
    };
    let refused = vpnaas_server::build_app(settings).await;
    assert!(
        refused.is_err(),
        "a CA file without a certificate was accepted"
    );
}
