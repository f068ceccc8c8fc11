//! The OpenAPI 3.0 document served at `/openapi.json`. Its operations come from the route
//! table of `api.rs`, where every route is registered together with its [`Operation`], so
//! no route is served undocumented and none is documented unserved. Its resource schemas
//! come from the attribute maps that validate requests, read under this server's
//! [`Rules`], so they say what this server accepts. What a map cannot say (a rule between
//! attributes that a use case checks) is added per resource kind here, next to the name
//! of the check it describes.

use axum::http::Method;
use serde_json::{Map, Value, json};
use vpnaas_model::attr::{Attr, AttrType, Post, Rules};
use vpnaas_model::enums::{DpdAction, DriverKind, HaRole, Status, StatusReason};
use vpnaas_model::{Kind, attributes};

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

    /// Refusals with these statuses, each a `NeutronError`.
    pub fn refuses(mut self, statuses: &[u16]) -> Self {
        for status in statuses {
            self.responses.insert(
                status.to_string(),
                json!({"description": "refused", "content": {"application/json": {"schema": reference("NeutronError")}}}),
            );
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

/// The whole document, for a server applying `rules`, over the operations it serves.
pub fn document<'a>(
    rules: Rules,
    operations: impl IntoIterator<Item = (&'a Method, &'a str, &'a Operation)>,
) -> Value {
    let mut paths = Map::new();
    for (method, path, operation) in operations {
        let item = paths
            .entry(path)
            .or_insert_with(|| path_item(path))
            .as_object_mut()
            .expect("a path item is an object");
        item.insert(method.as_str().to_ascii_lowercase(), operation.render());
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "vpnaas — Neutron VPNaaS v2.0 compatible API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Site-to-site IPsec VPN as a service. Paths, envelopes, defaults and errors follow OpenStack Neutron VPNaaS v2.0; see docs/compatibility.md for deliberate differences. Schemas say what this server accepts under its settings (see `x-refused-unless-allowed`); rules JSON Schema cannot state (one attribute against another, or against stored objects) are in the descriptions."
        },
        "paths": paths,
        "components": {"schemas": schemas(rules)},
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
        "tag" => json!({"type": "string", "minLength": 1, "maxLength": 255}),
        _ => json!({"type": "string", "minLength": 1}),
    }
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

fn schema_name(kind: Kind) -> String {
    kind.singular()
        .split('_')
        .map(|w| w[..1].to_uppercase() + &w[1..])
        .collect()
}

fn schemas(rules: Rules) -> Map<String, Value> {
    let mut schemas = Map::new();
    schemas.insert("NeutronError".into(), neutron_error());
    schemas.insert("Link".into(), link());
    for kind in Kind::ALL {
        let name = schema_name(kind);
        schemas.insert(name.clone(), output_object(kind));
        if writable(kind) {
            schemas.insert(format!("{name}Create"), create_object(kind, rules));
            schemas.insert(format!("{name}Update"), update_object(kind, rules));
        }
    }
    schemas
}

fn neutron_error() -> Value {
    json!({"type": "object", "required": ["NeutronError"], "properties": {"NeutronError": {
        "type": "object", "required": ["type", "message"],
        "properties": {"type": {"type": "string"}, "message": {"type": "string"}, "detail": {"type": "string"}}}}})
}

fn link() -> Value {
    json!({"type": "object", "required": ["rel", "href"],
           "properties": {"rel": {"type": "string", "enum": ["next", "previous", "self"]}, "href": {"type": "string"}}})
}

/// An object as the server shows it.
fn output_object(kind: Kind) -> Value {
    let properties: Map<String, Value> = attributes(kind)
        .iter()
        .map(|a| (a.name.to_string(), described(output_schema(a), a.doc)))
        .collect();
    json!({"type": "object", "properties": properties, "additionalProperties": false})
}

/// A POST body's object: what POST may set, the required attributes, then what the
/// use case checks between attributes.
fn create_object(kind: Kind, rules: Rules) -> Value {
    let attrs: Vec<&Attr> = attributes(kind)
        .iter()
        .filter(|a| !matches!(a.post, Post::Forbidden))
        .collect();
    let mut schema = input_object(&attrs, rules);
    let required: Vec<&str> = attrs
        .iter()
        .filter(|a| matches!(a.post, Post::Required))
        .map(|a| a.name)
        .collect();
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    if attrs.iter().any(|a| a.name == "project_id") {
        one_owner(&mut schema);
    }
    if kind == Kind::EndpointGroup {
        endpoints_by_type(&mut schema);
    }
    schema
}

/// A PUT body's object: what PUT may change.
fn update_object(kind: Kind, rules: Rules) -> Value {
    let attrs: Vec<&Attr> = attributes(kind).iter().filter(|a| a.put).collect();
    input_object(&attrs, rules)
}

fn input_object(attrs: &[&Attr], rules: Rules) -> Value {
    let properties: Map<String, Value> = attrs
        .iter()
        .map(|a| (a.name.to_string(), described(input_schema(a, rules), a.doc)))
        .collect();
    json!({"type": "object", "properties": properties, "additionalProperties": false})
}

/// `attr::parse_create`'s owner rule: `tenant_id` and `project_id` name the same project
/// when both are given, and only an admin may name another project than its own. The
/// schema admits one of the two (JSON Schema cannot compare them).
fn one_owner(schema: &mut Value) {
    schema["not"] = json!({"required": ["tenant_id", "project_id"]});
    for name in ["tenant_id", "project_id"] {
        append_description(
            &mut schema["properties"][name],
            "only an admin may name another project than its own; given with its alias, both must be equal",
        );
    }
}

/// `service::vpn::check_endpoints`: at least one endpoint, no repeats, each of the
/// group's type; a `subnet` group's subnets must exist.
fn endpoints_by_type(schema: &mut Value) {
    let endpoints = &mut schema["properties"]["endpoints"];
    endpoints["minItems"] = json!(1);
    endpoints["uniqueItems"] = json!(true);
    append_description(
        endpoints,
        "at least one, no repeats, each of the group's type",
    );
    let uuid = json!({"type": "string", "format": "uuid"});
    let by_type = |types: &[&str], item: Value| json!({"properties": {"type": {"enum": types}, "endpoints": {"items": item}}});
    let mut subnet = by_type(&["subnet"], uuid.clone());
    subnet["description"] =
        json!("the subnets must exist, else 400 NonExistingSubnetInEndpointGroup");
    schema["oneOf"] = json!([
        by_type(&["cidr"], pattern::cidr()),
        subnet,
        by_type(&["network", "router"], uuid),
        by_type(&["vlan"], pattern::vlan()),
    ]);
    let required = schema["required"].as_array_mut().expect("type is required");
    required.push(json!("endpoints"));
}

fn described(mut schema: Value, doc: &str) -> Value {
    append_description(&mut schema, doc);
    schema
}

fn append_description(schema: &mut Value, text: &str) {
    let joined = match schema["description"].as_str() {
        Some(before) if !before.is_empty() => format!("{before}; {text}"),
        _ => text.to_string(),
    };
    schema["description"] = json!(joined);
}

/// The bounds of an integer attribute. The maps have no per-attribute range yet: every
/// `Int` is what `attr::to_int` reads, a non-negative `i64`. When `Attr` carries its
/// own range, it is read here.
fn integer_bounds(_attr: &Attr) -> (i64, i64) {
    (0, i64::MAX)
}

/// Whether an attribute's value is a secret, shown as a password. Until `Attr` carries
/// its own flag, the pre-shared key is the one secret.
fn is_secret(attr: &Attr) -> bool {
    matches!(attr.ty, AttrType::Psk)
}

/// What the server accepts for an attribute in a POST or PUT body.
fn input_schema(attr: &Attr, rules: Rules) -> Value {
    let mut schema = match attr.ty {
        AttrType::Uuid => json!({"type": "string", "format": "uuid"}),
        AttrType::UuidOrNull => json!({"type": "string", "format": "uuid", "nullable": true}),
        AttrType::ProjectId => json!({"type": "string", "minLength": 1, "maxLength": 255}),
        AttrType::Name => json!({"type": "string", "maxLength": 255, "pattern": pattern::NAME}),
        AttrType::Description => {
            json!({"type": "string", "maxLength": 255, "pattern": pattern::DESCRIPTION})
        }
        AttrType::Enum(values, weak) => enum_input(values, weak, rules),
        AttrType::Bool => json!({"type": "boolean"}),
        AttrType::Lifetime => lifetime(),
        AttrType::Dpd => dpd(),
        AttrType::CidrList => {
            json!({"type": "array", "uniqueItems": true, "nullable": true, "items": pattern::cidr()})
        }
        AttrType::Int => {
            let (minimum, maximum) = integer_bounds(attr);
            json!({"type": "integer", "minimum": minimum, "maximum": maximum})
        }
        AttrType::Identity { allow_empty } => json!({"type": "string", "maxLength": 255,
            "pattern": if allow_empty { pattern::IDENTITY_OR_EMPTY } else { pattern::IDENTITY }}),
        AttrType::PeerAddress => peer_address(),
        AttrType::Psk => {
            json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": pattern::PSK})
        }
        AttrType::StringList => json!({"type": "array", "items": {"type": "string"}}),
        AttrType::Cidr => pattern::cidr(),
        AttrType::IpVersion => json!({"type": "integer", "enum": [4, 6]}),
        AttrType::IpOrNull => nullable(pattern::ip()),
        AttrType::GatewayInfo => gateway_info(),
        AttrType::EnumOrNull(values) => enum_or_null(values),
        AttrType::Nameservers => json!({"type": "array", "nullable": true, "maxItems": 5,
            "uniqueItems": true, "items": pattern::ip()}),
        AttrType::Routes => routes(),
        AttrType::ServiceTypes => json!({"type": "array", "nullable": true,
            "items": {"type": "string", "pattern": pattern::SERVICE_TYPE}}),
        AttrType::AzHints => json!({"type": "array", "maxItems": 0, "items": {"type": "string"}}),
        // Any JSON value, stored as given; computed attributes never reach an input.
        AttrType::Scalar | AttrType::Computed => json!({}),
    };
    if is_secret(attr) {
        schema["format"] = json!("password");
    }
    schema
}

/// An enumeration: the values this server accepts, with the weak ones it refuses
/// unless the operator allows them marked.
fn enum_input(values: &[&str], weak: &[&str], rules: Rules) -> Value {
    if weak.is_empty() {
        return json!({"type": "string", "enum": values});
    }
    let accepted: Vec<&str> = values
        .iter()
        .copied()
        .filter(|v| rules.allow_weak_algorithms || !weak.contains(v))
        .collect();
    let verdict = if rules.allow_weak_algorithms {
        "accepted by this server (allow_weak_algorithms = true)"
    } else {
        "refused by this server (allow_weak_algorithms = false)"
    };
    json!({"type": "string", "enum": accepted, "x-refused-unless-allowed": weak,
           "description": format!("weak {}: {verdict}", weak.join(", "))})
}

fn routes() -> Value {
    json!({"type": "array", "nullable": true, "uniqueItems": true, "maxItems": 20,
        "items": route(pattern::canonical_cidr()),
        "description": "at most 20 host routes on a subnet, 30 routes on a router, each next hop on a subnet the router is connected to"})
}

fn nullable(mut schema: Value) -> Value {
    schema["nullable"] = json!(true);
    schema
}

fn enum_or_null(values: &[&str]) -> Value {
    let mut with_null: Vec<Value> = values.iter().map(|v| json!(v)).collect();
    with_null.push(Value::Null);
    json!({"type": "string", "nullable": true, "enum": with_null})
}

fn lifetime() -> Value {
    json!({"type": "object", "nullable": true, "additionalProperties": false, "properties": {
        "units": {"type": "string", "enum": ["seconds"]},
        "value": {"type": "integer", "minimum": 60, "maximum": i64::MAX}}})
}

fn dpd() -> Value {
    json!({"type": "object", "nullable": true, "additionalProperties": false,
        "description": "the timeout must exceed the interval (checked on the whole connection, after the objects it names are found)",
        "properties": {
            "action": {"type": "string", "enum": DpdAction::ALL},
            "interval": {"type": "integer", "minimum": 0, "maximum": i64::MAX},
            "timeout": {"type": "integer", "minimum": 0, "maximum": i64::MAX}}})
}

fn peer_address() -> Value {
    let mut schema = pattern::ip();
    schema["maxLength"] = json!(255);
    schema["description"] = json!(
        "an IP address; a host name is also accepted and resolved once, at request time (400 VPNPeerAddressNotResolved when it does not resolve)"
    );
    schema
}

fn gateway_info() -> Value {
    let fixed_ip = json!({"type": "object", "additionalProperties": false, "properties": {
        "subnet_id": {"type": "string", "format": "uuid"}, "ip_address": pattern::ip()}});
    json!({"type": "object", "nullable": true, "additionalProperties": false,
        "required": ["network_id"],
        "description": "null (or {}) for no gateway",
        "properties": {
            "network_id": {"type": "string", "format": "uuid"},
            "enable_snat": {"type": "boolean"},
            "external_fixed_ips": {"type": "array", "items": fixed_ip}}})
}

fn route(destination: Value) -> Value {
    json!({"type": "object", "additionalProperties": false, "required": ["destination", "nexthop"],
        "properties": {"destination": destination, "nexthop": pattern::ip()}})
}

/// What the server shows for an attribute: its type and every value it may hold,
/// including weak algorithms stored while they were allowed.
fn output_schema(attr: &Attr) -> Value {
    let string = || json!({"type": "string"});
    let strings = || json!({"type": "array", "items": {"type": "string"}});
    let mut schema = match attr.ty {
        AttrType::Uuid
        | AttrType::ProjectId
        | AttrType::Name
        | AttrType::Description
        | AttrType::Identity { .. }
        | AttrType::PeerAddress
        | AttrType::Psk
        | AttrType::Cidr => string(),
        AttrType::UuidOrNull | AttrType::IpOrNull => nullable(string()),
        AttrType::Enum(values, _) => json!({"type": "string", "enum": values}),
        AttrType::EnumOrNull(values) => enum_or_null(values),
        AttrType::Bool => json!({"type": "boolean"}),
        AttrType::Int => json!({"type": "integer", "minimum": 0}),
        AttrType::IpVersion => json!({"type": "integer", "enum": [4, 6]}),
        AttrType::CidrList
        | AttrType::StringList
        | AttrType::Nameservers
        | AttrType::ServiceTypes
        | AttrType::AzHints => strings(),
        AttrType::Routes => json!({"type": "array", "items": route(string())}),
        AttrType::Lifetime | AttrType::Dpd => json!({"type": "object"}),
        AttrType::GatewayInfo => json!({"type": "object", "nullable": true}),
        AttrType::Scalar | AttrType::Computed => json!({}),
    };
    if is_secret(attr) {
        schema["format"] = json!("password");
    }
    schema
}

fn list_schema(kind: Kind) -> Value {
    json!({"type": "object", "required": [kind.plural()], "properties": {
        kind.plural(): {"type": "array", "items": reference(&schema_name(kind))},
        format!("{}_links", kind.plural()): {"type": "array", "items": reference("Link")}}})
}

fn envelope(kind: Kind, suffix: &str) -> Value {
    json!({"type": "object", "required": [kind.singular()], "properties": {
        kind.singular(): reference(&format!("{}{suffix}", schema_name(kind)))}})
}

/// A query parameter that may be repeated (`?fields=id&fields=name`).
fn repeated(name: &str, items: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description,
           "style": "form", "explode": true, "schema": {"type": "array", "items": items}})
}

