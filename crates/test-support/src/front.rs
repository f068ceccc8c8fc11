//! The HTTP front of an OpenStack deployment with vpnaas: Debian's haproxy on a free
//! loopback port running the configuration the documentation ships
//! (`docs/deploy/haproxy-front.cfg`, its three addresses filled in), which sends vpnaas's
//! requests to vpnaas and everything else to Neutron — so clients find both behind the
//! one `network` endpoint of the catalog, and the documented routes are the tested ones.
//! The haproxy process group is killed on drop.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::Group;

/// Debian's haproxy.
pub const HAPROXY: &str = "/usr/sbin/haproxy";

/// A running front.
pub struct Front {
    group: Group,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    dir: tempfile::TempDir,
}

impl Front {
    /// Starts haproxy on a free port with the documented configuration: vpnaas's
    /// requests go to `vpnaas_url`, all others to `neutron_url` (both
    /// `http://HOST:PORT`); waits until it listens.
    ///
    /// # Panics
    /// When haproxy is missing, refuses the config or does not listen within 30 s.
    pub fn start(vpnaas_url: &str, neutron_url: &str) -> Front {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = crate::free_port();
        let cfg = dir.path().join("haproxy.cfg");
        let text = config(port, server(vpnaas_url), server(neutron_url));
        std::fs::write(&cfg, text).expect("haproxy.cfg");
        let mut command = Command::new(HAPROXY);
        command.arg("-db").arg("-f").arg(&cfg);
        let group = Group::spawn("haproxy", command, &dir.path().join("haproxy.log"));
        let mut front = Front {
            group,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        front.wait_until_up(port);
        front
    }

    fn wait_until_up(&mut self, port: u16) {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = self.group.exited() {
                panic!("haproxy exited ({status}): {}", self.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "haproxy does not listen on {port}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// haproxy's own output (config warnings, errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }
}

/// `HOST:PORT` of an `http://HOST:PORT` URL.
fn server(url: &str) -> &str {
    let address = url.strip_prefix("http://").expect("an http:// URL");
    address.trim_end_matches('/')
}

/// The documented configuration with its three addresses filled in.
fn config(port: u16, vpnaas: &str, neutron: &str) -> String {
    let documented = crate::workspace_root().join("docs/deploy/haproxy-front.cfg");
    std::fs::read_to_string(&documented)
        .unwrap_or_else(|e| panic!("{}: {e}", documented.display()))
        .replace("@FRONT@", &format!("127.0.0.1:{port}"))
        .replace("@VPNAAS@", vpnaas)
        .replace("@NEUTRON@", neutron)
}
