//! Server settings: defaults, then a TOML file, then `VPNAAS_*` environment variables and
//! command-line flags (the binary applies the last two).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use vpnaas_model::enums::DriverKind;

/// How callers are identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Trust `X-Project-Id` / `X-Roles` headers (as Neutron's noauth).
    #[default]
    Noauth,
    /// Static tokens from a file, sent as `X-Auth-Token`.
    Token,
}

/// Everything the server needs to start.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Directory holding the SQLite database.
    pub data_dir: PathBuf,
    /// Database URL; default `sqlite://<data_dir>/vpnaas.db`.
    pub database_url: Option<String>,
    /// `noauth` or `token`.
    pub auth: AuthMode,
    /// Tokens file for `auth = "token"`.
    pub tokens_file: Option<PathBuf>,
    /// Project of header-less requests under noauth.
    pub default_project: String,
    /// Accept `sha1` and `3des` in policies.
    pub allow_weak_algorithms: bool,
    /// Seconds without a heartbeat after which an agent is dead (gets no new routers).
    pub agent_down_time: u64,
    /// The provider (IKE daemon) of VPN services created without a flavor.
    pub default_driver: DriverKind,
    /// Seconds for a request head to arrive; an idle keep-alive connection is closed
    /// after as long.
    pub http_header_timeout: f64,
    /// Seconds for a request body to arrive.
    pub http_body_timeout: f64,
    /// Connections served at once; more are answered 503 and closed.
    pub http_max_connections: usize,
    /// Host names (or addresses) requests may be addressed to (`["*"]`: any). Default:
    /// under noauth the listen address, `localhost`, `127.0.0.1` and `::1` (a page that
    /// rebinds its own name to this address is refused); otherwise any.
    pub allowed_hosts: Option<Vec<String>>,
    /// An address of its own where `/metrics` is served to anyone (keep it private). On
    /// the API, `/metrics` is anonymous only under noauth; under token auth it needs an
    /// admin's token or one with the `metrics` role.
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 9696)),
            data_dir: PathBuf::from("/var/lib/vpnaas"),
            database_url: None,
            auth: AuthMode::Noauth,
            tokens_file: None,
            default_project: "admin".into(),
            allow_weak_algorithms: false,
            agent_down_time: 75,
            default_driver: DriverKind::Strongswan,
            http_header_timeout: 5.0,
            http_body_timeout: 10.0,
            http_max_connections: 1024,
            allowed_hosts: None,
            metrics_listen: None,
        }
    }
}

/// A settings file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for these settings.
    #[error("invalid settings in {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: toml::de::Error,
    },
}

impl Settings {
    /// Reads settings from a TOML file; missing keys keep their defaults.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source,
        })
    }

    /// The HTTP edge's limits and rules.
    pub fn edge_policy(&self) -> crate::edge::EdgePolicy {
        let seconds = |s: f64| std::time::Duration::from_secs_f64(s.clamp(0.001, 86_400.0));
        crate::edge::EdgePolicy {
            header_timeout: seconds(self.http_header_timeout),
            body_timeout: seconds(self.http_body_timeout),
            max_connections: self.http_max_connections.max(1),
            allowed_hosts: self.hosts_allowed().map(Into::into),
        }
    }

    /// The host names requests may be addressed to; `None` for any.
    fn hosts_allowed(&self) -> Option<Vec<String>> {
        match &self.allowed_hosts {
            Some(hosts) if hosts.iter().any(|h| h == "*") => None,
            Some(hosts) => Some(hosts.clone()),
            None if self.auth == AuthMode::Noauth => {
                let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
                    .into_iter()
                    .map(String::from)
                    .collect();
                if !self.listen.ip().is_unspecified() {
                    hosts.push(self.listen.ip().to_string());
                }
                Some(hosts)
            }
            None => None,
        }
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("vpnaas.db").display()
            )
        })
    }
}

/// The annotated configuration printed by `vpnaas default-config`.
pub const DEFAULT_CONFIG: &str = r#"# vpnaas server configuration (TOML).
# Precedence: built-in defaults < this file (--config FILE) < VPNAAS_* environment < flags.

# Address and port of the Neutron-compatible API.            env VPNAAS_LISTEN, --listen
listen = "127.0.0.1:9696"

# Directory of the embedded SQLite database (vpnaas.db, WAL). env VPNAAS_DATA_DIR, --data-dir
data_dir = "/var/lib/vpnaas"

# Database URL; overrides data_dir when set.                  env VPNAAS_DATABASE_URL
# database_url = "sqlite:///var/lib/vpnaas/vpnaas.db?mode=rwc"

# Identity: "noauth" trusts X-Project-Id / X-User-Id / X-Roles headers (a request without
# them acts as default_project with the admin role: local single-user use only);
# "token" maps X-Auth-Token values to a project and roles from tokens_file.
auth = "noauth"
default_project = "admin"
# tokens_file = "/etc/vpnaas/tokens.toml"
#   [[token]]
#   token = "secret-token"
#   project_id = "demo"
#   user_id = "alice"
#   roles = ["member"]        # admin | member | reader

# sha1 and 3des are refused in IKE/IPsec policies unless this is true.
allow_weak_algorithms = false

# Seconds without a heartbeat after which an agent counts as dead.
agent_down_time = 75

# Provider (IKE daemon) of VPN services created without a flavor: strongswan | libreswan.
default_driver = "strongswan"

# Slow and idle clients: seconds for a request head to arrive (an idle keep-alive
# connection is closed after as long), seconds for a body to arrive (else 408), and the
# connections served at once (more are answered 503 and closed).
http_header_timeout = 5.0
http_body_timeout = 10.0
http_max_connections = 1024

# Host names (or addresses) requests may be addressed to; ["*"] for any. Unset: under
# noauth the listen address, localhost, 127.0.0.1 and ::1 (a web page that rebinds its own
# name to this server's address is refused); under token auth any. Agents and clients that
# reach a noauth server by another name or address need it here.
# allowed_hosts = ["vpn.example.com", "192.0.2.10"]

# /metrics on the API is anonymous under noauth only; under token auth it needs an admin's
# token or one with the "metrics" role (X-Auth-Token, or Authorization: Bearer as
# Prometheus sends it). This serves /metrics to anyone on an address of its own.
# metrics_listen = "127.0.0.1:9698"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_default_config_parses_to_the_defaults() {
        let parsed: Settings = toml::from_str(DEFAULT_CONFIG).expect("default config parses");
        let defaults = Settings::default();
        assert_eq!(parsed.listen, defaults.listen);
        assert_eq!(parsed.data_dir, defaults.data_dir);
        assert_eq!(parsed.auth, defaults.auth);
        assert!(!parsed.allow_weak_algorithms);
        assert_eq!(parsed.default_driver, defaults.default_driver);
    }
}
