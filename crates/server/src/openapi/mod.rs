//! The OpenAPI 3.0 document served at `/openapi.json`. Its operations come from the route
//! table of `api.rs`, where every route is registered together with its [`Operation`]
//! (built in [`operations`]), so no route is served undocumented and none is documented
//! unserved. Its resource schemas ([`schemas`]) come from the attribute maps that validate
//! requests, read under this server's [`Rules`], so they say what this server accepts.

pub mod operations;
mod pattern;
mod schemas;

use axum::http::Method;
use serde_json::{Map, Value, json};
use vpnaas_model::attr::{Post, Rules};
use vpnaas_model::{Kind, attributes};

use crate::config::AuthMode;

/// Error statuses of the operations on resources: a bad request, no identity, no right,
/// nothing there, a conflict with the stored state.
const RESOURCE_ERRORS: &[u16] = &[400, 401, 403, 404, 409];

/// What the document says about one served operation.
#[derive(Debug)]
pub struct Operation {
    tag: String,
    summary: String,
    query: Vec<Value>,
    body: Option<Value>,
    responses: Map<String, Value>,
}

impl Operation {
    /// An operation of the group `tag`, with no parameters and no answers yet.
    pub fn new(tag: &str, summary: impl Into<String>) -> Self {
        Operation {
            tag: tag.into(),
            summary: summary.into(),
            query: Vec::new(),
            body: None,
            responses: Map::new(),
        }
    }

    /// Its query parameters.
    pub fn query(mut self, parameters: Vec<Value>) -> Self {
        self.query = parameters;
        self
    }

    /// Its JSON request body; a body larger than the server reads is refused with 413.
    pub fn body(mut self, schema: Value) -> Self {
        self.body = Some(schema);
        self.refuses(&[413])
    }

    /// A JSON answer with `status`.
    pub fn answers(mut self, status: u16, description: &str, schema: Value) -> Self {
        self.responses.insert(
            status.to_string(),
            json!({"description": description, "content": {"application/json": {"schema": schema}}}),
        );
        self
    }

    /// An answer with `status` and no body.
    pub fn answers_empty(mut self, status: u16, description: &str) -> Self {
        self.responses
            .insert(status.to_string(), json!({"description": description}));
        self
    }

    /// A plain text answer with `status`.
    pub fn answers_text(mut self, status: u16, description: &str) -> Self {
        self.responses.insert(
            status.to_string(),
            json!({"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}}),
        );
        self
    }

    /// A stream of server-sent events with `status`.
    pub fn answers_event_stream(mut self, status: u16, description: &str) -> Self {
        self.responses.insert(
            status.to_string(),
            json!({"description": description, "content": {"text/event-stream": {"schema": {"type": "string"}}}}),
        );
        self
    }

    /// An answer with `status` that is JSON of `schema` or plain text, as the request
    /// asks.
    pub fn answers_json_or_text(mut self, status: u16, description: &str, schema: Value) -> Self {
        self.responses.insert(
            status.to_string(),
            json!({"description": description, "content": {
                "application/json": {"schema": schema},
                "text/plain": {"schema": {"type": "string"}}}}),
        );
        self
    }

    /// Refusals with these statuses, each a `NeutronError`.
    pub fn refuses(mut self, statuses: &[u16]) -> Self {
        for status in statuses {
            self.responses.insert(status.to_string(), refusal());
        }
        self
    }

    fn render(&self) -> Value {
        let mut operation = json!({
            "tags": [self.tag],
            "summary": self.summary,
            "responses": self.responses,
        });
        if !self.query.is_empty() {
            operation["parameters"] = json!(self.query);
        }
        if let Some(schema) = &self.body {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": schema}}});
        }
        operation
    }
}

/// The whole document, for a server applying `rules` and identifying callers by `auth`,
/// over the operations it serves.
pub fn document<'a>(
    rules: Rules,
    auth: AuthMode,
    operations: impl IntoIterator<Item = (&'a Method, &'a str, &'a Operation)>,
) -> Value {
    let mut paths = Map::new();
    for (method, path, operation) in operations {
        let item = paths
            .entry(path)
            .or_insert_with(|| path_item(path))
            .as_object_mut()
            .expect("a path item is an object");
        let mut rendered = operation.render();
        if path.contains('{') {
            // `api::Path` refuses a parameter holding a control character on every route.
            rendered["responses"]
                .as_object_mut()
                .expect("responses are an object")
                .entry("400")
                .or_insert_with(refusal);
        }
        let responses = rendered["responses"]
            .as_object_mut()
            .expect("responses are an object");
        if auth == AuthMode::Keystone && responses.contains_key("401") {
            // Where a token is checked, Keystone may be unreachable: 503, never a pass.
            responses.entry("503").or_insert_with(refusal);
        }
        item.insert(method.as_str().to_ascii_lowercase(), rendered);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "vpnaas — Neutron VPNaaS v2.0 compatible API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Site-to-site IPsec VPN as a service. Paths, envelopes, defaults and errors follow OpenStack Neutron VPNaaS v2.0; see docs/compatibility.md for deliberate differences. Schemas say what this server accepts under its settings (see `x-refused-unless-allowed`); rules JSON Schema cannot state (one attribute against another, or against stored objects) are in the descriptions."
        },
        "paths": paths,
        "components": {"schemas": schemas::all(rules)},
    })
}

/// A path item with the parameters its template names.
fn path_item(path: &str) -> Value {
    let parameters: Vec<Value> = path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": path_parameter(name)}))
        .collect();
    if parameters.is_empty() {
        json!({})
    } else {
        json!({ "parameters": parameters })
    }
}

fn path_parameter(name: &str) -> Value {
    match name {
        "tag" => json!({"type": "string", "maxLength": 255, "pattern": pattern::NO_CONTROL}),
        _ => json!({"type": "string", "pattern": pattern::NO_CONTROL}),
    }
}

/// A refusal's answer: a `NeutronError`.
fn refusal() -> Value {
    json!({"description": "refused", "content": {"application/json": {"schema": reference("NeutronError")}}})
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// Whether clients may create, change and delete objects of a kind: not when its map
/// lets them set no attribute (agents exist by their heartbeats).
pub fn writable(kind: Kind) -> bool {
    attributes(kind)
        .iter()
        .any(|a| a.put || !matches!(a.post, Post::Forbidden))
}
