//! A real VPN between two Neutron routers on real network nodes: Keystone; Neutron behind
//! it, with its RPC server on a RabbitMQ; network node `hostA` (userspace Open vSwitch,
//! neutron-openvswitch-agent, neutron-l3-agent) and, on a simulated second host, `hostC`;
//! a `vpnaas server` with `auth = "keystone"` and `inventory = "neutron"` behind the
//! documented haproxy front (the `network` endpoint in Keystone's catalog), and one
//! `vpnaas agent --l3-mode neutron` per node. The VPN is made with the `openstack` CLI,
//! logged in through Keystone as a project member. Router r0
//! is a legacy router on hostA; r1 is an HA router on both nodes, where keepalived decides
//! which is primary. Each has a tenant subnet and a "VM" plugged the way Nova does (a veth
//! on hostA's integration bridge with the port's `iface-id`, its other end in a namespace
//! of the test's own); a connection each way between the routers' gateways.
//!
//! The test waits for both `ACTIVE` and checks that VM2 sees VM1's own address through the
//! tunnel (the NAT exemption ahead of Neutron's SNAT) — then again after Neutron rewrites
//! its rules (a floating IP on r0, neutron-l3-agent restarted), each time with vpnaas's
//! jumps back first. Then r1's primary loses its HA link: keepalived moves the gateway
//! address, the daemon follows (never running on both nodes, watched throughout), the
//! connection shows the failover (`HA_FAILOVER`) and is `ACTIVE` again, vpnaas's
//! `ha_state` follows Neutron's, and the steady ping's longest silence is printed. Then
//! Neutron moves r0 from hostA's L3 agent to hostC's under a steady ping: the daemon
//! moves with the namespace, hostA's is stopped, both connections are `ACTIVE` again and
//! VM2 still sees VM1's own address; the silence is printed. Last,
//! the VPN is deleted: no charon, chain or jump of vpnaas is left in any `qrouter-`
//! namespace of either node, and Neutron's rules there are as they were without vpnaas's.
//!
//! Root only (skips saying why otherwise; fails when `VPNAAS_TEST_REQUIRE_OPENSTACK` is
//! set and something is missing). Everything it starts is stopped on drop, by pid.

mod netnode_lab;

use std::path::Path;
use std::time::{Duration, Instant};

use netnode_lab::{
    Listener, Pinger, Site, Vm, Vpnaas, charons_in, daemons_in, firewall, id, libreswan_root,
    router_updates,
};
use reqwest::Method;
use serde_json::json;
use vpnaas_test_support::front::Front;
use vpnaas_test_support::keystone::Keystone;
use vpnaas_test_support::netnode::{self, NetNode};
use vpnaas_test_support::neutron::{Identity, Neutron, NeutronOptions};
use vpnaas_test_support::rabbitmq::RabbitMq;

const CIDRS: [&str; 2] = ["10.1.0.0/24", "10.2.0.0/24"];
const PSK: &str = "a-secret-between-routers";
const CHARON: &str = "/usr/lib/ipsec/charon";
const PYTHON: &str = "/usr/bin/python3";
const KEEPALIVED: &str = "/usr/sbin/keepalived";