fn attribute_names(kind: Kind) -> Value {
    let names: Vec<&str> = attributes(kind).iter().map(|a| a.name).collect();
    json!({"type": "string", "enum": names})
}

/// `listing::ListQuery`'s parameters for a collection of `kind`.
fn list_parameters(kind: Kind) -> Vec<Value> {
    let mut parameters = vec![
        repeated(
            "fields",
            attribute_names(kind),
            "attributes to return (all when absent)",
        ),
        repeated(
            "sort_key",
            attribute_names(kind),
            "attributes to sort by, in order",
        ),
        repeated(
            "sort_dir",
            json!({"type": "string", "enum": ["asc", "desc"]}),
            "direction of each sort_key (asc when absent); when given, one per sort_key, else 400",
        ),
        json!({"name": "limit", "in": "query", "required": false, "description": "page size (0: no paging)",
               "schema": {"type": "integer", "minimum": 0, "maximum": i64::MAX}}),
        json!({"name": "marker", "in": "query", "required": false,
               "description": "id of the last object of the previous page (404 when no such object is listed)",
               "schema": {"type": "string"}}),
        json!({"name": "page_reverse", "in": "query", "required": false, "schema": {"type": "boolean"}}),
    ];
    parameters.extend(attributes(kind).iter().map(|a| {
        repeated(
            a.name,
            json!({"type": "string"}),
            "filter; repeated, it matches any of its values",
        )
    }));
    if attributes(kind).iter().any(|a| a.name == "tags") {
        parameters.extend(["tags-any", "not-tags", "not-tags-any"].map(|name| {
            repeated(
                name,
                json!({"type": "string"}),
                "tag filter: comma-separated tags",
            )
        }));
    }
    parameters
}

