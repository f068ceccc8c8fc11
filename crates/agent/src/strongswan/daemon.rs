//! Starting a router's charon (its `strongswan.conf`, a private `/run` in the router's
//! namespace) and following it over VICI: SA events and the log lines that explain a
//! failure wake the agent. Its exit is the supervisor's to watch.

use std::collections::HashMap;
use std::path::Path;

use futures::StreamExt;
use tokio::sync::Mutex;

use super::{Charon, Control, conf, status, vici};
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
    let conf = dir.join("strongswan.conf");
    let text = conf::render(dir, charon.esp, charon.config.retransmit);
    std::fs::write(&conf, text).map_err(Error::file(&conf))?;
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
        .env("STRONGSWAN_CONF", &conf);
    Ok(command)
}

/// Connects to the router's charon and follows its events.
pub(super) async fn attach(charon: &Charon, router_id: &str, dir: &Path) -> Result<Control> {
    let socket = dir.join("run/charon.vici");
    let vici = connect(&socket).await?;
    let history = status::SharedHistory::default();
    let events = follow(charon, router_id, connect(&socket).await?, history.clone());
    Ok(Control {
        router_id: router_id.to_string(),
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
/// end); counts rekeys. Ends when charon closes the connection.
fn follow(
    charon: &Charon,
    router_id: &str,
    mut client: rsvici::Client,
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
            }
        }
    })
}
