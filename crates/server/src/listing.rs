//! Neutron's list features over a collection already loaded and made visible: filters
//! (repeated query parameters match any of their values), tag filters (`tags`,
//! `tags-any`, `not-tags`, `not-tags-any`), `fields=`, `sort_key` / `sort_dir`, and
//! `limit` / `marker` / `page_reverse` with `<collection>_links`. What a query may name
//! comes from the attribute maps: any attribute is a field; dictionaries are not filters;
//! only scalars sort; secrets are neither filters nor sort keys, for anyone (a filter or
//! an order on a secret would confirm a guess of it even where its value is redacted).

use std::cmp::Ordering;

use serde_json::{Map, Value, json};
use vpnaas_model::attr::{Attr, AttrType, IntProblem, Shape, to_bool};
use vpnaas_model::{Error as Fault, Kind, attributes};

/// A parsed list query.
#[derive(Debug, Default)]
pub struct ListQuery {
    filters: Vec<(String, Vec<String>)>,
    tag_filters: Vec<(TagFilter, Vec<String>)>,
    /// Attributes to return (all when empty).
    pub fields: Vec<String>,
    sort: Vec<(String, bool)>,
    limit: Option<usize>,
    marker: Option<String>,
    page_reverse: bool,
    /// The non-pagination parameters, kept for the links.
    carried: Vec<(String, String)>,
}

/// Query parameters that are not filters.
pub const CONTROL_PARAMS: &[&str] = &[
    "fields",
    "sort_key",
    "sort_dir",
    "limit",
    "marker",
    "page_reverse",
];

/// Neutron's tag filters; each takes comma-separated tags (repeating it adds more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagFilter {
    /// `tags`: has every tag.
    All,
    /// `tags-any`: has at least one.
    Any,
    /// `not-tags`: lacks at least one.
    NotAll,
    /// `not-tags-any`: has none.
    NotAny,
}

impl TagFilter {
    fn parse(key: &str) -> Option<TagFilter> {
        match key {
            "tags" => Some(TagFilter::All),
            "tags-any" => Some(TagFilter::Any),
            "not-tags" => Some(TagFilter::NotAll),
            "not-tags-any" => Some(TagFilter::NotAny),
            _ => None,
        }
    }