/// `GET /v2.0/<collection>`.
pub fn list(kind: Kind) -> Operation {
    Operation::new(kind.plural(), format!("list {}", kind.plural()))
        .query(list_parameters(kind))
        .answers(200, "the visible objects", list_schema(kind))
        .refuses(RESOURCE_ERRORS)
}

/// `POST /v2.0/<collection>`.
pub fn create(kind: Kind) -> Operation {
    let operation = Operation::new(kind.plural(), format!("create a {}", kind.singular()))
        .body(envelope(kind, "Create"))
        .answers(201, "created", envelope(kind, ""))
        .refuses(RESOURCE_ERRORS);
    match kind {
        Kind::VpnService => operation.refuses(&[503]),
        _ => operation,
    }
}

/// `GET /v2.0/<collection>/{id}`.
pub fn show(kind: Kind) -> Operation {
    Operation::new(kind.plural(), format!("show a {}", kind.singular()))
        .query(vec![repeated(
            "fields",
            attribute_names(kind),
            "attributes to return (all when absent)",
        )])
        .answers(200, "the object", envelope(kind, ""))
        .refuses(RESOURCE_ERRORS)
}

/// `PUT /v2.0/<collection>/{id}`.
pub fn update(kind: Kind) -> Operation {
    Operation::new(kind.plural(), format!("update a {}", kind.singular()))
        .body(envelope(kind, "Update"))
        .answers(200, "updated", envelope(kind, ""))
        .refuses(RESOURCE_ERRORS)
}

