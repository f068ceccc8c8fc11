//! Where a network node runs: the machine itself (`hostA`), or a simulated second host
//! (`hostC`) on the same kernel — a network namespace of its own (its own devices,
//! loopback and routes) and a private mount namespace with its own `/run/netns` (so its
//! L3 agent's `qrouter-<id>` namespaces have Neutron's own names and never meet hostA's)
//! and a fresh `/sys` (its own `/sys/class/net`). An anchor process holds both
//! namespaces; every process of the node is started inside them with `nsenter`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::Group;

/// The anchor's script: the private mounts, loopback up, then `ready` and sleep.
const ANCHOR: &str = "mount -t tmpfs tmpfs /run/netns && umount -l /sys && \
                      mount -t sysfs sysfs /sys && ip link set lo up && echo ready && \
                      exec sleep infinity";

/// A node's place on the machine.
pub enum Place {
    /// The machine's own namespaces.
    Machine,
    /// A simulated host: the anchor process and the network namespace it was started in
    /// (named in the machine's `/run/netns`).
    Simulated { anchor: Group, netns: String },
}

impl Place {
    /// A simulated host in a new network namespace `netns` of the machine, its anchor
    /// logging to `dir/anchor.log`.
    ///
    /// # Panics
    /// When the namespace exists already or the anchor does not come up in 10 s.
    pub fn simulated(netns: &str, dir: &Path) -> Place {
        run(Command::new("ip").args(["netns", "add", netns]));
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/run/netns/{netns}"))
            .args(["unshare", "--mount", "--propagation", "private", "sh", "-c"])
            .arg(ANCHOR);
        let log = dir.join("anchor.log");
        let mut anchor = Group::spawn("anchor", command, &log);
        let started = Instant::now();
        while std::fs::read_to_string(&log).is_ok_and(|l| !l.contains("ready")) {
            assert!(
                anchor.exited().is_none() && started.elapsed() < Duration::from_secs(10),
                "the simulated host's anchor did not come up: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Place::Simulated {
            anchor,
            netns: netns.to_string(),
        }
    }

    /// A command running `program` at this place.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match self {
            Place::Machine => Command::new(program),
            Place::Simulated { anchor, .. } => {
                let mut command = Command::new("nsenter");
                command
                    .args(["-t", &anchor.pid().to_string(), "-m", "-n", "--"])
                    .arg(program);
                command
            }
        }
    }

    /// Runs `args` here and returns its output.
    ///
    /// # Panics
    /// When it fails.
    pub fn exec(&self, args: &[&str]) -> String {
        run(self.command(args[0]).args(&args[1..]))
    }

    /// The network namespace of a simulated host, as the machine names it.
    pub fn netns(&self) -> Option<&str> {
        match self {
            Place::Machine => None,
            Place::Simulated { netns, .. } => Some(netns),
        }
    }

    /// Ends a simulated host: its anchor, then its network namespace (its devices go
    /// with it once no process holds it). Never panics.
    pub fn end(&mut self) {
        if let Place::Simulated { anchor, netns } = self {
            anchor.kill();
            let _ = Command::new("ip").args(["netns", "delete", netns]).output();
        }
    }
}

pub(crate) fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?} ({e}): run scripts/setup.sh"));
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
