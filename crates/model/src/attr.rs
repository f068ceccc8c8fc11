//! Attribute maps and the request parser built on them, in the manner of Neutron's
//! `RESOURCE_ATTRIBUTE_MAP`: each resource lists its attributes with type, default and
//! whether POST and PUT may set them. One generic parser applies the API-layer rules
//! (envelope, unknown attributes, read-only attributes, required attributes, per-attribute
//! validation, project ownership) in Neutron's order, and the OpenAPI document is derived
//! from the same maps, so the contract cannot drift from its description. The maps also
//! say what listing may do with each attribute: its [`Shape`] (only scalars sort), whether
//! it is secret (never filtered, sorted or quoted in an error) and the range of every
//! integer it holds (checked here, at the edge, so no number reaches a type it does not
//! fit).

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
    /// An integer within a range (numeric strings accepted).
    Int(IntRange),
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
    /// Output only (status, computed addresses), of the given shape.
    Computed(Shape),
}

/// What a value of an attribute looks like, which decides what listing may do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A string, number, boolean or null: filters match it, `sort_key` may name it.
    Scalar,
    /// A list: filters match any of its items; it does not sort.
    List,
    /// A dictionary: it neither filters nor sorts (as in Neutron).
    Dict,
}

impl AttrType {
    /// The shape of the attribute's values.
    pub fn shape(&self) -> Shape {
        match self {
            AttrType::Lifetime | AttrType::Dpd | AttrType::GatewayInfo => Shape::Dict,
            AttrType::CidrList
            | AttrType::StringList
            | AttrType::Nameservers
            | AttrType::Routes
            | AttrType::ServiceTypes
            | AttrType::AzHints => Shape::List,
            AttrType::Computed(shape) => *shape,
            _ => Shape::Scalar,
        }
    }

    /// Every integer the attribute holds, with its range: the attribute itself, or keys
    /// of a dictionary attribute. Tests and documents walk these, so a new numeric
    /// attribute is covered by declaring its range.
    pub fn integer_fields(&self) -> Vec<IntegerField> {
        let whole = |range| IntegerField { key: None, range };
        let key = |key, range| IntegerField {
            key: Some(key),
            range,
        };
        match self {
            AttrType::Int(range) => vec![whole(*range)],
            AttrType::Lifetime => vec![key("value", LIFETIME_SECONDS)],
            AttrType::Dpd => vec![key("interval", DPD_SECONDS), key("timeout", DPD_SECONDS)],
            _ => vec![],
        }
    }
}

/// One integer an attribute holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntegerField {
    /// The key inside a dictionary attribute; `None` for the attribute itself.
    pub key: Option<&'static str>,
    /// The values accepted.
    pub range: IntRange,
}

/// The integers an attribute accepts, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntRange {
    /// Smallest accepted value.
    pub min: i64,
    /// Largest accepted value.
    pub max: i64,
}

/// The largest value of Neutron's integer columns (`INT`): every number Neutron can store
/// is accepted where Neutron sets no other limit.
pub const NEUTRON_INT_MAX: i64 = i32::MAX as i64;

/// `lifetime.value`, seconds: Neutron's minimum.
pub const LIFETIME_SECONDS: IntRange = IntRange::new(60, NEUTRON_INT_MAX);

/// `dpd.interval` and `dpd.timeout`, seconds (Neutron: non-negative).
pub const DPD_SECONDS: IntRange = IntRange::new(0, NEUTRON_INT_MAX);

/// Why a value is not an accepted integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntProblem {
    /// Not an integer at all (Neutron's converter fails).
    NotInteger(String),
    /// An integer outside the range (Neutron's validator fails).
    OutOfRange(String),
}

impl IntRange {
    /// The range `min..=max`.
    pub const fn new(min: i64, max: i64) -> Self {
        IntRange { min, max }
    }

    /// Converts as Neutron's `convert_to_int` does (numbers and decimal strings), then
    /// checks the range with the messages of Neutron's `validate_non_negative` and
    /// `validate_range`.
    pub fn check(&self, value: &Value) -> std::result::Result<i64, IntProblem> {
        let n = to_integer(value).ok_or_else(|| {
            IntProblem::NotInteger(format!("'{}' is not an integer", plain(value)))
        })?;
        if n < i128::from(self.min) {
            return Err(IntProblem::OutOfRange(if self.min == 0 {
                format!("'{n}' should be non-negative")
            } else {
                format!("'{n}' is too small - must be at least '{}'", self.min)
            }));
        }
        if n > i128::from(self.max) {
            return Err(IntProblem::OutOfRange(format!(
                "'{n}' is too large - must be no larger than '{}'",
                self.max
            )));
        }
        // Within min..=max, so it fits.
        Ok(n as i64)
    }

