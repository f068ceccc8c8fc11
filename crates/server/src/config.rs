//! Server settings: defaults, then a TOML file, then `VPNAAS_*` environment variables and
//! command-line flags (the binary applies the last two).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    /// `X-Auth-Token` validated by Keystone v3 (settings in `[keystone]`).
    Keystone,
}

/// A secret setting: read and written as plain text, never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Secret(text)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How `auth = "keystone"` reaches Keystone: the service user that validates callers'
/// tokens, and how long answers are trusted.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeystoneSettings {
    /// Keystone's v3 endpoint, e.g. `http://keystone.example.com:5000/v3`.
    pub auth_url: String,
    /// The endpoint named in `WWW-Authenticate` on a 401; default `auth_url`.
    pub www_authenticate_uri: Option<String>,
    /// The service user's name.
    pub username: String,
    /// The service user's password.
    pub password: Secret,
    /// The service user's domain (by name).
    pub user_domain_name: String,
    /// The project the service user's token is scoped to.
    pub project_name: String,
    /// That project's domain (by name).
    pub project_domain_name: String,
    /// Seconds a validated token is trusted without asking Keystone again: a revoked
    /// token is refused at most this long after its revocation.
    pub revocation_ttl: u64,
    /// Validated tokens remembered at most (the least recently checked go first).
    pub cache_size: usize,
    /// Seconds to wait for Keystone before answering 503.
    pub timeout: f64,
    /// A PEM file of CA certificates trusted for an `https` `auth_url` beside the system's
    /// (a cloud's private CA).
    pub ca_file: Option<PathBuf>,
}

impl Default for KeystoneSettings {
    fn default() -> Self {
        KeystoneSettings {
            auth_url: "http://127.0.0.1:5000/v3".into(),
            www_authenticate_uri: None,
            username: "vpnaas".into(),
            password: Secret::default(),
            user_domain_name: "Default".into(),
            project_name: "service".into(),
            project_domain_name: "Default".into(),
            revocation_ttl: 30,
            cache_size: 10_000,
            timeout: 5.0,
            ca_file: None,
        }
    }
}

impl KeystoneSettings {
    /// The v3 endpoint without a trailing slash.
    pub fn base(&self) -> &str {
        self.auth_url.trim_end_matches('/')
    }

    /// The endpoint a refused client is told to authenticate at.
    pub fn challenge_uri(&self) -> &str {
        self.www_authenticate_uri.as_deref().unwrap_or(self.base())
    }
}

/// Where the routers, subnets and networks VPN services live on come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum InventoryMode {
    /// vpnaas's own minimal inventory, served at `/v2.0/networks|subnets|routers`.
    #[default]
    Builtin,
    /// A running Neutron's (settings in `[neutron]`): vpnaas keeps a copy of the objects
    /// its VPN services use, and serves no inventory of its own.
    Neutron,
}

/// How `inventory = "neutron"` reaches Neutron.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NeutronSettings {
    /// Neutron's API endpoint behind any HTTP front (its internal URL), e.g.
    /// `http://neutron.internal:9696`: vpnaas forwards the router and subnet changes it
    /// has allowed there.
    pub url: String,
    /// Seconds between checks that the routers VPN services use still exist in Neutron
    /// unchanged (changes made behind the HTTP front are noticed this fast).
    pub poll_interval: f64,
    /// Seconds to wait for Neutron before answering 503.
    pub timeout: f64,
    /// A PEM file of CA certificates trusted for an `https` `url` beside the system's.
    pub ca_file: Option<PathBuf>,
}

impl Default for NeutronSettings {
    fn default() -> Self {
        NeutronSettings {
            url: "http://127.0.0.1:9696".into(),
            poll_interval: 2.0,
            timeout: 10.0,
            ca_file: None,
        }
    }
}

impl NeutronSettings {
    /// The endpoint without a trailing slash.
    pub fn base(&self) -> &str {
        self.url.trim_end_matches('/')
    }
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
    /// The key file that seals secrets (PSKs) in the database; default
    /// `<data_dir>/secret.key`, created (mode 0600) when missing.
    pub secret_key_file: Option<PathBuf>,
    /// `noauth`, `token` or `keystone`.
    pub auth: AuthMode,
    /// Tokens file for `auth = "token"`.
    pub tokens_file: Option<PathBuf>,
    /// Keystone for `auth = "keystone"`.
    pub keystone: KeystoneSettings,
    /// `builtin` or `neutron`.
    pub inventory: InventoryMode,
    /// Neutron for `inventory = "neutron"`.
    pub neutron: NeutronSettings,
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
    /// Days a gateway certificate (or a peer's, from `peer-credentials`) issued by a
    /// project's CA is valid.
    pub certificate_days: u32,
    /// A gateway certificate is renewed (same key, no tunnel bounced) when it has fewer
    /// days than this left.
    pub certificate_renew_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 9696)),
            data_dir: PathBuf::from("/var/lib/vpnaas"),
            database_url: None,
            secret_key_file: None,
            auth: AuthMode::Noauth,
            tokens_file: None,
            keystone: KeystoneSettings::default(),
            inventory: InventoryMode::Builtin,
            neutron: NeutronSettings::default(),
            default_project: "admin".into(),
            allow_weak_algorithms: false,
            agent_down_time: 75,
            default_driver: DriverKind::Strongswan,
            http_header_timeout: 5.0,
            http_body_timeout: 10.0,
            http_max_connections: 1024,
            allowed_hosts: None,
            metrics_listen: None,
            certificate_days: 365,
            certificate_renew_days: 30,
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
    /// A CA file that cannot be read or holds no usable certificate.
    #[error("cannot use the CA certificates in {path}: {reason}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
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

