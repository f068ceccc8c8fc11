//! L3 plumbing of a router in standalone mode (under `l3_mode = "neutron"`, see
//! [`neutron`]): its namespace, a gateway port on the
//! external network, one port per internal subnet, forwarding, SNAT of internal subnets
//! out of the gateway, and the NAT exemption of VPN traffic. Networks map to Linux bridges
//! in the agent's fabric namespace (created on demand) unless the configuration maps a
//! network to an existing bridge. Every step is idempotent; removal deletes the namespace.

pub mod neutron;
pub mod watch;

use std::fmt::Write as _;

use ipnet::IpNet;
use vpnaas_model::agent::RouterState;
use vpnaas_model::enums::HaRole;

use crate::command::{create, delete, run, run_in_background, run_with_input};
use crate::config::AgentConfig;
use crate::error::Teardown;
use crate::hash::stable_hash;
use crate::{Error, Result};

/// Prefix of gateway ports inside a router namespace.
const GATEWAY_PREFIX: &str = "qg-";
/// Prefix of internal ports inside a router namespace.
const INTERFACE_PREFIX: &str = "qr-";

fn short(id: &str, n: usize) -> String {
    id.chars().filter(|c| *c != '-').take(n).collect()
}

/// The bridge backing a network in the fabric namespace.
pub fn bridge_name(network_id: &str) -> String {
    format!("vb-{}", short(network_id, 11))
}

/// `(namespace, bridge)` backing a network.
pub fn bridge_for(config: &AgentConfig, network_id: &str) -> (String, String) {
    match config.bridges.iter().find(|b| b.network == network_id) {
        Some(mapping) => (mapping.namespace.clone(), mapping.bridge.clone()),
        None => (config.fabric_namespace.clone(), bridge_name(network_id)),
    }
}

async fn ip_in(namespace: &str, args: &[&str]) -> Result<String> {
    if namespace.is_empty() {
        run("ip", args).await
    } else {
        let mut full = vec!["-n", namespace];
        full.extend_from_slice(args);
        run("ip", &full).await
    }
}

/// Whether a namespace has a link named `link` (false when the namespace is gone).
async fn link_exists(namespace: &str, link: &str) -> bool {
    ip_in(namespace, &["link", "show", "dev", link])
        .await
        .is_ok()
}

/// Creates a namespace (if missing) with loopback up.
pub async fn ensure_namespace(name: &str) -> Result<()> {
    create("ip", &["netns", "add", name], || namespace_exists(name)).await?;
    wait_until_mounted(name).await?;
    run("ip", &["-n", name, "link", "set", "lo", "up"]).await?;
    Ok(())
}

/// `ip netns add` creates `/run/netns/NAME` as an empty file first and bind-mounts the
/// namespace onto it afterwards; when another process (a lab's agents start together)
/// created it at the same moment, "File exists" comes back before that mount, and
/// entering the file fails with EINVAL. Until the mount, the file lives on the
/// directory's own filesystem; the namespace mounted on it has the nsfs device.
async fn wait_until_mounted(name: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let dir = std::path::Path::new("/run/netns");
    let file = dir.join(name);
    let device = |path: &std::path::Path| {
        std::fs::metadata(path)
            .map(|m| m.dev())
            .map_err(Error::file(path))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match (device(dir)?, device(&file)?) {
            (parent, file) if parent != file => return Ok(()),
            _ if std::time::Instant::now() > deadline => {
                return Err(Error::Unmounted(name.to_string()));
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
        }
    }
}

/// Whether a namespace exists.
pub async fn namespace_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

/// Names of the namespaces that start with `prefix`.
pub async fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return vec![];
    };
    entries
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Ensures the bridge backing a network exists and is up.
pub async fn ensure_bridge(config: &AgentConfig, network_id: &str) -> Result<(String, String)> {
    let (namespace, bridge) = bridge_for(config, network_id);
    if namespace == config.fabric_namespace {
        ensure_namespace(&namespace).await?;
        if !link_exists(&namespace, &bridge).await {
            create(
                "ip",
                &["-n", &namespace, "link", "add", &bridge, "type", "bridge"],
                || link_exists(&namespace, &bridge),
            )
            .await?;
        }
    }
    ip_in(&namespace, &["link", "set", &bridge, "up"]).await?;
    Ok((namespace, bridge))
}

