//! The strict grammar for strings a tenant sets that a daemon may later read: names, IKE
//! identities, peer addresses and endpoint values. Anything that could break out of a value
//! in `ipsec.conf`, `ipsec.secrets` or a VICI message (control characters, newlines, quotes,
//! braces, `#`, separators) is refused here, before it is stored.

use std::net::IpAddr;

/// Longest string any attribute may hold (the width of Neutron's columns).
pub const MAX_LEN: usize = 255;

/// Characters that would let a value escape its field in a daemon configuration.
const FORBIDDEN_IN_NAMES: &[char] = &['"', '\'', '`', '{', '}', '#', '\\'];

/// Checks a `name`: printable, at most 255 characters, no quotes, braces, `#` or
/// backslash, no leading or trailing whitespace.
pub fn check_name(text: &str) -> Result<(), String> {
    check_len(text)?;
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!("contains the control character {:?}", c));
    }
    if let Some(c) = text.chars().find(|c| FORBIDDEN_IN_NAMES.contains(c)) {
        return Err(format!(
            "contains the character {c:?}, which is not allowed"
        ));
    }
    if text.trim() != text {
        return Err("has leading or trailing whitespace".into());
    }
    Ok(())
}

/// Checks a `description`: at most 255 characters, no control characters.
pub fn check_description(text: &str) -> Result<(), String> {
    check_len(text)?;
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("contains control characters".into());
    }
    Ok(())
}

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
        return Ok(PeerAddress::Ip(ip));
    }
    check_fqdn(text)?;
    Ok(PeerAddress::Fqdn(text.to_string()))
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
}
