//! The far end as Libreswan's `ipsec.conf` and `ipsec.secrets` (and, for certificate
//! authentication, the vpnaas project's CA as `vpnaas-ca.pem`), one after the other, each
//! after a `# ==> FILE <==` line (a comment in both files). Every `key=value` line holds
//! a typed value: addresses and subnets are parsed types, identities pass the identity
//! grammar and get Libreswan's form, proposals come from the model's spellings after
//! `capability` confirmed Libreswan can negotiate them. The key is written
//! base64-encoded (`0s…`). With certificates the far end signs with ECDSA the key of NSS
//! nickname `vpnaas-peer` (imported from `peer-credentials`' PKCS#12) and trusts the
//! project's CA (imported with trust `CT,,`), as the vpnaas agent's own Libreswan does.

use std::fmt::Write as _;

use base64::Engine as _;
use vpnaas_model::spelling::libreswan as spelling;
use vpnaas_model::spelling::libreswan_conn::{self, Tunnel, Value};

use super::certificates::{CA, CA_FILE, Certificates, PEER, PEER_PKCS12_FILE};
use super::{FarEnd, Identity, PLACEHOLDER, Secret, Unsupported, header};

/// Libreswan's default NSS database (`ipsec import`'s default `--nssdir`).
const NSS_DB: &str = "sql:/var/lib/ipsec/nss";

fn identity(field: &'static str, id: &Identity) -> Result<String, Unsupported> {
    spelling::identity(id.as_str()).map_err(|reason| Unsupported::new(field, reason))
}

fn unsupported(error: spelling::Unsupported) -> Unsupported {
    Unsupported::new(error.field, error.to_string())
}

/// The `conn` section's lines: the far end initiates (`start`) when vpnaas only
/// responds, and otherwise waits for traffic or for vpnaas (`route`).
fn conn(far: &FarEnd) -> Result<Vec<(&'static str, Value)>, Unsupported> {
    let right_ca = match &far.certificates {
        // Its certificate is not from the CA of ours: name ours (else `rightca=%same`).
        Some(certificates) if certificates.own_pki => {
            Some(certificates.vpnaas_ca.distinguished_name()?)
        }
        _ => None,
    };
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
        certificate: far.certificates.as_ref().map(|_| PEER.to_string()),
        right_ca,
    };
    libreswan_conn::lines(&tunnel).map_err(unsupported)
}

/// How the far end's NSS database gets the credentials, as comment lines.
fn import_instructions(far: &FarEnd, certificates: &Certificates) -> String {
    let issued = if certificates.own_pki {
        format!(
            "your PKI's certificate and key as PKCS#12 with the friendly name {PEER} \
             (the connection trusts your CA for this device)"
        )
    } else {
        format!(
            "pkcs12 of POST /v2.0/vpn/ipsec-site-connections/{}/peer-credentials, \
             base64-decoded (password: its pkcs12_password; friendly name {PEER})",
            far.connection_id
        )
    };
    format!(
        "# certificates: pluto finds them in its NSS database ({NSS_DB} by default); \
         import them before adding the conn:\n\
         #   certutil -A -d {NSS_DB} -n {CA} -t CT,, -a -i {CA_FILE}\n\
         #     ({CA_FILE}: the last part of this download, the vpnaas project's CA, \
         which issued the vpnaas gateway's certificate)\n\
         #   ipsec import {PEER_PKCS12_FILE}\n\
         #     ({PEER_PKCS12_FILE}: {issued})\n"
    )
}

/// The far end's `ipsec.conf`, `ipsec.secrets` and, with certificates, `vpnaas-ca.pem`.
pub fn render(far: &FarEnd) -> Result<String, Unsupported> {
    if far.certificates.is_some() && far.ikev1() {
        return Err(Unsupported::new(
            "ike_version",
            "Libreswan implements no ECDSA signatures in IKEv1 (ipsec.conf(5), authby): \
             certificate authentication with it needs an IKEv2 policy",
        ));
    }
    let mut out = String::from("# ==> ipsec.conf <==\n");
    out.push_str(&header(far, "#"));
    if let Some(certificates) = &far.certificates {
        out.push_str(&import_instructions(far, certificates));
    }
    if far.ikev1() {
        // Libreswan 4 refuses IKEv1 connections unless allowed.
        out.push_str("config setup\n\tikev1-policy=accept\n\n");
    }
    let _ = writeln!(out, "conn {}", far.connection_id);
    for (key, value) in conn(far)? {
        let _ = writeln!(out, "\t{key}={value}");
    }
    out.push_str("\n# ==> ipsec.secrets <==\n");
    match &far.certificates {
        Some(certificates) => {
            let _ = writeln!(
                out,
                "# certificate authentication: no secret here, pluto signs with the key of \
                 {PEER} in its NSS database"
            );
            let _ = write!(
                out,
                "\n# ==> {CA_FILE} <==\n{}",
                certificates.vpnaas_ca.pem()
            );
        }
        None => secrets(far, &mut out)?,
    }
    Ok(out)
}

/// The pre-shared key's line (and, for the placeholder, a comment saying so).
fn secrets(far: &FarEnd, out: &mut String) -> Result<(), Unsupported> {
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
    Ok(())
}
