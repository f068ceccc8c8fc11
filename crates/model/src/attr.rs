//! Attribute maps and the request parser built on them, in the manner of Neutron's
//! `RESOURCE_ATTRIBUTE_MAP`: each resource lists its attributes with type, default and
//! whether POST and PUT may set them. One generic parser applies the API-layer rules
//! (envelope, unknown attributes, read-only attributes, required attributes, per-attribute
//! validation, project ownership) in Neutron's order, and the OpenAPI document is derived
//! from the same maps, so the contract cannot drift from its description.

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::grammar;
use crate::kind::Kind;

/// The value type of an attribute, which selects its validator.
#[derive(Debug, Clone, Copy)]
pub enum AttrType {
    /// A UUID.
    Uuid,
    /// A UUID or null.
    UuidOrNull,
    /// `tenant_id` / `project_id`.
    ProjectId,
    /// A `name` (strict grammar).
    Name,
    /// A `description`.
    Description,
    /// One of a fixed set of strings; the second list holds values refused as weak
    /// unless the operator allows them.
    Enum(&'static [&'static str], &'static [&'static str]),
    /// A boolean; Neutron's string forms are accepted.
    Bool,
    /// `{units, value}` lifetime.
    Lifetime,
    /// `{action, interval, timeout}` dead peer detection.
    Dpd,
    /// A list of CIDRs (a single string is wrapped, null is empty).
    CidrList,
    /// A non-negative integer (numeric strings accepted).
    Int,
    /// An IKE identity (strict grammar); `allow_empty` for `local_id`.
    Identity {
        /// Whether the empty string is allowed.
        allow_empty: bool,
    },
    /// An IP literal or host name.
    PeerAddress,
    /// A pre-shared key: non-empty, no control characters.
    Psk,
    /// A list of strings (a single string is wrapped).
    StringList,
    /// A CIDR.
    Cidr,
    /// 4 or 6.
    IpVersion,
    /// An IP address or null.
    IpOrNull,
    /// A router's `external_gateway_info`.
    GatewayInfo,
    /// One of a fixed set of strings, or null (`ipv6_ra_mode`, `ipv6_address_mode`).
    EnumOrNull(&'static [&'static str]),
    /// A list of unique IP addresses (`dns_nameservers`; null is empty).
    Nameservers,
    /// A list of unique `{destination, nexthop}` routes (subnet `host_routes`, router
    /// `routes`; null is empty).
    Routes,
    /// A list of device-owner prefixes (`subnet` `service_types`; null is empty).
    ServiceTypes,
    /// A list of availability zone names (`availability_zone_hints`).
    AzHints,
    /// A free-form scalar (e.g. `provider:*`), stored as given.
    Scalar,
    /// Output only (status, computed addresses).
    Computed,
}

/// What a POST may do with an attribute.
#[derive(Debug, Clone, Copy)]
pub enum Post {
    /// Must be given.
    Required,
    /// Filled with this default when absent.
    Default(fn() -> Value),
    /// May be given; when absent the resource decides.
    Optional,
    /// May not be given (computed by the server).
    Forbidden,
}

/// One attribute of a resource.
#[derive(Debug, Clone, Copy)]
pub struct Attr {
    /// Wire name.
    pub name: &'static str,
    /// Value type.
    pub ty: AttrType,
    /// POST rule.
    pub post: Post,
    /// Whether PUT may change it.
    pub put: bool,
    /// One-line description for the OpenAPI document and the CLI.
    pub doc: &'static str,
}

impl Attr {
    /// An attribute with the given type and rules.
    pub const fn new(
        name: &'static str,
        ty: AttrType,
        post: Post,
        put: bool,
        doc: &'static str,
    ) -> Self {
        Attr {
            name,
            ty,
            post,
            put,
            doc,
        }
    }
}

/// Default for `name` and `description`.
pub fn empty_string() -> Value {
    Value::String(String::new())
}

/// Who is asking, as far as the parser cares.
#[derive(Debug, Clone, Copy)]
pub struct Requester<'a> {
    /// The caller's project.
    pub project_id: &'a str,
    /// Whether the caller may act for other projects.
    pub is_admin: bool,
}

