//! Per-attribute validators and Neutron's converters: each attribute type's rules, with
//! Neutron's messages, secrets never quoted.

use serde_json::{Map, Value, json};

use crate::error::{Error, FaultKind, Result};
use crate::grammar;

use super::{Attr, AttrType, DPD_SECONDS, IntProblem, IntRange, LIFETIME_SECONDS, Rules};

/// Validates and normalises one attribute value.
pub fn validate(attr: &Attr, value: Value, rules: Rules) -> Result<Value> {
    if attr.secret {
        return validate_secret(attr, value, rules);
    }
    validate_value(attr, value, rules)
}

/// A secret's validation: the reasons of the pre-shared key validator are fixed texts; any
/// other validator may quote what it was given (a UUID, the start of an over-long
/// string), so its reason is replaced by one that cannot.
fn validate_secret(attr: &Attr, value: Value, rules: Rules) -> Result<Value> {
    if let AttrType::Psk = attr.ty {
        return match psk_problem(&value) {
            Some(reason) => Err(Error::invalid_attribute(attr.name, reason)),
            None => Ok(value),
        };
    }
    validate_value(attr, value, rules).map_err(|refused| {
        Error::new(
            refused.class,
            refused.kind,
            format!(
                "Invalid input for {}. Reason: the value is not valid (a secret is never quoted).",
                attr.name
            ),
        )
    })
}

/// What is wrong with a pre-shared key, as a fixed text that cannot quote it.
fn psk_problem(value: &Value) -> Option<&'static str> {
    let Some(text) = value.as_str() else {
        return Some("the pre-shared key must be a string");
    };
    if text.is_empty() {
        return Some("the pre-shared key must not be empty");
    }
    if text.chars().count() > grammar::MAX_LEN || text.chars().any(char::is_control) {
        return Some(
            "the pre-shared key must be at most 255 characters without control characters",
        );
    }
    None
}

/// The largest PEM accepted: a CA certificate chain of a few certificates.
const MAX_PEM: usize = 64 * 1024;

/// What is wrong with the shape of a PEM certificate (its contents are the server's to
/// check): too large, control characters other than line ends, or no certificate armour.
fn pem_problem(text: &str) -> Option<&'static str> {
    if text.len() > MAX_PEM {
        return Some("must be at most 64 KiB");
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r')
    {
        return Some("must hold no control characters other than line ends");
    }
    if !text.contains("-----BEGIN CERTIFICATE-----") || !text.contains("-----END CERTIFICATE-----")
    {
        return Some("must be a PEM certificate (-----BEGIN CERTIFICATE-----)");
    }
    None
}

fn validate_value(attr: &Attr, value: Value, rules: Rules) -> Result<Value> {
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
        AttrType::Int(range) => match range.check(&value) {
            Ok(n) => Ok(Value::from(n)),
            Err(IntProblem::NotInteger(why)) => Err(Error::invalid_input(name, why)),
            Err(IntProblem::OutOfRange(why)) => Err(bad(why)),
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
        AttrType::Psk => match psk_problem(&value) {
            Some(reason) => Err(bad(reason.into())),
            None => Ok(value),
        },
        AttrType::PemCertificateOrNull => match &value {
            Value::Null => Ok(value),
            Value::String(text) => match pem_problem(text) {
                Some(reason) => Err(bad(reason.into())),
                None => Ok(value),
            },
            _ => Err(bad("must be a PEM certificate or null".into())),
        },
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
        AttrType::IpVersion => match to_integer(&value) {
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
        AttrType::Computed(_) => Ok(value),
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
            "value" => {
                out.insert(key, dict_integer(name, &v, LIFETIME_SECONDS)?);
            }
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
            "interval" | "timeout" => {
                let n = dict_integer(name, &v, DPD_SECONDS)?;
                out.insert(key, n);
            }
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
                FaultKind::InvalidInputSubnetServiceType,
                format!("Subnet service type {} is not a string.", plain(item)),
            ));
        };
        if !SERVICE_TYPE_PREFIXES.iter().any(|p| text.starts_with(p)) {
            return Err(Error::bad_request(
                FaultKind::InvalidSubnetServiceType,
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
            FaultKind::AvailabilityZoneNotFound,
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

/// Neutron's `convert_to_int`: integral numbers and decimal strings, of any size (a
/// number too large for any Rust integer type is still an integer, and out of range).
pub(super) fn to_integer(value: &Value) -> Option<i128> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| {
                // Saturating: beyond i128 is out of every range all the same.
                n.as_f64()
                    .filter(|f| f.is_finite() && f.fract() == 0.0)
                    .map(|f| f as i128)
            }),
        Value::String(s) => decimal(s.trim()),
        _ => None,
    }
}

/// A decimal integer, saturating when it has more digits than i128 holds.
fn decimal(text: &str) -> Option<i128> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(if text.starts_with('-') {
        i128::MIN
    } else {
        i128::MAX
    }))
}

/// A key of a dictionary attribute holding an integer: any refusal is the dictionary
/// validator's (`HTTPBadRequest` naming the attribute), as in Neutron.
fn dict_integer(name: &str, value: &Value, range: IntRange) -> Result<Value> {
    match range.check(value) {
        Ok(n) => Ok(Value::from(n)),
        Err(IntProblem::NotInteger(why) | IntProblem::OutOfRange(why)) => {
            Err(Error::invalid_attribute(name, why))
        }
    }
}
