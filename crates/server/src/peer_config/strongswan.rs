//! The far end as strongSwan's `swanctl.conf`: a `connections` section and a `secrets`
//! section, written by a typed tree whose keys are fixed words and whose values are
//! addresses, CIDRs, checked identities, numbers, closed keywords and proposals built
//! from closed enums. The key is written base64-encoded (`0s…`, which swanctl.conf
//! accepts for any secret), so no character of it can end its line.

use std::fmt::Write as _;

use base64::Engine as _;
use vpnaas_model::enums::{
    DpdAction, EncapsulationMode, IkeVersion, Phase1Mode, TransformProtocol,
};
use vpnaas_model::spelling::strongswan as spelling;

use super::certificates::{CA_FILE, PEER_CERTIFICATE_FILE, PEER_KEY_FILE};
use super::{FarEnd, Identity, PLACEHOLDER, Secret, header};

/// One value of a `key = value` line.
enum Value {
    Words(Vec<String>),
    Identity(Identity),
    Seconds(u64),
    Number(u32),
    Keyword(&'static str),
    /// Base64 of the key, or the placeholder in quotes.
    Secret(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Words(words) => f.write_str(&words.join(",")),
            Value::Identity(id) => f.write_str(id.as_str()),
            Value::Seconds(n) => write!(f, "{n}s"),
            Value::Number(n) => write!(f, "{n}"),
            Value::Keyword(k) => f.write_str(k),
            Value::Secret(s) => f.write_str(s),
        }
    }
}

/// A section: a fixed word or a name made of the connection id.
struct Section {
    name: String,
    entries: Vec<(&'static str, Value)>,
    sections: Vec<Section>,
}

impl Section {
    fn new(name: impl Into<String>) -> Self {
        Section {
            name: name.into(),
            entries: Vec::new(),
            sections: Vec::new(),
        }
    }

    fn set(mut self, key: &'static str, value: Value) -> Self {
        self.entries.push((key, value));
        self
    }

    fn with(mut self, section: Section) -> Self {
        self.sections.push(section);
        self
    }

