//! A Libreswan `conn` section as typed `key=value` lines: what the agent writes for its
//! own end of a connection and what the server writes for the far end, so both say the
//! same thing the same way. Every value has a type whose rendering cannot leave its line:
//! addresses and subnets are parsed types, identities arrive in Libreswan's form from
//! [`identity`](super::libreswan::identity) (after the grammar), proposals and keywords
//! come from closed enums.

use std::net::IpAddr;

use ipnet::IpNet;

use super::libreswan::{Unsupported, child_proposal, ike_proposal};
use crate::enums::{DpdAction, EncapsulationMode, IkeVersion, Phase1Mode, TransformProtocol};
use crate::policy::{IkePolicy, IpsecPolicy};
use crate::site_connection::Dpd;

/// A typed value of one `key=value` line.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An IP address.
    Address(IpAddr),
    /// One CIDR.
    Subnet(IpNet),
    /// Several CIDRs, `{a b}`.
    Subnets(Vec<IpNet>),
    /// In Libreswan's form (an address, `@name`, `user@domain`).
    Identity(String),
    /// A duration, `Ns`.
    Seconds(u32),
    /// A number.
    Number(u32),
    /// One of Libreswan's words.
    Keyword(&'static str),
    /// Built from closed enums by the proposal spellings.
    Proposal(String),
    /// An NSS nickname vpnaas made from a UUID (or a fixed word).
    Nickname(String),
    /// A distinguished name of letters, digits, spaces and `. - _ : = ,`, in quotes.
    DistinguishedName(String),
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
            Value::Identity(text) | Value::Proposal(text) | Value::Nickname(text) => {
                f.write_str(text)
            }
            Value::DistinguishedName(dn) => write!(f, "\"{dn}\""),
            Value::Seconds(n) => write!(f, "{n}s"),
            Value::Number(n) => write!(f, "{n}"),
            Value::Keyword(k) => f.write_str(k),
        }
    }
}

/// A tunnel as one end's `conn` section sees it: `left` is that end.
pub struct Tunnel<'a> {
    /// This end's address.
    pub left: IpAddr,
    /// This end's identity, in Libreswan's form.
    pub left_id: String,
    /// This end's networks.
    pub left_cidrs: &'a [IpNet],
    /// The other end's address.
    pub right: IpAddr,
    /// The other end's identity, in Libreswan's form.
    pub right_id: String,
    /// The other end's networks.
    pub right_cidrs: &'a [IpNet],
    /// The IKE policy.
    pub ike: &'a IkePolicy,
    /// The IPsec policy.
    pub ipsec: &'a IpsecPolicy,
    /// Dead peer detection.
    pub dpd: &'a Dpd,
    /// `auto=`: `add` (something else initiates), `start`, `route`.
    pub auto: &'static str,
    /// `mtu=`, when the end sets it.
    pub mtu: Option<u32>,
    /// The NSS nickname of this end's certificate (an EC key: `authby=ecdsa`), when it
    /// authenticates with one (the peer's must come from the same CA: Libreswan's implied
    /// `rightca=%same`); otherwise the pre-shared key.
    pub certificate: Option<String>,
    /// The distinguished name of the CA the other end's certificate must come from
    /// (`rightca=`), when it is not the CA of this end's certificate.
    pub right_ca: Option<String>,
}

/// The section's lines; `Err` names the policy field Libreswan cannot express.
pub fn lines(tunnel: &Tunnel) -> Result<Vec<(&'static str, Value)>, Unsupported> {
    let (ike, ipsec) = (tunnel.ike, tunnel.ipsec);
    let mut lines = vec![
        ("left", Value::Address(tunnel.left)),
        ("leftid", Value::Identity(tunnel.left_id.clone())),
        subnets("leftsubnet", "leftsubnets", tunnel.left_cidrs),
        ("right", Value::Address(tunnel.right)),
        ("rightid", Value::Identity(tunnel.right_id.clone())),
        subnets("rightsubnet", "rightsubnets", tunnel.right_cidrs),
    ];
    match &tunnel.certificate {
        Some(nickname) => lines.extend([
            ("authby", Value::Keyword("ecdsa")),
            ("leftcert", Value::Nickname(nickname.clone())),
            ("leftsendcert", Value::Keyword("always")),
        ]),
        None => lines.push(("authby", Value::Keyword("secret"))),
    }
    lines.extend(
        tunnel
            .right_ca
            .clone()
            .map(|dn| ("rightca", Value::DistinguishedName(dn))),
    );
    lines.extend([
        ("auto", Value::Keyword(tunnel.auto)),
        (
            "ikev2",
            Value::Keyword(match ike.ike_version {
                IkeVersion::V1 => "no",
                IkeVersion::V2 => "yes",
            }),
        ),
        ("ike", Value::Proposal(ike_proposal(ike)?)),
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
            Value::Proposal(child_proposal(ipsec, ike.ike_version)?),
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
    ]);
    lines.extend(tunnel.mtu.map(|mtu| ("mtu", Value::Number(mtu))));
    lines.push(("keyingtries", Value::Keyword("%forever")));
    if ike.phase1_negotiation_mode == Phase1Mode::Aggressive {
        lines.push(("aggressive", Value::Keyword("yes")));
    }
    lines.extend(dpd(tunnel.dpd, ike.ike_version));
    Ok(lines)
}

/// `leftsubnet=` for one CIDR, `leftsubnets={…}` for several.
fn subnets(key: &'static str, plural: &'static str, cidrs: &[IpNet]) -> (&'static str, Value) {
    match cidrs {
        [one] => (key, Value::Subnet(*one)),
        many => (plural, Value::Subnets(many.to_vec())),
    }
}

/// Dead peer detection's lines (none when disabled); Libreswan has no `restart-by-peer`,
/// whose nearest is `clear`. With IKEv2 pluto ignores `dpdtimeout`: it declares the peer
/// dead when its liveness probe, sent after `dpddelay` without a word from the peer, has
/// gone unanswered for `retransmit-timeout`; so that is `timeout - interval`, and the peer
/// is dead `timeout` after its last word, as with IKEv1.
fn dpd(dpd: &Dpd, version: IkeVersion) -> Vec<(&'static str, Value)> {
    let action = match dpd.action {
        DpdAction::Disabled => return Vec::new(),
        DpdAction::Hold => "hold",
        DpdAction::Restart => "restart",
        DpdAction::Clear | DpdAction::RestartByPeer => "clear",
    };
    let mut lines = vec![
        ("dpddelay", Value::Seconds(dpd.interval)),
        ("dpdtimeout", Value::Seconds(dpd.timeout)),
        ("dpdaction", Value::Keyword(action)),
    ];
    if version == IkeVersion::V2 && dpd.timeout > dpd.interval {
        lines.push((
            "retransmit-timeout",
            Value::Seconds(dpd.timeout - dpd.interval),
        ));
    }
    lines
}
