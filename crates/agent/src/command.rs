//! Running the host tools the agent drives (`ip`, `nft`, `sysctl`). Namespace changes
//! happen only in these child processes (`ip -n` / `ip netns exec`), never in the agent's
//! own threads. Arguments are passed as a vector, never through a shell. A creation or
//! deletion that may race another agent is judged by asking the system afterwards
//! whether the thing is there ([`create`], [`delete`]), not by reading the tool's words.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::{Error, Result};

/// Runs a program; fails with its exit status and stderr when it exits non-zero.
pub async fn run(program: &str, args: &[&str]) -> Result<String> {
    run_with_input(program, args, None).await
}

/// Runs a program with `input` on its standard input.
pub async fn run_with_input(program: &str, args: &[&str], input: Option<&str>) -> Result<String> {
    let spawn_error = |source| Error::Spawn {
        program: program.to_string(),
        source,
    };
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
        .map_err(spawn_error)?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(spawn_error)?;
    }
    let output = child.wait_with_output().await.map_err(spawn_error)?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(Error::Command {
            command: format!("{program} {}", args.join(" ")),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// Runs a creation another process may have made first: its failure is no failure when
/// `exists` (asked only then) finds the thing there.
pub async fn create<F: Future<Output = bool>>(
    program: &str,
    args: &[&str],
    exists: impl FnOnce() -> F,
) -> Result<()> {
    match run(program, args).await {
        Err(error) if !exists().await => Err(error),
        _ => Ok(()),
    }
}

/// Runs a deletion another process may have made first (or that went with what held the
/// thing): its failure is no failure when `gone` (asked only then) finds it gone.
pub async fn delete<F: Future<Output = bool>>(
    program: &str,
    args: &[&str],
    gone: impl FnOnce() -> F,
) -> Result<()> {
    match run(program, args).await {
        Err(error) if !gone().await => Err(error),
        _ => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failure_keeps_the_exit_status_and_the_tools_words() {
        let error = run("sh", &["-c", "echo no >&2; exit 3"])
            .await
            .expect_err("exit 3");
        match &error {
            Error::Command {
                command,
                status,
                stderr,
            } => {
                assert_eq!(
                    (command.as_str(), status.code(), stderr.as_str()),
                    ("sh -c echo no >&2; exit 3", Some(3), "no")
                );
            }
            other => panic!("not a command failure: {other:?}"),
        }
        assert!(matches!(
            run("/nonexistent/tool", &[]).await,
            Err(Error::Spawn { .. })
        ));
    }

    #[tokio::test]
    async fn a_racing_creation_or_deletion_is_judged_by_what_is_there() {
        let dir = tempfile::tempdir().expect("dir");
        let made = dir.path().join("made");
        let path = made.to_string_lossy().into_owned();
        let there = || async { made.exists() };
        create("mkdir", &[&path], there).await.expect("created");
        create("mkdir", &[&path], there)
            .await
            .expect("made already: fine");
        assert!(
            create("mkdir", &["/nonexistent/x"], || async { false })
                .await
                .is_err(),
            "a creation that failed and left nothing fails"
        );
        let gone = || async { !made.exists() };
        delete("rmdir", &[&path], gone).await.expect("deleted");
        delete("rmdir", &[&path], gone)
            .await
            .expect("gone already: fine");
    }
}
