//! Settings in layers, one mechanism for the server's and the agent's: built-in defaults,
//! then a TOML file, then what was given on the command line or in `VPNAAS_*` variables
//! (clap reads both; a flag wins over its variable). A layer sets only what it names.

use std::path::Path;

use anyhow::{Context, Result};
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// `defaults`, overlaid by `file` when given, overlaid by `given` (whose `None` fields
/// must be skipped when serialized, so they leave the layers below alone).
pub fn layered<T>(defaults: T, file: Option<&Path>, given: impl Serialize) -> Result<T>
where
    T: Serialize + DeserializeOwned,
{
    let mut figment = Figment::from(Serialized::defaults(defaults));
    if let Some(path) = file {
        anyhow::ensure!(
            path.is_file(),
            "cannot read {}: no such file",
            path.display()
        );
        figment = figment.merge(Toml::file_exact(path));
    }
    let which = file.map_or("the flags".to_string(), |p| p.display().to_string());
    figment
        .merge(Serialized::defaults(given))
        .extract()
        .with_context(|| format!("invalid settings in {which}"))
}

/// Asserts that every `[default: X]` in the help of `command`'s flags is the value of the
/// flag's setting in `defaults` (by the flag's name), so the help cannot drift from the
/// defaults in effect.
#[cfg(test)]
pub fn assert_help_shows(command: &clap::Command, defaults: &serde_json::Value) {
    let mut checked = 0;
    for arg in command.get_arguments() {
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        let Some((_, shown)) = help.split_once("[default: ") else {
            continue;
        };
        let shown = shown.trim_end_matches(['.', ']']);
        let key = arg.get_id().as_str();
        let actual = match setting(defaults, key, arg.get_long()) {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        assert_eq!(shown, actual, "--{key}");
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} defaults shown");
}

/// The default a flag stands for: the setting of its id, or for a flag of a table
/// (`--neutron-url`) the table's key (`neutron.url`).
#[cfg(test)]
fn setting<'a>(
    defaults: &'a serde_json::Value,
    id: &str,
    long: Option<&str>,
) -> &'a serde_json::Value {
    let top = &defaults[id];
    match long.and_then(|l| l.split_once('-')) {
        Some((table, key)) if top.is_null() => &defaults[table][key.replace('-', "_")],
        _ => top,
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Settings {
        listen: String,
        seconds: u64,
        nested: Nested,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Nested {
        root: String,
        interval: f64,
    }

    impl Default for Settings {
        fn default() -> Self {
            Settings {
                listen: "127.0.0.1:9696".into(),
                seconds: 75,
                nested: Nested::default(),
            }
        }
    }

    impl Default for Nested {
        fn default() -> Self {
            Nested {
                root: "/".into(),
                interval: 5.0,
            }
        }
    }

    #[derive(Serialize)]
    struct Given {
        #[serde(skip_serializing_if = "Option::is_none")]
        seconds: Option<u64>,
    }

    #[test]
    fn each_layer_sets_only_what_it_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("settings.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:1\"\nseconds = 5\n[nested]\nroot = \"/opt\"\n",
        )
        .expect("write");
        let none = Given { seconds: None };
        assert_eq!(
            layered(Settings::default(), None, &none).expect("defaults"),
            Settings::default()
        );
        let from_file = layered(Settings::default(), Some(&file), &none).expect("file");
        assert_eq!(
            (
                from_file.listen.as_str(),
                from_file.seconds,
                from_file.nested.root.as_str()
            ),
            ("0.0.0.0:1", 5, "/opt")
        );
        assert_eq!(
            from_file.nested.interval, 5.0,
            "a nested default the file leaves"
        );
        let flagged = layered(Settings::default(), Some(&file), Given { seconds: Some(9) });
        assert_eq!(flagged.expect("flags").seconds, 9);
    }

    #[test]
    fn unknown_keys_and_missing_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("settings.toml");
        std::fs::write(&file, "listne = \"0.0.0.0:1\"\n").expect("write");
        let none = Given { seconds: None };
        let typo = layered(Settings::default(), Some(&file), &none).expect_err("typo");
        assert!(format!("{typo:#}").contains("listne"), "{typo:#}");
        let missing = dir.path().join("absent.toml");
        assert!(layered(Settings::default(), Some(&missing), &none).is_err());
    }
}
