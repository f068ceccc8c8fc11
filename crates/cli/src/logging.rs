//! Where the binary's logs go. Every command logs to stderr (`VPNAAS_LOG` filters, `info`
//! by default; colours only on a terminal). `vpnaas demo` is the exception: its terminal
//! shows its timeline, so the logs of its server and agents go to a file, and only
//! warnings and errors to the terminal as well.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

fn filter() -> EnvFilter {
    EnvFilter::try_from_env("VPNAAS_LOG").unwrap_or_else(|_| "info".into())
}

/// Logs to stderr.
pub fn to_terminal() {
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Logs to the file at `path` (created anew, no colours), and warnings and errors to
/// stderr as well.
pub fn to_file(path: &Path) -> Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot create the log file {}", path.display()))?;
    let to_file = tracing_subscriber::fmt::layer()
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_filter(filter());
    let to_terminal = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(LevelFilter::WARN);
    tracing_subscriber::registry()
        .with(to_file)
        .with(to_terminal)
        .try_init()
        .context("logging was set up already")
}
