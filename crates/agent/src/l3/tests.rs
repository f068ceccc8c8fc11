//! Tests of the router namespaces' plumbing.

use super::*;
use crate::fixtures::{ScratchNamespace, is_root};
use vpnaas_model::agent::{ConnectionSpec, PortAddress};

fn port(address: &str) -> PortAddress {
    PortAddress {
        network_id: "n".into(),
        subnet_id: "s".into(),
        address: address.parse().expect("cidr"),
        gateway: None,
    }
}

/// A connection to two peer subnets.
fn connection(mtu: u32) -> ConnectionSpec {
    let mut spec = crate::fixtures::connection("c", mtu);
    spec["peer_cidrs"] = serde_json::json!(["10.2.0.0/24", "10.3.0.0/24"]);
    serde_json::from_value(spec).expect("spec")
}

/// A router with its gateway at `gateway`, an interface on 10.1.0.0/24 and one
/// connection (MTU 1400) to two peer subnets.
fn router_with_a_connection(gateway: &str) -> RouterState {
    RouterState {
        router_id: "r".into(),
        revision: 1,
        admin_state_up: true,
        gateway: vec![port(gateway)],
        enable_snat: true,
        interfaces: vec![port("10.1.0.1/24")],
        services: vec![],
        connections: vec![connection(1400)],
        driver: None,
        ha: false,
        role: HaRole::Active,
        lease_epoch: 0,
        active_peer: None,
    }
}

#[test]
fn port_names_fit_linux_and_macs_are_the_same_on_every_agent() {
    let router = "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f";
    let mac = port_mac(router, "qg-6f1c2d3e4b5");
    assert_eq!(mac, port_mac(router, "qg-6f1c2d3e4b5"));
    assert_ne!(mac, port_mac(router, "qr-0a1b2c3d4e5"));
    assert!(mac.starts_with("02:") && mac.len() == 17, "{mac}");
    let config = |host: &str| AgentConfig {
        host: host.into(),
        ..AgentConfig::default()
    };
    let (one, two) = (agent_tag(&config("gw-1")), agent_tag(&config("gw-2")));
    assert_eq!(one.len(), 3);
    assert_ne!(one, two);
    assert!(one.chars().all(|c| c.is_ascii_alphanumeric()));
}

#[test]
fn exemptions_come_before_snat_and_tcp_is_clamped_to_the_mtu() {
    let state = router_with_a_connection("203.0.113.2/24");
    let rules = nat_ruleset(&state);
    let exempt = rules
        .find("ip saddr 10.1.0.0/24 ip daddr 10.3.0.0/24 accept")
        .expect("exemption");
    let snat = rules.find("snat to 203.0.113.2").expect("snat");
    assert!(exempt < snat, "{rules}");
    assert_eq!(rules.matches("maxseg size set 1360").count(), 4, "{rules}");
    assert!(
        rules.contains("ip saddr { 10.1.0.0/24 } ip daddr != { 10.1.0.0/24 } snat to 203.0.113.2")
    );
}

