//! The OpenAPI 3.0 document, derived from the same attribute maps that validate requests,
//! so the description cannot drift from the behaviour.

use serde_json::{Map, Value, json};
use vpnaas_model::attr::{Attr, AttrType, DPD_SECONDS, IntRange, LIFETIME_SECONDS, Post};
use vpnaas_model::{Kind, attributes};

/// The whole document served at `/openapi.json`.
pub fn document() -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    schemas.insert("NeutronError".into(), neutron_error_schema());
    for kind in Kind::ALL {
        let name = schema_name(kind);
        schemas.insert(name.clone(), object_schema(kind, |_| true, false));
        schemas.insert(
            format!("{name}Create"),
            object_schema(kind, |a| !matches!(a.post, Post::Forbidden), true),
        );
        schemas.insert(
            format!("{name}Update"),
            object_schema(kind, |a| a.put, false),
        );
        paths.insert(format!("/v2.0/{}", kind.path()), collection_path(kind));
        paths.insert(format!("/v2.0/{}/{{id}}", kind.path()), member_path(kind));
    }
    paths.insert(
        "/v2.0/vpn/ipsec-site-connections/{id}/events".into(),
        json!({"get": {"summary": "last transitions of a connection (time, from, to, reason, detail), oldest first (vpnaas extension)",
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                           {"name": "limit", "in": "query", "required": false, "schema": {"type": "integer", "default": 50}}],
            "responses": with_errors(json!({"200": {"description": "{\"events\": [...]}"}}))}}),
    );
    for action in ["add_router_interface", "remove_router_interface"] {
        paths.insert(
            format!("/v2.0/routers/{{id}}/{action}"),
            interface_path(action),
        );
    }
    for (path, summary) in [
        ("/", "API versions"),
        ("/v2.0", "resources of API v2.0"),
        ("/v2.0/extensions", "implemented extensions"),
        ("/v2.0/extensions/{alias}", "one extension"),
        ("/openapi.json", "this document"),
    ] {
        paths.insert(
            path.into(),
            json!({"get": {"summary": summary, "responses": {"200": {"description": "OK"}}}}),
        );
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "vpnaas — Neutron VPNaaS v2.0 compatible API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Site-to-site IPsec VPN as a service. Paths, envelopes, defaults and errors follow OpenStack Neutron VPNaaS v2.0; see docs/compatibility.md for deliberate differences."
        },
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

fn schema_name(kind: Kind) -> String {
    kind.singular()
        .split('_')
        .map(|w| w[..1].to_uppercase() + &w[1..])
        .collect()
}

fn attr_schema(attr: &Attr) -> Value {
    let mut schema = match attr.ty {
        AttrType::Uuid => json!({"type": "string", "format": "uuid"}),
        AttrType::UuidOrNull => json!({"type": "string", "format": "uuid", "nullable": true}),
        AttrType::ProjectId | AttrType::Description => json!({"type": "string", "maxLength": 255}),
        AttrType::Name => {
            json!({"type": "string", "maxLength": 255, "pattern": "^[^\\x00-\\x1f\\x7f\"'`{}#\\\\]*$"})
        }
        AttrType::Enum(values, _) => json!({"type": "string", "enum": values}),
        AttrType::Bool => json!({"type": "boolean"}),
        AttrType::Lifetime => json!({"type": "object", "properties": {
            "units": {"type": "string", "enum": ["seconds"]}, "value": integer(LIFETIME_SECONDS)}}),
        AttrType::Dpd => json!({"type": "object", "properties": {
            "action": {"type": "string", "enum": vpnaas_model::enums::DpdAction::ALL},
            "interval": integer(DPD_SECONDS), "timeout": integer(DPD_SECONDS)}}),
        AttrType::CidrList | AttrType::StringList => {
            json!({"type": "array", "items": {"type": "string"}})
        }
        AttrType::Int(range) => integer(range),
        AttrType::Identity { .. } => {
            json!({"type": "string", "maxLength": 255, "pattern": "^[A-Za-z0-9.\\-_@:+]*$"})
        }
        AttrType::PeerAddress => {
            json!({"type": "string", "maxLength": 255, "description": "IP address or host name"})
        }
        AttrType::Psk => {
            json!({"type": "string", "minLength": 1, "maxLength": 255, "format": "password"})
        }
        AttrType::Cidr => json!({"type": "string", "description": "CIDR"}),
        AttrType::IpVersion => json!({"type": "integer", "enum": [4, 6]}),
        AttrType::IpOrNull => json!({"type": "string", "nullable": true}),
        AttrType::GatewayInfo => json!({"type": "object", "nullable": true, "properties": {
            "network_id": {"type": "string", "format": "uuid"}, "enable_snat": {"type": "boolean"},
            "external_fixed_ips": {"type": "array", "items": {"type": "object", "properties": {
                "subnet_id": {"type": "string", "format": "uuid"}, "ip_address": {"type": "string"}}}}}}),
        AttrType::EnumOrNull(values) => {
            json!({"type": "string", "enum": values, "nullable": true})
        }
        AttrType::Nameservers => {
            json!({"type": "array", "maxItems": 5, "uniqueItems": true, "items": {"type": "string"}})
        }
        AttrType::Routes => {
            json!({"type": "array", "uniqueItems": true, "items": {"type": "object",
            "properties": {"destination": {"type": "string"}, "nexthop": {"type": "string"}},
            "required": ["destination", "nexthop"], "additionalProperties": false}})
        }
        AttrType::ServiceTypes => json!({"type": "array", "items": {"type": "string"}}),
        AttrType::AzHints => json!({"type": "array", "maxItems": 0, "items": {"type": "string"}}),
        AttrType::Scalar | AttrType::Computed(_) => json!({}),
    };
    if let Value::Object(map) = &mut schema {
        map.insert("description".into(), json!(attr.doc));
    }
    schema
}

