//! What a network node lab shares with the whole machine, and how it keeps to its own
//! part of it: the hold that lets one lab run at a time (and ends what a killed one left
//! behind), the network namespaces (the L3 agent's `qrouter-…` are machine-wide), and the processes the agents leave detached
//! (privsep daemons under sudo, keepalived), found by the lab's directory in their
//! command line.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The network node lab's hold on the machine, taken before a lab starts and kept while it
/// runs: the machine-wide lock, and beside it a record of what the holder made that its own
/// cleanup must end (its directories, named in the command line of every daemon it
/// starts, and a simulated host's namespace). A lab killed before its cleanup (SIGKILL, the
/// sandbox restarted under it) leaves its daemons running, each leading a process group of
/// its own, and with them Open vSwitch's devices of fixed names, on which the next lab
/// would fail; so the next holder first ends what the record names. Holding the lock, it
/// knows no lab of the record is still alive.
pub struct Hold {
    lock: File,
    record: PathBuf,
}

/// What a lab records: a directory of its own, or a network namespace it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    /// Its processes (found by the path in their command line) are killed, then it is removed.
    Dir(PathBuf),
    /// Its processes are killed, then it is deleted.
    Namespace(String),
}

impl Hold {
    /// Waits for the lock, then ends what an earlier holder killed mid-run left behind.
    ///
    /// # Panics
    /// When the lock or its record cannot be opened.
    pub fn take() -> Hold {
        let dir = if Path::new("/run/lock").is_dir() {
            Path::new("/run/lock")
        } else {
            Path::new("/tmp")
        };
        let lock = File::create(dir.join("vpnaas-netnode.lock")).expect("netnode lock file");
        if lock.try_lock().is_err() {
            eprintln!("waiting for the network node lab of another test to end");
            lock.lock().expect("lock the netnode lab");
        }
        let hold = Hold {
            lock,
            record: dir.join("vpnaas-netnode.record"),
        };
        let leftovers = std::fs::read_to_string(&hold.record).unwrap_or_default();
        for leftover in parse_record(&leftovers) {
            eprintln!("ending what a killed network node lab left: {leftover:?}");
            end(&leftover);
        }
        hold.clear();
        hold
    }

    /// Records `leftover` for the next holder, should this lab be killed before its cleanup.
    ///
    /// # Panics
    /// When the record cannot be written.
    pub fn record(&self, leftover: &Leftover) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.record)
            .expect("netnode record");
        writeln!(file, "{}", record_line(leftover)).expect("write the netnode record");
    }

    fn clear(&self) {
        std::fs::write(&self.record, "").expect("clear the netnode record");
    }
}

impl Drop for Hold {
    /// The lab has cleaned up after itself: nothing is left for the next holder.
    fn drop(&mut self) {
        let _ = std::fs::write(&self.record, "");
        let _ = self.lock.unlock();
    }
}

/// One line of the record.
fn record_line(leftover: &Leftover) -> String {
    match leftover {
        Leftover::Dir(dir) => format!("dir {}", dir.display()),
        Leftover::Namespace(ns) => format!("netns {ns}"),
    }
}

/// The leftovers of a record; a line of another shape is ignored.
pub fn parse_record(text: &str) -> Vec<Leftover> {
    text.lines()
        .filter_map(|line| match line.split_once(' ')? {
            ("dir", path) if path.starts_with('/') => Some(Leftover::Dir(path.into())),
            ("netns", ns) if !ns.is_empty() => Some(Leftover::Namespace(ns.to_string())),
            _ => None,
        })
        .collect()
}

/// Ends one leftover of a killed lab.
fn end(leftover: &Leftover) {
    match leftover {
        Leftover::Dir(dir) => {
            kill_processes_naming(dir);
            let _ = std::fs::remove_dir_all(dir);
        }
        Leftover::Namespace(ns) => {
            let pids = Command::new("ip").args(["netns", "pids", ns]).output();
            let pids = pids.map(|o| o.stdout).unwrap_or_default();
            for pid in String::from_utf8_lossy(&pids).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", pid]).output();
            }
            delete_namespace(ns);
        }
    }
}

/// The names of the machine's network namespaces.
pub fn namespaces() -> Vec<String> {
    let output = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    namespace_names(&String::from_utf8_lossy(&output.stdout))
}

/// The names in the output of `ip netns list`.
pub fn namespace_names(listed: &str) -> Vec<String> {
    listed
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Namespaces Neutron's agents make: `qrouter-`, `snat-`, `fip-`, `qdhcp-`.
pub fn is_neutron_namespace(name: &str) -> bool {
    ["qrouter-", "snat-", "fip-", "qdhcp-"]
        .iter()
        .any(|prefix| name.starts_with(prefix))
}

/// Runs `args` in namespace `ns` (`ip netns exec`) and returns its output.
///
/// # Panics
/// When it fails.
pub fn netns_exec(ns: &str, args: &[&str]) -> String {
    let output = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .expect("ip netns exec");
    assert!(
        output.status.success(),
        "ip netns exec {ns} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Deletes the namespace `ns`, ignoring failure (it may be gone already).
pub fn delete_namespace(ns: &str) {
    let _ = Command::new("ip").args(["netns", "delete", ns]).output();
}

/// The pids of the processes whose command line names `dir` (never this process).
pub fn processes_naming(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&needle))
        })
        .collect()
}

/// SIGKILLs the processes naming `dir` until there are none (a dying parent may have
/// just forked); gives up after a few rounds rather than hang a test's end.
pub fn kill_processes_naming(dir: &Path) {
    for _ in 0..20 {
        let pids = processes_naming(dir);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .output();
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Turns TX checksum offload off on every veth end in namespace `ns` at `place` (the L3 agent's
/// `qg-`/`qr-` devices, a test VM's `eth0`). The userspace datapath reads veths through
/// packet sockets, which pass a locally sent UDP or TCP packet on with the partial
/// checksum that offload leaves for a NIC to finish: the far end drops it as corrupt
/// (ICMP, checksummed in software, gets through). A real network node's kernel datapath
/// or NICs finish the checksum; this lab has neither.
///
/// # Panics
/// When a device's offload cannot be changed.
pub fn without_tx_offload(place: &super::Place, ns: &str) {
    let in_ns = |args: &[&str]| place.exec(&[&["ip", "netns", "exec", ns][..], args].concat());
    let links = in_ns(&["ip", "-o", "link", "show", "type", "veth"]);
    for device in links.lines().filter_map(veth_name) {
        in_ns(&["ethtool", "-K", device, "tx", "off"]);
    }
}

/// The device of a line of `ip -o link` (`2: qg-1@if5: <…>` gives `qg-1`).
fn veth_name(line: &str) -> Option<&str> {
    let name = line.split(": ").nth(1)?;
    Some(name.split_once('@').map_or(name, |(device, _)| device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_what_was_recorded_and_nothing_else() {
        let recorded = [
            Leftover::Dir("/tmp/.tmpAbC123".into()),
            Leftover::Namespace("vpnaas-hostcAbC123".into()),
        ];
        let mut text: String = recorded.iter().map(|l| record_line(l) + "\n").collect();
        text += "dir relative/path\nnetns \ngarbage\n";
        assert_eq!(parse_record(&text), recorded);
    }
}
