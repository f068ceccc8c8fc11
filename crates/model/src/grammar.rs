//! The strict grammar for strings a tenant sets that a daemon may later read: names, IKE
//! identities, peer addresses and endpoint values. Anything that could break out of a value
//! in `ipsec.conf`, `ipsec.secrets` or a VICI message (control characters, newlines, quotes,
//! braces, `#`, separators) is refused here, before it is stored. So is what would make a
//! string display as something it is not: invisible and bidirectional formatting
//! characters, line separators, and in names the fullwidth and other compatibility forms
//! of the characters names may not hold (refused, not normalised: a stored name is exactly
//! what its owner typed).

use std::net::IpAddr;

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Longest string any attribute may hold (the width of Neutron's columns).
pub const MAX_LEN: usize = 255;

/// Characters that would let a value escape its field in a daemon configuration.
const FORBIDDEN_IN_NAMES: &[char] = &['"', '\'', '`', '{', '}', '#', '\\'];

/// Checks a `name`: printable and visible, at most 255 characters, no quotes, braces, `#`
/// or backslash (nor a fullwidth or other compatibility form of one), no leading or
/// trailing whitespace.
pub fn check_name(text: &str) -> Result<(), String> {
    check_len(text)?;
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!("contains the control character {:?}", c));
    }
    check_visible(text)?;
    if let Some(c) = text.chars().find(|c| FORBIDDEN_IN_NAMES.contains(c)) {
        return Err(format!(
            "contains the character {c:?}, which is not allowed"
        ));
    }
    if let Some((c, plain)) = text.chars().find_map(|c| lookalike(c).map(|p| (c, p))) {
        return Err(format!(
            "contains {}, a form of {plain:?}, which is not allowed",
            code_point(c)
        ));
    }
    if text.trim() != text {
        return Err("has leading or trailing whitespace".into());
    }
    Ok(())
}

/// Whether a name may never hold `c`, wherever it stands: what `check_name` refuses one
/// character at a time (the OpenAPI document builds its pattern from it).
pub fn refused_in_name(c: char) -> bool {
    c.is_control()
        || invisible(c).is_some()
        || FORBIDDEN_IN_NAMES.contains(&c)
        || lookalike(c).is_some()
}

/// Whether a description may never hold `c`: what `check_description` refuses.
pub fn refused_in_description(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || invisible(c).is_some()
}

/// Checks a `description`: at most 255 characters, visible, no control characters but
/// newlines and tabs.
pub fn check_description(text: &str) -> Result<(), String> {
    check_len(text)?;
    check_visible(text)?;
    if text.chars().any(refused_in_description) {
        return Err("contains control characters".into());
    }
    Ok(())
}

/// Checks that a string shows what it holds: no invisible formatting characters (zero-width
/// spaces and joiners, the byte order mark, soft hyphens), no bidirectional controls (which
/// reorder what is displayed), no line or paragraph separators, no noncharacters. Letters
/// and marks of every script stay allowed ("Zürich", "Genève", "東京").
pub fn check_visible(text: &str) -> Result<(), String> {
    match text.chars().find_map(|c| invisible(c).map(|why| (c, why))) {
        Some((c, why)) => Err(format!(
            "contains {} ({why}), which is not allowed",
            code_point(c)
        )),
        None => Ok(()),
    }
}

/// What kind of character that shows nothing, or changes how its neighbours show, `c` is.
fn invisible(c: char) -> Option<&'static str> {
    match c {
        '\u{061C}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}' => Some("a bidirectional control"),
        '\u{FEFF}' => Some("a byte order mark"),
        // Letters and marks that render as nothing (Hangul fillers, the combining grapheme
        // joiner, Khmer inherent vowels): the Default_Ignorable ones outside category Cf.
        '\u{034F}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}' | '\u{3164}'
        | '\u{FFA0}' => Some("an invisible character"),
        _ => match c.general_category() {
            GeneralCategory::Format => Some("an invisible formatting character"),
            GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator => {
                Some("a line or paragraph separator")
            }
            _ if is_noncharacter(c) => Some("a noncharacter"),
            _ => None,
        },
    }
}

/// Unicode's noncharacters: U+FDD0..U+FDEF and the last two code points of every plane.
fn is_noncharacter(c: char) -> bool {
    let n = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&n) || n & 0xFFFE == 0xFFFE
}

/// The character names may not hold that `c` is a compatibility form of (`＂` U+FF02 is
/// a form of `"`), if any.
fn lookalike(c: char) -> Option<char> {
    if c.is_ascii() {
        return None;
    }
    std::iter::once(c)
        .nfkc()
        .find(|plain| FORBIDDEN_IN_NAMES.contains(plain))
}

