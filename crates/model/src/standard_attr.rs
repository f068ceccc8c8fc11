//! Neutron's standard attributes, which networks, subnets and routers carry beside their
//! own: `tags`, `created_at`, `updated_at` and `revision_number`. The server sets them;
//! no POST or PUT body may (tags change through `/v2.0/{resource}/{id}/tags`).

use serde::{Deserialize, Serialize};

/// What records stored before standard attributes existed report as their creation
/// and last update: the time is unknown, and Neutron never renders a null timestamp.
pub const UNKNOWN_TIME: &str = "1970-01-01T00:00:00Z";

fn unknown_time() -> String {
    UNKNOWN_TIME.to_string()
}

/// The standard attributes of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandardAttrs {
    /// Free-form labels, kept sorted (Neutron returns them in name order).
    #[serde(default)]
    pub tags: Vec<String>,
    /// When the resource was created (RFC 3339, seconds, UTC: `2026-12-03T08:00:00Z`).
    #[serde(default = "unknown_time")]
    pub created_at: String,
    /// When the resource last changed.
    #[serde(default = "unknown_time")]
    pub updated_at: String,
    /// Bumped by every change to the resource. A router's is also bumped by every change
    /// its agent must apply (its VPN services and connections); agents report the
    /// revision they applied.
    #[serde(default)]
    pub revision_number: u64,
}

impl StandardAttrs {
    /// The attributes of a resource created at `now`.
    pub fn new(now: &str) -> Self {
        StandardAttrs {
            tags: Vec::new(),
            created_at: now.to_string(),
            updated_at: now.to_string(),
            revision_number: 0,
        }
    }

    /// Records a change made at `now`.
    pub fn touch(&mut self, now: &str) {
        self.updated_at = now.to_string();
        self.revision_number += 1;
    }

    /// Replaces the tags (sorted, as Neutron lists them); records the change.
    pub fn set_tags(&mut self, mut tags: Vec<String>, now: &str) {
        tags.sort();
        self.tags = tags;
        self.touch(now);
    }
}

/// Resources that carry standard attributes.
pub trait HasStandardAttrs {
    /// Its standard attributes.
    fn standard(&self) -> &StandardAttrs;
    /// Its standard attributes, to change.
    fn standard_mut(&mut self) -> &mut StandardAttrs;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_without_standard_attributes_decode_with_unknown_times() {
        let attrs: StandardAttrs = serde_json::from_str("{}").expect("decodes");
        assert_eq!(attrs.created_at, UNKNOWN_TIME);
        assert_eq!(attrs.updated_at, UNKNOWN_TIME);
        assert_eq!((attrs.tags.len(), attrs.revision_number), (0, 0));
    }

    #[test]
    fn a_change_bumps_the_revision_and_the_update_time() {
        let mut attrs = StandardAttrs::new("2026-12-03T08:00:00Z");
        attrs.set_tags(vec!["b".into(), "a".into()], "2026-12-03T09:00:00Z");
        assert_eq!(attrs.tags, ["a", "b"]);
        assert_eq!(attrs.created_at, "2026-12-03T08:00:00Z");
        assert_eq!(attrs.updated_at, "2026-12-03T09:00:00Z");
        assert_eq!(attrs.revision_number, 1);
    }
}
