//! L3 of a router that neutron-l3-agent owns (`l3_mode = "neutron"`): its `qrouter-<id>`
//! namespace, its ports and its SNAT are Neutron's, and nothing here creates, changes or
//! deletes them. What VPN traffic needs is added beside Neutron's rules, in the firewall
//! Neutron itself uses in that namespace (the `iptables` command, whichever backend it
//! drives): chains of vpnaas's own, jumped to first from the built-in chains — the NAT
//! exemption of each (local, peer) pair, which must come before Neutron's SNAT; MSS
//! clamping of TCP through each connection; and, for strongSwan's userspace ESP, Neutron's
//! address scope mark on what comes out of the tunnel device (Neutron marks packets by the
//! port they came in on and drops those bound for a `qr-` port without the mark; decrypted
//! packets come in on the tunnel device, which Neutron does not know). Neutron rewriting its
//! own chains never touches them; removing them leaves Neutron's rules as they were. Every
//! argument is rendered from typed addresses and numbers, or read back from Neutron's rules
//! and checked.
//!
//! NAT is decided on a flow's first packet and kept in its conntrack entry: a flow that
//! passed before the exemption was first (a ping running while Neutron built the namespace
//! of a router just scheduled here, or while Neutron's rewrite had the SNAT ahead of the
//! jump) would stay SNATed. Whenever the exemption or its jump is written, the entries of
//! flows from local to peer subnets in the namespace are deleted, so that their next
//! packet is decided again.

use ipnet::IpNet;
use vpnaas_model::agent::RouterState;

use crate::command::run;
use crate::error::Teardown;
use crate::{Error, Result};

/// The chain holding the NAT exemption.
const EXEMPTION_CHAIN: &str = "vpnaas-nat";

/// Where each chain lives and which built-in chain jumps to it.
const CHAINS: [(&str, &str, &str); 3] = [
    ("nat", "POSTROUTING", EXEMPTION_CHAIN),
    ("mangle", "FORWARD", "vpnaas-mss"),
    ("mangle", "PREROUTING", "vpnaas-mark"),
];

/// The TUN device strongSwan's userspace ESP (kernel-libipsec) hands decrypted packets to
/// the router on.
const TUNNEL_DEVICE: &str = "ipsec0";

/// Neutron's chain that marks packets with the address scope of the port they came in on.
const NEUTRON_SCOPE_CHAIN: &str = "neutron-l3-agent-scope";

/// Each enabled connection's (local, peer) IPv4 subnet pairs, with its MTU.
fn exempted(state: &RouterState) -> Vec<(IpNet, IpNet, u32)> {
    let mut pairs = Vec::new();
    for conn in state.connections.iter().filter(|c| c.enabled) {
        for local in conn.local_cidrs.iter().filter(|c| is_v4(c)) {
            for peer in conn.peer_cidrs.iter().filter(|c| is_v4(c)) {
                pairs.push((*local, *peer, conn.mtu));
            }
        }
    }
    pairs
}

/// The rules of each chain of [`CHAINS`], as `iptables -S` lists them; `gateway_mark` is
/// the mark Neutron gives packets from the gateway port (`value/mask`), given to those
/// from the tunnel device too.
pub fn rules(state: &RouterState, gateway_mark: Option<&str>) -> [Vec<String>; 3] {
    let (mut nat, mut mss) = (Vec::new(), Vec::new());
    for (local, peer, mtu) in exempted(state) {
        let clamp = mtu.saturating_sub(40);
        nat.push(format!("-A vpnaas-nat -s {local} -d {peer} -j ACCEPT"));
        for (from, to) in [(local, peer), (peer, local)] {
            mss.push(format!(
                "-A vpnaas-mss -s {from} -d {to} -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss {}:65535 -j TCPMSS --set-mss {clamp}",
                clamp + 1
            ));
        }
    }
    nat.dedup();
    mss.dedup();
    let marks = match gateway_mark {
        Some(mark) if !nat.is_empty() => vec![format!(
            "-A vpnaas-mark -i {TUNNEL_DEVICE} -j MARK --set-xmark {mark}"
        )],
        _ => vec![],
    };
    [nat, mss, marks]
}

/// The mark Neutron gives packets that come in on the gateway port (`-i qg-… -j MARK
/// --set-xmark VALUE/MASK` in its scope chain), if it marks them.
async fn gateway_mark(namespace: &str) -> Result<Option<String>> {
    let listed = listed(namespace, "mangle", NEUTRON_SCOPE_CHAIN).await?;
    Ok(listed.unwrap_or_default().iter().find_map(|rule| {
        let words: Vec<&str> = rule.split(' ').collect();
        let from_gateway = words
            .windows(2)
            .any(|w| w[0] == "-i" && w[1].starts_with("qg-"));
        let mark = words
            .windows(2)
            .find(|w| w[0] == "--set-xmark")
            .map(|w| w[1])?;
        (from_gateway && is_mark(mark)).then(|| mark.to_string())
    }))
}