/// How long any state may take to come (Neutron's agents are slow on a busy machine).
const PATIENCE: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vpn_between_neutron_routers_survives_neutron_rewrites_and_follows_keepalived() {
    if vpnaas_test_support::skip_without_netnode() || skip_without_tools() {
        return;
    }
    let started = Instant::now();
    let mut lab = Lab::start().await;
    let stack_up = started.elapsed();
    let sites = lab.sites().await;

    let t = Instant::now();
    let connections = lab.vpn(&sites).await;
    lab.wait_until_active(&connections).await;
    let active = t.elapsed();
    lab.wait_for("vpnaas's jumps first wherever the routers are", || async {
        lab.chains_in_place(&sites).then_some(())
    })
    .await;
    lab.assert_unsnated(&sites).await;

    // Neutron rewrites r0's rules for a floating IP of VM1's, then rebuilds every rule
    // of its routers when neutron-l3-agent restarts: each time the namespace watch puts
    // vpnaas's jumps back first, and VM2 still sees VM1's own address.
    let t = Instant::now();
    lab.floating_ip(&sites[0]).await;
    lab.wait_for("the floating IP's rules", || async {
        lab.has_floating_ip_rules(&sites[0]).then_some(())
    })
    .await;
    lab.wait_for("jumps first after the floating IP", || async {
        lab.chains_in_place(&sites).then_some(())
    })
    .await;
    let after_floating_ip = t.elapsed();
    lab.assert_unsnated(&sites).await;
    let t = Instant::now();
    let updates = router_updates(&lab.first, &sites[0].router);
    lab.first.restart_l3_agent();
    lab.wait_for(
        "neutron-l3-agent of hostA back, r0 processed again",
        || async { (router_updates(&lab.first, &sites[0].router) > updates).then_some(()) },
    )
    .await;
    lab.wait_for("jumps first after the L3 agent's restart", || async {
        lab.chains_in_place(&sites).then_some(())
    })
    .await;
    let after_restart = t.elapsed();
    lab.assert_unsnated(&sites).await;

    let failover = lab.fail_over(&sites, &connections).await;
    let rescheduled = lab.reschedule(&sites, &connections).await;

    let t = Instant::now();
    let rules_without_vpnaas = lab.rules_without_vpnaas(&sites);
    lab.delete_vpn(&connections).await;
    lab.wait_for("nothing of vpnaas in the routers' namespaces", || async {
        lab.vpnaas_gone(&sites).then_some(())
    })
    .await;
    assert_eq!(
        lab.rules_without_vpnaas(&sites),
        rules_without_vpnaas,
        "Neutron's rules changed when vpnaas left"
    );
    let cleaned = t.elapsed();

    // The same routers on Libreswan: pluto runs in Neutron's namespaces and negotiates IKE
    // through Neutron's ports (this kernel has no ESP, so the child SA is refused and said
    // so: KERNEL_REFUSED); then nothing of it is left either.
    let t = Instant::now();
    let connections = lab.libreswan_vpn(&sites).await;
    for conn in &connections {
        lab.wait_for(&format!("IKE up on Libreswan for {conn}"), || async {
            (lab.reason(conn).await == "KERNEL_REFUSED").then_some(())
        })
        .await;
    }
    let libreswan_ike = t.elapsed();
    lab.delete_vpn(&connections).await;
    lab.wait_for("nothing of vpnaas's Libreswan left", || async {
        lab.vpnaas_gone(&sites).then_some(())
    })
    .await;
    assert_eq!(
        lab.rules_without_vpnaas(&sites),
        rules_without_vpnaas,
        "Neutron's rules changed when vpnaas's Libreswan left"
    );
    eprintln!(
        "stack up {stack_up:?}, both ACTIVE {active:?}, jumps first again {after_floating_ip:?} \
         after a floating IP and {after_restart:?} after an L3 agent restart; {failover}; \
         {rescheduled}; VPN gone {cleaned:?}; Libreswan's IKE SAs up {libreswan_ike:?}; whole test {:?}",
        started.elapsed()
    );
    drop(sites);
    lab.check_running();
}

/// The IKE daemons the agent runs, keepalived for Neutron's HA routers, Python for the
/// far VM's listener.
fn skip_without_tools() -> bool {
    let pluto = format!("{}/usr/libexec/ipsec/pluto", libreswan_root());
    let missing: Vec<&str> = [CHARON, &pluto, PYTHON, KEEPALIVED]
        .into_iter()
        .filter(|tool| !Path::new(tool).exists())
        .collect();
    if missing.is_empty() {
        return false;
    }
    let reason = format!("missing {} (run scripts/setup.sh)", missing.join(", "));
    assert!(
        std::env::var_os(vpnaas_test_support::REQUIRE_OPENSTACK).is_none(),
        "{}: {reason}",
        vpnaas_test_support::REQUIRE_OPENSTACK
    );
    eprintln!("skipped: {reason}");
    true
}

/// The whole lab; fields drop in order: the front, vpnaas (agents, server, charons), the
/// network nodes, Neutron, Keystone, RabbitMQ.
struct Lab {
    _front: Front,
    vpnaas: Vpnaas,
    second: Option<NetNode>,
    first: NetNode,
    neutron: Neutron,
    keystone: Keystone,
    rabbit: RabbitMq,
    /// The project member the test acts as.
    member: Identity,
}