/// The MAC address of a router's port: derived from the router and the port, so an HA
/// router's port has the same address on its standby, and neighbours' ARP caches stay
/// right when it takes over (locally administered, unicast).
fn port_mac(router_id: &str, port: &str) -> String {
    let hash = stable_hash(&format!("{router_id}/{port}")).to_be_bytes();
    format!(
        "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        hash[0], hash[1], hash[2], hash[3], hash[4]
    )
}

/// Three characters naming this agent in the names of its ends of router ports in a
/// bridge's namespace, which several agents share in a lab (HA routers have ports from
/// two agents on the same bridges).
fn agent_tag(config: &AgentConfig) -> String {
    let hash = stable_hash(&config.host);
    (0..3)
        .map(|i| {
            let digit = (hash >> (i * 5)) % 36;
            char::from_digit(digit as u32, 36).unwrap_or('0')
        })
        .collect()
}

/// One port of a router: its end in the router's namespace, its end on the network's
/// bridge (named for this agent), and the addresses it holds when the router is active.
struct Port {
    inner: String,
    outer: String,
    network_id: String,
    addresses: Vec<IpNet>,
}

/// The router's ports: the gateway port (if any) first, then one per interface.
fn ports_of(config: &AgentConfig, state: &RouterState) -> Vec<Port> {
    let (tag, router) = (agent_tag(config), &state.router_id);
    let gateway = state.gateway.first().map(|first| Port {
        inner: port_name(GATEWAY_PREFIX, router),
        outer: format!("g{tag}{}", short(router, 11)),
        network_id: first.network_id.clone(),
        addresses: state.gateway.iter().map(|p| p.address).collect(),
    });
    let interfaces = state.interfaces.iter().map(|port| Port {
        inner: port_name(INTERFACE_PREFIX, &port.subnet_id),
        outer: format!("i{tag}{}{}", short(router, 5), short(&port.subnet_id, 6)),
        network_id: port.network_id.clone(),
        addresses: vec![port.address],
    });
    gateway.into_iter().chain(interfaces).collect()
}

/// Plumbs a veth from the router namespace into a network's bridge. Its end in the router
/// is up only while the router is active: a standby's port, down, sends nothing (its IPv6
/// link-local chatter, under the MAC address it shares with the active one, would make
/// the bridges send the router's traffic to the standby).
async fn ensure_port(
    config: &AgentConfig,
    router_ns: &str,
    router_id: &str,
    port: &Port,
    active: bool,
) -> Result<()> {
    let (inner, outer) = (port.inner.as_str(), port.outer.as_str());
    let (bridge_ns, bridge) = ensure_bridge(config, &port.network_id).await?;
    if run("ip", &["-n", router_ns, "link", "show", "dev", inner])
        .await
        .is_err()
    {
        let mac = port_mac(router_id, inner);
        let mut args = vec![
            "link", "add", outer, "type", "veth", "peer", "name", inner, "address", &mac, "netns",
            router_ns,
        ];
        if !bridge_ns.is_empty() {
            args = [&["-n", bridge_ns.as_str()][..], &args[..]].concat();
        }
        run("ip", &args).await?;
    }
    ip_in(&bridge_ns, &["link", "set", outer, "master", &bridge, "up"]).await?;
    let state = if active { "up" } else { "down" };
    run("ip", &["-n", router_ns, "link", "set", inner, state]).await?;
    Ok(())
}