/// `0xHEX/0xHEX`, as iptables prints a mark and its mask.
fn is_mark(text: &str) -> bool {
    let hex = |part: &str| {
        part.strip_prefix("0x").is_some_and(|digits| {
            !digits.is_empty() && digits.len() <= 8 && digits.chars().all(|c| c.is_ascii_hexdigit())
        })
    };
    text.split_once('/')
        .is_some_and(|(value, mask)| hex(value) && hex(mask))
}

/// Whether the router's gateway address is on its gateway port in this namespace: always
/// on a legacy router's; on an HA router's only where keepalived made the namespace
/// primary (the standby holds the same `qg-` port without its addresses). The IKE daemon
/// runs only where this holds, so it follows keepalived and never runs on both nodes.
pub async fn holds_gateway(namespace: &str, state: &RouterState) -> Result<bool> {
    let listed = run("ip", &["-n", namespace, "-o", "address", "show"]).await?;
    Ok(state.gateway.iter().any(|gateway| {
        listed
            .lines()
            .any(|line| gateway_port_has(line, gateway.address.addr()))
    }))
}

/// Whether a line of `ip -o address show` puts `address` on a `qg-` device.
fn gateway_port_has(line: &str, address: std::net::IpAddr) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    let on_gateway_port = words.get(1).is_some_and(|d| d.starts_with("qg-"));
    on_gateway_port
        && words.windows(2).any(|w| {
            matches!(w[0], "inet" | "inet6")
                && w[1].split('/').next().and_then(|a| a.parse().ok()) == Some(address)
        })
}

fn is_v4(net: &IpNet) -> bool {
    net.addr().is_ipv4()
}

/// Brings vpnaas's chains in the router's namespace to `state`'s rules, each chain
/// rewritten only when it differs, and its jump put back first in its built-in chain if
/// Neutron's rewrite of that chain lost it or moved it below Neutron's own. When the
/// exemption or its jump was written, the flows it exempts are forgotten by conntrack.
pub async fn apply(namespace: &str, state: &RouterState) -> Result<()> {
    if !super::namespace_exists(namespace).await {
        return Err(Error::NoRouterNamespace(namespace.to_string()));
    }
    let mark = gateway_mark(namespace).await?;
    let mut exemption_written = false;
    for ((table, hook, chain), wanted) in CHAINS.into_iter().zip(rules(state, mark.as_deref())) {
        let mut written = false;
        if listed(namespace, table, chain).await? != Some(wanted.clone()) {
            rewrite(namespace, table, chain, &wanted).await?;
            written = true;
        }
        written |= ensure_jump(namespace, table, hook, chain).await?;
        exemption_written |= written && chain == EXEMPTION_CHAIN;
    }
    if exemption_written {
        forget_exempted_flows(namespace, state).await;
    }
    Ok(())
}

/// The `conntrack` arguments deleting the entries of flows from each exempted local
/// subnet to its peer subnet (matched on their original direction).
pub fn conntrack_deletions(state: &RouterState) -> Vec<[String; 5]> {
    let mut deletions: Vec<[String; 5]> = exempted(state)
        .into_iter()
        .map(|(local, peer, _)| {
            ["-D", "-s", &local.to_string(), "-d", &peer.to_string()].map(String::from)
        })
        .collect();
    deletions.dedup();
    deletions
}

/// Deletes the conntrack entries of exempted flows in the namespace. A failure is logged,
/// not returned: the exemption is in place for every new flow, and the next write tries
/// again.
async fn forget_exempted_flows(namespace: &str, state: &RouterState) {
    for deletion in conntrack_deletions(state) {
        let mut args = vec!["netns", "exec", namespace, "conntrack"];
        args.extend(deletion.iter().map(String::as_str));
        match deleted(run("ip", &args).await) {
            Ok(()) => {
                tracing::debug!(namespace, pair = ?&deletion[2..], "exempted flows forgotten")
            }
            Err(error) => {
                tracing::warn!(%error, namespace, "cannot delete the conntrack entries of exempted flows")
            }
        }
    }
}

/// A `conntrack -D` outcome: having found no entry to delete (exit status 1, "0 flow
/// entries have been deleted") is no failure.
pub fn deleted(outcome: Result<String>) -> Result<()> {
    match outcome {
        Err(Error::Command { status, stderr, .. })
            if status.code() == Some(1) && stderr.contains(" 0 flow entries have been deleted") =>
        {
            Ok(())
        }
        other => other.map(drop),
    }
}

