//! Parses `whack --status` and `whack --trafficstatus` of Libreswan 3.x, 4.x and 5.x into
//! what each connection's SAs are doing. Libreswan has no event stream, so the driver polls
//! these. Lines look like (3.x and 4.x prefix a three-digit code, 5.x does not):
//!
//! ```text
//! 000 #1: "c1":500 STATE_V2_ESTABLISHED_IKE_SA (established IKE SA); REKEY in 27942s; newest; idle;
//! #2: "c1/1x1":500 ESTABLISHED_CHILD_SA (established Child SA); REKEY in 28510s; newest; eroute owner; IKE SA #1;
//! 006 #2: "c1", type=ESP, add_time=1700000000, inBytes=168, outBytes=168, maxBytes=2^63B, id='203.0.113.2'
//! ```
//!
//! The parser never fails: a line it does not know is skipped. What it finds becomes an
//! [`SaView`] per connection; the failures pluto's log explains are learnt as the log
//! grows.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use vpnaas_model::agent::ConnectionSpec;
use vpnaas_model::enums::StatusReason;
use vpnaas_model::site_connection::Traffic;

use super::{Control, SharedFailures, Whack};
use crate::Result;
use crate::daemon::{Loaded, Observation};
use crate::status::{SaView, learn_failure};

/// What pluto says of one connection (all instances `<id>/<n>x<m>` of a multi-subnet
/// connection count as one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnSas {
    /// An IKE (ISAKMP / parent) SA is established.
    pub ike_established: bool,
    /// Instances (`<id>` or `<id>/1x2`) with an established child (IPsec) SA.
    pub children: BTreeSet<String>,
    /// Bytes in and out of its child SAs, from `--trafficstatus`.
    pub bytes_in: u64,
    /// Bytes out.
    pub bytes_out: u64,
}

/// Connection id → its SAs.
pub type Sas = BTreeMap<String, ConnSas>;

/// Strips the three-digit status code of 3.x/4.x output.
fn without_code(line: &str) -> &str {
    let line = line.trim_start();
    match line.get(..4) {
        Some(head)
            if head.as_bytes()[..3].iter().all(u8::is_ascii_digit) && head.ends_with(' ') =>
        {
            &line[4..]
        }
        _ => line,
    }
}

/// `#<serial>: "<name>"<rest>` → (name, rest).
fn state_line(line: &str) -> Option<(&str, &str)> {
    let rest = without_code(line).strip_prefix('#')?;
    let (serial, rest) = rest.split_once(": \"")?;
    if serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.split_once('"')
}

/// The connection id of an instance name (`c1/1x2` → `c1`).
fn base(name: &str) -> &str {
    name.split_once('/').map_or(name, |(b, _)| b)
}

/// What an SA state line says: (IKE established, child established).
fn sa_state(rest: &str) -> (bool, bool) {
    let has = |needle: &str| rest.contains(needle);
    let child = has("IPsec SA established")
        || has("established Child SA")
        || has("ESTABLISHED_CHILD_SA")
        || has("STATE_QUICK_I2")
        || has("STATE_QUICK_R2")
        || has("STATE_V2_IPSEC_I ")
        || has("STATE_V2_IPSEC_R ");
    let ike = !child
        && (has("established IKE SA")
            || has("ISAKMP SA established")
            || has("PARENT SA established")
            || has("IKE SA established")
            || has("ESTABLISHED_IKE_SA")
            || has("STATE_MAIN_I4")
            || has("STATE_MAIN_R3")
            || has("STATE_AGGR_I2")
            || has("STATE_AGGR_R2"));
    (ike, child)
}

/// Parses `whack --status`.
pub fn parse_status(text: &str) -> Sas {
    let mut sas = Sas::new();
    for line in text.lines() {
        let Some((name, rest)) = state_line(line) else {
            continue;
        };
        if rest.starts_with(',') {
            // A --trafficstatus line in the same output.
            continue;
        }
        let (ike, child) = sa_state(rest);
        let entry = sas.entry(base(name).to_string()).or_default();
        entry.ike_established |= ike;
        if child {
            entry.children.insert(name.to_string());
        }
    }
    sas
}

/// Adds `whack --trafficstatus` counters to `sas`.
pub fn add_traffic(sas: &mut Sas, text: &str) {
    for line in text.lines() {
        let Some((name, rest)) = state_line(line) else {
            continue;
        };
        let Some(fields) = rest.strip_prefix(',') else {
            continue;
        };
        let number = |key: &str| {
            fields
                .split(',')
                .filter_map(|f| f.trim().split_once('='))
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let entry = sas.entry(base(name).to_string()).or_default();
        entry.bytes_in = entry.bytes_in.saturating_add(number("inBytes"));
        entry.bytes_out = entry.bytes_out.saturating_add(number("outBytes"));
        entry.children.insert(name.to_string());
    }
}

/// Names of the loaded connections (instances included: `c1/1x2`), from the connection
/// lines of `whack --status` (`"c1/1x2": 10.1.0.0/24===…`).
pub fn connection_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| without_code(line).strip_prefix('"'))
        .filter_map(|rest| rest.split_once("\":"))
        .map(|(name, _)| name.to_string())
        .filter(|name| !name.is_empty() && !name.contains(char::is_whitespace))
        .collect()
}

