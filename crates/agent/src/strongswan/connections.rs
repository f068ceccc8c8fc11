//! Loading, unloading and initiating charon's connections over VICI, one connection at a
//! time. A bi-directional connection is initiated until it is up, by a task of its own.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};
use vpnaas_model::agent::ConnectionSpec;
use vpnaas_model::enums::{Initiator, Status};

use super::dpd::Kept;
use super::status::{VICI_PATIENCE, collect_sas, list_sas, status_in};
use super::{Control, daemon, vici};
use crate::daemon::Loaded;
use crate::supervisor::Task;
use crate::{Error, Result};

/// How long an initiation may take before it is retried.
const INITIATE_PATIENCE: Duration = Duration::from_secs(3);

/// How long the side with the higher address waits before initiating too: an IKE
/// exchange takes 20–35 ms here, so a peer that could initiate has done so by then.
const INITIATE_GRACE: Duration = Duration::from_millis(100);

/// A VICI command; charon's refusal is an error.
pub(super) async fn command<T: serde::Serialize>(
    vici: &Mutex<rsvici::Client>,
    request: &'static str,
    message: T,
) -> Result<()> {
    answered(vici, request, message).await.map(|_| ())
}

/// A VICI command and charon's answer; its refusal is an error.
async fn answered<T: serde::Serialize>(
    vici: &Mutex<rsvici::Client>,
    request: &'static str,
    message: T,
) -> Result<vici::Answer> {
    let mut client = vici.lock().await;
    let answer: vici::Answer =
        tokio::time::timeout(VICI_PATIENCE, client.request(request, message))
            .await
            .map_err(|_| Error::ViciTimeout(request))?
            .map_err(|source| Error::Vici { request, source })?;
    if answer.success {
        Ok(answer)
    } else {
        Err(Error::Refused {
            request,
            message: answer.errmsg.unwrap_or_default(),
        })
    }
}

/// Loads a connection and its secret; what charon taught about an earlier version of it
/// is forgotten.
pub(super) async fn load(control: &mut Control, spec: &ConnectionSpec) -> Result<()> {
    control.reauthenticators.remove(&spec.id);
    if let Ok(mut history) = control.history.lock() {
        history.failures.remove(&spec.id);
        history.netlink_errors.remove(&spec.id);
        history.rekeyed.remove(&spec.id);
        history.reauthenticated.remove(&spec.id);
        history.unmatched.forget(spec);
        history.dpd.keep(spec);
    }
    if let Some(kept) = Kept::of(spec) {
        daemon::lengthen_schedule(control, kept.schedule_needed()).await?;
    }
    load_secret(control, spec).await?;
    command(&control.vici, "load-conn", vici::load_conn(spec)).await
}

/// Keeps the DPD timeouts of the connections an adopted charon holds, as if they had been
/// loaded now.
pub(super) async fn adopted(control: &mut Control, kept: &Loaded) -> Result<()> {
    let mut longest = 0.0_f64;
    if let Ok(mut history) = control.history.lock() {
        for spec in kept.values() {
            history.dpd.keep(spec);
        }
    }
    for spec in kept.values() {
        if let Some(kept) = Kept::of(spec) {
            longest = longest.max(kept.schedule_needed());
        }
    }
    daemon::lengthen_schedule(control, longest).await
}

/// Loads what a connection authenticates with: its private key (`cert`; its certificate
/// travels with the connection), or its pre-shared key. A key the connection held before
/// and no longer does is unloaded.
pub(super) async fn load_secret(control: &mut Control, spec: &ConnectionSpec) -> Result<()> {
    let Some(key) = vici::PrivateKey::of(spec) else {
        let secret = vici::SharedKey::of(spec);
        return command(&control.vici, "load-shared", secret).await;
    };
    let answer = answered(&control.vici, "load-key", key).await?;
    let before = match answer.id {
        Some(id) => control.keys.insert(spec.id.clone(), id),
        None => control.keys.remove(&spec.id),
    };
    release_key(control, before).await
}

/// Unloads `key` (an id `load-key` gave) unless a loaded connection still uses it.
async fn release_key(control: &Control, key: Option<String>) -> Result<()> {
    let Some(id) = key.filter(|id| !control.keys.values().any(|used| used == id)) else {
        return Ok(());
    };
    command(&control.vici, "unload-key", vici::UnloadKey { id }).await
}

/// Unloads a connection. Unloading does not tear down established SAs: they are
/// terminated too. Its pre-shared key goes, and its private key with the last connection
/// that uses it (the daemon outlives connections: it runs while the router has a VPN
/// service).
pub(super) async fn unload(control: &mut Control, id: &str) -> Result<()> {
    control.initiators.remove(id);
    control.reauthenticators.remove(id);
    if let Ok(mut history) = control.history.lock() {
        history.dpd.forget(id);
    }
    let name = id.to_string();
    command(&control.vici, "unload-conn", vici::Unload { name }).await?;
    let terminate = vici::Terminate {
        ike: id.to_string(),
        force: true,
        timeout: -1,
    };
    if let Err(error) = command(&control.vici, "terminate", terminate).await {
        tracing::debug!(%error, connection = id, "nothing to terminate");
    }
    let secret = vici::UnloadShared {
        id: vici::secret_id(id),
    };
    if let Err(error) = command(&control.vici, "unload-shared", secret).await {
        tracing::debug!(%error, connection = id, "no secret to unload");
    }
    let key = control.keys.remove(id);
    release_key(control, key).await
}

