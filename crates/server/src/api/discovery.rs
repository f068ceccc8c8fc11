//! The discovery documents (`/`, `/v2.0`, `/v2.0/extensions`) with the extensions vpnaas
//! announces, and `/openapi.json`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use vpnaas_model::FaultKind;
use vpnaas_model::Kind;

use crate::App;
use crate::error::neutron_error;
use crate::openapi::{self, operations};

use super::{Endpoint, Path};

/// The discovery routes.
pub(super) fn endpoints() -> Vec<Endpoint> {
    use Method as M;
    use operations::discovery as doc;
    vec![
        Endpoint::new(
            M::GET,
            "/",
            versions,
            doc("API versions", operations::versions()),
        ),
        Endpoint::new(
            M::GET,
            "/v2.0",
            resources,
            doc("resources of API v2.0", operations::resources()),
        ),
        Endpoint::new(
            M::GET,
            "/v2.0/extensions",
            extensions,
            doc("implemented extensions", operations::extensions()),
        ),
        Endpoint::new(
            M::GET,
            "/v2.0/extensions/{alias}",
            extension,
            operations::extension(),
        ),
        Endpoint::new(
            M::GET,
            "/openapi.json",
            openapi_document,
            doc("this document", json!({"type": "object"})),
        ),
        Endpoint::new(
            M::GET,
            "/metrics",
            crate::metrics::scrape,
            operations::metrics(),
        ),
    ]
}

async fn versions(headers: HeaderMap) -> Json<Value> {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    Json(json!({"versions": [{
        "id": "v2.0", "status": "CURRENT",
        "links": [{"href": format!("http://{host}/v2.0/"), "rel": "self"}],
    }]}))
}

async fn resources(headers: HeaderMap) -> Json<Value> {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let resources: Vec<Value> = Kind::ALL
        .iter()
        .map(|k| {
            json!({"name": k.singular(), "collection": k.plural(),
                   "links": [{"href": format!("http://{host}/v2.0/{}", k.path()), "rel": "self"}]})
        })
        .collect();
    Json(json!({ "resources": resources }))
}

/// One API extension, as `GET /v2.0/extensions` lists it.
pub struct Extension {
    /// Its alias, the key clients look it up by.
    pub alias: &'static str,
    /// Its name.
    pub name: &'static str,
    /// What it adds.
    pub description: &'static str,
    /// Its version date.
    pub updated: &'static str,
}