/// `DELETE /v2.0/<collection>/{id}`.
pub fn delete(kind: Kind) -> Operation {
    Operation::new(kind.plural(), format!("delete a {}", kind.singular()))
        .answers_empty(204, "deleted")
        .refuses(RESOURCE_ERRORS)
}

/// Discovery documents, which need no identity.
pub fn discovery(summary: &str, schema: Value) -> Operation {
    Operation::new("discovery", summary).answers(200, "OK", schema)
}

/// `GET /`.
pub fn versions() -> Value {
    json!({"type": "object", "required": ["versions"], "properties": {"versions": {"type": "array", "items": {
        "type": "object", "properties": {"id": {"type": "string"}, "status": {"type": "string"},
        "links": {"type": "array", "items": reference("Link")}}}}}})
}

/// `GET /v2.0`.
pub fn resources() -> Value {
    json!({"type": "object", "required": ["resources"], "properties": {"resources": {"type": "array", "items": {
        "type": "object", "properties": {"name": {"type": "string"}, "collection": {"type": "string"},
        "links": {"type": "array", "items": reference("Link")}}}}}})
}

fn extension_schema() -> Value {
    json!({"type": "object", "required": ["alias", "name", "description", "updated", "links"], "properties": {
        "alias": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"},
        "updated": {"type": "string"}, "links": {"type": "array"}}})
}

/// `GET /v2.0/extensions`.
pub fn extensions() -> Value {
    json!({"type": "object", "required": ["extensions"],
           "properties": {"extensions": {"type": "array", "items": extension_schema()}}})
}

