//! The far end as Junos `set` commands for an SRX: IKE proposal, policy and gateway,
//! IPsec proposal, policy and a route-based VPN bound to `st0.0` with one traffic
//! selector per pair of CIDRs; with certificates, the project's CA profile and ECDSA
//! signatures with the local certificate `vpnaas-peer` instead of the key. Only the
//! values Juniper's documentation names are written; anything else (groups, intervals
//! and lifetimes outside its lists and ranges, CIDR pairs a traffic selector cannot
//! carry) is [`Unsupported`]. The key is written `hexadecimal` (its bytes in hex), so no
//! character of it can end its line. The external interface (`ge-0/0/0.0`) and the
//! tunnel interface (`st0.0`) are the device's: the download names the usual ones. The
//! justification of every line is in `tests/golden/juniper-srx.md` and
//! `tests/golden/juniper-srx-cert.md`.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipnet::IpNet;
use vpnaas_model::enums::{
    AuthAlgorithm, EncapsulationMode, EncryptionAlgorithm, IkeVersion, PfsGroup, Phase1Mode,
    TransformProtocol,
};

use super::certificates::{CA, CA_FILE, Certificates, PEER, PEER_CERTIFICATE_FILE, PEER_KEY_FILE};
use super::{FarEnd, Identity, PLACEHOLDER, Secret, Unsupported, within};

/// The interface facing the vpnaas gateway, and the tunnel interface.
const EXTERNAL_INTERFACE: &str = "ge-0/0/0.0";
const TUNNEL_INTERFACE: &str = "st0.0";

fn unsupported(field: &'static str, value: &str) -> Unsupported {
    Unsupported::new(
        field,
        format!("'{value}' is not written in the juniper-srx format"),
    )
}

fn cbc(algorithm: EncryptionAlgorithm) -> Option<&'static str> {
    match algorithm {
        EncryptionAlgorithm::Aes128 => Some("aes-128-cbc"),
        EncryptionAlgorithm::Aes192 => Some("aes-192-cbc"),
        EncryptionAlgorithm::Aes256 => Some("aes-256-cbc"),
        _ => None,
    }
}

fn esp_encryption(algorithm: EncryptionAlgorithm) -> Result<&'static str, Unsupported> {
    match algorithm {
        EncryptionAlgorithm::Aes128Gcm16 => Ok("aes-128-gcm"),
        EncryptionAlgorithm::Aes256Gcm16 => Ok("aes-256-gcm"),
        other => cbc(other).ok_or_else(|| unsupported("encryption_algorithm", other.as_str())),
    }
}

fn ike_hash(algorithm: AuthAlgorithm) -> Result<&'static str, Unsupported> {
    match algorithm {
        AuthAlgorithm::Sha1 => Ok("sha1"),
        AuthAlgorithm::Sha256 => Ok("sha-256"),
        AuthAlgorithm::Sha384 => Ok("sha-384"),
        other => Err(unsupported("auth_algorithm", other.as_str())),
    }
}

fn esp_hash(algorithm: AuthAlgorithm) -> Result<&'static str, Unsupported> {
    match algorithm {
        AuthAlgorithm::Sha1 => Ok("hmac-sha1-96"),
        AuthAlgorithm::Sha256 => Ok("hmac-sha-256-128"),
        other => Err(unsupported("auth_algorithm", other.as_str())),
    }
}

/// `dh-group` of an IKE proposal: Juniper's list for `[edit security ike proposal]`
/// (group1, 2, 5, 14, 15, 16, 19, 20, 21, 24).
fn ike_group(group: PfsGroup) -> Result<&'static str, Unsupported> {
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

/// `perfect-forward-secrecy keys`: the groups Juniper's `[edit security ipsec]` reference
/// lists there (group1, 2, 5, 14).
fn pfs_group(group: PfsGroup) -> Result<&'static str, Unsupported> {
    use PfsGroup as G;
    match group {
        G::Group2 | G::Group5 | G::Group14 => Ok(group.as_str()),
        other => Err(unsupported("pfs", other.as_str())),
    }
}

/// The traffic selectors: at most 200 per VPN, each of one address family, none towards
/// 0.0.0.0/0 or ::/0 (Junos's limits on site-to-site traffic selectors).
fn traffic_selectors(far: &FarEnd) -> Result<Vec<(IpNet, IpNet)>, Unsupported> {
    let pairs = far.pairs();
    if pairs.len() > 200 {
        return Err(Unsupported::new(
            "peer_cidrs",
            format!(
                "{} pairs of CIDRs: Junos takes at most 200 traffic selectors per VPN",
                pairs.len()
            ),
        ));
    }
    for (local, remote) in &pairs {
        if local.addr().is_ipv4() != remote.addr().is_ipv4() {
            return Err(Unsupported::new(
                "peer_cidrs",
                format!("{local} and {remote}: a Junos traffic selector holds one address family"),
            ));
        }
        if remote.prefix_len() == 0 {
            return Err(Unsupported::new(
                "local_cidrs",
                format!("{remote}: Junos takes no site-to-site traffic selector towards it"),
            ));
        }
    }
    Ok(pairs)
}

