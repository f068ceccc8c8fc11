//! The Libreswan driver: pluto as a [`Daemon`] of the [`Supervisor`], one per router, in
//! the router's namespace (and, for its fixed `/usr/libexec/ipsec/addconn` path, a private
//! mount of the Libreswan root), with its own control socket, run, NSS and ipsec.d
//! directories and log under `<state_dir>/<router>/libreswan/`. Connections are added
//! (`addconn`) and deleted (`whack --delete`) one by one; a change never restarts pluto,
//! and a new key alone is read again (`--rereadsecrets`) without touching any SA.
//! Libreswan has no event stream: `whack --status` is read every `status_interval` and on
//! every sync, and pluto's log explains failures.
//!
//! `daemon`: pluto's start and the poll that stands in for events; `connections`: its
//! files, adding, deleting and initiating; `status`: what `whack` and pluto's log say of
//! each connection; `conf`: the typed `ipsec.conf` writer.

pub mod conf;
mod connections;
mod daemon;
mod nss;
pub mod status;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;
use vpnaas_model::agent::ConnectionSpec;
use vpnaas_model::enums::DriverKind;

use crate::command;
use crate::config::{AgentConfig, LibreswanConfig};
use crate::daemon::{Daemon, Loaded, Observation};
use crate::status::Failure;
use crate::supervisor::{Supervisor, Task};
use crate::{Metrics, Result};

/// The Libreswan driver for all routers of this agent.
pub type Libreswan = Supervisor<Pluto>;

/// The Libreswan driver; `kernel_refuses` is the kernel's refusal of an ESP SA at agent
/// start, if it refused (pluto's SAs always go to the kernel). It signals `wake` with a
/// router id when that router's status may have changed.
pub fn driver(
    config: AgentConfig,
    kernel_refuses: Option<String>,
    wake: mpsc::UnboundedSender<String>,
    metrics: Metrics,
) -> Libreswan {
    let pluto = Pluto {
        config: config.libreswan.clone(),
        wake: wake.clone(),
    };
    Supervisor::new(pluto, config, kernel_refuses, wake, metrics)
}

/// What differs about pluto.
pub struct Pluto {
    config: LibreswanConfig,
    wake: mpsc::UnboundedSender<String>,
}

/// `whack` on one pluto's control socket.
#[derive(Clone)]
struct Whack {
    tool: PathBuf,
    socket: PathBuf,
}

impl Whack {
    async fn run(&self, args: &[&str]) -> Result<String> {
        let socket = self.socket.to_string_lossy();
        let mut all = vec!["--ctlsocket", socket.as_ref()];
        all.extend_from_slice(args);
        command::run(&self.tool.to_string_lossy(), &all).await
    }
}

/// Last failure per connection, learnt from pluto's log by its watcher.
type SharedFailures = Arc<std::sync::Mutex<crate::status::Failures>>;

/// A router's pluto, as the driver talks to it.
pub struct Control {
    dir: PathBuf,
    whack: Whack,
    failures: SharedFailures,
    /// Reads pluto's status and log, and wakes the agent when they change.
    _watcher: Task,
}

#[async_trait]
impl Daemon for Pluto {
    type Control = Control;
    const NAME: &'static str = "pluto";
    const KIND: DriverKind = DriverKind::Libreswan;
    const PID_FILE: &'static str = "run/pluto.pid";

    async fn command(&self, namespace: &str, dir: &Path) -> Result<tokio::process::Command> {
        daemon::command(&self.config, namespace, dir).await
    }

    async fn attach(&self, router_id: &str, dir: &Path) -> Result<Control> {
        daemon::attach(self, router_id, dir).await
    }

    fn refusal(&self, spec: &ConnectionSpec) -> Option<Failure> {
        connections::refusal(spec)
    }

    async fn prepare(&self, control: &mut Control, wanted: &[&ConnectionSpec]) -> Result<()> {
        connections::write_files(control, wanted).await
    }

    async fn load(&self, control: &mut Control, spec: &ConnectionSpec) -> Result<()> {
        connections::add(&self.config, control, spec).await
    }

    async fn load_credentials(
        &self,
        control: &mut Control,
        wanted: &[&ConnectionSpec],
        changed: &[&ConnectionSpec],
    ) -> Result<()> {
        // pluto reads the whole secrets file again; the SAs up are left alone. A renewed
        // certificate is read only when its connection is added: that one is added
        // again and negotiated anew (pluto holds no way to swap it under its SAs).
        connections::write_files(control, wanted).await?;
        let renewed: Vec<&ConnectionSpec> = changed
            .iter()
            .copied()
            .filter(|spec| spec.certificate.is_some())
            .collect();
        for spec in &renewed {
            connections::add(&self.config, control, spec).await?;
        }
        connections::initiate(control, &renewed).await
    }

    async fn reauthenticate(
        &self,
        control: &mut Control,
        spec: &ConnectionSpec,
        _concluded: u64,
    ) -> Result<()> {
        connections::reauthenticate(control, spec).await
    }

    async fn unload(&self, control: &mut Control, id: &str) -> Result<()> {
        connections::delete(control, id).await
    }

    async fn negotiate(
        &self,
        control: &mut Control,
        _loaded: &Loaded,
        new: &[&ConnectionSpec],
    ) -> Result<()> {
        connections::initiate(control, new).await
    }

    async fn observe(&self, control: &Control, loaded: &Loaded) -> Option<Observation> {
        status::observe(control, loaded).await
    }
}
