//! A typed writer for Libreswan's `ipsec.conf` and `ipsec.secrets`. The `conn` sections'
//! lines are the model's ([`libreswan_conn`], shared with the server's far-end
//! configuration): every value has a type whose rendering cannot leave its `key=value`
//! line; identities pass the model's strict grammar again here. The PSK is written base64-encoded (`0s…`), so any character
//! is safe in the secrets file.

use std::fmt::Write as _;

use base64::Engine as _;
use vpnaas_model::agent::ConnectionSpec;
use vpnaas_model::grammar;
use vpnaas_model::spelling::libreswan as spelling;
use vpnaas_model::spelling::libreswan_conn::{self, Tunnel, Value};

use crate::error::{Error, Result};

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

/// One `conn` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Conn {
    /// The connection id (a UUID).
    pub name: String,
    entries: Vec<(&'static str, Value)>,
}

impl Conn {
    /// The section of a connection; `Err` when Libreswan cannot express it. The agent
    /// initiates itself (`whack --initiate`), as for strongSwan: `auto=add`.
    pub fn of(spec: &ConnectionSpec) -> Result<Conn> {
        grammar::check_uuid(&spec.id).map_err(|reason| Error::Invalid {
            field: "id",
            reason,
        })?;
        let tunnel = Tunnel {
            left: spec.local_address,
            left_id: Identity::parse("local_id", &spec.local_id)?.0,
            left_cidrs: &spec.local_cidrs,
            right: spec.peer_address,
            right_id: Identity::parse("peer_id", &spec.peer_id)?.0,
            right_cidrs: &spec.peer_cidrs,
            ike: &spec.ike,
            ipsec: &spec.ipsec,
            dpd: &spec.dpd,
            auto: "add",
            mtu: Some(spec.mtu),
            certificate: super::nss::nickname(spec)?,
            // The server lets a Libreswan service trust the project's CA only, which
            // issued the gateway's certificate: Libreswan's implied `rightca=%same`.
            right_ca: None,
        };
        Ok(Conn {
            name: spec.id.clone(),
            entries: libreswan_conn::lines(&tunnel)?,
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

/// `ipsec.secrets`: one PSK per `psk` connection, bound to its two identities (a `cert`
/// connection's key is in the NSS database).
pub fn secrets(specs: &[&ConnectionSpec]) -> Result<String> {
    let mut out = String::new();
    for spec in specs.iter().filter(|s| s.certificate.is_none()) {
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
