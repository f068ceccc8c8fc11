//! A Neutron of the test's own: the real neutron 29.0.0 + neutron-vpnaas 29.0.0 API
//! (from `.venv-neutron`, made by `scripts/setup.sh`; `VPNAAS_TEST_NEUTRON_VENV`
//! overrides) under uWSGI on a free loopback port, on a private MariaDB ([`mariadb`]),
//! with the router and vpnaas service plugins (strongSwan's IPsec service driver), ML2
//! with flat and VLAN networks. By default no agents and no message bus
//! (`transport_url = fake:/`); given a bus ([`NeutronOptions::with_bus`]), also the RPC
//! server agents talk to (`neutron-rpc-server`) and port binding by ML2/OVS, as the
//! network node lab ([`crate::netnode`]) needs. `neutron-periodic-workers` is not run.
//! It authenticates callers with Keystone (keystonemiddleware with Neutron's service user)
//! or, without Keystone, takes their identity from the `X-Project-Id`/`X-Roles` headers.
//! Its files live in a temporary directory; uWSGI (master and workers, one process
//! group) and MariaDB are killed on drop. [`api`] has the calls tests make on it.

mod api;
mod conf;
mod mariadb;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub use api::{Identity, NetworkIds, Response};
pub use conf::{EXTERNAL_PHYSNET, TENANT_PHYSNET};
pub use mariadb::MARIADBD;

use crate::keystone::{self, Keystone};
use crate::process::Group;
use mariadb::MariaDb;

/// The neutron release of `.venv-neutron` (bump with setup.sh's pin).
pub const PIN: &str = "29.0.0";

/// The virtualenv Neutron runs from.
pub fn venv() -> PathBuf {
    std::env::var_os("VPNAAS_TEST_NEUTRON_VENV").map_or_else(
        || crate::workspace_root().join(".venv-neutron"),
        PathBuf::from,
    )
}

/// How Neutron learns who calls it.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    /// Keystone tokens (`X-Auth-Token`), validated by keystonemiddleware against this
    /// Keystone with Neutron's service user.
    Keystone(&'a Keystone),
    /// No authentication: the caller's identity is taken from `X-Project-Id`,
    /// `X-User-Id` and `X-Roles` (Neutron's policy still applies).
    Headers,
}

/// What [`Neutron::start`] starts.
#[derive(Clone, Copy)]
pub struct NeutronOptions<'a> {
    pub auth: Auth<'a>,
    /// uWSGI worker processes (each ~190 MB RSS; one serves one request at a time).
    pub workers: u32,
    /// The message bus (oslo.messaging's `transport_url`, e.g. a lab's
    /// [`RabbitMq`](crate::rabbitmq::RabbitMq)): with one, a `neutron-rpc-server` serves
    /// agents on it and ML2 binds ports with the openvswitch mechanism driver; without,
    /// no bus (`fake:/`), no RPC server, no port binding.
    pub transport_url: Option<&'a str>,
}

impl<'a> NeutronOptions<'a> {
    /// Behind `keystone`, two workers.
    pub fn keystone(keystone: &'a Keystone) -> NeutronOptions<'a> {
        NeutronOptions {
            auth: Auth::Keystone(keystone),
            workers: 2,
            transport_url: None,
        }
    }

    /// Identity from headers, two workers.
    pub fn headers() -> NeutronOptions<'static> {
        NeutronOptions {
            auth: Auth::Headers,
            workers: 2,
            transport_url: None,
        }
    }

