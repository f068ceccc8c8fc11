//! A client for the vpnaas API (Neutron VPNaaS v2.0 and the network inventory), used by
//! the CLI and by the black-box tests. It speaks JSON documents and unwraps Neutron's
//! envelopes; refusals come back as [`Error::Api`] carrying `NeutronError`'s type.

#![warn(missing_docs)]

pub use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vpnaas_model::Kind;

/// A refusal or failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error.
    #[error("{message} (HTTP {status}, {kind})")]
    Api {
        /// HTTP status.
        status: u16,
        /// `NeutronError.type`.
        kind: String,
        /// `NeutronError.message`.
        message: String,
    },
    /// The server could not be reached.
    #[error("cannot reach the vpnaas API: {0}")]
    Transport(#[from] reqwest::Error),
    /// The answer was not what the API promises.
    #[error("unexpected answer from the API: {0}")]
    Protocol(String),
}

impl Error {
    /// `NeutronError.type` of an API refusal, if it is one.
    pub fn kind(&self) -> Option<&str> {
        match self {
            Error::Api { kind, .. } => Some(kind),
            _ => None,
        }
    }
    /// HTTP status of an API refusal, if it is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Result with the client's error.
pub type Result<T> = std::result::Result<T, Error>;

/// How the client identifies itself.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// `X-Project-Id` (noauth).
    pub project: Option<String>,
    /// `X-User-Id` (noauth).
    pub user: Option<String>,
    /// `X-Roles`, comma-separated (noauth).
    pub roles: Option<String>,
    /// `X-Auth-Token` (token auth).
    pub token: Option<String>,
}

/// The API client.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    identity: Identity,
}

