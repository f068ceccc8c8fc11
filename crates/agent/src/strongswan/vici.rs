//! Typed VICI messages: what the driver sends to charon and reads back. Connection and
//! secret names are connection ids (UUIDs); identities and addresses come from the
//! validated desired state.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use vpnaas_model::agent::ConnectionSpec;
use vpnaas_model::enums::{
    DpdAction, EncapsulationMode, IkeVersion, Phase1Mode, TransformProtocol,
};

use vpnaas_model::spelling::strongswan as spelling;

/// Answer of a command.
#[derive(Debug, Deserialize)]
pub struct Answer {
    /// Whether it worked.
    pub success: bool,
    /// Why not.
    #[serde(default)]
    pub errmsg: Option<String>,
    /// The key id `load-key` answers with (hex SHA-1 of the public key).
    #[serde(default)]
    pub id: Option<String>,
}

/// `unload-key`: a private key by its id.
#[derive(Debug, Serialize)]
pub struct UnloadKey {
    /// The id `load-key` answered with.
    pub id: String,
}

/// `load-shared`: the PSK of one connection, bound to its two identities.
#[derive(Serialize)]
pub struct SharedKey {
    /// Unique id of the secret (`psk-<connection id>`).
    pub id: String,
    /// Always `IKE`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The key.
    pub data: String,
    /// Identities it is for.
    pub owners: Vec<String>,
}

impl SharedKey {
    /// The secret of a connection.
    pub fn of(spec: &ConnectionSpec) -> Self {
        SharedKey {
            id: secret_id(&spec.id),
            kind: "IKE",
            data: spec.psk.expose().to_string(),
            owners: vec![spec.local_id.clone(), spec.peer_id.clone()],
        }
    }
}

impl std::fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Name of a connection's secret.
pub fn secret_id(connection_id: &str) -> String {
    format!("psk-{connection_id}")
}

/// One end's authentication: `psk`, or `pubkey` with the end's certificate (ours) or the
/// CAs its certificate must chain to (the peer's). Certificates go inline as PEM, so
/// charon holds them with the connection and nothing is read from disk.
#[derive(Serialize)]
struct Auth {
    auth: &'static str,
    id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    certs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cacerts: Vec<String>,
}

impl Auth {
    /// Our end: the gateway certificate of a `cert` connection, else the key.
    fn local(spec: &ConnectionSpec) -> Self {
        let certs = spec
            .certificate
            .as_ref()
            .map(|c| vec![c.local_certificate.clone()])
            .unwrap_or_default();
        Auth {
            auth: if certs.is_empty() { "psk" } else { "pubkey" },
            id: spec.local_id.clone(),
            certs,
            cacerts: Vec::new(),
        }
    }

    /// The peer's end: a certificate of `peer_id` from the trusted CAs, else the key.
    /// Each connection names its own CAs, so a CA trusted for one connection does not
    /// vouch for the peer of another.
    fn remote(spec: &ConnectionSpec) -> Self {
        let cacerts = spec
            .certificate
            .as_ref()
            .map(|c| pem_certificates(&c.peer_ca))
            .unwrap_or_default();
        Auth {
            auth: if cacerts.is_empty() { "psk" } else { "pubkey" },
            id: spec.peer_id.clone(),
            certs: Vec::new(),
            cacerts,
        }
    }
}

/// The certificates of a PEM bundle, one PEM each (charon reads one per value).
fn pem_certificates(pem: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    pem.split_inclusive(END)
        .filter(|block| block.contains(END))
        .map(|block| block.trim_start().to_string())
        .collect()
}

/// `load-key`: a `cert` connection's private key, held in charon's memory only.
#[derive(Serialize)]
pub struct PrivateKey {
    /// `any`: charon reads the type from the key.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The key, PEM.
    pub data: String,
}

