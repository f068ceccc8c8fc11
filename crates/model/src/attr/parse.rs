//! The request parser: a create or update body checked against a kind's attribute map in
//! Neutron's order (envelope, unknown attributes, attributes the method may not set,
//! required attributes, defaults, per-attribute validators, project ownership).

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::grammar;
use crate::kind::Kind;

use super::{Attr, AttrType, Post, Requester, Rules, validate};

/// Parses a POST body: returns the resource's attributes, validated and with defaults
/// filled, `tenant_id` and `project_id` both set.
pub fn parse_create(
    kind: Kind,
    attrs: &[Attr],
    body: Value,
    who: Requester<'_>,
    rules: Rules,
) -> Result<Map<String, Value>> {
    let mut given = unwrap_envelope(kind, body)?;
    check_known(attrs, &given)?;
    let fields = ProjectFields {
        tenant_id: given.remove("tenant_id"),
        project_id: given.remove("project_id"),
    };
    let mut out = Map::new();
    for attr in attrs {
        let value = given.remove(attr.name);
        match (attr.post, value) {
            _ if matches!(attr.ty, AttrType::ProjectId) => {}
            (_, Some(_)) if !may_set(attr, who) => {
                return Err(Error::http_bad_request(format!(
                    "Attribute '{}' not allowed in POST",
                    attr.name
                )));
            }
            (Post::Required, None) => {
                return Err(Error::http_bad_request(format!(
                    "Failed to parse request. Required attribute '{}' not specified",
                    attr.name
                )));
            }
            (Post::Default(default), None) => {
                out.insert(attr.name.into(), default());
            }
            (_, Some(value)) => {
                out.insert(attr.name.into(), validate(attr, value, rules)?);
            }
            (_, None) => {}
        }
    }
    let project = owner(&fields, who)?;
    out.insert("tenant_id".into(), Value::String(project.clone()));
    out.insert("project_id".into(), Value::String(project));
    Ok(out)
}

/// Parses a PUT body: returns only the attributes given, validated.
pub fn parse_update(
    kind: Kind,
    attrs: &[Attr],
    body: Value,
    rules: Rules,
) -> Result<Map<String, Value>> {
    let given = unwrap_envelope(kind, body)?;
    check_known(attrs, &given)?;
    let mut out = Map::new();
    for attr in attrs {
        let Some(value) = given.get(attr.name) else {
            continue;
        };
        if !attr.put {
            return Err(Error::http_bad_request(format!(
                "Cannot update read-only attribute {}",
                attr.name
            )));
        }
        out.insert(attr.name.into(), validate(attr, value.clone(), rules)?);
    }
    Ok(out)
}

/// Applies validated PUT attributes to a stored object; dictionary attributes
/// (`lifetime`, `dpd`) merge key by key, as Neutron's partial updates do.
pub fn apply_update(stored: &mut Map<String, Value>, changes: Map<String, Value>) {
    for (key, value) in changes {
        match (stored.get_mut(&key), value) {
            (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
            (_, value) => {
                stored.insert(key, value);
            }
        }
    }
}

fn unwrap_envelope(kind: Kind, body: Value) -> Result<Map<String, Value>> {
    let missing = || {
        Error::http_bad_request(format!(
            "Unable to find '{}' in request body",
            kind.singular()
        ))
    };
    let Value::Object(mut outer) = body else {
        return Err(missing());
    };
    match outer.remove(kind.singular()) {
        Some(Value::Object(inner)) => Ok(inner),
        Some(_) => Err(Error::http_bad_request(format!(
            "Invalid format: '{}' must be an object",
            kind.singular()
        ))),
        None => Err(missing()),
    }
}

fn check_known(attrs: &[Attr], given: &Map<String, Value>) -> Result<()> {
    let unknown: Vec<&str> = given
        .keys()
        .filter(|k| !attrs.iter().any(|a| a.name == k.as_str()))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(Error::http_bad_request(format!(
        "Unrecognized attribute(s) '{}'",
        unknown.join(", ")
    )))
}

/// Whether the caller may give `attr` in a POST: [`Post::Forbidden`] never,
/// [`Post::AdminOnly`] administrators only, everything else anyone.
fn may_set(attr: &Attr, who: Requester<'_>) -> bool {
    match attr.post {
        Post::Forbidden => false,
        Post::AdminOnly => who.is_admin,
        Post::Required | Post::Default(_) | Post::Optional => true,
    }
}

struct ProjectFields {
    tenant_id: Option<Value>,
    project_id: Option<Value>,
}

fn owner(fields: &ProjectFields, who: Requester<'_>) -> Result<String> {
    let as_text = |v: &Option<Value>, name: &str| -> Result<Option<String>> {
        match v {
            None => Ok(None),
            Some(Value::String(s))
                if !s.is_empty()
                    && s.chars().count() <= grammar::MAX_LEN
                    && !s.chars().any(char::is_control) =>
            {
                Ok(Some(s.clone()))
            }
            Some(_) => Err(Error::invalid_attribute(
                name,
                "must be a non-empty string of at most 255 characters without control characters",
            )),
        }
    };
    let tenant = as_text(&fields.tenant_id, "tenant_id")?;
    let project = as_text(&fields.project_id, "project_id")?;
    let chosen = match (tenant, project) {
        (Some(t), Some(p)) if t != p => {
            return Err(Error::http_bad_request(
                "'project_id' and 'tenant_id' do not match",
            ));
        }
        (_, Some(p)) | (Some(p), None) => p,
        (None, None) => return Ok(who.project_id.to_string()),
    };
    if chosen != who.project_id && !who.is_admin {
        return Err(Error::http_bad_request(
            "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges",
        ));
    }
    Ok(chosen)
}
