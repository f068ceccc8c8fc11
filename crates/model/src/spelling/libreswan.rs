//! Libreswan spellings of the API's algorithms (reference §3.5, as Libreswan 4 accepts
//! them) and the `ike=` / `phase2alg=` strings of a connection. Built only from closed
//! enums: no tenant text. What Libreswan 4 cannot negotiate is decided by
//! `vpnaas_model::capability` (which the API uses too) and is an error naming the policy
//! field, never a string pluto would reject later.

use crate::capability;
use crate::enums::{AuthAlgorithm, EncryptionAlgorithm, IkeVersion, PfsGroup, TransformProtocol};
use crate::grammar;
use crate::policy::{IkePolicy, IpsecPolicy};

pub use crate::capability::Unsupported;

/// An IKE identity as Libreswan reads it, after the identity grammar: an address as it
/// is, or `@name` (a bare host name would make pluto resolve it in DNS; strongSwan takes
/// it as an FQDN identity, and so does vpnaas). `Err` holds the grammar's reason.
pub fn identity(text: &str) -> Result<String, String> {
    grammar::check_identity(text)?;
    Ok(
        if text.parse::<std::net::IpAddr>().is_ok() || text.contains('@') {
            text.to_string()
        } else {
            format!("@{text}")
        },
    )
}

/// Libreswan name of a cipher: `aes_ccm_a/b/c` and `aes_gcm_a/b/c` are the 8-, 12- and
/// 16-octet ICV variants.
pub fn cipher(algorithm: EncryptionAlgorithm) -> String {
    let text = algorithm.as_str();
    if algorithm == EncryptionAlgorithm::TripleDes {
        return "3des".into();
    }
    let parts: Vec<&str> = text.split('-').collect();
    match parts.as_slice() {
        ["aes", bits] => format!("aes{bits}"),
        ["aes", bits, "ctr"] => format!("aes_ctr{bits}"),
        ["aes", bits, mode, icv] => {
            let variant = match *icv {
                "8" => "a",
                "12" => "b",
                _ => "c",
            };
            format!("aes_{mode}_{variant}{bits}")
        }
        _ => text.to_string(),
    }
}

/// Libreswan name of an integrity algorithm.
pub fn integrity(algorithm: AuthAlgorithm) -> &'static str {
    match algorithm {
        AuthAlgorithm::Sha1 => "sha1",
        AuthAlgorithm::Sha256 => "sha2_256",
        AuthAlgorithm::Sha384 => "sha2_384",
        AuthAlgorithm::Sha512 => "sha2_512",
        AuthAlgorithm::AesXcbc => "aes_xcbc",
        AuthAlgorithm::AesCmac => "aes_cmac",
    }
}

/// Libreswan name of a Diffie-Hellman group; `None` where Libreswan 4 has none (see
/// `capability::libreswan_has_group`).
pub fn group(group: PfsGroup) -> Option<&'static str> {
    if !capability::libreswan_has_group(group) {
        return None;
    }
    Some(match group {
        PfsGroup::Group19 => "dh19",
        PfsGroup::Group20 => "dh20",
        PfsGroup::Group21 => "dh21",
        PfsGroup::Group31 => "dh31",
        modp => return modp.modp_name(),
    })
}

/// The group's name; `capability` refused the groups without one before this is asked.
fn dh(pfs: PfsGroup) -> &'static str {
    group(pfs).unwrap_or("unsupported")
}

/// `ike=`: `<cipher>-<integrity>;<dh>` (with an AEAD cipher the integrity algorithm is the
/// PRF), after `capability` confirmed Libreswan can negotiate it.
pub fn ike_proposal(policy: &IkePolicy) -> Result<String, Unsupported> {
    capability::libreswan_ike(policy)?;
    Ok(format!(
        "{}-{};{}",
        cipher(policy.encryption_algorithm),
        integrity(policy.auth_algorithm),
        dh(policy.pfs)
    ))
}

/// `phase2alg=`: ESP `<cipher>-<integrity>;<pfs>` (AEAD: `<cipher>;<pfs>`), AH
/// `<integrity>;<pfs>`.
pub fn child_proposal(policy: &IpsecPolicy, version: IkeVersion) -> Result<String, Unsupported> {
    capability::libreswan_child(policy, version)?;
    let (enc, auth, pfs) = (
        cipher(policy.encryption_algorithm),
        integrity(policy.auth_algorithm),
        dh(policy.pfs),
    );
    Ok(match policy.transform_protocol {
        TransformProtocol::Ah => format!("{auth};{pfs}"),
        _ if policy.encryption_algorithm.is_aead() => format!("{enc};{pfs}"),
        _ => format!("{enc}-{auth};{pfs}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pluto_names_follow_the_reference_table() {
        assert_eq!(cipher(EncryptionAlgorithm::Aes256Gcm16), "aes_gcm_c256");
        assert_eq!(cipher(EncryptionAlgorithm::Aes128Ccm8), "aes_ccm_a128");
        assert_eq!(cipher(EncryptionAlgorithm::Aes192Ccm12), "aes_ccm_b192");
        assert_eq!(cipher(EncryptionAlgorithm::Aes192Ctr), "aes_ctr192");
        assert_eq!(cipher(EncryptionAlgorithm::Aes128), "aes128");
        assert_eq!(integrity(AuthAlgorithm::Sha384), "sha2_384");
        assert_eq!(group(PfsGroup::Group31), Some("dh31"));
        assert_eq!(group(PfsGroup::Group22), None);
    }
}