impl std::fmt::Debug for Client {
    // The token is a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the API at `base_url` (e.g. `http://127.0.0.1:9696`).
    pub fn new(base_url: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: base_url.trim_end_matches('/').to_string(),
            identity: Identity::default(),
        }
    }

    /// The same client acting with another identity.
    pub fn with_identity(&self, identity: Identity) -> Client {
        Client {
            identity,
            ..self.clone()
        }
    }

    /// The same client acting as `project` with `roles` (noauth headers).
    pub fn as_project(&self, project: &str, roles: &str) -> Client {
        self.with_identity(Identity {
            project: Some(project.into()),
            roles: Some(roles.into()),
            ..Identity::default()
        })
    }

    /// Base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A request carrying the client's identity.
    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        for (header, value) in [
            ("x-project-id", &self.identity.project),
            ("x-user-id", &self.identity.user),
            ("x-roles", &self.identity.roles),
            ("x-auth-token", &self.identity.token),
        ] {
            if let Some(value) = value {
                request = request.header(header, value);
            }
        }
        request
    }

    /// Sends a request and returns status and JSON body (`Null` when empty), errors included.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| Error::Protocol(format!("body is not JSON: {e}")))?
        };
        Ok((status, value))
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let (status, value) = self.raw(method, path, body).await?;
        if status.is_success() {
            return Ok(value);
        }
        let error = &value["NeutronError"];
        Err(Error::Api {
            status: status.as_u16(),
            kind: error["type"].as_str().unwrap_or("Unknown").to_string(),
            message: error["message"]
                .as_str()
                .unwrap_or("(no message)")
                .to_string(),
        })
    }

    fn unwrap(kind: Kind, mut body: Value) -> Result<Value> {
        match body.get_mut(kind.singular()) {
            Some(inner) => Ok(inner.take()),
            None => Err(Error::Protocol(format!(
                "no '{}' in the answer",
                kind.singular()
            ))),
        }
    }

    /// Creates an object from its attributes; returns the stored object.
    pub async fn create(&self, kind: Kind, attrs: Value) -> Result<Value> {
        let body = json!({ kind.singular(): attrs });
        Self::unwrap(
            kind,
            self.call(Method::POST, &format!("/v2.0/{}", kind.path()), Some(&body))
                .await?,
        )
    }

    /// Shows one object.
    pub async fn show(&self, kind: Kind, id: &str) -> Result<Value> {
        Self::unwrap(
            kind,
            self.call(Method::GET, &format!("/v2.0/{}/{id}", kind.path()), None)
                .await?,
        )
    }

    /// Updates an object; returns the stored object.
    pub async fn update(&self, kind: Kind, id: &str, attrs: Value) -> Result<Value> {
        let body = json!({ kind.singular(): attrs });
        Self::unwrap(
            kind,
            self.call(
                Method::PUT,
                &format!("/v2.0/{}/{id}", kind.path()),
                Some(&body),
            )
            .await?,
        )
    }

    /// Deletes an object.
    pub async fn delete(&self, kind: Kind, id: &str) -> Result<()> {
        self.call(Method::DELETE, &format!("/v2.0/{}/{id}", kind.path()), None)
            .await
            .map(|_| ())
    }

    /// One page of a list, as the raw body (items and `<plural>_links`).
    pub async fn list_page(&self, kind: Kind, query: &[(&str, &str)]) -> Result<Value> {
        let mut path = format!("/v2.0/{}", kind.path());
        if !query.is_empty() {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in query {
                q.append_pair(k, v);
            }
            path = format!("{path}?{}", q.finish());
        }
        self.call(Method::GET, &path, None).await
    }

    /// The items of a list (one page when `limit` is in the query).
    pub async fn list(&self, kind: Kind, query: &[(&str, &str)]) -> Result<Vec<Value>> {
        match self
            .list_page(kind, query)
            .await?
            .get_mut(kind.plural())
            .map(Value::take)
        {
            Some(Value::Array(items)) => Ok(items),
            _ => Err(Error::Protocol(format!(
                "no '{}' list in the answer",
                kind.plural()
            ))),
        }
    }

    /// Finds one object by id, or else by exact name (refusing ambiguous names).
    pub async fn find(&self, kind: Kind, name_or_id: &str) -> Result<Value> {
        match self.show(kind, name_or_id).await {
            Ok(found) => return Ok(found),
            Err(Error::Api { status: 404, .. }) => {}
            Err(other) => return Err(other),
        }
        let mut matches = self.list(kind, &[("name", name_or_id)]).await?;
        match matches.len() {
            1 => Ok(matches.remove(0)),
            0 => Err(Error::Api {
                status: 404,
                kind: "NotFound".into(),
                message: format!(
                    "No {} with a name or ID of '{name_or_id}' exists.",
                    kind.singular()
                ),
            }),
            n => Err(Error::Api {
                status: 409,
                kind: "NoUniqueMatch".into(),
                message: format!(
                    "{n} {} are named '{name_or_id}': use the ID.",
                    kind.plural()
                ),
            }),
        }
    }

    /// Attaches a subnet to a router.
    pub async fn add_router_interface(&self, router_id: &str, subnet_id: &str) -> Result<Value> {
        let body = json!({ "subnet_id": subnet_id });
        self.call(
            Method::PUT,
            &format!("/v2.0/routers/{router_id}/add_router_interface"),
            Some(&body),
        )
        .await
    }

    /// Moves a router's VPN to another driver (admin action).
    pub async fn migrate_router_driver(&self, router_id: &str, driver: &str) -> Result<Value> {
        let body = json!({ "driver": driver });
        self.call(
            Method::PUT,
            &format!("/v2.0/routers/{router_id}/migrate_vpn_driver"),
            Some(&body),
        )
        .await
    }

    /// Asks connection `id`'s agent to re-authenticate its IKE SA now (vpnaas extension);
    /// returns the connection, its `key_rotation.reauth` grown.
    pub async fn reauthenticate(&self, id: &str) -> Result<Value> {
        let path = format!("/v2.0/{}/{id}/reauthenticate", Kind::SiteConnection.path());
        let answer = self.call(Method::POST, &path, None).await?;
        Self::unwrap(Kind::SiteConnection, answer)
    }

    /// Issues a certificate and key for a `cert` connection's peer from the project's CA
    /// (`POST …/peer-credentials`): the `peer_credentials` object, returned once.
    pub async fn peer_credentials(&self, id: &str) -> Result<Value> {
        let path = format!(
            "/v2.0/{}/{id}/peer-credentials",
            Kind::SiteConnection.path()
        );
        let mut answer = self.call(Method::POST, &path, None).await?;
        Ok(answer["peer_credentials"].take())
    }

    /// Renews a VPN service's gateway certificate now (`POST …/renew-certificate`).
    pub async fn renew_certificate(&self, id: &str) -> Result<Value> {
        let path = format!("/v2.0/{}/{id}/renew-certificate", Kind::VpnService.path());
        let answer = self.call(Method::POST, &path, None).await?;
        Self::unwrap(Kind::VpnService, answer)
    }

    /// Associates a service profile with a flavor.
    pub async fn associate_profile(&self, flavor_id: &str, profile_id: &str) -> Result<Value> {
        let body = json!({ "service_profile": { "id": profile_id } });
        self.call(
            Method::POST,
            &format!("/v2.0/flavors/{flavor_id}/service_profiles"),
            Some(&body),
        )
        .await
    }

    /// Removes a service profile from a flavor.
    pub async fn disassociate_profile(&self, flavor_id: &str, profile_id: &str) -> Result<()> {
        self.call(
            Method::DELETE,
            &format!("/v2.0/flavors/{flavor_id}/service_profiles/{profile_id}"),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Detaches a subnet from a router.
    pub async fn remove_router_interface(&self, router_id: &str, subnet_id: &str) -> Result<Value> {
        let body = json!({ "subnet_id": subnet_id });
        self.call(
            Method::PUT,
            &format!("/v2.0/routers/{router_id}/remove_router_interface"),
            Some(&body),
        )
        .await
    }

    /// GETs a path and returns the body as text, undecoded (for benchmarks).
    pub async fn get_text(&self, path: &str) -> Result<String> {
        let response = self.request(Method::GET, path).send().await?;
        let status = response.status();
        let text = response.text().await?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(Error::Protocol(format!("HTTP {status} for {path}")))
        }
    }

    /// The configuration of connection `id`'s far end in `format` (`include_secret`: with
    /// the pre-shared key), as the server writes it; a refusal is the API's error.
    pub async fn peer_config(
        &self,
        id: &str,
        format: &str,
        include_secret: bool,
    ) -> Result<String> {
        let path = format!(
            "/v2.0/{}/{id}/peer-config?format={format}&include_secret={include_secret}",
            Kind::SiteConnection.path()
        );
        let response = self.request(Method::GET, &path).send().await?;
        let status = response.status();
        let text = response.text().await?;
        if status.is_success() {
            return Ok(text);
        }
        let value: Value = serde_json::from_str(&text).unwrap_or_default();
        let error = &value["NeutronError"];
        Err(Error::Api {
            status: status.as_u16(),
            kind: error["type"].as_str().unwrap_or("Unknown").to_string(),
            message: error["message"]
                .as_str()
                .unwrap_or("(no message)")
                .to_string(),
        })
    }

    /// GETs any path as JSON (discovery documents, OpenAPI).
    pub async fn get(&self, path: &str) -> Result<Value> {
        self.call(Method::GET, path, None).await
    }
}
