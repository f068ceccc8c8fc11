//! The configuration files of a Neutron lab, written by the lab into its scratch
//! directory: MariaDB's, neutron's (router + vpnaas plugins, ML2 flat/vlan; a message bus
//! and the openvswitch mechanism driver only when agents are wanted), the paste pipeline
//! and uWSGI's. Their values are the lab's
//! own paths, ports and passwords, never a test's input.

use std::fmt::Write as _;
use std::path::Path;

/// The database user Neutron connects as, and its password.
pub const DB_USER: &str = "neutron";
pub const DB_PASSWORD: &str = "neutron-db-pw";
/// The physical network of the flat external networks tests create.
pub const EXTERNAL_PHYSNET: &str = "public";
/// The physical network whose VLANs tenant networks (and L3 HA networks) are.
pub const TENANT_PHYSNET: &str = "physnet1";

/// `my.cnf` of a private MariaDB on `dir` (datadir `dir/data`), loopback `port`.
/// Durability is traded for speed: a lab's data lives as long as its test.
pub fn mariadb(dir: &Path, port: u16, as_root: bool) -> String {
    let d = dir.display();
    let user = if as_root { "user = root\n" } else { "" };
    format!(
        "[mysqld]\n{user}datadir = {d}/data\nsocket = {d}/mysqld.sock\npid-file = {d}/mysqld.pid\n\
         log-error = {d}/mariadb.err\nbind-address = 127.0.0.1\nport = {port}\nskip-name-resolve\n\
         character-set-server = utf8mb4\ncollation-server = utf8mb4_general_ci\n\
         innodb_buffer_pool_size = 64M\ninnodb_log_file_size = 16M\n\
         innodb_flush_log_at_trx_commit = 0\ninnodb_doublewrite = 0\nsync_binlog = 0\n\
         [client]\nsocket = {d}/mysqld.sock\n"
    )
}

/// The SQL that gives Neutron its database and user.
pub fn grant() -> String {
    format!(
        "CREATE DATABASE neutron CHARACTER SET utf8mb4; \
         CREATE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{DB_PASSWORD}'; \
         GRANT ALL ON neutron.* TO '{DB_USER}'@'127.0.0.1';"
    )
}

/// `[database]` of neutron for MariaDB on `port`.
pub fn database(port: u16) -> String {
    format!(
        "[database]\nconnection = mysql+pymysql://{DB_USER}:{DB_PASSWORD}@127.0.0.1:{port}/neutron?charset=utf8mb4\nmax_pool_size = 5\n"
    )
}

/// Keystone's side of `neutron.conf`: keystonemiddleware's service user.
pub struct KeystoneAuth<'a> {
    pub url: &'a str,
    pub user: &'a str,
    pub password: &'a str,
    pub project: &'a str,
}

/// `neutron.conf` for an API on `dir`, talking to MariaDB on `db_port`, with Keystone
/// authentication or (`None`) identity from the `X-Project-Id`/`X-Roles` headers.
/// With a bus (`transport_url`), one RPC worker for agents and one for their reports.
pub fn neutron(
    dir: &Path,
    db_port: u16,
    keystone: Option<&KeystoneAuth>,
    transport_url: Option<&str>,
) -> String {
    let d = dir.display();
    let (transport_url, rpc_workers) = transport_url.map_or(("fake:/", 0), |url| (url, 1));
    let strategy = if keystone.is_some() {
        "keystone"
    } else {
        "noauth"
    };
    let mut conf = format!(
        "[DEFAULT]\ncore_plugin = ml2\nservice_plugins = router,vpnaas\nauth_strategy = {strategy}\n\
         api_paste_config = {d}/api-paste.ini\nstate_path = {d}/state\n\
         transport_url = {transport_url}\nrpc_workers = {rpc_workers}\n\
         rpc_state_report_workers = {rpc_workers}\n\
         notify_nova_on_port_status_changes = false\nnotify_nova_on_port_data_changes = false\n\
         allow_overlapping_ips = true\nlog_dir = {d}\nlog_file = neutron-api.log\n\
         [oslo_concurrency]\nlock_path = {d}/lock\n\
         [oslo_messaging_notifications]\ndriver = noop\n\
         [service_providers]\nservice_provider = VPN:strongswan:neutron_vpnaas.services.vpn.service_drivers.ipsec.IPsecVPNDriver:default\n\
         {}",
        database(db_port)
    );
    if let Some(k) = keystone {
        let _ = write!(
            conf,
            "[keystone_authtoken]\nwww_authenticate_uri = {url}\nauth_url = {url}\nauth_type = password\n\
             username = {user}\npassword = {password}\nproject_name = {project}\n\
             user_domain_id = default\nproject_domain_id = default\nmemcached_servers =\n\
             service_token_roles_required = true\n",
            url = k.url,
            user = k.user,
            password = k.password,
            project = k.project,
        );
    }
    conf
}

