//! Output formats of the client commands: `table` for people, `json` for programs,
//! `value` for shell scripts.

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use serde_json::Value;

/// Chosen with `-f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table.
    Table,
    /// Pretty JSON.
    Json,
    /// Bare values, one object per line.
    Value,
}

/// A value as one cell: strings bare, everything else compact JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// Renders one object.
pub fn object(format: Format, item: &Value) -> String {
    let fields: Vec<(&String, &Value)> = item
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    match format {
        Format::Json => serde_json::to_string_pretty(item).unwrap_or_default(),
        Format::Value => fields
            .iter()
            .map(|(_, v)| cell(v))
            .collect::<Vec<_>>()
            .join("\n"),
        Format::Table => {
            let mut table = new_table(&["Field", "Value"]);
            for (key, value) in fields {
                table.add_row(vec![key.clone(), cell(value)]);
            }
            table.to_string()
        }
    }
}

/// Renders a list with the given columns.
pub fn list(format: Format, items: &[Value], columns: &[&str]) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(items).unwrap_or_default(),
        Format::Value => items
            .iter()
            .map(|item| {
                columns
                    .iter()
                    .map(|c| cell(&item[*c]))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Format::Table => {
            let mut table = new_table(columns);
            for item in items {
                table.add_row(columns.iter().map(|c| cell(&item[*c])).collect::<Vec<_>>());
            }
            table.to_string()
        }
    }
}

fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    table
}