/// Needs root (CI is root): namespaces are real.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_created_by_many_at_once_is_usable_by_each() {
    assert!(
        std::fs::metadata("/proc/self/ns/net").is_ok() && is_root(),
        "this test creates network namespaces: run it as root"
    );
    for round in 0..5 {
        let name = format!(
            "vt{}-{round}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let creators: Vec<_> = (0..6)
            .map(|_| {
                let name = name.clone();
                tokio::spawn(async move { ensure_namespace(&name).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for creator in creators {
            outcomes.push(creator.await.expect("join"));
        }
        let _ = run("ip", &["netns", "delete", &name]).await;
        for outcome in outcomes {
            outcome.expect("every creator can use the namespace");
        }
    }
}

/// `iptables-save` of the namespace without its comment and counter lines.
async fn saved(namespace: &str) -> Vec<String> {
    let text = run("ip", &["netns", "exec", namespace, "iptables-save"])
        .await
        .expect("iptables-save");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with(':'))
        .map(String::from)
        .collect()
}

async fn iptables(namespace: &str, rule: &str) {
    let mut args = vec!["netns", "exec", namespace, "iptables", "-w"];
    args.extend(rule.split(' '));
    run("ip", &args).await.expect(rule);
}

/// What neutron-l3-agent writes in a router's nat and mangle tables (its shapes, from a
/// real one).
async fn neutron_nat(namespace: &str) {
    for rule in [
        "-t mangle -N neutron-l3-agent-FORWARD",
        "-t mangle -A FORWARD -j neutron-l3-agent-FORWARD",
        "-t mangle -N neutron-l3-agent-scope",
        "-t mangle -A PREROUTING -j neutron-l3-agent-scope",
        "-t mangle -A neutron-l3-agent-scope -i qg-2c0e8ed3-9b -j MARK --set-xmark 0x4000000/0xffff0000",
        "-t nat -N neutron-l3-agent-POSTROUTING",
        "-t nat -N neutron-l3-agent-snat",
        "-t nat -N neutron-postrouting-bottom",
        "-t nat -A POSTROUTING -j neutron-l3-agent-POSTROUTING",
        "-t nat -A POSTROUTING -j neutron-postrouting-bottom",
        "-t nat -A neutron-l3-agent-snat -o qg-2c0e8ed3-9b -j SNAT --to-source 172.24.4.137",
        "-t nat -A neutron-postrouting-bottom -j neutron-l3-agent-snat",
    ] {
        iptables(namespace, rule).await;
    }
}

/// Needs root (CI is root): the namespace and its rules are real.
#[tokio::test]
async fn under_neutron_the_exemption_goes_first_survives_a_rewrite_and_leaves_no_trace() {
    if !is_root() {
        eprintln!("skipped: creates a network namespace and iptables rules (needs root)");
        return;
    }
    let namespace = format!(
        "qrouter-vt{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let _guard = ScratchNamespace(namespace.clone());
    ensure_namespace(&namespace).await.expect("namespace");
    neutron_nat(&namespace).await;
    let before = saved(&namespace).await;
    let state = router_with_a_connection("172.24.4.137/24");

    neutron::apply(&namespace, &state).await.expect("apply");
    let after = saved(&namespace).await;
    let first_postrouting = after.iter().find(|l| l.starts_with("-A POSTROUTING"));
    assert_eq!(
        first_postrouting.map(String::as_str),
        Some("-A POSTROUTING -j vpnaas-nat"),
        "{after:#?}"
    );
    assert!(
        after.contains(&"-A vpnaas-nat -s 10.1.0.0/24 -d 10.3.0.0/24 -j ACCEPT".to_string()),
        "{after:#?}"
    );
    assert_eq!(
        after
            .iter()
            .filter(|l| l.contains("--set-mss 1360"))
            .count(),
        4,
        "{after:#?}"
    );
    assert_eq!(neutron::rules(&state, None)[1].len(), 4);
    // Decrypted packets (on strongSwan's TUN device) get the mark Neutron gives the gateway's.
    let mark = "-A vpnaas-mark -i ipsec0 -j MARK --set-xmark 0x4000000/0xffff0000";
    assert!(after.contains(&mark.to_string()), "{after:#?}");
    let first_prerouting = after.iter().find(|l| l.starts_with("-A PREROUTING"));
    assert_eq!(
        first_prerouting.map(String::as_str),
        Some("-A PREROUTING -j vpnaas-mark")
    );
    // Listed as rendered: a second apply finds nothing to rewrite.
    for (table, chain, wanted) in [("nat", "vpnaas-nat", 0), ("mangle", "vpnaas-mss", 1)] {
        let listed = run(
            "ip",
            &[
                "netns", "exec", &namespace, "iptables", "-t", table, "-S", chain,
            ],
        )
        .await
        .expect("list");
        let rules: Vec<&str> = listed.lines().filter(|l| l.starts_with("-A ")).collect();
        assert_eq!(
            rules,
            neutron::rules(&state, None)[wanted],
            "{table} {chain}"
        );
    }

    // neutron-l3-agent rewrites its built-in chain (a restart, a floating IP): the next
    // apply puts the jump back first, Neutron's rules untouched.
    iptables(&namespace, "-t nat -F POSTROUTING").await;
    iptables(
        &namespace,
        "-t nat -A POSTROUTING -j neutron-l3-agent-POSTROUTING",
    )
    .await;
    iptables(
        &namespace,
        "-t nat -A POSTROUTING -j neutron-postrouting-bottom",
    )
    .await;
    neutron::apply(&namespace, &state)
        .await
        .expect("apply again");
    assert_eq!(saved(&namespace).await, after, "restored as it was");

    // Neutron's iptables manager writes its own rules ahead of every rule it does not own
    // (`_modify_rules`): our jumps stay, but below Neutron's SNAT. The next apply moves
    // them back first.
    for (table, hook, chain) in [
        ("nat", "POSTROUTING", "vpnaas-nat"),
        ("mangle", "FORWARD", "vpnaas-mss"),
    ] {
        iptables(&namespace, &format!("-t {table} -D {hook} -j {chain}")).await;
        iptables(&namespace, &format!("-t {table} -A {hook} -j {chain}")).await;
    }
    neutron::apply(&namespace, &state)
        .await
        .expect("apply after Neutron's reorder");
    assert_eq!(saved(&namespace).await, after, "jumps first again");

    // No VPN left: vpnaas's chains and jumps go, Neutron's rules are exactly as before.
    neutron::remove(&namespace).await.expect("remove");
    assert_eq!(saved(&namespace).await, before);
    neutron::remove(&namespace)
        .await
        .expect("removing twice is fine");
}

/// Waits (at most 10 s: a busy machine) for the watch to wake `router`; false if it did not.
async fn woken(events: &mut tokio::sync::mpsc::UnboundedReceiver<String>, router: &str) -> bool {
    let wait = async {
        while let Some(woken) = events.recv().await {
            if woken == router {
                return true;
            }
        }
        false
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), wait)
        .await
        .unwrap_or(false)
}

/// Needs root (CI is root): keepalived's addresses and Neutron's rule rewrites reach the
/// agent as events from inside the namespace; a namespace made again is watched anew.
#[tokio::test]
async fn a_watched_namespace_wakes_its_router_on_address_and_rule_changes() {
    if !is_root() {
        eprintln!("skipped: creates a network namespace and iptables rules (needs root)");
        return;
    }
    let namespace = format!(
        "qrouter-vw{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let _guard = ScratchNamespace(namespace.clone());
    ensure_namespace(&namespace).await.expect("namespace");
    let (wake, mut events) = tokio::sync::mpsc::unbounded_channel();
    let mut watches = watch::Watches::new(wake);
    watches.watch("r1", &namespace).await;

    let quiet = tokio::time::timeout(std::time::Duration::from_millis(300), events.recv()).await;
    assert!(quiet.is_err(), "no event without a change: {quiet:?}");
    ip_in(&namespace, &["addr", "add", "100.127.4.10/24", "dev", "lo"])
        .await
        .expect("address");
    assert!(
        woken(&mut events, "r1").await,
        "an address added wakes the router"
    );
    iptables(&namespace, "-t nat -N neutron-l3-agent-snat").await;
    assert!(
        woken(&mut events, "r1").await,
        "a rule change wakes the router"
    );

    // Neutron deletes the namespace and makes it again (the router moved away and back):
    // the next watch opens on the new one.
    remove_namespace(&namespace).await.expect("delete");
    ensure_namespace(&namespace).await.expect("again");
    while events.try_recv().is_ok() {}
    watches.watch("r1", &namespace).await;
    ip_in(&namespace, &["addr", "add", "100.127.4.11/24", "dev", "lo"])
        .await
        .expect("address");
    assert!(
        woken(&mut events, "r1").await,
        "the new namespace is watched"
    );

    watches.unwatch("r1");
    while events.try_recv().is_ok() {}
    ip_in(&namespace, &["addr", "add", "100.127.4.12/24", "dev", "lo"])
        .await
        .expect("address");
    let after = tokio::time::timeout(std::time::Duration::from_millis(300), events.recv()).await;
    assert!(after.is_err(), "nothing after unwatch: {after:?}");
}

#[test]
fn exempted_flows_are_deleted_per_pair_and_no_entry_to_delete_is_no_failure() {
    let state = router_with_a_connection("172.24.4.137/24");
    assert_eq!(
        neutron::conntrack_deletions(&state),
        [
            ["-D", "-s", "10.1.0.0/24", "-d", "10.2.0.0/24"].map(String::from),
            ["-D", "-s", "10.1.0.0/24", "-d", "10.3.0.0/24"].map(String::from),
        ]
    );
    let mut disabled = state.clone();
    disabled.connections[0].enabled = false;
    assert!(neutron::conntrack_deletions(&disabled).is_empty());

    use std::os::unix::process::ExitStatusExt as _;
    let failed = |code: i32, stderr: &str| {
        Err(Error::Command {
            command: "conntrack -D".into(),
            status: std::process::ExitStatus::from_raw(code << 8),
            stderr: stderr.into(),
        })
    };
    let none = "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.";
    assert!(neutron::deleted(failed(1, none)).is_ok());
    assert!(neutron::deleted(Ok("1 flow entries have been deleted.".into())).is_ok());
    let refused = "conntrack v1.4.7 (conntrack-tools): Operation failed: Operation not permitted";
    assert!(neutron::deleted(failed(1, refused)).is_err());
    assert!(neutron::deleted(failed(2, none)).is_err());
}

/// Inserts an ICMP echo flow from `from` to `to` into the namespace's conntrack table.
async fn flow(namespace: &str, from: &str, to: &str) {
    let args = [
        "netns",
        "exec",
        namespace,
        "conntrack",
        "-I",
        "-s",
        from,
        "-d",
        to,
        "-p",
        "icmp",
        "--icmp-type",
        "8",
        "--icmp-code",
        "0",
        "--icmp-id",
        "7",
        "-t",
        "60",
    ];
    run("ip", &args).await.expect("conntrack -I");
}

/// The namespace's conntrack entries as `(source, destination)` of their original direction.
async fn flows(namespace: &str) -> Vec<(String, String)> {
    let listed = run("ip", &["netns", "exec", namespace, "conntrack", "-L"])
        .await
        .expect("conntrack -L");
    let field = |line: &str, key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or_default()
            .to_string()
    };
    let mut flows: Vec<_> = listed
        .lines()
        .map(|line| (field(line, "src="), field(line, "dst=")))
        .collect();
    flows.sort();
    flows
}

/// Needs root (CI is root): a flow SNATed before the exemption was first keeps its NAT in
/// its conntrack entry; writing the exemption (or putting its jump back first) deletes the
/// entries of local-to-peer flows, and only those, and an apply that writes nothing
/// deletes nothing.
#[tokio::test]
async fn writing_the_exemption_makes_conntrack_forget_the_flows_it_exempts() {
    if !is_root() {
        eprintln!("skipped: creates a network namespace and conntrack entries (needs root)");
        return;
    }
    let namespace = format!(
        "qrouter-vc{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let _guard = ScratchNamespace(namespace.clone());
    ensure_namespace(&namespace).await.expect("namespace");
    neutron_nat(&namespace).await;
    let state = router_with_a_connection("172.24.4.137/24");
    let (exempt, other) = (("10.1.0.5", "10.3.0.9"), ("10.1.0.5", "192.0.2.9"));
    for (from, to) in [exempt, other] {
        flow(&namespace, from, to).await;
    }

    neutron::apply(&namespace, &state).await.expect("apply");
    let other_only = vec![(other.0.to_string(), other.1.to_string())];
    assert_eq!(
        flows(&namespace).await,
        other_only,
        "the exempted flow is forgotten"
    );

    flow(&namespace, exempt.0, exempt.1).await;
    neutron::apply(&namespace, &state)
        .await
        .expect("apply again");
    assert_eq!(
        flows(&namespace).await.len(),
        2,
        "nothing written, nothing forgotten"
    );

    // Neutron's rewrite moved the jump below its SNAT: putting it back first forgets the
    // flows SNATed meanwhile.
    iptables(&namespace, "-t nat -D POSTROUTING -j vpnaas-nat").await;
    iptables(&namespace, "-t nat -A POSTROUTING -j vpnaas-nat").await;
    neutron::apply(&namespace, &state)
        .await
        .expect("apply after the rewrite");
    assert_eq!(flows(&namespace).await, other_only);
}

#[test]
fn a_takeover_is_one_batch_of_ports_up_addresses_and_the_default_route() {
    let mut state = router_with_a_connection("203.0.113.2/24");
    state.gateway[0].gateway = Some("203.0.113.1".parse().expect("ip"));
    let config = AgentConfig::default();
    let batch = activation(&state, &ports_of(&config, &state));
    assert_eq!(
        batch,
        "link set qg-r up\naddr replace 203.0.113.2/24 dev qg-r\n\
         link set qr-s up\naddr replace 10.1.0.1/24 dev qr-s\n\
         route replace default via 203.0.113.1 dev qg-r\n"
    );
}
