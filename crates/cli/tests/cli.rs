//! The `vpnaas` binary as a user runs it: client commands against a real server, output
//! formats, name resolution, errors printed from the server with a non-zero exit code,
//! and `default-config`.

use std::process::{Command, Output};

use vpnaas_server::{Server, Settings};

fn vpnaas(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vpnaas"))
        .args(args)
        .env("VPNAAS_URL", url)
        .env_remove("VPNAAS_PROJECT")
        .env_remove("VPNAAS_ROLES")
        .env_remove("VPNAAS_TOKEN")
        .output()
        .expect("run vpnaas")
}

fn ok(url: &str, args: &[&str]) -> String {
    let out = vpnaas(url, args);
    assert!(
        out.status.success(),
        "vpnaas {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn server() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = Settings {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: dir.path().into(),
        ..Settings::default()
    };
    (Server::start(settings).await.expect("server"), dir)
}

/// The README's walk-through up to a VPN: an external network, router `r1` with its
/// gateway on it and an interface on `lan1-v4` (10.1.0.0/24).
const ROUTER_ON_LAN1: &[&[&str]] = &[
    &["network", "create", "public", "--router-external", "true"],
    &[
        "subnet",
        "create",
        "public-v4",
        "--network",
        "public",
        "--subnet-range",
        "203.0.113.0/24",
    ],
    &["network", "create", "lan1"],
    &[
        "subnet",
        "create",
        "lan1-v4",
        "--network",
        "lan1",
        "--subnet-range",
        "10.1.0.0/24",
    ],
    &["router", "create", "r1", "--external-gateway", "public"],
    &["router", "add-interface", "r1", "lan1-v4"],
];

/// A table a person can read in a terminal: no line of JSON pushing it past 100 columns.
fn assert_readable(table: &str) {
    let widest = table.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(
        widest <= 100 && !table.contains('{'),
        "{widest} columns:\n{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_builds_a_vpn_with_the_cli() {
    let (server, _dir) = server().await;
    let url = server.url();
    let url = url.as_str();
    let run = |args: &'static [&'static str]| {
        let url = url.to_string();
        tokio::task::spawn_blocking(move || ok(&url, args))
    };
    for step in ROUTER_ON_LAN1 {
        run(step).await.expect("join");
    }
    let ike = run(&[
        "-f",
        "json",
        "ike-policy",
        "create",
        "ike1",
        "--ike-version",
        "v2",
        "--lifetime",
        "units=seconds,value=7200",
    ])
    .await
    .expect("join");
    let ike: serde_json::Value = serde_json::from_str(&ike).expect("json output");
    assert_eq!(ike["lifetime"]["value"], 7200);
    run(&["ipsec-policy", "create", "ipsec1"])
        .await
        .expect("join");
    run(&[
        "service", "create", "vpn1", "--router", "r1", "--subnet", "lan1-v4",
    ])
    .await
    .expect("join");
    run(&[
        "site-connection",
        "create",
        "c1",
        "--vpnservice",
        "vpn1",
        "--ikepolicy",
        "ike1",
        "--ipsecpolicy",
        "ipsec1",
        "--peer-address",
        "203.0.113.9",
        "--peer-id",
        "203.0.113.9",
        "--psk",
        "secret",
        "--peer-cidr",
        "10.2.0.0/24",
        "--dpd",
        "action=restart,interval=10,timeout=40",
    ])
    .await
    .expect("join");
    let listed = run(&["-f", "value", "site-connection", "list"])
        .await
        .expect("join");
    assert!(
        listed.contains(" c1 203.0.113.9 203.0.113.9 PENDING_CREATE"),
        "{listed}"
    );
    let table = run(&["site-connection", "show", "c1"]).await.expect("join");
    assert!(
        table.contains("peer_cidrs") && table.contains("10.2.0.0/24"),
        "{table}"
    );
    assert!(
        table.contains("action=restart, interval=10, timeout=40"),
        "{table}"
    );
    assert_readable(&table);
    let router = run(&["router", "show", "r1"]).await.expect("join");
    for shown in [
        "network_id=",
        "enable_snat=true",
        "external_fixed_ips:",
        "ip_address=203.0.113.",
        "ip_address=10.1.0.1",
    ] {
        assert!(
            router.contains(shown),
            "router show lacks {shown}:\n{router}"
        );
    }
    assert_readable(&router);
    let set = run(&[
        "-f",
        "json",
        "site-connection",
        "set",
        "c1",
        "--mtu",
        "1400",
    ])
    .await
    .expect("join");
    assert!(set.contains("\"mtu\": 1400"), "{set}");

    let url_owned = url.to_string();
    let refused =
        tokio::task::spawn_blocking(move || vpnaas(&url_owned, &["ike-policy", "delete", "ike1"]))
            .await
            .expect("join");
    assert!(
        !refused.status.success(),
        "deleting a policy in use must fail"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("IKEPolicyInUse") && stderr.contains("in use"),
        "{stderr}"
    );

    run(&["site-connection", "delete", "c1"])
        .await
        .expect("join");
    run(&["ike-policy", "delete", "ike1"]).await.expect("join");
    let empty = run(&["-f", "json", "ike-policy", "list"])
        .await
        .expect("join");
    assert_eq!(empty.trim(), "[]");
    server.stop().await;
}

