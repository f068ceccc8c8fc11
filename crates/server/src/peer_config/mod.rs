//! The configuration of a connection's *far end*, as its own device would hold it: the
//! peer's view of the tunnel (our gateway as its peer, its CIDRs as local, the same
//! proposals, DPD, lifetimes and identities), written in one device's language per
//! [`Format`]. Every value comes from a validated model type: addresses and CIDRs are
//! parsed types, identities pass the identity grammar again ([`Identity`]), algorithms
//! are closed enums, object names derive from the connection id (a UUID). Names and
//! descriptions tenants typed are never written. The pre-shared key is written only when
//! the caller asked for it and may have it ([`Secret`]).
//!
//! One module per format: `strongswan` (swanctl.conf), `libreswan` (ipsec.conf and
//! ipsec.secrets), `vyos` (configuration commands), `cisco_ios` (IOS / IOS XE global
//! configuration), `juniper_srx` (Junos `set` commands).

pub mod certificates;
mod cisco_ios;
mod juniper_srx;
mod libreswan;
mod strongswan;
mod vyos;

use std::net::IpAddr;

use ipnet::IpNet;
use vpnaas_model::agent::ConnectionSpec;
use vpnaas_model::enums::{DpdAction, IkeVersion, Initiator};
use vpnaas_model::grammar;
use vpnaas_model::policy::{IkePolicy, IpsecPolicy};
use vpnaas_model::site_connection::{Dpd, Psk};

use certificates::{CaCertificate, Certificates};

/// A device language the far end's configuration is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// strongSwan's `swanctl.conf`.
    Strongswan,
    /// Libreswan's `ipsec.conf` and `ipsec.secrets`.
    Libreswan,
    /// VyOS configuration mode commands.
    Vyos,
    /// Cisco IOS / IOS XE global configuration.
    CiscoIos,
    /// Juniper SRX (Junos) `set` commands.
    JuniperSrx,
}

impl Format {
    /// Every format, in the order they are listed.
    pub const ALL: [Format; 5] = [
        Format::Strongswan,
        Format::Libreswan,
        Format::Vyos,
        Format::CiscoIos,
        Format::JuniperSrx,
    ];

    /// Its name in `?format=`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Strongswan => "strongswan",
            Format::Libreswan => "libreswan",
            Format::Vyos => "vyos",
            Format::CiscoIos => "cisco-ios",
            Format::JuniperSrx => "juniper-srx",
        }
    }

    /// The format named `name`.
    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// What the download is, for the list of formats.
    pub fn description(self) -> &'static str {
        match self {
            Format::Strongswan => {
                "strongSwan 5.8 or newer: swanctl.conf (connections and secrets), load with swanctl --load-all"
            }
            Format::Libreswan => {
                "Libreswan 4: ipsec.conf then ipsec.secrets, each after a '# ==> FILE <==' line"
            }
            Format::Vyos => "VyOS 1.4: configuration mode commands",
            Format::CiscoIos => "Cisco IOS / IOS XE 16 or newer: global configuration (crypto map)",
            Format::JuniperSrx => {
                "Juniper SRX, Junos 15.1X49-D100 or newer: set commands (route-based VPN on st0.0 with traffic selectors)"
            }
        }
    }

    /// The files the download holds.
    pub fn files(self) -> &'static [&'static str] {
        match self {
            Format::Strongswan => &["swanctl.conf"],
            Format::Libreswan => &["ipsec.conf", "ipsec.secrets"],
            Format::Vyos => &["vyos.commands"],
            Format::CiscoIos => &["ios.cfg"],
            Format::JuniperSrx => &["junos.set"],
        }
    }
}

/// An IKE identity that passed the identity grammar (letters, digits and `. - _ @ : +`),
/// so it cannot leave the token it is written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity(String);

