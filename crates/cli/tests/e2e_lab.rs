//! End to end through `vpnaas demo` and `vpnaas lab`: the demos show a real tunnel and a
//! failover and clean up; the lab runs its own gateway hosts, cuts their power, runs
//! commands in its sites and names what a dead agent left.
//!
//! Needs root (CI runs as root); without it these tests fail and say why. Every name
//! carries a random prefix, and everything started is removed, even when a test fails.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use vpnaas_model::Kind;

use common::*;

/// Runs `vpnaas demo --exit` with `args` under a prefix of its own; its output, after
/// checking that it succeeded and left no namespace (any it left is removed).
async fn run_demo(args: &[&str]) -> String {
    require_root();
    let tag: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(6)
        .collect();
    let prefix = format!("vd{tag}");
    let args: Vec<String> = ["demo", "--exit", "--prefix", &prefix]
        .iter()
        .chain(args)
        .map(|a| a.to_string())
        .collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_vpnaas"))
            .args(&args)
            .output()
            .expect("demo")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let log = demo_log(&stdout);
    let leftovers: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<String>>()
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    power_off(&prefix);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(
        leftovers.is_empty(),
        "the demo left namespaces: {leftovers:?}"
    );
    assert_reads_cleanly(&stdout, &stderr, &log);
    stdout
}

/// The log file the demo names in its first line (read, then removed with its directory).
fn demo_log(stdout: &str) -> String {
    let path = stdout
        .lines()
        .next()
        .and_then(|l| l.split_once("logs in "))
        .map(|(_, path)| std::path::PathBuf::from(path.trim()))
        .unwrap_or_default();
    let log = std::fs::read_to_string(&path).unwrap_or_default();
    if path.ends_with("demo.log")
        && let Some(dir) = path.parent()
    {
        let _ = std::fs::remove_dir_all(dir);
    }
    log
}

/// The demo's terminal shows its timeline (and warnings, if any): no colour codes, no
/// INFO line; those are in its log file, without colour codes either.
fn assert_reads_cleanly(stdout: &str, stderr: &str, log: &str) {
    for (name, text) in [("stdout", stdout), ("stderr", stderr)] {
        assert!(!text.contains('\x1b'), "ANSI codes on {name}:\n{text}");
        assert!(
            !text.lines().any(|l| l.contains(" INFO ")),
            "INFO log lines on {name}:\n{text}"
        );
    }
    for logged in [
        "INFO vpnaas_server",
        "vpnaas API listening",
        "charon started",
    ] {
        assert!(
            log.contains(logged),
            "the log file named in the first line lacks '{logged}':\n{stdout}\n{log}"
        );
    }
    assert!(!log.contains('\x1b'), "ANSI codes in the log file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_a_real_tunnel_and_cleans_up() {
    let stdout = run_demo(&[]).await;
    for step in [
        "request accepted",
        "IKE established",
        "ACTIVE in GET",
        "first ping reply",
    ] {
        assert!(
            stdout.contains(step),
            "the timeline lacks '{step}':\n{stdout}"
        );
    }
}

/// `vpnaas demo --agents 3 --ha`: the tunnel, then the power cut of site 1's active
/// gateway host and the standby taking over, until pings pass again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ha_demo_shows_a_failover_and_cleans_up() {
    let stdout = run_demo(&["--agents", "3", "--ha"]).await;
    for step in [
        "site 1's router is HA: active on",
        "powered off",
        "DOWN (AGENT_DOWN)",
        "now active on",
    ] {
        assert!(
            stdout.contains(step),
            "the timeline lacks '{step}':\n{stdout}"
        );
    }
    assert_eq!(
        stdout.matches("first ping reply").count(),
        2,
        "a ping before and after the failover:\n{stdout}"
    );
    eprintln!("{stdout}");
}

