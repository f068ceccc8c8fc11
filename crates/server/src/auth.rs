//! Who is calling, and what they may do. `noauth` trusts identity headers as Neutron's
//! noauth does; `token` maps `X-Auth-Token` to a project and roles from a file;
//! `keystone` has Keystone validate it ([`crate::keystone`]).
//! Roles: `admin` sees and changes everything; `member` its own project's objects;
//! `reader` may only list and show its own project's objects, with secrets redacted;
//! `service` (Neutron's role for other services) may use only the agents' API.

use std::collections::HashMap;
use std::path::Path;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Deserialize;

use crate::App;
use crate::config::{AuthMode, Secret};
use crate::error::ApiError;
use crate::keystone::Refusal;
use vpnaas_model::Error as Fault;

/// The identity of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Project acted for.
    pub project_id: String,
    /// User, for logs.
    pub user_id: String,
    /// Roles, lower-case.
    pub roles: Vec<String>,
    /// The Keystone token the caller came with, passed on when vpnaas asks Neutron on
    /// its behalf (`inventory = "neutron"`), so that Neutron's own rules decide what the
    /// caller sees.
    pub token: Option<Secret>,
}

impl Caller {
    fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
    /// Sees and changes everything.
    pub fn is_admin(&self) -> bool {
        self.has("admin")
    }
    /// May create, update and delete its project's objects.
    pub fn can_write(&self) -> bool {
        self.is_admin() || self.has("member")
    }
    /// May list and show its project's objects.
    pub fn can_read(&self) -> bool {
        self.can_write() || self.has("reader")
    }
    /// May see pre-shared keys.
    pub fn sees_secrets(&self) -> bool {
        self.can_write()
    }
    /// Fails with 403 unless the caller may read.
    pub fn require_read(&self, action: &str) -> Result<(), Fault> {
        if self.can_read() {
            Ok(())
        } else {
            Err(Fault::forbidden(action))
        }
    }
    /// Fails with 403 unless the caller may write.
    pub fn require_write(&self, action: &str) -> Result<(), Fault> {
        if self.can_write() {
            Ok(())
        } else {
            Err(Fault::forbidden(action))
        }
    }
    /// Fails with 403 unless the caller is an admin or a service (the agents' API).
    pub fn require_agent(&self, action: &str) -> Result<(), Fault> {
        if self.is_admin() || self.has("service") {
            Ok(())
        } else {
            Err(Fault::forbidden(action))
        }
    }
    /// Fails with 403 unless the caller is an admin.
    pub fn require_admin(&self, action: &str) -> Result<(), Fault> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Fault::forbidden(action))
        }
    }
    /// Whether an object of `project_id` belongs to the caller (or the caller is admin).
    pub fn owns(&self, project_id: &str) -> bool {
        self.is_admin() || self.project_id == project_id
    }
}

#[derive(Deserialize)]
struct TokensFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    token: String,
    project_id: String,
    #[serde(default)]
    user_id: String,
    roles: Vec<String>,
}

/// Token → identity, loaded once at start.
#[derive(Default)]
pub struct Tokens(HashMap<String, Caller>);

impl std::fmt::Debug for Tokens {
    // Tokens are secrets: show how many, never which.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} entries)", self.0.len())
    }
}

impl Tokens {
    /// Reads a tokens file (`[[token]]` tables with token, project_id, user_id, roles).
    pub fn load(path: &Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file: TokensFile = toml::from_str(&text)
            .map_err(|e| format!("invalid tokens file {}: {e}", path.display()))?;
        let map = file
            .token
            .into_iter()
            .map(|t| {
                let caller = Caller {
                    project_id: t.project_id,
                    user_id: t.user_id,
                    roles: lower(t.roles),
                    token: None,
                };
                (t.token, caller)
            })
            .collect();
        Ok(Tokens(map))
    }
}

