//! Regular expressions (ECMA-262 and Python alike) of the server's grammars
//! (`vpnaas_model::grammar`), each anchored at both ends, and the tests that hold them to
//! the grammars.

use std::sync::OnceLock;

use serde_json::{Value, json};
use vpnaas_model::grammar;

/// `grammar::check_name`: none of the characters the grammar refuses, no leading or
/// trailing white space.
pub fn name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let inner = class_of(grammar::refused_in_name);
        let edge = class_of(|c| grammar::refused_in_name(c) || c.is_whitespace());
        format!("^([^{edge}]([^{inner}]*[^{edge}])?)?$")
    })
}

/// `grammar::check_description`: at most 255 of the characters the grammar admits. The
/// length is in the pattern rather than a `maxLength` beside it: schemathesis folds a
/// `maxLength` into the pattern and writes the characters beyond the basic plane back as
/// Python escapes, which its own ECMA-262 check then refuses.
pub fn description() -> &'static str {
    static DESCRIPTION: OnceLock<String> = OnceLock::new();
    DESCRIPTION.get_or_init(|| {
        let refused = class_of(grammar::refused_in_description);
        format!("^[^{refused}]{{0,{}}}$", grammar::MAX_LEN)
    })
}

/// The inside of a character class holding every character `refused` holds, as ranges.
/// Characters of the basic plane are written `\uXXXX`, which Python, ECMA-262 and Rust
/// read alike; the few beyond it are written as themselves, since the three engines
/// share no escape for them.
fn class_of(refused: impl Fn(char) -> bool) -> String {
    let mut ranges: Vec<(char, char)> = Vec::new();
    for c in (0..=u32::from(char::MAX))
        .filter_map(char::from_u32)
        .filter(|&c| refused(c))
    {
        match ranges.last_mut() {
            Some((_, last)) if u32::from(*last) + 1 == u32::from(c) => *last = c,
            _ => ranges.push((c, c)),
        }
    }
    let one = |c: char| match u32::from(c) {
        n @ 0..=0xffff => format!("\\u{n:04x}"),
        _ => c.to_string(),
    };
    ranges
        .into_iter()
        .map(|(first, last)| match first == last {
            true => one(first),
            false => format!("{}-{}", one(first), one(last)),
        })
        .collect()
}

/// Text without control characters: a pre-shared key, a segment of a path (the server
/// refuses a path whose parameters hold one).
pub const NO_CONTROL: &str = r"^[^\x00-\x1f\x7f-\x9f]+$";
/// `grammar::check_identity`.
pub const IDENTITY: &str = r"^[A-Za-z0-9._@:+-]+$";
/// `grammar::check_identity`, or empty.
pub const IDENTITY_OR_EMPTY: &str = r"^[A-Za-z0-9._@:+-]*$";
/// A PEM certificate as `attr::validate` takes it: the armour's two lines, no control
/// characters but line ends. (Written for printable ASCII, a subset of what the server
/// takes, so that `maxLength` counts the bytes the server limits.)
pub const PEM_CERTIFICATE: &str = r"^[\x0a\x0d\x20-\x7e]*-----BEGIN CERTIFICATE-----[\x0a\x0d\x20-\x7e]*-----END CERTIFICATE-----[\x0a\x0d\x20-\x7e]*$";
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

/// `grammar::unfit_peer`: the addresses that cannot be a peer gateway, in every spelling
/// the address patterns admit. IPv4: unspecified (0.x), loopback, link-local, multicast,
/// broadcast. IPv6: unspecified, loopback, link-local, multicast, and IPv4-mapped forms
/// of the IPv4 ones. (An IPv6 address with `:ffff:` after leading zero groups that is not
/// the mapped prefix is refused by the pattern and accepted by the server: the document
/// errs on the safe side.)
pub fn unfit_peer() -> Value {
    let v4 = r"(0|127|169\.254|22[4-9]|23[0-9])\.[0-9.]+|255\.255\.255\.255";
    let mapped_v4 = r"0*[0-9a-fA-F]{1,2}|7[fF][0-9a-fA-F]{2}|[aA]9[fF][eE]|[eE][0-9a-fA-F]{3}";
    let v6 = [
        "[0:]+".to_string(),
        "[0:]*:0{0,3}1".to_string(),
        "[fF][eE][89aAbB][0-9a-fA-F]:.*".to_string(),
        "[fF][fF][0-9a-fA-F]{2}:.*".to_string(),
        format!("[0:]*:[fF]{{4}}:({mapped_v4}):.*"),
        "[0:]*:[fF]{4}:[fF]{4}:[fF]{4}".to_string(),
    ]
    .join("|");
    string(format!("^({v4}|{v6})$"))
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

    /// Asserts that `pattern` admits exactly what `accepts` accepts, for every character
    /// alone (where it is both first and last) and inside.
    fn same_verdicts(pattern: &str, accepts: impl Fn(&str) -> bool) {
        let regex = Regex::new(pattern).expect("the pattern is a regular expression");
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            for text in [format!("{c}"), format!("a{c}b")] {
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
        same_verdicts(super::name(), |t| grammar::check_name(t).is_ok());
        same_verdicts(super::description(), |t| {
            grammar::check_description(t).is_ok()
        });
        same_verdicts(super::IDENTITY, |t| grammar::check_identity(t).is_ok());
        let psk = Attr::new("psk", AttrType::Psk, Post::Required, true, "");
        same_verdicts(super::NO_CONTROL, |t| {
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

    #[test]
    fn the_unfit_peer_pattern_refuses_what_the_grammar_refuses() {
        let addresses = [
            "192.0.2.1",
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.1.1",
            "169.25.1.1",
            "224.0.0.1",
            "239.1.1.1",
            "240.0.0.1",
            "255.255.255.255",
            "255.255.255.254",
            "10.0.0.1",
            "::",
            "0:0:0:0:0:0:0:0",
            "0::0",
            "::1",
            "0:0::1",
            "::0001",
            "::2",
            "1::",
            "fe80::1",
            "FEBF::1",
            "fec0::1",
            "ff02::1",
            "ff::1",
            "2001:db8::1",
            "::ffff:7f00:1",
            "::ffff:0:0",
            "::ffff:a9fe:101",
            "::ffff:e000:1",
            "::ffff:ffff:ffff",
            "::ffff:c000:201",
            "0:0:0:0:0:ffff:7f00:1",
            "::ffff",
        ];
        for address in addresses {
            let ip: std::net::IpAddr = address.parse().expect("an address");
            assert_eq!(
                matches(&super::unfit_peer(), address),
                grammar::unfit_peer(ip).is_some(),
                "{address}"
            );
        }
    }
}