    fn matches(self, item: &Value, wanted: &[String]) -> bool {
        let tags: Vec<&str> = item["tags"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let has = |tag: &String| tags.contains(&tag.as_str());
        match self {
            TagFilter::All => wanted.iter().all(has),
            TagFilter::Any => wanted.iter().any(has),
            TagFilter::NotAll => !wanted.iter().all(has),
            TagFilter::NotAny => !wanted.iter().any(has),
        }
    }
}

impl ListQuery {
    /// Parses a raw query string for a collection of `kind`.
    pub fn parse(kind: Kind, raw: Option<&str>) -> Result<ListQuery, Fault> {
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let mut query = ListQuery::default();
        let (mut keys, mut dirs) = (Vec::new(), Vec::new());
        for (key, value) in pairs {
            let tag_filter = TagFilter::parse(&key).filter(|_| is_attribute(kind, "tags"));
            match key.as_str() {
                _ if tag_filter.is_some() => {
                    let tags = value.split(',').map(str::to_string);
                    match query
                        .tag_filters
                        .iter_mut()
                        .find(|(f, _)| Some(*f) == tag_filter)
                    {
                        Some((_, wanted)) => wanted.extend(tags),
                        None => query
                            .tag_filters
                            .extend(tag_filter.map(|f| (f, tags.collect()))),
                    }
                }
                _ if !CONTROL_PARAMS.contains(&key.as_str()) => {
                    let attr = attribute_for(kind, &key, Use::Filter)?;
                    check_filter_value(attr, &value)?;
                    match query.filters.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, values)) => values.push(value.clone()),
                        None => query.filters.push((key.clone(), vec![value.clone()])),
                    }
                }
                "fields" => {
                    attribute_for(kind, &value, Use::Field)?;
                    query.fields.push(value.clone());
                }
                "sort_key" => keys.push(value.clone()),
                "sort_dir" => dirs.push(value.clone()),
                "limit" => query.limit = parse_limit(&value)?,
                "marker" => query.marker = Some(value.clone()),
                _ => query.page_reverse = value.eq_ignore_ascii_case("true"),
            }
            if !matches!(key.as_str(), "limit" | "marker" | "page_reverse") {
                query.carried.push((key, value));
            }
        }
        query.sort = sort_order(kind, keys, dirs)?;
        Ok(query)
    }

    /// Whether an item passes every filter.
    pub fn matches(&self, item: &Value) -> bool {
        self.filters
            .iter()
            .all(|(key, wanted)| wanted.iter().any(|w| value_matches(item.get(key), w)))
            && self
                .tag_filters
                .iter()
                .all(|(filter, wanted)| filter.matches(item, wanted))
    }

    /// The one project the filters keep, when `project_id` or `tenant_id` is filtered on a
    /// single value: an administrator's list then reads that project's rows alone.
    pub fn single_project(&self) -> Option<&str> {
        self.filters
            .iter()
            .find_map(|(key, values)| match values.as_slice() {
                [project] if key == "project_id" || key == "tenant_id" => Some(project.as_str()),
                _ => None,
            })
    }

    /// Whether the answer depends only on ids (no filter, sort or field selection), so
    /// documents can be sent as stored without being parsed.
    pub fn is_plain(&self) -> bool {
        self.filters.is_empty()
            && self.tag_filters.is_empty()
            && self.sort.is_empty()
            && self.fields.is_empty()
    }

    /// Sorts, pages and projects `items`; returns the page and its links.
    pub fn finish(
        &self,
        kind: Kind,
        mut items: Vec<Value>,
        base_url: &str,
    ) -> Result<(Vec<Value>, Vec<Value>), Fault> {
        if !self.sort.is_empty() {
            items.sort_by(|a, b| self.compare(a, b));
        }
        let (page, links) = self.paginate(
            kind,
            items,
            |i| i.get("id").and_then(Value::as_str),
            base_url,
        )?;
        Ok((
            page.into_iter()
                .map(|item| project(item, &self.fields))
                .collect(),
            links,
        ))
    }

    fn compare(&self, a: &Value, b: &Value) -> Ordering {
        for (key, ascending) in &self.sort {
            let order = compare_values(a.get(key), b.get(key));
            let order = if *ascending { order } else { order.reverse() };
            if order != Ordering::Equal {
                return order;
            }
        }
        Ordering::Equal
    }

    /// Applies `limit` / `marker` / `page_reverse`; returns the page and its links.
    pub fn paginate<T>(
        &self,
        kind: Kind,
        items: Vec<T>,
        id_of: impl Fn(&T) -> Option<&str>,
        base_url: &str,
    ) -> Result<(Vec<T>, Vec<Value>), Fault> {
        let Some(limit) = self.limit else {
            return Ok((items, vec![]));
        };
        let marker_at = match &self.marker {
            Some(marker) => Some(
                items
                    .iter()
                    .position(|i| id_of(i) == Some(marker.as_str()))
                    .ok_or_else(|| Fault::resource_not_found(kind, marker))?,
            ),
            None => None,
        };
        let (start, end) = if self.page_reverse {
            let end = marker_at.unwrap_or(items.len());
            (end.saturating_sub(limit), end)
        } else {
            let start = marker_at.map_or(0, |m| m + 1);
            (start, (start + limit).min(items.len()))
        };
        let has_more_after = end < items.len();
        let has_more_before = start > 0;
        let page: Vec<T> = items.into_iter().skip(start).take(end - start).collect();
        let first = page.first().and_then(&id_of).map(str::to_string);
        let last = page.last().and_then(&id_of).map(str::to_string);
        let mut links = Vec::new();
        if (has_more_after || (self.page_reverse && self.marker.is_some()))
            && let Some(last) = last
        {
            links.push(json!({"rel": "next", "href": self.link(base_url, limit, &last, false)}));
        }
        if (has_more_before || (!self.page_reverse && self.marker.is_some()))
            && let Some(first) = first
        {
            links
                .push(json!({"rel": "previous", "href": self.link(base_url, limit, &first, true)}));
        }
        Ok((page, links))
    }

    fn link(&self, base_url: &str, limit: usize, marker: &str, reverse: bool) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in &self.carried {
            query.append_pair(key, value);
        }
        query.append_pair("limit", &limit.to_string());
        query.append_pair("marker", marker);
        if reverse {
            query.append_pair("page_reverse", "True");
        }
        format!("{base_url}?{}", query.finish())
    }
}

