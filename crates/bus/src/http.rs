//! The bus over the server's HTTP API, for an agent running in another process or on
//! another host (`vpnaas agent --server URL`). Calls map to the admin-only routes of
//! [`crate::protocol`]; `router_changed` hints are long-polled and fed to a local
//! broadcast channel (a missed hint is healed by the agent's periodic resync). A refused
//! call is [`Error::Rejected`], an unreachable or failing server [`Error::Unavailable`].
//! Against a server under `auth = "keystone"` the agent logs in to Keystone itself
//! ([`KeystoneLogin`]) and renews its token before it expires.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;
use vpnaas_model::agent::{Heartbeat, RouterChanged, RouterState, StatusReport, TakeoverClaim};

use crate::protocol::{Call, StatesRequest};
use crate::{ControlPlane, Error, Result};

/// The first wait after a failed hint poll, doubled after each further failure.
const POLL_RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between failed hint polls.
const POLL_RETRY_MAX: Duration = Duration::from_secs(30);

/// A token is renewed when less than this is left of it.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// Keystone v3 password credentials of an agent's (service) user.
#[derive(Clone)]
pub struct KeystoneLogin {
    /// Keystone's v3 endpoint, e.g. `http://keystone:5000/v3`.
    pub auth_url: String,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// The user's domain (by name).
    pub user_domain_name: String,
    /// The project to scope the token to.
    pub project_name: String,
    /// That project's domain (by name).
    pub project_domain_name: String,
}

/// How calls are authenticated.
#[derive(Clone)]
enum Credentials {
    Static(Option<String>),
    Keystone {
        login: Box<KeystoneLogin>,
        held: std::sync::Arc<tokio::sync::Mutex<Option<(String, std::time::Instant)>>>,
    },
}

/// The control plane of a remote server.
#[derive(Clone)]
pub struct HttpControlPlane {
    http: reqwest::Client,
    base: String,
    credentials: Credentials,
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
            credentials: Credentials::Static(token),
        }
    }

    /// A control plane at `server` under `auth = "keystone"`: calls carry a token of
    /// `login`, fetched when first needed and renewed before it expires.
    pub fn with_keystone(server: &str, login: KeystoneLogin) -> Self {
        HttpControlPlane {
            credentials: Credentials::Keystone {
                login: Box::new(login),
                held: std::sync::Arc::default(),
            },
            ..Self::new(server, None)
        }
    }

    async fn request(&self, call: Call, host: &str) -> Result<reqwest::RequestBuilder> {
        let request = self
            .http
            .request(call.method(), format!("{}{}", self.base, call.path(host)));
        Ok(match self.token().await? {
            Some(token) => request.header("x-auth-token", token),
            None => request,
        })
    }

    async fn token(&self) -> Result<Option<String>> {
        let (login, held) = match &self.credentials {
            Credentials::Static(token) => return Ok(token.clone()),
            Credentials::Keystone { login, held } => (login, held),
        };
        let mut held = held.lock().await;
        if let Some((token, expires)) = held.as_ref()
            && expires.saturating_duration_since(std::time::Instant::now()) > RENEW_BEFORE
        {
            return Ok(Some(token.clone()));
        }
        let (token, lifetime) = keystone_token(&self.http, login).await?;
        *held = Some((token.clone(), std::time::Instant::now() + lifetime));
        Ok(Some(token))
    }

    /// Forgets a token the server refused, so the next call logs in again.
    async fn forget_token(&self) {
        if let Credentials::Keystone { held, .. } = &self.credentials {
            *held.lock().await = None;
        }
    }

    async fn send(&self, request: Result<reqwest::RequestBuilder>) -> Result<reqwest::Response> {
        let response = request?.send().await.map_err(unavailable)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED {
            self.forget_token().await;
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
                let polled = match me.send(me.request(Call::Hints, &host).await).await {
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
    async fn beat(&self, beat: &Heartbeat) -> Result<()> {
        let request = (self.request(Call::Heartbeat, &beat.host).await).map(|r| r.json(beat));
        self.send(request).await.map(|_| ())
    }

    async fn hosted_routers(&self, host: &str) -> Result<Vec<String>> {
        let response = self
            .send(self.request(Call::HostedRouters, host).await)
            .await?;
        response.json().await.map_err(unavailable)
    }

    async fn router_states(&self, host: &str, router_ids: &[String]) -> Result<Vec<RouterState>> {
        let body = StatesRequest {
            router_ids: router_ids.to_vec(),
        };
        let request = self
            .request(Call::RouterStates, host)
            .await
            .map(|r| r.json(&body));
        self.send(request).await?.json().await.map_err(unavailable)
    }

    async fn reports(&self, reports: Vec<StatusReport>) -> Result<()> {
        let Some(first) = reports.first() else {
            return Ok(());
        };
        let request = (self.request(Call::Reports, &first.host).await).map(|r| r.json(&reports));
        self.send(request).await.map(|_| ())
    }

    async fn claim(&self, claim: &TakeoverClaim) -> Result<Vec<String>> {
        let request = (self.request(Call::Takeover, &claim.host).await).map(|r| r.json(claim));
        self.send(request).await?.json().await.map_err(unavailable)
    }
}

/// Logs in to Keystone with a password; the token and how long it lives. Also how
/// `vpnaas import neutron` logs in.
pub async fn keystone_token(
    http: &reqwest::Client,
    login: &KeystoneLogin,
) -> Result<(String, Duration)> {
    let body = serde_json::json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": login.username,
            "domain": {"name": login.user_domain_name},
            "password": login.password,
        }}},
        "scope": {"project": {
            "name": login.project_name,
            "domain": {"name": login.project_domain_name},
        }},
    }});
    let url = format!(
        "{}/auth/tokens?nocatalog",
        login.auth_url.trim_end_matches('/')
    );
    let response = http
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(|e| Error::Unavailable(format!("Keystone at {url}: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        return Err(Error::Rejected(format!(
            "Keystone refused the login of {} ({status})",
            login.username
        )));
    }
    let token = response
        .headers()
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .ok_or_else(|| Error::Unavailable("Keystone sent no X-Subject-Token".into()))?;
    let answer: serde_json::Value = response.json().await.map_err(unavailable)?;
    let lifetime = answer["token"]["expires_at"]
        .as_str()
        .and_then(lifetime_until)
        .ok_or_else(|| Error::Unavailable("Keystone sent a token without an expiry".into()))?;
    Ok((token, lifetime))
}

/// How long from now until `expires_at` (RFC 3339, as Keystone writes it); zero if past.
fn lifetime_until(expires_at: &str) -> Option<Duration> {
    let at =
        time::OffsetDateTime::parse(expires_at, &time::format_description::well_known::Rfc3339)
            .ok()?;
    let left = at - time::OffsetDateTime::now_utc();
    Some(left.try_into().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tokens_lifetime_counts_from_now_and_is_zero_when_past() {
        let in_an_hour = time::OffsetDateTime::now_utc() + Duration::from_secs(3600);
        let text = in_an_hour
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format");
        let left = lifetime_until(&text).expect("parses");
        assert!(left > Duration::from_secs(3590) && left <= Duration::from_secs(3600));
        assert_eq!(
            lifetime_until("2001-01-01T00:00:00.000000Z"),
            Some(Duration::ZERO)
        );
        assert_eq!(lifetime_until("soon"), None);
    }
}
