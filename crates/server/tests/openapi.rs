//! The OpenAPI document against the running server: it is valid OpenAPI 3.0
//! (openapi-spec-validator), and schemathesis, generating requests from it, finds no
//! server error, no answer the document does not describe and no request it calls valid
//! refused. Both tools come from the interpreter of `VPNAAS_TEST_PYTHON`, else the
//! repository's `.venv` made by `scripts/setup.sh`; without them the tests fail and say so.

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use reqwest::Method;
use serde_json::json;
use vpnaas_client::Client;
use vpnaas_model::Kind;

use common::{connected_site, id};

fn python() -> PathBuf {
    if let Some(path) = std::env::var_os("VPNAAS_TEST_PYTHON") {
        return path.into();
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
}

fn compat(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compat")
        .join(file)
}

/// Runs the interpreter with `args` in `dir`; returns whether it succeeded and its output.
async fn run_python(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let python = python();
    let output = tokio::process::Command::new(&python)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}); run scripts/setup.sh",
                python.display()
            )
        });
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

async fn validate(client: &Client, dir: &Path) -> (bool, String) {
    let document = client.get("/openapi.json").await.expect("document");
    let file = dir.join("openapi.json");
    std::fs::write(&file, document.to_string()).expect("write the document");
    let file = file.to_string_lossy();
    run_python(dir, &["-m", "openapi_spec_validator", &file], &[]).await
}

#[tokio::test]
async fn the_document_is_valid_openapi_with_and_without_weak_algorithms() {
    for allow in [false, true] {
        let h = common::start_with(|s| s.allow_weak_algorithms = allow).await;
        let (valid, report) = validate(&h.client, h.dir.path()).await;
        assert!(valid, "allow_weak_algorithms = {allow}: {report}");
    }
}

#[tokio::test]
async fn weak_algorithms_are_offered_only_where_the_server_accepts_them() {
    for allow in [false, true] {
        let h = common::start_with(|s| s.allow_weak_algorithms = allow).await;
        let document = h.client.get("/openapi.json").await.expect("document");
        let schemas = &document["components"]["schemas"];
        for (schema, attribute, weak) in [
            ("IkepolicyCreate", "auth_algorithm", "sha1"),
            ("IpsecpolicyUpdate", "encryption_algorithm", "3des"),
        ] {
            let property = &schemas[schema]["properties"][attribute];
            let offered = property["enum"]
                .as_array()
                .expect("an enum")
                .contains(&json!(weak));
            assert_eq!(offered, allow, "{schema}.{attribute}: {property}");
            assert_eq!(property["x-refused-unless-allowed"], json!([weak]));
        }
        let shown = &schemas["Ikepolicy"]["properties"]["auth_algorithm"]["enum"];
        assert!(
            shown.as_array().expect("an enum").contains(&json!("sha1")),
            "a stored sha1 policy is still shown"
        );
    }
}

/// One object of every kind, so that lists answer with real objects of every shape.
async fn populate(client: &Client) {
    let connected = connected_site(client).await;
    let subnet = connected.site.subnet.clone();
    for (kind, attrs) in [
        (
            Kind::EndpointGroup,
            json!({"type": "subnet", "endpoints": [subnet]}),
        ),
        (
            Kind::EndpointGroup,
            json!({"type": "cidr", "endpoints": ["10.9.0.0/24"]}),
        ),
        (Kind::ServiceProfile, json!({"driver": "libreswan"})),
    ] {
        client.create(kind, attrs).await.expect("object");
    }
    let profile = client
        .list(Kind::ServiceProfile, &[])
        .await
        .expect("profiles");
    let flavor = client
        .create(Kind::Flavor, json!({"service_type": "VPN", "name": "gold"}))
        .await
        .expect("flavor");
    client
        .associate_profile(&id(&flavor), &id(&profile[0]))
        .await
        .expect("association");
    let tags = format!("/v2.0/networks/{}/tags", connected.site.network);
    let (status, _) = client
        .raw(Method::PUT, &tags, Some(&json!({"tags": ["blue"]})))
        .await
        .expect("tags");
    assert!(status.is_success(), "tags: {status}");
    let (status, _) = client
        .raw(Method::POST, "/v2.0/vpnaas-agent/gw-1/heartbeat", None)
        .await
        .expect("heartbeat");
    assert!(status.is_success(), "heartbeat: {status}");
}

#[tokio::test]
async fn schemathesis_finds_the_server_true_to_its_document() {
    let h = common::start().await;
    let (valid, report) = validate(&h.client, h.dir.path()).await;
    assert!(valid, "{report}");
    populate(&h.client).await;
    let hooks = compat("");
    let config = compat("schemathesis.toml");
    let url = format!("{}/openapi.json", h.server.url());
    let started = Instant::now();
    let (passed, report) = run_python(
        h.dir.path(),
        &[
            "-c",
            "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
            "--config-file",
            &config.to_string_lossy(),
            "--no-color",
            "run",
            &url,
        ],
        &[("PYTHONPATH", &hooks.to_string_lossy())],
    )
    .await;
    eprintln!("schemathesis ran {:.1} s", started.elapsed().as_secs_f64());
    assert!(passed, "schemathesis found failures:\n{report}");
}
