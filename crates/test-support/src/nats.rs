//! A nats-server of the test's own on loopback, killed (by pid) when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running nats-server this test started.
pub struct NatsServer {
    child: Child,
    port: u16,
}

impl NatsServer {
    /// Starts one on a free port.
    pub fn start() -> NatsServer {
        NatsServer::start_on(crate::free_port())
    }

    /// Starts one on `port` (again after [`NatsServer::stop`], to restart it) and waits
    /// until it accepts connections.
    ///
    /// # Panics
    /// When nats-server is missing or does not listen within 10 s.
    pub fn start_on(port: u16) -> NatsServer {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (scripts/setup.sh installs it)");
        let server = NatsServer { child, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nats-server does not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it (by pid) and waits for it to end; returns its port.
    pub fn stop(mut self) -> u16 {
        self.kill();
        self.port
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