impl Identity {
    /// `text` after the identity grammar; `Err` holds the grammar's reason.
    pub fn parse(text: &str) -> Result<Identity, String> {
        grammar::check_identity(text)?;
        Ok(Identity(text.to_string()))
    }

    /// The identity as typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address it is, when it is one.
    pub fn address(&self) -> Option<IpAddr> {
        self.0.parse().ok()
    }
}

/// The pre-shared key as the download holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// A placeholder the far end's operator replaces with the key.
    Placeholder,
    /// The key itself (asked for with `include_secret=true` by a caller who may see it).
    Included(Psk),
}

/// What the placeholder reads, where the key would be.
pub const PLACEHOLDER: &str = "PASTE-THE-PRE-SHARED-KEY-HERE";

/// The far end of a connection, from its own point of view.
#[derive(Debug, Clone)]
pub struct FarEnd {
    /// The connection id (a UUID): names the far end's objects.
    pub connection_id: String,
    /// The far end's own gateway address (the connection's `peer_address`).
    pub local_address: IpAddr,
    /// Its identity (the connection's `peer_id`).
    pub local_id: Identity,
    /// Our gateway address.
    pub remote_address: IpAddr,
    /// Our identity (`local_id`, or our gateway address).
    pub remote_id: Identity,
    /// Its networks (the connection's peer CIDRs).
    pub local_cidrs: Vec<IpNet>,
    /// Our networks.
    pub remote_cidrs: Vec<IpNet>,
    /// Phase 1, as on our side.
    pub ike: IkePolicy,
    /// Phase 2, as on our side.
    pub ipsec: IpsecPolicy,
    /// Dead peer detection, as on our side.
    pub dpd: Dpd,
    /// Whether the far end must start the negotiation (we only answer); otherwise we
    /// start it and the far end negotiates on demand.
    pub initiates: bool,
    /// The key, or its placeholder.
    pub secret: Secret,
    /// Certificate authentication (`auth_mode` `cert`): the far end presents the
    /// certificate `POST …/peer-credentials` issued it (or one of its own PKI) and trusts
    /// the vpnaas project's CA for ours; there is no key.
    pub certificates: Option<Certificates>,
}

impl FarEnd {
    /// The far end of the connection whose desired state (our side) is `ours`;
    /// `vpnaas_ca` is the CA certificate (PEM) of its VPN service, which a `cert`
    /// connection's far end trusts for our gateway.
    pub fn of(
        ours: &ConnectionSpec,
        secret: Secret,
        vpnaas_ca: Option<&str>,
    ) -> Result<FarEnd, Unsupported> {
        grammar::check_uuid(&ours.id).map_err(|reason| Unsupported::new("id", reason))?;
        let identity = |field: &'static str, text: &str| {
            Identity::parse(text).map_err(|reason| Unsupported::new(field, reason))
        };
        Ok(FarEnd {
            connection_id: ours.id.clone(),
            local_address: ours.peer_address,
            local_id: identity("peer_id", &ours.peer_id)?,
            remote_address: ours.local_address,
            remote_id: identity("local_id", &ours.local_id)?,
            local_cidrs: ours.peer_cidrs.clone(),
            remote_cidrs: ours.local_cidrs.clone(),
            ike: ours.ike.clone(),
            ipsec: ours.ipsec.clone(),
            dpd: ours.dpd.clone(),
            initiates: ours.initiator == Initiator::ResponseOnly,
            secret,
            certificates: certificates_of(ours, vpnaas_ca)?,
        })
    }

    /// A short name for the far end's objects: `vpnaas-` and the first 8 hex digits of
    /// the connection id.
    pub fn short_name(&self) -> String {
        let digits: String = self.connection_id.chars().take(8).collect();
        format!("vpnaas-{digits}")
    }

    /// Whether dead peer detection is on.
    pub fn dpd_on(&self) -> bool {
        self.dpd.action != DpdAction::Disabled
    }

    /// IKEv1.
    pub fn ikev1(&self) -> bool {
        self.ike.ike_version == IkeVersion::V1
    }

    /// The traffic selector pairs, `(local, remote)`: every pair of the far end's and our
    /// CIDRs (IKEv1 and policy-based devices negotiate one pair per SA).
    pub fn pairs(&self) -> Vec<(IpNet, IpNet)> {
        self.local_cidrs
            .iter()
            .flat_map(|l| self.remote_cidrs.iter().map(move |r| (*l, *r)))
            .collect()
    }
}

