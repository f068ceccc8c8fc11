//! The far end as VyOS 1.4 configuration mode commands (a policy-based site-to-site
//! peer: `ike-group`, `esp-group`, `authentication psk` or, with certificates, `x509`
//! with the project's CA under `pki ca`, one `tunnel` per pair of CIDRs). Only the
//! values the VyOS documentation names are written; anything else is [`Unsupported`].
//! Values are single-quoted and come from typed values: addresses, prefixes, identities
//! of the identity grammar, numbers and closed keywords; the key is written
//! base64-encoded with `secret-type base64`, and the CA as base64 of its DER, so no
//! character of either can end its quotes. The justification of every line is in
//! `tests/golden/vyos.md` and `tests/golden/vyos-cert.md`.

use base64::Engine as _;
use vpnaas_model::enums::{
    AuthAlgorithm, DpdAction, EncapsulationMode, EncryptionAlgorithm, IkeVersion, Phase1Mode,
    TransformProtocol,
};

use super::certificates::{CA, Certificates, PEER, PEER_CERTIFICATE_FILE, PEER_KEY_FILE};
use super::{FarEnd, PLACEHOLDER, Secret, Unsupported};

/// VyOS's longest lifetimes (IKE and ESP), in seconds.
const MAX_LIFETIME: u32 = 86_400;

fn encryption(algorithm: EncryptionAlgorithm) -> Result<&'static str, Unsupported> {
    match algorithm {
        EncryptionAlgorithm::Aes128 => Ok("aes128"),
        EncryptionAlgorithm::Aes256 => Ok("aes256"),
        EncryptionAlgorithm::Aes256Gcm16 => Ok("aes256gcm128"),
        other => Err(Unsupported::new(
            "encryption_algorithm",
            format!(
                "'{other}' is not written in the vyos format (aes-128, aes-256, aes-256-gcm-16 are)"
            ),
        )),
    }
}

fn hash(algorithm: AuthAlgorithm) -> Result<&'static str, Unsupported> {
    match algorithm {
        AuthAlgorithm::Sha1 => Ok("sha1"),
        AuthAlgorithm::Sha256 => Ok("sha256"),
        other => Err(Unsupported::new(
            "auth_algorithm",
            format!("'{other}' is not written in the vyos format (sha1, sha256 are)"),
        )),
    }
}

/// The group's number (`group14` → `14`).
fn group_number(group: vpnaas_model::enums::PfsGroup) -> &'static str {
    group.as_str().trim_start_matches("group")
}

fn lifetime(field: &'static str, seconds: u32) -> Result<u32, Unsupported> {
    if seconds > MAX_LIFETIME {
        return Err(Unsupported::new(
            field,
            format!("{seconds} s is longer than VyOS allows ({MAX_LIFETIME} s)"),
        ));
    }
    Ok(seconds)
}

/// The far end's VyOS commands: with certificates, how to load its own (comment lines),
/// the project's CA, then the groups and the peer.
pub fn render(far: &FarEnd) -> Result<String, Unsupported> {
    if far.ipsec.transform_protocol != TransformProtocol::Esp {
        return Err(Unsupported::new(
            "transform_protocol",
            "VyOS esp-groups negotiate ESP only",
        ));
    }
    let name = far.short_name();
    let mut lines = match &far.certificates {
        Some(certificates) => certificate_lines(far, certificates),
        None => Vec::new(),
    };
    lines.extend(ike_group(far, &name)?);
    lines.extend(esp_group(far, &name)?);
    if far.certificates.is_none() {
        lines.extend(psk(far, &name));
    }
    lines.extend(peer(far, &name));
    Ok(lines.join("\n") + "\n")
}

/// The far end's certificate and key are not vpnaas's to write: comment lines say how
/// `import pki` (run from configuration mode, it installs what it reads) loads them under
/// the name the peer uses; the project's CA is public and written inline.
fn certificate_lines(far: &FarEnd, certificates: &Certificates) -> Vec<String> {
    let source = if certificates.own_pki {
        "your PKI's certificate (for this device's identity) and its key, as PEM".to_string()
    } else {
        format!(
            "certificate and private_key of POST /v2.0/vpn/ipsec-site-connections/{}/peer-credentials",
            far.connection_id
        )
    };
    vec![
        format!(
            "# certificates: copy {PEER_CERTIFICATE_FILE} and {PEER_KEY_FILE} ({source}) to this \
             router's home directory, then load them in configuration mode, before these commands \
             (the key has no passphrase: press Enter when asked):"
        ),
        format!("#   run import pki certificate {PEER} file {PEER_CERTIFICATE_FILE}"),
        format!("#   run import pki certificate {PEER} key-file {PEER_KEY_FILE}"),
        format!(
            "set pki ca {CA} certificate '{}'",
            certificates.vpnaas_ca.base64()
        ),
    ]
}

