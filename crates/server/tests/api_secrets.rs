//! No secret oracle: whoever asks (admin, member, reader), a secret attribute is never a
//! filter or a sort key, a reader sees it redacted however it asks for it, no other
//! attribute's filter answers differently for the right guess, and no error quotes it.
//! Secrets are whatever the attribute maps mark secret, so a secret added later is covered.

mod common;

use common::*;
use serde_json::{Value, json};
use vpnaas_client::Client;
use vpnaas_model::attr::Shape;
use vpnaas_model::{Kind, attributes};

const PSK: &str = "secret-psk";
const PROJECT: &str = "p";

struct World {
    h: Harness,
    conn: Value,
}

impl World {
    fn roles(&self) -> [(&'static str, Client); 3] {
        [
            ("admin", self.h.client.as_project(PROJECT, "admin")),
            ("member", self.h.client.as_project(PROJECT, "member")),
            ("reader", self.h.client.as_project(PROJECT, "reader")),
        ]
    }
}

async fn world() -> World {
    let h = start().await;
    let member = h.client.as_project(PROJECT, "member");
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
    assert_eq!(conn["psk"], PSK, "the fixture's secret");
    World { h, conn }
}

/// Status and body of a GET, whatever they are.
async fn get(c: &Client, path: &str) -> (u16, Value) {
    let (status, body) = c
        .raw(reqwest::Method::GET, path, None)
        .await
        .expect("answer");
    (status.as_u16(), body)
}

fn message(body: &Value) -> &str {
    body["NeutronError"]["message"].as_str().unwrap_or_default()
}

fn secrets() -> Vec<(Kind, &'static str)> {
    Kind::ALL
        .into_iter()
        .flat_map(|kind| {
            attributes(kind)
                .iter()
                .filter(|a| a.secret)
                .map(move |a| (kind, a.name))
        })
        .collect()
}

#[tokio::test]
async fn secrets_are_never_filters_or_sort_keys_for_anyone() {
    let w = world().await;
    let secrets = secrets();
    assert!(
        secrets.contains(&(Kind::SiteConnection, "psk")),
        "psk is marked secret"
    );
    for (role, c) in w.roles() {
        for (kind, name) in &secrets {
            let path = format!("/v2.0/{}", kind.path());
            let right = get(&c, &format!("{path}?{name}={PSK}&fields=id")).await;
            let wrong = get(&c, &format!("{path}?{name}=not-it&fields=id")).await;
            assert_eq!(right.0, 400, "{role}: filter on {name}: {right:?}");
            assert_eq!(right, wrong, "{role}: the answer depends on the guess");
            assert!(message(&right.1).contains(name), "{role}: {right:?}");
            assert!(!message(&right.1).contains(PSK), "{role}: {right:?}");
            for dir in ["asc", "desc"] {
                let (status, body) = get(
                    &c,
                    &format!("{path}?sort_key={name}&sort_dir={dir}&limit=1"),
                )
                .await;
                assert_eq!(status, 400, "{role}: sort on {name}: {body}");
                assert!(message(&body).contains(name), "{role}: {body}");
            }
        }
    }
}

#[tokio::test]
async fn readers_see_secrets_redacted_however_they_ask() {
    let w = world().await;
    let conn = id(&w.conn);
    for (role, c) in w.roles() {
        let shown = if role == "reader" { "***" } else { PSK };
        let listed = c
            .list(Kind::SiteConnection, &[("fields", "psk"), ("fields", "id")])
            .await
            .expect("list with fields");
        assert_eq!(listed, vec![json!({"id": conn, "psk": shown})], "{role}");
        let one = c
            .get(&format!(
                "/v2.0/vpn/ipsec-site-connections/{conn}?fields=psk"
            ))
            .await
            .expect("show with fields");
        assert_eq!(one["ipsec_site_connection"]["psk"], shown, "{role}");
        let paged = c
            .list_page(
                Kind::SiteConnection,
                &[("limit", "1"), ("sort_key", "name"), ("fields", "psk")],
            )
            .await
            .expect("page");
        assert_eq!(paged["ipsec_site_connections"][0]["psk"], shown, "{role}");
    }
}

/// Every other attribute a reader may filter on answers the same for the secret as for
/// any other string: no attribute derives from it.
#[tokio::test]
async fn no_other_filter_tells_the_right_guess_from_a_wrong_one() {
    let w = world().await;
    let reader = w.h.client.as_project(PROJECT, "reader");
    for attr in attributes(Kind::SiteConnection)
        .iter()
        .filter(|a| !a.secret && a.ty.shape() != Shape::Dict)
    {
        let path = |value: &str| {
            format!(
                "/v2.0/vpn/ipsec-site-connections?{}={value}&fields=id",
                attr.name
            )
        };
        let answer = |(status, body): (u16, Value), guess: &str| {
            // An error may quote the filter value given; that is the caller's own text.
            (status, body.to_string().replace(guess, "GUESS"))
        };
        let right = answer(get(&reader, &path(PSK)).await, PSK);
        let wrong = answer(get(&reader, &path("secret-psl")).await, "secret-psl");
        assert_eq!(right, wrong, "filter {} answers the guess", attr.name);
    }
}

/// A refused secret is never quoted back, for whoever may write it.
#[tokio::test]
async fn errors_never_quote_a_secret() {
    let w = world().await;
    let conn = id(&w.conn);
    let hostile = [
        format!("{PSK}\n{PSK}"),
        format!("{PSK}\u{0}"),
        format!("{PSK}{}", "x".repeat(300)),
    ];
    for (role, c) in w.roles() {
        for value in &hostile {
            let refused = c
                .update(Kind::SiteConnection, &conn, json!({"psk": value}))
                .await
                .expect_err("refused");
            let text = refused.to_string();
            assert!(!text.contains(PSK), "{role}: {text}");
            let expected = if role == "reader" { 403 } else { 400 };
            assert_eq!(refused.status(), Some(expected), "{role}: {text}");
        }
    }
    let admin = w.h.client.as_project(PROJECT, "admin");
    assert_eq!(
        admin.show(Kind::SiteConnection, &conn).await.expect("show")["psk"],
        PSK,
        "refusals changed nothing"
    );
}
