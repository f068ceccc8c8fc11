//! The far end as Cisco IOS / IOS XE global configuration: an IKEv2 proposal, policy,
//! keyring and profile, a transform set, an access list per pair of CIDRs and a crypto
//! map (policy-based, IPv4); with certificates, trustpoints for the far end's own
//! certificate and for the project's CA instead of the keyring. Only the values Cisco's
//! documentation names are written; anything else (IKEv1, IPv6, AH, ciphers and groups
//! IOS lacks, lifetimes and DPD intervals outside the ranges IOS takes) is
//! [`Unsupported`]. The justification of every line is in `tests/golden/cisco-ios.md`
//! and `tests/golden/cisco-ios-cert.md`.

use std::net::IpAddr;

use ipnet::IpNet;
use vpnaas_model::enums::{
    AuthAlgorithm, EncapsulationMode, EncryptionAlgorithm, IkeVersion, PfsGroup, TransformProtocol,
};

use super::certificates::{CA, Certificates, PEER, PEER_PKCS12_FILE};
use super::{FarEnd, Identity, Unsupported, cli_safe_secret, within};

fn ike_encryption(algorithm: EncryptionAlgorithm) -> Result<&'static str, Unsupported> {
    Ok(match algorithm {
        EncryptionAlgorithm::Aes128 => "aes-cbc-128",
        EncryptionAlgorithm::Aes192 => "aes-cbc-192",
        EncryptionAlgorithm::Aes256 => "aes-cbc-256",
        EncryptionAlgorithm::Aes128Gcm16 => "aes-gcm-128",
        EncryptionAlgorithm::Aes256Gcm16 => "aes-gcm-256",
        other => return Err(unsupported("encryption_algorithm", other.as_str())),
    })
}

fn esp_encryption(algorithm: EncryptionAlgorithm) -> Result<&'static str, Unsupported> {
    Ok(match algorithm {
        EncryptionAlgorithm::Aes128 => "esp-aes 128",
        EncryptionAlgorithm::Aes192 => "esp-aes 192",
        EncryptionAlgorithm::Aes256 => "esp-aes 256",
        EncryptionAlgorithm::Aes128Gcm16 => "esp-gcm 128",
        EncryptionAlgorithm::Aes256Gcm16 => "esp-gcm 256",
        other => return Err(unsupported("encryption_algorithm", other.as_str())),
    })
}

fn integrity(algorithm: AuthAlgorithm) -> Result<&'static str, Unsupported> {
    Ok(match algorithm {
        AuthAlgorithm::Sha1 => "sha1",
        AuthAlgorithm::Sha256 => "sha256",
        AuthAlgorithm::Sha384 => "sha384",
        AuthAlgorithm::Sha512 => "sha512",
        other => return Err(unsupported("auth_algorithm", other.as_str())),
    })
}

fn esp_integrity(algorithm: AuthAlgorithm) -> Result<&'static str, Unsupported> {
    Ok(match algorithm {
        AuthAlgorithm::Sha1 => "esp-sha-hmac",
        AuthAlgorithm::Sha256 => "esp-sha256-hmac",
        AuthAlgorithm::Sha384 => "esp-sha384-hmac",
        AuthAlgorithm::Sha512 => "esp-sha512-hmac",
        other => return Err(unsupported("auth_algorithm", other.as_str())),
    })
}

/// The group number of an IKEv2 proposal's `group`: the groups Cisco's IOS XE data model
/// names there (1, 2, 14, 15, 16, 19, 20, 21, 24; no 5).
fn ike_group(group: PfsGroup) -> Result<&'static str, Unsupported> {
    use PfsGroup as G;
    match group {
        G::Group2
        | G::Group14
        | G::Group15
        | G::Group16
        | G::Group19
        | G::Group20
        | G::Group21
        | G::Group24 => Ok(group.as_str().trim_start_matches("group")),
        other => Err(unsupported("pfs", other.as_str())),
    }
}

/// `set pfs`'s group: the groups Cisco's IOS XE data model names there (group1, 2, 5, 14,
/// 15, 16, 19, 20, 21, 24).
fn pfs_group(group: PfsGroup) -> Result<&'static str, Unsupported> {
    use PfsGroup as G;
    match group {
        G::Group2
        | G::Group5
        | G::Group14
        | G::Group15
        | G::Group16
        | G::Group19
        | G::Group20
        | G::Group21
        | G::Group24 => Ok(group.as_str()),
        other => Err(unsupported("pfs", other.as_str())),
    }
}

