//! A RabbitMQ of the test's own, for a Neutron lab whose server and agents talk over a
//! real message bus: Debian's broker run directly (`/usr/lib/rabbitmq/bin`, not the
//! `su rabbitmq` wrapper) with its own node name, loopback AMQP and distribution ports,
//! data, log and cookie directory, and an `epmd` of its own on a port of its own (started
//! here in the foreground: one the broker spawned would detach and outlive the test).
//! Broker and epmd are process groups killed on drop; the broker's helpers
//! (`erl_child_setup`, `inet_gethost`) set up sessions of their own but end with it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::Group;

/// Debian's broker start script (the one under `/usr/sbin` would `su` to `rabbitmq`).
pub const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// A running broker. Fields drop in order: the broker, its epmd, then its files.
pub struct RabbitMq {
    broker: Group,
    _epmd: Group,
    /// Its loopback AMQP port (user `guest`, password `guest`, vhost `/`).
    pub port: u16,
    started: Instant,
    start_time: Option<Duration>,
    dir: tempfile::TempDir,
}

impl RabbitMq {
    /// Starts one and waits until it speaks AMQP (~10 s on two busy cores).
    ///
    /// # Panics
    /// See [`RabbitMq::spawn`] and [`RabbitMq::ready`].
    pub fn start() -> RabbitMq {
        let mut rabbit = RabbitMq::spawn();
        rabbit.ready();
        rabbit
    }

    /// Starts one without waiting for it, so that a test can start what talks to it
    /// meanwhile (oslo.messaging retries until the broker answers); see
    /// [`RabbitMq::ready`].
    ///
    /// # Panics
    /// When the broker or epmd cannot be started.
    pub fn spawn() -> RabbitMq {
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("tempdir");
        let epmd_port = crate::free_port();
        let epmd = epmd(dir.path(), epmd_port);
        let port = crate::free_port();
        let broker = broker(dir.path(), epmd_port, port);
        RabbitMq {
            broker,
            _epmd: epmd,
            port,
            started,
            start_time: None,
            dir,
        }
    }

    /// Waits until it speaks AMQP; returns how long it took since [`RabbitMq::spawn`].
    ///
    /// # Panics
    /// When the broker exits, or does not speak AMQP within 90 s of its start.
    pub fn ready(&mut self) -> Duration {
        if let Some(time) = self.start_time {
            return time;
        }
        while !speaks_amqp(self.port) {
            if let Some(status) = self.broker.exited() {
                panic!("rabbitmq-server exited ({status}): {}", self.log());
            }
            assert!(
                self.started.elapsed() < Duration::from_secs(90),
                "rabbitmq does not speak AMQP on {}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let time = self.started.elapsed();
        eprintln!("rabbitmq on 127.0.0.1:{} ready after {time:?}", self.port);
        self.start_time = Some(time);
        time
    }

    /// oslo.messaging's `transport_url` for it.
    pub fn transport_url(&self) -> String {
        format!("rabbit://guest:guest@127.0.0.1:{}/", self.port)
    }

    /// The broker's leader pid (its start script's, whose group holds the Erlang VM).
    pub fn pid(&self) -> u32 {
        self.broker.pid()
    }

    fn log(&self) -> String {
        crate::neutron::tail(
            &std::fs::read_to_string(self.dir.path().join("rabbitmq.log")).unwrap_or_default(),
        )
    }
}

fn epmd(dir: &Path, port: u16) -> Group {
    let mut command = Command::new("epmd");
    command
        .args(["-port", &port.to_string()])
        .env("ERL_EPMD_ADDRESS", "127.0.0.1");
    let epmd = Group::spawn("epmd", command, &dir.join("epmd.log"));
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "epmd does not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    epmd
}

/// The broker, every path and port its own; no plugins; the system's
/// `/etc/rabbitmq/rabbitmq-env.conf` replaced by an empty one.
fn broker(dir: &Path, epmd_port: u16, port: u16) -> Group {
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("rabbitmq file");
        path
    };
    let conf = file(
        "rabbitmq.conf",
        &format!("listeners.tcp.1 = 127.0.0.1:{port}\n"),
    );
    let env_conf = file("rabbitmq-env.conf", "");
    let plugins = file("enabled_plugins", "[].\n");
    let node = format!("vpnaas-{}-{port}@localhost", std::process::id());
    let mut command = Command::new(RABBITMQ_SERVER);
    command
        .current_dir(dir)
        .env("HOME", dir)
        .env("ERL_EPMD_PORT", epmd_port.to_string())
        .env("RABBITMQ_CONF_ENV_FILE", env_conf)
        .env("RABBITMQ_CONFIG_FILE", conf)
        .env("RABBITMQ_ENABLED_PLUGINS_FILE", plugins)
        .env("RABBITMQ_NODENAME", node)
        .env("RABBITMQ_DIST_PORT", crate::free_port().to_string())
        .env(
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
            "-kernel inet_dist_use_interface {127,0,0,1}",
        )
        .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
        .env("RABBITMQ_LOG_BASE", dir.join("log"))
        .env("RABBITMQ_PLUGINS_EXPAND_DIR", dir.join("plugins"))
        .env("RABBITMQ_PID_FILE", dir.join("rabbitmq.pid"))
        .env("RABBITMQ_LOGS", "-");
    Group::spawn("rabbitmq-server", command, &dir.join("rabbitmq.log"))
}

/// `true` once the broker answers AMQP's protocol header with `connection.start` (a frame
/// of type 1): the port open alone may be a broker still booting.
fn speaks_amqp(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut socket) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
    let mut frame_type = [0u8; 1];
    socket.write_all(b"AMQP\x00\x00\x09\x01").is_ok()
        && socket.read_exact(&mut frame_type).is_ok()
        && frame_type[0] == 1
}
