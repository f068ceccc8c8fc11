//! The far end as VyOS 1.4 configuration mode commands (a policy-based site-to-site
//! peer: `ike-group`, `esp-group`, `authentication psk`, one `tunnel` per pair of
//! CIDRs). Only the values the VyOS documentation names are written; anything else is
//! [`Unsupported`]. Values are single-quoted and come from typed values: addresses,
//! prefixes, identities of the identity grammar, numbers and closed keywords; the key
//! is written base64-encoded with `secret-type base64`, so no character of it can end
//! its quotes. The justification of every line is in `tests/golden/vyos.md`.

use base64::Engine as _;
use vpnaas_model::enums::{
    AuthAlgorithm, DpdAction, EncapsulationMode, EncryptionAlgorithm, IkeVersion, Phase1Mode,
    TransformProtocol,
};

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

/// The far end's VyOS commands.
pub fn render(far: &FarEnd) -> Result<String, Unsupported> {
    let (ike, ipsec) = (&far.ike, &far.ipsec);
    if ipsec.transform_protocol != TransformProtocol::Esp {
        return Err(Unsupported::new(
            "transform_protocol",
            "VyOS esp-groups negotiate ESP only",
        ));
    }
    let name = far.short_name();
    let ike_group = format!("set vpn ipsec ike-group {name}");
    let esp_group = format!("set vpn ipsec esp-group {name}");
    let psk = format!("set vpn ipsec authentication psk {name}");
    let peer = format!("set vpn ipsec site-to-site peer {name}");
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
    lines.push(format!(
        "{ike_group} proposal 1 dh-group '{}'",
        group_number(ike.pfs)
    ));
    lines.push(format!(
        "{ike_group} proposal 1 encryption '{}'",
        encryption(ike.encryption_algorithm)?
    ));
    lines.push(format!(
        "{ike_group} proposal 1 hash '{}'",
        hash(ike.auth_algorithm)?
    ));
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
    lines.extend([
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
        format!("{psk} id '{}'", far.local_id.as_str()),
        format!("{psk} id '{}'", far.remote_id.as_str()),
    ]);
    match &far.secret {
        Secret::Included(key) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(key.expose());
            lines.push(format!("{psk} secret '{encoded}'"));
            lines.push(format!("{psk} secret-type 'base64'"));
        }
        Secret::Placeholder => lines.push(format!("{psk} secret '{PLACEHOLDER}'")),
    }
    lines.extend([
        format!("{peer} authentication local-id '{}'", far.local_id.as_str()),
        format!("{peer} authentication mode 'pre-shared-secret'"),
        format!(
            "{peer} authentication remote-id '{}'",
            far.remote_id.as_str()
        ),
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
    Ok(lines.join("\n") + "\n")
}