/// Keeps only the requested fields of an object (all when `fields` is empty).
pub fn project(item: Value, fields: &[String]) -> Value {
    if fields.is_empty() {
        return item;
    }
    match item {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| fields.iter().any(|f| f == k))
                .collect::<Map<_, _>>(),
        ),
        other => other,
    }
}

fn is_attribute(kind: Kind, key: &str) -> bool {
    attributes(kind).iter().any(|a| a.name == key)
}

/// What a query does with an attribute it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Filter,
    Sort,
    Field,
}

/// The attribute a query names for `usage`, or Neutron's refusal
/// ("['x'] is invalid attribute for filtering").
fn attribute_for(kind: Kind, key: &str, usage: Use) -> Result<&'static Attr, Fault> {
    let purpose = match usage {
        Use::Filter => "filtering",
        Use::Sort => "sort_keys",
        Use::Field => "fields",
    };
    let invalid = |why: &str| {
        Fault::http_bad_request(format!("['{key}'] is invalid attribute for {purpose}{why}"))
    };
    let attr = attributes(kind)
        .iter()
        .find(|a| a.name == key)
        .ok_or_else(|| invalid(""))?;
    match usage {
        Use::Filter | Use::Sort if attr.secret => Err(invalid(&format!(": {key} is a secret"))),
        _ if !serves(attr, usage) => Err(invalid("")),
        _ => Ok(attr),
    }
}

/// Whether a query may use `attr` for `usage`: secrets are neither filters nor sort keys,
/// dictionaries are no filters, and only scalars sort. The OpenAPI document offers what
/// this admits.
pub fn serves(attr: &Attr, usage: Use) -> bool {
    let shape = attr.ty.shape();
    match usage {
        Use::Filter => !attr.secret && shape != Shape::Dict,
        Use::Sort => !attr.secret && shape == Shape::Scalar,
        Use::Field => true,
    }
}

