//! The certificate authorities vpnaas keeps, one per project, and what they issue (a
//! vpnaas extension; Neutron knows only pre-shared keys): gateway certificates for VPN
//! services, and credentials for a peer that has no PKI of its own, handed out once.
//! Keys are EC P-256, which both strongSwan and Libreswan sign IKEv2 with; certificates
//! are made with OpenSSL (already what the HTTP client links). What a tenant hands in as
//! a peer's CA is read with `x509-parser`, which checks it without trusting it.

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509NameBuilder};
use vpnaas_model::certificate::{CertificateAuthority, PrivateKey};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
    OID_PKCS1_RSAENCRYPTION, OID_SIG_ED448, OID_SIG_ED25519,
};

/// How long a project's CA certificate is valid.
const CA_DAYS: u32 = 3650;
/// The smallest RSA key accepted in a peer's CA.
const MIN_RSA_BITS: usize = 2048;
/// The EKU IKE peers recognise (RFC 4945 `id-kp-ipsecIKE`), beside TLS server and client.
const IPSEC_IKE: &str = "1.3.6.1.5.5.7.3.17";

/// A PKI failure: OpenSSL refused (never carries key material).
#[derive(Debug, thiserror::Error)]
#[error("certificate authority: {0}")]
pub struct PkiError(#[from] ErrorStack);

/// A certificate issued with its key.
pub struct Issued {
    /// The certificate, PEM.
    pub certificate: String,
    /// Its key, PEM (PKCS#8).
    pub private_key: PrivateKey,
    /// When it expires, RFC 3339.
    pub not_after: String,
}

/// A project's new CA: a self-signed P-256 certificate valid for ten years.
pub fn new_authority(project_id: &str) -> Result<CertificateAuthority, PkiError> {
    let key = new_key()?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "vpnaas")?;
    name.append_entry_by_nid(Nid::COMMONNAME, &format!("vpnaas CA {project_id}"))?;
    let name = name.build();
    let (mut cert, not_after) = builder(i64::from(CA_DAYS) * 86_400)?;
    cert.set_subject_name(&name)?;
    cert.set_issuer_name(&name)?;
    cert.set_pubkey(&key)?;
    cert.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
    cert.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    let ski = SubjectKeyIdentifier::new().build(&cert.x509v3_context(None, None))?;
    cert.append_extension(ski)?;
    cert.sign(&key, MessageDigest::sha256())?;
    Ok(CertificateAuthority {
        id: project_id.to_string(),
        tenant_id: project_id.to_string(),
        project_id: project_id.to_string(),
        certificate: pem(&cert.build())?,
        private_key: private_pem(&key)?,
        not_after,
    })
}

/// A certificate for `identities` (the first is its common name, all are
/// subjectAltNames), valid for `lifetime_secs`, signed by `ca`; with `key` it certifies
/// that key (a renewal), else a new one.
pub fn issue(
    ca: &CertificateAuthority,
    identities: &[String],
    key: Option<&PrivateKey>,
    lifetime_secs: i64,
) -> Result<Issued, PkiError> {
    let ca_cert = X509::from_pem(ca.certificate.as_bytes())?;
    let ca_key = PKey::private_key_from_pem(ca.private_key.expose().as_bytes())?;
    let key = match key {
        Some(key) => PKey::private_key_from_pem(key.expose().as_bytes())?,
        None => new_key()?,
    };
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "vpnaas")?;
    let common_name = identities.first().map_or("vpnaas", |id| san_value(id));
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    let (mut cert, not_after) = builder(lifetime_secs)?;
    cert.set_subject_name(&name.build())?;
    cert.set_issuer_name(ca_cert.subject_name())?;
    cert.set_pubkey(&key)?;
    cert.append_extension(BasicConstraints::new().critical().build()?)?;
    cert.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
    cert.append_extension(
        ExtendedKeyUsage::new()
            .server_auth()
            .client_auth()
            .other(IPSEC_IKE)
            .build()?,
    )?;
    let mut names = SubjectAlternativeName::new();
    for identity in identities {
        add_name(&mut names, identity);
    }
    let context = cert.x509v3_context(Some(&ca_cert), None);
    let names = names.build(&context)?;
    let akid = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&cert.x509v3_context(Some(&ca_cert), None))?;
    cert.append_extension(names)?;
    cert.append_extension(akid)?;
    cert.sign(&ca_key, MessageDigest::sha256())?;
    Ok(Issued {
        certificate: pem(&cert.build())?,
        private_key: private_pem(&key)?,
        not_after,
    })
}

