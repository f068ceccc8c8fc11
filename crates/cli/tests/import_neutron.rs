//! `vpnaas import neutron` against the real thing: neutron-server 29 with neutron-vpnaas
//! 29 behind a real Keystone, populated by two projects' members with objects that set
//! every attribute, imported by the built `vpnaas` binary into a vpnaas under
//! `auth = "keystone"` on the same Keystone (the importer's one login serves both).
//! Checked: each object in vpnaas with Neutron's id, project and attributes; what vpnaas
//! refuses reported with its reason and the object, the import going on; a second run
//! changing nothing; a third run putting back what someone changed in vpnaas.
//!
//! vpnaas runs with `inventory = "neutron"` on the same Neutron, so the VPN service, the
//! connection on it and the `subnet` endpoint group are taken with Neutron's routers and
//! subnets; an IKE policy whose name vpnaas's grammar refuses is reported and left.

use std::process::{Command, Output};

use reqwest::Method;
use serde_json::{Value, json};
use vpnaas_client::{Client, Identity as ApiIdentity};
use vpnaas_model::Kind;
use vpnaas_server::config::{AuthMode, InventoryMode, KeystoneSettings, NeutronSettings, Secret};
use vpnaas_server::{Server, Settings};
use vpnaas_test_support::keystone::{Keystone, Project, SERVICE_PROJECT};
use vpnaas_test_support::neutron::{Identity, Neutron, NeutronOptions};
use vpnaas_test_support::skip_without_openstack;

/// A vpnaas taking tokens of `keystone`, its VPN services on `neutron`'s routers.
async fn vpnaas(keystone: &Keystone, neutron: &Neutron, dir: &std::path::Path) -> Server {
    let user = keystone.cloud_service_user().await;
    let settings = Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.to_path_buf(),
        auth: AuthMode::Keystone,
        keystone: KeystoneSettings {
            auth_url: keystone.url.clone(),
            username: user.name,
            password: Secret(user.password),
            project_name: SERVICE_PROJECT.into(),
            ..KeystoneSettings::default()
        },
        inventory: InventoryMode::Neutron,
        neutron: NeutronSettings {
            url: neutron.url.clone(),
            ..NeutronSettings::default()
        },
        ..Settings::default()
    };
    Server::start(settings).await.expect("vpnaas starts")
}

/// The objects Neutron holds, by kind, as its admin sees them.
struct Populated {
    /// What vpnaas takes.
    taken: Vec<(Kind, Value)>,
    /// What vpnaas refuses, with a piece of the reason it gives.
    refused: Vec<(Kind, Value, String)>,
}

