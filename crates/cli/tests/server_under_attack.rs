//! `vpnaas server` as a process under a connection flood on loopback: thousands of
//! clients that connect, start a request and go silent. The server keeps answering, holds
//! a bounded number of connections, and once the flood ends its file descriptors and
//! memory return to where they were.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Connections the flood opens: far over the server's cap (1024), well under the file
/// descriptors a test process may hold.
const FLOOD: usize = 4000;

struct ServerProcess {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> ServerProcess {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = vpnaas_test_support::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_vpnaas"))
        .args(["server", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path())
        .env("VPNAAS_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("vpnaas server");
    let server = ServerProcess {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    wait_until("the server answers", || answers(&server.url));
    server
}

fn answers(url: &str) -> bool {
    let Ok(mut tcp) = TcpStream::connect(url.trim_start_matches("http://")) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    use std::io::{Read, Write};
    if tcp
        .write_all(
            b"GET /v2.0/vpn/ikepolicies HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Resident memory in KiB and open file descriptors of a process.
fn footprint(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .count();
    (rss, fds)
}

#[test]
fn a_connection_flood_is_bounded_and_leaves_nothing_behind() {
    let server = start_server();
    let pid = server.child.id();
    for _ in 0..50 {
        assert!(answers(&server.url));
    }
    let (baseline_rss, baseline_fds) = footprint(pid);

    let address = server.url.trim_start_matches("http://").to_string();
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        use std::io::Write;
        // The kernel may refuse connections while the server sheds them: that is fine.
        if let Ok(mut tcp) = TcpStream::connect(&address) {
            let _ = tcp.write_all(b"GET /v2.0 HTTP/1.1\r\nHost: localhost\r\n");
            flood.push(tcp);
        }
    }
    let (flood_rss, flood_fds) = footprint(pid);
    assert!(
        flood_fds <= baseline_fds + 1024 + 64 + 16,
        "the server holds {flood_fds} descriptors under the flood (cap 1024 served + 64 being refused)"
    );
    drop(flood);

    wait_until("the server answers after the flood", || {
        answers(&server.url)
    });
    // Memory: the allocator gives freed pages back within seconds (jemalloc's background
    // thread); glibc's malloc kept them (baseline + the flood, for good).
    let limit = baseline_rss + baseline_rss / 4 + 4096;
    let mut last = (0, 0);
    wait_until("memory and descriptors return to their baseline", || {
        last = footprint(pid);
        last.0 <= limit && last.1 <= baseline_fds + 2
    });
    eprintln!(
        "RSS {baseline_rss} KiB → {flood_rss} KiB under the flood → {} KiB after; descriptors {baseline_fds} → {flood_fds} → {}",
        last.0, last.1
    );
}
