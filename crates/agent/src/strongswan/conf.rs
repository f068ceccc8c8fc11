//! The per-router `strongswan.conf`: a typed writer whose only inputs are the agent's own
//! paths and settings (never tenant text). The plugin list is explicit, so nothing depends
//! on /etc/strongswan.d; `kdf` is required by charon 5.9, and `threads` stays at 16
//! (kernel-libipsec keeps several workers busy; fewer deadlocks VICI).

use std::fmt::Write as _;
use std::path::Path;

use crate::config::Retransmit;
use crate::data_plane::Esp;

/// Renders the configuration of one router's charon, with its ESP where `esp` says.
pub fn render(dir: &Path, esp: Esp, retransmit: Retransmit) -> String {
    let kernel = match esp {
        Esp::Userspace => "kernel-libipsec kernel-netlink",
        Esp::Kernel => "kernel-netlink",
    };
    let socket = dir.join("run").join("charon.vici");
    let log = dir.join("charon.log");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# written by the vpnaas agent; changes are overwritten"
    );
    let _ = writeln!(out, "charon {{");
    let _ = writeln!(out, "  load_modular = no");
    let _ = writeln!(
        out,
        "  load = random nonce openssl kdf pem pkcs1 pkcs8 x509 pubkey revocation constraints {kernel} socket-default vici"
    );
    let _ = writeln!(out, "  threads = 16");
    let _ = writeln!(
        out,
        "  retransmit_timeout = {}\n  retransmit_tries = {}\n  retransmit_base = {}\n  retransmit_limit = {}",
        retransmit.timeout, retransmit.tries, retransmit.base, retransmit.limit
    );
    let _ = writeln!(
        out,
        "  plugins {{\n    vici {{\n      socket = unix://{}\n    }}\n  }}",
        socket.display()
    );
    let _ = writeln!(
        out,
        "  filelog {{\n    vpnaas {{\n      path = {}\n      time_format = %H:%M:%S\n      time_add_ms = yes\n      flush_line = yes\n      default = 1\n      ike = 1\n      cfg = 1\n      knl = 1\n    }}\n  }}",
        log.display()
    );
    let _ = writeln!(out, "}}");
    out
}
