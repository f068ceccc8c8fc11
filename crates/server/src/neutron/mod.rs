//! `inventory = "neutron"`: VPN services live on a running Neutron's routers and subnets.
//! This module is vpnaas's client of Neutron's API: reads on a caller's behalf (with the
//! caller's own token, so that Neutron's rules decide what the caller may use) or as
//! vpnaas's service user (background reads), and the passing on of requests that vpnaas
//! has allowed. [`mirror`] keeps vpnaas's copy of the objects VPN services use, [`watch`]
//! notices changes made behind vpnaas's back, [`front`] answers the router and subnet
//! changes the cloud's HTTP front sends to vpnaas first, [`ha`] gives an HA router's
//! lease to the node keepalived made primary.

pub mod front;
pub mod ha;
pub mod mirror;
pub mod watch;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::Value;
use vpnaas_model::{Error as Fault, FaultClass, FaultKind};

use crate::auth::Caller;
use crate::config::NeutronSettings;
use crate::error::ApiError;
use crate::keystone::{Keystone, Refusal};

/// Ids asked for in one list request (`?id=a&id=b…`), keeping URLs short.
const IDS_PER_REQUEST: usize = 50;

/// On whose behalf vpnaas asks Neutron.
#[derive(Clone, Copy)]
pub enum Acting<'a> {
    /// A caller of vpnaas's API: its token under Keystone, its identity headers under
    /// noauth.
    For(&'a Caller),
    /// vpnaas itself: its service user's token under Keystone, an admin under noauth.
    Service,
}

/// Why Neutron gave no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neutron (or Keystone, for the service user's token) could not be asked.
    #[error("Neutron is unavailable: {0}")]
    Unavailable(String),
    /// Neutron answered with an error of its own.
    #[error("Neutron answered {status}")]
    Answered {
        /// Its status.
        status: StatusCode,
        /// Its body (a `NeutronError`).
        body: Bytes,
    },
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::Unavailable(why) => Fault::new(
                FaultClass::Unavailable,
                FaultKind::HTTPServiceUnavailable,
                format!("The network service (Neutron) is unavailable: {why}"),
            )
            .into(),
            Error::Answered { status, body } => ApiError::Passed(status, body),
        }
    }
}

/// An answer from Neutron, as it came.
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// vpnaas's client of one Neutron.
pub struct Neutron {
    settings: NeutronSettings,
    http: reqwest::Client,
    keystone: Option<Arc<Keystone>>,
}

impl std::fmt::Debug for Neutron {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neutron")
            .field("url", &self.settings.url)
            .finish_non_exhaustive()
    }
}

impl Neutron {
    /// A client of the Neutron in `settings`, asking it with `http`; `keystone` (under
    /// `auth = "keystone"`) gives the service user's token.
    pub fn new(
        settings: NeutronSettings,
        http: reqwest::Client,
        keystone: Option<Arc<Keystone>>,
    ) -> Neutron {
        Neutron {
            settings,
            http,
            keystone,
        }
    }

    /// The same client, the service user's token from `keystone`.
    pub fn with_keystone(&self, keystone: Option<Arc<Keystone>>) -> Neutron {
        Neutron::new(self.settings.clone(), self.http.clone(), keystone)
    }