/// `vpnaas lab up --agents 2 --ha` on a `vpnaas server`: the lab runs its own gateway
/// hosts and its routers are HA on them. `lab power-off 1` cuts one: the other stops
/// hearing its liveness answers, claims the router and pings pass again (the silence is
/// printed); `lab power-on 1` brings it back as the standby, which runs no daemon beside
/// the active one (fencing) while pings go on; `lab down` stops the lab's agents and
/// leaves no namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lab_runs_its_own_gateway_hosts_and_cuts_their_power() {
    let lab = Lab::start_as(2, Mode::LabGateways(2)).await;
    let (gw1, gw2) = (format!("{}-gw1", lab.prefix), format!("{}-gw2", lab.prefix));
    let r1 = lab.site(1)["router_id"].as_str().expect("r1").to_string();
    let router = lab.client.show(Kind::Router, &r1).await.expect("router");
    assert_eq!(
        (&router["agent_host"], &router["ha_standby_host"]),
        (&json!(gw1), &json!(gw2))
    );
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let (s1, s2) = (lab.service(1).await, lab.service(2).await);
    let c12 = lab.connect(&s1, 1, 2, &policies, "lab-ha").await;
    let c21 = lab.connect(&s2, 2, 1, &policies, "lab-ha").await;
    lab.wait_status(&c12, "ACTIVE", Duration::from_secs(20))
        .await;
    lab.wait_status(&c21, "ACTIVE", Duration::from_secs(20))
        .await;
    until_ping(&lab, 1, 2, Duration::from_secs(10));

    let pinger = Pinger::timed(&lab, 2, 1, 8);
    until_ping(&lab, 2, 1, Duration::from_secs(10));
    let cut = Instant::now();
    lab.lab_command(&["power-off", "1"]);
    assert!(
        !lab.namespaces().iter().any(|n| n.starts_with(&gw1)),
        "a powered-off gateway keeps no namespace"
    );
    let pinging = until_ping(&lab, 1, 2, Duration::from_secs(30));
    eprintln!(
        "lab power-off 1 -> pinging through gateway 2: {pinging:?} ({:?} after the power-off command)",
        cut.elapsed()
    );
    lab.wait_for_host(&gw1, false).await;
    let (sent, received, silence) = pinger.finish_timed();
    eprintln!(
        "lab power-off 1: continuous ping every 50 ms lost {} of {sent}, longest silence {silence:?}",
        sent - received
    );
    let router = lab.client.show(Kind::Router, &r1).await.expect("router");
    assert_eq!(
        (&router["agent_host"], &router["ha_standby_host"]),
        (&json!(gw2), &json!(gw1)),
        "taken over; the dead host stays the standby (no other live agent)"
    );
    let active_ns = format!("{gw2}-{r1}");
    let daemon = daemon_pids(&active_ns);
    assert_eq!(daemon.len(), 1, "one charon on gateway 2");

    // The old master comes back as the standby: namespace and ports, no daemon.
    let pinger = Pinger::start(&lab, 1, 2, 6);
    lab.lab_command(&["power-on", "1"]);
    lab.wait_for_host(&gw1, true).await;
    let standby_ns = format!("{gw1}-{r1}");
    let started = Instant::now();
    while !lab.namespaces().contains(&standby_ns) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the revived gateway prepares the standby"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (sent, received) = pinger.finish();
    assert!(
        sent - received <= 1,
        "the old master's return disturbed the tunnel: {received} of {sent}"
    );
    assert!(
        daemon_pids(&standby_ns).is_empty(),
        "the revived standby runs no daemon"
    );
    assert_eq!(
        daemon_pids(&active_ns),
        daemon,
        "gateway 2's charon untouched"
    );
    let agents = lab.lab_gateway_pids();
    assert_eq!(agents.len(), 2);

    lab.lab_command(&["down"]);
    let running: Vec<&String> = agents
        .iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&lab.prefix))
        })
        .collect();
    assert!(
        running.is_empty(),
        "lab down left agents running: {running:?}"
    );
    assert_eq!(lab.namespaces(), Vec::<String>::new());
}