impl PrivateKey {
    /// The key of a `cert` connection; `None` for a `psk` one.
    pub fn of(spec: &ConnectionSpec) -> Option<Self> {
        spec.certificate.as_ref().map(|c| PrivateKey {
            kind: "any",
            data: c.local_key.expose().to_string(),
        })
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey").finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Child {
    local_ts: Vec<String>,
    remote_ts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    esp_proposals: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ah_proposals: Option<Vec<String>>,
    mode: &'static str,
    rekey_time: String,
    life_time: String,
    dpd_action: &'static str,
    start_action: &'static str,
    close_action: &'static str,
}

/// One IKE connection for `load-conn`.
#[derive(Serialize)]
pub struct Connection {
    version: u8,
    local_addrs: Vec<String>,
    remote_addrs: Vec<String>,
    proposals: Vec<String>,
    aggressive: bool,
    dpd_delay: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    dpd_timeout: Option<String>,
    rekey_time: String,
    mobike: bool,
    keyingtries: u32,
    local: Auth,
    remote: Auth,
    children: BTreeMap<String, Child>,
}

/// The child SAs of a connection: `(name, local TS, remote TS)`. IKEv2 carries every
/// local and peer CIDR in one child; IKEv1 negotiates only the first pair of a child's
/// selectors, so it gets one child per (local, peer) pair.
pub fn children(spec: &ConnectionSpec) -> Vec<(String, Vec<String>, Vec<String>)> {
    let all = |cidrs: &[ipnet::IpNet]| cidrs.iter().map(ToString::to_string).collect::<Vec<_>>();
    let pairs = spec.local_cidrs.len() * spec.peer_cidrs.len();
    if spec.ike.ike_version == IkeVersion::V2 || pairs <= 1 {
        return vec![(
            spec.id.clone(),
            all(&spec.local_cidrs),
            all(&spec.peer_cidrs),
        )];
    }
    let mut out = Vec::new();
    for local in &spec.local_cidrs {
        for peer in &spec.peer_cidrs {
            out.push((
                format!("{}-{}", spec.id, out.len() + 1),
                vec![local.to_string()],
                vec![peer.to_string()],
            ));
        }
    }
    out
}

/// `load-conn` message: connection name → connection.
pub fn load_conn(spec: &ConnectionSpec) -> BTreeMap<String, Connection> {
    let ipsec = &spec.ipsec;
    let child_proposal = vec![spelling::child_proposal(ipsec)];
    let ah = ipsec.transform_protocol == TransformProtocol::Ah;
    let lifetime = ipsec.lifetime.value;
    let dpd_off = spec.dpd.action == DpdAction::Disabled;
    let child = |local_ts: Vec<String>, remote_ts: Vec<String>| Child {
        local_ts,
        remote_ts,
        esp_proposals: (!ah).then(|| child_proposal.clone()),
        ah_proposals: ah.then(|| child_proposal.clone()),
        mode: match ipsec.encapsulation_mode {
            EncapsulationMode::Tunnel => "tunnel",
            EncapsulationMode::Transport => "transport",
        },
        // In u64: the API accepts lifetimes up to 2^31 - 1 seconds.
        rekey_time: format!("{}s", u64::from(lifetime) * 9 / 10),
        life_time: format!("{lifetime}s"),
        dpd_action: match spec.dpd.action {
            DpdAction::Hold => "trap",
            DpdAction::Restart => "restart",
            DpdAction::Clear | DpdAction::Disabled | DpdAction::RestartByPeer => "clear",
        },
        start_action: "none",
        close_action: "none",
    };
    let children = children(spec)
        .into_iter()
        .map(|(name, local, remote)| (name, child(local, remote)))
        .collect();
    let connection = Connection {
        version: match spec.ike.ike_version {
            IkeVersion::V1 => 1,
            IkeVersion::V2 => 2,
        },
        local_addrs: vec![spec.local_address.to_string()],
        remote_addrs: vec![spec.peer_address.to_string()],
        proposals: vec![spelling::ike_proposal(&spec.ike)],
        aggressive: spec.ike.phase1_negotiation_mode == Phase1Mode::Aggressive,
        dpd_delay: if dpd_off {
            "0s".into()
        } else {
            format!("{}s", spec.dpd.interval)
        },
        // The agent keeps the timeout (see `dpd`); charon's own IKEv1 verdict comes after.
        dpd_timeout: (spec.ike.ike_version == IkeVersion::V1 && !dpd_off).then(|| {
            format!(
                "{}s",
                f64::from(spec.dpd.timeout) + super::dpd::SCHEDULE_MARGIN
            )
        }),
        rekey_time: format!("{}s", spec.ike.lifetime.value),
        mobike: false,
        keyingtries: 1,
        local: Auth::local(spec),
        remote: Auth::remote(spec),
        children,
    };
    BTreeMap::from([(spec.id.clone(), connection)])
}

/// `initiate` of a connection's child.
#[derive(Serialize)]
pub struct Initiate {
    /// Child to bring up.
    pub child: String,
    /// Its IKE connection.
    pub ike: String,
    /// Milliseconds to wait for the outcome; -1 answers at once.
    pub timeout: i32,
    /// Whether initiation may be refused by charon's limits.
    #[serde(rename = "init-limits")]
    pub init_limits: bool,
}

/// `rekey` of the IKE SAs of a connection; with `reauth`, authenticated anew (charon
/// deletes the old IKE SA and builds a new one unless `make_before_break` is set).
#[derive(Serialize)]
pub struct Rekey {
    /// Connection name.
    pub ike: String,
    /// Re-authenticate rather than rekey.
    pub reauth: bool,
}

/// `terminate` of an IKE SA by connection name.
#[derive(Serialize)]
pub struct Terminate {
    /// Connection name.
    pub ike: String,
    /// Do not wait for the peer's answer.
    pub force: bool,
    /// Milliseconds to wait.
    pub timeout: i32,
}

/// `terminate` of one IKE SA by charon's number for it.
#[derive(Serialize)]
pub struct TerminateSa {
    /// The IKE SA's unique id.
    #[serde(rename = "ike-id")]
    pub ike_id: String,
    /// Do not wait for the peer's answer.
    pub force: bool,
    /// Milliseconds to wait; -1 answers at once.
    pub timeout: i32,
}

/// `unload-conn`.
#[derive(Serialize)]
pub struct Unload {
    /// Connection name.
    pub name: String,
}

/// `unload-shared`.
#[derive(Serialize)]
pub struct UnloadShared {
    /// Secret id.
    pub id: String,
}

/// A child SA in `list-sas`. Numbers arrive as strings.
#[derive(Debug, Deserialize)]
pub struct ChildSa {
    /// Child config name.
    pub name: String,
    /// e.g. INSTALLED.
    pub state: String,
    /// Negotiated encryption algorithm.
    #[serde(rename = "encr-alg", default)]
    pub encr_alg: Option<String>,
    /// Its key size.
    #[serde(rename = "encr-keysize", default)]
    pub encr_keysize: Option<String>,
    /// Negotiated integrity algorithm.
    #[serde(rename = "integ-alg", default)]
    pub integ_alg: Option<String>,
    /// Bytes received.
    #[serde(rename = "bytes-in", default)]
    pub bytes_in: Option<String>,
    /// Bytes sent.
    #[serde(rename = "bytes-out", default)]
    pub bytes_out: Option<String>,
    /// Packets received.
    #[serde(rename = "packets-in", default)]
    pub packets_in: Option<String>,
    /// Packets sent.
    #[serde(rename = "packets-out", default)]
    pub packets_out: Option<String>,
}

impl ChildSa {
    /// A counter (sent as a decimal string), 0 when absent.
    pub fn counter(&self, field: fn(&ChildSa) -> &Option<String>) -> u64 {
        field(self)
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    }