/// Gives `device` exactly the `wanted` addresses. An IPv4 address it gains is announced
/// with gratuitous ARP ([`announce`]).
async fn ensure_addresses(router_ns: &str, device: &str, wanted: &[IpNet]) -> Result<()> {
    let shown = run(
        "ip",
        &["-n", router_ns, "-j", "addr", "show", "dev", device],
    )
    .await?;
    let current = parse_addresses(&shown);
    for stale in current.iter().filter(|a| !wanted.contains(a)) {
        run(
            "ip",
            &[
                "-n",
                router_ns,
                "addr",
                "del",
                &stale.to_string(),
                "dev",
                device,
            ],
        )
        .await?;
    }
    for address in wanted.iter().filter(|a| !current.contains(a)) {
        run(
            "ip",
            &[
                "-n",
                router_ns,
                "addr",
                "add",
                &address.to_string(),
                "dev",
                device,
            ],
        )
        .await?;
        if address.addr().is_ipv4() {
            announce(router_ns, device, address);
        }
    }
    Ok(())
}

fn parse_addresses(json: &str) -> Vec<IpNet> {
    let parsed: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let mut out = Vec::new();
    for link in parsed.as_array().into_iter().flatten() {
        for info in link["addr_info"].as_array().into_iter().flatten() {
            if info["scope"] == "link" {
                continue;
            }
            let (Some(local), Some(prefix)) = (info["local"].as_str(), info["prefixlen"].as_u64())
            else {
                continue;
            };
            if let (Ok(ip), Ok(prefix)) = (local.parse(), u8::try_from(prefix)) {
                out.extend(IpNet::new(ip, prefix).ok());
            }
        }
    }
    out
}

fn port_name(prefix: &str, id: &str) -> String {
    format!("{prefix}{}", short(id, 11))
}

/// The namespace, its forwarding, ports, addresses and default route. An HA router's
/// standby gets the ports without addresses (and so without the route).
pub async fn ensure_ports(
    config: &AgentConfig,
    namespace: &str,
    state: &RouterState,
) -> Result<()> {
    // The router's directory marks the namespace as this agent's (see remove_leftovers).
    let dir = config.router_dir(&state.router_id);
    std::fs::create_dir_all(&dir).map_err(Error::file(&dir))?;
    ensure_namespace(namespace).await?;
    run(
        "ip",
        &[
            "netns",
            "exec",
            namespace,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ],
    )
    .await?;
    let active = state.role == HaRole::Active;
    let mut wanted_links = Vec::new();
    for port in ports_of(config, state) {
        ensure_port(config, namespace, &state.router_id, &port, active).await?;
        let addresses = if active { &port.addresses[..] } else { &[] };
        ensure_addresses(namespace, &port.inner, addresses).await?;
        wanted_links.push(port.inner);
    }
    if active {
        default_route(namespace, state).await?;
    }
    remove_stale_ports(namespace, &wanted_links).await
}

/// Promotes a standby whose namespace and ports are in place (`ensure_ports` made them,
/// down and without addresses): its ports up, their addresses (announced), the default
/// route. Nothing else differs between a standby and an active router, so a takeover
/// waits for nothing more (the next full resync checks the rest).
/// One `ip -batch` does it all (each `ip` started costs milliseconds, many more on a busy
/// host); the addresses are announced afterwards, in the background.
pub async fn activate(config: &AgentConfig, namespace: &str, state: &RouterState) -> Result<()> {
    let ports = ports_of(config, state);
    run_with_input(
        "ip",
        &["-n", namespace, "-batch", "-"],
        Some(&activation(state, &ports)),
    )
    .await?;
    for port in &ports {
        for address in port.addresses.iter().filter(|a| a.addr().is_ipv4()) {
            announce(namespace, &port.inner, address);
        }
    }
    Ok(())
}

