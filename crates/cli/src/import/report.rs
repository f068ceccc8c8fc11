//! What an import did with each object, and how it is shown: a table and a summary line
//! for people, one JSON document for programs. Never a secret: differing attributes are
//! named, never shown, and reasons are vpnaas's own messages, which quote no secret.

use serde::Serialize;
use serde_json::Value;
use vpnaas_model::Kind;

use crate::output::{self, Format};

/// What happened to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Created in vpnaas with Neutron's id, project and attributes.
    Created,
    /// vpnaas already held it, with the same attributes.
    Unchanged,
    /// vpnaas held it with other values, which a PUT changed to Neutron's.
    Updated,
    /// vpnaas holds it with values no PUT may change (e.g. another project): left as is.
    Differs,
    /// vpnaas refused it.
    Refused,
}

impl Outcome {
    /// Whether the object is not in vpnaas as it is in Neutron after the import.
    pub fn failed(self) -> bool {
        matches!(self, Outcome::Differs | Outcome::Refused)
    }
}

/// One object's line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// `ikepolicy`, `ipsec_site_connection`, …
    pub kind: &'static str,
    /// Its id (the same in both).
    pub id: String,
    /// Its name in Neutron.
    pub name: String,
    /// Its project in Neutron.
    pub project_id: String,
    /// What happened.
    pub outcome: Outcome,
    /// The attributes that differed (updated or left as is).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<String>,
    /// Why it was refused or left as is (vpnaas's message when it refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Entry {
    /// An entry for a Neutron object of `kind`.
    pub fn new(kind: Kind, neutron: &Value, outcome: Outcome) -> Entry {
        let text = |key: &str| neutron[key].as_str().unwrap_or_default().to_string();
        Entry {
            kind: kind.singular(),
            id: text("id"),
            name: text("name"),
            project_id: text("project_id"),
            outcome,
            attributes: Vec::new(),
            reason: None,
        }
    }
}

/// The whole report.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Counts by outcome.
    pub summary: Summary,
    /// Every object read from Neutron, in the order imported.
    pub objects: Vec<Entry>,
}

/// How many objects had each outcome.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// See [`Outcome::Created`].
    pub created: usize,
    /// See [`Outcome::Unchanged`].
    pub unchanged: usize,
    /// See [`Outcome::Updated`].
    pub updated: usize,
    /// See [`Outcome::Differs`].
    pub differs: usize,
    /// See [`Outcome::Refused`].
    pub refused: usize,
}

impl Report {
    /// Adds an object's entry.
    pub fn push(&mut self, entry: Entry) {
        let count = match entry.outcome {
            Outcome::Created => &mut self.summary.created,
            Outcome::Unchanged => &mut self.summary.unchanged,
            Outcome::Updated => &mut self.summary.updated,
            Outcome::Differs => &mut self.summary.differs,
            Outcome::Refused => &mut self.summary.refused,
        };
        *count += 1;
        self.objects.push(entry);
    }

    /// Whether an object is not in vpnaas as it is in Neutron.
    pub fn failed(&self) -> bool {
        self.objects.iter().any(|e| e.outcome.failed())
    }

    /// Whether the object `id` of `kind` was refused or left differing.
    pub fn failed_object(&self, kind: Kind, id: &str) -> bool {
        self.objects
            .iter()
            .any(|e| e.kind == kind.singular() && e.id == id && e.outcome.failed())
    }

    /// The report as `format` asks: JSON, or a table and a summary line.
    pub fn render(&self, format: Format) -> String {
        if format == Format::Json {
            return serde_json::to_string_pretty(self).unwrap_or_default();
        }
        let rows: Vec<Value> = self
            .objects
            .iter()
            .map(|entry| {
                let mut row = serde_json::to_value(entry).unwrap_or_default();
                row["attributes"] = Value::String(entry.attributes.join(", "));
                row
            })
            .collect();
        let columns = [
            "kind",
            "id",
            "name",
            "project_id",
            "outcome",
            "attributes",
            "reason",
        ];
        let s = &self.summary;
        format!(
            "{}\n{} created, {} unchanged, {} updated, {} differ and were left as they are, {} refused",
            output::list(format, &rows, &columns),
            s.created,
            s.unchanged,
            s.updated,
            s.differs,
            s.refused
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entry(outcome: Outcome) -> Entry {
        let neutron = json!({"id": "i1", "name": "n", "project_id": "p", "psk": "secret"});
        Entry::new(Kind::SiteConnection, &neutron, outcome)
    }

    #[test]
    fn refusals_and_differences_fail_the_import_and_are_counted() {
        let mut report = Report::default();
        report.push(entry(Outcome::Created));
        report.push(entry(Outcome::Unchanged));
        assert!(!report.failed());
        let mut refused = entry(Outcome::Refused);
        refused.reason = Some("Invalid input for name.".into());
        report.push(refused);
        assert!(report.failed());
        assert!(report.failed_object(Kind::SiteConnection, "i1"));
        assert!(!report.failed_object(Kind::IkePolicy, "i1"));
        let json: Value = serde_json::from_str(&report.render(Format::Json)).expect("json");
        assert_eq!(json["summary"]["refused"], 1);
        assert_eq!(json["summary"]["created"], 1);
        assert_eq!(json["objects"][2]["reason"], "Invalid input for name.");
        assert_eq!(json["objects"][0]["kind"], "ipsec_site_connection");
        let text = report.render(Format::Table);
        assert!(
            text.ends_with(
                "1 created, 1 unchanged, 0 updated, 0 differ and were left as they are, 1 refused"
            ),
            "{text}"
        );
        assert!(!text.contains("secret"));
    }
}
