//! What a network node lab shares with the whole machine, and how it keeps to its own
//! part of it: the lock that lets one lab run at a time, the network namespaces (the L3
//! agent's `qrouter-…` are machine-wide), and the processes the agents leave detached
//! (privsep daemons under sudo, keepalived), found by the lab's directory in their
//! command line.

use std::fs::File;
use std::path::Path;
use std::process::Command;

/// The machine-wide lock of the network node lab, held while one runs.
pub fn lock() -> File {
    let dir = if Path::new("/run/lock").is_dir() {
        Path::new("/run/lock")
    } else {
        Path::new("/tmp")
    };
    let file = File::create(dir.join("vpnaas-netnode.lock")).expect("netnode lock file");
    if file.try_lock().is_err() {
        eprintln!("waiting for the network node lab of another test to end");
        file.lock().expect("lock the netnode lab");
    }
    file
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