/// `U+202E RIGHT-TO-LEFT OVERRIDE`: the code point, and its name when it is one of those
/// people paste by accident or on purpose.
fn code_point(c: char) -> String {
    let number = format!("U+{:04X}", u32::from(c));
    match NAMES.iter().find(|(named, _)| *named == c) {
        Some((_, name)) => format!("{number} {name}"),
        None => number,
    }
}

/// Names of the invisible characters most often met in pasted text.
const NAMES: &[(char, &str)] = &[
    ('\u{00AD}', "SOFT HYPHEN"),
    ('\u{061C}', "ARABIC LETTER MARK"),
    ('\u{200B}', "ZERO WIDTH SPACE"),
    ('\u{200C}', "ZERO WIDTH NON-JOINER"),
    ('\u{200D}', "ZERO WIDTH JOINER"),
    ('\u{200E}', "LEFT-TO-RIGHT MARK"),
    ('\u{200F}', "RIGHT-TO-LEFT MARK"),
    ('\u{2028}', "LINE SEPARATOR"),
    ('\u{2029}', "PARAGRAPH SEPARATOR"),
    ('\u{202A}', "LEFT-TO-RIGHT EMBEDDING"),
    ('\u{202B}', "RIGHT-TO-LEFT EMBEDDING"),
    ('\u{202C}', "POP DIRECTIONAL FORMATTING"),
    ('\u{202D}', "LEFT-TO-RIGHT OVERRIDE"),
    ('\u{202E}', "RIGHT-TO-LEFT OVERRIDE"),
    ('\u{2060}', "WORD JOINER"),
    ('\u{2066}', "LEFT-TO-RIGHT ISOLATE"),
    ('\u{2067}', "RIGHT-TO-LEFT ISOLATE"),
    ('\u{2068}', "FIRST STRONG ISOLATE"),
    ('\u{2069}', "POP DIRECTIONAL ISOLATE"),
    ('\u{FEFF}', "ZERO WIDTH NO-BREAK SPACE"),
];

/// Checks an IKE identity (`peer_id`, `local_id`): an IP address, a host name, `@name`
/// or `user@domain`, made of letters, digits and `. - _ @ : +` only.
pub fn check_identity(text: &str) -> Result<(), String> {
    check_len(text)?;
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    match text
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || ".-_@:+".contains(*c)))
    {
        Some(c) => Err(format!(
            "contains {c:?}; an IKE identity may hold only letters, digits and . - _ @ : +"
        )),
        None => Ok(()),
    }
}

/// Checks a DNS host name: dot-separated labels of letters, digits and inner hyphens.
pub fn check_fqdn(text: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > 253 {
        return Err("is not a valid host name (1 to 253 characters)".into());
    }
    for label in text.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !valid {
            return Err(format!("'{text}' is not a valid IP address or host name"));
        }
    }
    if text
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!("'{text}' is not a valid IP address or host name"));
    }
    Ok(())
}

/// A peer address as typed: an IP literal, or a host name still to be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAddress {
    /// An IPv4 or IPv6 literal.
    Ip(IpAddr),
    /// A host name the server resolves once, at request time.
    Fqdn(String),
}

/// Parses a `peer_address`.
pub fn parse_peer_address(text: &str) -> Result<PeerAddress, String> {
    check_len(text)?;
    if let Ok(ip) = text.parse::<IpAddr>() {
        if let Some(why) = unfit_peer(ip) {
            return Err(format!("{ip} is {why}, which cannot be a peer gateway"));
        }
        return Ok(PeerAddress::Ip(ip));
    }
    check_fqdn(text)?;
    Ok(PeerAddress::Fqdn(text.to_string()))
}

/// Why an address cannot be a peer gateway, one other host the router reaches through its
/// gateway, if it cannot: unspecified ("this network"), loopback, link-local (IPv6
/// link-local addresses are ambiguous without an interface, and no router gateway reaches
/// either kind), multicast or the broadcast address. IPv4-mapped IPv6 addresses are
/// judged as the IPv4 address they map.
pub fn unfit_peer(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(v4) if v4.octets()[0] == 0 => Some("an unspecified address"),
        IpAddr::V4(v4) if v4.is_loopback() => Some("a loopback address"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("a link-local address"),
        IpAddr::V4(v4) if v4.is_multicast() => Some("a multicast address"),
        IpAddr::V4(v4) if v4.is_broadcast() => Some("the broadcast address"),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("an unspecified address"),
        IpAddr::V6(v6) if v6.is_loopback() => Some("a loopback address"),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Some("a link-local address"),
        IpAddr::V6(v6) if v6.is_multicast() => Some("a multicast address"),
        _ => None,
    }
}

/// Parses a CIDR as Neutron does: it must contain a prefix length, IPv4 must be a full
/// dotted quad; host bits are tolerated.
pub fn parse_cidr(text: &str) -> Result<ipnet::IpNet, String> {
    let invalid = || format!("'{text}' is not a valid IP subnet");
    if !text.contains('/') {
        return Err(invalid());
    }
    text.parse::<ipnet::IpNet>().map_err(|_| invalid())
}

