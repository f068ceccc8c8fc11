//! The far end as Libreswan's `ipsec.conf` and `ipsec.secrets`, one after the other,
//! each after a `# ==> FILE <==` line (a comment in both files). Every `key=value` line
//! holds a typed value: addresses and subnets are parsed types, identities pass the
//! identity grammar and get Libreswan's form, proposals come from the model's spellings
//! after `capability` confirmed Libreswan can negotiate them. The key is written
//! base64-encoded (`0s…`).

use std::fmt::Write as _;

use base64::Engine as _;
use vpnaas_model::spelling::libreswan as spelling;
use vpnaas_model::spelling::libreswan_conn::{self, Tunnel, Value};

use super::{FarEnd, Identity, PLACEHOLDER, Secret, Unsupported, header};

fn identity(field: &'static str, id: &Identity) -> Result<String, Unsupported> {
    spelling::identity(id.as_str()).map_err(|reason| Unsupported::new(field, reason))
}

fn unsupported(error: spelling::Unsupported) -> Unsupported {
    Unsupported::new(error.field, error.to_string())
}

/// The `conn` section's lines: the far end initiates (`start`) when vpnaas only
/// responds, and otherwise waits for traffic or for vpnaas (`route`).
fn conn(far: &FarEnd) -> Result<Vec<(&'static str, Value)>, Unsupported> {
    let tunnel = Tunnel {
        left: far.local_address,
        left_id: identity("peer_id", &far.local_id)?,
        left_cidrs: &far.local_cidrs,
        right: far.remote_address,
        right_id: identity("local_id", &far.remote_id)?,
        right_cidrs: &far.remote_cidrs,
        ike: &far.ike,
        ipsec: &far.ipsec,
        dpd: &far.dpd,
        auto: if far.initiates { "start" } else { "route" },
        mtu: None,
        certificate: None,
    };
    libreswan_conn::lines(&tunnel).map_err(unsupported)
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