/// An HTTP client for a service vpnaas calls (Keystone, Neutron): at most `timeout`
/// seconds per request, trusting the system's CAs and those of `ca_file`.
pub fn http_client(timeout: f64, ca_file: Option<&Path>) -> Result<reqwest::Client, ConfigError> {
    let timeout = std::time::Duration::from_secs_f64(timeout.clamp(0.1, 300.0));
    let mut builder = reqwest::Client::builder().timeout(timeout);
    if let Some(path) = ca_file {
        let unusable = |reason: String| ConfigError::Certificate {
            path: path.into(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| unusable(e.to_string()))?;
        let certificates =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| unusable(e.to_string()))?;
        if certificates.is_empty() {
            return Err(unusable("it holds no PEM certificate".into()));
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(|e| ConfigError::Certificate {
        path: ca_file.map(Into::into).unwrap_or_default(),
        reason: e.to_string(),
    })
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

    /// The secret key file in effect.
    pub fn secret_key_file(&self) -> PathBuf {
        self.secret_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secret.key"))
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

# Pre-shared keys are stored sealed (XChaCha20-Poly1305) with the key in this file,
# created with mode 0600 on first start; a file others may read is refused. Back it up
# with the database, and give every server of one database the same file. Rotate with
# `vpnaas secrets rotate-key`.                  env VPNAAS_SECRET_KEY_FILE, --secret-key-file
# secret_key_file = "/var/lib/vpnaas/secret.key"    # default: <data_dir>/secret.key

# Identity: "noauth" trusts X-Project-Id / X-User-Id / X-Roles headers (a request without
# them acts as default_project with the admin role: local single-user use only);
# "token" maps X-Auth-Token values to a project and roles from tokens_file;
# "keystone" has Keystone v3 validate X-Auth-Token (see [keystone] at the end).
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

# Seconds without a heartbeat after which an agent counts as dead (its routers move, an
# HA router's to its standby).
agent_down_time = 75

# Sub-second HA failover is the agents' (their settings file, --agent-config, or flags):
#   [ha]
#   listen = "192.0.2.10:4789"   # --ha-listen: UDP address where the agent answers its
#                                # peers' liveness probes (one the other agents reach);
#                                # unset: off, HA routers fail over after agent_down_time
#   probe_interval_ms = 100      # --ha-probe-interval-ms: a standby probes each active
#                                # agent of its routers this often
#   dead_time_ms = 300           # --ha-dead-time-ms: then claims their leases from this
#                                # server after this long without an answer
# The server grants a claim only to the router's standby under its current lease epoch,
# and never back to the agent that lost the lease to a claim while the holder beats.

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

# Certificate authentication (auth_mode = "cert", a vpnaas extension): each project's CA
# issues its VPN services' gateway certificates (and peers' from peer-credentials), valid
# this many days; a gateway certificate is renewed on its key, without bouncing a tunnel,
# once it has fewer than certificate_renew_days left (checked hourly).
certificate_days = 365
certificate_renew_days = 30

# auth = "keystone": each X-Auth-Token is validated as keystonemiddleware does
# (GET /v3/auth/tokens with X-Subject-Token, by a service user of its own). The project is
# the token's project scope; roles as Neutron's default policy reads them: admin, member,
# reader, and service (only the agents' API, /v2.0/vpnaas-agent/). A missing or invalid
# token is answered 401 with WWW-Authenticate: Keystone uri="..."; Keystone unreachable
# is answered 503. The service user needs the admin or service role in its project
# (Keystone's identity:validate_token policy).
[keystone]
auth_url = "http://127.0.0.1:5000/v3"
# www_authenticate_uri = "https://keystone.example.com/v3"   # default: auth_url
username = "vpnaas"
# password = "..."              env VPNAAS_KEYSTONE_PASSWORD, --keystone-password
# (auth_url also: env VPNAAS_KEYSTONE_AUTH_URL, --keystone-auth-url)
user_domain_name = "Default"
project_name = "service"
project_domain_name = "Default"
# A validated token is trusted until it expires or for revocation_ttl seconds, whichever
# is sooner, then asked about again: a revoked token is refused within revocation_ttl.
revocation_ttl = 30
# Validated tokens remembered (by a SHA-256 of the token; the least recently checked go
# first when full).
cache_size = 10000
# Seconds to wait for Keystone before answering 503.
timeout = 5.0
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
        assert_eq!(parsed.keystone.auth_url, defaults.keystone.auth_url);
        assert_eq!(parsed.keystone.username, defaults.keystone.username);
        assert_eq!(
            parsed.keystone.revocation_ttl,
            defaults.keystone.revocation_ttl
        );
        assert_eq!(parsed.keystone.cache_size, defaults.keystone.cache_size);
        assert_eq!(parsed.keystone.timeout, defaults.keystone.timeout);
    }

    #[test]
    fn keystone_settings_parse_and_hide_the_password() {
        let text = "auth = \"keystone\"\n[keystone]\nauth_url = \"http://ks:5000/v3/\"\npassword = \"pw-secret\"\n";
        let parsed: Settings = toml::from_str(text).expect("parses");
        assert_eq!(parsed.auth, AuthMode::Keystone);
        assert_eq!(parsed.keystone.password.0, "pw-secret");
        assert_eq!(parsed.keystone.challenge_uri(), "http://ks:5000/v3");
        assert!(!format!("{parsed:?}").contains("pw-secret"));
    }
}
