//! The network node's configuration files, written into the lab's directory: a
//! `neutron.conf` common to its agents (bus, host, paths, root helper) and one file per
//! agent. Their values are the lab's own paths, ports and names, never a test's input.

use std::path::Path;

/// What the files are made of.
pub struct NodeConf<'a> {
    pub dir: &'a Path,
    pub host: &'a str,
    pub transport_url: &'a str,
    /// The Neutron virtualenv, whose `bin` holds `privsep-helper` and
    /// `neutron-keepalived-state-change`.
    pub venv: &'a Path,
    /// Open vSwitch's run directory and database port.
    pub ovs_run_dir: &'a Path,
    pub ovsdb_port: u16,
    /// The OVS agent's OpenFlow controller port.
    pub openflow_port: u16,
}

/// The bridges, each an OVS bridge on the netdev datapath (hence a TAP device of that
/// name in the host's namespace); names of vpnaas's own, not Neutron's defaults, so that
/// no other Open vSwitch on the machine (a system one, another lab) holds them.
pub const INTEGRATION_BRIDGE: &str = "vpnaas-int";
pub const EXTERNAL_BRIDGE: &str = "vpnaas-ex";
pub const TENANT_BRIDGE: &str = "vpnaas-phys";

/// `neutron.conf` for the agents. Even as root, the agents start privsep's daemon and
/// keepalived through `root_helper`; sudo resets PATH (secure_path) and the environment,
/// so the venv's `bin` and `OVS_RUNDIR` are given again behind `env`.
pub fn neutron(c: &NodeConf) -> String {
    let d = c.dir.display();
    format!(
        "[DEFAULT]\nhost = {host}\ntransport_url = {url}\nstate_path = {d}/{host}\n\
         [oslo_concurrency]\nlock_path = {d}/lock\n\
         [oslo_messaging_notifications]\ndriver = noop\n\
         [agent]\nroot_helper = sudo env {env}\n",
        host = c.host,
        url = c.transport_url,
        env = root_env(c),
    )
}

/// What commands run as root are given again behind sudo: the venv's `bin` first in
/// PATH, and Open vSwitch's run directory.
fn root_env(c: &NodeConf) -> String {
    format!(
        "PATH={venv}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin OVS_RUNDIR={run}",
        venv = c.venv.display(),
        run = c.ovs_run_dir.display(),
    )
}

/// `neutron-openvswitch-agent`'s file: netdev datapath, physnet `public` on the external
/// bridge, `physnet1` (tenant VLANs) on the tenant bridge, no tunnels, no firewall.
pub fn ovs_agent(c: &NodeConf) -> String {
    format!(
        "[ovs]\nintegration_bridge = {INTEGRATION_BRIDGE}\ndatapath_type = netdev\n\
         bridge_mappings = {ext}:{EXTERNAL_BRIDGE},{tenant}:{TENANT_BRIDGE}\n\
         of_listen_address = 127.0.0.1\nof_listen_port = {of}\n\
         ovsdb_connection = tcp:127.0.0.1:{db}\n\
         [agent]\ntunnel_types =\n[securitygroup]\nfirewall_driver = noop\n",
        ext = crate::neutron::EXTERNAL_PHYSNET,
        tenant = crate::neutron::TENANT_PHYSNET,
        of = c.openflow_port,
        db = c.ovsdb_port,
    )
}

/// `neutron-l3-agent`'s file: legacy routers (HA when the router asks), ports plugged as
/// veth pairs (the netdev datapath's internal ports are TAP devices of ovs-vswitchd,
/// which cannot move into a namespace), no metadata proxy.
pub fn l3_agent(c: &NodeConf) -> String {
    format!(
        "[DEFAULT]\ninterface_driver = openvswitch\novs_use_veth = True\nagent_mode = legacy\n\
         enable_metadata_proxy = False\n\
         [ovs]\nintegration_bridge = {INTEGRATION_BRIDGE}\novsdb_connection = tcp:127.0.0.1:{db}\n",
        db = c.ovsdb_port,
    )
}