/// Fills Neutron: p1's and p2's members create policies, groups, a service and a
/// connection whose attributes are all other than their defaults.
async fn populate(neutron: &Neutron, keystone: &Keystone) -> Populated {
    let [p1, p2] = &keystone.projects;
    let member = async |project: &Project| {
        let token = keystone
            .login(
                &project.member.name,
                &project.member.password,
                &project.name,
            )
            .await
            .expect("member login");
        Identity::Token(token)
    };
    let (m1, m2) = (member(p1).await, member(p2).await);
    let create = async |who: &Identity, kind: Kind, attributes: Value| {
        let path = format!("/v2.0/{}", kind.path());
        neutron
            .create(who, &path, kind.singular(), attributes)
            .await
    };
    // neutron-vpnaas's sha1 default fails in its own database: every policy names one.
    let ike = create(
        &m1,
        Kind::IkePolicy,
        json!({
            "name": "ike-p1", "description": "two\nlines", "auth_algorithm": "sha384",
            "encryption_algorithm": "aes-256-gcm-16", "phase1_negotiation_mode": "aggressive",
            "ike_version": "v2", "pfs": "group31", "lifetime": {"units": "seconds", "value": 7200},
        }),
    )
    .await;
    let quoted = create(
        &m1,
        Kind::IkePolicy,
        json!({
            "name": "quote\"d #1", "auth_algorithm": "sha256",
        }),
    )
    .await;
    let ipsec = create(
        &m2,
        Kind::IpsecPolicy,
        json!({
            "name": "ipsec-p2", "description": "p2's", "transform_protocol": "ah",
            "encapsulation_mode": "transport", "auth_algorithm": "sha512",
            "encryption_algorithm": "aes-192-ctr", "pfs": "group14",
            "lifetime": {"units": "seconds", "value": 1800},
        }),
    )
    .await;
    let ipsec_p1 = create(
        &m1,
        Kind::IpsecPolicy,
        json!({
            "name": "ipsec-p1", "auth_algorithm": "sha256",
        }),
    )
    .await;
    let peers = create(
        &m2,
        Kind::EndpointGroup,
        json!({
            "name": "peers-p2", "description": "far side", "type": "cidr",
            "endpoints": ["10.20.0.0/24", "10.21.0.0/16"],
        }),
    )
    .await;
    let peers_p1 = create(
        &m1,
        Kind::EndpointGroup,
        json!({
            "name": "peers-p1", "type": "cidr", "endpoints": ["10.30.0.0/24"],
        }),
    )
    .await;

    let public = neutron.external_network("public", "198.51.100.0/24").await;
    let router = neutron.router(&m1, "r1", &public.network).await;
    let router_id = router["id"].as_str().expect("router id");
    let lan = neutron
        .tenant_network(&m1, "lan1", "10.1.0.0/24", Some(router_id))
        .await;
    let locals = create(
        &m1,
        Kind::EndpointGroup,
        json!({
            "name": "locals-p1", "type": "subnet", "endpoints": [lan.subnet],
        }),
    )
    .await;
    let service = create(
        &m1,
        Kind::VpnService,
        json!({
            "name": "svc-p1", "description": "on r1", "router_id": router_id,
            "admin_state_up": false,
        }),
    )
    .await;
    let connection = create(
        &m1,
        Kind::SiteConnection,
        json!({
            "name": "conn-p1", "description": "to the far side",
            "vpnservice_id": service["id"], "ikepolicy_id": ike["id"],
            "ipsecpolicy_id": ipsec_p1["id"], "local_ep_group_id": locals["id"],
            "peer_ep_group_id": peers_p1["id"], "peer_address": "203.0.113.9",
            "peer_id": "peer@example.org", "local_id": "me@example.org",
            "psk": "imported-psk-1", "mtu": 1400, "initiator": "response-only",
            "dpd": {"action": "restart", "interval": 15, "timeout": 60},
            "admin_state_up": false,
        }),
    )
    .await;
    Populated {
        taken: vec![
            (Kind::IkePolicy, ike),
            (Kind::IpsecPolicy, ipsec),
            (Kind::IpsecPolicy, ipsec_p1),
            (Kind::EndpointGroup, peers),
            (Kind::EndpointGroup, peers_p1),
            (Kind::EndpointGroup, locals),
            (Kind::VpnService, service),
            (Kind::SiteConnection, connection),
        ],
        refused: vec![(Kind::IkePolicy, quoted, "Invalid input for name".into())],
    }
}

/// Runs `vpnaas import neutron` for `admin` of project `project`, credentials in the
/// OS_* environment variables when `by_env`, else in flags.
fn import(
    vpnaas_url: &str,
    neutron: &Neutron,
    keystone: &Keystone,
    by_env: bool,
) -> (Output, Value) {
    let admin = &keystone.projects[0].admin;
    let project = &keystone.projects[0].name;
    let mut command = Command::new(env!("CARGO_BIN_EXE_vpnaas"));
    command
        .args([
            "import",
            "neutron",
            "--format",
            "json",
            "--neutron-url",
            &neutron.url,
        ])
        .env("VPNAAS_URL", vpnaas_url);
    for name in [
        "VPNAAS_PROJECT",
        "VPNAAS_ROLES",
        "VPNAAS_TOKEN",
        "OS_AUTH_URL",
        "OS_USERNAME",
        "OS_PASSWORD",
        "OS_PROJECT_NAME",
        "OS_USER_DOMAIN_NAME",
        "OS_PROJECT_DOMAIN_NAME",
    ] {
        command.env_remove(name);
    }
    if by_env {
        command
            .env("OS_AUTH_URL", &keystone.url)
            .env("OS_USERNAME", &admin.name)
            .env("OS_PASSWORD", &admin.password)
            .env("OS_PROJECT_NAME", project);
    } else {
        command.args([
            "--os-auth-url",
            &keystone.url,
            "--os-username",
            &admin.name,
            "--os-password",
            &admin.password,
            "--os-project-name",
            project,
            "--os-user-domain-name",
            "Default",
            "--os-project-domain-name",
            "Default",
        ]);
    }
    let output = command.output().expect("run vpnaas");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "the report is not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, report)
}

/// The report's entry of an object.
fn entry<'a>(report: &'a Value, kind: Kind, object: &Value) -> &'a Value {
    report["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .find(|e| e["kind"] == kind.singular() && e["id"] == object["id"])
        .unwrap_or_else(|| {
            panic!(
                "no entry for {} {} in {report:#}",
                kind.singular(),
                object["id"]
            )
        })
}