/// `GET /v2.0/extensions/{alias}`.
pub fn extension() -> Operation {
    discovery(
        "one extension",
        json!({"type": "object", "required": ["extension"], "properties": {"extension": extension_schema()}}),
    )
    .refuses(&[404])
}

/// `GET /metrics`.
pub fn metrics() -> Operation {
    Operation::new("operations", "Prometheus metrics (text exposition format)")
        .answers_text(200, "metrics")
}

/// `GET /v2.0/vpn/ipsec-site-connections/{id}/events`.
pub fn connection_events() -> Operation {
    let event = json!({"type": "object", "required": ["time", "from", "to", "reason", "detail"], "properties": {
        "time": {"type": "string"}, "from": {"type": "string", "enum": Status::ALL},
        "to": {"type": "string", "enum": Status::ALL}, "reason": {"type": "string", "enum": StatusReason::ALL},
        "detail": {"type": "string"}}});
    Operation::new(
        Kind::SiteConnection.plural(),
        "last transitions of a connection, oldest first (vpnaas extension)",
    )
    .query(vec![json!({"name": "limit", "in": "query", "required": false,
        "description": "how many (default 50; the server keeps the last 100; a value it cannot read is the default)",
        "schema": {"type": "integer", "minimum": 0, "maximum": u32::MAX}})])
    .answers(
        200,
        "the events",
        json!({"type": "object", "required": ["events"], "properties": {"events": {"type": "array", "items": event}}}),
    )
    .refuses(RESOURCE_ERRORS)
}

/// `PUT /v2.0/routers/{id}/add_router_interface` and `remove_router_interface`.
pub fn router_interface(action: &str) -> Operation {
    let uuid = json!({"type": "string", "format": "uuid"});
    let info = json!({"type": "object", "properties": {
        "id": uuid, "tenant_id": {"type": "string"}, "project_id": {"type": "string"},
        "port_id": uuid, "subnet_id": uuid, "subnet_ids": {"type": "array", "items": uuid}, "network_id": uuid}});
    Operation::new(Kind::Router.plural(), action.replace('_', " "))
        .body(
            json!({"type": "object", "required": ["subnet_id"], "additionalProperties": false,
            "properties": {"subnet_id": uuid},
            "description": "by subnet only (a port_id is refused: vpnaas has no ports to attach)"}),
        )
        .answers(200, "the interface", info)
        .refuses(RESOURCE_ERRORS)
}

/// `PUT /v2.0/routers/{id}/migrate_vpn_driver`.
pub fn migrate_driver() -> Operation {
    let driver = json!({"type": "string", "enum": DriverKind::ALL});
    Operation::new(
        Kind::Router.plural(),
        "move every VPN service of the router to another driver (admin; vpnaas extension)",
    )
    .body(json!({"type": "object", "required": ["driver"], "properties": {"driver": driver}}))
    .answers(
        200,
        "what moved",
        json!({"type": "object", "properties": {"router_id": {"type": "string"}, "driver": driver,
            "previous_driver": driver, "services": {"type": "integer", "minimum": 1}}}),
    )
    .refuses(RESOURCE_ERRORS)
}

fn with_ha_state(kind: Kind) -> Value {
    let mut schema = output_object(kind);
    schema["properties"]["ha_state"] = json!({"type": "string", "enum": HaRole::ALL});
    schema
}

/// `GET /v2.0/routers/{id}/vpn-agents`.
pub fn agents_of_router() -> Operation {
    Operation::new(
        Kind::Router.plural(),
        "the agents holding a router, active first (admin)",
    )
    .answers(
        200,
        "the agents",
        json!({"type": "object", "required": ["agents"],
               "properties": {"agents": {"type": "array", "items": with_ha_state(Kind::Agent)}}}),
    )
    .refuses(RESOURCE_ERRORS)
}

/// `GET /v2.0/agents/{id}/vpn-routers`.
pub fn routers_of_agent() -> Operation {
    Operation::new(Kind::Agent.plural(), "the routers an agent holds (admin)")
        .answers(
            200,
            "the routers",
            json!({"type": "object", "required": ["routers"],
                   "properties": {"routers": {"type": "array", "items": with_ha_state(Kind::Router)}}}),
        )
        .refuses(RESOURCE_ERRORS)
}

/// `POST /v2.0/agents/{id}/vpn-routers`.
pub fn add_router_to_agent() -> Operation {
    let router_id = json!({"type": "object", "required": ["router_id"],
                           "properties": {"router_id": {"type": "string"}}});
    Operation::new(
        Kind::Agent.plural(),
        "make the agent a router's active one (admin)",
    )
    .body(router_id.clone())
    .answers(201, "scheduled", router_id)
    .refuses(RESOURCE_ERRORS)
}

/// `DELETE /v2.0/agents/{id}/vpn-routers/{router_id}`.
pub fn remove_router_from_agent() -> Operation {
    Operation::new(Kind::Agent.plural(), "take a router off an agent (admin)")
        .answers_empty(204, "removed")
        .refuses(RESOURCE_ERRORS)
}

