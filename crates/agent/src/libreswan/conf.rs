//! A typed writer for Libreswan's `ipsec.conf` and `ipsec.secrets`. Every value has a type
//! whose rendering cannot leave its `key=value` line: addresses and subnets are parsed
//! types, identities pass the model's strict grammar again here, proposals and keywords
//! come from closed enums. The PSK is written base64-encoded (`0s…`), so any character
//! is safe in the secrets file.

use std::fmt::Write as _;
use std::net::IpAddr;

use base64::Engine as _;
use ipnet::IpNet;
use vpnaas_model::agent::ConnectionSpec;
use vpnaas_model::enums::{
    DpdAction, EncapsulationMode, IkeVersion, Phase1Mode, TransformProtocol,
};
use vpnaas_model::grammar;

use crate::error::{Error, Result};
use vpnaas_model::spelling::libreswan as spelling;

/// An IKE identity as Libreswan reads it: an address, or `@name` (a bare host name would
/// make pluto resolve it in DNS; strongSwan takes it as an FQDN identity, and so do we).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity(String);

impl Identity {
    /// Checks `text` against the identity grammar and gives it Libreswan's form.
    pub fn parse(field: &'static str, text: &str) -> Result<Identity> {
        spelling::identity(text)
            .map(Identity)
            .map_err(|reason| Error::Invalid { field, reason })
    }
}

/// A typed value of one `key=value` line.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Address(IpAddr),
    Subnet(IpNet),
    Subnets(Vec<IpNet>),
    Identity(Identity),
    Seconds(u32),
    Number(u32),
    Keyword(&'static str),
    /// Built by `proposals` from closed enums.
    Proposal(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Address(a) => write!(f, "{a}"),
            Value::Subnet(s) => write!(f, "{s}"),
            Value::Subnets(list) => {
                let joined: Vec<String> = list.iter().map(ToString::to_string).collect();
                write!(f, "{{{}}}", joined.join(" "))
            }
            Value::Identity(id) => f.write_str(&id.0),
            Value::Seconds(n) => write!(f, "{n}s"),
            Value::Number(n) => write!(f, "{n}"),
            Value::Keyword(k) => f.write_str(k),
            Value::Proposal(p) => f.write_str(p),
        }
    }
}

/// One `conn` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Conn {
    /// The connection id (a UUID).
    pub name: String,
    entries: Vec<(&'static str, Value)>,
}

fn subnets(key: &'static str, plural: &'static str, cidrs: &[IpNet]) -> (&'static str, Value) {
    match cidrs {
        [one] => (key, Value::Subnet(*one)),
        many => (plural, Value::Subnets(many.to_vec())),
    }
}

impl Conn {
    /// The section of a connection; `Err` when Libreswan cannot express it.
    pub fn of(spec: &ConnectionSpec) -> Result<Conn> {
        grammar::check_uuid(&spec.id).map_err(|reason| Error::Invalid {
            field: "id",
            reason,
        })?;
        let (ike, ipsec) = (&spec.ike, &spec.ipsec);
        let mut entries = vec![
            ("left", Value::Address(spec.local_address)),
            (
                "leftid",
                Value::Identity(Identity::parse("local_id", &spec.local_id)?),
            ),
            subnets("leftsubnet", "leftsubnets", &spec.local_cidrs),
            ("right", Value::Address(spec.peer_address)),
            (
                "rightid",
                Value::Identity(Identity::parse("peer_id", &spec.peer_id)?),
            ),
            subnets("rightsubnet", "rightsubnets", &spec.peer_cidrs),
            ("authby", Value::Keyword("secret")),
            // The agent initiates itself (whack --initiate), as for strongSwan.
            ("auto", Value::Keyword("add")),
            (
                "ikev2",
                Value::Keyword(match ike.ike_version {
                    IkeVersion::V1 => "no",
                    IkeVersion::V2 => "yes",
                }),
            ),
            ("ike", Value::Proposal(spelling::ike_proposal(ike)?)),
            ("ikelifetime", Value::Seconds(ike.lifetime.value)),
            (
                "phase2",
                Value::Keyword(match ipsec.transform_protocol {
                    TransformProtocol::Ah => "ah",
                    _ => "esp",
                }),
            ),
            (
                "phase2alg",
                Value::Proposal(spelling::child_proposal(ipsec, ike.ike_version)?),
            ),
            ("pfs", Value::Keyword("yes")),
            ("salifetime", Value::Seconds(ipsec.lifetime.value)),
            (
                "type",
                Value::Keyword(match ipsec.encapsulation_mode {
                    EncapsulationMode::Tunnel => "tunnel",
                    EncapsulationMode::Transport => "transport",
                }),
            ),
            ("mtu", Value::Number(spec.mtu)),
            ("keyingtries", Value::Keyword("%forever")),
        ];
        if ike.phase1_negotiation_mode == Phase1Mode::Aggressive {
            entries.push(("aggressive", Value::Keyword("yes")));
        }
        let dpd_action = match spec.dpd.action {
            DpdAction::Disabled => None,
            DpdAction::Hold => Some("hold"),
            DpdAction::Restart => Some("restart"),
            DpdAction::Clear | DpdAction::RestartByPeer => Some("clear"),
        };
        if let Some(action) = dpd_action {
            entries.push(("dpddelay", Value::Seconds(spec.dpd.interval)));
            entries.push(("dpdtimeout", Value::Seconds(spec.dpd.timeout)));
            entries.push(("dpdaction", Value::Keyword(action)));
        }
        Ok(Conn {
            name: spec.id.clone(),
            entries,
        })
    }
}

/// `ipsec.conf` holding `conns`. IKEv1 must be allowed explicitly since Libreswan 4.
pub fn render(conns: &[Conn]) -> String {
    let mut out = String::from("# written by the vpnaas agent; changes are overwritten\n");
    out.push_str("config setup\n\tikev1-policy=accept\n\tuniqueids=yes\n");
    for conn in conns {
        let _ = write!(out, "\nconn {}\n", conn.name);
        for (key, value) in &conn.entries {
            let _ = writeln!(out, "\t{key}={value}");
        }
    }
    out
}

/// `ipsec.secrets`: one PSK per connection, bound to its two identities.
pub fn secrets(specs: &[&ConnectionSpec]) -> Result<String> {
    let mut out = String::new();
    for spec in specs {
        let local = Identity::parse("local_id", &spec.local_id)?;
        let peer = Identity::parse("peer_id", &spec.peer_id)?;
        let key = base64::engine::general_purpose::STANDARD.encode(spec.psk.expose());
        let _ = writeln!(out, "{} {} : PSK 0s{key}", local.0, peer.0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_get_libreswan_form_and_hostile_ones_are_refused() {
        let form = |t: &str| Identity::parse("peer_id", t).map(|i| i.0);
        assert_eq!(form("203.0.113.2").ok().as_deref(), Some("203.0.113.2"));
        assert_eq!(
            form("vpn.example.com").ok().as_deref(),
            Some("@vpn.example.com")
        );
        assert_eq!(form("@vpn").ok().as_deref(), Some("@vpn"));
        assert_eq!(
            form("ops@example.com").ok().as_deref(),
            Some("ops@example.com")
        );
        for hostile in ["a b", "x\nconn evil", "\"q\"", "a#b", "{x}", ""] {
            assert!(form(hostile).is_err(), "{hostile:?}");
        }
    }
}