/// `inet A`, `inet6 A`, `hostname NAME` (`@name` without its `@`) or
/// `user-at-hostname USER@DOMAIN`.
fn identity(id: &Identity) -> String {
    let text = id.as_str();
    match (id.address(), text.strip_prefix('@')) {
        (Some(IpAddr::V4(a)), _) => format!("inet {a}"),
        (Some(IpAddr::V6(a)), _) => format!("inet6 {a}"),
        (None, Some(name)) => format!("hostname {name}"),
        (None, None) if text.contains('@') => format!("user-at-hostname {text}"),
        (None, None) => format!("hostname {text}"),
    }
}

fn secret(far: &FarEnd) -> String {
    match &far.secret {
        Secret::Included(psk) => {
            let mut hex = String::new();
            for byte in psk.expose().bytes() {
                let _ = write!(hex, "{byte:02x}");
            }
            format!("hexadecimal {hex}")
        }
        Secret::Placeholder => format!("ascii-text {PLACEHOLDER}"),
    }
}

/// Junos keeps certificates out of its configuration: comment lines say how the
/// operational mode loads the project's CA into its profile and the far end's own
/// certificate and key under the name the IKE policy uses. vpnaas publishes no revocation
/// list, so the profile checks none.
fn certificate_lines(far: &FarEnd, certificates: &Certificates) -> Vec<String> {
    let (source, key_note) = if certificates.own_pki {
        (
            "your PKI's certificate for this device and its key, as PEM".to_string(),
            " (a key that is not EC P-256 needs the authentication-method of its kind below)",
        )
    } else {
        (
            format!(
                "certificate and private_key of POST \
                 /v2.0/vpn/ipsec-site-connections/{}/peer-credentials",
                far.connection_id
            ),
            "",
        )
    };
    vec![
        format!(
            "# certificates: copy {CA_FILE} (the VPN service's ca_certificate), \
             {PEER_CERTIFICATE_FILE} and {PEER_KEY_FILE} ({source}) to /var/tmp; once the \
             ca-profile below is committed, load them in operational mode{key_note}:"
        ),
        format!(
            "#   request security pki ca-certificate load ca-profile {CA} filename /var/tmp/{CA_FILE}"
        ),
        format!(
            "#   request security pki local-certificate load certificate-id {PEER} filename \
             /var/tmp/{PEER_CERTIFICATE_FILE} key /var/tmp/{PEER_KEY_FILE}"
        ),
        format!("set security pki ca-profile {CA} ca-identity {CA}"),
        format!("set security pki ca-profile {CA} revocation-check disable"),
    ]
}

/// The far end's Junos commands: with certificates, how to load them (comment lines) and
/// the project's CA profile first.
pub fn render(far: &FarEnd) -> Result<String, Unsupported> {
    let ipsec = &far.ipsec;
    if ipsec.transform_protocol != TransformProtocol::Esp
        || ipsec.encapsulation_mode != EncapsulationMode::Tunnel
    {
        return Err(Unsupported::new(
            "transform_protocol",
            "the juniper-srx format writes ESP tunnels only",
        ));
    }
    let name = far.short_name();
    let mut lines = match &far.certificates {
        Some(certificates) => certificate_lines(far, certificates),
        None => Vec::new(),
    };
    lines.extend(ike(far, &name)?);
    lines.extend(gateway(far, &name)?);
    lines.extend(ipsec_vpn(far, &name)?);
    Ok(lines.join("\n") + "\n")
}

