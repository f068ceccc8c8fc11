//! The far end as Libreswan's `ipsec.conf` and `ipsec.secrets`, one after the other,
//! each after a `# ==> FILE <==` line (a comment in both files). Every `key=value` line
//! holds a typed value: addresses and subnets are parsed types, identities pass the
//! identity grammar and get Libreswan's form, proposals come from the model's spellings
//! after `capability` confirmed Libreswan can negotiate them. The key is written
//! base64-encoded (`0s…`).

use std::fmt::Write as _;

use base64::Engine as _;
use ipnet::IpNet;
use vpnaas_model::enums::{
    DpdAction, EncapsulationMode, IkeVersion, Phase1Mode, TransformProtocol,
};
use vpnaas_model::spelling::libreswan as spelling;

use super::{FarEnd, Identity, PLACEHOLDER, Secret, Unsupported, header};

/// A typed value of one `key=value` line.
enum Value {
    Address(std::net::IpAddr),
    Subnet(IpNet),
    Subnets(Vec<IpNet>),
    /// In Libreswan's form (`@name`, address, `user@domain`).
    Identity(String),
    Seconds(u32),
    Keyword(&'static str),
    /// Built by the model's spellings from closed enums.
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
            Value::Identity(id) | Value::Proposal(id) => f.write_str(id),
            Value::Seconds(n) => write!(f, "{n}s"),
            Value::Keyword(k) => f.write_str(k),
        }
    }
}

fn identity(field: &'static str, id: &Identity) -> Result<String, Unsupported> {
    spelling::identity(id.as_str()).map_err(|reason| Unsupported::new(field, reason))
}

fn subnets(key: &'static str, plural: &'static str, cidrs: &[IpNet]) -> (&'static str, Value) {
    match cidrs {
        [one] => (key, Value::Subnet(*one)),
        many => (plural, Value::Subnets(many.to_vec())),
    }
}

fn unsupported(error: spelling::Unsupported) -> Unsupported {
    Unsupported::new(error.field, error.to_string())
}

/// The `conn` section's lines.
fn conn(far: &FarEnd) -> Result<Vec<(&'static str, Value)>, Unsupported> {
    let (ike, ipsec) = (&far.ike, &far.ipsec);
    let mut entries = vec![
        ("left", Value::Address(far.local_address)),
        (
            "leftid",
            Value::Identity(identity("peer_id", &far.local_id)?),
        ),
        subnets("leftsubnet", "leftsubnets", &far.local_cidrs),
        ("right", Value::Address(far.remote_address)),
        (
            "rightid",
            Value::Identity(identity("local_id", &far.remote_id)?),
        ),
        subnets("rightsubnet", "rightsubnets", &far.remote_cidrs),
        ("authby", Value::Keyword("secret")),
        (
            "auto",
            Value::Keyword(if far.initiates { "start" } else { "route" }),
        ),
        (
            "ikev2",
            Value::Keyword(match ike.ike_version {
                IkeVersion::V1 => "no",
                IkeVersion::V2 => "yes",
            }),
        ),
        (
            "ike",
            Value::Proposal(spelling::ike_proposal(ike).map_err(unsupported)?),
        ),
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
            Value::Proposal(spelling::child_proposal(ipsec, ike.ike_version).map_err(unsupported)?),
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
        ("keyingtries", Value::Keyword("%forever")),
    ];
    if ike.phase1_negotiation_mode == Phase1Mode::Aggressive {
        entries.push(("aggressive", Value::Keyword("yes")));
    }
    let action = match far.dpd.action {
        DpdAction::Disabled => None,
        DpdAction::Hold => Some("hold"),
        DpdAction::Restart => Some("restart"),
        DpdAction::Clear | DpdAction::RestartByPeer => Some("clear"),
    };
    if let Some(action) = action {
        entries.push(("dpddelay", Value::Seconds(far.dpd.interval)));
        entries.push(("dpdtimeout", Value::Seconds(far.dpd.timeout)));
        entries.push(("dpdaction", Value::Keyword(action)));
    }
    Ok(entries)
}

/// The far end's `ipsec.conf` and `ipsec.secrets`.
pub fn render(far: &FarEnd) -> Result<String, Unsupported> {
    let mut out = String::from("# ==> ipsec.conf <==\n");
    out.push_str(&header(far, "#"));
    if far.ikev1() {
        // Libreswan 4 refuses IKEv1 connections unless allowed.
        out.push_str("config setup\n\tikev1-policy=accept\n\n");
    }
    let _ = writeln!(out, "conn {}", far.connection_id);
    for (key, value) in conn(far)? {
        let _ = writeln!(out, "\t{key}={value}");
    }
    out.push_str("\n# ==> ipsec.secrets <==\n");
    let key = match &far.secret {
        Secret::Included(psk) => format!(
            "0s{}",
            base64::engine::general_purpose::STANDARD.encode(psk.expose())
        ),
        Secret::Placeholder => {
            out.push_str("# the pre-shared key is not included: replace the placeholder\n");
            format!("\"{PLACEHOLDER}\"")
        }
    };
    let _ = writeln!(
        out,
        "{} {} : PSK {key}",
        identity("peer_id", &far.local_id)?,
        identity("local_id", &far.remote_id)?
    );
    Ok(out)
}
