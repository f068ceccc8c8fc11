//! Key rotation on charon: new credentials are loaded over the old ones (`load-shared`
//! under the same id) and nothing else is touched, so the SAs up keep carrying traffic and
//! the next authentication uses them; a re-authentication asked is charon's own (`rekey`
//! with `reauth`), followed by a task of its own until its outcome is known.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use vpnaas_model::agent::ConnectionSpec;
use vpnaas_model::enums::Status;

use super::status::{SharedHistory, collect_sas, status_in};
use super::{Control, connections, daemon, vici};
use crate::Result;
use crate::supervisor::Task;

/// How long a re-authentication may take before it counts as concluded (what the
/// connection then shows, up or down with a reason, is its outcome).
const REAUTH_PATIENCE: Duration = Duration::from_secs(10);

/// How often its progress is read.
const POLL: Duration = Duration::from_millis(50);

/// Loads the new secret of each changed connection in place of its old one. A new
/// certificate travels with the connection: loading it again replaces charon's
/// configuration of it, which leaves its SAs up.
pub(super) async fn load_credentials(
    control: &mut Control,
    changed: &[&ConnectionSpec],
) -> Result<()> {
    for spec in changed {
        connections::load_secret(control, spec).await?;
        if spec.certificate.is_some() {
            connections::command(&control.vici, "load-conn", vici::load_conn(spec)).await?;
        }
        tracing::info!(connection = %spec.id, "new credentials loaded; SAs kept");
    }
    Ok(())
}

/// Starts re-authenticating a connection (`spec.generations.reauth`); until the task
/// concludes, the connection shows `concluded` as its last re-authentication.
pub(super) fn start(
    control: &mut Control,
    spec: &ConnectionSpec,
    concluded: u64,
    wake: &mpsc::UnboundedSender<String>,
) {
    if let Ok(mut history) = control.history.lock() {
        history.reauthenticated.insert(spec.id.clone(), concluded);
        history.failures.remove(&spec.id);
    }
    let task = reauthenticate(
        control.socket.clone(),
        spec.clone(),
        control.history.clone(),
        wake.clone(),
        control.router_id.clone(),
    );
    // A re-authentication still under way is replaced: the new one concludes both.
    control
        .reauthenticators
        .insert(spec.id.clone(), Task::spawn(task));
}

/// Re-authenticates the connection's established IKE SAs, then follows charon until a
/// new IKE SA of the connection is established with every child SA (done), a failure is
/// learnt for it (its reason is the outcome), or patience runs out; then records it
/// concluded and wakes the agent. With no IKE SA up there is nothing to re-authenticate:
/// the next authentication (the initiators retry) uses the credentials loaded.
async fn reauthenticate(
    socket: PathBuf,
    spec: ConnectionSpec,
    history: SharedHistory,
    wake: mpsc::UnboundedSender<String>,
    router: String,
) {
    let outcome = match daemon::connect(&socket).await {
        Ok(mut client) => follow(&mut client, &spec, &history).await,
        Err(error) => format!("cannot reach charon: {error}"),
    };
    tracing::info!(connection = %spec.id, generation = spec.generations.reauth, %outcome, "re-authentication concluded");
    if let Ok(mut history) = history.lock() {
        let done = history.reauthenticated.entry(spec.id.clone()).or_default();
        *done = (*done).max(spec.generations.reauth);
    }
    let _ = wake.send(router);
}

/// Asks charon to re-authenticate and follows it; says how it ended.
async fn follow(
    client: &mut rsvici::Client,
    spec: &ConnectionSpec,
    history: &SharedHistory,
) -> String {
    let Ok(before) = collect_sas(client).await else {
        return "charon did not list its SAs".into();
    };
    let old = before.established(&spec.id);
    if old.is_empty() {
        return "no IKE SA up: the next one authenticates with the credentials loaded".into();
    }
    let request = vici::Rekey {
        ike: spec.id.clone(),
        reauth: true,
    };
    match client.request::<_, vici::Answer>("rekey", request).await {
        Ok(answer) if answer.success => {}
        Ok(answer) => return format!("charon refused: {}", answer.errmsg.unwrap_or_default()),
        Err(error) => return format!("charon did not answer: {error}"),
    }
    let deadline = tokio::time::Instant::now() + REAUTH_PATIENCE;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(POLL).await;
        let failed = history
            .lock()
            .ok()
            .and_then(|h| h.failures.get(&spec.id).cloned());
        if let Some((reason, _)) = failed {
            return format!("failed: {}", reason.as_str());
        }
        let Ok(sas) = collect_sas(client).await else {
            continue;
        };
        let renewed = sas.established(&spec.id).iter().any(|id| !old.contains(id));
        if renewed && status_in(&sas, spec) == Status::Active {
            return "authenticated anew, tunnel up".into();
        }
    }
    "no outcome within patience".into()
}
