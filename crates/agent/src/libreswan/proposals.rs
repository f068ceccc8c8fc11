//! Libreswan spellings of the API's algorithms (reference §3.5, as Libreswan 4 accepts
//! them) and the `ike=` / `phase2alg=` strings of a connection. Built only from closed
//! enums: no tenant text. Algorithms Libreswan 4 cannot negotiate are an error naming the
//! policy field, never a string pluto would reject later.

use vpnaas_model::enums::{
    AuthAlgorithm, EncryptionAlgorithm, IkeVersion, PfsGroup, TransformProtocol,
};
use vpnaas_model::policy::{IkePolicy, IpsecPolicy};

/// A policy value this daemon cannot negotiate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Libreswan cannot negotiate {field} '{value}' {context}")]
pub struct Unsupported {
    /// The policy attribute.
    pub field: &'static str,
    /// Its value.
    pub value: &'static str,
    /// In IKE or in the child SA.
    pub context: &'static str,
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

/// Libreswan name of a Diffie-Hellman group; `None` where Libreswan 4 has none (modp1024
/// is not built in; groups 22–30 are not implemented).
pub fn group(group: PfsGroup) -> Option<&'static str> {
    Some(match group {
        PfsGroup::Group5 => "modp1536",
        PfsGroup::Group14 => "modp2048",
        PfsGroup::Group15 => "modp3072",
        PfsGroup::Group16 => "modp4096",
        PfsGroup::Group17 => "modp6144",
        PfsGroup::Group18 => "modp8192",
        PfsGroup::Group19 => "dh19",
        PfsGroup::Group20 => "dh20",
        PfsGroup::Group21 => "dh21",
        PfsGroup::Group31 => "dh31",
        _ => return None,
    })
}

fn dh(pfs: PfsGroup, context: &'static str) -> Result<&'static str, Unsupported> {
    group(pfs).ok_or(Unsupported {
        field: "pfs",
        value: pfs.as_str(),
        context,
    })
}

/// `ike=`: `<cipher>-<integrity>;<dh>` (with an AEAD cipher the integrity algorithm is the
/// PRF). IKE has no CCM and no AES-CMAC PRF; IKEv1 has no AEAD and no AES-XCBC PRF either.
pub fn ike_proposal(policy: &IkePolicy) -> Result<String, Unsupported> {
    const IKE: &str = "in IKE";
    const IKEV1: &str = "in IKEv1";
    let enc = policy.encryption_algorithm;
    let v1 = policy.ike_version == IkeVersion::V1;
    if v1 && enc.is_aead() {
        return Err(Unsupported {
            field: "encryption_algorithm",
            value: enc.as_str(),
            context: IKEV1,
        });
    }
    if v1 && policy.auth_algorithm == AuthAlgorithm::AesXcbc {
        return Err(Unsupported {
            field: "auth_algorithm",
            value: policy.auth_algorithm.as_str(),
            context: IKEV1,
        });
    }
    if enc.as_str().contains("-ccm-") {
        return Err(Unsupported {
            field: "encryption_algorithm",
            value: enc.as_str(),
            context: IKE,
        });
    }
    if policy.auth_algorithm == AuthAlgorithm::AesCmac {
        return Err(Unsupported {
            field: "auth_algorithm",
            value: policy.auth_algorithm.as_str(),
            context: IKE,
        });
    }
    Ok(format!(
        "{}-{};{}",
        cipher(enc),
        integrity(policy.auth_algorithm),
        dh(policy.pfs, IKE)?
    ))
}

/// `phase2alg=`: ESP `<cipher>-<integrity>;<pfs>` (AEAD: `<cipher>;<pfs>`), AH
/// `<integrity>;<pfs>`. IKEv1 quick mode has no curve25519 PFS.
pub fn child_proposal(policy: &IpsecPolicy, version: IkeVersion) -> Result<String, Unsupported> {
    if version == IkeVersion::V1 && policy.pfs == PfsGroup::Group31 {
        return Err(Unsupported {
            field: "pfs",
            value: policy.pfs.as_str(),
            context: "in an IKEv1 child SA",
        });
    }
    let (enc, auth, pfs) = (
        cipher(policy.encryption_algorithm),
        integrity(policy.auth_algorithm),
        dh(policy.pfs, "in the child SA")?,
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
    fn names_follow_the_reference_table() {
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
