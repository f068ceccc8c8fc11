//! Calls on a lab's Neutron as a given caller, and the topology tests build most: an
//! external flat network with a subnet, a router with its gateway there, and a project's
//! network and subnet attached to that router.

use reqwest::Method;
use serde_json::{Value, json};

use super::{EXTERNAL_PHYSNET, Neutron};

/// Who calls: a Keystone token, or (for a Neutron started with `Auth::Headers`) the
/// identity headers.
#[derive(Debug, Clone)]
pub enum Identity {
    Token(String),
    Headers { project_id: String, roles: String },
}

impl Identity {
    /// Headers of `project_id` with `roles`.
    pub fn headers(project_id: &str, roles: &[&str]) -> Identity {
        Identity::Headers {
            project_id: project_id.into(),
            roles: roles.join(","),
        }
    }

    /// Adds the identity to `request`.
    pub fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Identity::Token(token) => request.header("x-auth-token", token),
            Identity::Headers { project_id, roles } => request
                .header("x-project-id", project_id)
                .header("x-user-id", format!("user-of-{project_id}"))
                .header("x-roles", roles),
        }
    }
}

/// An answer: status and JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Response {
    pub status: reqwest::StatusCode,
    pub body: Value,
}

/// A network and its subnet.
#[derive(Debug, Clone)]
pub struct NetworkIds {
    pub network: String,
    pub subnet: String,
}

impl Neutron {
    /// `method path` (e.g. `/v2.0/networks`) as `who`.
    ///
    /// # Panics
    /// When Neutron cannot be reached.
    pub async fn call(
        &self,
        who: &Identity,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Response {
        self.try_call(who, method.clone(), path, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub(super) async fn try_call(
        &self,
        who: &Identity,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Result<Response> {
        let mut request = who.apply(self.http.request(method, format!("{}{path}", self.url)));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await?;
        let status = answer.status();
        let text = answer.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Response { status, body })
    }

    /// Creates a `resource` (e.g. `network`) in `collection` (e.g. `/v2.0/networks`) as
    /// `who` and returns it.
    ///
    /// # Panics
    /// When Neutron does not answer 201.
    pub async fn create(
        &self,
        who: &Identity,
        collection: &str,
        resource: &str,
        attributes: Value,
    ) -> Value {
        let body = json!({ resource: attributes });
        let answer = self.call(who, Method::POST, collection, Some(body)).await;
        assert_eq!(answer.status, 201, "POST {collection}: {:?}", answer.body);
        answer.body[resource].clone()
    }

    /// An external flat network on physnet `public` with a subnet of `cidr` (no DHCP), as
    /// the admin.
    pub async fn external_network(&self, name: &str, cidr: &str) -> NetworkIds {
        let network = self
            .create(
                &self.admin,
                "/v2.0/networks",
                "network",
                json!({"name": name, "router:external": true,
                    "provider:network_type": "flat",
                    "provider:physical_network": EXTERNAL_PHYSNET}),
            )
            .await;
        self.subnet(&self.admin, &network, cidr).await
    }

    /// A router of `who` with its gateway on `external_network`; returns it.
    pub async fn router(&self, who: &Identity, name: &str, external_network: &str) -> Value {
        let gateway = json!({"network_id": external_network});
        self.create(
            who,
            "/v2.0/routers",
            "router",
            json!({"name": name, "external_gateway_info": gateway}),
        )
        .await
    }

    /// A network of `who` with a subnet of `cidr`, attached to `router` if given.
    pub async fn tenant_network(
        &self,
        who: &Identity,
        name: &str,
        cidr: &str,
        router: Option<&str>,
    ) -> NetworkIds {
        let network = self
            .create(who, "/v2.0/networks", "network", json!({"name": name}))
            .await;
        let ids = self.subnet(who, &network, cidr).await;
        if let Some(router) = router {
            let path = format!("/v2.0/routers/{router}/add_router_interface");
            let body = json!({"subnet_id": ids.subnet});
            let answer = self.call(who, Method::PUT, &path, Some(body)).await;
            assert_eq!(answer.status, 200, "PUT {path}: {:?}", answer.body);
        }
        ids
    }

    async fn subnet(&self, who: &Identity, network: &Value, cidr: &str) -> NetworkIds {
        let network = network["id"].as_str().expect("network id").to_string();
        let subnet = self
            .create(
                who,
                "/v2.0/subnets",
                "subnet",
                json!({"network_id": network, "cidr": cidr, "ip_version": 4,
                    "enable_dhcp": false}),
            )
            .await;
        let subnet = subnet["id"].as_str().expect("subnet id").to_string();
        NetworkIds { network, subnet }
    }
}
