//! What a certificate far end (`auth_mode` `cert`) works with, the same in every format:
//! the names it gives its credentials and the vpnaas project's CA. The far end's own
//! certificate and key are not vpnaas's to keep (`POST …/peer-credentials` hands them
//! out once): the downloads name them (`vpnaas-peer`) and say how to install them, as
//! they leave a placeholder for a pre-shared key. The project's CA is public (shown on
//! the VPN service as `ca_certificate`): it is written inline where the device takes a
//! CA in its configuration, re-encoded from the parsed certificate so no character of it
//! can be anything but base64.

use base64::Engine as _;
use openssl::x509::X509;

use super::Unsupported;

/// The far end's certificate, key and PKCS#12 bundle of both: the name its device knows
/// them by (NSS nickname, VyOS PKI name, IOS trustpoint, Junos certificate-id).
pub const PEER: &str = "vpnaas-peer";
/// The vpnaas project's CA, as the far end's device names it.
pub const CA: &str = "vpnaas-ca";
/// The far end's certificate, PEM (`certificate` of `peer-credentials`).
pub const PEER_CERTIFICATE_FILE: &str = "vpnaas-peer.pem";
/// Its key, PEM (`private_key` of `peer-credentials`).
pub const PEER_KEY_FILE: &str = "vpnaas-peer.key";
/// Both as PKCS#12 (`pkcs12` of `peer-credentials`, base64-decoded).
pub const PEER_PKCS12_FILE: &str = "vpnaas-peer.p12";
/// The vpnaas project's CA certificate, PEM.
pub const CA_FILE: &str = "vpnaas-ca.pem";

/// The vpnaas project's CA certificate, parsed.
#[derive(Debug, Clone)]
pub struct CaCertificate {
    der: Vec<u8>,
    subject: Vec<(String, String)>,
}

impl CaCertificate {
    /// The first certificate of `pem`.
    pub fn parse(pem: &str) -> Result<CaCertificate, Unsupported> {
        let cert = X509::from_pem(pem.as_bytes()).map_err(|e| {
            Unsupported::new("ca_certificate", format!("is not a certificate: {e}"))
        })?;
        let der = cert
            .to_der()
            .map_err(|e| Unsupported::new("ca_certificate", format!("cannot be encoded: {e}")))?;
        let subject = cert
            .subject_name()
            .entries()
            .map(|entry| {
                let name = entry.object().nid().short_name().unwrap_or("?").to_string();
                // A value that is not text is written as none, which the name refuses.
                let value = entry.data().to_string().unwrap_or_default();
                (name, value)
            })
            .collect();
        Ok(CaCertificate { der, subject })
    }

    /// Whether `pem` holds this certificate (among others).
    pub fn is_in(&self, pem: &str) -> bool {
        X509::stack_from_pem(pem.as_bytes()).is_ok_and(|stack| {
            stack
                .iter()
                .any(|cert| cert.to_der().is_ok_and(|der| der == self.der))
        })
    }

    /// The DER, base64, on one line (what VyOS's `pki ca … certificate` holds).
    pub fn base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.der)
    }

    /// The certificate as PEM, 64 base64 characters a line.
    pub fn pem(&self) -> String {
        let body = self.base64();
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in body.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }

    /// The subject as a distinguished name in certificate order (`O=vpnaas, CN=…`), when
    /// every part of it is made of letters, digits, spaces and `. - _ :` (so it can stand
    /// between quotes); `Err` names the CA.
    pub fn distinguished_name(&self) -> Result<String, Unsupported> {
        let safe = |text: &str| {
            !text.is_empty()
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || " .-_:".contains(c))
        };
        if self.subject.is_empty()
            || !self
                .subject
                .iter()
                .all(|(name, value)| safe(name) && safe(value))
        {
            return Err(Unsupported::new(
                "ca_certificate",
                "its subject holds characters a distinguished name is not written with here",
            ));
        }
        let parts: Vec<String> = self
            .subject
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        Ok(parts.join(", "))
    }
}

/// What a certificate far end works with.
#[derive(Debug, Clone)]
pub struct Certificates {
    /// The vpnaas project's CA, which issued our gateway's certificate: the far end
    /// trusts it for us.
    pub vpnaas_ca: CaCertificate,
    /// The far end's certificate comes from a PKI of its own (the connection's
    /// `peer_ca_certificate` is not the project's CA), not from `peer-credentials`.
    pub own_pki: bool,
}