/// The lines of the `Commands:` section of a help text: `(name, what it does)`.
fn commands_in(help: &str) -> Vec<(String, String)> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let (name, about) = l.trim().split_once(' ').unwrap_or((l.trim(), ""));
            (name.to_string(), about.trim().to_string())
        })
        .collect()
}

#[test]
fn the_help_says_what_vpnaas_is_and_what_each_command_does() {
    let help = ok("http://127.0.0.1:9", &["--help"]);
    assert!(
        help.starts_with("vpnaas runs site-to-site IPsec VPNs as a service."),
        "{help}"
    );
    let commands = commands_in(&help);
    for (name, about) in [
        ("server", "Run the API server"),
        ("agent", "Run an agent on a gateway host"),
        ("demo", "Two sites and a real tunnel in one command"),
        ("all-in-one", "Run the API server, an agent and their bus"),
        ("ike-policy", "IKE policies"),
        ("site-connection", "IPsec site connections"),
    ] {
        assert!(
            commands
                .iter()
                .any(|(n, a)| n == name && a.starts_with(about)),
            "`{name}` is not described as '{about}…':\n{help}"
        );
    }
    for args in [&["--help"][..], &["lab", "--help"], &["bench", "--help"]] {
        let help = ok("http://127.0.0.1:9", args);
        assert!(
            !help.contains("Flags of") && !help.contains("Options of"),
            "vpnaas {args:?}:\n{help}"
        );
        let commands = commands_in(&help);
        assert!(commands.len() > 2, "vpnaas {args:?}:\n{help}");
        for (name, about) in commands {
            assert!(
                about.len() > 10 && !about.starts_with('`'),
                "vpnaas {args:?}: `{name}` says '{about}'"
            );
        }
    }
}

#[test]
fn default_config_is_printed_and_an_unreachable_server_is_an_error() {
    let config = ok("http://127.0.0.1:9", &["default-config"]);
    assert!(
        config.contains("listen = \"127.0.0.1:9696\"")
            && config.contains("allow_weak_algorithms = false")
    );
    let out = vpnaas("http://127.0.0.1:9", &["ike-policy", "list"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));
}

