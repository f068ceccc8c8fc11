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
