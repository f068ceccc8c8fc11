//! `vpnaas site-connection peer-config ID [--format F] [--include-secret]`: the
//! configuration of a connection's far end, printed as the server wrote it (redirect it
//! to a file), or the list of formats without `--format`. There, `--format` names the
//! device's language: it is read as `--config-format` (the global `-f/--format` is the
//! output format of every other command; `-f` still is).

use std::ffi::OsString;

use anyhow::Result;
use clap::{Arg, ArgAction, ArgMatches, Command};
use vpnaas_client::Client;
use vpnaas_model::Kind;

use crate::output::{self, Format};

/// `site-connection peer-config ID --format F [--include-secret]`: the far end's
/// configuration, printed as the server wrote it (or the formats, without `--format`).
pub fn command(target: &Arg) -> Command {
    Command::new("peer-config")
        .about("Print the configuration of the connection's far end, for its device")
        .arg(target.clone())
        .arg(
            Arg::new("config-format")
                .long("config-format")
                .value_name("FORMAT").help(
                "strongswan, libreswan, vyos, cisco-ios or juniper-srx (list them when absent); `--format` here means this",
            ),
        )
        .arg(
            Arg::new("include-secret")
                .long("include-secret")
                .action(ArgAction::SetTrue)
                .help("write the pre-shared key into it (a placeholder otherwise)"),
        )
}

/// Runs it for connection `id`.
pub async fn run(client: &Client, format: Format, id: &str, args: &ArgMatches) -> Result<String> {
    let include_secret = args.get_flag("include-secret");
    match args.get_one::<String>("config-format") {
        Some(name) => Ok(client
            .peer_config(id, name, include_secret)
            .await?
            .trim_end()
            .to_string()),
        None => {
            let body = client
                .get(&format!(
                    "/v2.0/{}/{id}/peer-config",
                    Kind::SiteConnection.path()
                ))
                .await?;
            let formats = body["peer_config_formats"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            Ok(output::list(
                format,
                &formats,
                &["name", "files", "description"],
            ))
        }
    }
}

/// The command line with `--format` after `peer-config` read as `--config-format`.
pub fn with_format_alias(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut after = false;
    args.into_iter()
        .map(|arg| {
            if arg == "peer-config" {
                after = true;
            }
            match arg.to_str() {
                Some("--format") if after => OsString::from("--config-format"),
                Some(text) if after && text.starts_with("--format=") => {
                    OsString::from(text.replacen("--format=", "--config-format=", 1))
                }
                _ => arg,
            }
        })
        .collect()
}
