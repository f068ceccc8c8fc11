//! Identity and policy: project isolation (another project's object is a 404, lists hold
//! a project's own objects and the shared ones), readers see their project's objects with
//! secrets redacted and cannot write, token auth.

mod common;

use common::*;
use serde_json::json;
use vpnaas_model::Kind;

#[tokio::test]
async fn projects_are_isolated_and_admin_sees_all() {
    let h = start().await;
    let alice = h.client.as_project("alice", "member");
    let bob = h.client.as_project("bob", "member");
    let p = alice
        .create(Kind::IkePolicy, json!({"name": "a"}))
        .await
        .expect("alice creates");
    assert_eq!(p["project_id"], "alice");
    assert_eq!(
        fault(bob.show(Kind::IkePolicy, &id(&p)).await),
        (404, "IKEPolicyNotFound".into())
    );
    assert_eq!(
        fault(
            bob.update(Kind::IkePolicy, &id(&p), json!({"name": "x"}))
                .await
        ),
        (404, "IKEPolicyNotFound".into())
    );
    assert_eq!(
        fault(bob.delete(Kind::IkePolicy, &id(&p)).await),
        (404, "IKEPolicyNotFound".into())
    );
    assert!(
        bob.list(Kind::IkePolicy, &[])
            .await
            .expect("list")
            .is_empty()
    );
    bob.create(Kind::IkePolicy, json!({"name": "b"}))
        .await
        .expect("bob creates");
    assert_eq!(
        h.client
            .list(Kind::IkePolicy, &[])
            .await
            .expect("admin list")
            .len(),
        2
    );
    assert_eq!(
        h.client
            .as_project("ops", "admin")
            .show(Kind::IkePolicy, &id(&p))
            .await
            .expect("admin")["name"],
        "a"
    );
    let filtered = h
        .client
        .list(Kind::IkePolicy, &[("project_id", "bob")])
        .await
        .expect("filter");
    assert_eq!(filtered.len(), 1);

    let external = external_network(&h.client).await;
    let visible = alice
        .show(Kind::Network, &external.0)
        .await
        .expect("external networks are visible to all");
    assert_eq!(visible["router:external"], true);
    alice
        .show(Kind::Subnet, &external.1)
        .await
        .expect("and their subnets");
    assert_eq!(
        fault(alice.delete(Kind::Network, &external.0).await),
        (403, "PolicyNotAuthorized".into())
    );
    assert_eq!(
        fault(
            alice
                .create(Kind::Network, json!({"router:external": true}))
                .await
        ),
        (403, "PolicyNotAuthorized".into())
    );
    let s = site(&alice, &external, 1).await;
    let pols = policies(&alice).await;
    let svc = legacy_service(&alice, &s).await;
    assert_eq!(
        fault(
            bob.create(Kind::VpnService, json!({"router_id": s.router}))
                .await
        ),
        (404, "RouterNotFound".into())
    );
    let bob_pols = policies(&bob).await;
    assert_eq!(
        fault(
            bob.create(
                Kind::SiteConnection,
                legacy_connection(&id(&svc), &bob_pols, "10.2.0.0/24")
            )
            .await
        ),
        (404, "VPNServiceNotFound".into())
    );
    assert_eq!(
        fault(
            alice
                .create(
                    Kind::SiteConnection,
                    legacy_connection(
                        &id(&svc),
                        &(bob_pols.0.clone(), pols.1.clone()),
                        "10.2.0.0/24"
                    )
                )
                .await
        ),
        (404, "IKEPolicyNotFound".into())
    );
}

/// The ids of a list, in its order.
async fn listed(client: &vpnaas_client::Client, kind: Kind, query: &[(&str, &str)]) -> Vec<String> {
    let items = client.list(kind, query).await.expect("list");
    items.iter().map(id).collect()
}

