//! Starting a router's pluto (its directories, an empty configuration, an NSS database)
//! and following it: pluto has no event stream, so its log is read every quarter second
//! and its status every `status_interval`, and a change wakes the agent. Its exit is the supervisor's to watch.

use std::path::Path;
use std::time::Duration;

use super::{Control, LibreswanConfig, Pluto, SharedFailures, Whack, connections, status};
use crate::supervisor::Task;
use crate::{Error, Result, command};

/// Makes pluto's directories and files for a fresh start and returns the command that
/// runs it in `namespace`.
pub(super) async fn command(
    config: &LibreswanConfig,
    namespace: &str,
    dir: &Path,
) -> Result<tokio::process::Command> {
    for sub in ["run", "nss", "ipsec.d"] {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path).map_err(Error::file(&path))?;
    }
    for stale in ["run/pluto.ctl", "run/pluto.pid", "pluto.log"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    connections::write_private(&dir.join("ipsec.conf"), &super::conf::render(&[]))?;
    connections::write_private(&dir.join("ipsec.secrets"), "")?;
    if !dir.join("nss/cert9.db").exists() {
        let nss = format!("sql:{}", dir.join("nss").display());
        command::run("certutil", &["-N", "-d", &nss, "--empty-password"]).await?;
    }
    let path = |p: &str| dir.join(p).to_string_lossy().into_owned();
    // pluto runs addconn from the fixed /usr/libexec/ipsec: bind the Libreswan root's
    // there, in this process's private mount namespace only.
    let mut command = tokio::process::Command::new("ip");
    command
        .args(["netns", "exec", namespace, "sh", "-c"])
        .arg(
            "mount --bind \"$0\" /usr/libexec && exec \"$1\" --nofork --config \"$2\" \
             --rundir \"$3\" --dumpdir \"$3\" --nssdir \"$4\" --ipsecdir \"$5\" \
             --secretsfile \"$6\" --logfile \"$7\"",
        )
        .arg(config.root.join("usr/libexec"))
        .arg(config.tool("pluto"))
        .args([
            path("ipsec.conf"),
            path("run"),
            path("nss"),
            path("ipsec.d"),
            path("ipsec.secrets"),
            path("pluto.log"),
        ]);
    Ok(command)
}

/// Checks the router's pluto answers on its control socket and starts following it.
pub(super) async fn attach(pluto: &Pluto, router_id: &str, dir: &Path) -> Result<Control> {
    let whack = Whack {
        tool: pluto.config.tool("whack"),
        socket: dir.join("run/pluto.ctl"),
    };
    whack.run(&["--status"]).await?;
    let failures = SharedFailures::default();
    let watcher = watch(pluto, router_id, dir, whack.clone(), failures.clone());
    Ok(Control {
        dir: dir.to_path_buf(),
        whack,
        failures,
        _watcher: watcher,
    })
}

/// How often pluto's log is read for verdicts: a peer declared dead (or any failure) is
/// reported this soon, not a whole `status_interval` later. Reading the log's new bytes is
/// cheap; asking pluto for its status is not, so that waits for `status_interval` or a
/// verdict.
const LOG_INTERVAL: Duration = Duration::from_millis(250);

/// Wakes the agent when pluto's status or its log's verdicts change (the log read every
/// [`LOG_INTERVAL`], the status every `status_interval` and after each verdict).
fn watch(
    pluto: &Pluto,
    router_id: &str,
    dir: &Path,
    whack: Whack,
    failures: SharedFailures,
) -> Task {
    let (wake, router) = (pluto.wake.clone(), router_id.to_string());
    let interval = Duration::from_secs_f64(pluto.config.status_interval.max(0.1));
    let log = dir.join("pluto.log");
    Task::spawn(async move {
        let mut last = String::new();
        // The whole log of this pluto (an adopted one's too): its verdicts still hold
        // until a child SA comes up.
        let mut offset = 0;
        let mut status_read = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(LOG_INTERVAL.min(interval)).await;
            let learnt = status::learn_from_log(&log, &mut offset, &failures);
            if !learnt && status_read.elapsed() < interval {
                continue;
            }
            status_read = tokio::time::Instant::now();
            let now = status::read(&whack).await.unwrap_or_default();
            if learnt || now != last {
                last = now;
                let _ = wake.send(router.clone());
            }
        }
    })
}
