//! The agent protocol over HTTP, written once for both ends: the routes under
//! `/v2.0/vpnaas-agent/{host}/` (the server's `agent_api` serves them, [`crate::http`]
//! calls them) and the request bodies that are not model types. The messages themselves
//! (desired states, reports, hints) are `vpnaas_model::agent`'s.

use reqwest::Method;
use serde::{Deserialize, Serialize};

/// Where the agent protocol's routes live.
pub const ROOT: &str = "/v2.0/vpnaas-agent";

/// One call of the agent protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// Registers the agent, or records its heartbeat.
    Heartbeat,
    /// The ids of the routers the host holds.
    HostedRouters,
    /// The desired states of routers ([`StatesRequest`] → `Vec<RouterState>`).
    RouterStates,
    /// Status reports (`Vec<StatusReport>`).
    Reports,
    /// A long poll for `router_changed` hints (`Vec<RouterChanged>`).
    Hints,
    /// An HA standby's claim of leases (`TakeoverClaim` → the ids granted).
    Takeover,
}

impl Call {
    /// Every call.
    pub const ALL: [Call; 6] = [
        Call::Heartbeat,
        Call::HostedRouters,
        Call::RouterStates,
        Call::Reports,
        Call::Hints,
        Call::Takeover,
    ];

    /// The call's HTTP method.
    pub fn method(self) -> Method {
        match self {
            Call::HostedRouters | Call::Hints => Method::GET,
            Call::Heartbeat | Call::RouterStates | Call::Reports | Call::Takeover => Method::POST,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Call::Heartbeat => "heartbeat",
            Call::HostedRouters => "routers",
            Call::RouterStates => "router-states",
            Call::Reports => "reports",
            Call::Hints => "hints",
            Call::Takeover => "takeover",
        }
    }

    /// The route template, with `{host}` as its parameter.
    pub fn template(self) -> String {
        format!("{ROOT}/{{host}}/{}", self.suffix())
    }

    /// The path of the call for `host`.
    pub fn path(self, host: &str) -> String {
        format!("{ROOT}/{host}/{}", self.suffix())
    }
}

/// Which routers' desired states an agent asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatesRequest {
    /// The routers' ids.
    pub router_ids: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fill_the_template() {
        for call in Call::ALL {
            assert_eq!(call.template().replace("{host}", "gw-1"), call.path("gw-1"));
        }
        assert_eq!(
            Call::RouterStates.path("gw-1"),
            "/v2.0/vpnaas-agent/gw-1/router-states"
        );
    }
}
