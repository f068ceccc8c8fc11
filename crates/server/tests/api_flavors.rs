//! Driver choice through Neutron's flavors: service providers, service profiles, flavors
//! and their associations, a VPN service's `flavor_id` pinning its driver (`provider`), one
//! driver per router, connections refused when their driver cannot negotiate a policy, and
//! the admin action that migrates a router's VPN to the other driver.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;
use vpnaas_bus::ControlPlane;
use vpnaas_client::Client;
use vpnaas_model::Kind;
use vpnaas_server::service::agents::LocalControlPlane;
use vpnaas_server::{Server, build_app};

async fn libreswan_flavor(c: &Client) -> String {
    let profile = c
        .create(Kind::ServiceProfile, json!({"driver": "libreswan"}))
        .await
        .expect("profile");
    let flavor = c
        .create(
            Kind::Flavor,
            json!({"name": "pluto", "service_type": "VPN"}),
        )
        .await
        .expect("flavor");
    let (status, _) = c
        .raw(
            Method::POST,
            &format!("/v2.0/flavors/{}/service_profiles", id(&flavor)),
            Some(&json!({"service_profile": {"id": id(&profile)}})),
        )
        .await
        .expect("associate");
    assert_eq!(status.as_u16(), 201);
    id(&flavor)
}

#[tokio::test]
async fn providers_profiles_and_flavors_follow_neutron() {
    let h = start().await;
    let c = &h.client;
    let providers = c.get("/v2.0/service-providers").await.expect("providers");
    assert_eq!(
        providers,
        json!({"service_providers": [
            {"service_type": "VPN", "name": "strongswan", "default": true},
            {"service_type": "VPN", "name": "libreswan", "default": false},
        ]})
    );
    let member = c.as_project("p", "member");
    assert_eq!(
        fault(
            member
                .create(Kind::ServiceProfile, json!({"driver": "libreswan"}))
                .await
        ),
        (403, "PolicyNotAuthorized".into())
    );
    assert_eq!(
        fault(
            c.create(Kind::ServiceProfile, json!({"driver": "openswan"}))
                .await
        )
        .0,
        400
    );
    assert_eq!(
        fault(
            c.create(Kind::Flavor, json!({"service_type": "LOADBALANCERV2"}))
                .await
        )
        .0,
        400
    );
    let flavor = libreswan_flavor(c).await;
    let shown = c.show(Kind::Flavor, &flavor).await.expect("flavor");
    assert_eq!(shown["service_profiles"].as_array().map(Vec::len), Some(1));
    let profile = shown["service_profiles"][0]
        .as_str()
        .expect("profile")
        .to_string();
    assert_eq!(
        member.list(Kind::Flavor, &[]).await.expect("flavors").len(),
        1,
        "flavors are visible to every project"
    );
    assert_eq!(
        fault(member.list(Kind::ServiceProfile, &[]).await),
        (403, "PolicyNotAuthorized".into()),
        "profiles are for admins"
    );
    let again = c
        .raw(
            Method::POST,
            &format!("/v2.0/flavors/{flavor}/service_profiles"),
            Some(&json!({"service_profile": {"id": profile}})),
        )
        .await
        .expect("raw");
    assert_eq!(
        (again.0.as_u16(), again.1["NeutronError"]["type"].clone()),
        (409, json!("FlavorServiceProfileBindingExists"))
    );
    assert_eq!(
        fault(c.delete(Kind::ServiceProfile, &profile).await),
        (409, "ServiceProfileInUse".into())
    );
    let path = format!("/v2.0/flavors/{flavor}/service_profiles/{profile}");
    assert_eq!(
        c.raw(Method::DELETE, &path, None)
            .await
            .expect("raw")
            .0
            .as_u16(),
        204
    );
    assert_eq!(
        c.raw(Method::DELETE, &path, None)
            .await
            .expect("raw")
            .0
            .as_u16(),
        404
    );
    c.delete(Kind::ServiceProfile, &profile)
        .await
        .expect("free now");
}