/// What a `cert` connection's far end works with; `None` for a `psk` connection.
fn certificates_of(
    ours: &ConnectionSpec,
    vpnaas_ca: Option<&str>,
) -> Result<Option<Certificates>, Unsupported> {
    let Some(auth) = &ours.certificate else {
        return Ok(None);
    };
    let Some(pem) = vpnaas_ca else {
        return Err(Unsupported::new(
            "ca_certificate",
            "the VPN service has no CA certificate yet",
        ));
    };
    let vpnaas_ca = CaCertificate::parse(pem)?;
    let own_pki = !vpnaas_ca.is_in(&auth.peer_ca);
    Ok(Some(Certificates { vpnaas_ca, own_pki }))
}

/// A value of the connection the format cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Unsupported {
    /// The attribute (of the connection or one of its policies).
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

impl Unsupported {
    /// `field` cannot be written, for `reason`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Unsupported {
            field,
            reason: reason.into(),
        }
    }
}

/// The far end's configuration in `format`.
pub fn render(format: Format, far: &FarEnd) -> Result<String, Unsupported> {
    if far.local_cidrs.is_empty() || far.remote_cidrs.is_empty() {
        return Err(Unsupported::new(
            "peer_cidrs",
            "the connection has no traffic selectors on one side",
        ));
    }
    match format {
        Format::Strongswan => Ok(strongswan::render(far)),
        Format::Libreswan => libreswan::render(far),
        Format::Vyos => vyos::render(far),
        Format::CiscoIos => cisco_ios::render(far),
        Format::JuniperSrx => juniper_srx::render(far),
    }
}

/// The key as a vendor CLI line can hold it between quotes: printable ASCII without
/// quotes, backslashes, `?` (CLI help) or `!`/`#` (comments). Other keys are left as the
/// placeholder for the operator to type, and the answer says so.
fn cli_safe_secret(far: &FarEnd) -> Result<String, Unsupported> {
    match &far.secret {
        Secret::Placeholder => Ok(PLACEHOLDER.to_string()),
        Secret::Included(psk) => {
            let key = psk.expose();
            let safe = key
                .chars()
                .all(|c| c.is_ascii_graphic() && !"\"'\\?!#".contains(c));
            if safe {
                Ok(key.to_string())
            } else {
                Err(Unsupported::new(
                    "psk",
                    "holds a character this device's command line cannot take (space, quote, backslash, ?, ! or #, or non-ASCII): download without include_secret and type the key on the device",
                ))
            }
        }
    }
}

/// `value` when `device` takes it for `what`: within `range` (inclusive, from the vendor's
/// reference); otherwise `field` cannot be written.
fn within(
    device: &str,
    field: &'static str,
    what: &str,
    value: u32,
    range: (u32, u32),
) -> Result<u32, Unsupported> {
    if (range.0..=range.1).contains(&value) {
        Ok(value)
    } else {
        Err(Unsupported::new(
            field,
            format!(
                "{value} is outside the {}-{} {device} takes for {what}",
                range.0, range.1
            ),
        ))
    }
}

/// The first line of every download: what it is, and that it was generated.
fn header(far: &FarEnd, comment: &str) -> String {
    format!(
        "{comment} far end of vpnaas connection {}: this device is {}, its peer the vpnaas gateway {}\n",
        far.connection_id, far.local_address, far.remote_address
    )
}

#[cfg(test)]
mod tests;
