//! The bus over the server's HTTP API, for an agent running in another process or on
//! another host (`vpnaas agent --server URL`). Calls map to admin-only routes under
//! `/v2.0/vpnaas-agent/`; `router_changed` hints are long-polled and fed to a local
//! broadcast channel (a missed hint is healed by the agent's periodic resync).

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;
use vpnaas_model::agent::{RouterChanged, RouterState, StatusReport};

use crate::{ControlPlane, Error, Result};

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

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self
            .http
            .request(method, format!("{}/v2.0/vpnaas-agent/{path}", self.base));
        match &self.token {
            Some(token) => request.header("x-auth-token", token),
            None => request,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let response = request.send().await.map_err(unavailable)?;
        if response.status().is_success() || response.status() == reqwest::StatusCode::NOT_FOUND {
            Ok(response)
        } else {
            Err(Error::Unavailable(format!("HTTP {}", response.status())))
        }
    }

    /// Long-polls the server for `host`'s hints and republishes them locally.
    pub fn hints(&self, host: &str) -> broadcast::Receiver<RouterChanged> {
        let (sender, receiver) = broadcast::channel(1024);
        let (me, host) = (self.clone(), host.to_string());
        tokio::spawn(async move {
            loop {
                let polled = me
                    .send(me.request(reqwest::Method::GET, &format!("{host}/hints")))
                    .await;
                let hints: Vec<RouterChanged> = match polled {
                    Ok(response) => response.json().await.unwrap_or_default(),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
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
        self.send(self.request(reqwest::Method::POST, &format!("{host}/heartbeat")))
            .await
            .map(|_| ())
    }

    async fn hosted_routers(&self, host: &str) -> Result<Vec<String>> {
        let response = self
            .send(self.request(reqwest::Method::GET, &format!("{host}/routers")))
            .await?;
        response.json().await.map_err(unavailable)
    }

    async fn router_states(&self, host: &str, router_ids: &[String]) -> Result<Vec<RouterState>> {
        let request = self
            .request(reqwest::Method::POST, &format!("{host}/router-states"))
            .json(&serde_json::json!({ "router_ids": router_ids }));
        self.send(request).await?.json().await.map_err(unavailable)
    }

    async fn reports(&self, reports: Vec<StatusReport>) -> Result<()> {
        let Some(first) = reports.first() else {
            return Ok(());
        };
        let path = format!("{}/reports", first.host);
        self.send(self.request(reqwest::Method::POST, &path).json(&reports))
            .await
            .map(|_| ())
    }
}
