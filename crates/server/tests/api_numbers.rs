//! Numbers never 500: every integer every attribute map declares (`mtu`, `lifetime.value`,
//! `dpd.interval`, `dpd.timeout`, a network's `mtu`, and any added later) is fed boundary
//! integers (0, 1, 2^31 - 1, 2^31, 2^32 - 1, 2^32, 2^63 - 1, 2^64, negatives, either side of
//! its declared range), as JSON numbers and as strings, on POST and on PUT. Never a 5xx; a
//! value outside the range is a 400 naming the attribute that changes nothing; a value
//! inside is stored as sent, or refused by a rule of the resource naming the attribute.

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use vpnaas_client::Client;
use vpnaas_model::attr::{Attr, IntegerField, Post};
use vpnaas_model::{Kind, attributes};

/// Where each numeric attribute is tried: a POST body that is valid without it, and an
/// object to PUT it on.
struct Target {
    kind: Kind,
    post: Value,
    existing: String,
}

struct World {
    h: Harness,
    targets: Vec<Target>,
}

async fn world() -> World {
    let h = start().await;
    let c = &h.client;
    let Connected {
        service,
        pols,
        conn,
        ..
    } = connected_site(c).await;
    let mut targets = Vec::new();
    for kind in kinds_with_integers() {
        let (post, existing) = match kind {
            // Fresh policies: the connection's are in use, and refuse changes for that.
            Kind::IkePolicy | Kind::IpsecPolicy => (json!({}), json!({})),
            Kind::Network => (json!({"name": "n"}), json!({"name": "n"})),
            Kind::SiteConnection => (
                legacy_connection(&id(&service), &pols, "10.3.0.0/24"),
                conn.clone(),
            ),
            other => panic!("{other:?} has integer attributes: give it a target here"),
        };
        let existing = match kind {
            Kind::SiteConnection => id(&existing),
            _ => id(&c.create(kind, existing).await.expect("target")),
        };
        targets.push(Target {
            kind,
            post,
            existing,
        });
    }
    World { h, targets }
}

fn kinds_with_integers() -> Vec<Kind> {
    Kind::ALL
        .into_iter()
        .filter(|k| {
            attributes(*k)
                .iter()
                .any(|a| !a.ty.integer_fields().is_empty())
        })
        .collect()
}

/// Every (attribute, integer it holds) of a kind.
fn numeric(kind: Kind) -> Vec<(&'static Attr, IntegerField)> {
    attributes(kind)
        .iter()
        .flat_map(|a| a.ty.integer_fields().into_iter().map(move |f| (a, f)))
        .collect()
}

fn boundaries(field: IntegerField) -> Vec<i128> {
    let (min, max) = (i128::from(field.range.min), i128::from(field.range.max));
    let mut values = vec![
        0,
        1,
        -1,
        (1 << 31) - 1,
        1 << 31,
        (1 << 32) - 1,
        1 << 32,
        (1 << 63) - 1,
        1 << 63,
        1 << 64,
        -(1 << 31),
        -(1 << 63),
        min - 1,
        min,
        max,
        max + 1,
    ];
    values.sort();
    values.dedup();
    values
}

/// `n` as a JSON number (beyond 64 bits, as JSON parsers read such a literal) or string.
fn as_json(n: i128, as_string: bool) -> Value {
    if as_string {
        return json!(n.to_string());
    }
    serde_json::from_str(&n.to_string()).expect("a JSON number")
}

fn with_value(attr: &Attr, field: IntegerField, value: Value) -> Value {
    match field.key {
        None => json!({ attr.name: value }),
        Some(key) => json!({ attr.name: { key: value } }),
    }
}

fn read_back(item: &Value, attr: &Attr, field: IntegerField) -> Value {
    match field.key {
        None => item[attr.name].clone(),
        Some(key) => item[attr.name][key].clone(),
    }
}

enum Method {
    Post,
    Put,
}