fn lower(roles: Vec<String>) -> Vec<String> {
    roles
        .into_iter()
        .map(|r| r.trim().to_ascii_lowercase())
        .filter(|r| !r.is_empty())
        .collect()
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The longest identity header value accepted (Neutron's ids and names are at most 255).
const MAX_IDENTITY_LEN: usize = 255;

/// An identity header that is given must say something sensible: an empty or oversized
/// `X-Project-Id` must not fall back to the default project's admin, nor become a 100 kB
/// project id.
fn identity_header<'a>(parts: &'a Parts, name: &str) -> Result<Option<&'a str>, Fault> {
    let Some(raw) = parts.headers.get(name) else {
        return Ok(None);
    };
    let bad = |why: &str| Fault::http_bad_request(format!("Invalid {name} header: {why}"));
    let text = raw
        .to_str()
        .map_err(|_| bad("it is not visible ASCII"))?
        .trim();
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    let longest = if name == "x-roles" {
        MAX_IDENTITY_LEN * 8
    } else {
        MAX_IDENTITY_LEN
    };
    if text.len() > longest {
        return Err(bad(&format!("it is longer than {longest} characters")));
    }
    Ok(Some(text))
}

fn from_headers(parts: &Parts, default_project: &str) -> Result<Caller, Fault> {
    let project = match identity_header(parts, "x-project-id")? {
        Some(project) => Some(project),
        None => identity_header(parts, "x-tenant-id")?,
    };
    let roles = identity_header(parts, "x-roles")?;
    let user = identity_header(parts, "x-user-id")?
        .unwrap_or("")
        .to_string();
    Ok(match (project, roles) {
        (None, None) => Caller {
            project_id: default_project.into(),
            user_id: user,
            roles: vec!["admin".into()],
            token: None,
        },
        (project, roles) => Caller {
            project_id: project.unwrap_or(default_project).into(),
            user_id: user,
            roles: roles.map_or_else(
                || vec!["member".into()],
                |r| lower(r.split(',').map(String::from).collect()),
            ),
            token: None,
        },
    })
}

impl FromRequestParts<App> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        match app.settings.auth {
            AuthMode::Noauth => Ok(from_headers(parts, &app.settings.default_project)?),
            AuthMode::Token => header(parts, "x-auth-token")
                .and_then(|token| app.tokens.0.get(token).cloned())
                .ok_or_else(|| Fault::unauthorized().into()),
            AuthMode::Keystone => by_keystone(app, header(parts, "x-auth-token")).await,
        }
    }
}

/// The caller of `token` by Keystone's word: 401 with a challenge when it is missing or
/// refused, 503 when Keystone cannot be asked.
async fn by_keystone(app: &App, token: Option<&str>) -> Result<Caller, ApiError> {
    let Some(keystone) = &app.keystone else {
        return Err(ApiError::Internal(
            "auth = keystone without a validator".into(),
        ));
    };
    let refusal = match token {
        None => Refusal::Unauthenticated("a valid X-Auth-Token is needed".into()),
        Some(token) => match keystone.authenticate(token).await {
            Ok(caller) => {
                return Ok(Caller {
                    token: Some(Secret(token.to_string())),
                    ..caller
                });
            }
            Err(refusal) => refusal,
        },
    };
    Err(match refusal {
        Refusal::Unauthenticated(_) => ApiError::Challenge(refusal.fault(), keystone.challenge()),
        Refusal::Unavailable(_) => ApiError::Fault(refusal.fault()),
    })
}

/// Whether a request may read `/metrics` on the API: anyone under noauth (what the API
/// itself allows); under token auth only a token of an admin or of the `metrics` role,
/// sent as `X-Auth-Token` or as `Authorization: Bearer` (what Prometheus sends). A
/// scraper without a token uses `metrics_listen`, an address of its own.
pub async fn may_scrape(app: &App, headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let token = text("x-auth-token")
        .or_else(|| text("authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::trim)));
    let caller = match app.settings.auth {
        AuthMode::Noauth => return Ok(()),
        AuthMode::Token => token
            .and_then(|token| app.tokens.0.get(token).cloned())
            .ok_or_else(Fault::unauthorized)?,
        AuthMode::Keystone => by_keystone(app, token).await?,
    };
    if caller.is_admin() || caller.has("metrics") {
        Ok(())
    } else {
        Err(Fault::forbidden("get_metrics").into())
    }
}
