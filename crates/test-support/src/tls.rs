//! HTTPS in front of a test's service, signed by a private CA of the test's own: the
//! `openssl` command makes the CA and a certificate for 127.0.0.1, and Debian's haproxy
//! terminates TLS on a free loopback port and passes requests on to the plain-HTTP
//! backend. Its process group is killed on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::front::HAPROXY;
use crate::process::Group;

/// A running TLS terminator.
pub struct TlsProxy {
    _group: Group,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The private CA's certificate (PEM), which a client must trust.
    pub ca: PathBuf,
    _dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl command");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA (`ca.pem`) and a certificate with its key for 127.0.0.1 signed by it
/// (`server.pem`, as haproxy reads it: certificate then key).
fn certificates(dir: &Path) {
    let curve = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &curve,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=vpnaas test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req"][..],
            &curve,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("san.ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    let mut pem = std::fs::read(dir.join("server.crt")).expect("server.crt");
    pem.extend(std::fs::read(dir.join("server.key")).expect("server.key"));
    std::fs::write(dir.join("server.pem"), pem).expect("server.pem");
}

impl TlsProxy {
    /// HTTPS on a free port, passed on to `backend` (`HOST:PORT`).
    ///
    /// # Panics
    /// When openssl or haproxy fail, or it does not listen within 30 s.
    pub fn start(backend: &str) -> TlsProxy {
        let dir = tempfile::tempdir().expect("tempdir");
        certificates(dir.path());
        let port = crate::free_port();
        let cfg = format!(
            "defaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\
             frontend tls\n  bind 127.0.0.1:{port} ssl crt {}\n  default_backend plain\n\
             backend plain\n  server plain {backend}\n",
            dir.path().join("server.pem").display()
        );
        std::fs::write(dir.path().join("haproxy.cfg"), cfg).expect("haproxy.cfg");
        let mut command = Command::new(HAPROXY);
        command
            .arg("-db")
            .arg("-f")
            .arg(dir.path().join("haproxy.cfg"));
        let mut group = Group::spawn("haproxy-tls", command, &dir.path().join("haproxy.log"));
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(group.exited().is_none(), "haproxy exited: see its log");
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "haproxy does not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsProxy {
            _group: group,
            url: format!("https://127.0.0.1:{port}"),
            ca: dir.path().join("ca.pem"),
            _dir: dir,
        }
    }
}
