//! Regular expressions (ECMA-262 and Python alike) of the server's grammars
//! (`vpnaas_model::grammar`), each anchored at both ends, and the tests that hold them to
//! the grammars.

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

#[cfg(test)]
mod tests {
    use regex::Regex;
    use serde_json::{Value, json};
    use vpnaas_model::attr::{Attr, AttrType, Post, Rules, validate};
    use vpnaas_model::grammar;

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
        same_verdicts(super::NAME, |t| grammar::check_name(t).is_ok());
        same_verdicts(super::DESCRIPTION, |t| {
            grammar::check_description(t).is_ok()
        });
        same_verdicts(super::IDENTITY, |t| grammar::check_identity(t).is_ok());
        let psk = Attr::new("psk", AttrType::Psk, Post::Required, true, "");
        same_verdicts(super::PSK, |t| {
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
            assert!(matches(&super::cidr(), cidr), "{cidr}");
            assert!(grammar::parse_cidr(cidr).is_ok(), "{cidr}");
        }
        for refused in [
            "10.0.0.0",
            "10.0.0.01/24",
            "10.0.0.0/33",
            "1::2::3/64",
            ":/0",
        ] {
            assert!(!matches(&super::cidr(), refused), "{refused}");
        }
        for ip in ["192.0.2.1", "::", "1::", "::ffff", "2001:db8:0:0:0:0:0:1"] {
            assert!(matches(&super::ip(), ip), "{ip}");
            assert!(ip.parse::<std::net::IpAddr>().is_ok(), "{ip}");
        }
        for destination in ["10.1.0.0/16", "192.0.2.7/32", "::/0", "2001:db8::1/128"] {
            assert!(matches(&super::canonical_cidr(), destination));
            let net = grammar::parse_cidr(destination).expect("a CIDR");
            assert_eq!(net.trunc(), net, "{destination} has host bits");
        }
        assert!(!matches(&super::canonical_cidr(), "10.1.0.1/24"));
    }
}
