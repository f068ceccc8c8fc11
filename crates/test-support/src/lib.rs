//! What the test suites of several crates share, written once: scratch PostgreSQL
//! databases ([`scratch`]), a nats-server of a test's own ([`nats`]), free loopback
//! ports ([`free_port`]), and an OpenStack lab: a Keystone ([`keystone`]), a Neutron 29
//! API with neutron-vpnaas on a MariaDB of its own ([`neutron`]) and an haproxy front
//! that splits one endpoint between vpnaas and Neutron ([`front`]); for Neutron with
//! agents, a RabbitMQ ([`rabbitmq`]) and a network node with Open vSwitch and Neutron's
//! OVS and L3 agents ([`netnode`], root only); HTTPS by a private CA ([`tls`]). Each crate's own
//! harness (the server's, the lab of the end-to-end tests) builds on these.

pub mod front;
pub mod keystone;
pub mod nats;
pub mod netnode;
pub mod neutron;
pub mod process;
pub mod rabbitmq;
pub mod scratch;
pub mod tls;

use std::path::{Path, PathBuf};

/// A loopback port nothing listens on now (the OS picks it; a test binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The workspace's root (where `scripts/` and the virtualenvs of `scripts/setup.sh` are).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `<target dir>/tmp`, where templates made once per machine are kept (as
/// `CARGO_TARGET_TMPDIR`, which only integration tests see): found from the running test
/// binary, `<target>/<profile>/deps/<binary>`. `VPNAAS_TEST_TMPDIR` overrides.
pub fn target_tmp() -> PathBuf {
    if let Some(dir) = std::env::var_os("VPNAAS_TEST_TMPDIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("the test binary lies in <target>/<profile>/deps");
    let dir = target.join("tmp");
    std::fs::create_dir_all(&dir).expect("the target dir's tmp");
    dir
}

/// Copies the tree `from` to `to` (files and folders only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read template") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Set (by `scripts/test.sh`, as CI runs it) when the OpenStack lab must be there: its
/// tests then fail instead of skipping when `scripts/setup.sh` has not been run.
pub const REQUIRE_OPENSTACK: &str = "VPNAAS_TEST_REQUIRE_OPENSTACK";

/// `true` when a test of the OpenStack lab must skip (it prints why): its virtualenvs
/// (Keystone's, Neutron's, the `openstack` CLI's) or Debian packages are missing and [`REQUIRE_OPENSTACK`] is not set.
///
/// # Panics
/// When something is missing and [`REQUIRE_OPENSTACK`] is set.
pub fn skip_without_openstack() -> bool {
    let missing = openstack_missing();
    if missing.is_empty() {
        return false;
    }
    let reason = format!("missing {} (run scripts/setup.sh)", missing.join(", "));
    assert!(
        std::env::var_os(REQUIRE_OPENSTACK).is_none(),
        "{REQUIRE_OPENSTACK} is set: {reason}"
    );
    eprintln!("skipped: {reason}");
    true
}

/// `true` when a test of the network node lab must skip (it prints why): not root, or
/// something of [`skip_without_openstack`] or of the network node (Open vSwitch, sudo,
/// keepalived, iptables, conntrack, ethtool) is missing, and [`REQUIRE_OPENSTACK`] is not set.
///
/// # Panics
/// When it cannot run and [`REQUIRE_OPENSTACK`] is set.
pub fn skip_without_netnode() -> bool {
    let mut missing = openstack_missing();
    let tools = [
        "/usr/sbin/ovs-vswitchd",
        "/usr/sbin/ovsdb-server",
        "/usr/bin/sudo",
        "/usr/sbin/keepalived",
        "/usr/sbin/iptables-save",
        "/usr/sbin/conntrack",
        "/usr/sbin/ethtool",
    ];
    missing.extend(
        tools
            .iter()
            .filter(|tool| !Path::new(tool).exists())
            .map(|tool| (*tool).to_string()),
    );
    let reason = if !is_root() {
        "not root (the network node lab makes namespaces and bridges)".to_string()
    } else if !missing.is_empty() {
        format!("missing {} (run scripts/setup.sh)", missing.join(", "))
    } else {
        return false;
    };
    assert!(
        std::env::var_os(REQUIRE_OPENSTACK).is_none(),
        "{REQUIRE_OPENSTACK} is set: {reason}"
    );
    eprintln!("skipped: {reason}");
    true
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn openstack_missing() -> Vec<String> {
    let needed = [
        keystone::venv().join("bin/keystone-manage"),
        neutron::venv().join("bin/uwsgi"),
        neutron::venv().join("bin/neutron-db-manage"),
        PathBuf::from(neutron::MARIADBD),
        PathBuf::from(front::HAPROXY),
        PathBuf::from(rabbitmq::RABBITMQ_SERVER),
        workspace_root().join(".venv/bin/openstack"),
    ];
    needed
        .into_iter()
        .filter(|path| !path.exists())
        .map(|path| path.display().to_string())
        .collect()
}