fn unsupported(field: &'static str, value: &str) -> Unsupported {
    Unsupported::new(
        field,
        format!("'{value}' is not written in the cisco-ios format"),
    )
}

fn ipv4(field: &'static str, address: IpAddr) -> Result<IpAddr, Unsupported> {
    match address {
        IpAddr::V4(_) => Ok(address),
        IpAddr::V6(_) => Err(Unsupported::new(
            field,
            "the cisco-ios format is written for IPv4 tunnels only",
        )),
    }
}

/// `address A` with the host mask for an address identity, `fqdn NAME` for a host name
/// (`@name` without its `@`), `email USER@DOMAIN` otherwise.
fn identity(id: &Identity, host_mask: bool) -> String {
    let text = id.as_str();
    match (id.address(), text.strip_prefix('@')) {
        (Some(address), _) if host_mask => format!("address {address} 255.255.255.255"),
        (Some(address), _) => format!("address {address}"),
        (None, Some(name)) => format!("fqdn {name}"),
        (None, None) if text.contains('@') => format!("email {text}"),
        (None, None) => format!("fqdn {text}"),
    }
}

/// `A.B.C.D W.X.Y.Z`: a network and its wildcard mask.
fn network(net: IpNet) -> String {
    format!("{} {}", net.network(), net.hostmask())
}

/// The far end's IOS configuration: with certificates, the trustpoints first (the
/// profile names them).
pub fn render(far: &FarEnd) -> Result<String, Unsupported> {
    if far.ike.ike_version != IkeVersion::V2 {
        return Err(Unsupported::new(
            "ike_version",
            "the cisco-ios format is written for IKEv2",
        ));
    }
    if far.ipsec.transform_protocol != TransformProtocol::Esp {
        return Err(Unsupported::new(
            "transform_protocol",
            "the cisco-ios format writes ESP transform sets only",
        ));
    }
    let remote = ipv4("peer_address", far.remote_address)?;
    ipv4("peer_address", far.local_address)?;
    let name = far.short_name();
    let mut lines = match &far.certificates {
        Some(certificates) => trustpoints(far, certificates),
        None => Vec::new(),
    };
    lines.extend(proposal(far, &name)?);
    if far.certificates.is_none() {
        lines.extend([
            format!("crypto ikev2 keyring {name}"),
            format!(" peer {name}"),
            format!("  address {remote}"),
            format!("  pre-shared-key {}", cli_safe_secret(far)?),
        ]);
    }
    lines.extend(profile(far, &name)?);
    lines.extend(crypto_map(far, &name, remote)?);
    Ok(lines.join("\n") + "\n")
}

/// The trustpoint of the far end's own certificate comes from importing its PKCS#12 (a
/// comment line: the file and its password are the operator's); the project's CA gets a
/// trustpoint of its own, filled by pasting it in the exchange `crypto pki authenticate`
/// opens. vpnaas publishes no revocation list, so no trustpoint checks one.
fn trustpoints(far: &FarEnd, certificates: &Certificates) -> Vec<String> {
    let bundle = if certificates.own_pki {
        "your PKI's certificate and key as PKCS#12 (an RSA key signs with authentication \
         local rsa-sig instead of ecdsa-sig below)"
            .to_string()
    } else {
        format!(
            "pkcs12 of POST /v2.0/vpn/ipsec-site-connections/{}/peer-credentials, \
             base64-decoded",
            far.connection_id
        )
    };
    let mut lines = vec![
        format!(
            "! certificates: copy {PEER_PKCS12_FILE} ({bundle}) to flash:, then, before these \
             commands: crypto pki import {PEER} pkcs12 flash:{PEER_PKCS12_FILE} password \
             <its pkcs12_password>"
        ),
        format!("crypto pki trustpoint {CA}"),
        " enrollment terminal".to_string(),
        " revocation-check none".to_string(),
        "! the vpnaas project's CA (it issued the vpnaas gateway's certificate), pasted \
         where crypto pki authenticate asks for it, ended by quit and accepted with yes"
            .to_string(),
        format!("crypto pki authenticate {CA}"),
    ];
    lines.extend(certificates.vpnaas_ca.pem().lines().map(str::to_string));
    lines.extend(["quit".to_string(), "yes".to_string()]);
    lines
}