/// `GET /v2.0/service-providers`.
pub fn service_providers() -> Operation {
    let provider = json!({"type": "object", "required": ["service_type", "name", "default"], "properties": {
        "service_type": {"type": "string"}, "name": {"type": "string", "enum": DriverKind::ALL},
        "default": {"type": "boolean"}}});
    Operation::new("service-providers", "the drivers a VPN service may run on")
        .answers(
            200,
            "the providers",
            json!({"type": "object", "required": ["service_providers"],
                   "properties": {"service_providers": {"type": "array", "items": provider}}}),
        )
        .refuses(&[401, 403])
}

/// `POST /v2.0/flavors/{id}/service_profiles`.
pub fn associate_profile() -> Operation {
    let profile = json!({"type": "object", "required": ["service_profile"], "properties": {
        "service_profile": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}}});
    Operation::new(
        Kind::Flavor.plural(),
        "associate a service profile with a flavor (admin)",
    )
    .body(profile.clone())
    .answers(201, "associated", profile)
    .refuses(RESOURCE_ERRORS)
}

/// `DELETE /v2.0/flavors/{id}/service_profiles/{profile_id}`.
pub fn disassociate_profile() -> Operation {
    Operation::new(
        Kind::Flavor.plural(),
        "disassociate a service profile from a flavor (admin)",
    )
    .answers_empty(204, "disassociated")
    .refuses(RESOURCE_ERRORS)
}

/// The filters `GET /v2.0/ports` reads (`service::ports::FILTERS`).
const PORT_FILTERS: &[&str] = &[
    "id",
    "name",
    "network_id",
    "device_id",
    "device_owner",
    "status",
    "tenant_id",
    "project_id",
    "mac_address",
    "admin_state_up",
];

fn port_schema() -> Value {
    let uuid = json!({"type": "string", "format": "uuid"});
    let string = json!({"type": "string"});
    json!({"type": "object", "additionalProperties": false, "properties": {
        "id": uuid, "name": string, "description": string, "network_id": uuid,
        "tenant_id": string, "project_id": string, "mac_address": string,
        "admin_state_up": {"type": "boolean"}, "status": string, "device_id": uuid,
        "device_owner": string,
        "fixed_ips": {"type": "array", "items": {"type": "object", "properties": {
            "subnet_id": uuid, "ip_address": string}}}}})
}

/// `GET /v2.0/ports`.
pub fn list_ports() -> Operation {
    let attributes: Vec<String> = port_schema()["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let mut parameters = vec![repeated(
        "fields",
        json!({"type": "string", "enum": attributes}),
        "attributes to return (all when absent)",
    )];
    parameters.extend(PORT_FILTERS.iter().map(|name| {
        repeated(
            name,
            json!({"type": "string"}),
            "filter; repeated, it matches any of its values",
        )
    }));
    Operation::new(
        "ports",
        "the router interface ports of the visible routers (read only)",
    )
    .query(parameters)
    .answers(
        200,
        "the ports",
        json!({"type": "object", "required": ["ports"], "properties": {"ports": {"type": "array", "items": port_schema()}}}),
    )
    .refuses(RESOURCE_ERRORS)
}

/// `GET /v2.0/ports/{id}`.
pub fn show_port() -> Operation {
    Operation::new("ports", "one router interface port")
        .answers(
            200,
            "the port",
            json!({"type": "object", "required": ["port"], "properties": {"port": port_schema()}}),
        )
        .refuses(RESOURCE_ERRORS)
}

fn tags_schema() -> Value {
    json!({"type": "object", "required": ["tags"], "additionalProperties": false, "properties": {
        "tags": {"type": "array", "uniqueItems": true, "items": {"type": "string", "maxLength": 255}}}})
}

/// An operation of `standard-attr-tag` on an object of a taggable kind: on all its tags
/// (`…/{id}/tags`) or on one (`…/{id}/tags/{tag}`).
pub fn tag_operation(kind: Kind, method: &Method, one_tag: bool) -> Operation {
    let operation = |summary: &str| Operation::new(kind.plural(), summary);
    let operation = match (method.as_str(), one_tag) {
        ("GET", false) => operation("the tags").answers(200, "the tags", tags_schema()),
        ("PUT", false) => operation("replace the tags").body(tags_schema()).answers(
            200,
            "the new tags",
            tags_schema(),
        ),
        ("DELETE", false) => operation("remove every tag").answers_empty(204, "removed"),
        ("GET", true) => operation("whether the object has the tag").answers_empty(204, "it has"),
        ("PUT", true) => {
            operation("add a tag").answers(201, "added (the body is JSON null)", json!({}))
        }
        ("DELETE", true) => operation("remove a tag").answers_empty(204, "removed"),
        _ => panic!("the tag API has no {method} operation"),
    };
    operation.refuses(RESOURCE_ERRORS)
}

/// The group of the agent protocol's operations (admin only, used by `vpnaas agent`).
pub const AGENT_PROTOCOL: &str = "agent protocol";

/// `POST /v2.0/vpnaas-agent/{host}/heartbeat`.
pub fn heartbeat() -> Operation {
    Operation::new(
        AGENT_PROTOCOL,
        "register the host's agent, or record that it is alive",
    )
    .answers_empty(204, "recorded")
    .refuses(RESOURCE_ERRORS)
}

