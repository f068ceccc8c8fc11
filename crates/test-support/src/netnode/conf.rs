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
         [agent]\nroot_helper = sudo env PATH={venv}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin OVS_RUNDIR={run}\n",
        host = c.host,
        url = c.transport_url,
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