/// Checks a canonical hyphenated UUID.
pub fn check_uuid(text: &str) -> Result<(), String> {
    let ok = text.len() == 36 && uuid::Uuid::try_parse(text).is_ok();
    if ok {
        Ok(())
    } else {
        Err(format!("'{text}' is not a valid UUID"))
    }
}

/// Checks the length Neutron's columns allow (its `type:string` validator, which every
/// string attribute has before any vpnaas grammar).
pub fn check_len(text: &str) -> Result<(), String> {
    let n = text.chars().count();
    if n > MAX_LEN {
        return Err(format!(
            "'{}…' exceeds maximum length of {MAX_LEN}",
            truncate(text)
        ));
    }
    Ok(())
}

fn truncate(text: &str) -> String {
    text.chars().take(20).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_what_could_escape_a_config_value() {
        for bad in [
            "a\nb", "a\"b", "x{y", "x}y", "#x", " lead", "trail ", "a\u{0}b", "a'b",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["", "site one", "vpn-1_(prod)", "Zürich ↔ Genève"] {
            assert!(check_name(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn names_refuse_invisible_characters_and_look_alikes_of_forbidden_ones() {
        for (bad, named) in [
            ("a\u{202E}b", "U+202E RIGHT-TO-LEFT OVERRIDE"),
            ("a\u{200B}b", "U+200B ZERO WIDTH SPACE"),
            ("\u{FEFF}x", "U+FEFF ZERO WIDTH NO-BREAK SPACE"),
            ("a\u{2028}b", "U+2028 LINE SEPARATOR"),
            ("a\u{2066}b", "U+2066 LEFT-TO-RIGHT ISOLATE"),
            ("a\u{E0041}b", "U+E0041"),
            ("a\u{3164}b", "U+3164"),
            ("a\u{FFFF}b", "U+FFFF"),
            ("\u{FF02}x\u{FF02}", "U+FF02"),
            ("\u{FF5B}x\u{FF5D}", "U+FF5B"),
            ("x\u{FF03}1", "U+FF03"),
            ("a\u{FE68}b", "U+FE68"),
            ("\u{FF07}q", "U+FF07"),
        ] {
            let why = check_name(bad).expect_err(bad);
            assert!(why.contains(named), "{bad:?}: {why}");
        }
        for good in [
            "Zürich",
            "東京 → Genève",
            "Bob’s “VPN”",
            "ＡＢＣ",
            "❤\u{FE0F} office",
        ] {
            assert!(check_name(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn descriptions_keep_quotes_and_newlines_but_refuse_invisible_characters() {
        assert!(check_description("line one\n\"quoted\" ＂full＂\tend").is_ok());
        for bad in ["a\u{202E}b", "a\u{2029}b", "a\u{200D}b", "a\u{0}b"] {
            assert!(check_description(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn identities_are_single_tokens() {
        for bad in [
            "a b",
            "a\nleftupdown=x",
            "%any",
            "a,b",
            "\"x\"",
            "{x}",
            "a#b",
            "",
        ] {
            assert!(check_identity(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "203.0.113.1",
            "2001:db8::1",
            "@vpn.example.com",
            "user@example.com",
        ] {
            assert!(check_identity(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn cidrs_need_a_prefix_and_a_full_quad() {
        assert!(parse_cidr("10.0.0.0/24").is_ok());
        assert!(parse_cidr("10.0.0.1/24").is_ok());
        assert!(parse_cidr("2001:db8::/64").is_ok());
        for bad in ["10.0.0.0", "10.0/16", "1.0.0.0/33", "2000::1", "x/24"] {
            assert!(parse_cidr(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn peer_addresses_are_ips_or_host_names() {
        assert_eq!(
            parse_peer_address("192.0.2.1").ok(),
            Some(PeerAddress::Ip([192, 0, 2, 1].into()))
        );
        assert!(matches!(
            parse_peer_address("vpn.example.com"),
            Ok(PeerAddress::Fqdn(_))
        ));
        for bad in ["1.2.3", "a b", "-x.com", "x..y", "a;b", "10.0.0.1\n"] {
            assert!(parse_peer_address(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn peer_addresses_are_other_hosts_on_a_network() {
        for (bad, why) in [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("::", "unspecified"),
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("ff02::1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("169.254.169.254", "link-local"),
            ("fe80::1", "link-local"),
        ] {
            let refused = parse_peer_address(bad).expect_err(bad);
            assert!(refused.contains(why), "{bad}: {refused}");
        }
        for good in [
            "203.0.113.1",
            "10.0.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "2001:db8::1",
            "fd00::1",
        ] {
            assert!(parse_peer_address(good).is_ok(), "{good} refused");
        }
    }
}
