//! The network node's Open vSwitch: `ovsdb-server` and `ovs-vswitchd` with the userspace
//! (netdev) datapath, so no kernel module is needed; their database, sockets, pid files
//! and logs in a directory of the lab's own (`OVS_RUNDIR`), the database also on a
//! loopback TCP port for Neutron's agents. Both run in the foreground as process groups
//! of the lab. The netdev datapath's devices (one TAP device per bridge, and
//! `ovs-netdev`) are machine-wide: a name already taken fails the start. On drop, the
//! bridges go first, then the datapath, then the daemons.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::place::Place;
use crate::process::Group;

/// The netdev datapath's own TAP device: one name per machine, whoever runs the switch.
const DATAPATH_DEVICE: &str = "ovs-netdev";

/// A running Open vSwitch of the lab's, stopped on drop ([`Ovs::stop`]).
pub struct Ovs {
    vswitchd: Group,
    ovsdb: Group,
    /// Its run directory: `db.sock`, the daemons' and the bridges' control sockets.
    pub run_dir: PathBuf,
    /// The loopback port of its database (`tcp:127.0.0.1:PORT`).
    pub db_port: u16,
    /// The TAP devices it made (bridges, the datapath's `ovs-netdev`), deleted after it
    /// if still there; on a simulated host none are kept (they go with its namespace).
    devices: Vec<String>,
    /// Whether it runs in the machine's own network namespace, where device names are
    /// shared with everything else.
    on_machine: bool,
    stopped: bool,
}

impl Ovs {
    /// Starts both daemons at `place` on a new database in `dir` (system id `host`) and
    /// waits until the switch has connected to it.
    pub fn start(dir: &Path, host: &str, place: &Place) -> Ovs {
        let run_dir = dir.join("ovs");
        std::fs::create_dir_all(&run_dir).expect("ovs run dir");
        let db = run_dir.join("conf.db");
        run(Command::new("ovsdb-tool")
            .arg("create")
            .arg(&db)
            .arg("/usr/share/openvswitch/vswitch.ovsschema"));
        let db_port = crate::free_port();
        let mut ovsdb = daemon(place, &run_dir, "ovsdb-server", |command| {
            command
                .arg(&db)
                .arg(format!(
                    "--remote=punix:{}",
                    run_dir.join("db.sock").display()
                ))
                .arg(format!("--remote=ptcp:{db_port}:127.0.0.1"));
        });
        wait_for_db(&mut ovsdb, &run_dir);
        vsctl_at(&run_dir, &["--no-wait", "init"]);
        let system_id = format!("external-ids:system-id={host}");
        vsctl_at(
            &run_dir,
            &["--no-wait", "set", "Open_vSwitch", ".", &system_id],
        );
        let socket = format!("unix:{}", run_dir.join("db.sock").display());
        let vswitchd = daemon(place, &run_dir, "ovs-vswitchd", |command| {
            command.arg(&socket);
        });
        Ovs {
            vswitchd,
            ovsdb,
            run_dir,
            db_port,
            devices: Vec::new(),
            on_machine: place.netns().is_none(),
            stopped: false,
        }
    }

    /// Adds bridge `name` on the netdev datapath (the first one also makes the datapath's
    /// own device, `ovs-netdev`).
    pub fn add_bridge(&mut self, name: &str) {
        for device in [DATAPATH_DEVICE, name]
            .into_iter()
            .filter(|_| self.on_machine)
        {
            let taken = Path::new("/sys/class/net").join(device).exists();
            assert!(
                !taken || self.devices.iter().any(|d| d == device),
                "a device {device} exists on this machine: another Open vSwitch with the \
                 netdev datapath (or a lab that could not clean up) holds it"
            );
        }
        self.vsctl(&[
            "--may-exist",
            "add-br",
            name,
            "--",
            "set",
            "bridge",
            name,
            "datapath_type=netdev",
        ]);
        for device in [DATAPATH_DEVICE, name]
            .into_iter()
            .filter(|_| self.on_machine)
        {
            if !self.devices.iter().any(|d| d == device) {
                self.devices.push(device.to_string());
            }
        }
    }