fn ike_group(far: &FarEnd, name: &str) -> Result<Vec<String>, Unsupported> {
    let ike = &far.ike;
    let ike_group = format!("set vpn ipsec ike-group {name}");
    let mut lines = vec![
        format!(
            "{ike_group} key-exchange '{}'",
            match ike.ike_version {
                IkeVersion::V1 => "ikev1",
                IkeVersion::V2 => "ikev2",
            }
        ),
        format!(
            "{ike_group} lifetime '{}'",
            lifetime("ikepolicy lifetime", ike.lifetime.value)?
        ),
    ];
    if ike.phase1_negotiation_mode == Phase1Mode::Aggressive {
        lines.push(format!("{ike_group} mode 'aggressive'"));
    }
    lines.extend([
        format!(
            "{ike_group} proposal 1 dh-group '{}'",
            group_number(ike.pfs)
        ),
        format!(
            "{ike_group} proposal 1 encryption '{}'",
            encryption(ike.encryption_algorithm)?
        ),
        format!(
            "{ike_group} proposal 1 hash '{}'",
            hash(ike.auth_algorithm)?
        ),
    ]);
    if far.dpd_on() {
        let action = match far.dpd.action {
            DpdAction::Hold => "trap",
            DpdAction::Restart => "restart",
            _ => "clear",
        };
        lines.push(format!("{ike_group} dead-peer-detection action '{action}'"));
        lines.push(format!(
            "{ike_group} dead-peer-detection interval '{}'",
            far.dpd.interval
        ));
        if far.ikev1() {
            lines.push(format!(
                "{ike_group} dead-peer-detection timeout '{}'",
                far.dpd.timeout
            ));
        }
    }
    Ok(lines)
}

fn esp_group(far: &FarEnd, name: &str) -> Result<Vec<String>, Unsupported> {
    let ipsec = &far.ipsec;
    let esp_group = format!("set vpn ipsec esp-group {name}");
    Ok(vec![
        format!(
            "{esp_group} lifetime '{}'",
            lifetime("ipsecpolicy lifetime", ipsec.lifetime.value)?
        ),
        format!(
            "{esp_group} mode '{}'",
            match ipsec.encapsulation_mode {
                EncapsulationMode::Tunnel => "tunnel",
                EncapsulationMode::Transport => "transport",
            }
        ),
        format!("{esp_group} pfs 'dh-group{}'", group_number(ipsec.pfs)),
        format!(
            "{esp_group} proposal 1 encryption '{}'",
            encryption(ipsec.encryption_algorithm)?
        ),
        format!(
            "{esp_group} proposal 1 hash '{}'",
            hash(ipsec.auth_algorithm)?
        ),
    ])
}

/// The key's ids and the key (base64), or its placeholder.
fn psk(far: &FarEnd, name: &str) -> Vec<String> {
    let psk = format!("set vpn ipsec authentication psk {name}");
    let mut lines = vec![
        format!("{psk} id '{}'", far.local_id.as_str()),
        format!("{psk} id '{}'", far.remote_id.as_str()),
    ];
    match &far.secret {
        Secret::Included(key) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(key.expose());
            lines.push(format!("{psk} secret '{encoded}'"));
            lines.push(format!("{psk} secret-type 'base64'"));
        }
        Secret::Placeholder => lines.push(format!("{psk} secret '{PLACEHOLDER}'")),
    }
    lines
}

fn peer(far: &FarEnd, name: &str) -> Vec<String> {
    let peer = format!("set vpn ipsec site-to-site peer {name}");
    let mut lines = vec![format!(
        "{peer} authentication local-id '{}'",
        far.local_id.as_str()
    )];
    if far.certificates.is_some() {
        lines.extend([
            format!("{peer} authentication mode 'x509'"),
            format!(
                "{peer} authentication remote-id '{}'",
                far.remote_id.as_str()
            ),
            format!("{peer} authentication x509 ca-certificate '{CA}'"),
            format!("{peer} authentication x509 certificate '{PEER}'"),
        ]);
    } else {
        lines.extend([
            format!("{peer} authentication mode 'pre-shared-secret'"),
            format!(
                "{peer} authentication remote-id '{}'",
                far.remote_id.as_str()
            ),
        ]);
    }
    lines.extend([
        format!(
            "{peer} connection-type '{}'",
            if far.initiates { "initiate" } else { "none" }
        ),
        format!("{peer} default-esp-group '{name}'"),
        format!("{peer} ike-group '{name}'"),
        format!("{peer} local-address '{}'", far.local_address),
        format!("{peer} remote-address '{}'", far.remote_address),
    ]);
    for (n, (local, remote)) in far.pairs().iter().enumerate() {
        lines.push(format!("{peer} tunnel {} local prefix '{local}'", n + 1));
        lines.push(format!("{peer} tunnel {} remote prefix '{remote}'", n + 1));
    }
    lines
}
