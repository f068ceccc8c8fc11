//! Test harness: a real vpnaas server on 127.0.0.1:0 with a SQLite file in a temporary
//! directory, driven through the project's own client.

#![allow(dead_code)]

use serde_json::{Value, json};
use vpnaas_client::Client;
use vpnaas_model::Kind;
use vpnaas_server::{Server, Settings};

/// A running server, its client (admin via noauth) and its data directory.
pub struct Harness {
    pub server: Server,
    pub client: Client,
    pub dir: tempfile::TempDir,
}

/// Settings of a test server on `dir`: SQLite in it, or with `VPNAAS_TEST_BACKEND=postgres`
/// a scratch PostgreSQL database of its own (the same one again for the same `dir`, so a
/// restart finds its data).
pub fn settings(dir: &std::path::Path) -> Settings {
    let remembered = dir.join("database-url");
    let database_url = std::fs::read_to_string(&remembered).ok().or_else(|| {
        let url = vpnaas_test_support::scratch::database_url()?;
        std::fs::write(&remembered, &url).expect("remember the database");
        Some(url)
    });
    Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.to_path_buf(),
        database_url,
        ..Settings::default()
    }
}

pub async fn start() -> Harness {
    start_with(|_| {}).await
}

pub async fn start_with(adjust: impl FnOnce(&mut Settings)) -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(dir.path());
    adjust(&mut settings);
    let server = Server::start(settings).await.expect("server starts");
    let client = Client::new(&server.url());
    Harness {
        server,
        client,
        dir,
    }
}

/// The `NeutronError.type` of a failed call (panics when the call succeeded).
pub fn fault<T: std::fmt::Debug>(result: Result<T, vpnaas_client::Error>) -> (u16, String) {
    match result {
        Err(vpnaas_client::Error::Api { status, kind, .. }) => (status, kind),
        other => panic!("expected an API refusal, got {other:?}"),
    }
}

pub fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

/// A site: external network and subnet (shared by sites), internal network, subnet,
/// router with a gateway and an interface on the subnet.
pub struct Site {
    pub external_net: String,
    pub external_subnet: String,
    pub network: String,
    pub subnet: String,
    pub router: String,
    pub gateway_ip: String,
}

pub async fn external_network(c: &Client) -> (String, String) {
    let net = c
        .create(
            Kind::Network,
            json!({"name": "public", "router:external": true}),
        )
        .await
        .expect("external net");
    let subnet = c
        .create(
            Kind::Subnet,
            json!({"network_id": id(&net), "cidr": "203.0.113.0/24", "ip_version": 4}),
        )
        .await
        .expect("external subnet");
    (id(&net), id(&subnet))
}

pub async fn site(c: &Client, external: &(String, String), n: u8) -> Site {
    let net = c
        .create(Kind::Network, json!({"name": format!("net{n}")}))
        .await
        .expect("net");
    let subnet = c
        .create(
            Kind::Subnet,
            json!({"network_id": id(&net), "cidr": format!("10.{n}.0.0/24"), "ip_version": 4}),
        )
        .await
        .expect("subnet");
    let router = c
        .create(
            Kind::Router,
            json!({"name": format!("r{n}"), "external_gateway_info": {"network_id": external.0}}),
        )
        .await
        .expect("router");
    c.add_router_interface(&id(&router), &id(&subnet))
        .await
        .expect("interface");
    let gateway_ip = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
        .as_str()
        .expect("gateway ip")
        .to_string();
    Site {
        external_net: external.0.clone(),
        external_subnet: external.1.clone(),
        network: id(&net),
        subnet: id(&subnet),
        router: id(&router),
        gateway_ip,
    }
}

pub async fn policies(c: &Client) -> (String, String) {
    let ike = c
        .create(Kind::IkePolicy, json!({"name": "ike"}))
        .await
        .expect("ike policy");
    let ipsec = c
        .create(Kind::IpsecPolicy, json!({"name": "ipsec"}))
        .await
        .expect("ipsec policy");
    (id(&ike), id(&ipsec))
}