/// The rules of a chain, `None` when it does not exist.
async fn listed(namespace: &str, table: &str, chain: &str) -> Result<Option<Vec<String>>> {
    let args = [
        "netns", "exec", namespace, "iptables", "-w", "-t", table, "-S", chain,
    ];
    match run("ip", &args).await {
        Ok(text) => Ok(Some(
            text.lines()
                .filter(|l| l.starts_with("-A "))
                .map(String::from)
                .collect(),
        )),
        Err(Error::Command { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

async fn iptables(namespace: &str, table: &str, rule: &[&str]) -> Result<String> {
    let mut args = vec!["netns", "exec", namespace, "iptables", "-w", "-t", table];
    args.extend_from_slice(rule);
    run("ip", &args).await
}

/// Creates the chain if needed, empties it and appends `rules`.
async fn rewrite(namespace: &str, table: &str, chain: &str, rules: &[String]) -> Result<()> {
    if listed(namespace, table, chain).await?.is_none() {
        iptables(namespace, table, &["-N", chain]).await?;
    }
    iptables(namespace, table, &["-F", chain]).await?;
    for rule in rules {
        let words: Vec<&str> = rule.split(' ').collect();
        iptables(namespace, table, &words).await?;
    }
    Ok(())
}

/// Puts `-j chain` first in `hook` unless it is first already; returns whether it wrote
/// it. Neutron's iptables manager, whenever it rewrites a table (any router update),
/// writes its own rules ahead of every rule it does not own: the jump is then still there
/// but below Neutron's SNAT, and is moved back to the top.
async fn ensure_jump(namespace: &str, table: &str, hook: &str, chain: &str) -> Result<bool> {
    let jump = format!("-A {hook} -j {chain}");
    let first = listed(namespace, table, hook)
        .await?
        .and_then(|rules| rules.into_iter().next());
    if first.as_deref() == Some(jump.as_str()) {
        return Ok(false);
    }
    remove_jumps(namespace, table, hook, chain).await?;
    iptables(namespace, table, &["-I", hook, "1", "-j", chain]).await?;
    Ok(true)
}

/// Deletes every `-j chain` from `hook`.
async fn remove_jumps(namespace: &str, table: &str, hook: &str, chain: &str) -> Result<()> {
    while iptables(namespace, table, &["-C", hook, "-j", chain])
        .await
        .is_ok()
    {
        iptables(namespace, table, &["-D", hook, "-j", chain]).await?;
    }
    Ok(())
}

/// Removes vpnaas's jumps and chains from the namespace (gone already is fine); Neutron's
/// rules stay as they are. Every chain is tried whatever failed before.
pub async fn remove(namespace: &str) -> Result<()> {
    if !super::namespace_exists(namespace).await {
        return Ok(());
    }
    let mut teardown = Teardown::default();
    for (table, hook, chain) in CHAINS {
        teardown.step(remove_chain(namespace, table, hook, chain).await);
    }
    teardown.finish()
}

async fn remove_chain(namespace: &str, table: &str, hook: &str, chain: &str) -> Result<()> {
    remove_jumps(namespace, table, hook, chain).await?;
    if listed(namespace, table, chain).await?.is_some() {
        iptables(namespace, table, &["-F", chain]).await?;
        iptables(namespace, table, &["-X", chain]).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::gateway_port_has;

    #[test]
    fn the_gateway_address_counts_only_on_a_gateway_port() {
        let address = "100.127.4.10".parse().expect("ip");
        let primary = "12: qg-2c0e8ed3-9b@if13    inet 100.127.4.10/24 scope global qg-2c0e8ed3-9b\\       valid_lft forever preferred_lft forever";
        let elsewhere = "14: qr-11aa22bb-cc@if15    inet 100.127.4.10/24 scope global qr-11aa22bb-cc\\       valid_lft forever";
        let other_address =
            "12: qg-2c0e8ed3-9b@if13    inet 100.127.4.100/24 scope global qg-2c0e8ed3-9b";
        let v6 = "12: qg-2c0e8ed3-9b@if13    inet6 fe80::1/64 scope link";
        assert!(gateway_port_has(primary, address));
        assert!(!gateway_port_has(elsewhere, address));
        assert!(!gateway_port_has(other_address, address));
        assert!(!gateway_port_has(v6, address));
        assert!(gateway_port_has(
            "12: qg-2c0e8ed3-9b@if13    inet6 2001:db8::5/64 scope global",
            "2001:db8::5".parse().expect("ip")
        ));
    }
}