/// The PKCS#12 bundle (key, certificate and CA) of an issued certificate, protected by
/// `password` (AES-256 and SHA-256, as OpenSSL 3 writes by default). Its friendly name is
/// the one the peer configurations give the far end's certificate (an NSS nickname once
/// imported).
pub fn pkcs12(issued: &Issued, ca_pem: &str, password: &str) -> Result<Vec<u8>, PkiError> {
    let key = PKey::private_key_from_pem(issued.private_key.expose().as_bytes())?;
    let cert = X509::from_pem(issued.certificate.as_bytes())?;
    let mut chain = openssl::stack::Stack::new()?;
    chain.push(X509::from_pem(ca_pem.as_bytes())?)?;
    let bundle = Pkcs12::builder()
        .name(crate::peer_config::certificates::PEER)
        .pkey(&key)
        .cert(&cert)
        .ca(chain)
        .build2(password)?;
    Ok(bundle.to_der()?)
}

/// A random password for a PKCS#12 bundle: 128 bits, hex.
pub fn random_password() -> Result<String, PkiError> {
    let mut bytes = [0u8; 16];
    openssl::rand::rand_bytes(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A certificate's SHA-256 fingerprint, colon-separated upper-case hex (as `openssl x509
/// -fingerprint` prints it).
pub fn fingerprint(certificate: &str) -> Result<String, PkiError> {
    let digest = X509::from_pem(certificate.as_bytes())?.digest(MessageDigest::sha256())?;
    Ok(digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

/// Seconds until a certificate expires (negative once it has).
pub fn seconds_left(certificate: &str) -> Result<i64, PkiError> {
    let cert = X509::from_pem(certificate.as_bytes())?;
    let diff = Asn1Time::days_from_now(0)?.diff(cert.not_after())?;
    Ok(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}

/// Why `pem` cannot be trusted as a peer's CA, if it cannot: each certificate in it must
/// parse, be a CA (basicConstraints CA:TRUE), be within its validity period and hold a
/// key of sane size (RSA ≥ 2048 bits; EC P-256, P-384 or P-521; Ed25519, Ed448).
pub fn peer_ca_problem(pem: &str) -> Option<String> {
    let mut seen = 0;
    for (n, block) in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()).enumerate() {
        let which = if n == 0 {
            "the certificate".to_string()
        } else {
            format!("certificate {}", n + 1)
        };
        let Ok(block) = block else {
            return Some(format!("{which} is not valid PEM"));
        };
        let Ok(cert) = block.parse_x509() else {
            return Some(format!("{which} is not an X.509 certificate"));
        };
        if !cert.is_ca() {
            return Some(format!(
                "{which} is not a CA certificate (basicConstraints CA:TRUE)"
            ));
        }
        if !cert.validity().is_valid() {
            return Some(format!(
                "{which} is not valid now (valid from {} to {})",
                cert.validity().not_before,
                cert.validity().not_after
            ));
        }
        if let Some(problem) = key_problem(cert.public_key()) {
            return Some(format!("{which} {problem}"));
        }
        seen += 1;
    }
    (seen == 0).then(|| "holds no certificate".to_string())
}

fn key_problem(key: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Option<String> {
    let algorithm = &key.algorithm.algorithm;
    if *algorithm == OID_PKCS1_RSAENCRYPTION {
        let bits = key.parsed().map(|k| k.key_size()).unwrap_or(0);
        return (bits < MIN_RSA_BITS)
            .then(|| format!("has an RSA key of {bits} bits (at least {MIN_RSA_BITS})"));
    }
    if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = key
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok());
        let known = [OID_EC_P256, OID_NIST_EC_P384, OID_NIST_EC_P521];
        return match curve {
            Some(curve) if known.contains(&curve) => None,
            _ => Some("has an EC key on a curve other than P-256, P-384 or P-521".into()),
        };
    }
    if *algorithm == OID_SIG_ED25519 || *algorithm == OID_SIG_ED448 {
        return None;
    }
    Some("has a key of an unsupported type (RSA, EC or EdDSA)".into())
}

/// The certificate builder every issue starts from: version 3, a random serial, valid
/// from a minute ago (clocks differ) for `lifetime_secs`; also returns its expiry.
fn builder(lifetime_secs: i64) -> Result<(X509Builder, String), PkiError> {
    let mut cert = X509Builder::new()?;
    cert.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    cert.set_serial_number(Asn1Integer::from_bn(&serial)?.as_ref())?;
    let now = now_unix();
    cert.set_not_before(Asn1Time::from_unix(now - 60)?.as_ref())?;
    let expiry = now + lifetime_secs;
    cert.set_not_after(Asn1Time::from_unix(expiry)?.as_ref())?;
    Ok((cert, rfc3339(expiry)))
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn new_key() -> Result<PKey<Private>, PkiError> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

fn pem(cert: &X509) -> Result<String, PkiError> {
    Ok(String::from_utf8_lossy(&cert.to_pem()?).into_owned())
}

fn private_pem(key: &PKey<Private>) -> Result<PrivateKey, PkiError> {
    let bytes = zeroize::Zeroizing::new(key.private_key_to_pem_pkcs8()?);
    Ok(PrivateKey::new(
        String::from_utf8_lossy(&bytes).into_owned(),
    ))
}

/// An IKE identity as it appears in a certificate: an address as such, `@host` as `host`.
fn san_value(identity: &str) -> &str {
    identity.strip_prefix('@').unwrap_or(identity)
}

/// Adds an IKE identity as the subjectAltName IKE daemons match it against: an IP address,
/// `user@host` an e-mail address, anything else (`@host`, `host`, a key id) a DNS name.
fn add_name(names: &mut SubjectAlternativeName, identity: &str) {
    if identity.parse::<std::net::IpAddr>().is_ok() {
        names.ip(identity);
    } else if identity.contains('@') && !identity.starts_with('@') {
        names.email(identity);
    } else {
        names.dns(san_value(identity));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_ca_issues_gateway_certificates_that_verify_and_renew_on_the_same_key() {
        let ca = new_authority("p1").expect("CA");
        assert!(peer_ca_problem(&ca.certificate).is_none());
        let ids = vec!["203.0.113.2".to_string(), "@gw.example".to_string()];
        let first = issue(&ca, &ids, None, 3600).expect("issued");
        let cert = X509::from_pem(first.certificate.as_bytes()).expect("pem");
        let ca_key = X509::from_pem(ca.certificate.as_bytes())
            .and_then(|c| c.public_key())
            .expect("CA key");
        assert!(cert.verify(&ca_key).expect("verifies"));
        let names: Vec<String> = cert
            .subject_alt_names()
            .expect("SANs")
            .iter()
            .map(|n| {
                n.ipaddress()
                    .map(|ip| format!("{ip:?}"))
                    .or_else(|| n.dnsname().map(String::from))
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(names, ["[203, 0, 113, 2]", "gw.example"]);
        let renewed = issue(&ca, &ids, Some(&first.private_key), 7200).expect("renewed");
        assert_eq!(renewed.private_key, first.private_key);
        assert_ne!(renewed.certificate, first.certificate);
        let left = seconds_left(&renewed.certificate).expect("expiry");
        assert!((7100..=7200).contains(&left), "{left}");
        assert_eq!(fingerprint(&first.certificate).expect("fp").len(), 95);
    }

    #[test]
    fn a_peer_ca_must_be_a_ca_valid_now_with_a_sane_key() {
        let ca = new_authority("p1").expect("CA");
        let leaf = issue(&ca, &["peer".to_string()], None, 3600).expect("leaf");
        let problem = peer_ca_problem(&leaf.certificate).expect("refused");
        assert!(problem.contains("not a CA certificate"), "{problem}");
        let problem = peer_ca_problem(&expired_ca()).expect("refused");
        assert!(problem.contains("not valid now"), "{problem}");
        assert_eq!(
            peer_ca_problem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            Some("the certificate is not an X.509 certificate".into())
        );
    }

    /// A self-signed CA certificate that expired a minute ago.
    fn expired_ca() -> String {
        let key = new_key().expect("key");
        let mut name = X509NameBuilder::new().expect("name");
        name.append_entry_by_nid(Nid::COMMONNAME, "old CA")
            .expect("cn");
        let name = name.build();
        let (mut cert, _) = builder(-30).expect("builder");
        cert.set_subject_name(&name).expect("subject");
        cert.set_issuer_name(&name).expect("issuer");
        cert.set_pubkey(&key).expect("key");
        let ca = BasicConstraints::new().critical().ca().build().expect("bc");
        cert.append_extension(ca).expect("bc");
        cert.sign(&key, MessageDigest::sha256()).expect("signed");
        pem(&cert.build()).expect("pem")
    }

    #[test]
    fn a_peer_bundle_opens_with_its_password() {
        let ca = new_authority("p1").expect("CA");
        let issued = issue(&ca, &["peer@example.org".to_string()], None, 3600).expect("leaf");
        let password = random_password().expect("password");
        let der = pkcs12(&issued, &ca.certificate, &password).expect("p12");
        let parsed = Pkcs12::from_der(&der)
            .and_then(|p| p.parse2(&password))
            .expect("opens");
        assert!(parsed.pkey.is_some() && parsed.cert.is_some());
        assert_eq!(parsed.ca.map(|c| c.len()), Some(1));
    }
}
