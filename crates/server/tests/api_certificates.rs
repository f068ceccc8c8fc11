//! Certificate authentication on the server's side, through real HTTP and a real store: a
//! `cert` connection needs no key and gets its service a gateway certificate from the
//! project's CA (shown on the service, handed to the agent with its key, renewed on the
//! same key); bad input is a 400 naming the field that changes nothing; credentials for a
//! peer are issued once to who may change the connection; no private key is ever stored
//! in clear; deleting the service forgets its key.

mod common;

use common::*;
use serde_json::{Value, json};
use vpnaas_bus::ControlPlane;
use vpnaas_model::Kind;
use vpnaas_server::service::agents::LocalControlPlane;
use vpnaas_server::{App, Server, build_app};

const HOST: &str = "host-a";

struct World {
    app: App,
    _server: Server,
    dir: tempfile::TempDir,
    control: LocalControlPlane,
    client: vpnaas_client::Client,
    connected: Connected,
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let app: App = build_app(settings(dir.path())).await.expect("app");
    let server = Server::start_app(app.clone()).await.expect("server");
    let client = vpnaas_client::Client::new(&server.url());
    let control = LocalControlPlane::new(app.clone());
    control.heartbeat(HOST).await.expect("register");
    let connected = connected_site(&client).await;
    World {
        app,
        _server: server,
        dir,
        control,
        client,
        connected,
    }
}

impl World {
    fn service(&self) -> String {
        id(&self.connected.service)
    }

    /// A `cert` connection on the site's service; `extra` overrides attributes.
    async fn cert_connection(&self, extra: Value) -> Result<Value, vpnaas_client::Error> {
        let mut attrs = legacy_connection(&self.service(), &self.connected.pols, "10.3.0.0/24");
        let object = attrs.as_object_mut().expect("object");
        object.remove("psk");
        object.insert("auth_mode".into(), json!("cert"));
        object.insert("peer_id".into(), json!("@far.example"));
        for (key, value) in extra.as_object().expect("object") {
            object.insert(key.clone(), value.clone());
        }
        self.client.create(Kind::SiteConnection, attrs).await
    }

    async fn show_service(&self) -> Value {
        self.client
            .show(Kind::VpnService, &self.service())
            .await
            .expect("service")
    }
}

#[tokio::test]
async fn a_cert_connection_gets_its_service_a_certificate_the_agent_receives() {
    let w = world().await;
    let before = w.show_service().await;
    assert_eq!(
        before["local_certificate"],
        Value::Null,
        "no certificate before cert"
    );
    let conn = w.cert_connection(json!({})).await.expect("cert connection");
    assert_eq!(conn["auth_mode"], "cert");
    assert_eq!(conn["psk"], "");
    let service = w.show_service().await;
    let pem = service["local_certificate"].as_str().expect("certificate");
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{service}");
    assert!(service["ca_certificate"].as_str().is_some(), "{service}");
    assert_eq!(
        service["local_certificate_fingerprint"]
            .as_str()
            .map(str::len),
        Some(95)
    );

    // The agent gets the certificate, its key and the CA to trust for the peer.
    let router = &w.connected.site.router;
    let state = w
        .control
        .router_state(HOST, router)
        .await
        .expect("state")
        .expect("hosted");
    let spec = state
        .connections
        .iter()
        .find(|c| c.id == id(&conn))
        .expect("the cert connection");
    let auth = spec.certificate.as_ref().expect("certificate auth");
    assert_eq!(auth.local_certificate, pem);
    assert!(auth.local_key.expose().contains("PRIVATE KEY"));
    assert_eq!(
        Some(auth.peer_ca.as_str()),
        service["ca_certificate"].as_str()
    );
    let psk_spec = state
        .connections
        .iter()
        .find(|c| c.id == id(&w.connected.conn))
        .expect("the psk connection");
    assert!(psk_spec.certificate.is_none());

    // A second identity on the service renews its certificate on the same key.
    w.cert_connection(json!({"local_id": "@gw.example", "peer_cidrs": ["10.4.0.0/24"]}))
        .await
        .expect("second identity");
    let renewed = w.show_service().await;
    assert_ne!(renewed["local_certificate"], service["local_certificate"]);
    let again = w
        .control
        .router_state(HOST, router)
        .await
        .expect("state")
        .expect("hosted");
    let first = again
        .connections
        .iter()
        .find(|c| c.id == id(&conn))
        .expect("first");
    let renewed_auth = first.certificate.as_ref().expect("auth");
    assert_eq!(renewed_auth.local_key, auth.local_key, "same key");
    assert_eq!(
        first.generations.credentials, 1,
        "the agent is told to load it"
    );

    // Asked renewal: a new certificate again, the same key.
    let asked = w
        .client
        .renew_certificate(&w.service())
        .await
        .expect("renew");
    assert_ne!(asked["local_certificate"], renewed["local_certificate"]);

    // No private key is stored in clear (the same sealing as every secret: api_secrets
    // checks a PostgreSQL dump).
    if w.app.settings.database_url.is_none() {
        let mut database = std::fs::read(w.dir.path().join("vpnaas.db")).expect("the SQLite file");
        database.extend(std::fs::read(w.dir.path().join("vpnaas.db-wal")).unwrap_or_default());
        let text = String::from_utf8_lossy(&database);
        assert!(
            text.contains("BEGIN CERTIFICATE"),
            "certificates are stored"
        );
        assert!(
            !text.contains("PRIVATE KEY"),
            "a key in clear in the database"
        );
    }
}

