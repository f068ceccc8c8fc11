//! Neutron's tag API on networks, subnets and routers (`standard-attr-tag`):
//! `/v2.0/{resource}/{id}/tags[/{tag}]` to read, replace, add and remove tags. Tags are
//! stored with the resource; every change bumps its revision, as any update does.

use serde_json::Value;
use vpnaas_model::FaultKind;
use vpnaas_model::attr::plain;
use vpnaas_model::network::{Network, Router, Subnet};
use vpnaas_model::standard_attr::HasStandardAttrs;
use vpnaas_model::{Error as Fault, Kind, Resource, grammar};

use super::{Stored, fetch, notify, timestamp, touched_by};
use crate::App;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

/// A change to a resource's tags.
#[derive(Debug)]
pub enum TagChange {
    /// `PUT …/tags` with `{"tags": [...]}`: replace them all.
    Replace(Value),
    /// `PUT …/tags/{tag}`: add one.
    Add(String),
    /// `DELETE …/tags/{tag}`: remove one (`TagNotFound` when absent).
    Remove(String),
    /// `DELETE …/tags`: remove them all.
    Clear,
}

/// Whether a kind carries tags.
pub fn taggable(kind: Kind) -> bool {
    matches!(kind, Kind::Network | Kind::Subnet | Kind::Router)
}

/// The tags of a resource the caller may see.
pub async fn tags(app: &App, caller: &Caller, kind: Kind, id: &str) -> ApiResult<Vec<String>> {
    let item = super::show(app, caller, kind, id).await?;
    Ok(serde_json::from_value(item["tags"].clone())?)
}

/// `TagNotFound` unless the resource carries the tag.
pub async fn check_tag(
    app: &App,
    caller: &Caller,
    kind: Kind,
    id: &str,
    tag: &str,
) -> ApiResult<()> {
    if tags(app, caller, kind, id).await?.iter().any(|t| t == tag) {
        Ok(())
    } else {
        Err(tag_not_found(tag))
    }
}

/// Applies a tag change to a resource the caller owns; returns the tags as given
/// (Neutron echoes the request).
pub async fn change(
    app: &App,
    caller: &Caller,
    kind: Kind,
    id: &str,
    change: TagChange,
) -> ApiResult<Vec<String>> {
    caller.require_write(&format!("update_{}", kind.policy_target()))?;
    match kind {
        Kind::Network => apply::<Network>(app, caller, id, change).await,
        Kind::Subnet => apply::<Subnet>(app, caller, id, change).await,
        Kind::Router => apply::<Router>(app, caller, id, change).await,
        // No tag route is made for other kinds (see `taggable`).
        _ => Err(Fault::resource_not_found(kind, id).into()),
    }
}

async fn apply<R: Resource + HasStandardAttrs + Into<Stored>>(
    app: &App,
    caller: &Caller,
    id: &str,
    change: TagChange,
) -> ApiResult<Vec<String>> {
    let mut tx = app.store.begin().await?;
    let mut resource: R = fetch(tx.as_mut(), caller, id).await?;
    let mut tags = resource.standard().tags.clone();
    let answer = match change {
        TagChange::Replace(body) => {
            tags = replacement(&body)?;
            tags.clone()
        }
        TagChange::Add(tag) => {
            check_tag_text(&tag)?;
            if !tags.contains(&tag) {
                tags.push(tag.clone());
            }
            vec![tag]
        }
        TagChange::Remove(tag) => {
            let before = tags.len();
            tags.retain(|t| *t != tag);
            if tags.len() == before {
                return Err(tag_not_found(&tag));
            }
            vec![]
        }
        TagChange::Clear => {
            tags.clear();
            vec![]
        }
    };
    resource.standard_mut().set_tags(tags, &timestamp());
    let stored: Stored = resource.into();
    stored.save(tx.as_mut()).await?;
    let touched = touched_by(tx.as_mut(), &stored).await?;
    tx.commit().await?;
    notify::notify(app, touched);
    Ok(answer)
}

/// The tags of a `{"tags": [...]}` body, validated as Neutron does.
fn replacement(body: &Value) -> ApiResult<Vec<String>> {
    let invalid = |why: String| ApiError::from(Fault::conversion(why));
    let list = body
        .as_object()
        .filter(|b| b.len() == 1)
        .and_then(|b| b.get("tags"))
        .ok_or_else(|| invalid("Invalid tags body".into()))?;
    let Value::Array(items) = list else {
        return Err(invalid(format!("'{}' is not a list", plain(list))));
    };
    let mut tags: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let tag = item
            .as_str()
            .ok_or_else(|| invalid(format!("'{}' is not a valid string", plain(item))))?;
        if tags.iter().any(|t| t == tag) {
            return Err(invalid(format!("Duplicate items in the list: '{tag}'")));
        }
        check_tag_text(tag)?;
        tags.push(tag.to_string());
    }
    Ok(tags)
}

fn check_tag_text(tag: &str) -> ApiResult<()> {
    grammar::check_len(tag).map_err(|why| Fault::conversion(why).into())
}

fn tag_not_found(tag: &str) -> ApiError {
    Fault::not_found(
        FaultKind::TagNotFound,
        format!("Tag {tag} could not be found."),
    )
    .into()
}
