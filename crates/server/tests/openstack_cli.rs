//! Compatibility: the real `openstack` CLI (python-openstackclient from PyPI, unmodified)
//! drives networks, subnets, routers and every VPN resource against the running server;
//! any command that fails or writes to stderr fails the test. The interpreter comes from
//! `VPNAAS_TEST_PYTHON`, else the repository's `.venv` made by `scripts/setup.sh`; the
//! `openstack` program is the one beside it.

mod common;

use std::path::{Path, PathBuf};

fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("VPNAAS_TEST_PYTHON") {
        return path.into();
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
}

fn openstack_beside(python: &Path) -> PathBuf {
    python.with_file_name("openstack")
}

#[tokio::test]
async fn openstack_cli_drives_networks_routers_and_vpn() {
    let python = python();
    let openstack = openstack_beside(&python);
    assert!(
        openstack.exists(),
        "{} is missing: run scripts/setup.sh to install python-openstackclient",
        openstack.display()
    );
    let h = common::start().await;
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compat/openstack_cli_flow.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(h.server.url())
        .arg(&openstack)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); run scripts/setup.sh to install python-openstackclient",
                python.display()
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.is_empty(),
        "openstack CLI flow failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("openstack cli flow passed"), "{stdout}");
}