/// Starts a task initiating each bi-directional connection that is not up and has none.
pub(super) async fn start_initiators(
    control: &mut Control,
    loaded: &Loaded,
    wake: &mpsc::UnboundedSender<String>,
) {
    control.initiators.retain(|_, task| !task.is_finished());
    let sas = list_sas(&control.vici).await.unwrap_or_default();
    for spec in loaded.values() {
        if spec.initiator != Initiator::BiDirectional
            || control.initiators.contains_key(&spec.id)
            || status_in(&sas, spec) == Status::Active
        {
            continue;
        }
        let knocked = control
            .history
            .lock()
            .is_ok_and(|mut history| history.unmatched.knocked(spec));
        let task = initiate(
            control.socket.clone(),
            spec.clone(),
            knocked,
            wake.clone(),
            control.router_id.clone(),
        );
        control
            .initiators
            .insert(spec.id.clone(), Task::spawn(task));
    }
}

/// Initiates a bi-directional connection until it is up. When both ends initiate at once
/// they build duplicate SAs, so the end with the lower address goes first and the other
/// only after a grace period — unless the peer `knocked` (tried before this connection was
/// loaded, was refused, and is backing off): then this end goes at once. An initiator
/// whose peer is not ready yet is refused and does not retry by itself, so this retries
/// with backoff, never over a negotiation the peer has started.
async fn initiate(
    socket: PathBuf,
    spec: ConnectionSpec,
    knocked: bool,
    wake: mpsc::UnboundedSender<String>,
    router: String,
) {
    let first = knocked || goes_first(spec.local_address, spec.peer_address);
    if !first {
        tokio::time::sleep(INITIATE_GRACE).await;
    }
    let mut backoff = Duration::from_millis(500);
    loop {
        let Ok(mut client) = daemon::connect(&socket).await else {
            return;
        };
        let sas = collect_sas(&mut client).await.unwrap_or_default();
        if status_in(&sas, &spec) == Status::Active {
            return;
        }
        if (!first && sas.negotiating_with(&spec.id, spec.peer_address))
            || sas.answering(&spec.id, spec.peer_address)
        {
            // The peer's negotiation is under way: let it finish rather than race it.
            tokio::time::sleep(INITIATE_GRACE).await;
            continue;
        }
        match initiate_children(&mut client, &spec, &sas).await {
            Ok(answer) if answer.success => {
                if came_up(&mut client, &spec).await {
                    let _ = wake.send(router);
                    return;
                }
                tracing::info!(connection = %spec.id, "no tunnel after initiating; retrying");
            }
            Ok(answer) => {
                tracing::info!(connection = %spec.id, reason = answer.errmsg.unwrap_or_default(), "initiate failed; retrying")
            }
            Err(error) => {
                tracing::info!(connection = %spec.id, %error, "initiate failed; retrying")
            }
        }
        let _ = wake.send(router.clone());
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Follows an initiation (made asynchronous, see `initiate_children`) until the tunnel is
/// up (true) or the negotiation is gone or too slow (false).
async fn came_up(client: &mut rsvici::Client, spec: &ConnectionSpec) -> bool {
    let deadline = tokio::time::Instant::now() + INITIATE_PATIENCE;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let Ok(sas) = collect_sas(client).await else {
            return false;
        };
        if status_in(&sas, spec) == Status::Active {
            return true;
        }
        if !sas.negotiating_with(&spec.id, spec.peer_address) {
            return false;
        }
    }
    false
}

/// Initiates every child SA of the connection that is not installed yet. `timeout = -1`
/// makes each command asynchronous: a blocking `initiate` or `terminate` registers a
/// logger inside charon 5.9.8 that can deadlock the daemon (strongSwan issue #566).
async fn initiate_children(
    client: &mut rsvici::Client,
    spec: &ConnectionSpec,
    sas: &vici::Sas,
) -> std::result::Result<vici::Answer, rsvici::Error> {
    let installed = |name: &str| {
        sas.installed_children(&spec.id)
            .iter()
            .any(|c| c.name == name)
    };
    for (child, _, _) in vici::children(spec) {
        if installed(&child) {
            continue;
        }
        let message = vici::Initiate {
            child,
            ike: spec.id.clone(),
            timeout: -1,
            init_limits: false,
        };
        let answer: vici::Answer = client.request("initiate", message).await?;
        if !answer.success {
            return Ok(answer);
        }
    }
    Ok(vici::Answer {
        success: true,
        errmsg: None,
        id: None,
    })
}

fn goes_first(local: IpAddr, peer: IpAddr) -> bool {
    local < peer
}
