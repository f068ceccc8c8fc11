//! List features: repeated filters, fields, sorting, and limit/marker/page_reverse with
//! `<collection>_links` that clients can follow.

mod common;

use common::*;
use serde_json::{Value, json};
use vpnaas_model::Kind;

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn filters_fields_sorting_and_pages() {
    let h = start().await;
    let c = &h.client;
    for (i, pfs) in ["group14", "group5", "group19", "group5", "group2"]
        .iter()
        .enumerate()
    {
        c.create(
            Kind::IkePolicy,
            json!({"name": format!("p{i}"), "pfs": pfs}),
        )
        .await
        .expect("create");
    }
    assert_eq!(
        names(&c.list(Kind::IkePolicy, &[]).await.expect("all")),
        ["p0", "p1", "p2", "p3", "p4"],
        "creation order"
    );
    assert_eq!(
        names(
            &c.list(Kind::IkePolicy, &[("pfs", "group5")])
                .await
                .expect("one value")
        ),
        ["p1", "p3"]
    );
    assert_eq!(
        names(
            &c.list(Kind::IkePolicy, &[("name", "p0"), ("name", "p4")])
                .await
                .expect("any of")
        ),
        ["p0", "p4"]
    );
    assert_eq!(
        names(
            &c.list(Kind::IkePolicy, &[("name", "p0"), ("pfs", "group5")])
                .await
                .expect("and")
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        fault(c.list(Kind::IkePolicy, &[("colour", "red")]).await),
        (400, "HTTPBadRequest".into())
    );

    let slim = c
        .list(Kind::IkePolicy, &[("fields", "id"), ("fields", "name")])
        .await
        .expect("fields");
    assert_eq!(slim[0].as_object().expect("object").len(), 2);
    let shown = c
        .get(&format!(
            "/v2.0/vpn/ikepolicies/{}?fields=pfs",
            id(&slim[0])
        ))
        .await
        .expect("show fields");
    assert_eq!(shown["ikepolicy"], json!({"pfs": "group14"}));

    let by_pfs = c
        .list(
            Kind::IkePolicy,
            &[
                ("sort_key", "pfs"),
                ("sort_dir", "desc"),
                ("sort_key", "name"),
                ("sort_dir", "asc"),
            ],
        )
        .await
        .expect("sort");
    assert_eq!(
        names(&by_pfs),
        ["p1", "p3", "p4", "p2", "p0"],
        "strings sort as text, as in the database"
    );
    assert_eq!(
        fault(c.list(Kind::IkePolicy, &[("sort_key", "nope")]).await).1,
        "HTTPBadRequest"
    );
    assert_eq!(
        fault(
            c.list(
                Kind::IkePolicy,
                &[("sort_key", "name"), ("sort_dir", "sideways")]
            )
            .await
        )
        .1,
        "HTTPBadRequest"
    );
    assert_eq!(
        fault(c.list(Kind::IkePolicy, &[("limit", "-1")]).await).1,
        "HTTPBadRequest"
    );

    let page = c
        .list_page(Kind::IkePolicy, &[("limit", "2"), ("sort_key", "name")])
        .await
        .expect("page 1");
    assert_eq!(
        names(page["ikepolicies"].as_array().expect("items")),
        ["p0", "p1"]
    );
    let mut seen = names(page["ikepolicies"].as_array().expect("items"));
    let mut next = next_link(&page);
    while let Some(href) = next {
        let path = href
            .strip_prefix(c.base_url())
            .expect("link is absolute on this server")
            .to_string();
        let body = c.get(&path).await.expect("next page");
        seen.extend(names(body["ikepolicies"].as_array().expect("items")));
        next = next_link(&body);
    }
    assert_eq!(
        seen,
        ["p0", "p1", "p2", "p3", "p4"],
        "following next links visits every item once"
    );

    let all = c
        .list(Kind::IkePolicy, &[("sort_key", "name")])
        .await
        .expect("all");
    let marker = id(&all[3]);
    let back = c
        .list(
            Kind::IkePolicy,
            &[
                ("limit", "2"),
                ("marker", &marker),
                ("page_reverse", "True"),
                ("sort_key", "name"),
            ],
        )
        .await
        .expect("reverse");
    assert_eq!(names(&back), ["p1", "p2"]);
    let missing = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        fault(
            c.list(Kind::IkePolicy, &[("limit", "2"), ("marker", &missing)])
                .await
        )
        .0,
        404
    );
}

fn next_link(body: &Value) -> Option<String> {
    body["ikepolicies_links"]
        .as_array()?
        .iter()
        .find(|l| l["rel"] == "next")
        .and_then(|l| l["href"].as_str())
        .map(String::from)
}

#[tokio::test]
async fn a_thousand_objects_list_in_one_call() {
    let h = start().await;
    for i in 0..1000 {
        h.client
            .create(Kind::IkePolicy, json!({"name": format!("bulk{i}")}))
            .await
            .expect("create");
    }
    let all = h.client.list(Kind::IkePolicy, &[]).await.expect("list");
    assert_eq!(all.len(), 1000);
    assert_eq!(all[999]["name"], "bulk999");
}

/// A query names only what it can use, or is refused naming it: `fields` must be
/// attributes, filter values must convert to the attribute's type, dictionaries do not
/// filter, and only scalars sort.
#[tokio::test]
async fn queries_name_only_what_they_can_use() {
    let h = start().await;
    let c = &h.client;
    let Connected { conn, .. } = connected_site(c).await;
    let refused = |query: Vec<(&'static str, &'static str)>| async move {
        match c.list(Kind::SiteConnection, &query).await {
            Err(vpnaas_client::Error::Api {
                status,
                kind,
                message,
            }) => (status, kind, message),
            other => panic!("{query:?} was answered: {other:?}"),
        }
    };
    for (query, names) in [
        (vec![("fields", "bogus")], "bogus"),
        (vec![("fields", "id"), ("fields", "colour")], "colour"),
        (vec![("admin_state_up", "maybe")], "maybe"),
        (vec![("mtu", "abc")], "mtu"),
        (vec![("dpd", "hold")], "dpd"),
        (vec![("sort_key", "dpd")], "dpd"),
        (vec![("sort_key", "peer_cidrs")], "peer_cidrs"),
        (vec![("sort_key", "traffic")], "traffic"),
    ] {
        let (status, _, message) = refused(query.clone()).await;
        assert_eq!(status, 400, "{query:?}");
        assert!(message.contains(names), "{query:?}: {message}");
    }
    assert_eq!(
        refused(vec![("admin_state_up", "maybe")]).await.1,
        "InvalidInput",
        "as Neutron's converter answers"
    );
    let shown = c
        .get(&format!(
            "/v2.0/vpn/ipsec-site-connections/{}?fields=bogus",
            id(&conn)
        ))
        .await;
    assert_eq!(fault(shown).0, 400, "show refuses unknown fields too");
    for (key, value) in [
        ("admin_state_up", "true"),
        ("admin_state_up", "1"),
        ("mtu", "1500"),
        ("peer_cidrs", "10.2.0.0/24"),
        ("sort_key", "status"),
        ("sort_key", "mtu"),
    ] {
        assert_eq!(
            c.list(Kind::SiteConnection, &[(key, value)])
                .await
                .expect(key)
                .len(),
            1,
            "{key}={value}"
        );
    }
    assert_eq!(
        fault(c.list(Kind::Network, &[("sort_key", "tags")]).await).0,
        400,
        "a list does not sort"
    );
}