#[tokio::test]
async fn bad_certificate_input_is_a_400_naming_the_field_and_changes_nothing() {
    let w = world().await;
    let count = || async {
        w.client
            .list(Kind::SiteConnection, &[])
            .await
            .expect("list")
            .len()
    };
    let before = count().await;
    let missing_psk = w
        .client
        .create(Kind::SiteConnection, {
            let mut a = legacy_connection(&w.service(), &w.connected.pols, "10.3.0.0/24");
            a.as_object_mut().expect("object").remove("psk");
            a
        })
        .await;
    let refused = format!("{missing_psk:?}");
    assert_eq!(fault(missing_psk).0, 400);
    assert!(refused.contains("Required attribute 'psk'"), "{refused}");
    for (pem, why) in [
        ("not a certificate", "PEM certificate"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "not an X.509 certificate",
        ),
    ] {
        let answer = w.cert_connection(json!({"peer_ca_certificate": pem})).await;
        let text = format!("{answer:?}");
        assert_eq!(fault(answer).0, 400, "{pem}");
        assert!(
            text.contains("peer_ca_certificate") && text.contains(why),
            "{text}"
        );
    }
    let psk_with_ca = w
        .client
        .update(
            Kind::SiteConnection,
            &id(&w.connected.conn),
            json!({"peer_ca_certificate": vpnaas_server::pki::new_authority("p").expect("CA").certificate}),
        )
        .await;
    assert_eq!(fault(psk_with_ca).0, 400);
    assert_eq!(count().await, before, "nothing stored");
    assert_eq!(
        w.show_service().await["local_certificate"],
        Value::Null,
        "no certificate issued for refused input"
    );
    let renew = w.client.renew_certificate(&w.service()).await;
    assert_eq!(fault(renew), (409, "CertificateUnavailable".into()));
}

#[tokio::test]
async fn peer_credentials_are_issued_once_to_who_may_change_the_connection() {
    let w = world().await;
    let conn = id(&w.cert_connection(json!({})).await.expect("cert connection"));
    let project = w.connected.conn["project_id"].as_str().expect("project");
    let reader = w
        .client
        .as_project(project, "reader")
        .peer_credentials(&conn)
        .await;
    assert_eq!(fault(reader).0, 403);
    let stranger = w
        .client
        .as_project("another-project", "member")
        .peer_credentials(&conn)
        .await;
    assert_eq!(fault(stranger).0, 404);
    let psk = w.client.peer_credentials(&id(&w.connected.conn)).await;
    assert_eq!(fault(psk), (409, "CertificateUnavailable".into()));

    let issued = w.client.peer_credentials(&conn).await.expect("issued");
    assert_eq!(issued["identity"], "@far.example");
    for field in ["certificate", "private_key", "ca_certificate", "pkcs12"] {
        assert!(
            issued[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field}"
        );
    }
    let again = w.client.peer_credentials(&conn).await.expect("issued");
    assert_ne!(
        again["private_key"], issued["private_key"],
        "a new key each time"
    );
    assert_eq!(
        issued["ca_certificate"],
        w.show_service().await["ca_certificate"]
    );

    // Deleting the connection and the service forgets the gateway's key.
    w.client
        .delete(Kind::SiteConnection, &conn)
        .await
        .expect("delete conn");
    w.client
        .delete(Kind::SiteConnection, &id(&w.connected.conn))
        .await
        .expect("delete conn");
    w.client
        .delete(Kind::VpnService, &w.service())
        .await
        .expect("delete service");
    let kept = w
        .app
        .store
        .get(Kind::GatewayCredential, &w.service())
        .await
        .expect("store");
    assert!(kept.is_none(), "the deleted service's key is gone");
}

#[tokio::test]
async fn certificates_near_expiry_are_renewed_on_their_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = settings(dir.path());
    // Every certificate is within its renewal window as soon as it is issued.
    settings.certificate_days = 1;
    settings.certificate_renew_days = 2;
    let app: App = build_app(settings).await.expect("app");
    let server = Server::start_app(app.clone()).await.expect("server");
    let client = vpnaas_client::Client::new(&server.url());
    let connected = connected_site(&client).await;
    let service = id(&connected.service);
    let mut attrs = legacy_connection(&service, &connected.pols, "10.3.0.0/24");
    attrs["auth_mode"] = json!("cert");
    let conn = client
        .create(Kind::SiteConnection, attrs)
        .await
        .expect("cert connection");
    let before = client.show(Kind::VpnService, &service).await.expect("show");
    let renewed = vpnaas_server::service::certificates::renew_due(&app)
        .await
        .expect("renewal");
    assert_eq!(renewed, 1, "one service's certificate was due");
    let after = client.show(Kind::VpnService, &service).await.expect("show");
    assert_ne!(
        after["local_certificate_fingerprint"],
        before["local_certificate_fingerprint"]
    );
    let conn = client
        .show(Kind::SiteConnection, &id(&conn))
        .await
        .expect("show");
    assert_eq!(
        conn["key_rotation"]["credentials"], 1,
        "its connection's agent is told to load it"
    );
}
