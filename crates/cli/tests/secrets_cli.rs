//! `vpnaas secrets rotate-key` as an operator runs it, next to a running server on the
//! same data directory: the key file ends with one new key, the database's PSKs are sealed
//! under it, the running server still serves and changes them, a restarted server reads
//! them, and a key file others may read is refused without touching anything.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use serde_json::{Value, json};
use vpnaas_client::Client;
use vpnaas_model::Kind;
use vpnaas_server::{Server, Settings};

fn rotate(data_dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vpnaas"))
        .args(["secrets", "rotate-key", "--data-dir"])
        .arg(data_dir)
        .env_remove("VPNAAS_CONFIG")
        .env_remove("VPNAAS_DATABASE_URL")
        .env_remove("VPNAAS_SECRET_KEY_FILE")
        .output()
        .expect("run vpnaas")
}

fn key_ids(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("key file")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(' ').next().expect("id").to_string())
        .collect()
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

async fn start(dir: &std::path::Path) -> Server {
    let settings = Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.into(),
        ..Settings::default()
    };
    Server::start(settings).await.expect("server")
}

/// A connection with `psk` on a new router; returns its id.
async fn connection(c: &Client, psk: &str) -> String {
    let create = |kind, attrs| async move { c.create(kind, attrs).await.expect("create") };
    let public = create(Kind::Network, json!({"router:external": true})).await;
    let cidr = json!({"network_id": id(&public), "cidr": "203.0.113.0/24", "ip_version": 4});
    create(Kind::Subnet, cidr).await;
    let lan = create(Kind::Network, json!({})).await;
    let cidr = json!({"network_id": id(&lan), "cidr": "10.1.0.0/24", "ip_version": 4});
    let subnet = create(Kind::Subnet, cidr).await;
    let gateway = json!({"external_gateway_info": {"network_id": id(&public)}});
    let router = create(Kind::Router, gateway).await;
    c.add_router_interface(&id(&router), &id(&subnet))
        .await
        .expect("interface");
    let service = json!({"router_id": id(&router), "subnet_id": id(&subnet)});
    let service = create(Kind::VpnService, service).await;
    let ike = create(Kind::IkePolicy, json!({"name": "ike"})).await;
    let ipsec = create(Kind::IpsecPolicy, json!({"name": "ipsec"})).await;
    let conn = json!({
        "vpnservice_id": id(&service), "ikepolicy_id": id(&ike), "ipsecpolicy_id": id(&ipsec),
        "peer_address": "203.0.113.200", "peer_id": "203.0.113.200", "psk": psk,
        "peer_cidrs": ["10.2.0.0/24"],
    });
    id(&create(Kind::SiteConnection, conn).await)
}

async fn psk(c: &Client, conn: &str) -> Value {
    c.show(Kind::SiteConnection, conn).await.expect("show")["psk"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_key_beside_a_running_server_keeps_every_psk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path()).await;
    let client = Client::new(&server.url());
    let conn = connection(&client, "before-rotation").await;
    let key_file = dir.path().join("secret.key");
    let old = key_ids(&key_file);

    let out = rotate(dir.path());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = key_ids(&key_file);
    assert_eq!(new.len(), 1, "only the new key is left");
    assert_ne!(new, old);
    assert!(
        said.contains(&new[0]) && said.contains("1 records"),
        "{said}"
    );
    assert_eq!(
        std::fs::metadata(&key_file)
            .expect("key file")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    assert_eq!(psk(&client, &conn).await, "before-rotation");
    client
        .update(
            Kind::SiteConnection,
            &conn,
            json!({"psk": "after-rotation"}),
        )
        .await
        .expect("change the PSK after the rotation");
    server.stop().await;
    let restarted = start(dir.path()).await;
    let client = Client::new(&restarted.url());
    assert_eq!(psk(&client, &conn).await, "after-rotation");
    restarted.stop().await;

    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = rotate(dir.path());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("chmod 600"), "{said}");
    assert_eq!(
        key_ids(&key_file),
        new,
        "a refused rotation changes nothing"
    );
}