#[tokio::test]
async fn a_flavor_pins_the_driver_and_a_router_runs_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = build_app(settings(dir.path())).await.expect("app");
    let server = Server::start_app(app.clone()).await.expect("server");
    let c = Client::new(&server.url());
    let control = LocalControlPlane::new(app.clone());
    control.heartbeat("h").await.expect("agent");
    let external = external_network(&c).await;
    let s = site(&c, &external, 1).await;
    let flavor = libreswan_flavor(&c).await;

    let disabled = c
        .create(
            Kind::Flavor,
            json!({"service_type": "VPN", "enabled": false}),
        )
        .await
        .expect("flavor");
    assert_eq!(
        fault(
            c.create(
                Kind::VpnService,
                json!({"router_id": s.router, "flavor_id": id(&disabled)})
            )
            .await
        ),
        (503, "FlavorDisabled".into())
    );
    let empty = c
        .create(Kind::Flavor, json!({"service_type": "VPN"}))
        .await
        .expect("flavor");
    assert_eq!(
        fault(
            c.create(
                Kind::VpnService,
                json!({"router_id": s.router, "flavor_id": id(&empty)})
            )
            .await
        ),
        (404, "NoProviderFoundForFlavor".into())
    );

    let svc = c
        .create(
            Kind::VpnService,
            json!({"router_id": s.router, "subnet_id": s.subnet, "flavor_id": flavor}),
        )
        .await
        .expect("service on libreswan");
    assert_eq!(svc["provider"], "libreswan");
    assert_eq!(
        fault(
            c.create(Kind::VpnService, json!({"router_id": s.router}))
                .await
        ),
        (409, "VPNDriverConflict".into()),
        "a second service on the default driver cannot share the router"
    );
    assert_eq!(
        fault(c.delete(Kind::Flavor, &flavor).await),
        (409, "FlavorInUse".into())
    );

    let ccm = c
        .create(
            Kind::IkePolicy,
            json!({"encryption_algorithm": "aes-128-ccm-8"}),
        )
        .await
        .expect("ike policy");
    let ipsec = c
        .create(Kind::IpsecPolicy, json!({}))
        .await
        .expect("ipsec policy");
    let before = c.list(Kind::SiteConnection, &[]).await.expect("list").len();
    let refused = c
        .create(
            Kind::SiteConnection,
            legacy_connection(&id(&svc), &(id(&ccm), id(&ipsec)), "10.2.0.0/24"),
        )
        .await;
    match &refused {
        Err(vpnaas_client::Error::Api {
            status,
            kind,
            message,
        }) => {
            assert_eq!((*status, kind.as_str()), (400, "VPNDriverCannotRun"));
            assert!(
                message.contains("ikepolicy encryption_algorithm 'aes-128-ccm-8'"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.list(Kind::SiteConnection, &[]).await.expect("list").len(),
        before,
        "nothing created"
    );
    let pols = policies(&c).await;
    c.create(
        Kind::SiteConnection,
        legacy_connection(&id(&svc), &pols, "10.2.0.0/24"),
    )
    .await
    .expect("a policy libreswan has");
    let state = control
        .router_state("h", &s.router)
        .await
        .expect("state")
        .expect("hosted");
    assert_eq!(state.driver.map(|d| d.as_str()), Some("libreswan"));

    let migrate = format!("/v2.0/routers/{}/migrate_vpn_driver", s.router);
    let (status, body) = c
        .as_project("p", "member")
        .raw(
            Method::PUT,
            &migrate,
            Some(&json!({"driver": "strongswan"})),
        )
        .await
        .expect("raw");
    assert_eq!(
        (status.as_u16(), body["NeutronError"]["type"].clone()),
        (403, json!("PolicyNotAuthorized"))
    );
    let (status, _) = c
        .raw(Method::PUT, &migrate, Some(&json!({"driver": "pluto"})))
        .await
        .expect("raw");
    assert_eq!(status.as_u16(), 400);
    let revision = state.revision;
    let (status, body) = c
        .raw(
            Method::PUT,
            &migrate,
            Some(&json!({"driver": "strongswan"})),
        )
        .await
        .expect("raw");
    assert_eq!(status.as_u16(), 200, "{body}");
    assert_eq!(
        (&body["driver"], &body["previous_driver"]),
        (&json!("strongswan"), &json!("libreswan"))
    );
    let state = control
        .router_state("h", &s.router)
        .await
        .expect("state")
        .expect("hosted");
    assert_eq!(state.driver.map(|d| d.as_str()), Some("strongswan"));
    assert!(state.revision > revision, "the agent is told");
    assert_eq!(
        c.show(Kind::VpnService, &id(&svc)).await.expect("svc")["provider"],
        "strongswan"
    );

    let strongswan_only = c
        .create(
            Kind::IkePolicy,
            json!({"name": "gcm-v1", "ike_version": "v1", "encryption_algorithm": "aes-256-gcm-16"}),
        )
        .await
        .expect("policy");
    c.create(
        Kind::SiteConnection,
        legacy_connection(
            &id(&svc),
            &(id(&strongswan_only), pols.1.clone()),
            "10.3.0.0/24",
        ),
    )
    .await
    .expect("strongSwan has it");
    let (status, body) = c
        .raw(Method::PUT, &migrate, Some(&json!({"driver": "libreswan"})))
        .await
        .expect("raw");
    assert_eq!(
        (status.as_u16(), body["NeutronError"]["type"].clone()),
        (400, json!("VPNDriverCannotRun")),
        "{body}"
    );
    assert_eq!(
        c.show(Kind::VpnService, &id(&svc)).await.expect("svc")["provider"],
        "strongswan",
        "a refused migration changes nothing"
    );
}