/// Every enum-valued flag parses through its enum: a misspelt value, as a flag or in the
/// environment, is a usage error (exit code 2) naming the valid values, and nothing runs.
#[test]
fn a_misspelt_enum_flag_is_a_usage_error_naming_the_valid_values() {
    let data_planes = "[possible values: auto, kernel, userspace]";
    let drivers = "[possible values: strongswan, libreswan]";
    let cases: [(&[&str], &str); 8] = [
        (&["all-in-one", "--data-plane", "kernal"], data_planes),
        (&["agent", "--data-plane", "kernal"], data_planes),
        (&["demo", "--data-plane", "kernal"], data_planes),
        (&["lab", "up", "--data-plane", "kernal"], data_planes),
        (
            &["agent", "--l3-mode", "neutorn"],
            "[possible values: standalone, neutron, simulation]",
        ),
        (
            &["server", "--auth", "tokn"],
            "[possible values: noauth, token, keystone]",
        ),
        (
            &["server", "--inventory", "nutron"],
            "[possible values: builtin, neutron]",
        ),
        (
            &["router", "migrate-driver", "r1", "--to", "plutoo"],
            drivers,
        ),
    ];
    for (args, valid) in cases {
        let out = vpnaas("http://127.0.0.1:9", args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "vpnaas {args:?}: {stderr}");
        assert!(
            stderr.contains("invalid value") && stderr.contains(valid),
            "vpnaas {args:?} names the valid values: {stderr}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_vpnaas"))
        .args(["agent", "--server", "http://127.0.0.1:9"])
        .env("VPNAAS_DATA_PLANE", "kernal")
        .env("VPNAAS_DRIVER", "strongswan")
        .output()
        .expect("run vpnaas");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(data_planes), "{stderr}");
}

