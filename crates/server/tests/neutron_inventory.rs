//! `inventory = "neutron"` in a real cloud of the test's own: Keystone 30, neutron-server
//! 29 (uWSGI, MariaDB) behind Keystone, vpnaas with `auth = "keystone"`, and haproxy
//! running `docs/deploy/haproxy-front.cfg` as the cloud's one `network` endpoint. VPN
//! services live on Neutron's routers (visibility decided by Neutron with the caller's
//! token, addresses from Neutron's gateway), the guarded requests through the front are
//! refused with Neutron's errors while a VPN service needs the object and passed on
//! otherwise, and a router deleted behind the front is noticed and shown.

mod common;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vpnaas_server::config::{NeutronSettings, Secret};
use vpnaas_server::{AuthMode, InventoryMode, Server, Settings};
use vpnaas_test_support::front::Front;
use vpnaas_test_support::keystone::Keystone;
use vpnaas_test_support::neutron::{Neutron, NeutronOptions};

/// The whole cloud; dropped in reverse order of start.
struct Cloud {
    front: Front,
    server: Server,
    neutron: Neutron,
    keystone: Keystone,
    _dir: tempfile::TempDir,
}

async fn cloud() -> Option<Cloud> {
    if vpnaas_test_support::skip_without_openstack() {
        return None;
    }
    let keystone = Keystone::start().await;
    let user = keystone.cloud_service_user().await;
    let neutron = Neutron::start(&NeutronOptions::keystone(&keystone)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ks = common::keystone_settings(&keystone);
    ks.username = user.name.clone();
    ks.password = Secret(user.password.clone());
    let settings = Settings {
        auth: AuthMode::Keystone,
        keystone: ks,
        inventory: InventoryMode::Neutron,
        neutron: NeutronSettings {
            url: neutron.url.clone(),
            poll_interval: 0.2,
            ..NeutronSettings::default()
        },
        ..common::settings(dir.path())
    };
    let server = Server::start(settings).await.expect("vpnaas starts");
    let front = Front::start(&server.url(), &neutron.url);
    keystone.register_endpoint("network", &front.url).await;
    Some(Cloud {
        front,
        server,
        neutron,
        keystone,
        _dir: dir,
    })
}

/// An answer: status and JSON body.
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    fn error_type(&self) -> &str {
        self.body["NeutronError"]["type"]
            .as_str()
            .unwrap_or_default()
    }
}