/// Converts a filter value as Neutron does for the attribute's type (booleans, integers),
/// so a filter that can match nothing is refused rather than answered with nothing.
fn check_filter_value(attr: &Attr, value: &str) -> Result<(), Fault> {
    let text = Value::String(value.into());
    match attr.ty {
        AttrType::Bool if to_bool(&text).is_none() => Err(Fault::conversion(format!(
            "'{value}' cannot be converted to boolean"
        ))),
        AttrType::Int(range) => match range.check(&text) {
            Err(IntProblem::NotInteger(why)) => Err(Fault::invalid_input(attr.name, why)),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

fn parse_limit(value: &str) -> Result<Option<usize>, Fault> {
    match value.trim().parse::<i64>() {
        Ok(0) => Ok(None),
        Ok(n) if n > 0 => Ok(Some(n as usize)),
        _ => Err(Fault::http_bad_request(format!(
            "Limit must be an integer 0 or greater and not '{value}'"
        ))),
    }
}

fn sort_order(
    kind: Kind,
    keys: Vec<String>,
    dirs: Vec<String>,
) -> Result<Vec<(String, bool)>, Fault> {
    if !dirs.is_empty() && dirs.len() != keys.len() {
        return Err(Fault::http_bad_request(
            "The number of sort_keys and sort_dirs must be same",
        ));
    }
    keys.into_iter()
        .enumerate()
        .map(|(i, key)| {
            attribute_for(kind, &key, Use::Sort)?;
            let ascending = match dirs.get(i).map(String::as_str) {
                None | Some("asc") => true,
                Some("desc") => false,
                Some(other) => {
                    return Err(Fault::http_bad_request(format!("{other} is an invalid value for sort_dirs, valid values are 'asc' and 'desc'")));
                }
            };
            Ok((key, ascending))
        })
        .collect()
}

fn value_matches(value: Option<&Value>, wanted: &str) -> bool {
    match value {
        Some(Value::String(s)) => s == wanted,
        Some(Value::Bool(b)) => to_bool(&Value::String(wanted.into())) == Some(*b),
        Some(Value::Number(n)) => n.to_string() == wanted,
        Some(Value::Null) | None => wanted.is_empty() || wanted.eq_ignore_ascii_case("none"),
        Some(Value::Array(items)) => items.iter().any(|i| value_matches(Some(i), wanted)),
        Some(Value::Object(_)) => false,
    }
}

fn compare_values(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (None | Some(Value::Null), None | Some(Value::Null)) => Ordering::Equal,
        (None | Some(Value::Null), _) => Ordering::Less,
        (_, None | Some(Value::Null)) => Ordering::Greater,
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| json!({"id": format!("id{i:02}"), "name": format!("n{}", i % 3)}))
            .collect()
    }

    #[test]
    fn pages_walk_forward_and_back() {
        let q = ListQuery::parse(Kind::IkePolicy, Some("limit=4&marker=id03")).expect("parses");
        let (page, links) = q
            .finish(Kind::IkePolicy, items(10), "http://h/v2.0/vpn/ikepolicies")
            .expect("pages");
        let ids: Vec<_> = page
            .iter()
            .map(|i| i["id"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(ids, ["id04", "id05", "id06", "id07"]);
        assert_eq!(links.len(), 2);
        let q = ListQuery::parse(
            Kind::IkePolicy,
            Some("limit=4&marker=id04&page_reverse=True"),
        )
        .expect("parses");
        let (page, _) = q.finish(Kind::IkePolicy, items(10), "x").expect("pages");
        assert_eq!(page[0]["id"], "id00");
        assert_eq!(page.len(), 4);
    }

    #[test]
    fn repeated_filters_match_any_value_and_unknown_ones_are_refused() {
        let q = ListQuery::parse(Kind::IkePolicy, Some("name=n0&name=n1")).expect("parses");
        assert_eq!(items(9).iter().filter(|i| q.matches(i)).count(), 6);
        assert!(ListQuery::parse(Kind::IkePolicy, Some("bogus=1")).is_err());
    }

    #[test]
    fn tag_filters_follow_neutron() {
        let tagged = |tags: &[&str]| json!({"id": "x", "tags": tags});
        let cases = [
            ("tags=a,b", vec![false, true, false]),
            ("tags=a&tags=b", vec![false, true, false]),
            ("tags-any=a,b", vec![true, true, false]),
            ("not-tags=a,b", vec![true, false, true]),
            ("not-tags-any=a,b", vec![false, false, true]),
        ];
        for (raw, expected) in cases {
            let q = ListQuery::parse(Kind::Network, Some(raw)).expect("parses");
            let got: Vec<bool> = [tagged(&["a"]), tagged(&["a", "b"]), tagged(&["c"])]
                .iter()
                .map(|i| q.matches(i))
                .collect();
            assert_eq!(got, expected, "{raw}");
        }
        assert!(ListQuery::parse(Kind::IkePolicy, Some("tags-any=a")).is_err());
    }

    #[test]
    fn sorts_descending_by_several_keys() {
        let q = ListQuery::parse(
            Kind::IkePolicy,
            Some("sort_key=name&sort_dir=desc&sort_key=id&sort_dir=asc"),
        )
        .expect("parses");
        let (page, _) = q.finish(Kind::IkePolicy, items(6), "x").expect("sorts");
        assert_eq!(page[0]["id"], "id02");
        assert_eq!(page[1]["id"], "id05");
    }
}