impl Lab {
    /// RabbitMQ, Keystone, Neutron behind it, hostA with its vpnaas agent, vpnaas's
    /// server and the front registered as the `network` endpoint.
    async fn start() -> Lab {
        let mut rabbit = RabbitMq::spawn();
        let transport_url = rabbit.transport_url();
        let keystone = Keystone::start().await;
        let options = NeutronOptions::keystone(&keystone).with_bus(&transport_url);
        let neutron = Neutron::start(&options).await;
        rabbit.ready();
        let mut first = NetNode::start(&neutron, &rabbit).await;
        let p1 = &keystone.projects[0];
        let token = keystone
            .login(&p1.member.name, &p1.member.password, &p1.name)
            .await
            .expect("the member logs in");
        let member = Identity::Token(token);
        let service_user = keystone.cloud_service_user().await;
        let mut vpnaas = Vpnaas::start(&neutron.url, &keystone, &service_user, member.clone());
        vpnaas.start_agent(&mut first);
        let front = Front::start(&vpnaas.url, &neutron.url);
        keystone.register_endpoint("network", &front.url).await;
        let lab = Lab {
            _front: front,
            vpnaas,
            second: None,
            first,
            neutron,
            keystone,
            rabbit,
            member,
        };
        lab.wait_for("the vpnaas agent of hostA alive", || async {
            lab.vpnaas.agent_alive(netnode::HOST).await.then_some(())
        })
        .await;
        lab
    }

    /// The network nodes started so far.
    fn nodes(&self) -> Vec<&NetNode> {
        std::iter::once(&self.first)
            .chain(self.second.as_ref())
            .collect()
    }

    /// The nodes holding the site's router namespace.
    fn holders(&self, site: &Site) -> Vec<&NetNode> {
        self.nodes()
            .into_iter()
            .filter(|node| node.namespaces().contains(&site.namespace))
            .collect()
    }

    /// The node where the router's gateway address is (an HA router's primary).
    fn primary(&self, site: &Site) -> Option<&NetNode> {
        self.holders(site).into_iter().find(|node| {
            let addresses = node.netns_exec(&site.namespace, &["ip", "-o", "-4", "addr", "show"]);
            addresses.contains(&format!(" {}/", site.gateway))
        })
    }

    /// The external network; r0 (legacy) while hostA is the only node, so it is hostA's;
    /// then hostC and its vpnaas agent, and r1 (HA, on both). Each with a tenant network
    /// and a VM, returned once the router's namespaces are built and the VM's port is up.
    async fn sites(&mut self) -> Vec<Site> {
        let public = self
            .neutron
            .external_network("public", netnode::EXTERNAL_CIDR)
            .await;
        let r0 = self.site(0, &public.network, false).await;
        let mut second = NetNode::start_second(&self.neutron, &self.rabbit, &self.first).await;
        self.vpnaas.start_agent(&mut second);
        self.second = Some(second);
        self.wait_for("the vpnaas agent of hostC alive", || async {
            self.vpnaas
                .agent_alive(netnode::SECOND_HOST)
                .await
                .then_some(())
        })
        .await;
        let r1 = self.site(1, &public.network, true).await;
        let sites = vec![r0, r1];
        for (site, holders) in sites.iter().zip([1, 2]) {
            self.wait_for(&format!("{} built", site.namespace), || async {
                self.namespace_ready(site, holders).then_some(())
            })
            .await;
            for node in self.holders(site) {
                node.without_tx_offload(&site.namespace);
            }
            netnode::host::without_tx_offload(&netnode::Place::Machine, &site.vm.namespace);
            self.wait_for(&format!("port {} ACTIVE", site.vm.port), || async {
                (self.port_status(&site.vm.port).await == "ACTIVE").then_some(())
            })
            .await;
        }
        sites
    }

    /// Router `n` of the member's project (HA if `ha`: only an admin may ask) with a
    /// network of its own and a VM there.
    async fn site(&self, n: usize, public: &str, ha: bool) -> Site {
        let router = self
            .neutron
            .create(
                &self.neutron.admin,
                "/v2.0/routers",
                "router",
                json!({"name": format!("r{n}"), "project_id": self.project().id, "ha": ha,
                    "external_gateway_info": {"network_id": public}}),
            )
            .await;
        let id = id(&router);
        let cidr = CIDRS[n];
        let net = self
            .neutron
            .tenant_network(&self.member, &format!("n{n}"), cidr, Some(&id))
            .await;
        let gateway = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
            .as_str()
            .expect("gateway address")
            .to_string();
        let project = &self.project().id;
        let vm = Vm::plug(&self.neutron, &self.first, project, &net.network, n).await;
        Site {
            namespace: format!("qrouter-{id}"),
            router: id,
            subnet: net.subnet,
            cidr,
            gateway,
            vm,
        }
    }