/// Every extension this server serves, with Neutron's names, descriptions and dates
/// (`vpn-no-sha1-3des` is vpnaas's own). Clients probe these before using a feature, so
/// a feature served but not listed is a feature they will not use.
pub const EXTENSIONS: &[Extension] = &[
    Extension {
        alias: "vpnaas",
        name: "VPN service",
        description: "Extension for VPN service",
        updated: "2013-05-29T10:00:00-00:00",
    },
    Extension {
        alias: "vpn-endpoint-groups",
        name: "VPN Endpoint Groups",
        description: "VPN endpoint groups support",
        updated: "2015-08-04T10:00:00-00:00",
    },
    Extension {
        alias: "vpn-aes-ctr",
        name: "VPN support for AES CTR mode",
        description: "Add AES CTR choices for encryption algorithm",
        updated: "2024-01-09T09:00:00-00:00",
    },
    Extension {
        alias: "vpn-no-sha1-3des",
        name: "VPN without SHA1 and 3DES",
        description: "sha256 is the default auth_algorithm; sha1 and 3des are refused unless the operator allows weak algorithms",
        updated: "2026-11-26T00:00:00-00:00",
    },
    Extension {
        alias: "vpn-flavors",
        name: "VPN Service Flavor Extension",
        description: "Flavor support for vpnservices.",
        updated: "2017-04-19T00:00:00-00:00",
    },
    Extension {
        alias: "vpn-agent-scheduler",
        name: "VPN Agent Scheduler",
        description: "Schedule VPN services of routers among VPN agents",
        updated: "2016-08-15T10:00:00-00:00",
    },
    Extension {
        alias: "flavors",
        name: "Neutron Service Flavors",
        description: "Flavor specification for Neutron advanced services.",
        updated: "2015-09-17T10:00:00-00:00",
    },
    Extension {
        alias: "service-type",
        name: "Neutron Service Type Management",
        description: "API for retrieving service providers for Neutron advanced services",
        updated: "2013-01-20T00:00:00-00:00",
    },
    Extension {
        alias: "agent",
        name: "agent",
        description: "The agent management extension.",
        updated: "2013-02-03T10:00:00-00:00",
    },
    Extension {
        alias: "router",
        name: "Neutron L3 Router",
        description: "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway.",
        updated: "2012-07-20T10:00:00-00:00",
    },
    Extension {
        alias: "ext-gw-mode",
        name: "Neutron L3 Configurable external gateway mode",
        description: "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway",
        updated: "2013-03-28T10:00:00-00:00",
    },
    Extension {
        alias: "extraroute",
        name: "Neutron Extra Route",
        description: "Extra routes configuration for L3 router",
        updated: "2013-02-01T10:00:00-00:00",
    },
    Extension {
        alias: "l3-ha",
        name: "HA Router extension",
        description: "Adds HA capability to routers.",
        updated: "2014-04-26T00:00:00-00:00",
    },
    Extension {
        alias: "external-net",
        name: "Neutron external network",
        description: "Adds external network attribute to network resource.",
        updated: "2013-01-14T10:00:00-00:00",
    },
    Extension {
        alias: "provider",
        name: "Provider Network",
        description: "Expose mapping of virtual networks to physical networks",
        updated: "2012-09-07T10:00:00-00:00",
    },
    Extension {
        alias: "net-mtu",
        name: "Network MTU",
        description: "Provides MTU attribute for a network resource.",
        updated: "2015-03-25T10:00:00-00:00",
    },
    Extension {
        alias: "net-mtu-writable",
        name: "Network MTU (writable)",
        description: "Provides a writable MTU attribute for a network resource.",
        updated: "2017-07-12T00:00:00-00:00",
    },
    Extension {
        alias: "port-security",
        name: "Port Security",
        description: "Provides port security",
        updated: "2012-07-23T10:00:00-00:00",
    },
    Extension {
        alias: "vlan-transparent",
        name: "Vlantransparent",
        description: "Provides Vlan Transparent Networks",
        updated: "2015-03-23T09:00:00-00:00",
    },
    Extension {
        alias: "qinq",
        name: "QinQ networks",
        description: "Expose network 'qinq' attribute in the API. This allows to configure network to allow vlan in vlan configuration using 0x88a8 ethertype (QinQ).",
        updated: "2024-12-02T10:00:00-00:00",
    },
    Extension {
        alias: "subnet-service-types",
        name: "Subnet service types",
        description: "Provides ability to set the subnet service_types field",
        updated: "2016-03-15T18:00:00-00:00",
    },
    Extension {
        alias: "subnet-external-network",
        name: "Subnet belongs to an external network",
        description: "Informs if the subnet belongs to an external network",
        updated: "2024-02-05T18:00:00-00:00",
    },
    Extension {
        alias: "standard-attr-description",
        name: "standard-attr-description",
        description: "Extension to add descriptions to standard attributes",
        updated: "2016-02-10T10:00:00-00:00",
    },
    Extension {
        alias: "standard-attr-revisions",
        name: "Resource revision numbers",
        description: "This extension will display the revision number of neutron resources.",
        updated: "2016-04-11T10:00:00-00:00",
    },
    Extension {
        alias: "standard-attr-timestamp",
        name: "Resource timestamps",
        description: "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.",
        updated: "2016-09-12T10:00:00-00:00",
    },
    Extension {
        alias: "standard-attr-tag",
        name: "Tag support for resources with standard attribute: subnet, network, router",
        description: "Enables to set tag on resources with standard attribute.",
        updated: "2017-01-01T00:00:00-00:00",
    },
    Extension {
        alias: "project-id",
        name: "project_id field enabled",
        description: "Extension that indicates that project_id field is enabled.",
        updated: "2016-09-09T09:09:09-09:09",
    },
    Extension {
        alias: "pagination",
        name: "Pagination support",
        description: "Extension that indicates that pagination is enabled.",
        updated: "2016-06-12T00:00:00-00:00",
    },
    Extension {
        alias: "sorting",
        name: "Sorting support",
        description: "Extension that indicates that sorting is enabled.",
        updated: "2016-06-12T00:00:00-00:00",
    },
    Extension {
        alias: "filter-validation",
        name: "Filter parameters validation",
        description: "Provides validation on filter parameters.",
        updated: "2018-07-04T10:00:00-00:00",
    },
];

fn extension_doc(extension: &Extension) -> Value {
    json!({"alias": extension.alias, "name": extension.name, "description": extension.description,
           "updated": extension.updated, "links": []})
}

async fn extensions() -> Json<Value> {
    let list: Vec<Value> = EXTENSIONS.iter().map(extension_doc).collect();
    Json(json!({ "extensions": list }))
}

async fn extension(Path(alias): Path<String>) -> Response {
    match EXTENSIONS.iter().find(|e| e.alias == alias) {
        Some(found) => Json(json!({ "extension": extension_doc(found) })).into_response(),
        None => neutron_error(
            StatusCode::NOT_FOUND,
            FaultKind::HTTPNotFound,
            &format!("Extension with alias {alias} does not exist"),
        ),
    }
}

async fn openapi_document(State(app): State<App>) -> Json<Value> {
    let endpoints = super::endpoints(app.settings.inventory);
    Json(openapi::document(
        app.rules(),
        app.settings.auth,
        endpoints
            .iter()
            .map(|e| (&e.method, e.path.as_str(), &e.operation)),
    ))
}