/// The `ip -batch` lines of [`activate`], made of the router's own port names and typed
/// addresses only: each port up with its addresses, then the default route.
fn activation(state: &RouterState, ports: &[Port]) -> String {
    let mut batch = String::new();
    for port in ports {
        let _ = writeln!(batch, "link set {} up", port.inner);
        for address in &port.addresses {
            let _ = writeln!(batch, "addr replace {address} dev {}", port.inner);
        }
    }
    let gateway_port = port_name(GATEWAY_PREFIX, &state.router_id);
    let routed = state.gateway.iter().filter(|p| p.address.addr().is_ipv4());
    for via in routed.filter_map(|p| p.gateway) {
        let _ = writeln!(batch, "route replace default via {via} dev {gateway_port}");
    }
    batch
}

/// Gratuitous ARP for an address gained (in the background): after an HA takeover the
/// bridges must learn where the router's MAC address lives now.
fn announce(namespace: &str, device: &str, address: &IpNet) {
    let ip = address.addr().to_string();
    run_in_background(
        "ip",
        &[
            "netns", "exec", namespace, "arping", "-U", "-c", "2", "-I", device, &ip,
        ],
    );
}

/// The default route of an active router, via its external subnet's gateway.
async fn default_route(namespace: &str, state: &RouterState) -> Result<()> {
    let gateway_port = port_name(GATEWAY_PREFIX, &state.router_id);
    let routed = state.gateway.iter().filter(|p| p.address.addr().is_ipv4());
    for via in routed.filter_map(|p| p.gateway) {
        run(
            "ip",
            &[
                "-n",
                namespace,
                "route",
                "replace",
                "default",
                "via",
                &via.to_string(),
                "dev",
                &gateway_port,
            ],
        )
        .await?;
    }
    Ok(())
}

async fn remove_stale_ports(namespace: &str, wanted: &[String]) -> Result<()> {
    let parsed = links(namespace).await?;
    for link in parsed.as_array().into_iter().flatten() {
        let Some(name) = link["ifname"].as_str() else {
            continue;
        };
        let ours = name.starts_with(GATEWAY_PREFIX) || name.starts_with(INTERFACE_PREFIX);
        if ours && !wanted.iter().any(|w| w == name) {
            run("ip", &["-n", namespace, "link", "del", "dev", name]).await?;
        }
    }
    Ok(())
}

/// The router's nftables table, rendered from typed addresses and numbers only: SNAT of
/// internal subnets out of the gateway, the NAT exemption of VPN traffic, and MSS clamping
/// of TCP through each connection to its MTU.
pub fn nat_ruleset(state: &RouterState) -> String {
    let internal: Vec<IpNet> = state
        .interfaces
        .iter()
        .map(|p| p.address.trunc())
        .filter(|n| n.addr().is_ipv4())
        .collect();
    let gateway = state
        .gateway
        .iter()
        .map(|p| p.address.addr())
        .find(|a| a.is_ipv4());
    let (mut nat, mut clamp) = (String::new(), String::new());
    // VPN traffic must leave with its own source address: exempt each (local, peer)
    // pair before the SNAT rule, in the same chain (an accept elsewhere would not stop it).
    for conn in state.connections.iter().filter(|c| c.enabled) {
        let mss = conn.mtu.saturating_sub(40);
        for local in conn.local_cidrs.iter().filter(|c| c.addr().is_ipv4()) {
            for peer in conn.peer_cidrs.iter().filter(|c| c.addr().is_ipv4()) {
                let _ = writeln!(nat, "    ip saddr {local} ip daddr {peer} accept");
                for (from, to) in [(local, peer), (peer, local)] {
                    let _ = writeln!(
                        clamp,
                        "    ip saddr {from} ip daddr {to} tcp flags syn tcp option maxseg size > {mss} tcp option maxseg size set {mss}"
                    );
                }
            }
        }
    }
    if let (true, Some(gateway), false) = (state.enable_snat, gateway, internal.is_empty()) {
        let set = internal
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            nat,
            "    ip saddr {{ {set} }} ip daddr != {{ {set} }} snat to {gateway}"
        );
    }
    format!(
        "table ip vpnaas {{}}\ndelete table ip vpnaas\ntable ip vpnaas {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{nat}  }}\n  chain forward {{\n    type filter hook forward priority mangle; policy accept;\n{clamp}  }}\n}}\n"
    )
}

