//! Reading a running neutron-vpnaas: how the importer identifies itself to Neutron (a
//! Keystone password login, as the `openstack` clients do, or identity headers for a
//! test Neutron without Keystone) and reading every object of the five VPN kinds, of
//! every project, PSKs included (an administrator sees them in Neutron's GETs).
//! Neutron speaks the API vpnaas speaks, so vpnaas's own client reads it.

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::Value;
use vpnaas_bus::http::{KeystoneLogin, keystone_token};
use vpnaas_client::{Client, Identity};
use vpnaas_model::Kind;

/// The kinds the importer takes, in dependency order: what an object refers to is
/// imported before it.
pub const KINDS: [Kind; 5] = [
    Kind::IkePolicy,
    Kind::IpsecPolicy,
    Kind::EndpointGroup,
    Kind::VpnService,
    Kind::SiteConnection,
];

/// How many objects one list request asks Neutron for.
const PAGE: usize = 500;

/// Where neutron-vpnaas is and how to log in to it.
#[derive(Debug, Args)]
pub struct NeutronArgs {
    /// neutron-server's endpoint, e.g. http://controller:9696.
    #[arg(long)]
    neutron_url: String,
    /// Keystone's endpoint (v3), e.g. http://controller:5000/v3.
    #[arg(long, env = "OS_AUTH_URL")]
    os_auth_url: Option<String>,
    /// An administrator of the cloud (Neutron shows every project's objects and PSKs to
    /// administrators only).
    #[arg(long, env = "OS_USERNAME")]
    os_username: Option<String>,
    /// Its password.
    #[arg(long, env = "OS_PASSWORD", hide_env_values = true)]
    os_password: Option<String>,
    /// The project its token is scoped to.
    #[arg(long, env = "OS_PROJECT_NAME")]
    os_project_name: Option<String>,
    /// The user's domain.
    #[arg(long, env = "OS_USER_DOMAIN_NAME", default_value = "Default")]
    os_user_domain_name: String,
    /// The project's domain.
    #[arg(long, env = "OS_PROJECT_DOMAIN_NAME", default_value = "Default")]
    os_project_domain_name: String,
    /// For tests only: a Neutron without Keystone that takes identity from
    /// X-Project-Id/X-Roles headers; the importer claims to be an admin of this project.
    #[arg(long, hide = true, conflicts_with = "os_auth_url")]
    neutron_noauth_project: Option<String>,
}

/// A session with Neutron.
pub struct Neutron {
    client: Client,
    /// The Keystone token, which a vpnaas under `auth = "keystone"` on the same Keystone
    /// also takes.
    pub token: Option<String>,
}

impl Neutron {
    /// Logs in (when Keystone is given) and returns a session.
    pub async fn connect(args: &NeutronArgs) -> Result<Neutron> {
        let base = args
            .neutron_url
            .trim_end_matches('/')
            .trim_end_matches("/v2.0");
        let client = Client::new(base);
        if let Some(project) = &args.neutron_noauth_project {
            let client = client.with_identity(Identity {
                project: Some(project.clone()),
                user: Some("vpnaas-import".into()),
                roles: Some("admin".into()),
                token: None,
            });
            return Ok(Neutron {
                client,
                token: None,
            });
        }
        let token = log_in(args).await?;
        let client = client.with_identity(Identity {
            token: Some(token.clone()),
            ..Identity::default()
        });
        Ok(Neutron {
            client,
            token: Some(token),
        })
    }

    /// Every object of `kind` Neutron shows, page by page (by id, as Neutron pages).
    pub async fn read_all(&self, kind: Kind) -> Result<Vec<Value>> {
        let limit = PAGE.to_string();
        let mut all: Vec<Value> = Vec::new();
        loop {
            let marker = all.last().and_then(|o| o["id"].as_str()).map(String::from);
            let mut query = vec![("limit", limit.as_str())];
            if let Some(marker) = &marker {
                query.push(("marker", marker));
            }
            let page = self
                .client
                .list(kind, &query)
                .await
                .with_context(|| format!("reading Neutron's {}", kind.plural()))?;
            let full = page.len() >= PAGE;
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }
}

async fn log_in(args: &NeutronArgs) -> Result<String> {
    let missing =
        |what: &str| format!("{what} is needed to log in to Keystone (or OS_* in the environment)");
    let Some(auth_url) = &args.os_auth_url else {
        bail!(missing("--os-auth-url"))
    };
    let login = KeystoneLogin {
        auth_url: auth_url.clone(),
        username: args
            .os_username
            .clone()
            .ok_or_else(|| anyhow::anyhow!(missing("--os-username")))?,
        password: args
            .os_password
            .clone()
            .ok_or_else(|| anyhow::anyhow!(missing("--os-password")))?,
        user_domain_name: args.os_user_domain_name.clone(),
        project_name: args
            .os_project_name
            .clone()
            .ok_or_else(|| anyhow::anyhow!(missing("--os-project-name")))?,
        project_domain_name: args.os_project_domain_name.clone(),
    };
    let (token, _lifetime) = keystone_token(&reqwest::Client::new(), &login)
        .await
        .with_context(|| format!("logging in to Keystone at {auth_url}"))?;
    Ok(token)
}