#[test]
fn the_server_command_reads_a_config_file_and_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let config = dir.path().join("vpnaas.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vpnaas"))
        .args(["server", "--config"])
        .arg(&config)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start server");
    let url = format!("http://127.0.0.1:{port}");
    let mut listed = None;
    for _ in 0..100 {
        let out = vpnaas(&url, &["-f", "json", "ike-policy", "list"]);
        if out.status.success() {
            listed = Some(String::from_utf8_lossy(&out.stdout).into_owned());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(listed.expect("server answered").trim(), "[]");
    assert!(
        dir.path().join("data/vpnaas.db").exists(),
        "the SQLite file lives in data_dir"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_picks_a_driver_with_a_flavor() {
    let (server, _dir) = server().await;
    let url = server.url();
    let run = |args: Vec<String>| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ok(&url, &args)
        })
    };
    let words = |text: &str| {
        text.split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let profile: serde_json::Value = serde_json::from_str(
        &run(words("-f json service-profile create --driver libreswan"))
            .await
            .expect("join"),
    )
    .expect("json");
    let profile_id = profile["id"].as_str().expect("id").to_string();
    run(words("flavor create pluto --service-type VPN"))
        .await
        .expect("join");
    run(words(&format!("flavor add-profile pluto {profile_id}")))
        .await
        .expect("join");
    for args in [
        "network create public --router-external true",
        "subnet create public-v4 --network public --subnet-range 203.0.113.0/24",
        "router create r1 --external-gateway public",
    ] {
        run(words(args)).await.expect("join");
    }
    let service: serde_json::Value = serde_json::from_str(
        &run(words(
            "-f json service create s1 --router r1 --flavor pluto",
        ))
        .await
        .expect("join"),
    )
    .expect("json");
    assert_eq!(service["provider"], "libreswan");
    let listed = run(words("service list")).await.expect("join");
    assert!(listed.contains("libreswan"), "{listed}");
    let out = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            vpnaas(
                &url,
                &["router", "migrate-driver", "r1", "--to", "openswan"],
            )
        }
    })
    .await
    .expect("join");
    assert!(!out.status.success(), "an unknown driver is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_benchmark_fills_other_projects_then_times_lists_and_guards() {
    let (server, _dir) = server().await;
    let url = server.url();
    let flags = "bench api --objects 20 --shows 20 --lists 5 --guard-requests 5 --updates 20 \
                 --background-objects 45 --background-projects 3";
    let report = tokio::task::spawn_blocking(move || {
        ok(&url, &flags.split_whitespace().collect::<Vec<_>>())
    })
    .await
    .expect("join");
    assert!(
        report.contains("background: 45 objects in 3 projects"),
        "{report}"
    );
    assert!(
        report.contains("list of 21 objects"),
        "its own 20 and its site's policy: {report}"
    );
    for guard in [
        "PUT ikepolicy in use",
        "DELETE subnet",
        "remove interface",
        "PUT one ikepolicy x16",
    ] {
        assert!(report.contains(guard), "{guard} missing: {report}");
    }
    let admin = vpnaas_client::Client::new(&server.url());
    let mut background = Vec::new();
    for kind in vpnaas_model::Kind::ALL.into_iter().filter(|k| {
        k.is_vpn()
            || matches!(
                k,
                vpnaas_model::Kind::Network
                    | vpnaas_model::Kind::Subnet
                    | vpnaas_model::Kind::Router
            )
    }) {
        for object in admin.list(kind, &[]).await.expect("list") {
            background.push(
                object["project_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    let per_project = |k: usize| {
        background
            .iter()
            .filter(|p| p.ends_with(&format!("-bg-{k}")))
            .count()
    };
    assert_eq!(
        (0..3).map(per_project).collect::<Vec<_>>(),
        [15, 15, 15],
        "the background stays, spread evenly"
    );
    assert_eq!(
        background.iter().filter(|p| !p.contains("-bg-")).count(),
        2,
        "of the rest only the external network and its subnet stay (the background's routers use them)"
    );
}

#[test]
fn the_scale_benchmark_runs_a_small_fleet_of_fake_agents() {
    let out = Command::new(env!("CARGO_BIN_EXE_vpnaas"))
        .args([
            "bench",
            "scale",
            "--servers",
            "1",
            "--agents",
            "2",
            "--routers",
            "4",
        ])
        .args([
            "--connections",
            "2",
            "--delay-ms",
            "50",
            "--settle-seconds",
            "6",
        ])
        .env("VPNAAS_LOG", "warn")
        .output()
        .expect("run vpnaas");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("(8 ACTIVE)"), "{text}");
    assert!(text.contains("cold start → all ACTIVE again"), "{text}");
    assert!(text.contains("agent memory (RSS)"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_connection_no_agent_will_apply_stops_and_says_why() {
    let (server, _dir) = server().await;
    let url = server.url();
    let steps: &[&[&str]] = &[
        &["ike-policy", "create", "ike1"],
        &["ipsec-policy", "create", "ipsec1"],
        &[
            "service", "create", "vpn1", "--router", "r1", "--subnet", "lan1-v4",
        ],
    ];
    let out = tokio::task::spawn_blocking(move || {
        for step in ROUTER_ON_LAN1.iter().chain(steps) {
            ok(&url, step);
        }
        vpnaas(
            &url,
            &[
                "site-connection",
                "create",
                "c1",
                "--vpnservice",
                "vpn1",
                "--ikepolicy",
                "ike1",
                "--ipsecpolicy",
                "ipsec1",
                "--peer-address",
                "203.0.113.9",
                "--peer-id",
                "203.0.113.9",
                "--psk",
                "secret",
                "--peer-cidr",
                "10.2.0.0/24",
                "--wait",
            ],
        )
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("PENDING_CREATE: NO_AGENT") && stderr.contains("start `vpnaas agent`"),
        "{stderr}"
    );
}

/// The README's quick start: one command that installs, builds and runs the demo, one that
/// runs the tests (the one CI runs), and nothing else before the details.
#[test]
fn the_readme_quick_start_is_two_commands_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let start = readme
        .find("## Quick start")
        .expect("a quick start section");
    let block = readme[start..]
        .split("```")
        .nth(1)
        .expect("a code block in the quick start");
    let commands: Vec<&str> = block
        .lines()
        .skip(1)
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty())
        .collect();
    assert_eq!(commands, ["./scripts/demo.sh", "./scripts/test.sh"]);
    for script in &commands {
        let meta = std::fs::metadata(root.join(script)).expect(script);
        assert!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0,
            "{script} is not executable"
        );
    }
    let demo = std::fs::read_to_string(root.join("scripts/demo.sh")).expect("demo.sh");
    assert!(
        demo.contains("./scripts/setup.sh")
            && demo.contains("cargo build --release")
            && demo.contains("vpnaas demo"),
        "{demo}"
    );
    let ci = std::fs::read_to_string(root.join(".ci/run")).expect(".ci/run");
    assert!(
        ci.contains("./scripts/test.sh"),
        "CI runs the README's test command"
    );
}