    /// The same, with agents on the bus `transport_url`.
    pub fn with_bus(self, transport_url: &'a str) -> NeutronOptions<'a> {
        NeutronOptions {
            transport_url: Some(transport_url),
            ..self
        }
    }
}

/// A running Neutron API. Fields drop in order: uWSGI, the RPC server, then MariaDB,
/// then the files.
pub struct Neutron {
    api: Group,
    rpc: Option<Group>,
    _db: MariaDb,
    /// `http://127.0.0.1:PORT` (the API's root; its resources are under `/v2.0`).
    pub url: String,
    /// An identity Neutron takes for an admin: the Keystone admin's token, or admin
    /// headers of project `lab-admin`.
    pub admin: Identity,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Neutron {
    /// Starts MariaDB (from the schema template, made first if missing) and the API, and
    /// waits until the API lists IKE policies for its admin.
    pub async fn start(options: &NeutronOptions<'_>) -> Neutron {
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("tempdir");
        let db = MariaDb::start(&dir.path().join("db"));
        let db_ready = started.elapsed();
        let port = crate::free_port();
        write_configs(dir.path(), port, db.port, options);
        let mut neutron = Neutron {
            api: uwsgi(dir.path()),
            rpc: options.transport_url.map(|_| rpc_server(dir.path())),
            _db: db,
            url: format!("http://127.0.0.1:{port}"),
            admin: admin_identity(options.auth),
            http: reqwest::Client::new(),
            dir,
        };
        neutron.wait_until_up().await;
        eprintln!(
            "neutron on {} ready after {:?} (MariaDB after {db_ready:?})",
            neutron.url,
            started.elapsed()
        );
        neutron
    }

    /// Its `neutron-api.log`, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("neutron-api.log")).unwrap_or_default()
    }

    /// Its `neutron-rpc.log` (empty without a bus), for a failing test's message.
    pub fn rpc_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("neutron-rpc.log")).unwrap_or_default()
    }

    /// The directory holding its configuration files (`neutron.conf`, `ml2_conf.ini`),
    /// which agents on its bus read too.
    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    async fn wait_until_up(&mut self) {
        let started = Instant::now();
        let admin = self.admin.clone();
        loop {
            if let Ok(answer) = self
                .try_call(&admin, reqwest::Method::GET, "/v2.0/vpn/ikepolicies", None)
                .await
                && answer.status.is_success()
            {
                return;
            }
            if let Some(status) = self.api.exited() {
                panic!("uWSGI exited ({status}): {}", tail(&self.uwsgi_log()));
            }
            if let Some(status) = self.rpc.as_mut().and_then(Group::exited) {
                panic!(
                    "neutron-rpc-server exited ({status}): {}",
                    tail(&self.rpc_log())
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "neutron does not answer on {}: {}\n{}",
                self.url,
                tail(&self.uwsgi_log()),
                tail(&self.log())
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn uwsgi_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("uwsgi.log")).unwrap_or_default()
    }
}

/// The last lines of a log, for a panic's message.
pub(crate) fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn admin_identity(auth: Auth) -> Identity {
    match auth {
        Auth::Keystone(keystone) => Identity::Token(keystone.admin_token.clone()),
        Auth::Headers => Identity::headers("lab-admin", &["admin"]),
    }
}

fn write_configs(dir: &Path, port: u16, db_port: u16, options: &NeutronOptions) {
    let keystone = match options.auth {
        Auth::Keystone(k) => Some(conf::KeystoneAuth {
            url: &k.url,
            user: keystone::NEUTRON_USER,
            password: keystone::NEUTRON_PASSWORD,
            project: keystone::SERVICE_PROJECT,
        }),
        Auth::Headers => None,
    };
    let files = [
        (
            "neutron.conf",
            conf::neutron(dir, db_port, keystone.as_ref(), options.transport_url),
        ),
        ("ml2_conf.ini", conf::ml2(options.transport_url.is_some())),
        ("api-paste.ini", conf::API_PASTE.to_string()),
        (
            "uwsgi.ini",
            conf::uwsgi(dir, &venv(), port, options.workers),
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("neutron config file");
    }
    for sub in ["state", "lock"] {
        std::fs::create_dir_all(dir.join(sub)).expect("neutron state dirs");
    }
}

fn uwsgi(dir: &Path) -> Group {
    let mut command = Command::new(venv().join("bin/uwsgi"));
    command.arg("--ini").arg(dir.join("uwsgi.ini"));
    Group::spawn("uwsgi", command, &dir.join("uwsgi.log"))
}

/// `neutron-rpc-server`: the RPC half of neutron-server (the API under uWSGI serves no
/// RPC), which agents report to and fetch routers and ports from.
fn rpc_server(dir: &Path) -> Group {
    let mut command = Command::new(venv().join("bin/neutron-rpc-server"));
    for file in ["neutron.conf", "ml2_conf.ini"] {
        command.arg("--config-file").arg(dir.join(file));
    }
    command.arg("--log-file").arg(dir.join("neutron-rpc.log"));
    Group::spawn("neutron-rpc-server", command, &dir.join("neutron-rpc.out"))
}
