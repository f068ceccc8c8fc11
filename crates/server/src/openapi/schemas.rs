//! The schemas of `components`: for each resource kind, what the server shows (`<Kind>`,
//! every value it may hold) and what POST and PUT accept (`<Kind>Create`, `<Kind>Update`),
//! from the attribute maps under this server's [`Rules`]. What a map cannot say (a rule
//! between attributes that a use case checks) is added per kind here, next to the name of
//! the check it describes; what JSON Schema cannot state at all is in descriptions.

use serde_json::{Map, Value, json};
use vpnaas_model::attr::{Attr, AttrType, DPD_SECONDS, IntRange, LIFETIME_SECONDS, Post, Rules};
use vpnaas_model::enums::DpdAction;
use vpnaas_model::{Kind, attributes};

use super::{pattern, reference, writable};

fn schema_name(kind: Kind) -> String {
    kind.singular()
        .split('_')
        .map(|w| w[..1].to_uppercase() + &w[1..])
        .collect()
}

/// Every schema.
pub(super) fn all(rules: Rules) -> Map<String, Value> {
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
pub(super) fn output_object(kind: Kind) -> Value {
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

/// An integer schema of the values an attribute map's range accepts.
fn integer(range: IntRange) -> Value {
    json!({"type": "integer", "minimum": range.min, "maximum": range.max})
}

/// What the server accepts for an attribute in a POST or PUT body.
fn input_schema(attr: &Attr, rules: Rules) -> Value {
    let mut schema = match attr.ty {
        AttrType::Uuid => json!({"type": "string", "format": "uuid"}),
        AttrType::UuidOrNull => json!({"type": "string", "format": "uuid", "nullable": true}),
        AttrType::ProjectId => {
            json!({"type": "string", "maxLength": 255, "pattern": pattern::NO_CONTROL})
        }
        AttrType::Name => json!({"type": "string", "maxLength": 255, "pattern": pattern::name()}),
        AttrType::Description => {
            json!({"type": "string", "pattern": pattern::description()})
        }
        AttrType::Enum(values, weak) => enum_input(values, weak, rules),
        AttrType::Bool => json!({"type": "boolean"}),
        AttrType::Lifetime => lifetime(),
        AttrType::Dpd => dpd(),
        AttrType::CidrList => {
            json!({"type": "array", "uniqueItems": true, "nullable": true, "items": pattern::cidr()})
        }
        AttrType::Int(range) => integer(range),
        AttrType::Identity { allow_empty } => json!({"type": "string", "maxLength": 255,
            "pattern": if allow_empty { pattern::IDENTITY_OR_EMPTY } else { pattern::IDENTITY }}),
        AttrType::PeerAddress => peer_address(),
        AttrType::Psk => {
            json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": pattern::NO_CONTROL})
        }
        AttrType::PemCertificateOrNull => json!({"type": "string", "nullable": true,
            "maxLength": 65536, "pattern": pattern::PEM_CERTIFICATE}),
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
        AttrType::Scalar | AttrType::Computed(_) => json!({}),
    };
    if attr.secret {
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
        "value": integer(LIFETIME_SECONDS)}})
}

fn dpd() -> Value {
    json!({"type": "object", "nullable": true, "additionalProperties": false,
        "description": "the timeout must exceed the interval (checked on the whole connection, after the objects it names are found)",
        "properties": {
            "action": {"type": "string", "enum": DpdAction::ALL},
            "interval": integer(DPD_SECONDS),
            "timeout": integer(DPD_SECONDS)}})
}

fn peer_address() -> Value {
    let mut schema = pattern::ip();
    schema["maxLength"] = json!(255);
    schema["not"] = pattern::unfit_peer();
    schema["description"] = json!(
        "an IP address other than unspecified, loopback, link-local, multicast or broadcast ones; a host name is also accepted and resolved once, at request time (400 VPNPeerAddressNotResolved when it does not resolve)"
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
        AttrType::UuidOrNull | AttrType::IpOrNull | AttrType::PemCertificateOrNull => {
            nullable(string())
        }
        AttrType::Enum(values, _) => json!({"type": "string", "enum": values}),
        AttrType::EnumOrNull(values) => enum_or_null(values),
        AttrType::Bool => json!({"type": "boolean"}),
        AttrType::Int(range) => integer(range),
        AttrType::IpVersion => json!({"type": "integer", "enum": [4, 6]}),
        AttrType::CidrList
        | AttrType::StringList
        | AttrType::Nameservers
        | AttrType::ServiceTypes
        | AttrType::AzHints => strings(),
        AttrType::Routes => json!({"type": "array", "items": route(string())}),
        AttrType::Lifetime | AttrType::Dpd => json!({"type": "object"}),
        AttrType::GatewayInfo => json!({"type": "object", "nullable": true}),
        AttrType::Scalar | AttrType::Computed(_) => json!({}),
    };
    if attr.secret {
        schema["format"] = json!("password");
    }
    schema
}

pub(super) fn list_schema(kind: Kind) -> Value {
    json!({"type": "object", "required": [kind.plural()], "properties": {
        kind.plural(): {"type": "array", "items": reference(&schema_name(kind))},
        format!("{}_links", kind.plural()): {"type": "array", "items": reference("Link")}}})
}

pub(super) fn envelope(kind: Kind, suffix: &str) -> Value {
    json!({"type": "object", "required": [kind.singular()], "properties": {
        kind.singular(): reference(&format!("{}{suffix}", schema_name(kind)))}})
}
