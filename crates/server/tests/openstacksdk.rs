//! Compatibility: openstacksdk, unmodified from PyPI, drives the main flow against the
//! running server. The interpreter comes from `VPNAAS_TEST_PYTHON`, else the repository's
//! `.venv` made by `scripts/setup.sh`; without openstacksdk the test fails and says so.

mod common;

use std::path::PathBuf;

fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("VPNAAS_TEST_PYTHON") {
        return path.into();
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
}

#[tokio::test]
async fn openstacksdk_drives_the_main_flow() {
    let h = common::start().await;
    let python = python();
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compat/openstacksdk_flow.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(h.server.url())
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); run scripts/setup.sh to install openstacksdk",
                python.display()
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "openstacksdk flow failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("openstacksdk flow passed"), "{stdout}");
}