/// `GET /v2.0/vpnaas-agent/{host}/routers`.
pub fn hosted_routers() -> Operation {
    Operation::new(AGENT_PROTOCOL, "ids of the routers the host holds")
        .answers(
            200,
            "router ids",
            json!({"type": "array", "items": {"type": "string"}}),
        )
        .refuses(RESOURCE_ERRORS)
}

/// `POST /v2.0/vpnaas-agent/{host}/router-states`.
pub fn router_states() -> Operation {
    Operation::new(
        AGENT_PROTOCOL,
        "the whole desired state of routers the host holds",
    )
    .body(json!({"type": "object", "required": ["router_ids"],
                     "properties": {"router_ids": {"type": "array", "items": {"type": "string"}}}}))
    .answers(
        200,
        "one `vpnaas_model::agent::RouterState` per router held",
        json!({"type": "array", "items": {"type": "object"}}),
    )
    .refuses(RESOURCE_ERRORS)
}

/// `POST /v2.0/vpnaas-agent/{host}/reports`.
pub fn reports() -> Operation {
    let counter = json!({"type": "integer", "minimum": 0});
    let connection = json!({"type": "object", "required": ["id", "status", "reason"], "properties": {
        "id": {"type": "string"}, "status": {"type": "string", "enum": Status::ALL},
        "reason": {"type": "string", "enum": StatusReason::ALL}, "detail": {"type": "string"},
        "traffic": {"type": "object", "nullable": true, "required": ["bytes_in", "bytes_out", "packets_in", "packets_out"],
            "properties": {"bytes_in": counter, "bytes_out": counter, "packets_in": counter,
                           "packets_out": counter, "rekeys": counter}}}});
    let report = json!({"type": "object",
        "required": ["host", "router_id", "applied_revision", "daemon_running", "connections"],
        "properties": {"host": {"type": "string", "description": "the host of the path, else 400"},
            "router_id": {"type": "string"}, "applied_revision": counter, "lease_epoch": counter,
            "daemon_running": {"type": "boolean"}, "connections": {"type": "array", "items": connection}}});
    Operation::new(AGENT_PROTOCOL, "status reports of the host's routers")
        .body(json!({"type": "array", "items": report}))
        .answers_empty(204, "applied (a report under a stale lease is ignored)")
        .refuses(RESOURCE_ERRORS)
}

/// `GET /v2.0/vpnaas-agent/{host}/hints`.
pub fn hints() -> Operation {
    Operation::new(AGENT_PROTOCOL, "routers whose desired state changed: a long poll of up to 20 s; a host's first poll names every router it holds")
        .answers(200, "hints", json!({"type": "array", "items": {"type": "object",
            "required": ["router_id", "revision"],
            "properties": {"router_id": {"type": "string"}, "revision": {"type": "integer", "minimum": 0}}}}))
        .refuses(RESOURCE_ERRORS)
}

/// Regular expressions (ECMA-262 and Python alike) of the server's grammars
/// (`vpnaas_model::grammar`), each anchored at both ends.
mod pattern {
    use serde_json::{Value, json};

    /// `grammar::check_name`: no control characters, none of `"'`{}#\`, no leading or
    /// trailing white space.
    pub const NAME: &str = r#"^([^\x00-\x1f\x7f-\x9f"'`{}#\\ \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]([^\x00-\x1f\x7f-\x9f"'`{}#\\]*[^\x00-\x1f\x7f-\x9f"'`{}#\\ \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?)?$"#;
    /// `grammar::check_description`: no control characters but tab and newline.
    pub const DESCRIPTION: &str = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$";
    /// A pre-shared key: no control characters.
    pub const PSK: &str = r"^[^\x00-\x1f\x7f-\x9f]+$";
    /// `grammar::check_identity`.
    pub const IDENTITY: &str = r"^[A-Za-z0-9._@:+-]+$";
    /// `grammar::check_identity`, or empty.
    pub const IDENTITY_OR_EMPTY: &str = r"^[A-Za-z0-9._@:+-]*$";
    /// A subnet service type: a device owner prefix.
    pub const SERVICE_TYPE: &str = r"^(network|neutron|compute):";

    const OCTET: &str = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
    const HEX: &str = "[0-9a-fA-F]{1,4}";

    fn ipv4() -> String {
        format!(r"({OCTET}\.){{3}}{OCTET}")
    }

    fn ipv6() -> String {
        let h = HEX;
        [
            format!("({h}:){{7}}{h}"),
            format!("({h}:){{1,7}}:"),
            format!("({h}:){{1,6}}:{h}"),
            format!("({h}:){{1,5}}(:{h}){{1,2}}"),
            format!("({h}:){{1,4}}(:{h}){{1,3}}"),
            format!("({h}:){{1,3}}(:{h}){{1,4}}"),
            format!("({h}:){{1,2}}(:{h}){{1,5}}"),
            format!("{h}:(:{h}){{1,6}}"),
            format!(":((:{h}){{1,7}}|:)"),
        ]
        .join("|")
    }

    fn string(pattern: String) -> Value {
        json!({"type": "string", "pattern": pattern})
    }

