//! `auth = "keystone"`: callers' `X-Auth-Token`s validated by Keystone v3 as
//! keystonemiddleware does (`GET /v3/auth/tokens` with `X-Subject-Token`, by a service
//! user of vpnaas's own), remembered in a bounded cache until they expire or for
//! `revocation_ttl`, whichever is sooner. Tokens are remembered by their SHA-256 only and
//! never logged. Keystone unreachable is a 503, never a 500 and never a pass.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use vpnaas_model::Error as Fault;
use vpnaas_model::FaultClass;
use vpnaas_model::FaultKind;

use crate::auth::Caller;
use crate::clock::Clock;
use crate::config::KeystoneSettings;

/// The longest token sent to Keystone: Fernet tokens are ~250 characters, JWS ones ~800;
/// a longer value is refused here rather than making Keystone parse it.
const MAX_TOKEN_LEN: usize = 8192;

/// The service token is renewed this long before it expires.
const RENEW_BEFORE_MS: u64 = 60_000;

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Missing, invalid, expired, revoked or unscoped: 401 with a challenge.
    Unauthenticated(String),
    /// Keystone could not be asked: 503.
    Unavailable(String),
}

impl Refusal {
    /// The fault answered to the client.
    pub fn fault(&self) -> Fault {
        match self {
            Refusal::Unauthenticated(why) => Fault::new(
                FaultClass::Unauthorized,
                FaultKind::HTTPUnauthorized,
                format!("Authentication required: {why}"),
            ),
            Refusal::Unavailable(why) => Fault::new(
                FaultClass::Unavailable,
                FaultKind::HTTPServiceUnavailable,
                format!("The identity service (Keystone) is unavailable: {why}"),
            ),
        }
    }
}

/// A validated token, remembered.
#[derive(Clone)]
struct Entry {
    caller: Caller,
    /// When Keystone says the token expires (ms since the epoch).
    expires_ms: u64,
    /// When Keystone last said it is valid.
    checked_ms: u64,
}

/// Validated tokens by the SHA-256 of the token, at most `capacity`.
struct Cache {
    capacity: usize,
    entries: HashMap<[u8; 32], Entry>,
}

impl Cache {
    fn get(&self, key: &[u8; 32], now_ms: u64, ttl_ms: u64) -> Option<Caller> {
        let entry = self.entries.get(key)?;
        let fresh = now_ms < entry.expires_ms && now_ms < entry.checked_ms.saturating_add(ttl_ms);
        fresh.then(|| entry.caller.clone())
    }

    /// Makes room by dropping expired entries, then the least recently checked.
    fn insert(&mut self, key: [u8; 32], entry: Entry, now_ms: u64) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            self.entries.retain(|_, e| e.expires_ms > now_ms);
            while self.entries.len() >= self.capacity {
                let oldest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.checked_ms)
                    .map(|(k, _)| *k);
                match oldest {
                    Some(k) => self.entries.remove(&k),
                    None => break,
                };
            }
        }
        self.entries.insert(key, entry);
    }

    fn remove(&mut self, key: &[u8; 32]) {
        self.entries.remove(key);
    }
}

/// vpnaas's own token, used to validate callers'.
#[derive(Clone)]
struct ServiceToken {
    token: String,
    expires_ms: u64,
}

/// Validates tokens against one Keystone.
pub struct Keystone {
    settings: KeystoneSettings,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    cache: Mutex<Cache>,
    service: tokio::sync::Mutex<Option<ServiceToken>>,
}

impl std::fmt::Debug for Keystone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keystone")
            .field("auth_url", &self.settings.auth_url)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenData,
}

#[derive(Deserialize)]
struct TokenData {
    expires_at: String,
    #[serde(default)]
    user: Option<Named>,
    #[serde(default)]
    project: Option<Named>,
    #[serde(default)]
    roles: Vec<Named>,
}

#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
}

fn unavailable(why: impl std::fmt::Display) -> Refusal {
    Refusal::Unavailable(why.to_string())
}

/// Keystone's `expires_at` (ISO 8601, UTC) in ms since the epoch.
fn parse_expiry(text: &str) -> Option<u64> {
    let time =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(time.unix_timestamp_nanos() / 1_000_000).ok()
}

