//! The [`Operation`] of every route: query parameters, bodies and answers, the resource
//! operations over the schemas of `schemas.rs`, the others written out here.

use axum::http::Method;
use serde_json::{Value, json};
use vpnaas_model::attr::{Attr, AttrType};
use vpnaas_model::enums::{DriverKind, HaRole, Status, StatusReason};
use vpnaas_model::{Kind, attributes};

use crate::listing::{Use, serves};
use crate::peer_config::Format;

use super::schemas::{envelope, list_schema, output_object};
use super::{Operation, RESOURCE_ERRORS, reference};

/// A query parameter that may be repeated (`?fields=id&fields=name`).
fn repeated(name: &str, items: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description,
           "style": "form", "explode": true, "schema": {"type": "array", "items": items}})
}

/// The names of the attributes of `kind` a query may use for `usage`.
fn attribute_names(kind: Kind, usage: Use) -> Value {
    let names: Vec<&str> = attributes(kind)
        .iter()
        .filter(|a| serves(a, usage))
        .map(|a| a.name)
        .collect();
    json!({"type": "string", "enum": names})
}

/// A filter's value as the server converts it: booleans and integers must be ones.
fn filter_value(attr: &Attr) -> Value {
    match attr.ty {
        AttrType::Bool => json!({"type": "boolean"}),
        AttrType::Int(_) => json!({"type": "integer"}),
        _ => json!({"type": "string"}),
    }
}

/// `listing::ListQuery`'s parameters for a collection of `kind`.
fn list_parameters(kind: Kind) -> Vec<Value> {
    let mut parameters = vec![
        repeated(
            "fields",
            attribute_names(kind, Use::Field),
            "attributes to return (all when absent)",
        ),
        repeated(
            "sort_key",
            attribute_names(kind, Use::Sort),
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
    parameters.extend(
        attributes(kind)
            .iter()
            .filter(|a| serves(a, Use::Filter))
            .map(|a| {
                repeated(
                    a.name,
                    filter_value(a),
                    "filter; repeated, it matches any of its values",
                )
            }),
    );
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
            attribute_names(kind, Use::Field),
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
        "description": format!("how many (default 50; the server keeps the last {}; a value it cannot read is the default)", vpnaas_store::EVENTS_KEPT),
        "schema": {"type": "integer", "minimum": 0, "maximum": u32::MAX}})])
    .answers(
        200,
        "the events",
        json!({"type": "object", "required": ["events"], "properties": {"events": {"type": "array", "items": event}}}),
    )
    .refuses(RESOURCE_ERRORS)
}

/// `GET /v2.0/vpn/events/stream`.
pub fn change_stream() -> Operation {
    Operation::new(
        "events",
        "the change stream: every committed change of a VPN object the caller may see, as \
         server-sent events (vpnaas extension). `ready` once subscribed; `change` with \
         `{kind, id, action: changed|deleted}` and, when changed, the object as `show` \
         returns it to the caller under its `kind`; `resync` when changes were lost to a \
         slow reader. Never ends while the server runs.",
    )
    .answers_event_stream(200, "the events")
    .refuses(&[401, 403, 503])
}

/// `GET /v2.0/vpn/ipsec-site-connections/{id}/peer-config`.
pub fn peer_config() -> Operation {
    let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
    let format = json!({"type": "object", "required": ["name", "description", "files"], "properties": {
        "name": {"type": "string", "enum": names}, "description": {"type": "string"},
        "files": {"type": "array", "items": {"type": "string"}}}});
    Operation::new(
        Kind::SiteConnection.plural(),
        "configuration of the connection's far end, for its device (vpnaas extension)",
    )
    .query(vec![
        json!({"name": "format", "in": "query", "required": false,
            "description": "the device's language; without it, the list of formats (JSON)",
            "schema": {"type": "string", "enum": names}}),
        json!({"name": "include_secret", "in": "query", "required": false,
            "description": "write the pre-shared key into the configuration (callers who may change the connection only; 403 for others); a placeholder otherwise",
            "schema": {"type": "boolean"}}),
    ])
    .answers_json_or_text(
        200,
        "with format: the configuration (text); without: the formats",
        json!({"type": "object", "required": ["peer_config_formats"],
            "properties": {"peer_config_formats": {"type": "array", "items": format}}}),
    )
    .refuses(RESOURCE_ERRORS)
}