/// Operator choices that change validation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules {
    /// Accept `sha1` and `3des`.
    pub allow_weak_algorithms: bool,
}

/// Parses a POST body: returns the resource's attributes, validated and with defaults
/// filled, `tenant_id` and `project_id` both set.
pub fn parse_create(
    kind: Kind,
    attrs: &[Attr],
    body: Value,
    who: Requester<'_>,
    rules: Rules,
) -> Result<Map<String, Value>> {
    let mut given = unwrap_envelope(kind, body)?;
    check_known(attrs, &given)?;
    let fields = ProjectFields {
        tenant_id: given.remove("tenant_id"),
        project_id: given.remove("project_id"),
    };
    let mut out = Map::new();
    for attr in attrs {
        let value = given.remove(attr.name);
        match (attr.post, value) {
            _ if matches!(attr.ty, AttrType::ProjectId) => {}
            (Post::Forbidden, Some(_)) => {
                return Err(Error::http_bad_request(format!(
                    "Attribute '{}' not allowed in POST",
                    attr.name
                )));
            }
            (Post::Required, None) => {
                return Err(Error::http_bad_request(format!(
                    "Failed to parse request. Required attribute '{}' not specified",
                    attr.name
                )));
            }
            (Post::Default(default), None) => {
                out.insert(attr.name.into(), default());
            }
            (_, Some(value)) => {
                out.insert(attr.name.into(), validate(attr, value, rules)?);
            }
            (_, None) => {}
        }
    }
    let project = owner(&fields, who)?;
    out.insert("tenant_id".into(), Value::String(project.clone()));
    out.insert("project_id".into(), Value::String(project));
    Ok(out)
}

/// Parses a PUT body: returns only the attributes given, validated.
pub fn parse_update(
    kind: Kind,
    attrs: &[Attr],
    body: Value,
    rules: Rules,
) -> Result<Map<String, Value>> {
    let given = unwrap_envelope(kind, body)?;
    check_known(attrs, &given)?;
    let mut out = Map::new();
    for attr in attrs {
        let Some(value) = given.get(attr.name) else {
            continue;
        };
        if !attr.put {
            return Err(Error::http_bad_request(format!(
                "Cannot update read-only attribute {}",
                attr.name
            )));
        }
        out.insert(attr.name.into(), validate(attr, value.clone(), rules)?);
    }
    Ok(out)
}