fn proposal(far: &FarEnd, name: &str) -> Result<Vec<String>, Unsupported> {
    let ike = &far.ike;
    let prf = integrity(ike.auth_algorithm)?;
    Ok(vec![
        format!("crypto ikev2 proposal {name}"),
        format!(" encryption {}", ike_encryption(ike.encryption_algorithm)?),
        if ike.encryption_algorithm.is_aead() {
            format!(" prf {prf}")
        } else {
            format!(" integrity {prf}")
        },
        format!(" group {}", ike_group(ike.pfs)?),
        format!("crypto ikev2 policy {name}"),
        format!(" proposal {name}"),
    ])
}

/// The IKEv2 profile: pre-shared keys from the keyring, or ECDSA signatures (the
/// certificates vpnaas issues hold P-256 keys) with the certificate of `vpnaas-peer`,
/// verifying ours against the project's CA.
fn profile(far: &FarEnd, name: &str) -> Result<Vec<String>, Unsupported> {
    let mut lines = vec![
        format!("crypto ikev2 profile {name}"),
        format!(" match identity remote {}", identity(&far.remote_id, true)),
        format!(" identity local {}", identity(&far.local_id, false)),
    ];
    if far.certificates.is_some() {
        lines.extend([
            " authentication remote ecdsa-sig".to_string(),
            " authentication local ecdsa-sig".to_string(),
            format!(" pki trustpoint {PEER} sign"),
            format!(" pki trustpoint {CA} verify"),
        ]);
    } else {
        lines.extend([
            " authentication remote pre-share".to_string(),
            " authentication local pre-share".to_string(),
            format!(" keyring local {name}"),
        ]);
    }
    lines.push(format!(
        " lifetime {}",
        within(
            "IOS",
            "lifetime",
            "an IKEv2 SA lifetime",
            far.ike.lifetime.value,
            (120, 86400)
        )?
    ));
    if far.dpd_on() {
        // IOS retries an unanswered probe every 2 seconds; `on-demand` probes only when
        // traffic is sent and nothing came back, as vpnaas's DPD does.
        let interval = within("IOS", "dpd", "a DPD interval", far.dpd.interval, (10, 3600))?;
        lines.push(format!(" dpd {interval} 2 on-demand"));
    }
    Ok(lines)
}

/// The transform set, the access list of the CIDR pairs and the crypto map.
fn crypto_map(far: &FarEnd, name: &str, remote: IpAddr) -> Result<Vec<String>, Unsupported> {
    let ipsec = &far.ipsec;
    let mode = match ipsec.encapsulation_mode {
        EncapsulationMode::Tunnel => "tunnel",
        EncapsulationMode::Transport => "transport",
    };
    let esp = if ipsec.encryption_algorithm.is_aead() {
        esp_encryption(ipsec.encryption_algorithm)?.to_string()
    } else {
        format!(
            "{} {}",
            esp_encryption(ipsec.encryption_algorithm)?,
            esp_integrity(ipsec.auth_algorithm)?
        )
    };
    let mut lines = vec![
        format!("crypto ipsec transform-set {name} {esp}"),
        format!(" mode {mode}"),
        format!("ip access-list extended {name}"),
    ];
    for (local, remote_net) in far.pairs() {
        lines.push(format!(
            " permit ip {} {}",
            network(local),
            network(remote_net)
        ));
    }
    lines.extend([
        format!("crypto map {name} 10 ipsec-isakmp"),
        format!(" set peer {remote}"),
        format!(" set transform-set {name}"),
        format!(" set pfs {}", pfs_group(ipsec.pfs)?),
        format!(
            " set security-association lifetime seconds {}",
            within(
                "IOS",
                "lifetime",
                "an IPsec SA lifetime",
                ipsec.lifetime.value,
                (120, 2_592_000)
            )?
        ),
        format!(" set ikev2-profile {name}"),
        format!(" match address {name}"),
        format!(
            "! apply on the interface holding {}: crypto map {name}",
            far.local_address
        ),
    ]);
    Ok(lines)
}
