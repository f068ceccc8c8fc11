//! The bus over the server's HTTP API, for an agent running in another process or on
//! another host (`vpnaas agent --server URL`). Calls map to the admin-only routes of
//! [`crate::protocol`]; `router_changed` hints are long-polled and fed to a local
//! broadcast channel (a missed hint is healed by the agent's periodic resync). A refused
//! call is [`Error::Rejected`], an unreachable or failing server [`Error::Unavailable`].

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;
use vpnaas_model::agent::{RouterChanged, RouterState, StatusReport};

use crate::protocol::{Call, StatesRequest};
use crate::{ControlPlane, Error, Result};

/// The first wait after a failed hint poll, doubled after each further failure.
const POLL_RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between failed hint polls.
const POLL_RETRY_MAX: Duration = Duration::from_secs(30);

/// The control plane of a remote server.
#[derive(Clone)]
pub struct HttpControlPlane {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl std::fmt::Debug for HttpControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpControlPlane")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    Error::Unavailable(e.to_string())
}

impl HttpControlPlane {
    /// A control plane at `server` (e.g. `http://10.0.0.1:9696`), authenticating with
    /// `token` when the server uses token auth.
    pub fn new(server: &str, token: Option<String>) -> Self {
        HttpControlPlane {
            http: reqwest::Client::new(),
            base: server.trim_end_matches('/').to_string(),
            token,
        }
    }

    fn request(&self, call: Call, host: &str) -> reqwest::RequestBuilder {
        let request = self
            .http
            .request(call.method(), format!("{}{}", self.base, call.path(host)));
        match &self.token {
            Some(token) => request.header("x-auth-token", token),
            None => request,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let response = request.send().await.map_err(unavailable)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let why = format!(
            "HTTP {status}: {}",
            response.text().await.unwrap_or_default()
        );
        match status.is_client_error() {
            true => Err(Error::Rejected(why)),
            false => Err(Error::Unavailable(why)),
        }
    }

    /// Long-polls the server for `host`'s hints and republishes them locally.
    pub fn hints(&self, host: &str) -> broadcast::Receiver<RouterChanged> {
        let (sender, receiver) = broadcast::channel(1024);
        let (me, host) = (self.clone(), host.to_string());
        tokio::spawn(async move {
            let mut retry = POLL_RETRY_FIRST;
            loop {
                let polled = match me.send(me.request(Call::Hints, &host)).await {
                    Ok(response) => response
                        .json::<Vec<RouterChanged>>()
                        .await
                        .map_err(unavailable),
                    Err(e) => Err(e),
                };
                let hints = match polled {
                    Ok(hints) => hints,
                    Err(error) => {
                        tracing::warn!(%error, retry_in = ?retry, "hint poll failed");
                        tokio::time::sleep(retry).await;
                        retry = (retry * 2).min(POLL_RETRY_MAX);
                        continue;
                    }
                };
                retry = POLL_RETRY_FIRST;
                for hint in hints {
                    if sender.send(hint).is_err() {
                        return;
                    }
                }
            }
        });
        receiver
    }
}

#[async_trait]
impl ControlPlane for HttpControlPlane {
    async fn heartbeat(&self, host: &str) -> Result<()> {
        self.send(self.request(Call::Heartbeat, host))
            .await
            .map(|_| ())
    }

    async fn hosted_routers(&self, host: &str) -> Result<Vec<String>> {
        let response = self.send(self.request(Call::HostedRouters, host)).await?;
        response.json().await.map_err(unavailable)
    }

    async fn router_states(&self, host: &str, router_ids: &[String]) -> Result<Vec<RouterState>> {
        let body = StatesRequest {
            router_ids: router_ids.to_vec(),
        };
        let request = self.request(Call::RouterStates, host).json(&body);
        self.send(request).await?.json().await.map_err(unavailable)
    }

    async fn reports(&self, reports: Vec<StatusReport>) -> Result<()> {
        let Some(first) = reports.first() else {
            return Ok(());
        };
        let request = self.request(Call::Reports, &first.host).json(&reports);
        self.send(request).await.map(|_| ())
    }
}
