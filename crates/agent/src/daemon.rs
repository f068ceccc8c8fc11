//! The seam between the [`Supervisor`](crate::supervisor::Supervisor) and one IKE daemon:
//! only what differs between charon and pluto. The supervisor owns the life cycle (start,
//! adopt, stop, exit watching, restart backoff, fingerprints, which connections to load
//! and unload, per-router locking); a daemon says how it is started, how it is talked to,
//! how one connection is loaded and unloaded, how it takes new credentials and
//! re-authenticates without a bounce, and what it shows of its SAs.

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use vpnaas_model::agent::ConnectionSpec;
use vpnaas_model::enums::DriverKind;

use crate::Result;
use crate::status::{Failure, Failures, SaView};

/// Connection id → the desired state it was loaded with.
pub type Loaded = HashMap<String, ConnectionSpec>;

/// What a daemon shows now: its connections' SAs and what its log taught.
#[derive(Debug, Default)]
pub struct Observation {
    /// Connection id → its SAs (absent: none).
    pub sas: HashMap<String, SaView>,
    /// Connection id → the last failure its log explained.
    pub failures: Failures,
    /// Connection id → the last re-authentication the daemon concluded, for those it was
    /// asked one of since they were loaded (the others: the generation they were loaded
    /// with).
    pub reauthenticated: HashMap<String, u64>,
}

/// One IKE daemon, as the supervisor drives it: one process per router.
#[async_trait]
pub trait Daemon: Send + Sync + 'static {
    /// A live link to one router's daemon: its control channel, the tasks that follow its
    /// events, what it learnt since it started. Dropped when the daemon is stopped or
    /// restarted (it stops its tasks then).
    type Control: Send + Sync + 'static;

    /// Its process name: a pid is adopted or stopped only if it runs as this.
    const NAME: &'static str;
    /// Which daemon: its directory under the router's (`<state_dir>/<router>/<kind>`).
    const KIND: DriverKind;
    /// Where it writes its pid, in its directory.
    const PID_FILE: &'static str;

    /// Writes what a fresh start needs in `dir` (configuration, secrets, databases; stale
    /// sockets gone) and returns the command that runs it in `namespace`. Its output goes
    /// to `<dir>/<NAME>.out`.
    async fn command(&self, namespace: &str, dir: &Path) -> Result<tokio::process::Command>;

    /// Connects to the daemon running from `dir` and starts following its events (they
    /// wake the agent for `router_id`). Fails while it does not answer yet.
    async fn attach(&self, router_id: &str, dir: &Path) -> Result<Self::Control>;

    /// Why the daemon cannot take `spec`, if it cannot (then it is not loaded, and
    /// reported down with this reason).
    fn refusal(&self, _spec: &ConnectionSpec) -> Option<Failure> {
        None
    }

    /// Before new connections are loaded, with everything that will be (`wanted`).
    async fn prepare(
        &self,
        _control: &mut Self::Control,
        _wanted: &[&ConnectionSpec],
    ) -> Result<()> {
        Ok(())
    }

    /// Loads one connection.
    async fn load(&self, control: &mut Self::Control, spec: &ConnectionSpec) -> Result<()>;

    /// After a running daemon was adopted: learns what the driver keeps of the connections
    /// it already holds (`kept`), which are not loaded again.
    async fn adopted(&self, _control: &mut Self::Control, _kept: &Loaded) -> Result<()> {
        Ok(())
    }

    /// Loads the new credentials of connections that stay loaded (`changed`) without
    /// touching their SAs: the next authentication uses them. `wanted` is every connection
    /// that stays loaded.
    async fn load_credentials(
        &self,
        control: &mut Self::Control,
        wanted: &[&ConnectionSpec],
        changed: &[&ConnectionSpec],
    ) -> Result<()>;

    /// Starts authenticating a loaded connection's IKE SA again, as
    /// `spec.generations.reauth` asks; `concluded` is the last re-authentication done. Its
    /// outcome shows in [`Observation::reauthenticated`] once known.
    async fn reauthenticate(
        &self,
        control: &mut Self::Control,
        spec: &ConnectionSpec,
        concluded: u64,
    ) -> Result<()>;

    /// Unloads one connection, tearing down its SAs.
    async fn unload(&self, control: &mut Self::Control, id: &str) -> Result<()>;

    /// After a reconcile: starts the negotiations this end initiates (`new`: the
    /// connections loaded by it).
    async fn negotiate(
        &self,
        control: &mut Self::Control,
        loaded: &Loaded,
        new: &[&ConnectionSpec],
    ) -> Result<()>;

    /// What the daemon shows of the loaded connections now; `None` when it does not answer.
    async fn observe(&self, control: &Self::Control, loaded: &Loaded) -> Option<Observation>;
}