fn integer(range: IntRange) -> Value {
    json!({"type": "integer", "minimum": range.min, "maximum": range.max})
}

fn object_schema(kind: Kind, include: impl Fn(&Attr) -> bool, with_required: bool) -> Value {
    let attrs: Vec<&Attr> = attributes(kind).iter().filter(|a| include(a)).collect();
    let properties: Map<String, Value> = attrs
        .iter()
        .map(|a| (a.name.to_string(), attr_schema(a)))
        .collect();
    let required: Vec<&str> = attrs
        .iter()
        .filter(|a| matches!(a.post, Post::Required))
        .map(|a| a.name)
        .collect();
    let mut schema =
        json!({"type": "object", "properties": properties, "additionalProperties": false});
    if with_required && !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn envelope(kind: Kind, suffix: &str) -> Value {
    json!({"type": "object", "properties": {
        kind.singular(): {"$ref": format!("#/components/schemas/{}{suffix}", schema_name(kind))}}})
}

fn errors() -> Value {
    let error = json!({"description": "NeutronError", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NeutronError"}}}});
    json!({"400": error, "401": error, "403": error, "404": error, "409": error})
}

fn with_errors(mut responses: Value) -> Value {
    if let (Value::Object(map), Value::Object(errs)) = (&mut responses, errors()) {
        map.extend(errs);
    }
    responses
}

fn collection_path(kind: Kind) -> Value {
    let name = schema_name(kind);
    let mut parameters: Vec<Value> = crate::listing::CONTROL_PARAMS
        .iter()
        .map(|p| json!({"name": p, "in": "query", "required": false, "schema": {"type": "string"}}))
        .collect();
    parameters.extend(attributes(kind).iter().map(|a| {
        json!({"name": a.name, "in": "query", "required": false, "description": "filter (repeat to match any of several values)",
               "schema": {"type": "array", "items": {"type": "string"}}, "style": "form", "explode": true})
    }));
    let list = json!({"type": "object", "properties": {
        kind.plural(): {"type": "array", "items": {"$ref": format!("#/components/schemas/{name}")}},
        format!("{}_links", kind.plural()): {"type": "array", "items": {"type": "object"}}}});
    json!({
        "get": {"summary": format!("list {}", kind.plural()), "parameters": parameters,
                "responses": with_errors(json!({"200": {"description": "OK", "content": {"application/json": {"schema": list}}}}))},
        "post": {"summary": format!("create a {}", kind.singular()),
                 "requestBody": {"required": true, "content": {"application/json": {"schema": envelope(kind, "Create")}}},
                 "responses": with_errors(json!({"201": {"description": "Created", "content": {"application/json": {"schema": envelope(kind, "")}}}}))},
    })
}

fn member_path(kind: Kind) -> Value {
    let id = json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
    json!({
        "parameters": id,
        "get": {"summary": format!("show a {}", kind.singular()),
                "responses": with_errors(json!({"200": {"description": "OK", "content": {"application/json": {"schema": envelope(kind, "")}}}}))},
        "put": {"summary": format!("update a {}", kind.singular()),
                "requestBody": {"required": true, "content": {"application/json": {"schema": envelope(kind, "Update")}}},
                "responses": with_errors(json!({"200": {"description": "OK", "content": {"application/json": {"schema": envelope(kind, "")}}}}))},
        "delete": {"summary": format!("delete a {}", kind.singular()),
                   "responses": with_errors(json!({"204": {"description": "Deleted"}}))},
    })
}

fn interface_path(action: &str) -> Value {
    json!({"put": {
        "summary": action.replace('_', " "),
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object",
            "properties": {"subnet_id": {"type": "string", "format": "uuid"}}, "required": ["subnet_id"]}}}},
        "responses": with_errors(json!({"200": {"description": "interface info"}})),
    }})
}

fn neutron_error_schema() -> Value {
    json!({"type": "object", "properties": {"NeutronError": {"type": "object", "properties": {
        "type": {"type": "string"}, "message": {"type": "string"}, "detail": {"type": "string"}}}}})
}