impl Keystone {
    /// A validator for `settings` asking Keystone with `http`, judging expiry and the
    /// cache by `clock`.
    pub fn new(
        settings: KeystoneSettings,
        clock: Arc<dyn Clock>,
        http: reqwest::Client,
    ) -> Keystone {
        let cache = Cache {
            capacity: settings.cache_size,
            entries: HashMap::new(),
        };
        Keystone {
            settings,
            http,
            clock,
            cache: Mutex::new(cache),
            service: tokio::sync::Mutex::new(None),
        }
    }

    /// The same validator, with an empty cache, on another clock.
    pub fn with_clock(&self, clock: Arc<dyn Clock>) -> Keystone {
        Keystone::new(self.settings.clone(), clock, self.http.clone())
    }

    /// The value of `WWW-Authenticate` on a 401.
    pub fn challenge(&self) -> String {
        format!("Keystone uri=\"{}\"", self.settings.challenge_uri())
    }

    /// The caller a token stands for.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, Refusal> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Refusal::Unauthenticated("the token is too long".into()));
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let ttl_ms = self.settings.revocation_ttl.saturating_mul(1000);
        let cached = self.lock_cache().get(&key, self.clock.now_ms(), ttl_ms);
        if let Some(caller) = cached {
            return Ok(caller);
        }
        match self.validate(token).await {
            Ok((caller, expires_ms)) => {
                let now_ms = self.clock.now_ms();
                let entry = Entry {
                    caller: caller.clone(),
                    expires_ms,
                    checked_ms: now_ms,
                };
                self.lock_cache().insert(key, entry, now_ms);
                Ok(caller)
            }
            Err(refusal) => {
                if matches!(refusal, Refusal::Unauthenticated(_)) {
                    self.lock_cache().remove(&key);
                }
                Err(refusal)
            }
        }
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A panic while holding the lock leaves a consistent map: keep using it.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks Keystone about `token`, logging in again once if the service token was
    /// refused (it may have been revoked or Keystone's keys rotated).
    async fn validate(&self, token: &str) -> Result<(Caller, u64), Refusal> {
        let service = self.service_token(false).await?;
        match self.ask(&service, token).await? {
            Some(answer) => Ok(answer),
            None => {
                let service = self.service_token(true).await?;
                self.ask(&service, token)
                    .await?
                    .ok_or_else(|| unavailable("Keystone refuses vpnaas's own service token"))
            }
        }
    }

    /// `None` when Keystone refused the service token itself.
    async fn ask(&self, service: &str, token: &str) -> Result<Option<(Caller, u64)>, Refusal> {
        let url = format!("{}/auth/tokens", self.settings.base());
        let response = self
            .http
            .get(&url)
            .header("x-auth-token", service)
            .header("x-subject-token", token)
            .send()
            .await
            .map_err(|e| unreachable(&url, &e))?;
        match response.status() {
            StatusCode::OK => {
                let body: TokenBody = response
                    .json()
                    .await
                    .map_err(|e| unavailable(format!("unreadable token from Keystone: {e}")))?;
                self.caller_of(body.token).map(Some)
            }
            StatusCode::NOT_FOUND => Err(Refusal::Unauthenticated(
                "the token is invalid, expired or revoked".into(),
            )),
            StatusCode::BAD_REQUEST => {
                Err(Refusal::Unauthenticated("the token is malformed".into()))
            }
            StatusCode::UNAUTHORIZED => Ok(None),
            StatusCode::FORBIDDEN => Err(unavailable(
                "vpnaas's service user may not validate tokens (it needs the admin or service role)",
            )),
            other => Err(unavailable(format!("Keystone answered {other}"))),
        }
    }

    fn caller_of(&self, token: TokenData) -> Result<(Caller, u64), Refusal> {
        let expires_ms = parse_expiry(&token.expires_at)
            .ok_or_else(|| unavailable("Keystone sent a token without a readable expiry"))?;
        if expires_ms <= self.clock.now_ms() {
            return Err(Refusal::Unauthenticated("the token has expired".into()));
        }
        let project = token.project.filter(|p| !p.id.is_empty()).ok_or_else(|| {
            Refusal::Unauthenticated("the token is not scoped to a project".into())
        })?;
        let roles = token
            .roles
            .into_iter()
            .map(|r| r.name.trim().to_ascii_lowercase())
            .filter(|r| !r.is_empty())
            .collect();
        let caller = Caller {
            project_id: project.id,
            user_id: token.user.map(|u| u.id).unwrap_or_default(),
            roles,
            token: None,
        };
        Ok((caller, expires_ms))
    }

