//! Daemons a test starts, each as the leader of a process group of its own, so that
//! dropping the guard ends the daemon and every process it forked (uWSGI's workers,
//! say) by that one id — and nothing else on the machine.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running process group this test started; killed (SIGKILL to the group) on drop.
pub struct Group {
    child: Child,
    name: String,
    ended: bool,
}

impl Group {
    /// Spawns `command` in a new process group, stdout and stderr appended to `log`.
    ///
    /// # Panics
    /// When the program cannot be started.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Group {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(log).expect("daemon log file");
        let err = out.try_clone().expect("daemon log file");
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({e}): run scripts/setup.sh"));
        Group {
            child,
            name: name.into(),
            ended: false,
        }
    }

    /// The leader's pid, which is also the group's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the leader has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Asks the leader to stop (SIGTERM) and waits for it: a clean shutdown, for
    /// daemons whose data is kept (a template's database).
    pub fn terminate(mut self) {
        signal("-TERM", &self.pid().to_string());
        let status = self.child.wait();
        assert!(
            status.as_ref().is_ok_and(|s| s.success()),
            "{} did not stop cleanly: {status:?}",
            self.name
        );
        self.kill_group();
    }

    /// Kills the group now (SIGKILL) and reaps its leader, rather than on drop.
    pub fn kill(&mut self) {
        self.kill_group();
    }

    /// Once only: after the group is gone its id may be another's.
    fn kill_group(&mut self) {
        if !std::mem::replace(&mut self.ended, true) {
            signal("-KILL", &format!("-{}", self.pid()));
            let _ = self.child.wait();
        }
    }
}

/// Sends a signal with procps' `kill`, which takes a negative id for a whole group.
fn signal(signal: &str, target: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", target])
        .stderr(Stdio::null())
        .status();
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill_group();
    }
}
