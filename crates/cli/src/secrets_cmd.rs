//! `vpnaas secrets rotate-key`: replaces the key that seals the pre-shared keys in the
//! database, with the server's own settings (`--config`, `--data-dir`, `--database-url`,
//! `--secret-key-file`), so it finds the database and key file the server uses.

use anyhow::{Context, Result};
use clap::{ArgMatches, Command, FromArgMatches};
use vpnaas_store::SqlStore;

use crate::serve::ServerArgs;

/// What `rotate-key --help` says.
const ROTATE_ABOUT: &str = "Seal every secret (PSK) in the database under a new key and retire \
the old one. The new key is put first in the key file (the old one kept), every secret is sealed \
again under it in one transaction that also records it as the database's key, and the old key \
then leaves the file. Servers sharing this key file follow at their next read or write; servers \
on other hosts need the new file copied to them (until then they refuse to write secrets). \
Interrupted, it leaves the file with both keys: run it again, or start a server, to finish.";

/// The `secrets` command and its subcommands.
pub fn command() -> Command {
    Command::new("secrets")
        .about("Manage the key that seals secrets in the database")
        .subcommand_required(true)
        .subcommand(
            crate::command_with::<ServerArgs>(
                "rotate-key",
                "Re-seal every secret under a new key and retire the old one",
            )
            .long_about(ROTATE_ABOUT),
        )
}

/// Runs a subcommand; the result is the closing line.
pub async fn run(args: &ArgMatches) -> Result<String> {
    let Some(("rotate-key", args)) = args.subcommand() else {
        anyhow::bail!("missing secrets command")
    };
    let settings = ServerArgs::from_arg_matches(args)?.settings()?;
    let key_file = settings.secret_key_file();
    let rotation = SqlStore::rotate_key(&key_file, &settings.database_url())
        .await
        .with_context(|| format!("cannot rotate the key in {}", key_file.display()))?;
    Ok(format!(
        "secrets sealed under key {} ({} records sealed again); retired key(s) {}; key file {}",
        rotation.new_key,
        rotation.resealed,
        rotation.retired.join(", "),
        key_file.display()
    ))
}