/// Applies validated PUT attributes to a stored object; dictionary attributes
/// (`lifetime`, `dpd`) merge key by key, as Neutron's partial updates do.
pub fn apply_update(stored: &mut Map<String, Value>, changes: Map<String, Value>) {
    for (key, value) in changes {
        match (stored.get_mut(&key), value) {
            (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
            (_, value) => {
                stored.insert(key, value);
            }
        }
    }
}

fn unwrap_envelope(kind: Kind, body: Value) -> Result<Map<String, Value>> {
    let missing = || {
        Error::http_bad_request(format!(
            "Unable to find '{}' in request body",
            kind.singular()
        ))
    };
    let Value::Object(mut outer) = body else {
        return Err(missing());
    };
    match outer.remove(kind.singular()) {
        Some(Value::Object(inner)) => Ok(inner),
        Some(_) => Err(Error::http_bad_request(format!(
            "Invalid format: '{}' must be an object",
            kind.singular()
        ))),
        None => Err(missing()),
    }
}

fn check_known(attrs: &[Attr], given: &Map<String, Value>) -> Result<()> {
    let unknown: Vec<&str> = given
        .keys()
        .filter(|k| !attrs.iter().any(|a| a.name == k.as_str()))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(Error::http_bad_request(format!(
        "Unrecognized attribute(s) '{}'",
        unknown.join(", ")
    )))
}

struct ProjectFields {
    tenant_id: Option<Value>,
    project_id: Option<Value>,
}

fn owner(fields: &ProjectFields, who: Requester<'_>) -> Result<String> {
    let as_text = |v: &Option<Value>, name: &str| -> Result<Option<String>> {
        match v {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= grammar::MAX_LEN => {
                Ok(Some(s.clone()))
            }
            Some(_) => Err(Error::invalid_attribute(
                name,
                "must be a non-empty string of at most 255 characters",
            )),
        }
    };
    let tenant = as_text(&fields.tenant_id, "tenant_id")?;
    let project = as_text(&fields.project_id, "project_id")?;
    let chosen = match (tenant, project) {
        (Some(t), Some(p)) if t != p => {
            return Err(Error::http_bad_request(
                "'project_id' and 'tenant_id' do not match",
            ));
        }
        (_, Some(p)) | (Some(p), None) => p,
        (None, None) => return Ok(who.project_id.to_string()),
    };
    if chosen != who.project_id && !who.is_admin {
        return Err(Error::http_bad_request(
            "Specifying 'project_id' or 'tenant_id' other than the authenticated project in request requires admin privileges",
        ));
    }
    Ok(chosen)
}

/// Validates and normalises one attribute value.
pub fn validate(attr: &Attr, value: Value, rules: Rules) -> Result<Value> {
    let name = attr.name;
    let bad = |reason: String| Error::invalid_attribute(name, reason);
    match attr.ty {
        AttrType::Uuid => {
            let text =
                as_str(&value).ok_or_else(|| bad(format!("'{value}' is not a valid UUID")))?;
            grammar::check_uuid(text).map_err(bad)?;
            Ok(value)
        }
        AttrType::UuidOrNull => match &value {
            Value::Null => Ok(value),
            Value::String(text) => grammar::check_uuid(text)
                .map(|()| value.clone())
                .map_err(bad),
            _ => Err(bad(format!("'{value}' is not a valid UUID"))),
        },
        AttrType::ProjectId | AttrType::Scalar => Ok(value),
        AttrType::Name => {
            let text = as_string(&value).map_err(bad)?;
            grammar::check_name(text).map_err(|why| Error::invalid_input(name, why))?;
            Ok(value)
        }
        AttrType::Description => {
            let text =
                as_str(&value).ok_or_else(|| bad(format!("'{value}' is not a valid string")))?;
            grammar::check_description(text).map_err(bad)?;
            Ok(value)
        }
        AttrType::Enum(allowed, weak) => validate_enum(name, &value, allowed, weak, rules),
        AttrType::Bool => to_bool(&value).map(Value::Bool).ok_or_else(|| {
            Error::conversion(format!(
                "'{}' cannot be converted to boolean",
                plain(&value)
            ))
        }),
        AttrType::Lifetime => validate_lifetime(name, value),
        AttrType::Dpd => validate_dpd(name, value),
        AttrType::CidrList => validate_cidr_list(name, value),
        AttrType::Int => match to_int(&value) {
            None => Err(Error::conversion(format!(
                "'{}' is not an integer",
                plain(&value)
            ))),
            Some(n) if n < 0 => Err(bad(format!("'{n}' should be non-negative"))),
            Some(n) => Ok(Value::from(n)),
        },
        AttrType::Identity { allow_empty } => {
            let text = as_string(&value).map_err(bad)?;
            if !(allow_empty && text.is_empty()) {
                grammar::check_identity(text).map_err(|why| Error::invalid_input(name, why))?;
            }
            Ok(value)
        }
        AttrType::PeerAddress => {
            let text = as_string(&value).map_err(bad)?;
            grammar::parse_peer_address(text).map_err(|why| Error::invalid_input(name, why))?;
            Ok(value)
        }
        AttrType::Psk => {
            let text =
                as_str(&value).ok_or_else(|| bad("the pre-shared key must be a string".into()))?;
            if text.is_empty() {
                return Err(bad("the pre-shared key must not be empty".into()));
            }
            if text.chars().count() > grammar::MAX_LEN || text.chars().any(char::is_control) {
                return Err(bad(
                    "the pre-shared key must be at most 255 characters without control characters"
                        .into(),
                ));
            }
            Ok(value)
        }
        AttrType::StringList => {
            let list = wrap_list(value);
            match &list {
                Value::Array(items) if items.iter().all(Value::is_string) => Ok(list),
                _ => Err(bad("must be a list of strings".into())),
            }
        }
        AttrType::Cidr => {
            let text =
                as_str(&value).ok_or_else(|| bad(format!("'{value}' is not a valid IP subnet")))?;
            grammar::parse_cidr(text).map_err(bad)?;
            Ok(value)
        }
        AttrType::IpVersion => match to_int(&value) {
            Some(4) => Ok(json!(4)),
            Some(6) => Ok(json!(6)),
            _ => Err(bad(format!("{value} is not in [4, 6]"))),
        },
        AttrType::IpOrNull => match &value {
            Value::Null => Ok(value),
            Value::String(text) if text.parse::<std::net::IpAddr>().is_ok() => Ok(value),
            _ => Err(bad(format!("'{value}' is not a valid IP address"))),
        },
        AttrType::GatewayInfo => validate_gateway_info(name, value),
        AttrType::EnumOrNull(allowed) => match as_str(&value) {
            None if value.is_null() => Ok(value),
            Some(text) if allowed.contains(&text) => Ok(value),
            _ => Err(bad(format!("{} is not in valid_values", plain(&value)))),
        },
        AttrType::Nameservers => validate_nameservers(value).map_err(bad),
        AttrType::Routes => validate_routes(value).map_err(bad),
        AttrType::ServiceTypes => validate_service_types(value),
        AttrType::AzHints => validate_az_hints(name, value),
        AttrType::Computed => Ok(value),
    }
}

fn validate_enum(
    name: &str,
    value: &Value,
    allowed: &[&str],
    weak: &[&str],
    rules: Rules,
) -> Result<Value> {
    let text = as_str(value).unwrap_or_default();
    if !allowed.contains(&text) {
        return Err(Error::invalid_attribute(
            name,
            format!("{value} is not in {allowed:?}"),
        ));
    }
    if weak.contains(&text) && !rules.allow_weak_algorithms {
        return Err(Error::invalid_attribute(
            name,
            format!(
                "'{text}' is a weak algorithm, refused by this deployment (allow_weak_algorithms = false)"
            ),
        ));
    }
    Ok(value.clone())
}

fn validate_lifetime(name: &str, value: Value) -> Result<Value> {
    let obj = match value {
        Value::Null => return Ok(json!({})),
        Value::Object(obj) => obj,
        other => {
            return Err(Error::invalid_attribute(
                name,
                format!("'{other}' is not a dictionary"),
            ));
        }
    };
    let mut out = Map::new();
    for (key, v) in obj {
        match key.as_str() {
            "units" if v.as_str() == Some("seconds") => {
                out.insert(key, v);
            }
            "units" => {
                return Err(Error::invalid_attribute(
                    name,
                    format!("{v} is not in ['seconds']"),
                ));
            }
            "value" => match to_int(&v) {
                Some(n) if n >= 60 => {
                    out.insert(key, Value::from(n));
                }
                _ => {
                    return Err(Error::invalid_attribute(
                        name,
                        format!("'{v}' is too small - must be at least '60'"),
                    ));
                }
            },
            other => {
                return Err(Error::invalid_attribute(
                    name,
                    format!("Unexpected keys supplied: {other}"),
                ));
            }
        }
    }
    Ok(Value::Object(out))
}

fn validate_dpd(name: &str, value: Value) -> Result<Value> {
    let obj = match value {
        Value::Null => return Ok(json!({})),
        Value::Object(obj) => obj,
        other => {
            return Err(Error::invalid_attribute(
                name,
                format!("'{other}' is not a dictionary"),
            ));
        }
    };
    let mut out = Map::new();
    for (key, v) in obj {
        match key.as_str() {
            "action" => {
                let allowed = crate::enums::DpdAction::ALL;
                if !v.as_str().is_some_and(|a| allowed.contains(&a)) {
                    return Err(Error::invalid_attribute(
                        name,
                        format!("{v} is not in {allowed:?}"),
                    ));
                }
                out.insert(key, v);
            }
            "interval" | "timeout" => match to_int(&v) {
                Some(n) if n >= 0 => {
                    out.insert(key, Value::from(n));
                }
                _ => {
                    return Err(Error::invalid_attribute(
                        name,
                        format!("'{v}' is not a non-negative integer"),
                    ));
                }
            },
            other => {
                return Err(Error::invalid_attribute(
                    name,
                    format!("Unexpected keys supplied: {other}"),
                ));
            }
        }
    }
    Ok(Value::Object(out))
}

fn validate_cidr_list(name: &str, value: Value) -> Result<Value> {
    let Value::Array(items) = wrap_list(value) else {
        return Err(Error::invalid_attribute(name, "must be a list of CIDRs"));
    };
    let mut seen = Vec::new();
    for item in &items {
        let text = as_str(item).ok_or_else(|| {
            Error::invalid_attribute(name, format!("'{item}' is not a valid IP subnet"))
        })?;
        grammar::parse_cidr(text).map_err(|why| Error::invalid_attribute(name, why))?;
        if seen.contains(&text) {
            return Err(Error::invalid_attribute(
                name,
                format!("Duplicate items in the list: '{text}'"),
            ));
        }
        seen.push(text);
    }
    Ok(Value::Array(items))
}

fn validate_gateway_info(name: &str, value: Value) -> Result<Value> {
    let obj = match value {
        Value::Null => return Ok(Value::Null),
        Value::Object(obj) if obj.is_empty() => return Ok(Value::Null),
        Value::Object(obj) => obj,
        other => {
            return Err(Error::invalid_attribute(
                name,
                format!("'{other}' is not a dictionary"),
            ));
        }
    };
    let bad = |why: String| Error::invalid_attribute(name, why);
    let mut out = Map::new();
    for (key, v) in obj {
        match key.as_str() {
            "network_id" => {
                grammar::check_uuid(as_str(&v).unwrap_or_default()).map_err(bad)?;
                out.insert(key, v);
            }
            "enable_snat" => {
                out.insert(
                    key,
                    Value::Bool(
                        to_bool(&v)
                            .ok_or_else(|| bad(format!("'{v}' cannot be converted to boolean")))?,
                    ),
                );
            }
            "external_fixed_ips" => {
                out.insert(key, validate_fixed_ips(&v).map_err(bad)?);
            }
            other => return Err(bad(format!("Unexpected keys supplied: {other}"))),
        }
    }
    if !out.contains_key("network_id") {
        return Err(bad("network_id is required".into()));
    }
    Ok(Value::Object(out))
}

fn validate_fixed_ips(value: &Value) -> std::result::Result<Value, String> {
    let Value::Array(items) = value else {
        return Err("external_fixed_ips must be a list".into());
    };
    for item in items {
        let Value::Object(fixed) = item else {
            return Err("each fixed IP must be a dictionary".into());
        };
        for (key, v) in fixed {
            match key.as_str() {
                "subnet_id" => grammar::check_uuid(as_str(v).unwrap_or_default())?,
                "ip_address"
                    if as_str(v).is_some_and(|t| t.parse::<std::net::IpAddr>().is_ok()) => {}
                "ip_address" => return Err(format!("'{v}' is not a valid IP address")),
                other => return Err(format!("Unexpected keys supplied: {other}")),
            }
        }
    }
    Ok(value.clone())
}

/// Neutron's `validate_nameservers`: unique IP addresses.
fn validate_nameservers(value: Value) -> std::result::Result<Value, String> {
    let items = match value {
        Value::Null => return Ok(json!([])),
        Value::Array(items) => items,
        other => {
            return Err(format!(
                "Invalid data format for nameserver: '{}'",
                plain(&other)
            ));
        }
    };
    let mut seen: Vec<&str> = Vec::new();
    for item in &items {
        let text = as_str(item).unwrap_or_default();
        check_ip(text).map_err(|_| {
            format!(
                "'{0}' is not a valid nameserver. '{0}' is not a valid IP address",
                plain(item)
            )
        })?;
        if seen.contains(&text) {
            return Err(format!("Duplicate nameserver '{text}'"));
        }
        seen.push(text);
    }
    Ok(Value::Array(items))
}

/// Neutron's `validate_hostroutes`: unique `{destination, nexthop}` dictionaries, the
/// destination a CIDR without host bits.
fn validate_routes(value: Value) -> std::result::Result<Value, String> {
    let items = match value {
        Value::Null => return Ok(json!([])),
        Value::Array(items) => items,
        other => {
            return Err(format!(
                "Invalid data format for hostroute: '{}'",
                plain(&other)
            ));
        }
    };
    let mut seen: Vec<&Value> = Vec::new();
    for item in &items {
        let route = item
            .as_object()
            .filter(|r| r.len() == 2 && r.contains_key("destination") && r.contains_key("nexthop"))
            .ok_or_else(|| {
                format!(
                    "Validation of dictionary's keys failed. Expected keys: {{'destination', 'nexthop'}} Provided keys: {}",
                    plain(item)
                )
            })?;
        let destination = as_str(&route["destination"]).unwrap_or_default();
        let canonical = grammar::parse_cidr(destination)
            .ok()
            .filter(|net| net.trunc() == *net);
        if canonical.is_none() {
            return Err(format!(
                "'{}' is not a valid CIDR",
                plain(&route["destination"])
            ));
        }
        check_ip(as_str(&route["nexthop"]).unwrap_or_default())
            .map_err(|_| format!("'{}' is not a valid IP address", plain(&route["nexthop"])))?;
        if seen.contains(&item) {
            return Err(format!("Duplicate hostroute '{}'", plain(item)));
        }
        seen.push(item);
    }
    Ok(Value::Array(items))
}

/// Neutron's `validate_subnet_service_types`: device-owner prefixes, sorted as Neutron
/// returns them.
fn validate_service_types(value: Value) -> Result<Value> {
    let items = match value {
        Value::Null => return Ok(json!([])),
        Value::Array(items) => items,
        _ => {
            return Err(Error::http_bad_request(
                "Subnet service types must be a list.",
            ));
        }
    };
    let mut types = Vec::with_capacity(items.len());
    for item in &items {
        let Some(text) = as_str(item) else {
            return Err(Error::bad_request(
                "InvalidInputSubnetServiceType",
                format!("Subnet service type {} is not a string.", plain(item)),
            ));
        };
        if !SERVICE_TYPE_PREFIXES.iter().any(|p| text.starts_with(p)) {
            return Err(Error::bad_request(
                "InvalidSubnetServiceType",
                format!("Subnet service type {text} does not correspond to a valid device owner."),
            ));
        }
        types.push(text.to_string());
    }
    types.sort();
    types.dedup();
    Ok(json!(types))
}

/// The device-owner prefixes a subnet service type may start with.
const SERVICE_TYPE_PREFIXES: &[&str] = &["network:", "neutron:", "compute:"];

/// Neutron's `validate_availability_zone_hints`, then its lookup: vpnaas has no
/// availability zones, so any hint names a zone that cannot be found.
fn validate_az_hints(name: &str, value: Value) -> Result<Value> {
    let Value::Array(items) = &value else {
        return Err(Error::invalid_attribute(
            name,
            format!("'{}' is not a list", plain(&value)),
        ));
    };
    let zones = items
        .iter()
        .map(as_string)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|why| Error::invalid_attribute(name, why))?;
    match zones.first() {
        Some(zone) => Err(Error::not_found(
            "AvailabilityZoneNotFound",
            format!("AvailabilityZone {zone} could not be found."),
        )),
        None => Ok(value),
    }
}

/// Neutron's `validate_ip_address` for strings.
fn check_ip(text: &str) -> std::result::Result<(), String> {
    text.parse::<std::net::IpAddr>()
        .map(|_| ())
        .map_err(|_| format!("'{text}' is not a valid IP address"))
}

/// A string attribute's text, within Neutron's length limit.
fn as_string(value: &Value) -> std::result::Result<&str, String> {
    let text = as_str(value).ok_or_else(|| format!("'{}' is not a valid string", plain(value)))?;
    grammar::check_len(text)?;
    Ok(text)
}

/// A value as Neutron's messages print it: strings without JSON quotes.
pub fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn wrap_list(value: Value) -> Value {
    match value {
        Value::Null => Value::Array(vec![]),
        Value::String(_) => Value::Array(vec![value]),
        other => other,
    }
}

fn as_str(value: &Value) -> Option<&str> {
    value.as_str()
}

/// Neutron's `convert_to_boolean`: booleans, 0/1 and their string forms.
pub fn to_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Neutron's `convert_to_int`: integers and their decimal string forms.
pub fn to_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}
