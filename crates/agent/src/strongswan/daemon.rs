//! Starting a router's charon (its `strongswan.conf`, a private `/run` in the router's
//! namespace) and following it over VICI: SA events and the log lines that explain a
//! failure wake the agent, and an IKE SA whose peer stayed silent past its connection's
//! DPD timeout is ended. Its exit is the supervisor's to watch.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;
use tokio::sync::Mutex;
use vpnaas_model::enums::StatusReason;

use super::dpd::Silent;
use super::{Charon, Control, conf, connections, status, vici};
use crate::config::Retransmit;
use crate::data_plane::Esp;
use crate::status::learn_failure;
use crate::supervisor::Task;
use crate::{Error, Result};

/// Longest unix socket path.
const SOCKET_PATH_MAX: usize = 107;

/// Writes the router's `strongswan.conf` and returns the command that runs charon in
/// `namespace`, with the daemon's own `run/` mounted on `/run` (charon puts its pid file
/// and sockets there).
pub(super) fn command(
    charon: &Charon,
    namespace: &str,
    dir: &Path,
) -> Result<tokio::process::Command> {
    let run_dir = dir.join("run");
    let socket = run_dir.join("charon.vici");
    let length = socket.as_os_str().len();
    if length > SOCKET_PATH_MAX {
        return Err(Error::SocketPathTooLong {
            state_dir: charon.config.state_dir.clone(),
            length,
        });
    }
    std::fs::create_dir_all(&run_dir).map_err(Error::file(&run_dir))?;
    write_conf(dir, charon.esp, charon.config.retransmit)?;
    let _ = std::fs::remove_file(&socket);
    let mut command = tokio::process::Command::new("ip");
    command
        .args([
            "netns",
            "exec",
            namespace,
            "sh",
            "-c",
            "mount --bind \"$0\" /run && exec \"$1\"",
        ])
        .arg(&run_dir)
        .arg(&charon.config.charon)
        .env("STRONGSWAN_CONF", dir.join("strongswan.conf"));
    Ok(command)
}

/// Writes the router's `strongswan.conf` (read by charon at start and `reload-settings`).
fn write_conf(dir: &Path, esp: Esp, retransmit: Retransmit) -> Result<()> {
    let conf = dir.join("strongswan.conf");
    let text = conf::render(dir, esp, retransmit);
    std::fs::write(&conf, text).map_err(Error::file(&conf))
}

/// Makes charon retransmit for at least `seconds` before it gives up on a peer, for the
/// IKE SAs it builds from now on (charon reads the schedule when it creates an SA).
/// Connections whose DPD timeout the agent keeps need charon not to give up first.
pub(super) async fn lengthen_schedule(control: &mut Control, seconds: f64) -> Result<()> {
    if control.schedule.give_up_after() >= seconds {
        return Ok(());
    }
    let longer = control.schedule.covering(seconds);
    write_conf(&control.dir, control.esp, longer)?;
    connections::command(&control.vici, "reload-settings", ()).await?;
    tracing::info!(
        router = %control.router_id,
        give_up_after = longer.give_up_after(),
        "charon's retransmit schedule lengthened for a DPD timeout"
    );
    control.schedule = longer;
    Ok(())
}

/// Connects to the router's charon and follows its events.
pub(super) async fn attach(charon: &Charon, router_id: &str, dir: &Path) -> Result<Control> {
    let socket = dir.join("run/charon.vici");
    let vici = connect(&socket).await?;
    let history = status::SharedHistory::default();
    let events = follow(
        charon,
        router_id,
        connect(&socket).await?,
        socket.clone(),
        history.clone(),
    );
    Ok(Control {
        router_id: router_id.to_string(),
        dir: dir.to_path_buf(),
        esp: charon.esp,
        schedule: charon.config.retransmit,
        socket,
        vici: Mutex::new(vici),
        history,
        _events: events,
        initiators: HashMap::new(),
        reauthenticators: HashMap::new(),
        keys: HashMap::new(),
    })
}

/// One VICI connection to charon.
pub(super) async fn connect(socket: &Path) -> Result<rsvici::Client> {
    rsvici::unix::connect(socket)
        .await
        .map_err(Error::file(socket))
}

/// Wakes the agent on every SA event and on log lines that explain a failure (or its
/// end); counts rekeys; ends the IKE SAs whose peer stayed silent past its DPD timeout.
/// Ends when charon closes the connection.
fn follow(
    charon: &Charon,
    router_id: &str,
    mut client: rsvici::Client,
    socket: PathBuf,
    history: status::SharedHistory,
) -> Task {
    let wake = charon.wake.clone();
    let router = router_id.to_string();
    let metrics = charon.metrics.clone();
    let esp = charon.esp;
    Task::spawn(async move {
        let streams = ["ike-updown", "child-updown", "ike-rekey"].map(|event| {
            client
                .subscribe::<serde::de::IgnoredAny>(event)
                .map(|_| ())
                .boxed()
        });
        let mut events = futures::stream::select_all(streams);
        let mut rekeys = client.subscribe::<vici::ChildRekey>("child-rekey").boxed();
        let mut log = client.subscribe::<vici::LogLine>("log").boxed();
        loop {
            let deadline = history.lock().ok().and_then(|h| h.dpd.next_deadline());
            tokio::select! {
                event = events.next() => match event {
                    Some(()) => { let _ = wake.send(router.clone()); }
                    None => break,
                },
                Some(rekey) = rekeys.next() => {
                    if let Ok(rekey) = rekey {
                        status::count_rekeys(&history, &rekey, &metrics);
                    }
                    let _ = wake.send(router.clone());
                }
                Some(Ok(line)) = log.next() => {
                    if status::learn(&history, &line, esp) {
                        let _ = wake.send(router.clone());
                    }
                }
                () = until(deadline) => {
                    end_silent(&socket, &history).await;
                    let _ = wake.send(router.clone());
                }
            }
        }
    })
}

/// Sleeps until `deadline`; forever without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Ends the IKE SAs whose peer stayed silent past its connection's DPD timeout, the
/// reason recorded first so that the report following their end gives it.
async fn end_silent(socket: &Path, history: &status::SharedHistory) {
    let silent = match history.lock() {
        Ok(mut history) => {
            let silent = history.dpd.silent(Instant::now());
            for peer in &silent {
                learn_failure(
                    &mut history.failures,
                    &peer.connection,
                    StatusReason::PeerUnreachable,
                    peer.detail(),
                );
            }
            silent
        }
        Err(_) => return,
    };
    for peer in silent {
        if let Err(error) = end(socket, &peer).await {
            tracing::warn!(%error, connection = %peer.connection, "cannot end the IKE SA of a silent peer");
        }
    }
}

async fn end(socket: &Path, peer: &Silent) -> Result<()> {
    tracing::info!(
        connection = %peer.connection,
        ike_sa = %peer.ike_id,
        timeout = peer.dpd.timeout,
        "peer silent past its DPD timeout: ending the IKE SA"
    );
    let terminate = vici::TerminateSa {
        ike_id: peer.ike_id.clone(),
        force: true,
        timeout: -1,
    };
    let vici = Mutex::new(connect(socket).await?);
    connections::command(&vici, "terminate", terminate).await
}