/// The IKE proposal and policy: a pre-shared key, or ECDSA signatures (the certificates
/// vpnaas issues hold P-256 keys) with the certificate `vpnaas-peer`, verifying ours
/// against the project's CA profile.
fn ike(far: &FarEnd, name: &str) -> Result<Vec<String>, Unsupported> {
    let ike = &far.ike;
    let ike_proposal = format!("set security ike proposal {name}");
    let ike_policy = format!("set security ike policy {name}");
    let ike_encryption = cbc(ike.encryption_algorithm)
        .ok_or_else(|| unsupported("encryption_algorithm", ike.encryption_algorithm.as_str()))?;
    let method = match far.certificates {
        Some(_) => "ecdsa-signatures-256",
        None => "pre-shared-keys",
    };
    let mut lines = vec![
        format!("{ike_proposal} authentication-method {method}"),
        format!("{ike_proposal} dh-group {}", ike_group(ike.pfs)?),
        format!(
            "{ike_proposal} authentication-algorithm {}",
            ike_hash(ike.auth_algorithm)?
        ),
        format!("{ike_proposal} encryption-algorithm {ike_encryption}"),
        format!("{ike_proposal} lifetime-seconds {}", ike.lifetime.value),
    ];
    if far.ikev1() {
        let mode = match ike.phase1_negotiation_mode {
            Phase1Mode::Main => "main",
            Phase1Mode::Aggressive => "aggressive",
        };
        lines.push(format!("{ike_policy} mode {mode}"));
    }
    lines.push(format!("{ike_policy} proposals {name}"));
    if far.certificates.is_some() {
        lines.push(format!("{ike_policy} certificate local-certificate {PEER}"));
        lines.push(format!(
            "{ike_policy} certificate trusted-ca ca-profile {CA}"
        ));
    } else {
        lines.push(format!("{ike_policy} pre-shared-key {}", secret(far)));
    }
    Ok(lines)
}

fn gateway(far: &FarEnd, name: &str) -> Result<Vec<String>, Unsupported> {
    let gateway = format!("set security ike gateway {name}");
    let mut lines = vec![
        format!("{gateway} ike-policy {name}"),
        format!("{gateway} address {}", far.remote_address),
        format!("{gateway} local-address {}", far.local_address),
        format!("{gateway} local-identity {}", identity(&far.local_id)),
        format!("{gateway} remote-identity {}", identity(&far.remote_id)),
        format!("{gateway} external-interface {EXTERNAL_INTERFACE}"),
    ];
    if far.dpd_on() {
        let interval = within("Junos", "dpd", "a DPD interval", far.dpd.interval, (2, 60))?;
        let threshold = (far.dpd.timeout / interval).clamp(1, 5);
        lines.push(format!("{gateway} dead-peer-detection interval {interval}"));
        lines.push(format!(
            "{gateway} dead-peer-detection threshold {threshold}"
        ));
    }
    lines.push(format!(
        "{gateway} version {}",
        match far.ike.ike_version {
            IkeVersion::V1 => "v1-only",
            IkeVersion::V2 => "v2-only",
        }
    ));
    Ok(lines)
}

/// The IPsec proposal and policy, the VPN on the tunnel interface with its traffic
/// selectors, and the tunnel interface's family.
fn ipsec_vpn(far: &FarEnd, name: &str) -> Result<Vec<String>, Unsupported> {
    let ipsec = &far.ipsec;
    let ipsec_proposal = format!("set security ipsec proposal {name}");
    let ipsec_policy = format!("set security ipsec policy {name}");
    let vpn = format!("set security ipsec vpn {name}");
    let mut lines = vec![format!("{ipsec_proposal} protocol esp")];
    if !ipsec.encryption_algorithm.is_aead() {
        lines.push(format!(
            "{ipsec_proposal} authentication-algorithm {}",
            esp_hash(ipsec.auth_algorithm)?
        ));
    }
    lines.extend([
        format!(
            "{ipsec_proposal} encryption-algorithm {}",
            esp_encryption(ipsec.encryption_algorithm)?
        ),
        format!(
            "{ipsec_proposal} lifetime-seconds {}",
            within(
                "Junos",
                "lifetime",
                "an IPsec SA lifetime",
                ipsec.lifetime.value,
                (180, 86400)
            )?
        ),
        format!(
            "{ipsec_policy} perfect-forward-secrecy keys {}",
            pfs_group(ipsec.pfs)?
        ),
        format!("{ipsec_policy} proposals {name}"),
        format!("{vpn} bind-interface {TUNNEL_INTERFACE}"),
        format!("{vpn} ike gateway {name}"),
        format!("{vpn} ike ipsec-policy {name}"),
    ]);
    for (n, (local, remote)) in traffic_selectors(far)?.iter().enumerate() {
        lines.push(format!(
            "{vpn} traffic-selector ts{} local-ip {local}",
            n + 1
        ));
        lines.push(format!(
            "{vpn} traffic-selector ts{} remote-ip {remote}",
            n + 1
        ));
    }
    lines.push(format!(
        "{vpn} establish-tunnels {}",
        if far.initiates {
            "immediately"
        } else {
            "on-traffic"
        }
    ));
    let family = match far.local_address {
        IpAddr::V4(_) => "inet",
        IpAddr::V6(_) => "inet6",
    };
    lines.push(format!("set interfaces st0 unit 0 family {family}"));
    Ok(lines)
}
