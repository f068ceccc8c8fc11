//! Daemon processes, whatever the daemon: liveness by pid (a zombie counts as dead),
//! reaping, and a [`Process`] held by a pidfd, so that signals and exit waits reach the
//! process that was checked, never one that later reuses its pid. Signals are sent with
//! rustix, not by running `kill`; exits are awaited on the pidfd, not polled.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use rustix::event::epoll;
use rustix::process::{Pid, PidfdFlags, Signal};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{Error, Result};

/// How long a daemon has to exit after SIGTERM before it gets SIGKILL.
const TERM_PATIENCE: Duration = Duration::from_secs(2);

/// Whether `pid` runs (a zombie waiting for its parent does not).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

/// Whether `pid` is a process named `name` (so a recycled pid is never signalled).
pub fn is_named(pid: u32, name: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name)
}

/// Reaps a daemon when it exits (so it never lingers as a zombie); the handle finishes then.
pub fn reap(mut child: tokio::process::Child, name: &'static str) -> JoinHandle<()> {
    tokio::spawn(async move {
        match child.wait().await {
            Ok(status) if status.success() => tracing::debug!(daemon = name, "exited"),
            other => tracing::warn!(daemon = name, status = ?other, "died"),
        }
    })
}

/// SIGTERM, then SIGKILL after 2 s, to whatever runs as `pid` now; a failure is logged.
/// For a pid the caller has just checked; a daemon of the agent's own is a [`Process`].
pub async fn terminate(pid: u32) {
    if let Some(process) = Process::open(pid)
        && let Err(error) = process.terminate().await
    {
        tracing::warn!(%error, pid, "cannot stop a process");
    }
}

/// SIGKILL to whatever runs as `pid` now (a power cut in a lab); gone already is fine.
pub fn kill(pid: u32) -> Result<()> {
    match Process::open(pid) {
        Some(process) => process.signal(Signal::KILL),
        None => Ok(()),
    }
}

/// A running process, held by a pidfd where the kernel has them (Linux 5.3), by its pid
/// otherwise.
#[derive(Debug)]
pub struct Process {
    pid: u32,
    pidfd: Option<OwnedFd>,
}

impl Process {
    /// The process `pid`, if it runs.
    pub fn open(pid: u32) -> Option<Process> {
        let raw = Pid::from_raw(i32::try_from(pid).ok()?)?;
        let pidfd = match rustix::process::pidfd_open(raw, PidfdFlags::empty()) {
            Ok(fd) => Some(fd),
            Err(rustix::io::Errno::NOSYS) => None,
            Err(_) => return None,
        };
        alive(pid).then_some(Process { pid, pidfd })
    }

    /// The process `pid`, if it runs as `name` (checked once it is held: a pid recycled
    /// after the check no longer reaches the holder).
    pub fn named(pid: u32, name: &str) -> Option<Process> {
        Process::open(pid).filter(|_| is_named(pid, name))
    }