    /// An IPv4 or IPv6 address.
    pub fn ip() -> Value {
        string(format!("^({}|{})$", ipv4(), ipv6()))
    }

    /// `grammar::parse_cidr`: an address and a prefix length (host bits allowed).
    pub fn cidr() -> Value {
        string(format!(
            "^({}/(3[0-2]|[12]?[0-9])|({})/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))$",
            ipv4(),
            ipv6()
        ))
    }

    /// A CIDR without host bits (a route's destination). The pattern admits the
    /// prefixes whose host bits it can see: /32, /24, /16, /8 and /0 for IPv4, /128 and
    /// /0 for IPv6; the server admits any.
    pub fn canonical_cidr() -> Value {
        let o = OCTET;
        let mut schema = string(format!(
            r"^({ipv4}/32|{o}\.{o}\.{o}\.0/24|{o}\.{o}\.0\.0/16|{o}\.0\.0\.0/8|0\.0\.0\.0/0|({ipv6})/128|::/0)$",
            ipv4 = ipv4(),
            ipv6 = ipv6()
        ));
        schema["description"] = json!("a CIDR without host bits");
        schema
    }

    /// A VLAN id, 1 to 4094.
    pub fn vlan() -> Value {
        string(r"^([1-9][0-9]{0,2}|[1-3][0-9]{3}|40[0-8][0-9]|409[0-4])$".into())
    }
}

#[cfg(test)]
mod tests {
    use regex::Regex;
    use serde_json::{Value, json};
    use vpnaas_model::attr::{Attr, AttrType, Post, Rules, validate};
    use vpnaas_model::grammar;

    use super::pattern;

    /// Characters grammars treat specially: ASCII and Latin-1, then Unicode's spaces,
    /// separators and format characters, and one beyond the basic plane.
    fn probes() -> Vec<char> {
        let ranges = [
            0x00..=0x24f,
            0x1680..=0x1680,
            0x180e..=0x180e,
            0x2000..=0x200f,
            0x2028..=0x202f,
            0x205f..=0x206f,
            0x3000..=0x3000,
            0xfeff..=0xfeff,
            0xfff9..=0xfffb,
            0x1f600..=0x1f600,
        ];
        ranges
            .into_iter()
            .flatten()
            .filter_map(char::from_u32)
            .collect()
    }

    /// Asserts that `pattern` admits exactly what `accepts` accepts, for every probe
    /// alone, leading, trailing and inside.
    fn same_verdicts(pattern: &str, accepts: impl Fn(&str) -> bool) {
        let regex = Regex::new(pattern).expect("the pattern is a regular expression");
        for c in probes() {
            for text in [
                format!("{c}"),
                format!("a{c}"),
                format!("{c}a"),
                format!("a{c}b"),
            ] {
                assert_eq!(
                    regex.is_match(&text),
                    accepts(&text),
                    "{text:?} against {pattern}"
                );
            }
        }
    }

    #[test]
    fn string_patterns_admit_what_the_grammar_admits() {
        same_verdicts(pattern::NAME, |t| grammar::check_name(t).is_ok());
        same_verdicts(pattern::DESCRIPTION, |t| {
            grammar::check_description(t).is_ok()
        });
        same_verdicts(pattern::IDENTITY, |t| grammar::check_identity(t).is_ok());
        let psk = Attr::new("psk", AttrType::Psk, Post::Required, true, "");
        same_verdicts(pattern::PSK, |t| {
            validate(&psk, json!(t), Rules::default()).is_ok()
        });
    }

    fn matches(schema: &Value, text: &str) -> bool {
        let pattern = schema["pattern"].as_str().expect("a pattern");
        Regex::new(pattern).expect("regex").is_match(text)
    }

    #[test]
    fn address_patterns_admit_only_what_the_server_parses() {
        let cidrs = [
            "10.0.0.0/24",
            "10.0.0.1/32",
            "0.0.0.0/0",
            "2001:db8::/64",
            "::/0",
            "1:2:3:4:5:6:7::/128",
            "::1/128",
            "fe80::1:2/10",
        ];
        for cidr in cidrs {
            assert!(matches(&pattern::cidr(), cidr), "{cidr}");
            assert!(grammar::parse_cidr(cidr).is_ok(), "{cidr}");
        }
        for refused in [
            "10.0.0.0",
            "10.0.0.01/24",
            "10.0.0.0/33",
            "1::2::3/64",
            ":/0",
        ] {
            assert!(!matches(&pattern::cidr(), refused), "{refused}");
        }
        for ip in ["192.0.2.1", "::", "1::", "::ffff", "2001:db8:0:0:0:0:0:1"] {
            assert!(matches(&pattern::ip(), ip), "{ip}");
            assert!(ip.parse::<std::net::IpAddr>().is_ok(), "{ip}");
        }
        for destination in ["10.1.0.0/16", "192.0.2.7/32", "::/0", "2001:db8::1/128"] {
            assert!(matches(&pattern::canonical_cidr(), destination));
            let net = grammar::parse_cidr(destination).expect("a CIDR");
            assert_eq!(net.trunc(), net, "{destination} has host bits");
        }
        assert!(!matches(&pattern::canonical_cidr(), "10.1.0.1/24"));
    }
}