/// ML2: flat external networks on physnet `public`, tenant networks as VLANs of
/// `physnet1`; the openvswitch mechanism driver when agents bind ports (`agents`), else
/// none. Security groups are not enforced (`noop`), as no VM is protected here.
pub fn ml2(agents: bool) -> String {
    let (drivers, firewall) = if agents {
        ("openvswitch", "[securitygroup]\nfirewall_driver = noop\n")
    } else {
        ("", "")
    };
    format!(
        "[ml2]\ntype_drivers = flat,vlan\ntenant_network_types = vlan\nmechanism_drivers = {drivers}\n\
         extension_drivers = port_security\n[ml2_type_flat]\nflat_networks = {EXTERNAL_PHYSNET}\n\
         [ml2_type_vlan]\nnetwork_vlan_ranges = {TENANT_PHYSNET}:100:199\n{firewall}"
    )
}

/// The paste pipelines. `noauth` differs from neutron's own: it builds the request's
/// context from `X-Project-Id`/`X-User-Id`/`X-Roles` (keystonecontext) instead of
/// making every caller the admin of one fake project, so policy is exercised.
pub const API_PASTE: &str = "\
[composite:neutron]
use = egg:Paste#urlmap
/: neutronversions
/v2.0: neutronapi_v2_0

[composite:neutronapi_v2_0]
use = call:neutron.auth:pipeline_factory
noauth = http_proxy_to_wsgi request_id catch_errors keystonecontext extensions neutronapiapp_v2_0
keystone = http_proxy_to_wsgi request_id catch_errors authtoken keystonecontext extensions neutronapiapp_v2_0

[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware.http_proxy_to_wsgi:HTTPProxyToWSGI.factory

[filter:request_id]
paste.filter_factory = oslo_middleware:RequestId.factory

[filter:catch_errors]
paste.filter_factory = oslo_middleware:CatchErrors.factory

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory

[filter:keystonecontext]
paste.filter_factory = neutron.auth:NeutronKeystoneContext.factory

[filter:extensions]
paste.filter_factory = neutron.api.extensions:plugin_aware_extension_middleware_factory

[app:neutronversions]
paste.app_factory = neutron.pecan_wsgi.app:versions_factory

[app:neutronapiapp_v2_0]
paste.app_factory = neutron.api.v2.router:APIRouter.factory
";

/// uWSGI serving neutron's WSGI application from `venv` on loopback `port` with
/// `workers` processes, reading the config files of `dir`.
pub fn uwsgi(dir: &Path, venv: &Path, port: u16, workers: u32) -> String {
    format!(
        "[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nmodule = neutron.wsgi.api:application\n\
         virtualenv = {venv}\nenv = OS_NEUTRON_CONFIG_DIR={d}\n\
         env = OS_NEUTRON_CONFIG_FILES=neutron.conf;ml2_conf.ini\n\
         master = true\nprocesses = {workers}\nthreads = 1\nenable-threads = true\nlazy-apps = true\n\
         buffer-size = 65535\n\
         # uWSGI's http-socket breaks kept-alive connections after ~100 requests\n\
         add-header = Connection: close\ndisable-logging = true\n\
         die-on-term = true\nexit-on-reload = false\n\
         # a worker that cannot load neutron ends uWSGI (the test shows why) instead of answering 500\n\
         need-app = true\n",
        d = dir.display(),
        venv = venv.display(),
    )
}