/// Replaces the router's nftables table in one batch.
pub async fn apply_nat(namespace: &str, state: &RouterState) -> Result<()> {
    run_with_input(
        "ip",
        &["netns", "exec", namespace, "nft", "-f", "-"],
        Some(&nat_ruleset(state)),
    )
    .await?;
    Ok(())
}

/// A namespace's links, as `ip -j link show` lists them.
async fn links(namespace: &str) -> Result<serde_json::Value> {
    let shown = run("ip", &["-n", namespace, "-j", "link", "show"]).await?;
    serde_json::from_str(&shown).map_err(|source| Error::Json {
        command: "ip -j link show",
        source,
    })
}

/// Deletes a link of a namespace (gone already, or with its namespace, is fine).
async fn delete_link(namespace: &str, link: &str) -> Result<()> {
    delete(
        "ip",
        &["-n", namespace, "link", "del", "dev", link],
        || async { !link_exists(namespace, link).await },
    )
    .await
}

/// Deletes a namespace (gone already is fine).
async fn delete_namespace(namespace: &str) -> Result<()> {
    delete("ip", &["netns", "del", namespace], || async {
        !namespace_exists(namespace).await
    })
    .await
}

/// Deletes a namespace with its ports and rules. Its links are deleted first: deleting a
/// veth end removes its peer (in the fabric) at once, whereas the kernel destroys the
/// links of a deleted namespace later, so a bridge would still look used right after.
/// Every link is tried, and the namespace deleted, whatever failed before.
pub async fn remove_namespace(namespace: &str) -> Result<()> {
    if !namespace_exists(namespace).await {
        return Ok(());
    }
    let mut teardown = Teardown::default();
    if let Ok(links) = links(namespace).await {
        let names = links.as_array().into_iter().flatten();
        for name in names.filter_map(|l| l["ifname"].as_str()) {
            if name != "lo" {
                teardown.step(delete_link(namespace, name).await);
            }
        }
    }
    teardown.step(delete_namespace(namespace).await);
    teardown.finish()
}

/// Deletes agent-managed bridges that nothing is plugged into any more, and the fabric
/// namespace once it holds nothing else. Several removers (agents sharing a lab's fabric,
/// `lab down`) may prune at once: a fabric that vanishes meanwhile is pruned.
pub async fn prune_fabric(config: &AgentConfig) -> Result<()> {
    let fabric = &config.fabric_namespace;
    if !namespace_exists(fabric).await {
        return Ok(());
    }
    match prune_unused(fabric).await {
        Err(_) if vanishing(fabric).await => Ok(()),
        other => other,
    }
}

/// Whether a namespace is gone within 200 ms (entering one that is being deleted fails
/// while its name is still there).
async fn vanishing(namespace: &str) -> bool {
    for _ in 0..20 {
        if !namespace_exists(namespace).await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}

/// Deletes every unused bridge (each tried, whatever failed before), then the fabric if
/// it holds nothing else.
async fn prune_unused(fabric: &str) -> Result<()> {
    let links = links(fabric).await?;
    let links = links.as_array().cloned().unwrap_or_default();
    let name = |l: &serde_json::Value| l["ifname"].as_str().unwrap_or_default().to_string();
    let mut teardown = Teardown::default();
    let mut remaining = 0;
    for link in &links {
        let link_name = name(link);
        if link_name == "lo" {
            continue;
        }
        let is_bridge = link_name.starts_with("vb-");
        let used = links
            .iter()
            .any(|l| l["master"].as_str() == Some(link_name.as_str()));
        let deleted = is_bridge
            && !used
            && teardown
                .step(delete_link(fabric, &link_name).await)
                .is_some();
        if !deleted {
            remaining += 1;
        }
    }
    if remaining == 0 {
        teardown.step(delete_namespace(fabric).await);
    }
    teardown.finish()
}

#[cfg(test)]
mod tests;
