//! L3 of a router that neutron-l3-agent owns (`l3_mode = "neutron"`): its `qrouter-<id>`
//! namespace, its ports and its SNAT are Neutron's, and nothing here creates, changes or
//! deletes them. What VPN traffic needs is added beside Neutron's rules, in the firewall
//! Neutron itself uses in that namespace (the `iptables` command, whichever backend it
//! drives): two chains of vpnaas's own, jumped to first from the built-in chains — the NAT
//! exemption of each (local, peer) pair, which must come before Neutron's SNAT, and MSS
//! clamping of TCP through each connection. Neutron rewriting its own chains never touches
//! them; removing them leaves Neutron's rules as they were. Every argument is rendered
//! from typed addresses and numbers.

use ipnet::IpNet;
use vpnaas_model::agent::RouterState;

use crate::command::run;
use crate::error::Teardown;
use crate::{Error, Result};

/// Where each chain lives and which built-in chain jumps to it.
const CHAINS: [(&str, &str, &str); 2] = [
    ("nat", "POSTROUTING", "vpnaas-nat"),
    ("mangle", "FORWARD", "vpnaas-mss"),
];

/// The rules of each chain of [`CHAINS`], as `iptables -S` lists them.
pub fn rules(state: &RouterState) -> [Vec<String>; 2] {
    let (mut nat, mut mss) = (Vec::new(), Vec::new());
    for conn in state.connections.iter().filter(|c| c.enabled) {
        let clamp = conn.mtu.saturating_sub(40);
        for local in conn.local_cidrs.iter().filter(|c| is_v4(c)) {
            for peer in conn.peer_cidrs.iter().filter(|c| is_v4(c)) {
                nat.push(format!("-A vpnaas-nat -s {local} -d {peer} -j ACCEPT"));
                for (from, to) in [(local, peer), (peer, local)] {
                    mss.push(format!(
                        "-A vpnaas-mss -s {from} -d {to} -p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss {}:65535 -j TCPMSS --set-mss {clamp}",
                        clamp + 1
                    ));
                }
            }
        }
    }
    nat.dedup();
    mss.dedup();
    [nat, mss]
}

fn is_v4(net: &IpNet) -> bool {
    net.addr().is_ipv4()
}

/// Brings vpnaas's chains in the router's namespace to `state`'s rules, each chain
/// rewritten only when it differs, and its jump put back first in its built-in chain if
/// Neutron's rewrite of that chain lost it or moved it below Neutron's own.
pub async fn apply(namespace: &str, state: &RouterState) -> Result<()> {
    if !super::namespace_exists(namespace).await {
        return Err(Error::NoRouterNamespace(namespace.to_string()));
    }
    for ((table, hook, chain), wanted) in CHAINS.into_iter().zip(rules(state)) {
        if listed(namespace, table, chain).await? != Some(wanted.clone()) {
            rewrite(namespace, table, chain, &wanted).await?;
        }
        ensure_jump(namespace, table, hook, chain).await?;
    }
    Ok(())
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

/// Puts `-j chain` first in `hook` unless it is first already. Neutron's iptables
/// manager, whenever it rewrites a table (any router update), writes its own rules ahead
/// of every rule it does not own: the jump is then still there but below Neutron's SNAT,
/// and is moved back to the top.
async fn ensure_jump(namespace: &str, table: &str, hook: &str, chain: &str) -> Result<()> {
    let jump = format!("-A {hook} -j {chain}");
    let first = listed(namespace, table, hook)
        .await?
        .and_then(|rules| rules.into_iter().next());
    if first.as_deref() == Some(jump.as_str()) {
        return Ok(());
    }
    remove_jumps(namespace, table, hook, chain).await?;
    iptables(namespace, table, &["-I", hook, "1", "-j", chain]).await?;
    Ok(())
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