/// How a command ended: its exit code or the signal that killed it, and whether it
/// printed ping's summary.
#[derive(Debug, PartialEq, Eq)]
struct Ended {
    code: Option<i32>,
    signal: Option<i32>,
    summary: bool,
}

/// Runs `command` (a ping) until it printed two replies, sends it `signal` (by its pid
/// only) and returns how it ended.
fn ping_until_signalled(mut command: Command, signal: &str) -> Ended {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the ping");
    let stdout = child.stdout.take().expect("stdout");
    let (lines, printed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let mut output = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while output.matches("bytes from").count() < 2 {
        let Ok(line) = printed.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        else {
            let _ = child.kill();
            panic!("no two ping replies within 20 s:\n{output}");
        };
        output += &line;
        output.push('\n');
    }
    let _ = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    // The rest of its output, until the pipe closes (bounded: a ping left running would
    // keep it open).
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Ok(line) = printed.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        output += &line;
        output.push('\n');
    }
    Ended {
        code: status.code(),
        signal: status.signal(),
        summary: output.contains("packets transmitted"),
    }
}

/// `vpnaas lab exec` behaves like the command it runs: a ping through it, sent SIGINT or
/// SIGTERM, ends as the same ping run directly in the namespace does (SIGINT: summary,
/// exit 0; SIGTERM: killed) and leaves nothing running; an exit status is the command's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_exec_behaves_like_the_command_it_runs() {
    let lab = Lab::start(1).await;
    let namespace = format!("{}-h1", lab.prefix);
    let ping = ["ping", "-i", "0.2", "10.1.0.1"];
    let through_lab = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vpnaas"));
        command
            .args(["lab", "exec", "1", "--prefix", &lab.prefix, "--"])
            .args(ping);
        command
    };
    let directly = || {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &namespace]).args(ping);
        command
    };
    for signal in ["INT", "TERM"] {
        let direct = ping_until_signalled(directly(), signal);
        assert!(!runs_anything(&namespace), "the direct ping stopped");
        let through = ping_until_signalled(through_lab(), signal);
        assert_eq!(through, direct, "SIG{signal}");
        assert!(
            !runs_anything(&namespace),
            "SIG{signal} left the ping running"
        );
    }
    assert_eq!(
        ping_until_signalled(through_lab(), "INT"),
        Ended {
            code: Some(0),
            signal: None,
            summary: true
        }
    );
    let out = vpnaas(
        &lab.url,
        &[
            "lab",
            "exec",
            "1",
            "--prefix",
            &lab.prefix,
            "--",
            "sh",
            "-c",
            "exit 7",
        ],
    );
    assert_eq!(out.status.code(), Some(7));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `lab down` waits for the agents to remove the lab's routers, bounded: with the agent
/// killed, it fails after `--timeout` naming the router's namespace and its charon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_down_names_what_a_dead_agent_left() {
    let mut lab = Lab::start_as(2, Mode::Separate).await;
    let policies = lab.policies(json!({"ike_version": "v2"}), json!({})).await;
    let s1 = lab.service(1).await;
    let c12 = lab.connect(&s1, 1, 2, &policies, "left-behind").await;
    lab.wait_status(&c12, "DOWN", Duration::from_secs(20)).await;
    let charon = charon_pid(&lab, 1);
    let agent = &mut lab.processes[1];
    agent.kill().expect("kill the agent");
    agent.wait().expect("reap the agent");
    let out = vpnaas(
        &lab.url,
        &[
            "lab",
            "down",
            "--timeout",
            "1",
            "--prefix",
            &lab.prefix,
            "--fabric-namespace",
            &lab.fabric,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    for left in [
        format!("namespace {}", lab.router_namespace(1)),
        format!("charon (pid {charon}"),
    ] {
        assert!(stderr.contains(&left), "'{left}' not named: {stderr}");
    }
}