/// What `l3_agent.ini` gains when neutron-l3-agent runs neutron-vpnaas's L3 agent
/// extension with its strongSwan driver: a status report every second (60 s by default)
/// and the lab's `strongswan.conf` template ([`neutron_vpnaas_strongswan`]).
///
/// The root helper takes the shape `sudo HELPER ROOTWRAP_CONF` because only then does
/// the driver hand a rootwrap configuration to `neutron-vpn-netns-wrapper` (which checks
/// the `ipsec` command against the venv's `vpnaas.filters` with it); with any other root
/// helper it passes an empty argument, which the wrapper refuses ("unrecognized
/// arguments"). `HELPER` ([`root_helper_script`]) runs the command as the plain root
/// helper does.
pub fn neutron_vpnaas_extension(c: &NodeConf) -> String {
    let d = c.dir.display();
    format!(
        "[agent]\nextensions = vpnaas\n\
         root_helper = sudo {d}/root-helper {d}/neutron-rootwrap.conf\n\
         [vpnagent]\n\
         vpn_device_driver = neutron_vpnaas.services.vpn.device_drivers.strongswan_ipsec.StrongSwanDriver\n\
         [ipsec]\nipsec_status_check_interval = 1\n\
         [strongswan]\nstrongswan_config_template = {d}/strongswan.conf.template\n"
    )
}

/// The root helper of [`neutron_vpnaas_extension`]: drops the rootwrap configuration
/// (its first argument) and runs the rest with [`root_env`].
///
/// `neutron-vpn-netns-wrapper` refuses to run unless `/proc/1/ns/net` differs from its
/// own network namespace, and this machine's pid 1 (the sandbox's) does not let root
/// read that link (EACCES, a crash of the wrapper). So `ip netns exec NS
/// …/neutron-vpn-netns-wrapper …` runs with the helper's own `/proc/PID` bound over
/// `/proc/1` in the private mount namespace `ip netns exec` makes: a process in the
/// host's network namespace, as pid 1 is on a real node. The helper waits for it (not
/// `exec`: `ip netns exec` moves its own process into the namespace).
pub fn root_helper_script(c: &NodeConf) -> String {
    let env = root_env(c);
    format!(
        "#!/bin/sh\nshift\n\
         if [ \"$1 $2 $3\" = \"ip netns exec\" ] && [ \"${{5##*/}}\" = neutron-vpn-netns-wrapper ]; then\n\
         \tns=$4\n\tshift 4\n\
         \tenv {env} ip netns exec \"$ns\" sh -c 'mount --bind /proc/$0 /proc/1 && exec \"$@\"' \"$$\" \"$@\"\n\
         \texit $?\nfi\n\
         exec env {env} \"$@\"\n"
    )
}

/// The rootwrap configuration `neutron-vpn-netns-wrapper` checks its command with: the
/// venv's filters.
pub fn rootwrap(c: &NodeConf) -> String {
    let venv = c.venv.display();
    format!(
        "[DEFAULT]\nfilters_path = {venv}/etc/neutron/rootwrap.d\n\
         exec_dirs = /sbin,/usr/sbin,/bin,/usr/bin,{venv}/bin\n"
    )
}

/// neutron-vpnaas's `strongswan.conf` template (Jinja, rendered per router). This kernel
/// has no ESP, so charon carries ESP itself (`kernel-libipsec`, plaintext through the TUN
/// device `ipsec0`), with an explicit plugin list that has what the `ipsec` starter and
/// `ipsec status` need (`stroke`) and logs to `charon-<router>.log` in the lab's
/// directory. The bundled template loads every plugin of `/etc/strongswan.d`, kernel ESP
/// among them.
pub fn neutron_vpnaas_strongswan(c: &NodeConf) -> String {
    let d = c.dir.display();
    format!(
        "charon {{\n\
         \tload_modular = no\n\
         \tload = random nonce openssl kdf pem pkcs1 x509 pubkey revocation constraints \
         kernel-libipsec kernel-netlink socket-default stroke updown\n\
         \tthreads = 16\n\
         \tfilelog {{\n\t\tlab {{\n\
         \t\t\tpath = {d}/charon-{{{{ vpnservice.router_id }}}}.log\n\
         \t\t\ttime_format = %H:%M:%S\n\t\t\ttime_add_ms = yes\n\
         \t\t\tflush_line = yes\n\t\t\tdefault = 1\n\t\t}}\n\t}}\n}}\n"
    )
}
