//! strongSwan spellings of the API's algorithms (reference §3.5) and the proposal strings
//! built from a connection's policies. Built only from closed enums: no tenant text.

use crate::enums::{AuthAlgorithm, EncryptionAlgorithm, PfsGroup, TransformProtocol};
use crate::policy::{IkePolicy, IpsecPolicy};

/// strongSwan name of an encryption algorithm.
pub fn encryption(algorithm: EncryptionAlgorithm) -> String {
    let text = algorithm.as_str();
    if algorithm == EncryptionAlgorithm::TripleDes {
        return "3des".into();
    }
    // "aes-256-gcm-16" → "aes256gcm16", "aes-128-ctr" → "aes128ctr", "aes-192" → "aes192"
    text.replace('-', "")
}

/// strongSwan name of an integrity algorithm.
pub fn integrity(algorithm: AuthAlgorithm) -> &'static str {
    match algorithm {
        AuthAlgorithm::Sha1 => "sha1",
        AuthAlgorithm::Sha256 => "sha256",
        AuthAlgorithm::Sha384 => "sha384",
        AuthAlgorithm::Sha512 => "sha512",
        AuthAlgorithm::AesXcbc => "aesxcbc",
        AuthAlgorithm::AesCmac => "aescmac",
    }
}

/// strongSwan name of a Diffie-Hellman group.
pub fn group(group: PfsGroup) -> &'static str {
    match group {
        PfsGroup::Group19 => "ecp256",
        PfsGroup::Group20 => "ecp384",
        PfsGroup::Group21 => "ecp521",
        PfsGroup::Group25 => "ecp192",
        PfsGroup::Group26 => "ecp224",
        PfsGroup::Group27 => "ecp224bp",
        PfsGroup::Group28 => "ecp256bp",
        PfsGroup::Group29 => "ecp384bp",
        PfsGroup::Group30 => "ecp512bp",
        PfsGroup::Group31 => "curve25519",
        // Every other group is a MODP group, which has a name.
        modp => modp.modp_name().unwrap_or_default(),
    }
}

/// The IKE proposal: AEAD ciphers take the integrity algorithm as PRF only.
pub fn ike_proposal(policy: &IkePolicy) -> String {
    let (enc, auth, dh) = (
        encryption(policy.encryption_algorithm),
        integrity(policy.auth_algorithm),
        group(policy.pfs),
    );
    if policy.encryption_algorithm.is_aead() {
        format!("{enc}-prf{auth}-{dh}")
    } else {
        format!("{enc}-{auth}-{dh}")
    }
}

/// The ESP or AH proposal of the child SA, with its PFS group.
pub fn child_proposal(policy: &IpsecPolicy) -> String {
    let (enc, auth, pfs) = (
        encryption(policy.encryption_algorithm),
        integrity(policy.auth_algorithm),
        group(policy.pfs),
    );
    match policy.transform_protocol {
        TransformProtocol::Ah => format!("{auth}-{pfs}"),
        _ if policy.encryption_algorithm.is_aead() => format!("{enc}-{pfs}"),
        _ => format!("{enc}-{auth}-{pfs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charon_names_follow_the_reference_table() {
        assert_eq!(encryption(EncryptionAlgorithm::Aes256Gcm16), "aes256gcm16");
        assert_eq!(encryption(EncryptionAlgorithm::Aes128Ccm8), "aes128ccm8");
        assert_eq!(encryption(EncryptionAlgorithm::Aes192Ctr), "aes192ctr");
        assert_eq!(encryption(EncryptionAlgorithm::Aes128), "aes128");
        assert_eq!(group(PfsGroup::Group22), "modp1024s160");
        assert_eq!(group(PfsGroup::Group31), "curve25519");
    }
}
