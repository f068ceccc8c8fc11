//! The store is a real SQLite file: a server restarted on the same data directory serves
//! every object it had, and keeps enforcing the guards over them.

mod common;

use common::*;
use serde_json::json;
use vpnaas_client::Client;
use vpnaas_model::Kind;
use vpnaas_server::Server;

#[tokio::test]
async fn restart_on_the_same_data_dir_keeps_every_object() {
    let h = start().await;
    let c = &h.client;
    let external = external_network(c).await;
    let s = site(c, &external, 1).await;
    let pols = policies(c).await;
    let svc = legacy_service(c, &s).await;
    let local = c
        .create(
            Kind::EndpointGroup,
            json!({"type": "subnet", "endpoints": [s.subnet]}),
        )
        .await
        .expect("group");
    let conn = c
        .create(
            Kind::SiteConnection,
            legacy_connection(&id(&svc), &pols, "10.2.0.0/24"),
        )
        .await
        .expect("conn");
    let mut before = Vec::new();
    for kind in Kind::ALL {
        before.push(c.list(kind, &[]).await.expect("list"));
    }
    let Harness { server, dir, .. } = h;
    server.stop().await;

    let server = Server::start(settings(dir.path())).await.expect("restart");
    let c = Client::new(&server.url());
    for (kind, items) in Kind::ALL.iter().zip(before) {
        assert_eq!(
            c.list(*kind, &[]).await.expect("list after restart"),
            items,
            "{kind} changed across restart"
        );
    }
    assert_eq!(
        c.show(Kind::SiteConnection, &id(&conn))
            .await
            .expect("conn")["psk"],
        "secret-psk"
    );
    assert_eq!(
        fault(c.delete(Kind::IkePolicy, &pols.0).await).1,
        "IKEPolicyInUse"
    );
    assert_eq!(
        fault(c.delete(Kind::Subnet, &s.subnet).await).1,
        "SubnetInUseByEndpointGroup"
    );
    c.delete(Kind::EndpointGroup, &id(&local))
        .await
        .expect("delete after restart");
    server.stop().await;
}
