//! The OpenStack lab works: a real Neutron 29 behind a real Keystone keeps projects
//! apart, neutron-vpnaas answers on it, and the haproxy front sends vpnaas's routes to
//! vpnaas (here a stand-in that records what it gets) and the rest to Neutron.

use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vpnaas_test_support::front::Front;
use vpnaas_test_support::keystone::Keystone;
use vpnaas_test_support::neutron::{Identity, Neutron, NeutronOptions};
use vpnaas_test_support::{skip_without_openstack, workspace_root};

#[tokio::test]
async fn neutron_behind_keystone_keeps_each_project_to_its_own() {
    if skip_without_openstack() {
        return;
    }
    let keystone = Keystone::start().await;
    let neutron = Neutron::start(&NeutronOptions::keystone(&keystone)).await;
    let [p1, p2] = &keystone.projects;
    let login = async |user: &vpnaas_test_support::keystone::User, project: &str| {
        Identity::Token(
            keystone
                .login(&user.name, &user.password, project)
                .await
                .expect("login"),
        )
    };
    let member1 = login(&p1.member, &p1.name).await;
    let member2 = login(&p2.member, &p2.name).await;

    let public = neutron.external_network("public", "198.51.100.0/24").await;
    let router = neutron.router(&member1, "r1", &public.network).await;
    let router_id = router["id"].as_str().expect("router id");
    assert_eq!(
        router["project_id"],
        p1.id.as_str(),
        "the token's project owns it"
    );
    let gateway_ip = &router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"];
    assert!(
        gateway_ip
            .as_str()
            .is_some_and(|ip| ip.starts_with("198.51.100.")),
        "{router}"
    );
    let own = neutron
        .tenant_network(&member1, "n1", "10.1.0.0/24", Some(router_id))
        .await;

    for path in [
        format!("/v2.0/routers/{router_id}"),
        format!("/v2.0/networks/{}", own.network),
        format!("/v2.0/subnets/{}", own.subnet),
    ] {
        let mine = neutron.call(&member1, Method::GET, &path, None).await;
        assert_eq!(mine.status, StatusCode::OK, "{path}: {:?}", mine.body);
        let theirs = neutron.call(&member2, Method::GET, &path, None).await;
        assert_eq!(
            theirs.status,
            StatusCode::NOT_FOUND,
            "{path} for p2: {:?}",
            theirs.body
        );
    }
    let listed = neutron
        .call(&member2, Method::GET, "/v2.0/networks", None)
        .await;
    let names: Vec<&Value> = listed.body["networks"]
        .as_array()
        .expect("list")
        .iter()
        .map(|n| &n["name"])
        .collect();
    assert_eq!(
        names,
        [&json!("public")],
        "p2 sees the external network only"
    );

    let anonymous = Identity::Token("not-a-token".into());
    let refused = neutron
        .call(&anonymous, Method::GET, "/v2.0/networks", None)
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn neutron_vpnaas_creates_ike_policies() {
    if skip_without_openstack() {
        return;
    }
    let neutron = Neutron::start(&NeutronOptions::headers()).await;
    let member = Identity::headers("project-a", &["member"]);
    let extensions = neutron
        .call(&member, Method::GET, "/v2.0/extensions", None)
        .await;
    let aliases: Vec<&str> = extensions.body["extensions"]
        .as_array()
        .expect("extensions")
        .iter()
        .filter_map(|e| e["alias"].as_str())
        .collect();
    assert!(aliases.contains(&"vpnaas"), "{aliases:?}");

    // neutron-vpnaas's own default, sha1, is refused by its database (500): say sha256.
    let attributes = json!({"name": "ike1", "auth_algorithm": "sha256"});
    let policy = neutron
        .create(&member, "/v2.0/vpn/ikepolicies", "ikepolicy", attributes)
        .await;
    assert_eq!(policy["project_id"], "project-a");
    assert_eq!(policy["encryption_algorithm"], "aes-128", "{policy}");
    let path = format!(
        "/v2.0/vpn/ikepolicies/{}",
        policy["id"].as_str().expect("id")
    );
    let shown = neutron.call(&member, Method::GET, &path, None).await;
    assert_eq!(shown.body["ikepolicy"], policy);
    let other = Identity::headers("project-b", &["member"]);
    let hidden = neutron.call(&other, Method::GET, &path, None).await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{:?}", hidden.body);
}

#[tokio::test]
async fn the_front_sends_vpnaas_routes_to_vpnaas_and_the_rest_to_neutron() {
    if skip_without_openstack() {
        return;
    }
    let neutron = Neutron::start(&NeutronOptions::headers()).await;
    let stand_in = StandIn::start().await;
    let front = Front::start(&stand_in.url, &neutron.url);
    let admin = Identity::headers("lab-admin", &["admin"]);
    let http = reqwest::Client::new();
    let call = async |method: Method, path: &str| {
        let request = admin.apply(http.request(method, format!("{}{path}", front.url)));
        let answer = request.send().await.expect("the front answers");
        (
            answer.status(),
            answer.json::<Value>().await.unwrap_or(Value::Null),
        )
    };

    let to_vpnaas = [
        (Method::GET, "/v2.0/vpn/ikepolicies"),
        (Method::POST, "/v2.0/vpn/vpnservices.json"),
        (Method::DELETE, "/v2.0/routers/x"),
        (Method::DELETE, "/v2.0/routers/x.json"),
        (Method::PUT, "/v2.0/routers/x"),
        (Method::PUT, "/v2.0/routers/x/remove_router_interface"),
        (Method::PUT, "/v2.0/routers/x/remove_external_gateways.json"),
        (Method::DELETE, "/v2.0/subnets/x"),
        (Method::GET, "/v2.0/service-providers"),
        (Method::GET, "/v2.0/routers/x/vpn-agents"),
        (Method::GET, "/v2.0/agents/x/vpn-routers"),
    ];
    for (method, path) in &to_vpnaas {
        let (status, body) = call(method.clone(), path).await;
        assert_eq!(status, StatusCode::OK, "{method} {path}");
        assert_eq!(body["stand_in"], format!("{method} {path}"));
    }
    let (status, body) = call(Method::GET, "/v2.0/networks").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["networks"].is_array(), "Neutron's answer: {body}");
    let to_neutron = [
        (Method::GET, "/v2.0/routers/x"),
        (Method::PUT, "/v2.0/routers/x/add_router_interface"),
        (Method::DELETE, "/v2.0/networks/x"),
        (Method::GET, "/v2.0/subnets/x"),
    ];
    for (method, path) in &to_neutron {
        let (status, body) = call(method.clone(), path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert!(
            body["NeutronError"].is_object(),
            "{method} {path} is Neutron's: {body}"
        );
    }
    let seen: Vec<String> = to_vpnaas.iter().map(|(m, p)| format!("{m} {p}")).collect();
    assert_eq!(
        *stand_in.seen.lock().expect("lock"),
        seen,
        "the stand-in got exactly these"
    );
}

#[tokio::test]
async fn the_openstack_cli_finds_the_front_in_the_catalog() {
    if skip_without_openstack() {
        return;
    }
    let keystone = Keystone::start().await;
    let neutron = Neutron::start(&NeutronOptions::keystone(&keystone)).await;
    let public = neutron.external_network("public", "203.0.113.0/24").await;
    let stand_in = StandIn::start().await;
    let front = Front::start(&stand_in.url, &neutron.url);
    keystone.register_endpoint("network", &front.url).await;
    let p1 = &keystone.projects[0];
    let openstack = async |args: &[&str]| {
        let output = tokio::process::Command::new(workspace_root().join(".venv/bin/openstack"))
            .args([
                "--os-auth-url",
                &keystone.url,
                "--os-identity-api-version",
                "3",
            ])
            .args([
                "--os-username",
                &p1.member.name,
                "--os-password",
                &p1.member.password,
            ])
            .args([
                "--os-project-name",
                &p1.name,
                "--os-user-domain-id",
                "default",
            ])
            .args(["--os-project-domain-id", "default"])
            .args(args)
            .output()
            .await
            .expect("the openstack CLI (scripts/setup.sh installs .venv)");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "openstack {args:?}: {stderr}");
        String::from_utf8_lossy(&output.stdout).to_string()
    };

    let created = openstack(&[
        "router",
        "create",
        "r1",
        "--external-gateway",
        &public.network,
        "-f",
        "json",
    ])
    .await;
    let router: Value = serde_json::from_str(&created).expect("router json");
    let id = router["id"].as_str().expect("router id");
    let member = Identity::Token(
        keystone
            .login(&p1.member.name, &p1.member.password, &p1.name)
            .await
            .expect("login"),
    );
    let path = format!("/v2.0/routers/{id}");
    let in_neutron = neutron.call(&member, Method::GET, &path, None).await;
    assert_eq!(
        in_neutron.status,
        StatusCode::OK,
        "made in Neutron through the front"
    );

    openstack(&["router", "delete", id]).await;
    assert_eq!(
        *stand_in.seen.lock().expect("lock"),
        [format!("DELETE {path}")],
        "the delete went to vpnaas's side"
    );
    let kept = neutron.call(&member, Method::GET, &path, None).await;
    assert_eq!(
        kept.status,
        StatusCode::OK,
        "the stand-in did not pass it on"
    );
}

/// vpnaas's stand-in behind the front: answers every request 200 with
/// `{"stand_in": "METHOD PATH"}` and records it.
struct StandIn {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl StandIn {
    async fn start() -> StandIn {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, record.clone()));
            }
        });
        StandIn { url, seen }
    }
}

/// Reads one request's head (and its body, by `Content-Length`) and answers it.
async fn answer(mut stream: tokio::net::TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "the front closed mid-request");
        request.extend_from_slice(&buf[..n]);
        if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().expect("length"))
        })
        .unwrap_or(0);
    while request.len() < head_end + length {
        let n = stream.read(&mut buf).await.expect("read body");
        request.extend_from_slice(&buf[..n]);
    }
    let line: Vec<&str> = head
        .lines()
        .next()
        .expect("request line")
        .split(' ')
        .collect();
    let what = format!("{} {}", line[0], line[1]);
    seen.lock().expect("lock").push(what.clone());
    let body = json!({ "stand_in": what }).to_string();
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await.expect("write");
}