async fn call(base: &str, token: &str, method: Method, path: &str, body: Option<Value>) -> Answer {
    let mut request = reqwest::Client::new()
        .request(method.clone(), format!("{base}{path}"))
        .header("x-auth-token", token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    Answer { status, body }
}

async fn created(base: &str, token: &str, path: &str, resource: &str, attrs: Value) -> Value {
    let answer = call(
        base,
        token,
        Method::POST,
        path,
        Some(json!({ resource: attrs })),
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "POST {path}: {}",
        answer.body
    );
    answer.body[resource].clone()
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// A project's site: network, subnet and router in Neutron (created through the front),
/// and IKE and IPsec policies and a VPN service in vpnaas.
struct Site {
    router: String,
    subnet: String,
    gateway_ip: String,
    service: Value,
}

async fn site(cloud: &Cloud, token: &str, external: &str, cidr: &str) -> Site {
    let front = cloud.front.url.as_str();
    let gateway = json!({"network_id": external});
    let router = created(
        front,
        token,
        "/v2.0/routers",
        "router",
        json!({"name": "r", "external_gateway_info": gateway}),
    )
    .await;
    let network = created(
        front,
        token,
        "/v2.0/networks",
        "network",
        json!({"name": "n"}),
    )
    .await;
    let subnet = created(
        front,
        token,
        "/v2.0/subnets",
        "subnet",
        json!({"network_id": id(&network), "cidr": cidr, "ip_version": 4}),
    )
    .await;
    let path = format!("/v2.0/routers/{}/add_router_interface", id(&router));
    let added = call(
        front,
        token,
        Method::PUT,
        &path,
        Some(json!({"subnet_id": id(&subnet)})),
    )
    .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    let service = created(
        front,
        token,
        "/v2.0/vpn/vpnservices",
        "vpnservice",
        json!({"router_id": id(&router), "subnet_id": id(&subnet), "name": "vpn"}),
    )
    .await;
    let gateway_ip = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
        .as_str()
        .expect("Neutron gave the router a gateway address")
        .to_string();
    Site {
        router: id(&router),
        subnet: id(&subnet),
        gateway_ip,
        service,
    }
}

#[tokio::test]
async fn vpn_services_live_on_neutron_routers_behind_one_front() {
    let Some(cloud) = cloud().await else {
        return;
    };
    let [p1, p2] = &cloud.keystone.projects;
    let ks = &cloud.keystone;
    let t1 = ks
        .login(&p1.member.name, &p1.member.password, &p1.name)
        .await
        .expect("p1 member");
    let t2 = ks
        .login(&p2.member.name, &p2.member.password, &p2.name)
        .await
        .expect("p2 member");
    let external = cloud
        .neutron
        .external_network("public", "172.24.4.0/24")
        .await;
    let one = site(&cloud, &t1, &external.network, "10.1.0.0/24").await;

    // Addresses come from Neutron's gateway; the router is Neutron's.
    assert_eq!(
        one.service["external_v4_ip"],
        json!(one.gateway_ip),
        "{}",
        one.service
    );
    let front = cloud.front.url.as_str();
    let listed = call(front, &t1, Method::GET, "/v2.0/routers", None).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(
        listed.body["routers"][0]["id"],
        json!(one.router),
        "the front sends reads to Neutron"
    );
    let direct = call(&cloud.server.url(), &t1, Method::GET, "/v2.0/routers", None).await;
    assert_eq!(
        direct.status,
        StatusCode::NOT_FOUND,
        "vpnaas serves no inventory of its own"
    );

    // Neutron decides what p2 may use: p1's router does not exist for p2.
    let foreign = call(
        front,
        &t2,
        Method::POST,
        "/v2.0/vpn/vpnservices",
        Some(json!({"vpnservice": {"router_id": one.router}})),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{}", foreign.body);
    assert_eq!(foreign.error_type(), "RouterNotFound", "{}", foreign.body);

    // The guards, through the front, with Neutron's own errors; Neutron keeps the objects.
    let router_path = format!("/v2.0/routers/{}", one.router);
    let refused = call(front, &t1, Method::DELETE, &router_path, None).await;
    assert_eq!(
        (refused.status, refused.error_type()),
        (StatusCode::CONFLICT, "RouterInUse"),
        "{}",
        refused.body
    );
    let unplug = format!("{router_path}/remove_router_interface");
    let refused = call(
        front,
        &t1,
        Method::PUT,
        &unplug,
        Some(json!({"subnet_id": one.subnet})),
    )
    .await;
    assert_eq!(
        (refused.status, refused.error_type()),
        (StatusCode::CONFLICT, "SubnetInUseByVPNService"),
        "{}",
        refused.body
    );
    let subnet_path = format!("/v2.0/subnets/{}", one.subnet);
    let refused = call(front, &t1, Method::DELETE, &subnet_path, None).await;
    assert_eq!(
        (refused.status, refused.error_type()),
        (StatusCode::CONFLICT, "SubnetInUseByVPNService"),
        "{}",
        refused.body
    );
    let unset = Some(json!({"router": {"external_gateway_info": {}}}));
    let refused = call(front, &t1, Method::PUT, &router_path, unset).await;
    assert_eq!(
        (refused.status, refused.error_type()),
        (StatusCode::CONFLICT, "RouterInUse"),
        "{}",
        refused.body
    );
    let still = call(&cloud.neutron.url, &t1, Method::GET, &router_path, None).await;
    assert!(
        still.body["router"]["external_gateway_info"].is_object(),
        "{}",
        still.body
    );

    // What no VPN service needs is passed on to Neutron, as the caller.
    let renamed = call(
        front,
        &t1,
        Method::PUT,
        &router_path,
        Some(json!({"router": {"name": "renamed"}})),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["router"]["name"], "renamed");
    let spare = created(
        front,
        &t1,
        "/v2.0/routers",
        "router",
        json!({"name": "spare"}),
    )
    .await;
    let gone = call(
        front,
        &t1,
        Method::DELETE,
        &format!("/v2.0/routers/{}", id(&spare)),
        None,
    )
    .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT, "{}", gone.body);
    let foreign_delete = call(front, &t2, Method::DELETE, &router_path, None).await;
    assert_eq!(
        foreign_delete.status,
        StatusCode::NOT_FOUND,
        "another project learns nothing of the router, not even that a VPN uses it: {}",
        foreign_delete.body
    );

    // A connection on the service, then the router deleted behind the front.
    let connection = connection(front, &t1, &one).await;
    delete_behind_the_front(&cloud, &t1, &one).await;
    let service_path = format!("/v2.0/vpn/vpnservices/{}", id(&one.service));
    let service = wait_for(front, &t1, &service_path, "vpnservice", |s| {
        s["status_reason"] == "ROUTER_DELETED"
    })
    .await;
    assert_eq!(service["status"], "ERROR", "{service}");
    let conn_path = format!("/v2.0/vpn/ipsec-site-connections/{}", id(&connection));
    let conn = wait_for(front, &t1, &conn_path, "ipsec_site_connection", |c| {
        c["status_reason"] == "ROUTER_DELETED"
    })
    .await;
    assert_eq!(conn["status"], "DOWN", "{conn}");
    let events = call(
        front,
        &t1,
        Method::GET,
        &format!("{conn_path}/events"),
        None,
    )
    .await;
    assert!(
        events
            .body
            .to_string()
            .contains("Neutron no longer has router"),
        "{}",
        events.body
    );
    // What is left can be deleted.
    for path in [conn_path, service_path] {
        let deleted = call(front, &t1, Method::DELETE, &path, None).await;
        assert_eq!(
            deleted.status,
            StatusCode::NO_CONTENT,
            "DELETE {path}: {}",
            deleted.body
        );
    }
    drop(cloud);
}

async fn connection(front: &str, token: &str, site: &Site) -> Value {
    let ike = created(
        front,
        token,
        "/v2.0/vpn/ikepolicies",
        "ikepolicy",
        json!({"name": "ike"}),
    )
    .await;
    let ipsec = created(
        front,
        token,
        "/v2.0/vpn/ipsecpolicies",
        "ipsecpolicy",
        json!({"name": "ipsec"}),
    )
    .await;
    created(
        front,
        token,
        "/v2.0/vpn/ipsec-site-connections",
        "ipsec_site_connection",
        json!({"vpnservice_id": id(&site.service), "ikepolicy_id": id(&ike),
            "ipsecpolicy_id": id(&ipsec), "peer_address": "172.24.4.99",
            "peer_id": "172.24.4.99", "peer_cidrs": ["10.9.0.0/24"], "psk": "secret-key-1"}),
    )
    .await
}

/// Takes the router apart on Neutron's own endpoint, where no guard runs.
async fn delete_behind_the_front(cloud: &Cloud, token: &str, site: &Site) {
    let neutron = cloud.neutron.url.as_str();
    let router_path = format!("/v2.0/routers/{}", site.router);
    let unplug = format!("{router_path}/remove_router_interface");
    let removed = call(
        neutron,
        token,
        Method::PUT,
        &unplug,
        Some(json!({"subnet_id": site.subnet})),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    let deleted = call(neutron, token, Method::DELETE, &router_path, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
}

/// Polls `path` until `done` holds of its `resource` (at most 30 s).
async fn wait_for(
    front: &str,
    token: &str,
    path: &str,
    resource: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let answer = call(front, token, Method::GET, path, None).await;
        let item = &answer.body[resource];
        if done(item) {
            return item.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{path} never got there: {}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `openstack` CLI of `who` (project, user, password), logged in through Keystone:
/// it finds the front in the catalog. Returns (success, stdout, stderr).
async fn openstack(cloud: &Cloud, who: [&str; 3], args: &[&str]) -> (bool, String, String) {
    let [project, user, password] = who;
    let cli = vpnaas_test_support::workspace_root().join(".venv/bin/openstack");
    let output = tokio::process::Command::new(&cli)
        .args([
            "--os-auth-url",
            &cloud.keystone.url,
            "--os-identity-api-version",
            "3",
        ])
        .args(["--os-username", user, "--os-password", password])
        .args([
            "--os-project-name",
            project,
            "--os-user-domain-id",
            "default",
        ])
        .args(["--os-project-domain-id", "default"])
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{} ({e}): run scripts/setup.sh", cli.display()));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

#[tokio::test]
async fn the_openstack_cli_builds_routers_and_vpns_through_one_endpoint() {
    let Some(cloud) = cloud().await else {
        return;
    };
    let external = cloud
        .neutron
        .external_network("public", "172.24.8.0/24")
        .await;
    let p1 = &cloud.keystone.projects[0];
    let who = [
        p1.name.as_str(),
        p1.member.name.as_str(),
        p1.member.password.as_str(),
    ];
    let run = async |args: &[&str]| {
        let (ok, stdout, stderr) = openstack(&cloud, who, args).await;
        assert!(ok, "openstack {args:?}: {stderr}");
        stdout
    };
    // Neutron's part and vpnaas's part, through the same login and endpoint.
    run(&[
        "router",
        "create",
        "r1",
        "--external-gateway",
        &external.network,
    ])
    .await;
    run(&["network", "create", "lan"]).await;
    run(&[
        "subnet",
        "create",
        "lan-v4",
        "--network",
        "lan",
        "--subnet-range",
        "10.5.0.0/24",
    ])
    .await;
    run(&["router", "add", "subnet", "r1", "lan-v4"]).await;
    run(&["vpn", "ike", "policy", "create", "ike1"]).await;
    run(&["vpn", "ipsec", "policy", "create", "ipsec1"]).await;
    let shown = run(&[
        "vpn", "service", "create", "svc1", "--router", "r1", "--subnet", "lan-v4", "-f", "json",
    ])
    .await;
    let service: Value = serde_json::from_str(&shown).expect("service json");
    let router = run(&["router", "show", "r1", "-f", "json"]).await;
    let router: Value = serde_json::from_str(&router).expect("router json");
    let gateway = &router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"];
    assert_eq!(&service["Ext v4 IP"], gateway, "{service}");

    // The router cannot go while the VPN service is on it, as inside Neutron.
    let (ok, _, stderr) = openstack(&cloud, who, &["router", "delete", "r1"]).await;
    assert!(!ok, "the router was deleted under its VPN service");
    assert!(stderr.contains("currently used by VPN service"), "{stderr}");
    let (ok, _, stderr) =
        openstack(&cloud, who, &["router", "remove", "subnet", "r1", "lan-v4"]).await;
    assert!(!ok && stderr.contains("is used by VPNService"), "{stderr}");

    // Once the VPN service is gone, everything is Neutron's to do.
    run(&["vpn", "service", "delete", "svc1"]).await;
    run(&["router", "remove", "subnet", "r1", "lan-v4"]).await;
    run(&["router", "delete", "r1"]).await;
    let (ok, _, _) = openstack(&cloud, who, &["router", "show", "r1"]).await;
    assert!(!ok, "Neutron deleted the router");
}