    /// vpnaas's own token, logged in for when missing, near its expiry or `renew`.
    pub(crate) async fn service_token(&self, renew: bool) -> Result<String, Refusal> {
        let mut held = self.service.lock().await;
        let now_ms = self.clock.now_ms();
        if let Some(token) = held.as_ref()
            && !renew
            && token.expires_ms > now_ms.saturating_add(RENEW_BEFORE_MS)
        {
            return Ok(token.token.clone());
        }
        let token = self.log_in().await?;
        *held = Some(token.clone());
        Ok(token.token)
    }

    async fn log_in(&self) -> Result<ServiceToken, Refusal> {
        let s = &self.settings;
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": s.username,
                "domain": {"name": s.user_domain_name},
                "password": s.password.0,
            }}},
            "scope": {"project": {
                "name": s.project_name,
                "domain": {"name": s.project_domain_name},
            }},
        }});
        let url = format!("{}/auth/tokens?nocatalog", s.base());
        let response = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| unreachable(&url, &e))?;
        let status = response.status();
        if !status.is_success() {
            tracing::error!(%status, user = %s.username, "vpnaas's service user cannot log in to Keystone");
            return Err(unavailable(format!(
                "vpnaas's service user cannot log in to Keystone ({status})"
            )));
        }
        let token = response
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(String::from)
            .ok_or_else(|| unavailable("Keystone sent no X-Subject-Token"))?;
        let body: TokenBody = response
            .json()
            .await
            .map_err(|e| unavailable(format!("unreadable token from Keystone: {e}")))?;
        let expires_ms = parse_expiry(&body.token.expires_at)
            .ok_or_else(|| unavailable("Keystone sent a token without a readable expiry"))?;
        Ok(ServiceToken { token, expires_ms })
    }
}

fn unreachable(url: &str, error: &reqwest::Error) -> Refusal {
    // reqwest's message names the URL, never a header: no token can leak here.
    tracing::warn!(%url, %error, "Keystone unreachable");
    let why = if error.is_timeout() {
        "it did not answer in time"
    } else {
        "it cannot be reached"
    };
    unavailable(format!("{why} ({url})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(project: &str) -> Caller {
        Caller {
            project_id: project.into(),
            user_id: String::new(),
            roles: vec!["member".into()],
            token: None,
        }
    }

    fn entry(project: &str, expires_ms: u64, checked_ms: u64) -> Entry {
        Entry {
            caller: caller(project),
            expires_ms,
            checked_ms,
        }
    }

    #[test]
    fn a_cached_token_is_trusted_until_expiry_or_ttl_whichever_is_first() {
        let mut cache = Cache {
            capacity: 10,
            entries: HashMap::new(),
        };
        cache.insert([1; 32], entry("a", 10_000, 1_000), 1_000);
        assert_eq!(cache.get(&[1; 32], 1_500, 5_000), Some(caller("a")));
        assert_eq!(cache.get(&[1; 32], 6_000, 5_000), None, "past the ttl");
        assert_eq!(cache.get(&[1; 32], 10_000, 60_000), None, "expired");
    }

    #[test]
    fn a_full_cache_drops_expired_entries_then_the_least_recently_checked() {
        let mut cache = Cache {
            capacity: 2,
            entries: HashMap::new(),
        };
        cache.insert([1; 32], entry("old", 100_000, 1_000), 1_000);
        cache.insert([2; 32], entry("new", 100_000, 2_000), 2_000);
        cache.insert([3; 32], entry("newest", 100_000, 3_000), 3_000);
        assert_eq!(cache.entries.len(), 2);
        assert!(!cache.entries.contains_key(&[1; 32]));
        cache.insert([4; 32], entry("x", 100_000, 4_000), 200_000);
        assert_eq!(cache.entries.len(), 1, "both expired entries went first");
    }

    #[test]
    fn keystone_expiry_times_parse() {
        assert_eq!(
            parse_expiry("2026-12-03T14:08:43.000000Z"),
            Some(1_796_306_923_000)
        );
        assert_eq!(parse_expiry("tomorrow"), None);
    }
}