/// vpnaas holds `neutron`'s object with its id, project and every attribute Neutron shows
/// that vpnaas has too (status and the like are each system's own).
fn assert_same(kind: Kind, neutron: &Value, held: &Value) {
    let own = [
        "status",
        "status_reason",
        "route_mode",
        "auth_mode",
        "external_v4_ip",
        "external_v6_ip",
        "flavor_id",
    ];
    for (name, value) in neutron.as_object().expect("object") {
        if own.contains(&name.as_str()) {
            continue;
        }
        assert_eq!(
            &held[name],
            value,
            "{} {}: {name}",
            kind.singular(),
            neutron["id"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_neutron_vpnaas_is_imported_with_its_ids_and_again_changes_nothing() {
    if skip_without_openstack() {
        return;
    }
    let keystone = Keystone::start().await;
    let neutron = Neutron::start(&NeutronOptions::keystone(&keystone)).await;
    let populated = populate(&neutron, &keystone).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = vpnaas(&keystone, &neutron, dir.path()).await;
    let url = server.url();
    let admin = &keystone.projects[0].admin;
    let token = keystone
        .login(&admin.name, &admin.password, &keystone.projects[0].name)
        .await
        .expect("admin login");
    let api = Client::new(&url).with_identity(ApiIdentity {
        token: Some(token),
        ..ApiIdentity::default()
    });

    let (first, report) = import(&url, &neutron, &keystone, false);
    assert!(
        !first.status.success(),
        "refusals make the exit status non-zero: {report:#}"
    );
    let total = populated.taken.len() + populated.refused.len();
    assert_eq!(
        report["objects"].as_array().map(Vec::len),
        Some(total),
        "{report:#}"
    );
    assert_eq!(
        report["summary"]["created"],
        populated.taken.len(),
        "{report:#}"
    );
    assert_eq!(
        report["summary"]["refused"],
        populated.refused.len(),
        "{report:#}"
    );
    for (kind, object) in &populated.taken {
        assert_eq!(entry(&report, *kind, object)["outcome"], "created");
        let held = api
            .show(*kind, object["id"].as_str().expect("id"))
            .await
            .expect("in vpnaas");
        assert_same(*kind, object, &held);
    }
    let projects: Vec<&Value> = populated
        .taken
        .iter()
        .map(|(_, o)| &o["project_id"])
        .collect();
    assert!(
        projects.contains(&&json!(keystone.projects[1].id)),
        "both projects' objects"
    );
    for (kind, object, reason) in &populated.refused {
        let refused = entry(&report, *kind, object);
        assert_eq!(refused["outcome"], "refused");
        assert_eq!(refused["name"], object["name"]);
        assert_eq!(refused["project_id"], object["project_id"]);
        let why = refused["reason"].as_str().unwrap_or_default();
        assert!(
            why.contains(reason.as_str()),
            "{} refused for {why:?}",
            kind.singular()
        );
        let absent = api.show(*kind, object["id"].as_str().expect("id")).await;
        assert_eq!(absent.err().and_then(|e| e.status()), Some(404));
    }
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(!text.contains("imported-psk-1"), "no PSK in the report");

    let before = snapshot(&api, &populated).await;
    let (second, report) = import(&url, &neutron, &keystone, true);
    assert!(!second.status.success());
    assert_eq!(
        report["summary"]["unchanged"],
        populated.taken.len(),
        "{report:#}"
    );
    assert_eq!(report["summary"]["created"], 0);
    assert_eq!(report["summary"]["updated"], 0);
    assert_eq!(report["summary"]["refused"], populated.refused.len());
    assert_eq!(
        snapshot(&api, &populated).await,
        before,
        "the second run changed nothing"
    );

    // Someone renamed a policy no connection uses (a policy in use cannot change) and
    // changed its PFS in vpnaas: the next run puts Neutron's back.
    let (kind, policy) = &populated.taken[1];
    let id = policy["id"].as_str().expect("id");
    api.update(*kind, id, json!({"name": "renamed", "pfs": "group15"}))
        .await
        .expect("update");
    let (_, report) = import(&url, &neutron, &keystone, true);
    let updated = entry(&report, *kind, policy);
    assert_eq!(updated["outcome"], "updated");
    assert_eq!(updated["attributes"], json!(["name", "pfs"]));
    assert_same(*kind, policy, &api.show(*kind, id).await.expect("show"));
    let listed = neutron
        .call(&neutron.admin, Method::GET, "/v2.0/vpn/ipsecpolicies", None)
        .await;
    assert_eq!(
        listed.body["ipsecpolicies"].as_array().map(Vec::len),
        Some(2),
        "Neutron untouched"
    );
}

/// Every imported object as vpnaas shows it.
async fn snapshot(api: &Client, populated: &Populated) -> Vec<Value> {
    let mut all = Vec::new();
    for (kind, object) in &populated.taken {
        all.push(
            api.show(*kind, object["id"].as_str().expect("id"))
                .await
                .expect("show"),
        );
    }
    all
}