/// A VPN service in legacy mode (bound to the site's subnet); returns it.
pub async fn legacy_service(c: &Client, site: &Site) -> Value {
    c.create(
        Kind::VpnService,
        json!({"router_id": site.router, "subnet_id": site.subnet}),
    )
    .await
    .expect("legacy service")
}

/// Legacy-mode connection attributes from a service to a peer.
pub fn legacy_connection(service: &str, policies: &(String, String), peer_cidr: &str) -> Value {
    json!({
        "name": "conn", "vpnservice_id": service, "ikepolicy_id": policies.0, "ipsecpolicy_id": policies.1,
        "peer_address": "203.0.113.200", "peer_id": "203.0.113.200", "psk": "secret-psk", "peer_cidrs": [peer_cidr],
    })
}

/// A site with policies, a legacy-mode service and one connection to 10.2.0.0/24.
pub struct Connected {
    pub site: Site,
    pub pols: (String, String),
    pub service: Value,
    pub conn: Value,
}

pub async fn connected_site(c: &Client) -> Connected {
    let external = external_network(c).await;
    let site = site(c, &external, 1).await;
    let pols = policies(c).await;
    let service = legacy_service(c, &site).await;
    let conn = c
        .create(
            Kind::SiteConnection,
            legacy_connection(&id(&service), &pols, "10.2.0.0/24"),
        )
        .await
        .expect("connection");
    Connected {
        site,
        pols,
        service,
        conn,
    }
}

/// An agent's report, under lease `epoch`, that the connection is up.
pub fn up_report(
    host: &str,
    router: &str,
    epoch: u64,
    conn: &str,
) -> vpnaas_model::agent::StatusReport {
    use vpnaas_model::agent::{ConnectionStatus, StatusReport};
    use vpnaas_model::enums::{Status, StatusReason};
    StatusReport {
        host: host.into(),
        router_id: router.into(),
        applied_revision: 0,
        lease_epoch: epoch,
        daemon_running: true,
        primary: false,
        connections: vec![ConnectionStatus {
            id: conn.into(),
            status: Status::Active,
            reason: StatusReason::Established,
            detail: String::new(),
            traffic: None,
            applied: Default::default(),
        }],
    }
}

/// A server whose agents live and die by a manual clock (see [`ManualClock`]): on a busy
/// machine, real seconds between two heartbeats of a test would kill agents it means alive.
pub struct Clocked {
    pub server: Server,
    pub app: vpnaas_server::App,
    pub client: Client,
    pub clock: std::sync::Arc<vpnaas_server::clock::ManualClock>,
    pub dir: tempfile::TempDir,
}

pub async fn start_on_manual_clock(agent_down_time: u64) -> Clocked {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(dir.path());
    settings.agent_down_time = agent_down_time;
    let clock = std::sync::Arc::new(vpnaas_server::clock::ManualClock::starting_now());
    let app = vpnaas_server::build_app(settings)
        .await
        .expect("app")
        .with_clock(clock.clone());
    let server = Server::start_app(app.clone()).await.expect("server");
    let client = Client::new(&server.url());
    Clocked {
        server,
        app,
        client,
        clock,
        dir,
    }
}

/// vpnaas's `[keystone]` settings for a lab Keystone: its URL and vpnaas's service user.
pub fn keystone_settings(
    keystone: &vpnaas_test_support::keystone::Keystone,
) -> vpnaas_server::config::KeystoneSettings {
    use vpnaas_test_support::keystone::{SERVICE_PASSWORD, SERVICE_PROJECT, SERVICE_USER};
    vpnaas_server::config::KeystoneSettings {
        auth_url: keystone.url.clone(),
        username: SERVICE_USER.into(),
        password: vpnaas_server::config::Secret(SERVICE_PASSWORD.into()),
        project_name: SERVICE_PROJECT.into(),
        ..Default::default()
    }
}
