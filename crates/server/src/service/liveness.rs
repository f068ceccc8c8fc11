//! Whether an agent is alive: its last heartbeat is at most `agent_down_time` old, judged
//! by the server's clock.

use vpnaas_model::agent::Agent;

use crate::App;

/// How agent liveness is judged at one moment: an agent is live while its last
/// heartbeat is at most `down_after` seconds old.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    /// Now, in milliseconds since the epoch.
    pub now_ms: u64,
    /// `agent_down_time`, in seconds.
    pub down_after: u64,
    /// When this server started, in seconds since the epoch.
    pub server_up_since: u64,
}

impl Liveness {
    /// Liveness by the server's clock and settings, now.
    pub fn of(app: &App) -> Liveness {
        Liveness {
            now_ms: app.clock.now_ms(),
            down_after: app.settings.agent_down_time,
            server_up_since: app.started_at,
        }
    }

    /// Whether the agent beat recently enough.
    pub fn alive(&self, agent: &Agent) -> bool {
        agent.alive_at(self.now_ms, self.down_after)
    }

    /// Whether routers of silent agents may move: after a server outage every agent's
    /// heartbeat looks old until it beats again, so nothing moves before this server has
    /// run for `down_after`.
    pub fn may_move(&self) -> bool {
        (self.now_ms / 1000).saturating_sub(self.server_up_since) >= self.down_after
    }
}