/// The connection a pluto log line is about (the first quoted name), as its id.
pub fn log_connection(line: &str) -> Option<&str> {
    let (_, rest) = line.split_once('"')?;
    let (name, _) = rest.split_once('"')?;
    Some(base(name)).filter(|n| !n.is_empty())
}

/// The reason a pluto log line gives for a tunnel not being up, if any. pluto's SAs go to
/// the kernel, so a netlink error adding one is the kernel's refusal (the line carries the
/// kernel's message).
pub fn classify(msg: &str) -> Option<StatusReason> {
    let has = |needle: &str| msg.contains(needle);
    if has("AUTHENTICATION_FAILED") || has("authentication failed") {
        Some(StatusReason::AuthFailed)
    } else if has("Add SA") && has("errno") {
        Some(StatusReason::KernelRefused)
    } else if has("TS_UNACCEPTABLE") {
        Some(StatusReason::TsUnacceptable)
    } else if has("NO_PROPOSAL_CHOSEN") || has("no acceptable") && has("proposal") {
        Some(StatusReason::NoProposalChosen)
    } else if has("timeout exceeded")
        || has("retransmits") && has("No response")
        || has("liveness action -")
        || has("DPD action -")
    {
        Some(StatusReason::PeerUnreachable)
    } else if has("received Delete SA payload") || has("deleted by peer") {
        Some(StatusReason::PeerClosed)
    } else {
        None
    }
}

/// Whether a pluto log line says a child SA came up (which ends any failure).
pub fn child_established(msg: &str) -> bool {
    msg.contains("established Child SA") || msg.contains("IPsec SA established")
}

/// Separates `--status` from `--trafficstatus` in what [`read`] returns.
const TRAFFIC_MARK: &str = "\n--- trafficstatus ---\n";

/// `whack --status` and `--trafficstatus`, one text.
pub(super) async fn read(whack: &Whack) -> Result<String> {
    let status = whack.run(&["--status"]).await?;
    let traffic = whack.run(&["--trafficstatus"]).await.unwrap_or_default();
    Ok(format!("{status}{TRAFFIC_MARK}{traffic}"))
}

/// What pluto shows of the loaded connections; `None` when it does not answer.
pub(super) async fn observe(control: &Control, loaded: &Loaded) -> Option<Observation> {
    let text = read(&control.whack).await.ok()?;
    let (status_text, traffic_text) = text.split_once(TRAFFIC_MARK).unwrap_or((&text, ""));
    let mut sas = parse_status(status_text);
    add_traffic(&mut sas, traffic_text);
    Some(Observation {
        sas: loaded
            .values()
            .map(|spec| (spec.id.clone(), sa_view(&sas, spec)))
            .collect(),
        failures: control
            .failures
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default(),
        // A re-authentication is done once pluto was told (see `connections::reauthenticate`).
        reauthenticated: Default::default(),
    })
}

/// A connection's SAs: up when every (local, peer) CIDR pair has its child SA.
fn sa_view(sas: &Sas, spec: &ConnectionSpec) -> SaView {
    let pairs = spec.local_cidrs.len() * spec.peer_cidrs.len();
    let seen = sas.get(&spec.id).cloned().unwrap_or_default();
    SaView {
        ike_up: seen.ike_established,
        children_up: seen.children.len() >= pairs.max(1),
        proposal: String::new(),
        traffic: Traffic {
            bytes_in: seen.bytes_in,
            bytes_out: seen.bytes_out,
            ..Traffic::default()
        },
    }
}

