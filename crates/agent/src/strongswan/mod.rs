//! The strongSwan driver: charon as a [`Daemon`] of the [`Supervisor`], one per router, in
//! the router's namespace with a private `/run`, configured over VICI. Each connection is
//! loaded (`load-shared` + `load-conn`) and removed (`unload-conn` + `terminate` +
//! `unload-shared`) on its own: changing one connection never restarts charon or touches
//! another, and a new key alone is only loaded (`load-shared`), its SAs untouched. Status
//! comes from `list-sas`, refreshed whenever charon sends an up/down/rekey event.
//!
//! `daemon`: charon's start and its event stream; `connections`: loading, unloading and
//! initiating; `dpd`: the DPD timeout charon does not keep for IKEv2; `reauth`: new
//! credentials and re-authentication in place; `status`: what `list-sas` and charon's log
//! say of each connection.

mod conf;
mod connections;
mod daemon;
mod dpd;
mod reauth;
mod status;
mod unmatched;
mod vici;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::sync::{Mutex, mpsc};
use vpnaas_model::agent::ConnectionSpec;
use vpnaas_model::enums::DriverKind;

use crate::config::AgentConfig;
use crate::daemon::{Daemon, Loaded, Observation};
use crate::data_plane::{Chosen, Esp};
use crate::supervisor::{Supervisor, Task};
use crate::{Metrics, Result};
pub use status::classify;

/// The strongSwan driver for all routers of this agent.
pub type StrongSwan = Supervisor<Charon>;

/// The strongSwan driver on the chosen data plane; it signals `wake` with a router id
/// when that router's status may have changed (charon event, charon exit).
pub fn driver(
    config: AgentConfig,
    data_plane: &Chosen,
    wake: mpsc::UnboundedSender<String>,
    metrics: Metrics,
) -> StrongSwan {
    let charon = Charon {
        config: config.clone(),
        esp: data_plane.esp,
        wake: wake.clone(),
        metrics: metrics.clone(),
    };
    let kernel_refuses = data_plane.kernel_esp_refused().map(String::from);
    Supervisor::new(charon, config, kernel_refuses, wake, metrics)
}

/// What differs about charon.
pub struct Charon {
    config: AgentConfig,
    /// Where charon's ESP runs.
    esp: Esp,
    wake: mpsc::UnboundedSender<String>,
    metrics: Metrics,
}

/// A router's charon, as the driver talks to it.
pub struct Control {
    router_id: String,
    /// Its directory (`strongswan.conf`, `run/`, the log).
    dir: PathBuf,
    /// Where its ESP runs.
    esp: Esp,
    /// The retransmit schedule it reads for new IKE SAs.
    schedule: crate::config::Retransmit,
    /// Its VICI socket.
    socket: PathBuf,
    vici: Mutex<rsvici::Client>,
    history: status::SharedHistory,
    /// Wakes the agent on charon's events.
    _events: Task,
    /// Connection id → the task initiating it.
    initiators: HashMap<String, Task>,
    /// Connection id → the task following its re-authentication.
    reauthenticators: HashMap<String, Task>,
    /// Connection id → the id of the private key it loaded (`cert`): charon holds one
    /// copy of a key however many connections load it, so a key is unloaded with the last
    /// connection that uses it.
    keys: HashMap<String, String>,
}

#[async_trait]
impl Daemon for Charon {
    type Control = Control;
    const NAME: &'static str = "charon";
    const KIND: DriverKind = DriverKind::Strongswan;
    const PID_FILE: &'static str = "run/charon.pid";

    async fn command(&self, namespace: &str, dir: &Path) -> Result<tokio::process::Command> {
        daemon::command(self, namespace, dir)
    }

    async fn attach(&self, router_id: &str, dir: &Path) -> Result<Control> {
        daemon::attach(self, router_id, dir).await
    }

    async fn load(&self, control: &mut Control, spec: &ConnectionSpec) -> Result<()> {
        connections::load(control, spec).await
    }

    async fn adopted(&self, control: &mut Control, kept: &Loaded) -> Result<()> {
        connections::adopted(control, kept).await
    }

    async fn load_credentials(
        &self,
        control: &mut Control,
        _wanted: &[&ConnectionSpec],
        changed: &[&ConnectionSpec],
    ) -> Result<()> {
        reauth::load_credentials(control, changed).await
    }

    async fn reauthenticate(
        &self,
        control: &mut Control,
        spec: &ConnectionSpec,
        concluded: u64,
    ) -> Result<()> {
        reauth::start(control, spec, concluded, &self.wake);
        Ok(())
    }

    async fn unload(&self, control: &mut Control, id: &str) -> Result<()> {
        connections::unload(control, id).await
    }

    async fn negotiate(
        &self,
        control: &mut Control,
        loaded: &Loaded,
        _new: &[&ConnectionSpec],
    ) -> Result<()> {
        connections::start_initiators(control, loaded, &self.wake).await;
        Ok(())
    }

    async fn observe(&self, control: &Control, loaded: &Loaded) -> Option<Observation> {
        status::observe(control, loaded).await
    }
}