    /// The negotiated proposal, e.g. `AES_CBC-128/HMAC_SHA2_256_128`.
    pub fn proposal(&self) -> String {
        let mut text = self.encr_alg.clone().unwrap_or_default();
        if let Some(size) = &self.encr_keysize {
            text.push_str(&format!("-{size}"));
        }
        if let Some(integ) = &self.integ_alg {
            text.push_str(&format!("/{integ}"));
        }
        text
    }
}

/// One rekeyed child SA in a `child-rekey` event: the retired SA and its successor.
#[derive(Debug, Deserialize)]
pub struct ChildRekeyPair {
    /// The SA rekeyed away, with its final counters.
    #[serde(default)]
    pub old: Option<ChildSa>,
}

/// The IKE SA part of a `child-rekey` event.
#[derive(Debug, Deserialize)]
pub struct RekeyedIke {
    /// Rekeyed child SAs by name.
    #[serde(rename = "child-sas", default)]
    pub child_sas: HashMap<String, ChildRekeyPair>,
}

/// A `child-rekey` event: IKE SA name (our connection id) → its rekeyed child SAs.
pub type ChildRekey = HashMap<String, RekeyedIke>;

/// A `log` event: one line of charon's log, with the IKE SA it is about.
#[derive(Debug, Deserialize)]
pub struct LogLine {
    /// Name of the IKE SA (our connection id) when the line is about one.
    #[serde(rename = "ikesa-name", default)]
    pub ikesa_name: Option<String>,
    /// charon's number of that IKE SA.
    #[serde(rename = "ikesa-uniqueid", default)]
    pub ikesa_uniqueid: Option<String>,
    /// charon's thread that logged it (lines of one exchange share it).
    #[serde(default)]
    pub thread: Option<String>,
    /// The message.
    #[serde(default)]
    pub msg: String,
}

/// An IKE SA in `list-sas`.
#[derive(Debug, Deserialize)]
pub struct IkeSa {
    /// Charon's number for this IKE SA: a re-authenticated connection has a new one.
    #[serde(default)]
    pub uniqueid: Option<String>,
    /// e.g. ESTABLISHED.
    pub state: String,
    /// The peer's address.
    #[serde(rename = "remote-host", default)]
    pub remote_host: Option<String>,
    /// `yes` when this end started the negotiation.
    #[serde(default)]
    pub initiator: Option<String>,
    /// Child SAs by `<name>-<uniqueid>`.
    #[serde(rename = "child-sas", default)]
    pub child_sas: HashMap<String, ChildSa>,
}

/// One `list-sa` event: IKE SA name → SA.
pub type ListSa = HashMap<String, IkeSa>;

/// Every IKE SA charon has. Names repeat: two ends that initiate at once build duplicate
/// SAs of one connection, so nothing here assumes one SA per name.
#[derive(Debug, Default)]
pub struct Sas(pub Vec<(String, IkeSa)>);

impl Sas {
    /// The SAs of a connection.
    pub fn of<'a>(&'a self, connection: &'a str) -> impl Iterator<Item = &'a IkeSa> {
        self.0
            .iter()
            .filter(move |(name, _)| name == connection)
            .map(|(_, sa)| sa)
    }

