//! Running the host tools the agent drives (`ip`, `nft`, `sysctl`). Namespace changes
//! happen only in these child processes (`ip -n` / `ip netns exec`), never in the agent's
//! own threads. Arguments are passed as a vector, never through a shell.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::{Error, Result};

/// Runs a program; fails with its stderr when it exits non-zero.
pub async fn run(program: &str, args: &[&str]) -> Result<String> {
    run_with_input(program, args, None).await
}

/// Runs a program with `input` on its standard input.
pub async fn run_with_input(program: &str, args: &[&str], input: Option<&str>) -> Result<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Command(format!("{program}: {e}")))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| Error::Command(format!("{program}: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| Error::Command(format!("{program}: {e}")))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(Error::Command(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Runs a program, treating "already exists" as success (idempotent creation).
pub async fn run_idempotent(program: &str, args: &[&str]) -> Result<()> {
    match run(program, args).await {
        Ok(_) => Ok(()),
        Err(Error::Command(message))
            if message.contains("File exists") || message.contains("already exists") =>
        {
            Ok(())
        }
        Err(other) => Err(other),
    }
}

/// Runs a deletion, treating "already gone" as success (idempotent removal, and removal
/// racing another remover).
pub async fn run_removal(program: &str, args: &[&str]) -> Result<()> {
    match run(program, args).await {
        Ok(_) => Ok(()),
        Err(Error::Command(message))
            if message.contains("Cannot find device") || message.contains("No such file") =>
        {
            Ok(())
        }
        Err(other) => Err(other),
    }
}

/// Starts a program and lets it finish in the background (a task waits for it and logs a
/// failure): for announcements that must not hold up a reconcile.
pub fn run_in_background(program: &str, args: &[&str]) {
    let program = program.to_string();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::spawn(async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if let Err(error) = run(&program, &args).await {
            tracing::warn!(%error, "background command failed");
        }
    });
}
