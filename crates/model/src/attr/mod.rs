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

mod parse;
mod validate;

pub use parse::{apply_update, parse_create, parse_update};
use validate::to_integer;
pub use validate::{plain, to_bool, validate};

use serde_json::Value;

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
    /// A PEM CA certificate, or null: its shape is checked here (size, armour), its
    /// contents by the server, which holds the X.509 parser.
    PemCertificateOrNull,
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
    /// Administrators may give it; for anyone else it is refused as [`Post::Forbidden`]
    /// is, with Neutron's own answer. A vpnaas extension: `id`, so that an import from
    /// neutron-vpnaas keeps every object's id.
    AdminOnly,
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

#[cfg(test)]
mod tests {
    use serde_json::json;

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
    fn only_an_administrator_may_choose_an_id_on_post() {
        let kind = crate::Kind::IkePolicy;
        let attrs = crate::attributes(kind);
        let id = "8d1fdb29-8a3e-4ea8-a0a6-13a8a1ab8f17";
        let body = |id: Value| json!({"ikepolicy": {"id": id, "auth_algorithm": "sha256"}});
        let member = Requester {
            project_id: "p1",
            is_admin: false,
        };
        let admin = Requester {
            is_admin: true,
            ..member
        };
        let refused = parse_create(kind, attrs, body(json!(id)), member, Rules::default())
            .expect_err("a member may not choose the id");
        assert_eq!(refused.message, "Attribute 'id' not allowed in POST");
        let parsed = parse_create(kind, attrs, body(json!(id)), admin, Rules::default())
            .expect("an administrator may");
        assert_eq!(parsed["id"], json!(id));
        let refused = parse_create(
            kind,
            attrs,
            body(json!("not-a-uuid")),
            admin,
            Rules::default(),
        )
        .expect_err("still a UUID");
        assert!(
            refused.message.contains("Invalid input for id"),
            "{}",
            refused.message
        );
        let parsed = parse_create(
            kind,
            attrs,
            json!({"ikepolicy": {}}),
            member,
            Rules::default(),
        )
        .expect("no id given");
        assert!(!parsed.contains_key("id"), "the server assigns it");
    }

    #[test]
    fn shapes_follow_the_types() {
        assert_eq!(AttrType::Dpd.shape(), Shape::Dict);
        assert_eq!(AttrType::CidrList.shape(), Shape::List);
        assert_eq!(AttrType::Computed(Shape::List).shape(), Shape::List);
        assert_eq!(AttrType::Bool.shape(), Shape::Scalar);
    }
}