#[tokio::test]
async fn lists_hold_the_projects_own_objects_and_what_every_project_sees() {
    let h = start().await;
    let admin = &h.client;
    let (alice, bob) = (
        h.client.as_project("alice", "member"),
        h.client.as_project("bob", "member"),
    );
    let network = |client: &vpnaas_client::Client, attrs: serde_json::Value| {
        let client = client.clone();
        async move { id(&client.create(Kind::Network, attrs).await.expect("network")) }
    };
    let subnet = |client: &vpnaas_client::Client, network: String, cidr: &'static str| {
        let client = client.clone();
        async move {
            id(&client
                .create(Kind::Subnet, json!({"network_id": network, "cidr": cidr}))
                .await
                .expect("subnet"))
        }
    };
    let shared = network(admin, json!({"shared": true})).await;
    let external = network(admin, json!({"router:external": true})).await;
    let hidden = network(admin, json!({})).await;
    let bobs = network(&bob, json!({})).await;
    let alices = network(&alice, json!({})).await;
    let on_shared = subnet(admin, shared.clone(), "10.1.0.0/24").await;
    let on_external = subnet(admin, external.clone(), "10.2.0.0/24").await;
    subnet(admin, hidden.clone(), "10.3.0.0/24").await;
    subnet(&bob, bobs.clone(), "10.4.0.0/24").await;
    let alices_subnet = subnet(&alice, alices.clone(), "10.6.0.0/24").await;

    assert_eq!(
        listed(&alice, Kind::Network, &[]).await,
        [shared.clone(), external.clone(), alices.clone()]
    );
    assert_eq!(
        listed(&alice, Kind::Subnet, &[]).await,
        [
            on_shared.clone(),
            on_external.clone(),
            alices_subnet.clone()
        ],
        "subnets are seen with their networks"
    );
    assert_eq!(
        listed(&alice, Kind::Subnet, &[("fields", "id")]).await,
        listed(&alice, Kind::Subnet, &[]).await,
        "a list decoded for its query sees the same objects"
    );
    assert_eq!(
        listed(admin, Kind::Network, &[("project_id", "bob")]).await,
        [bobs],
        "an administrator's list of one project"
    );
    assert_eq!(listed(admin, Kind::Network, &[]).await.len(), 5);

    admin
        .update(Kind::Network, &shared, json!({"shared": false}))
        .await
        .expect("unshare");
    assert_eq!(
        listed(&alice, Kind::Network, &[]).await,
        [external.clone(), alices.clone()]
    );
    assert_eq!(
        listed(&alice, Kind::Subnet, &[]).await,
        [on_external, alices_subnet]
    );
    assert_eq!(
        fault(alice.show(Kind::Subnet, &on_shared).await),
        (404, "SubnetNotFound".into())
    );
}

#[tokio::test]
async fn readers_read_redacted_and_cannot_write() {
    let h = start().await;
    let member = h.client.as_project("p", "member");
    let reader = h.client.as_project("p", "reader");
    let external = external_network(&h.client).await;
    let s = site(&member, &external, 1).await;
    let pols = policies(&member).await;
    let svc = legacy_service(&member, &s).await;
    let conn = member
        .create(
            Kind::SiteConnection,
            legacy_connection(&id(&svc), &pols, "10.2.0.0/24"),
        )
        .await
        .expect("conn");
    assert_eq!(
        member
            .show(Kind::SiteConnection, &id(&conn))
            .await
            .expect("member")["psk"],
        "secret-psk"
    );
    let seen = reader
        .show(Kind::SiteConnection, &id(&conn))
        .await
        .expect("reader shows");
    assert_eq!(seen["psk"], "***");
    assert_eq!(seen["peer_id"], conn["peer_id"]);
    let listed = reader
        .list(Kind::SiteConnection, &[])
        .await
        .expect("reader lists");
    assert_eq!(listed[0]["psk"], "***");
    assert_eq!(
        fault(reader.create(Kind::IkePolicy, json!({})).await),
        (403, "PolicyNotAuthorized".into())
    );
    assert_eq!(
        fault(
            reader
                .update(Kind::SiteConnection, &id(&conn), json!({"psk": "x"}))
                .await
        ),
        (403, "PolicyNotAuthorized".into())
    );
    assert_eq!(
        fault(reader.delete(Kind::SiteConnection, &id(&conn)).await),
        (403, "PolicyNotAuthorized".into())
    );
    assert_eq!(
        fault(reader.add_router_interface(&s.router, &s.subnet).await),
        (403, "PolicyNotAuthorized".into())
    );
    let nobody = h.client.as_project("p", "service");
    assert_eq!(
        fault(nobody.list(Kind::IkePolicy, &[]).await),
        (403, "PolicyNotAuthorized".into())
    );
    assert_eq!(
        member
            .show(Kind::SiteConnection, &id(&conn))
            .await
            .expect("unchanged")["psk"],
        "secret-psk"
    );
}

#[tokio::test]
async fn token_auth_maps_tokens_to_projects_and_refuses_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        "[[token]]\ntoken = \"t-admin\"\nproject_id = \"ops\"\nroles = [\"admin\"]\n\n\
         [[token]]\ntoken = \"t-alice\"\nproject_id = \"alice\"\nuser_id = \"alice\"\nroles = [\"member\"]\n",
    )
    .expect("write tokens");
    let h = start_with(|s| {
        s.auth = vpnaas_server::AuthMode::Token;
        s.tokens_file = Some(tokens.clone());
    })
    .await;
    let with_token = |t: &str| {
        h.client.with_identity(vpnaas_client::Identity {
            token: Some(t.into()),
            ..Default::default()
        })
    };
    assert_eq!(
        fault(h.client.list(Kind::IkePolicy, &[]).await),
        (401, "HTTPUnauthorized".into())
    );
    assert_eq!(
        fault(with_token("wrong").list(Kind::IkePolicy, &[]).await),
        (401, "HTTPUnauthorized".into())
    );
    let spoofed = h.client.with_identity(vpnaas_client::Identity {
        token: Some("t-alice".into()),
        project: Some("ops".into()),
        roles: Some("admin".into()),
        ..Default::default()
    });
    let p = spoofed
        .create(Kind::IkePolicy, json!({}))
        .await
        .expect("alice creates");
    assert_eq!(
        p["project_id"], "alice",
        "identity headers are ignored under token auth"
    );
    assert_eq!(
        with_token("t-admin")
            .list(Kind::IkePolicy, &[])
            .await
            .expect("admin")
            .len(),
        1
    );
}