async fn try_value(
    c: &Client,
    target: &Target,
    attr: &Attr,
    field: IntegerField,
    n: i128,
    as_string: bool,
) {
    let value = as_json(n, as_string);
    let shown = format!(
        "{:?} {}{} = {value}",
        target.kind,
        attr.name,
        field.key.map(|k| format!(".{k}")).unwrap_or_default()
    );
    let mut methods = Vec::new();
    if !matches!(attr.post, Post::Forbidden) {
        methods.push(Method::Post);
    }
    if attr.put {
        methods.push(Method::Put);
    }
    for method in methods {
        let before = state(c, target).await;
        let (path, http, body) = match method {
            Method::Post => {
                let mut attrs = target.post.clone();
                merge(&mut attrs, with_value(attr, field, value.clone()));
                (
                    format!("/v2.0/{}", target.kind.path()),
                    reqwest::Method::POST,
                    attrs,
                )
            }
            Method::Put => (
                format!("/v2.0/{}/{}", target.kind.path(), target.existing),
                reqwest::Method::PUT,
                with_value(attr, field, value.clone()),
            ),
        };
        let (status, answer) = c
            .raw(
                http.clone(),
                &path,
                Some(&json!({ target.kind.singular(): body })),
            )
            .await
            .expect("an answer");
        let status = status.as_u16();
        assert!(status < 500, "{http} {shown}: {status} {answer}");
        if status < 300 {
            assert!(
                field.range.contains(n),
                "{http} {shown} accepted outside {:?}",
                field.range
            );
            let item = &answer[target.kind.singular()];
            assert_eq!(
                read_back(item, attr, field),
                json!(n as i64),
                "{http} {shown}: {answer}"
            );
            if let Method::Post = method {
                c.delete(target.kind, &id(item)).await.expect("delete");
            }
            continue;
        }
        assert_eq!(status, 400, "{http} {shown}: {answer}");
        let message = answer["NeutronError"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(
            message.to_lowercase().contains(attr.name),
            "{http} {shown}: the refusal does not name {}: {message}",
            attr.name
        );
        assert_eq!(
            state(c, target).await,
            before,
            "{http} {shown}: a refusal changed something"
        );
    }
}

/// What a refusal must leave as it was: the collection and the PUT target.
async fn state(c: &Client, target: &Target) -> (usize, Value) {
    let count = c.list(target.kind, &[]).await.expect("list").len();
    let existing = c.show(target.kind, &target.existing).await.expect("show");
    (count, existing)
}

fn merge(attrs: &mut Value, changes: Value) {
    if let (Value::Object(a), Value::Object(c)) = (attrs, changes) {
        a.extend(c);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn every_integer_attribute_refuses_what_is_out_of_range_and_never_fails() {
    let rt = runtime();
    let w = rt.block_on(world());
    let c = &w.h.client;
    let covered: Vec<String> = w
        .targets
        .iter()
        .flat_map(|t| numeric(t.kind).into_iter().map(|(a, _)| a.name.to_string()))
        .collect();
    for expected in ["mtu", "lifetime", "dpd"] {
        assert!(
            covered.iter().any(|n| n == expected),
            "{expected} is not declared numeric"
        );
    }
    rt.block_on(async {
        for target in &w.targets {
            for (attr, field) in numeric(target.kind) {
                for n in boundaries(field) {
                    for as_string in [false, true] {
                        try_value(c, target, attr, field, n, as_string).await;
                    }
                }
            }
        }
    });
    let config = ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let any_integer = prop_oneof![
        any::<i64>().prop_map(i128::from),
        any::<u64>().prop_map(i128::from),
        (-100i128..70_000),
    ];
    proptest!(config, |(n in any_integer, as_string in any::<bool>())| {
        rt.block_on(async {
            for target in &w.targets {
                for (attr, field) in numeric(target.kind) {
                    try_value(c, target, attr, field, n, as_string).await;
                }
            }
        });
    });
}
