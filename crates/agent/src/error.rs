//! The agent's one error type. Every failure keeps what caused it (the io error, the
//! daemon's answer, the tool's exit status and words), and a teardown that met several
//! failures reports them all ([`Teardown`]).

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// An agent failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A host tool could not be run at all.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The tool.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// A host tool ran and failed.
    #[error("{command}: {stderr}")]
    Command {
        /// The tool and its arguments.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// What it said on its standard error.
        stderr: String,
    },
    /// A file or directory of the agent's own.
    #[error("{}: {source}", path.display())]
    File {
        /// Which.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A tool's JSON output that does not parse.
    #[error("{command}: {source}")]
    Json {
        /// The tool and its arguments.
        command: &'static str,
        /// Why.
        source: serde_json::Error,
    },
    /// A namespace another process created but never mounted.
    #[error("namespace {0}: its creator never mounted it")]
    Unmounted(String),
    /// A process could not be signalled.
    #[error("signal to pid {pid}: {source}")]
    Signal {
        /// The process.
        pid: u32,
        /// Why.
        source: std::io::Error,
    },
    /// A daemon exited before it could be watched.
    #[error("{0} exited at once")]
    ExitedAtOnce(&'static str),
    /// A daemon started but never answered on its control socket.
    #[error("{daemon} in {} does not answer: {source}", dir.display())]
    NoAnswer {
        /// Which daemon.
        daemon: &'static str,
        /// Its directory.
        dir: PathBuf,
        /// The last attempt's failure.
        source: Box<Error>,
    },
    /// A daemon that keeps exiting waits before its next start.
    #[error("{daemon} keeps exiting; next start in {wait:?}")]
    Backoff {
        /// Which daemon.
        daemon: &'static str,
        /// How long until it may start.
        wait: Duration,
    },
    /// `state_dir` is too deep for a unix socket path below it.
    #[error(
        "state_dir {} is too long: charon's VICI socket path would be {length} bytes (unix sockets allow 107)",
        state_dir.display()
    )]
    SocketPathTooLong {
        /// The configured state directory.
        state_dir: PathBuf,
        /// The socket path's length.
        length: usize,
    },
    /// A VICI request could not be made or answered.
    #[error("{request}: {source}")]
    Vici {
        /// The request.
        request: &'static str,
        /// Why.
        source: rsvici::Error,
    },
    /// charon did not answer a VICI request in time.
    #[error("{0}: charon does not answer")]
    ViciTimeout(&'static str),
    /// charon answered a VICI request with a failure.
    #[error("{request}: {message}")]
    Refused {
        /// The request.
        request: &'static str,
        /// charon's `errmsg`.
        message: String,
    },
    /// An algorithm or group the daemon lacks (a connection its configuration cannot hold).
    #[error(transparent)]
    Unsupported(#[from] vpnaas_model::capability::Unsupported),
    /// A value that fails the strict grammar where a daemon's configuration is written
    /// (never stored by the API; checked again before it reaches a file).
    #[error("{field}: {reason}")]
    Invalid {
        /// Which value.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Under `l3_mode = "neutron"`, the router's namespace is not on this host (the L3
    /// agent here does not host the router, or has not built it yet).
    #[error("namespace {0} does not exist: neutron-l3-agent does not host the router on this host")]
    NoRouterNamespace(String),
    /// The server could not be reached.
    #[error(transparent)]
    Bus(#[from] vpnaas_bus::Error),
    /// Several failures of one teardown, in the order they happened.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Teardown(Vec<Error>),
}

/// Result with the agent's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A failure about the agent's file or directory at `path`.
    pub fn file(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::File { path, source }
    }
}

/// The failures of a teardown: each step runs whatever the steps before it met (a daemon
/// that would not go, a directory that would not be removed), and all are reported at
/// the end.
#[derive(Debug, Default)]
pub struct Teardown(Vec<Error>);

impl Teardown {
    /// Keeps a step's failure, if it failed.
    pub fn step<T>(&mut self, result: Result<T>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(Error::Teardown(errors)) => {
                self.0.extend(errors);
                None
            }
            Err(error) => {
                self.0.push(error);
                None
            }
        }
    }

    /// `Ok` when every step worked; the one failure, or all of them.
    pub fn finish(mut self) -> Result<()> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(self.0.remove(0)),
            _ => Err(Error::Teardown(self.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_teardown_keeps_every_failure_in_order() {
        let mut teardown = Teardown::default();
        teardown.step(Err::<(), _>(Error::Unmounted("a".into())));
        assert_eq!(teardown.step(Ok(7)), Some(7));
        teardown.step(Err::<(), _>(Error::Teardown(vec![
            Error::Unmounted("b".into()),
            Error::ExitedAtOnce("charon"),
        ])));
        let error = teardown.finish().expect_err("three failures");
        assert_eq!(
            error.to_string(),
            "namespace a: its creator never mounted it; namespace b: its creator never mounted it; charon exited at once"
        );
        assert!(Teardown::default().finish().is_ok());
    }
}