/// `POST /v2.0/vpn/ipsec-site-connections/{id}/reauthenticate`.
pub fn reauthenticate() -> Operation {
    Operation::new(
        Kind::SiteConnection.plural(),
        "re-authenticate the connection's IKE SA now, with the credentials it holds (vpnaas extension); \
         its agent does it and says so in the connection's events (REAUTHENTICATED, or a transition to DOWN \
         with the reason); 409 ReauthenticationUnavailable when the connection or its service is \
         administratively down",
    )
    .answers(
        202,
        "asked: key_rotation.reauth grew; key_rotation.reauthenticated follows once done",
        envelope(Kind::SiteConnection, ""),
    )
    .refuses(RESOURCE_ERRORS)
}

/// `POST /v2.0/vpn/ipsec-site-connections/{id}/peer-credentials`.
pub fn peer_credentials() -> Operation {
    let text = json!({"type": "string"});
    Operation::new(
        Kind::SiteConnection.plural(),
        "issue a certificate and key for the connection's peer (identity: peer_id) from the project's CA, \
         for a peer without a PKI of its own (vpnaas extension): returned once, never stored; 409 \
         CertificateUnavailable unless auth_mode is cert and peer_ca_certificate is null",
    )
    .answers(
        201,
        "the peer's credentials: PEM, and PKCS#12 (base64) under a random password",
        json!({"type": "object", "required": ["peer_credentials"], "properties": {
            "peer_credentials": {"type": "object", "properties": {
                "identity": text, "certificate": text, "fingerprint": text, "not_after": text,
                "private_key": text, "ca_certificate": text, "pkcs12": text,
                "pkcs12_password": text}}}}),
    )
    .refuses(RESOURCE_ERRORS)
}

/// `POST /v2.0/vpn/vpnservices/{id}/renew-certificate`.
pub fn renew_certificate() -> Operation {
    Operation::new(
        Kind::VpnService.plural(),
        "renew the service's gateway certificate now, on the same key and identities (vpnaas extension): \
         its cert connections load it beside the SAs up (CREDENTIALS_LOADED in their events); 409 \
         CertificateUnavailable when the service has no certificate",
    )
    .answers(200, "the service, with its new certificate", envelope(Kind::VpnService, ""))
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
    .body(json!({"type": "object", "required": ["host"], "properties": {
        "host": {"type": "string", "description": "the host of the path, else 400"},
        "ha_address": {"type": "string", "nullable": true, "description": "where the agent answers HA liveness probes (ip:port)"}}}))
    .answers_empty(204, "recorded")
    .refuses(RESOURCE_ERRORS)
}

/// `POST /v2.0/vpnaas-agent/{host}/takeover`.
pub fn takeover() -> Operation {
    let counter = json!({"type": "integer", "minimum": 0});
    let claim = json!({"type": "object", "required": ["host", "silent_host", "routers"],
        "properties": {"host": {"type": "string", "description": "the host of the path, else 400"},
            "silent_host": {"type": "string", "description": "the active agent that stopped answering"},
            "routers": {"type": "array", "items": {"type": "object", "required": ["router_id", "lease_epoch"],
                "properties": {"router_id": {"type": "string"}, "lease_epoch": counter}}}}});
    Operation::new(
        AGENT_PROTOCOL,
        "an HA standby claims the leases of routers whose active agent stopped answering its liveness probes",
    )
    .body(claim)
    .answers(
        200,
        "the routers granted: those the host is the standby of, under their current epoch, not lost by it to a claim while the holder beats",
        json!({"type": "array", "items": {"type": "string"}}),
    )
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
                           "packets_out": counter, "rekeys": counter}},
        "applied": {"type": "object", "properties": {"credentials": counter, "reauth": counter}}}});
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