    /// The numbers of a connection's established IKE SAs.
    pub fn established(&self, connection: &str) -> Vec<String> {
        self.of(connection)
            .filter(|ike| ike.state == "ESTABLISHED")
            .filter_map(|ike| ike.uniqueid.clone())
            .collect()
    }

    /// Installed child SAs of a connection, across its SAs.
    pub fn installed_children<'a>(&'a self, connection: &'a str) -> Vec<&'a ChildSa> {
        self.of(connection)
            .flat_map(|ike| ike.child_sas.values())
            .filter(|c| c.state == "INSTALLED")
            .collect()
    }

    /// Whether a negotiation with the peer is under way or done: an SA of the connection,
    /// or one with the peer's address that has no name yet.
    pub fn negotiating_with(&self, connection: &str, peer: std::net::IpAddr) -> bool {
        self.with(connection, peer).next().is_some()
    }

    /// Whether a negotiation the peer started is under way (not yet established).
    pub fn answering(&self, connection: &str, peer: std::net::IpAddr) -> bool {
        self.with(connection, peer)
            .any(|sa| sa.initiator.as_deref() != Some("yes") && sa.state != "ESTABLISHED")
    }

    /// The SAs of the connection, and those with the peer's address that have no name yet.
    fn with<'a>(
        &'a self,
        connection: &'a str,
        peer: std::net::IpAddr,
    ) -> impl Iterator<Item = &'a IkeSa> {
        let peer = peer.to_string();
        self.0
            .iter()
            .filter(move |(name, sa)| {
                name == connection || sa.remote_host.as_deref() == Some(peer.as_str())
            })
            .map(|(_, sa)| sa)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_lifetime_the_api_accepts_renders_without_overflow() {
        let mut spec = crate::fixtures::connection("c", 1500);
        spec["ipsec"]["lifetime"] = serde_json::json!({"units": "seconds", "value": 2147483647});
        let spec: ConnectionSpec = serde_json::from_value(spec).expect("spec");
        let connections = load_conn(&spec);
        let child = connections["c"].children.values().next().expect("a child");
        assert_eq!(child.rekey_time, "1932735282s");
        assert_eq!(child.life_time, "2147483647s");
    }
}
