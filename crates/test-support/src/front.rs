//! The HTTP front of an OpenStack deployment with vpnaas: Debian's haproxy on a free
//! loopback port, sending the requests a route list names to vpnaas and everything else
//! to Neutron — so clients find both behind the one `network` endpoint of the catalog.
//! The config is written from the route list (data, not a template of test input); the
//! haproxy process group is killed on drop.

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::Group;

/// Debian's haproxy.
pub const HAPROXY: &str = "/usr/sbin/haproxy";

/// How a route matches a request's path (without its query string).
#[derive(Debug, Clone, Copy)]
pub enum PathMatch {
    /// The path begins with this.
    Prefix(&'static str),
    /// The path matches this regular expression (PCRE; no `'`).
    Regex(&'static str),
}

/// Requests sent to vpnaas: those of `method` (any when `None`) whose path matches.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: Option<&'static str>,
    pub path: PathMatch,
}

impl Route {
    /// Any method on paths beginning with `prefix`.
    pub const fn any(prefix: &'static str) -> Route {
        Route {
            method: None,
            path: PathMatch::Prefix(prefix),
        }
    }

    /// `method` on paths matching `regex`.
    pub const fn only(method: &'static str, regex: &'static str) -> Route {
        Route {
            method: Some(method),
            path: PathMatch::Regex(regex),
        }
    }
}

/// What vpnaas serves behind the front: its own API (`/v2.0/vpn/…`), and the requests
/// that could take a router or subnet from a VPN service (deleting a router, changing
/// its gateway, removing an interface or external gateways, deleting a subnet), which
/// vpnaas checks before passing them on to Neutron. Each also with a `.json` suffix.
/// A test needing more (flavors, agent scheduler paths) passes its own list.
pub const VPNAAS_ROUTES: &[Route] = &[
    Route::any("/v2.0/vpn/"),
    Route::only("DELETE", r"^/v2\.0/routers/[^/.]+(\.json)?$"),
    Route::only("PUT", r"^/v2\.0/routers/[^/.]+(\.json)?$"),
    Route::only(
        "PUT",
        r"^/v2\.0/routers/[^/.]+/remove_router_interface(\.json)?$",
    ),
    Route::only(
        "PUT",
        r"^/v2\.0/routers/[^/.]+/remove_external_gateways(\.json)?$",
    ),
    Route::only("DELETE", r"^/v2\.0/subnets/[^/.]+(\.json)?$"),
];

/// A running front.
pub struct Front {
    group: Group,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    dir: tempfile::TempDir,
}

impl Front {
    /// Starts haproxy on a free port: requests matching `routes` go to `vpnaas_url`, all
    /// others to `neutron_url` (both `http://HOST:PORT`); waits until it listens.
    ///
    /// # Panics
    /// When haproxy is missing, refuses the config or does not listen within 30 s.
    pub fn start(vpnaas_url: &str, neutron_url: &str, routes: &[Route]) -> Front {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = crate::free_port();
        let cfg = dir.path().join("haproxy.cfg");
        let text = config(port, server(vpnaas_url), server(neutron_url), routes);
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

/// The haproxy config: one frontend, a `use_backend vpnaas` line per route, Neutron by
/// default.
fn config(port: u16, vpnaas: &str, neutron: &str, routes: &[Route]) -> String {
    let mut cfg = format!(
        "global\n  log stderr format short local0 warning\n\
         defaults\n  mode http\n  log global\n  timeout connect 5s\n  timeout client 120s\n  timeout server 120s\n\
         frontend front\n  bind 127.0.0.1:{port}\n"
    );
    for route in routes {
        let _ = writeln!(cfg, "  use_backend vpnaas if {}", condition(route));
    }
    let _ = write!(
        cfg,
        "  default_backend neutron\nbackend vpnaas\n  server vpnaas {vpnaas}\n\
         backend neutron\n  server neutron {neutron}\n"
    );
    cfg
}

/// A route as an anonymous ACL condition; single quotes keep the regex uninterpreted.
fn condition(route: &Route) -> String {
    let path = match route.path {
        PathMatch::Prefix(prefix) => format!("{{ path_beg '{}' }}", quoted(prefix)),
        PathMatch::Regex(regex) => format!("{{ path_reg '{}' }}", quoted(regex)),
    };
    match route.method {
        Some(method) => format!("{{ method {method} }} {path}"),
        None => path,
    }
}

fn quoted(text: &str) -> &str {
    assert!(
        !text.contains('\''),
        "a route may not contain a quote: {text}"
    );
    text
}