    fn write(&self, out: &mut String, depth: usize) {
        let indent = "    ".repeat(depth);
        let _ = writeln!(out, "{indent}{} {{", self.name);
        for (key, value) in &self.entries {
            let _ = writeln!(out, "{indent}    {key} = {value}");
        }
        for section in &self.sections {
            section.write(out, depth + 1);
        }
        let _ = writeln!(out, "{indent}}}");
    }
}

fn addresses(cidrs: &[ipnet::IpNet]) -> Value {
    Value::Words(cidrs.iter().map(ToString::to_string).collect())
}

/// The child SAs: one with every CIDR in IKEv2; in IKEv1, which negotiates one pair of
/// selectors per child, one per pair, named as the vpnaas side names them.
fn children(far: &FarEnd) -> Vec<Section> {
    let ipsec = &far.ipsec;
    let lifetime = u64::from(ipsec.lifetime.value);
    let child = |name: String, local: &[ipnet::IpNet], remote: &[ipnet::IpNet]| {
        let proposals_key = match ipsec.transform_protocol {
            TransformProtocol::Ah => "ah_proposals",
            _ => "esp_proposals",
        };
        Section::new(name)
            .set("local_ts", addresses(local))
            .set("remote_ts", addresses(remote))
            .set(
                proposals_key,
                Value::Words(vec![spelling::child_proposal(ipsec)]),
            )
            .set(
                "mode",
                Value::Keyword(match ipsec.encapsulation_mode {
                    EncapsulationMode::Tunnel => "tunnel",
                    EncapsulationMode::Transport => "transport",
                }),
            )
            .set("rekey_time", Value::Seconds(lifetime * 9 / 10))
            .set("life_time", Value::Seconds(lifetime))
            .set(
                "dpd_action",
                Value::Keyword(match far.dpd.action {
                    DpdAction::Hold => "trap",
                    DpdAction::Restart => "restart",
                    DpdAction::Clear | DpdAction::Disabled | DpdAction::RestartByPeer => "clear",
                }),
            )
            .set(
                "start_action",
                Value::Keyword(if far.initiates { "start" } else { "trap" }),
            )
            .set("close_action", Value::Keyword("none"))
    };
    let pairs = far.pairs();
    if far.ike.ike_version == IkeVersion::V2 || pairs.len() == 1 {
        return vec![child(
            far.connection_id.clone(),
            &far.local_cidrs,
            &far.remote_cidrs,
        )];
    }
    pairs
        .iter()
        .enumerate()
        .map(|(n, (local, remote))| {
            child(
                format!("{}-{}", far.connection_id, n + 1),
                &[*local],
                &[*remote],
            )
        })
        .collect()
}

fn connection(far: &FarEnd) -> Section {
    let ike = &far.ike;
    let mut conn = Section::new(far.connection_id.clone())
        .set(
            "version",
            Value::Number(match ike.ike_version {
                IkeVersion::V1 => 1,
                IkeVersion::V2 => 2,
            }),
        )
        .set(
            "local_addrs",
            Value::Words(vec![far.local_address.to_string()]),
        )
        .set(
            "remote_addrs",
            Value::Words(vec![far.remote_address.to_string()]),
        )
        .set("proposals", Value::Words(vec![spelling::ike_proposal(ike)]))
        .set(
            "aggressive",
            Value::Keyword(match ike.phase1_negotiation_mode {
                Phase1Mode::Aggressive => "yes",
                Phase1Mode::Main => "no",
            }),
        )
        .set(
            "dpd_delay",
            Value::Seconds(if far.dpd_on() {
                u64::from(far.dpd.interval)
            } else {
                0
            }),
        );
    if far.ikev1() && far.dpd_on() {
        conn = conn.set("dpd_timeout", Value::Seconds(u64::from(far.dpd.timeout)));
    }
    conn = conn
        .set("rekey_time", Value::Seconds(u64::from(ike.lifetime.value)))
        .set("mobike", Value::Keyword("no"))
        .set("keyingtries", Value::Number(0))
        .with(local(far))
        .with(remote(far));
    let mut children_section = Section::new("children");
    for child in children(far) {
        children_section = children_section.with(child);
    }
    conn.with(children_section)
}

fn local(far: &FarEnd) -> Section {
    let local = Section::new("local");
    let local = if far.certificates.is_some() {
        local
            .set("auth", Value::Keyword("pubkey"))
            .set("certs", Value::Keyword(PEER_CERTIFICATE_FILE))
    } else {
        local.set("auth", Value::Keyword("psk"))
    };
    local.set("id", Value::Identity(far.local_id.clone()))
}

fn remote(far: &FarEnd) -> Section {
    let remote = Section::new("remote");
    let remote = if far.certificates.is_some() {
        remote
            .set("auth", Value::Keyword("pubkey"))
            .set("cacerts", Value::Keyword(CA_FILE))
    } else {
        remote.set("auth", Value::Keyword("psk"))
    };
    remote.set("id", Value::Identity(far.remote_id.clone()))
}

fn secret(far: &FarEnd) -> Section {
    let value = match &far.secret {
        Secret::Included(psk) => format!(
            "0s{}",
            base64::engine::general_purpose::STANDARD.encode(psk.expose())
        ),
        Secret::Placeholder => format!("\"{PLACEHOLDER}\""),
    };
    Section::new(format!("ike-{}", far.connection_id))
        .set("id-local", Value::Identity(far.local_id.clone()))
        .set("id-remote", Value::Identity(far.remote_id.clone()))
        .set("secret", Value::Secret(value))
}

/// The far end's `swanctl.conf`.
pub fn render(far: &FarEnd) -> String {
    let mut out = header(far, "#");
    if far.certificates.is_some() {
        let _ = writeln!(
            out,
            "# certificates: swanctl/x509/{PEER_CERTIFICATE_FILE} and swanctl/private/{PEER_KEY_FILE} \
             from POST .../ipsec-site-connections/{}/peer-credentials (or your own PKI's), \
             swanctl/x509ca/{CA_FILE} from the VPN service's ca_certificate",
            far.connection_id
        );
    } else if far.secret == Secret::Placeholder {
        out.push_str("# the pre-shared key is not included: replace the placeholder in secrets\n");
    }
    Section::new("connections")
        .with(connection(far))
        .write(&mut out, 0);
    if far.certificates.is_none() {
        Section::new("secrets").with(secret(far)).write(&mut out, 0);
    }
    out
}
