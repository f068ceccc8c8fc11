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

/// A value in `value` output: strings bare, lists of strings joined, everything else
/// compact JSON (what scripts parse).
fn value_cell(value: &Value) -> String {
    match value {
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        Value::String(_) | Value::Null => scalar(value),
        other => other.to_string(),
    }
}

/// A value in a table cell, for people. Scalars bare; a list of scalars on one line
/// (`a, b`), and so is an object of scalars (`key=value, …`, as `create` and `set` take
/// it). Anything deeper one line per key (`key=value`, or `key:` with its value indented
/// below), the objects of a list each starting with `- `.
fn table_cell(value: &Value) -> String {
    match value {
        Value::Object(fields) if fields.values().all(is_scalar) => fields
            .iter()
            .map(|(key, v)| format!("{key}={}", scalar(v)))
            .collect::<Vec<_>>()
            .join(", "),
        deep if !is_one_line(deep) => lines(deep, 0).join("\n"),
        one_line => inline(one_line),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

/// A scalar or a list of scalars.
fn is_one_line(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().all(is_scalar),
        Value::Object(_) => false,
        _ => true,
    }
}

fn inline(value: &Value) -> String {
    match value {
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(", "),
        other => scalar(other),
    }
}

/// An object or list, one line per key or item, indented by `indent` spaces.
fn lines(value: &Value, indent: usize) -> Vec<String> {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(fields) => fields
            .iter()
            .flat_map(|(key, v)| {
                if is_one_line(v) {
                    vec![format!("{pad}{key}={}", inline(v))]
                } else {
                    std::iter::once(format!("{pad}{key}:"))
                        .chain(lines(v, indent + 2))
                        .collect()
                }
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .flat_map(|item| list_item(item, indent))
            .collect(),
        one_line => vec![format!("{pad}{}", inline(one_line))],
    }
}

/// An item of a list: its first line marked `- `, the others aligned with it.
fn list_item(item: &Value, indent: usize) -> Vec<String> {
    let mut item_lines = if is_one_line(item) {
        vec![format!("{}{}", " ".repeat(indent + 2), inline(item))]
    } else {
        lines(item, indent + 2)
    };
    if let Some(first) = item_lines.first_mut() {
        first.replace_range(indent..indent + 2, "- ");
    }
    item_lines
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
            .map(|(_, v)| value_cell(v))
            .collect::<Vec<_>>()
            .join("\n"),
        Format::Table => {
            let mut table = new_table(&["Field", "Value"]);
            for (key, value) in fields {
                table.add_row(vec![key.clone(), table_cell(value)]);
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
                    .map(|c| value_cell(&item[*c]))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Format::Table => {
            let mut table = new_table(columns);
            for item in items {
                table.add_row(
                    columns
                        .iter()
                        .map(|c| table_cell(&item[*c]))
                        .collect::<Vec<_>>(),
                );
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_of_scalars_is_one_line_of_key_value_pairs() {
        let dpd = json!({"action": "hold", "interval": 30, "timeout": 120});
        assert_eq!(table_cell(&dpd), "action=hold, interval=30, timeout=120");
        assert_eq!(table_cell(&json!(["10.2.0.0/24", 7])), "10.2.0.0/24, 7");
        assert_eq!(table_cell(&Value::Null), "");
    }

    #[test]
    fn deeper_values_are_one_line_per_key_and_list_items_are_marked() {
        let gateway = json!({
            "network_id": "n1",
            "enable_snat": true,
            "external_fixed_ips": [
                {"subnet_id": "s1", "ip_address": "203.0.113.2"},
                {"subnet_id": "s2", "ip_address": "2001:db8::2"}
            ]
        });
        assert_eq!(
            table_cell(&gateway),
            "network_id=n1\nenable_snat=true\nexternal_fixed_ips:\n  - subnet_id=s1\n    ip_address=203.0.113.2\n  - subnet_id=s2\n    ip_address=2001:db8::2"
        );
        let nested_lists = json!([{"a": [{"b": 1}]}, ["x"]]);
        assert_eq!(table_cell(&nested_lists), "- a:\n    - b=1\n- x");
    }

    #[test]
    fn value_output_stays_compact_json() {
        let row = json!({"dpd": {"action": "hold"}, "peer_cidrs": ["10.2.0.0/24"]});
        assert_eq!(
            object(Format::Value, &row),
            "{\"action\":\"hold\"}\n10.2.0.0/24"
        );
    }
}