/// Reads what pluto logged since `offset`; returns whether a connection's verdict changed.
pub(super) fn learn_from_log(log: &Path, offset: &mut u64, failures: &SharedFailures) -> bool {
    let Ok(mut file) = std::fs::File::open(log) else {
        return false;
    };
    let mut text = String::new();
    if file.seek(SeekFrom::Start(*offset)).is_err() || file.read_to_string(&mut text).is_err() {
        return false;
    }
    *offset += text.len() as u64;
    let Ok(mut failures) = failures.lock() else {
        return false;
    };
    let mut changed = false;
    for line in text.lines() {
        let Some(connection) = log_connection(line) else {
            continue;
        };
        if child_established(line) {
            changed |= failures.remove(connection).is_some();
        } else if let Some(reason) = classify(line) {
            let detail = line.split_once('"').map_or(line, |(_, rest)| rest);
            changed |= learn_failure(&mut failures, connection, reason, format!("\"{detail}"));
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const C1: &str = "5e1c2a36-4f1b-4c3e-9a51-3f2b8c9d0e11";

    fn fixture(version: &str) -> (String, String) {
        let status = match version {
            "3" => include_str!("fixtures/libreswan-3.32-status.txt"),
            "4" => include_str!("fixtures/libreswan-4.10-status.txt"),
            _ => include_str!("fixtures/libreswan-5.2-status.txt"),
        };
        let traffic = match version {
            "3" => include_str!("fixtures/libreswan-3.32-trafficstatus.txt"),
            "4" => include_str!("fixtures/libreswan-4.10-trafficstatus.txt"),
            _ => include_str!("fixtures/libreswan-5.2-trafficstatus.txt"),
        };
        (status.to_string(), traffic.to_string())
    }

    #[test]
    fn the_kernels_refusal_in_plutos_log_outlasts_the_peers_notify() {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("pluto.log");
        std::fs::write(
            &log,
            "\"c1\" #2: netlink response for Add SA esp.8deab154@203.0.113.1: Protocol not supported (errno 93)\n\
             \"c1\" #3: IKE_AUTH response rejected Child SA with TS_UNACCEPTABLE\n",
        )
        .expect("log");
        let failures = SharedFailures::default();
        let mut offset = 0;
        assert!(learn_from_log(&log, &mut offset, &failures));
        let failures = failures.lock().expect("lock");
        let (reason, detail) = &failures["c1"];
        assert_eq!(*reason, StatusReason::KernelRefused);
        assert!(
            detail.contains("Protocol not supported (errno 93)"),
            "{detail}"
        );
    }

    #[test]
    fn every_version_shows_the_same_established_tunnels() {
        for version in ["3", "4", "5"] {
            let (status, traffic) = fixture(version);
            let mut sas = parse_status(&status);
            add_traffic(&mut sas, &traffic);
            let up = &sas[C1];
            assert!(up.ike_established, "{version}: {sas:?}");
            assert_eq!(
                up.children.iter().map(String::as_str).collect::<Vec<_>>(),
                [format!("{C1}/1x1"), format!("{C1}/1x2")],
                "{version}"
            );
            assert_eq!((up.bytes_in, up.bytes_out), (336, 504), "{version}");
            let ike_only = &sas["0b9f5a7e-1111-4d2c-8e3f-5a6b7c8d9e0f"];
            assert!(
                ike_only.ike_established && ike_only.children.is_empty(),
                "{version}"
            );
            assert!(
                !sas.contains_key("7d3e2c1b-2222-4a5b-9c8d-0e1f2a3b4c5d")
                    || !sas["7d3e2c1b-2222-4a5b-9c8d-0e1f2a3b4c5d"].ike_established,
                "{version}: a connection still negotiating is not established"
            );
        }
    }

    #[test]
    fn loaded_connections_are_listed_by_instance() {
        for version in ["3", "4", "5"] {
            let (status, _) = fixture(version);
            let names = connection_names(&status);
            assert!(names.contains(&format!("{C1}/1x2")), "{version}: {names:?}");
            assert_eq!(names.len(), 4, "{version}: {names:?}");
        }
    }

    #[test]
    fn pluto_log_lines_map_to_status_reasons() {
        let cases = [
            (
                r#""c1" #2: netlink response for Add SA esp.8deab154@203.0.113.1: Protocol not supported (errno 93)"#,
                Some(StatusReason::KernelRefused),
            ),
            (
                r#""c1" #2: IKE_AUTH response rejected Child SA with TS_UNACCEPTABLE"#,
                Some(StatusReason::TsUnacceptable),
            ),
            (
                r#""c1" #1: IKE SA authentication request rejected by peer: AUTHENTICATION_FAILED"#,
                Some(StatusReason::AuthFailed),
            ),
            (
                r#""c1" #1: STATE_PARENT_I1: 60 second timeout exceeded after 7 retransmits.  No response (or no acceptable response) to our first IKEv2 message"#,
                Some(StatusReason::PeerUnreachable),
            ),
            (
                r#""c1" #1: liveness action - restarting all connections that share this peer"#,
                Some(StatusReason::PeerUnreachable),
            ),
            (
                r#""c1" #3: DPD action - putting connection into hold"#,
                Some(StatusReason::PeerUnreachable),
            ),
            (r#""c1" #1: sent IKE_SA_INIT request"#, None),
        ];
        for (line, reason) in cases {
            assert_eq!(classify(line), reason, "{line}");
            assert_eq!(log_connection(line), Some("c1"));
        }
        assert_eq!(log_connection(r#""c1/1x2" #3: x"#), Some("c1"));
    }

    proptest! {
        #[test]
        fn any_input_parses_without_panicking(text in "(?s).{0,400}") {
            let mut sas = parse_status(&text);
            add_traffic(&mut sas, &text);
            let _ = connection_names(&text);
            let _ = (log_connection(&text), classify(&text));
        }

        #[test]
        fn status_shaped_garbage_parses_without_panicking(
            lines in proptest::collection::vec("(000 |006 )?#[0-9]{0,3}: \"[a-z0-9/x-]{0,12}\"?[:, A-Za-z0-9_=()#;]{0,60}", 0..20)
        ) {
            let text = lines.join("\n");
            let mut sas = parse_status(&text);
            add_traffic(&mut sas, &text);
        }
    }
}
