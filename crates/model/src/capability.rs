//! What each IKE daemon can negotiate: the one place the API (refusing a connection or a
//! migration) and the agent (writing a daemon's configuration) learn that a policy value
//! is out of a driver's reach. strongSwan negotiates every value the API accepts;
//! Libreswan 4 lacks some (checked against its `algparse`).

use crate::enums::{AuthAlgorithm, DriverKind, IkeVersion, PfsGroup};
use crate::policy::{IkePolicy, IpsecPolicy};

/// A policy value a driver cannot negotiate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{policy} {field} '{value}' is not supported by the {driver} driver ({context})")]
pub struct Unsupported {
    /// `ikepolicy` or `ipsecpolicy`.
    pub policy: &'static str,
    /// The policy attribute.
    pub field: &'static str,
    /// Its value.
    pub value: &'static str,
    /// Where it fails.
    pub context: &'static str,
    /// The driver.
    pub driver: &'static str,
}

/// Whether Libreswan has the Diffie-Hellman group (modp1024 is not built in; groups
/// 22–30 are not implemented).
pub fn libreswan_has_group(group: PfsGroup) -> bool {
    !matches!(
        group,
        PfsGroup::Group2
            | PfsGroup::Group22
            | PfsGroup::Group23
            | PfsGroup::Group24
            | PfsGroup::Group25
            | PfsGroup::Group26
            | PfsGroup::Group27
            | PfsGroup::Group28
            | PfsGroup::Group29
            | PfsGroup::Group30
    )
}

/// The first value of the two policies `driver` cannot negotiate, if any.
pub fn check(driver: DriverKind, ike: &IkePolicy, ipsec: &IpsecPolicy) -> Result<(), Unsupported> {
    match driver {
        DriverKind::Strongswan => Ok(()),
        DriverKind::Libreswan => check_libreswan(ike, ipsec),
    }
}

fn check_libreswan(ike: &IkePolicy, ipsec: &IpsecPolicy) -> Result<(), Unsupported> {
    libreswan_ike(ike)?;
    libreswan_child(ipsec, ike.ike_version)
}

fn refuse(
    policy: &'static str,
    field: &'static str,
    value: &'static str,
    context: &'static str,
) -> Result<(), Unsupported> {
    Err(Unsupported {
        policy,
        field,
        value,
        context,
        driver: DriverKind::Libreswan.as_str(),
    })
}

/// Whether Libreswan can negotiate the IKE policy: no CCM and no AES-CMAC PRF in IKE, no
/// AEAD and no AES-XCBC PRF in IKEv1.
pub fn libreswan_ike(ike: &IkePolicy) -> Result<(), Unsupported> {
    let v1 = ike.ike_version == IkeVersion::V1;
    let enc = ike.encryption_algorithm;
    if v1 && enc.is_aead() {
        return refuse(
            "ikepolicy",
            "encryption_algorithm",
            enc.as_str(),
            "IKEv1 has no AEAD ciphers",
        );
    }
    if enc.as_str().contains("-ccm-") {
        return refuse(
            "ikepolicy",
            "encryption_algorithm",
            enc.as_str(),
            "no CCM in IKE",
        );
    }
    if ike.auth_algorithm == AuthAlgorithm::AesCmac
        || (v1 && ike.auth_algorithm == AuthAlgorithm::AesXcbc)
    {
        return refuse(
            "ikepolicy",
            "auth_algorithm",
            ike.auth_algorithm.as_str(),
            "not a PRF it has",
        );
    }
    if !libreswan_has_group(ike.pfs) {
        return refuse(
            "ikepolicy",
            "pfs",
            ike.pfs.as_str(),
            "group not implemented",
        );
    }
    Ok(())
}

/// Whether Libreswan can negotiate the child SA of an IPsec policy (IKEv1 quick mode has
/// no curve25519 PFS).
pub fn libreswan_child(ipsec: &IpsecPolicy, version: IkeVersion) -> Result<(), Unsupported> {
    if !libreswan_has_group(ipsec.pfs)
        || (version == IkeVersion::V1 && ipsec.pfs == PfsGroup::Group31)
    {
        return refuse(
            "ipsecpolicy",
            "pfs",
            ipsec.pfs.as_str(),
            "group not implemented for this IKE version",
        );
    }
    Ok(())
}