    /// Runs `ovs-vsctl` on this switch and returns its output.
    ///
    /// # Panics
    /// When it fails.
    /// Without `--no-wait` it returns once ovs-vswitchd has applied the change.
    pub fn vsctl(&self, args: &[&str]) -> String {
        vsctl_at(&self.run_dir, args)
    }

    /// Its bridges (none once it is stopped).
    pub fn bridges(&self) -> Vec<String> {
        self.try_vsctl(&["list-br"])
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn try_vsctl(&self, args: &[&str]) -> Option<String> {
        let output = Command::new("ovs-vsctl")
            .env("OVS_RUNDIR", &self.run_dir)
            .arg("--timeout=10")
            .args(args)
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The tail of `daemon`'s log (`ovsdb-server`, `ovs-vswitchd`).
    pub fn log(&self, daemon: &str) -> String {
        log(&self.run_dir, daemon)
    }

    /// Stops it, leaving nothing on the machine: deletes its bridges, asks ovs-vswitchd to
    /// exit removing its datapath (`exit --cleanup`: the netdev datapath's TAP devices
    /// are persistent, a killed switch would leave them), then ends both daemons. Never
    /// panics (it may run while a failed test unwinds); a second call does nothing.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        for bridge in self.bridges() {
            let _ = self.try_vsctl(&["del-br", &bridge]);
        }
        let control = self.run_dir.join("ovs-vswitchd.ctl");
        let _ = Command::new("ovs-appctl")
            .arg("--timeout=10")
            .arg("-t")
            .arg(&control)
            .args(["exit", "--cleanup"])
            .output();
        let started = Instant::now();
        while self.vswitchd.exited().is_none() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.vswitchd.kill();
        self.ovsdb.kill();
        for device in &self.devices {
            if Path::new("/sys/class/net").join(device).exists() {
                let _ = Command::new("ip").args(["link", "delete", device]).output();
            }
        }
    }

    /// `Some(status)` once one of its daemons has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.ovsdb.exited().or_else(|| self.vswitchd.exited())
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `ovsdb-server` or `ovs-vswitchd` in the foreground at `place`, every file in `run_dir`.
fn daemon(place: &Place, run_dir: &Path, name: &str, args: impl FnOnce(&mut Command)) -> Group {
    let mut command = place.command(name);
    command.env("OVS_RUNDIR", run_dir);
    args(&mut command);
    command
        .arg(format!(
            "--pidfile={}",
            run_dir.join(format!("{name}.pid")).display()
        ))
        .arg(format!(
            "--unixctl={}",
            run_dir.join(format!("{name}.ctl")).display()
        ))
        .arg(format!(
            "--log-file={}",
            run_dir.join(format!("{name}.log")).display()
        ));
    Group::spawn(name, command, &run_dir.join(format!("{name}.out")))
}

/// Waits until the database answers on its unix socket (a path: reachable from the
/// machine whatever namespace the server runs in).
fn wait_for_db(ovsdb: &mut Group, run_dir: &Path) {
    let started = Instant::now();
    let socket = run_dir.join("db.sock");
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        if let Some(status) = ovsdb.exited() {
            panic!(
                "ovsdb-server exited ({status}): {}",
                log(run_dir, "ovsdb-server")
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "ovsdb-server does not listen on {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn log(run_dir: &Path, daemon: &str) -> String {
    let log = run_dir.join(format!("{daemon}.log"));
    crate::neutron::tail(&std::fs::read_to_string(log).unwrap_or_default())
}

fn vsctl_at(run_dir: &Path, args: &[&str]) -> String {
    run(Command::new("ovs-vsctl")
        .env("OVS_RUNDIR", run_dir)
        .arg("--timeout=10")
        .args(args))
}

fn run(command: &mut Command) -> String {
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