    /// The process a pid file names, if it runs as `name`.
    pub fn from_pid_file(path: &Path, name: &str) -> Option<Process> {
        let pid = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
        Process::named(pid, name)
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether it still runs.
    pub fn alive(&self) -> bool {
        alive(self.pid)
    }

    /// Sends `signal`; a process gone already is fine.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let sent = match &self.pidfd {
            Some(fd) => rustix::process::pidfd_send_signal(fd, signal),
            None => i32::try_from(self.pid)
                .ok()
                .and_then(Pid::from_raw)
                .map_or(Err(rustix::io::Errno::SRCH), |pid| {
                    rustix::process::kill_process(pid, signal)
                }),
        };
        match sent {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(errno) => Err(Error::Signal {
                pid: self.pid,
                source: errno.into(),
            }),
        }
    }

    /// Resolves when it has exited (a zombie has).
    pub async fn exited(&self) {
        let waiting = self
            .pidfd
            .as_ref()
            .and_then(|fd| Exits::get()?.watch(fd.as_fd()));
        match waiting {
            Some(mut waiting) => {
                let _ = (&mut waiting.exited).await;
            }
            None => {
                while self.alive() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Waits (at most `within`) until it exits; whether it did.
    pub async fn exits_within(&self, within: Duration) -> bool {
        tokio::time::timeout(within, self.exited()).await.is_ok() || !self.alive()
    }

    /// SIGTERM, then SIGKILL if it has not exited after 2 s.
    pub async fn terminate(self) -> Result<()> {
        self.signal(Signal::TERM)?;
        if self.exits_within(TERM_PATIENCE).await {
            return Ok(());
        }
        tracing::warn!(pid = self.pid, "no exit 2 s after SIGTERM: SIGKILL");
        self.signal(Signal::KILL)
    }
}

/// The exits awaited: one thread blocks in epoll on the pidfds of the processes whose
/// exit someone awaits (a pidfd turns readable when its process exits) and tells each
/// waiter. (tokio's reactor would take pidfds too, but only through `unsafe`.)
struct Exits {
    epoll: OwnedFd,
    waiters: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    next: AtomicU64,
}

/// One wait for an exit; dropping it withdraws the pidfd from the watch.
struct Waiting<'a> {
    exits: &'a Exits,
    pidfd: BorrowedFd<'a>,
    token: u64,
    exited: oneshot::Receiver<()>,
}

impl Exits {
    /// The exit watch, started on first use (`None` where epoll is unavailable).
    fn get() -> Option<&'static Exits> {
        static EXITS: OnceLock<Option<Arc<Exits>>> = OnceLock::new();
        EXITS.get_or_init(Exits::start).as_deref()
    }

    fn start() -> Option<Arc<Exits>> {
        let exits = Arc::new(Exits {
            epoll: epoll::create(epoll::CreateFlags::CLOEXEC).ok()?,
            waiters: Mutex::default(),
            next: AtomicU64::new(0),
        });
        let watcher = exits.clone();
        std::thread::Builder::new()
            .name("process-exits".into())
            .spawn(move || watcher.run())
            .ok()?;
        Some(exits)
    }

    fn run(&self) {
        let mut events = Vec::with_capacity(64);
        loop {
            events.clear();
            if epoll::wait(
                &self.epoll,
                rustix::buffer::spare_capacity(&mut events),
                None,
            )
            .is_err()
            {
                continue;
            }
            let mut waiters = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
            for event in &events {
                if let Some(waiter) = waiters.remove(&event.data.u64()) {
                    let _ = waiter.send(());
                }
            }
        }
    }

    fn watch<'a>(&'a self, pidfd: BorrowedFd<'a>) -> Option<Waiting<'a>> {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let (tell, exited) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token, tell);
        let waiting = Waiting {
            exits: self,
            pidfd,
            token,
            exited,
        };
        let flags = epoll::EventFlags::IN | epoll::EventFlags::ONESHOT;
        epoll::add(&self.epoll, pidfd, epoll::EventData::new_u64(token), flags).ok()?;
        Some(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let _ = epoll::delete(&self.exits.epoll, self.pidfd);
        self.exits
            .waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sleeper() -> tokio::process::Child {
        tokio::process::Command::new("sleep")
            .arg("30")
            .kill_on_drop(true)
            .spawn()
            .expect("sleep")
    }

    #[tokio::test]
    async fn a_held_process_is_stopped_and_its_exit_is_seen() {
        let child = sleeper();
        let pid = child.id().expect("pid");
        let reaped = reap(child, "sleep");
        let process = Process::named(pid, "sleep").expect("running");
        assert!(
            Process::named(pid, "charon").is_none(),
            "not by another name"
        );
        let watcher = Process::open(pid).expect("running");
        let exit = tokio::spawn(async move { watcher.exited().await });
        process.terminate().await.expect("terminate");
        exit.await.expect("the exit is seen");
        reaped.await.expect("reaped");
        assert!(!alive(pid));
        assert!(
            Process::open(pid).is_none(),
            "a reaped process cannot be held"
        );
    }

    #[tokio::test]
    async fn a_pid_file_names_the_process_only_while_it_runs_as_named() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("sleep.pid");
        assert!(Process::from_pid_file(&file, "sleep").is_none(), "no file");
        let child = sleeper();
        let pid = child.id().expect("pid");
        let reaped = reap(child, "sleep");
        std::fs::write(&file, format!("{pid}\n")).expect("pid file");
        let process = Process::from_pid_file(&file, "sleep").expect("named");
        assert_eq!(process.pid(), pid);
        kill(pid).expect("SIGKILL");
        reaped.await.expect("reaped");
        assert!(Process::from_pid_file(&file, "sleep").is_none(), "gone");
        kill(pid).expect("killing what is gone is fine");
    }
}