    /// Whether `n` is accepted.
    pub fn contains(&self, n: i128) -> bool {
        (i128::from(self.min)..=i128::from(self.max)).contains(&n)
    }
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
    /// A secret (a pre-shared key, a private key): redacted for readers, never a filter
    /// or sort key for anyone, never quoted in an error.
    pub secret: bool,
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
            secret: false,
        }
    }

    /// The same attribute, marked secret.
    pub const fn secret(self) -> Self {
        Attr {
            secret: true,
            ..self
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
            Some(Value::String(s))
                if !s.is_empty()
                    && s.chars().count() <= grammar::MAX_LEN
                    && !s.chars().any(char::is_control) =>
            {
                Ok(Some(s.clone()))
            }
            Some(_) => Err(Error::invalid_attribute(
                name,
                "must be a non-empty string of at most 255 characters without control characters",
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

/// Neutron's `convert_to_int`: integral numbers and decimal strings, of any size (a
/// number too large for any Rust integer type is still an integer, and out of range).
fn to_integer(value: &Value) -> Option<i128> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_of_any_size_are_range_checked_with_neutron_messages() {
        let range = IntRange::new(68, 65535);
        assert_eq!(range.check(&json!(1500)), Ok(1500));
        assert_eq!(range.check(&json!(" 68 ")), Ok(68));
        assert_eq!(range.check(&json!(1500.0)), Ok(1500));
        let too_large = |value: Value, shown: &str| {
            assert_eq!(
                range.check(&value),
                Err(IntProblem::OutOfRange(format!(
                    "'{shown}' is too large - must be no larger than '65535'"
                ))),
                "{value}"
            );
        };
        too_large(json!(4294967296u64), "4294967296");
        too_large(json!(u64::MAX), "18446744073709551615");
        too_large(json!("9223372036854775808"), "9223372036854775808");
        too_large(json!("1".repeat(60)), &i128::MAX.to_string());
        assert_eq!(
            range.check(&json!(-1)),
            Err(IntProblem::OutOfRange(
                "'-1' is too small - must be at least '68'".into()
            ))
        );
        assert_eq!(
            IntRange::new(0, 9).check(&json!(-1)),
            Err(IntProblem::OutOfRange("'-1' should be non-negative".into()))
        );
        for not_integer in [
            json!("abc"),
            json!(60.5),
            json!(true),
            json!(null),
            json!(""),
        ] {
            assert!(
                matches!(range.check(&not_integer), Err(IntProblem::NotInteger(_))),
                "{not_integer}"
            );
        }
    }

    #[test]
    fn a_secret_is_never_quoted_whatever_its_validator() {
        let psk = Attr::new("psk", AttrType::Psk, Post::Required, true, "").secret();
        for bad in [json!(""), json!("secret\nline"), json!("x".repeat(300))] {
            let refused = validate(&psk, bad.clone(), Rules::default()).expect_err("refused");
            assert!(refused.message.contains("psk"), "{}", refused.message);
        }
        let long = "private-key-material-".repeat(20);
        let key = Attr::new("key", AttrType::Description, Post::Required, true, "").secret();
        let refused = validate(&key, json!(long), Rules::default()).expect_err("too long");
        assert!(
            !refused.message.contains("private-key"),
            "{}",
            refused.message
        );
        assert!(refused.message.contains("key"), "{}", refused.message);
        let id = Attr::new("key_id", AttrType::Uuid, Post::Required, true, "").secret();
        let refused = validate(&id, json!("my-secret"), Rules::default()).expect_err("no uuid");
        assert!(
            !refused.message.contains("my-secret"),
            "{}",
            refused.message
        );
    }

    #[test]
    fn shapes_follow_the_types() {
        assert_eq!(AttrType::Dpd.shape(), Shape::Dict);
        assert_eq!(AttrType::CidrList.shape(), Shape::List);
        assert_eq!(AttrType::Computed(Shape::List).shape(), Shape::List);
        assert_eq!(AttrType::Bool.shape(), Shape::Scalar);
    }
}