    /// Seconds between checks of the routers in use.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs_f64(self.settings.poll_interval.clamp(0.05, 3600.0))
    }

    /// One object (`routers`, id) as `acting` sees it; `None` when Neutron says it does
    /// not exist (or `acting` may not see it).
    pub async fn show(
        &self,
        acting: Acting<'_>,
        collection: &str,
        id: &str,
    ) -> Result<Option<Value>, Error> {
        let path = format!("/v2.0/{collection}/{}", encode(id));
        let answer = self
            .send(acting, Method::GET, &path, HeaderMap::new(), Bytes::new())
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let mut doc = json_of(answer)?;
        let member = collection.trim_end_matches('s');
        Ok(Some(doc[member].take()))
    }

    /// The objects of `collection` matching `filters` (`key=value` pairs, repeated keys
    /// meaning "any of"), as vpnaas's service user sees them.
    pub async fn list(
        &self,
        collection: &str,
        filters: &[(&str, &str)],
    ) -> Result<Vec<Value>, Error> {
        let query: Vec<String> = filters
            .iter()
            .map(|(key, value)| format!("{key}={}", encode(value)))
            .collect();
        let path = format!("/v2.0/{collection}?{}", query.join("&"));
        self.list_at(&path, collection).await
    }

    /// The list under `key` of what `path` answers, as vpnaas's service user sees it
    /// (`/v2.0/agents/{id}/l3-routers` answers `routers`).
    pub async fn list_at(&self, path: &str, key: &str) -> Result<Vec<Value>, Error> {
        let answer = self
            .send(
                Acting::Service,
                Method::GET,
                path,
                HeaderMap::new(),
                Bytes::new(),
            )
            .await?;
        let mut doc = json_of(answer)?;
        match doc[key].take() {
            Value::Array(items) => Ok(items),
            _ => Err(Error::Unavailable(format!(
                "Neutron's {path} holds no list of {key}"
            ))),
        }
    }

    /// The objects of `collection` with the given ids (those that exist), asked for in
    /// batches, plus `more` filters.
    pub async fn list_ids(
        &self,
        collection: &str,
        key: &str,
        ids: &[String],
        more: &[(&str, &str)],
    ) -> Result<Vec<Value>, Error> {
        let mut found = Vec::new();
        for batch in ids.chunks(IDS_PER_REQUEST) {
            let mut filters: Vec<(&str, &str)> =
                batch.iter().map(|id| (key, id.as_str())).collect();
            filters.extend_from_slice(more);
            found.extend(self.list(collection, &filters).await?);
        }
        Ok(found)
    }

    /// Sends a request as `acting` and returns Neutron's answer, whatever its status.
    pub async fn send(
        &self,
        acting: Acting<'_>,
        method: Method,
        path_and_query: &str,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<Answer, Error> {
        self.identify(acting, &mut headers, false).await?;
        let answer = self
            .attempt(
                method.clone(),
                path_and_query,
                headers.clone(),
                body.clone(),
            )
            .await?;
        // The service user's token may have been revoked or expired early: log in again
        // once.
        if answer.status == StatusCode::UNAUTHORIZED
            && matches!(acting, Acting::Service)
            && self.keystone.is_some()
        {
            self.identify(acting, &mut headers, true).await?;
            return self.attempt(method, path_and_query, headers, body).await;
        }
        Ok(answer)
    }

    async fn attempt(
        &self,
        method: Method,
        path_and_query: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Answer, Error> {
        let url = format!("{}{path_and_query}", self.settings.base());
        let response = self
            .http
            .request(method, &url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| unreachable(&url, &e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| unreachable(&url, &e))?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// Sets the identity headers of `acting` (replacing any the request came with).
    async fn identify(
        &self,
        acting: Acting<'_>,
        headers: &mut HeaderMap,
        renew: bool,
    ) -> Result<(), Error> {
        for name in [
            "x-auth-token",
            "x-project-id",
            "x-tenant-id",
            "x-roles",
            "x-user-id",
        ] {
            headers.remove(name);
        }
        let mut set = |name: &'static str, value: &str| match value.parse() {
            Ok(value) => {
                headers.insert(name, value);
                Ok(())
            }
            Err(_) => Err(Error::Unavailable(format!("{name} cannot be sent"))),
        };
        match (acting, &self.keystone) {
            (Acting::For(caller), _) => match &caller.token {
                Some(token) => set("x-auth-token", &token.0),
                None => {
                    set("x-project-id", &caller.project_id)?;
                    set("x-roles", &caller.roles.join(","))?;
                    set("x-user-id", &caller.user_id)
                }
            },
            (Acting::Service, Some(keystone)) => {
                let token =
                    keystone
                        .service_token(renew)
                        .await
                        .map_err(|refusal| match refusal {
                            Refusal::Unauthenticated(why) | Refusal::Unavailable(why) => {
                                Error::Unavailable(why)
                            }
                        })?;
                set("x-auth-token", &token)
            }
            (Acting::Service, None) => {
                set("x-project-id", "vpnaas")?;
                set("x-roles", "admin")?;
                set("x-user-id", "vpnaas")
            }
        }
    }
}

fn json_of(answer: Answer) -> Result<Value, Error> {
    if !answer.status.is_success() {
        return Err(Error::Answered {
            status: answer.status,
            body: answer.body,
        });
    }
    serde_json::from_slice(&answer.body)
        .map_err(|e| Error::Unavailable(format!("Neutron sent unreadable JSON: {e}")))
}

fn unreachable(url: &str, error: &reqwest::Error) -> Error {
    // reqwest's message names the URL, never a header: no token can leak here.
    tracing::warn!(%url, %error, "Neutron unreachable");
    Error::Unavailable(format!("cannot reach {url}"))
}

/// Percent-encodes a path segment or query value (ids are UUIDs, but a caller may send
/// anything).
pub(crate) fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