#[tokio::test]
async fn under_token_auth_metrics_need_a_token_or_their_own_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        "[[token]]\ntoken = \"t-admin\"\nproject_id = \"ops\"\nroles = [\"admin\"]\n\n\
         [[token]]\ntoken = \"t-prom\"\nproject_id = \"ops\"\nroles = [\"metrics\"]\n\n\
         [[token]]\ntoken = \"t-alice\"\nproject_id = \"alice\"\nroles = [\"member\"]\n",
    )
    .expect("write tokens");
    let private = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let h = start_with(|s| {
        s.auth = vpnaas_server::AuthMode::Token;
        s.tokens_file = Some(tokens.clone());
        s.metrics_listen = Some(private);
    })
    .await;
    let http = reqwest::Client::new();
    let scrape = |url: String, header: Option<(&'static str, &'static str)>| {
        let mut request = http.get(url);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        async move { request.send().await.expect("scrape").status().as_u16() }
    };
    let api = format!("{}/metrics", h.server.url());
    assert_eq!(scrape(api.clone(), None).await, 401, "anonymous");
    assert_eq!(
        scrape(api.clone(), Some(("x-auth-token", "t-alice"))).await,
        403,
        "a member"
    );
    assert_eq!(
        scrape(api.clone(), Some(("x-auth-token", "t-admin"))).await,
        200
    );
    assert_eq!(
        scrape(api.clone(), Some(("authorization", "Bearer t-prom"))).await,
        200,
        "Prometheus's bearer token of the metrics role"
    );
    assert_eq!(
        scrape(format!("http://{private}/metrics"), None).await,
        200,
        "metrics_listen serves anyone"
    );
    assert_eq!(
        scrape(format!("http://{private}/v2.0/vpn/ikepolicies"), None).await,
        404,
        "and nothing else"
    );

    let open = start().await;
    assert_eq!(
        scrape(format!("{}/metrics", open.server.url()), None).await,
        200,
        "noauth keeps /metrics anonymous"
    );
}

/// An administrator may choose an object's id on POST (vpnaas's extension for imports),
/// for any project; the id must be a new UUID. Anyone else gets Neutron's own answer to
/// an attribute POST may not set.
#[tokio::test]
async fn only_an_administrator_chooses_an_id_and_only_a_new_one() {
    let h = start().await;
    let admin = h.client.as_project("ops", "admin");
    let member = h.client.as_project("alice", "member");
    let chosen = "0b3e7f0c-3d7b-4b8e-9a57-1a1f0e6a2c11";
    let created = admin
        .create(
            Kind::IkePolicy,
            json!({"id": chosen, "project_id": "alice", "name": "kept"}),
        )
        .await
        .expect("an administrator chooses the id");
    assert_eq!(created["id"], chosen);
    assert_eq!(created["project_id"], "alice");
    let shown = member.show(Kind::IkePolicy, chosen).await.expect("alice's");
    assert_eq!(shown["name"], "kept");
    let again = admin
        .create(Kind::IkePolicy, json!({"id": chosen, "name": "other"}))
        .await;
    assert_eq!(fault(again), (409, "Conflict".into()));
    let kept = admin
        .show(Kind::IkePolicy, chosen)
        .await
        .expect("still there");
    assert_eq!(
        (kept["name"].clone(), kept["project_id"].clone()),
        (json!("kept"), json!("alice"))
    );
    // The same id is free in another kind.
    admin
        .create(Kind::IpsecPolicy, json!({"id": chosen}))
        .await
        .expect("ids are per kind");
    let by_member = member
        .create(
            Kind::IkePolicy,
            json!({"id": "5d0c4c52-2f4e-4f54-a0a4-2a4f3a0d8e01"}),
        )
        .await;
    assert_eq!(
        by_member
            .as_ref()
            .err()
            .map(|e| e.to_string().contains("Attribute 'id' not allowed in POST")),
        Some(true),
        "{by_member:?}"
    );
    assert_eq!(fault(by_member), (400, "HTTPBadRequest".into()));
    let malformed = admin
        .create(
            Kind::EndpointGroup,
            json!({"id": "42", "type": "cidr", "endpoints": ["10.0.0.0/24"]}),
        )
        .await;
    assert_eq!(fault(malformed).0, 400);
    assert!(
        member.list(Kind::IkePolicy, &[]).await.expect("list").len() == 1,
        "nothing else was created"
    );
}