    /// The router's namespace is on `holders` nodes, and its primary holds the gateway
    /// address and the subnet's gateway, and has the interface's rules (its address scope
    /// mark), the last the L3 agent adds.
    fn namespace_ready(&self, site: &Site, holders: usize) -> bool {
        if self.holders(site).len() != holders {
            return false;
        }
        let Some(primary) = self.primary(site) else {
            return false;
        };
        let addresses = primary.netns_exec(&site.namespace, &["ip", "-o", "-4", "addr", "show"]);
        let scoped = firewall(primary, &site.namespace)
            .iter()
            .any(|rule| rule.starts_with("-A neutron-l3-agent-scope -i qr-"));
        addresses.contains(&format!(" {}/", site.vm.gateway)) && scoped
    }

    async fn port_status(&self, port: &str) -> String {
        let path = format!("/v2.0/ports/{port}");
        let answer = self
            .neutron
            .call(&self.neutron.admin, Method::GET, &path, None)
            .await;
        answer.body["port"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Keystone's first project, whose member the test acts as.
    fn project(&self) -> &vpnaas_test_support::keystone::Project {
        &self.keystone.projects[0]
    }

    /// Policies, a VPN service per router and a connection each way, made with the
    /// `openstack` CLI through Keystone and the front; returns the connections' ids (r0's,
    /// then r1's).
    async fn vpn(&self, sites: &[Site]) -> Vec<String> {
        self.openstack(&[
            "vpn",
            "ike",
            "policy",
            "create",
            "ike",
            "--ike-version",
            "v2",
        ])
        .await;
        self.openstack(&["vpn", "ipsec", "policy", "create", "ipsec"])
            .await;
        let mut connections = Vec::new();
        for (n, (site, peer)) in [(&sites[0], &sites[1]), (&sites[1], &sites[0])]
            .into_iter()
            .enumerate()
        {
            let service = format!("svc{n}");
            let made = self
                .openstack(&[
                    "vpn",
                    "service",
                    "create",
                    &service,
                    "--router",
                    &site.router,
                    "--subnet",
                    &site.subnet,
                    "-f",
                    "json",
                ])
                .await;
            let made: serde_json::Value = serde_json::from_str(&made).expect("JSON");
            assert_eq!(
                made["Ext v4 IP"],
                json!(site.gateway),
                "the service's address is the router's gateway: {made}"
            );
            let connection = self
                .openstack(&[
                    "vpn",
                    "ipsec",
                    "site",
                    "connection",
                    "create",
                    &format!("conn{n}"),
                    "--vpnservice",
                    &service,
                    "--ikepolicy",
                    "ike",
                    "--ipsecpolicy",
                    "ipsec",
                    "--peer-address",
                    &peer.gateway,
                    "--peer-id",
                    &peer.gateway,
                    "--peer-cidr",
                    peer.cidr,
                    "--psk",
                    PSK,
                    "-f",
                    "value",
                    "-c",
                    "id",
                ])
                .await;
            let connection = connection.trim().to_string();
            // `--dpd` of python-openstackclient 10.5.0 fails before sending anything
            // (`validate_dpd_dict` is handed a list): set through the API instead.
            let dpd = json!({"ipsec_site_connection":
                {"dpd": {"action": "restart", "interval": 1, "timeout": 5}}});
            let path = format!("/v2.0/vpn/ipsec-site-connections/{connection}");
            let (status, body) = self.vpnaas.call(Method::PUT, &path, Some(dpd)).await;
            assert_eq!(status, 200, "PUT {path}: {body}");
            connections.push(connection);
        }
        connections
    }

    /// The `openstack` CLI of the project's member, logged in through Keystone (it finds
    /// the front in the catalog); its output.
    async fn openstack(&self, args: &[&str]) -> String {
        let project = self.project();
        let cli = vpnaas_test_support::workspace_root().join(".venv/bin/openstack");
        let output = tokio::process::Command::new(&cli)
            .args([
                "--os-auth-url",
                &self.keystone.url,
                "--os-identity-api-version",
                "3",
            ])
            .args(["--os-username", &project.member.name])
            .args(["--os-password", &project.member.password])
            .args(["--os-project-name", &project.name])
            .args([
                "--os-user-domain-id",
                "default",
                "--os-project-domain-id",
                "default",
            ])
            .args(args)
            .output()
            .await
            .unwrap_or_else(|e| panic!("{} ({e}): run scripts/setup.sh", cli.display()));
        assert!(
            output.status.success(),
            "openstack {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    async fn wait_until_active(&self, connections: &[String]) {
        for conn in connections {
            self.wait_for(&format!("connection {conn} ACTIVE"), || async {
                (self.vpnaas.status(conn).await == "ACTIVE").then_some(())
            })
            .await;
        }
    }

    /// VM2 sees VM1's own address on a ping through the tunnel, not r0's SNAT address.
    async fn assert_unsnated(&self, sites: &[Site]) {
        let seen = self.source_seen_by(&sites[1].vm, &sites[0].vm).await;
        assert_eq!(
            seen, sites[0].vm.ip,
            "VM2 must see VM1's own address through the tunnel, not the SNAT address {}",
            sites[0].gateway
        );
    }

    /// The source address `to` sees on the echo requests `from` sends it, once one of
    /// them has been answered (each way through the tunnel).
    async fn source_seen_by(&self, to: &Vm, from: &Vm) -> String {
        let listener = Listener::start(to);
        self.wait_for(&format!("a ping from {} to {}", from.ip, to.ip), || async {
            from.pings(&to.ip).then_some(())
        })
        .await;
        listener.finish()
    }

    /// A floating IP for the site's VM: neutron-l3-agent rewrites the router's nat table.
    async fn floating_ip(&self, site: &Site) {
        let networks = self
            .neutron
            .call(
                &self.neutron.admin,
                Method::GET,
                "/v2.0/networks?name=public",
                None,
            )
            .await;
        let public = id(&networks.body["networks"][0]);
        self.neutron
            .create(
                &self.member,
                "/v2.0/floatingips",
                "floatingip",
                json!({"floating_network_id": public, "port_id": site.vm.port}),
            )
            .await;
    }

    /// r0's nat table has Neutron's DNAT rule for the VM's floating IP.
    fn has_floating_ip_rules(&self, site: &Site) -> bool {
        firewall(&self.first, &site.namespace)
            .iter()
            .any(|rule| rule.contains(&format!("-j DNAT --to-destination {}", site.vm.ip)))
    }

    /// r1's primary loses its HA link. Returns what was measured, for the summary line.
    async fn fail_over(&self, sites: &[Site], connections: &[String]) -> String {
        let r1 = &sites[1];
        let primary = self.primary(r1).expect("r1 has a primary").host;
        let watch = BothWatch::start(self, &r1.namespace);
        let ping = Pinger::start(&sites[0].vm, &r1.vm.ip);
        self.wait_for("the steady ping answered", || async {
            (ping.answered() >= 10).then_some(())
        })
        .await;
        let old = self.node(primary);
        let ha_link = ha_link(old, &r1.namespace);
        let cut = Instant::now();
        old.netns_exec(&r1.namespace, &["ip", "link", "set", &ha_link, "down"]);
        let new = self
            .wait_for("keepalived's new primary for r1", || async {
                self.primary(r1)
                    .map(|n| n.host)
                    .filter(|host| *host != primary)
            })
            .await;
        let moved = cut.elapsed();
        let new_node = self.node(new);
        self.wait_for("charon on the new primary", || async {
            (!charons_in(new_node, &r1.namespace).is_empty()).then_some(())
        })
        .await;
        let daemon_after = cut.elapsed() - moved;
        let answered = ping.answered();
        self.wait_for(
            "the ping answered again through the new primary",
            || async { (ping.answered() >= answered + 20).then_some(()) },
        )
        .await;
        let silence = ping.longest_silence();
        drop(ping);
        let both = watch.finish();
        assert!(both.is_empty(), "charon ran on both nodes: {both:?}");
        self.wait_until_active(connections).await;
        let events = self
            .vpnaas
            .get(&format!(
                "/v2.0/vpn/ipsec-site-connections/{}/events",
                connections[1]
            ))
            .await;
        assert!(
            events.to_string().contains("HA_FAILOVER"),
            "r1's connection shows the failover: {events:#}"
        );
        let states = [(new, "active"), (primary, "standby")]
            .map(|(host, state)| (host.to_string(), state.to_string()));
        self.wait_for(
            "vpnaas's ha_state: the new primary active, the old standby",
            || async { (self.vpnaas.ha_states(&r1.router).await == states).then_some(()) },
        )
        .await;
        // vpnaas's `ha_state` comes from the node holding the address; Neutron's own
        // follows keepalived when neutron-l3-agent reports it (seconds later here, and
        // under load not within minutes), so it is printed, not waited for.
        let neutron_says = self.neutron_active_host(&r1.router).await;
        format!(
            "r1 failed over {primary} -> {new}: gateway address moved after {moved:?}, \
             charon running there {daemon_after:?} after it was seen, longest ping silence \
             {silence:.2} s at 20 pps (Neutron's ha_state names {neutron_says:?} active)"
        )
    }

    /// Neutron moves r0 (a legacy router) from hostA's L3 agent to hostC's, as an operator
    /// does (`openstack network agent remove router` / `add router`), under a steady ping
    /// from VM2 to VM1: hostA's L3 agent removes the namespace, hostC's builds it; vpnaas's
    /// agent of hostA stops r0's charon, hostC's starts one in the new namespace; both
    /// connections are `ACTIVE` again and VM2 still sees VM1's own address. Returns what was
    /// measured, for the summary line.
    async fn reschedule(&self, sites: &[Site], connections: &[String]) -> String {
        let r0 = &sites[0];
        let old_charons = charons_in(&self.first, &r0.namespace);
        assert!(!old_charons.is_empty(), "r0's charon runs on hostA");
        let ping = Pinger::start(&sites[1].vm, &r0.vm.ip);
        self.wait_for("the steady ping answered", || async {
            (ping.answered() >= 10).then_some(())
        })
        .await;
        let (from, to) = (
            self.l3_agent(netnode::HOST).await,
            self.l3_agent(netnode::SECOND_HOST).await,
        );
        let moved = Instant::now();
        let path = format!("/v2.0/agents/{from}/l3-routers/{}", r0.router);
        let answer = self
            .neutron
            .call(&self.neutron.admin, Method::DELETE, &path, None)
            .await;
        assert_eq!(
            answer.status.as_u16(),
            204,
            "DELETE {path}: {}",
            answer.body
        );
        let path = format!("/v2.0/agents/{to}/l3-routers");
        let body = json!({"router_id": r0.router});
        let answer = self
            .neutron
            .call(&self.neutron.admin, Method::POST, &path, Some(body))
            .await;
        assert_eq!(answer.status.as_u16(), 201, "POST {path}: {}", answer.body);
        let second = self.second.as_ref().expect("hostC");
        // This lab's userspace datapath needs TX offload off on the new namespace's ports
        // (see `without_tx_offload`): done as soon as the gateway port is there, and again
        // once the router is complete.
        self.wait_for("r0's gateway port on hostC", || async {
            let links = second
                .namespaces()
                .contains(&r0.namespace)
                .then(|| second.netns_exec(&r0.namespace, &["ip", "-o", "link", "show"]));
            links.filter(|l| l.contains(" qg-")).map(|_| ())
        })
        .await;
        second.without_tx_offload(&r0.namespace);
        self.wait_for("r0 built on hostC only", || async {
            let holders: Vec<&str> = self.holders(r0).iter().map(|n| n.host).collect();
            (holders == [netnode::SECOND_HOST] && self.namespace_ready(r0, 1)).then_some(())
        })
        .await;
        second.without_tx_offload(&r0.namespace);
        let built = moved.elapsed();
        self.wait_for("r0's charon on hostC", || async {
            (!charons_in(second, &r0.namespace).is_empty()).then_some(())
        })
        .await;
        let daemon = moved.elapsed();
        let answered = ping.answered();
        self.wait_for("the ping answered again through hostC", || async {
            (ping.answered() >= answered + 20).then_some(())
        })
        .await;
        let resumed = moved.elapsed();
        let silence = ping.longest_silence();
        drop(ping);
        self.wait_until_active(connections).await;
        self.wait_for("hostA's charon of r0 stopped", || async {
            old_charons
                .iter()
                .all(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
                .then_some(())
        })
        .await;
        self.assert_unsnated(sites).await;
        format!(
            "r0 moved hostA -> hostC: namespace built after {built:?}, charon there after \
             {daemon:?}, ping through it again after {resumed:?} (longest silence {silence:.2} s \
             at 20 pps)"
        )
    }

    /// The id of `host`'s neutron-l3-agent.
    async fn l3_agent(&self, host: &str) -> String {
        let path = format!("/v2.0/agents?agent_type=L3%20agent&host={host}");
        let answer = self
            .neutron
            .call(&self.neutron.admin, Method::GET, &path, None)
            .await;
        id(&answer.body["agents"][0])
    }

    fn node(&self, host: &str) -> &NetNode {
        self.nodes()
            .into_iter()
            .find(|n| n.host == host)
            .expect("a node of the lab")
    }

    /// The host Neutron's `ha_state` names `active` for `router`.
    async fn neutron_active_host(&self, router: &str) -> Option<String> {
        let path = format!("/v2.0/routers/{router}/l3-agents");
        let answer = self
            .neutron
            .call(&self.neutron.admin, Method::GET, &path, None)
            .await;
        answer.body["agents"]
            .as_array()?
            .iter()
            .find(|a| a["ha_state"] == "active")
            .and_then(|a| a["host"].as_str())
            .map(str::to_string)
    }

    /// vpnaas's chains, jumped to first from POSTROUTING and FORWARD, hold the exemption,
    /// on every node holding each router.
    fn chains_in_place(&self, sites: &[Site]) -> bool {
        let pairs = [(&sites[0], &sites[1]), (&sites[1], &sites[0])];
        pairs.into_iter().all(|(site, peer)| {
            self.holders(site).into_iter().all(|node| {
                let rules = firewall(node, &site.namespace);
                let exemption =
                    format!("-A vpnaas-nat -s {} -d {} -j ACCEPT", site.cidr, peer.cidr);
                let hooks = [
                    ("nat", "POSTROUTING", "vpnaas-nat"),
                    ("mangle", "FORWARD", "vpnaas-mss"),
                ];
                rules.contains(&exemption)
                    && hooks.into_iter().all(|(table, hook, chain)| {
                        first_rule(&rules, table, hook) == Some(format!("-A {hook} -j {chain}"))
                    })
            })
        })
    }

    /// Per node and router namespace, its rules without vpnaas's.
    fn rules_without_vpnaas(&self, sites: &[Site]) -> Vec<Vec<String>> {
        let mut all = Vec::new();
        for site in sites {
            for node in self.holders(site) {
                let rules = firewall(node, &site.namespace);
                all.push(
                    rules
                        .into_iter()
                        .filter(|r| !r.contains("vpnaas-"))
                        .collect(),
                );
            }
        }
        all
    }

    /// No charon or pluto in any router namespace, no `vpnaas-` chain or jump in its
    /// rules.
    fn vpnaas_gone(&self, sites: &[Site]) -> bool {
        sites.iter().all(|site| {
            self.holders(site).into_iter().all(|node| {
                charons_in(node, &site.namespace).is_empty()
                    && daemons_in(node, &site.namespace, "pluto").is_empty()
                    && !firewall(node, &site.namespace)
                        .iter()
                        .any(|rule| rule.contains("vpnaas-"))
            })
        })
    }

    /// A Libreswan flavor (admin), a VPN service of that flavor per router and a
    /// connection each way, on the policies made before, through vpnaas's API.
    async fn libreswan_vpn(&self, sites: &[Site]) -> Vec<String> {
        let api = &self.vpnaas;
        let admin_post = |path: &'static str, body: serde_json::Value| async move {
            let (status, body) = api.call_as_admin(Method::POST, path, Some(body)).await;
            assert_eq!(status, 201, "POST {path}: {body}");
            body
        };
        let profile = admin_post(
            "/v2.0/service_profiles",
            json!({"service_profile": {"driver": "libreswan"}}),
        )
        .await;
        let flavor = admin_post(
            "/v2.0/flavors",
            json!({"flavor": {"name": "libreswan", "service_type": "VPN"}}),
        )
        .await;
        let flavor = id(&flavor["flavor"]);
        let path = format!("/v2.0/flavors/{flavor}/service_profiles");
        let body = json!({"service_profile": {"id": id(&profile["service_profile"])}});
        let (status, answer) = api.call_as_admin(Method::POST, &path, Some(body)).await;
        assert_eq!(status, 201, "POST {path}: {answer}");
        let policy = |kind: &'static str| async move {
            let listed = api.get(&format!("/v2.0/vpn/{kind}")).await;
            id(&listed[kind][0])
        };
        let (ike, ipsec) = (policy("ikepolicies").await, policy("ipsecpolicies").await);
        let mut connections = Vec::new();
        for (site, peer) in [(&sites[0], &sites[1]), (&sites[1], &sites[0])] {
            let service = json!({"vpnservice": {"router_id": site.router,
                "subnet_id": site.subnet, "flavor_id": flavor}});
            let (status, service) = api
                .call(Method::POST, "/v2.0/vpn/vpnservices", Some(service))
                .await;
            assert_eq!(status, 201, "POST vpnservices: {service}");
            let conn = json!({"ipsec_site_connection": {
                "vpnservice_id": id(&service["vpnservice"]), "ikepolicy_id": ike,
                "ipsecpolicy_id": ipsec, "peer_address": peer.gateway, "peer_id": peer.gateway,
                "peer_cidrs": [peer.cidr], "psk": PSK}});
            let (status, conn) = api
                .call(Method::POST, "/v2.0/vpn/ipsec-site-connections", Some(conn))
                .await;
            assert_eq!(status, 201, "POST ipsec-site-connections: {conn}");
            connections.push(id(&conn["ipsec_site_connection"]));
        }
        connections
    }

    /// A connection's `status_reason`.
    async fn reason(&self, conn: &str) -> String {
        let path = format!("/v2.0/vpn/ipsec-site-connections/{conn}");
        self.vpnaas.get(&path).await["ipsec_site_connection"]["status_reason"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Deletes the connections, then every VPN service.
    async fn delete_vpn(&self, connections: &[String]) {
        for conn in connections {
            self.vpnaas.delete("ipsec-site-connections", conn).await;
        }
        let services = self.vpnaas.get("/v2.0/vpn/vpnservices").await;
        for service in services["vpnservices"].as_array().expect("services") {
            self.vpnaas.delete("vpnservices", &id(service)).await;
        }
    }

    /// Polls `probe` until it gives a value, failing with the logs after [`PATIENCE`]
    /// or when a daemon of the lab has died.
    async fn wait_for<T, F, Fut>(&self, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let started = Instant::now();
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            if started.elapsed() > PATIENCE {
                let mut logs = self.vpnaas.logs();
                for node in self.nodes() {
                    for agent in ["neutron-l3-agent", "neutron-openvswitch-agent"] {
                        logs += &format!("\n== {agent} of {}\n{}", node.host, node.log(agent));
                    }
                }
                panic!("no {what} after {PATIENCE:?}\n{logs}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Panics when a process of the lab has exited.
    fn check_running(&mut self) {
        self.first.check_running();
        if let Some(second) = &mut self.second {
            second.check_running();
        }
        self.vpnaas.check_running();
    }
}

/// The `ha-` device of an HA router's namespace on `node`.
fn ha_link(node: &NetNode, namespace: &str) -> String {
    let links = node.netns_exec(namespace, &["ip", "-o", "link", "show"]);
    links
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name))
        .find(|name| name.starts_with("ha-"))
        .expect("an HA router has an ha- device")
        .to_string()
}

/// Looks at both nodes every 20 ms, on a thread of its own, for a charon in the router's
/// namespace on both at once.
struct BothWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    seen: std::thread::JoinHandle<Vec<String>>,
}

impl BothWatch {
    fn start(lab: &Lab, namespace: &str) -> BothWatch {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let namespace = namespace.to_string();
        let nodes: Vec<(String, std::process::Command)> = lab
            .nodes()
            .into_iter()
            .map(|node| {
                let mut command = node.command("ip");
                command.args(["netns", "pids", &namespace]);
                (node.host.to_string(), command)
            })
            .collect();
        let seen = std::thread::spawn(move || {
            let mut nodes = nodes;
            let mut both = Vec::new();
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let mut running = Vec::new();
                for (host, command) in &mut nodes {
                    if runs_charon(command) {
                        running.push(host.clone());
                    }
                }
                if running.len() > 1 {
                    both.push(format!("{running:?}"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            both
        });
        BothWatch { stop, seen }
    }

    /// The moments charon ran on both nodes (none, or the test fails).
    fn finish(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.seen.join().expect("the watch")
    }
}

/// Whether one of the pids `ip netns pids` lists is a charon.
fn runs_charon(command: &mut std::process::Command) -> bool {
    command.output().is_ok_and(|output| {
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .any(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim() == "charon")
            })
    })
}

/// The first rule of `table`'s chain `chain` in `iptables-save` lines.
fn first_rule(rules: &[String], table: &str, chain: &str) -> Option<String> {
    let header = format!("*{table}");
    let prefix = format!("-A {chain} ");
    rules
        .iter()
        .skip_while(|line| **line != header)
        .take_while(|line| line.as_str() != "COMMIT")
        .find(|line| line.starts_with(&prefix))
        .cloned()
}
