//! The lab's unmanaged sites: `vpnaas lab unmanaged up N CONNECTION` builds, on the lab's
//! internet, a site vpnaas knows nothing of (a router namespace `<prefix>-u<N>` holding
//! the connection's peer address, a host namespace `<prefix>-uh<N>` at `.10` of its first
//! peer CIDR) and runs a plain strongSwan (or Libreswan) there, configured only from the
//! connection's downloaded peer configuration: the tunnel coming up proves the download.
//! The daemon's own settings (plugins, sockets, log) are the lab's; every connection
//! setting is the download's. `lab unmanaged down N` (and `lab down`) kill what runs in
//! those namespaces and remove them.

use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ipnet::IpNet;
use serde_json::{Value, json};
use vpnaas_agent::data_plane::{self, KernelEsp};
use vpnaas_agent::{AgentConfig, command, l3, process};
use vpnaas_client::Client;
use vpnaas_model::Kind;

use super::LabArgs;
use super::far_credentials::{self, Credentials};
use vpnaas_server::peer_config::certificates::CA_FILE;

/// The daemon an unmanaged site runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Daemon {
    /// charon, loaded with `swanctl --load-all` from the downloaded swanctl.conf.
    Strongswan,
    /// pluto, from the downloaded ipsec.conf and ipsec.secrets.
    Libreswan,
}

impl Daemon {
    fn format(self) -> &'static str {
        match self {
            Daemon::Strongswan => "strongswan",
            Daemon::Libreswan => "libreswan",
        }
    }
}

/// `vpnaas lab unmanaged up N CONNECTION`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    lab: LabArgs,
    /// Unmanaged site number (1 to 99).
    #[arg(value_parser = clap::value_parser!(u8).range(1..=99))]
    site: u8,
    /// The connection (name or id) whose far end the site is: its peer address and peer
    /// CIDRs.
    connection: String,
    /// The IKE daemon the site runs.
    #[arg(long, value_enum, default_value_t = Daemon::Strongswan)]
    daemon: Daemon,
    /// charon's path (strongSwan).
    #[arg(long, default_value = "/usr/lib/ipsec/charon")]
    charon: PathBuf,
    /// A `cert` connection's far end presents this certificate (PEM) instead of one the
    /// project's CA issues it (`peer-credentials`): a peer with a PKI of its own.
    #[arg(long, requires = "key")]
    certificate: Option<PathBuf>,
    /// The key of `--certificate` (PEM).
    #[arg(long, requires = "certificate")]
    key: Option<PathBuf>,
    /// Where Libreswan is unpacked (`usr/libexec/ipsec/pluto` under it).
    #[arg(
        long,
        env = "VPNAAS_LIBRESWAN_ROOT",
        default_value = "/opt/vpnaas/libreswan"
    )]
    libreswan_root: PathBuf,
}

/// `vpnaas lab unmanaged down N`.
#[derive(Debug, clap::Args)]
pub struct DownArgs {
    #[command(flatten)]
    lab: LabArgs,
    /// Unmanaged site number.
    site: u8,
}

fn router_namespace(lab: &LabArgs, site: u8) -> String {
    format!("{}-u{site}", lab.prefix)
}

fn host_namespace(lab: &LabArgs, site: u8) -> String {
    format!("{}-uh{site}", lab.prefix)
}

fn site_dir(lab: &LabArgs, site: u8) -> PathBuf {
    super::gateways::lab_dir(lab).join(format!("u{site}"))
}

/// Builds unmanaged site N as the far end of the connection; returns its description.
pub async fn up(client: &Client, args: &UpArgs) -> Result<Value> {
    let lab = &args.lab;
    let conn = connection(client, &args.connection).await?;
    let conn_id = super::id(&conn)?;
    let peer: IpAddr = conn["peer_address"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .context("the connection's peer_address is not an IP address")?;
    let cidrs = peer_cidrs(client, &conn).await?;
    let Some(IpNet::V4(lan)) = cidrs.first().copied() else {
        bail!("the lab builds IPv4 unmanaged sites: the connection has no IPv4 peer CIDR");
    };
    let config = client
        .peer_config(&conn_id, args.daemon.format(), true)
        .await?;
    let (router_ns, host_ns) = (
        router_namespace(lab, args.site),
        host_namespace(lab, args.site),
    );
    let router_lan = lan.hosts().next().context("peer CIDR too small")?;
    let host = lan.hosts().nth(9).context("peer CIDR too small")?;
    plug(client, lab, args.site, peer, (lan, router_lan, host)).await?;
    let dir = site_dir(lab, args.site);
    std::fs::create_dir_all(&dir).context("site directory")?;
    let credentials = match conn["auth_mode"] == "cert" {
        true => {
            let own = args.certificate.as_deref().zip(args.key.as_deref());
            Some(Credentials::obtain(client, &conn_id, own).await?)
        }
        false => None,
    };
    match args.daemon {
        Daemon::Strongswan => {
            if let Some(credentials) = &credentials {
                far_credentials::install_swanctl(client, &conn, credentials, &dir).await?;
            }
            start_charon(&router_ns, &dir, &args.charon, &config).await?
        }
        Daemon::Libreswan => {
            let pluto = Pluto {
                root: &args.libreswan_root,
                dir: &dir,
                credentials: credentials.as_ref(),
            };
            start_pluto(&router_ns, &pluto, &config).await?
        }
    }
    Ok(json!({
        "site": format!("u{}", args.site),
        "daemon": args.daemon.format(),
        "router_namespace": router_ns,
        "gateway_ip": peer.to_string(),
        "cidr": lan.to_string(),
        "host_namespace": host_ns,
        "host_ip": host.to_string(),
        "directory": dir.to_string_lossy(),
    }))
}

/// The connection named or identified by `name_or_id`.
async fn connection(client: &Client, name_or_id: &str) -> Result<Value> {
    if let Ok(conn) = client.show(Kind::SiteConnection, name_or_id).await {
        return Ok(conn);
    }
    let mut named = client
        .list(Kind::SiteConnection, &[("name", name_or_id)])
        .await?;
    match named.len() {
        1 => Ok(named.remove(0)),
        0 => bail!("no site connection {name_or_id}"),
        _ => bail!("several site connections are named {name_or_id}: give the id"),
    }
}

/// The connection's peer CIDRs, or its peer endpoint group's.
async fn peer_cidrs(client: &Client, conn: &Value) -> Result<Vec<IpNet>> {
    let mut texts: Vec<Value> = conn["peer_cidrs"].as_array().cloned().unwrap_or_default();
    if let Some(group) = conn["peer_ep_group_id"].as_str() {
        let group = client.show(Kind::EndpointGroup, group).await?;
        texts.extend(group["endpoints"].as_array().cloned().unwrap_or_default());
    }
    texts
        .iter()
        .filter_map(Value::as_str)
        .map(|t| t.parse::<IpNet>().context("a peer CIDR"))
        .collect()
}

/// A locally administered MAC address made of the last four bytes of `address`.
fn stable_mac(address: IpAddr) -> String {
    let bytes = match address {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    format!(
        "02:00:{:02x}:{:02x}:{:02x}:{:02x}",
        bytes[0], bytes[1], bytes[2], bytes[3]
    )
}

/// Wires the site: the router on the lab's internet bridge with the peer address, the
/// host behind it.
async fn plug(
    client: &Client,
    lab: &LabArgs,
    site: u8,
    peer: IpAddr,
    (lan, router_lan, host): (ipnet::Ipv4Net, std::net::Ipv4Addr, std::net::Ipv4Addr),
) -> Result<()> {
    let internet = lab_internet(client, lab).await?;
    let config = AgentConfig {
        fabric_namespace: lab.fabric_namespace.clone(),
        ..AgentConfig::default()
    };
    let (bridge_ns, bridge) = l3::ensure_bridge(&config, &internet.0).await?;
    let (router, host_ns) = (router_namespace(lab, site), host_namespace(lab, site));
    l3::ensure_namespace(&router).await?;
    l3::ensure_namespace(&host_ns).await?;
    let outer = format!(
        "lu{site}-{}",
        lab.prefix.chars().take(8).collect::<String>()
    );
    let ip = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        command::run("ip", &args).await
    };
    let words = |text: &str| {
        text.split_whitespace()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    // The far end keeps its MAC address across `down` and `up`, as a real device does:
    // with a new one, the gateway's neighbour entry would point at the old device until
    // it expired, and its IKE packets would go nowhere for that long.
    ip(words(&format!(
        "-n {bridge_ns} link add {outer} type veth peer name pub address {} netns {router}",
        stable_mac(peer)
    )))
    .await?;
    ip(words(&format!(
        "-n {bridge_ns} link set {outer} master {bridge} up"
    )))
    .await?;
    ip(words(&format!(
        "-n {router} addr add {peer}/{} dev pub",
        internet.1
    )))
    .await?;
    ip(words(&format!("-n {router} link set pub up"))).await?;
    ip(words(&format!(
        "-n {router} link add lan type veth peer name eth0 netns {host_ns}"
    )))
    .await?;
    ip(words(&format!(
        "-n {router} addr add {router_lan}/{} dev lan",
        lan.prefix_len()
    )))
    .await?;
    ip(words(&format!("-n {router} link set lan up"))).await?;
    ip(words(&format!(
        "-n {host_ns} addr add {host}/{} dev eth0",
        lan.prefix_len()
    )))
    .await?;
    ip(words(&format!("-n {host_ns} link set eth0 up"))).await?;
    ip(words(&format!(
        "-n {host_ns} route add default via {router_lan}"
    )))
    .await?;
    command::run(
        "ip",
        &[
            "netns",
            "exec",
            &router,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ],
    )
    .await?;
    Ok(())
}

/// The lab's internet network: its id and the prefix length of its subnet.
async fn lab_internet(client: &Client, lab: &LabArgs) -> Result<(String, u8)> {
    let name = lab.name("internet");
    let missing = || format!("no lab internet network {name} (lab up first)");
    let network = client
        .list(Kind::Network, &[("name", name.as_str())])
        .await?
        .into_iter()
        .next()
        .with_context(missing)?;
    let id = super::id(&network)?;
    let subnet = client
        .list(Kind::Subnet, &[("network_id", id.as_str())])
        .await?
        .into_iter()
        .next()
        .with_context(missing)?;
    let cidr: IpNet = subnet["cidr"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .context("the internet subnet's cidr")?;
    Ok((id, cidr.prefix_len()))
}

/// Writes a file only root may read (it holds the key).
pub(super) fn write_private(path: &Path, text: impl AsRef<[u8]>) -> Result<()> {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_ref()))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Starts `program` in its own process group with its output in `log`; returns its pid.
fn spawn_detached(mut program: Command, log: &Path) -> Result<u32> {
    let log = std::fs::File::create(log).context("daemon log")?;
    let child = program
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .context("cannot start the daemon")?;
    Ok(child.id())
}

/// The kernel modules charon needs here: kernel ESP where the kernel has it, else
/// strongSwan's userspace ESP (as the agent decides).
async fn charon_kernel_plugins() -> &'static str {
    match data_plane::probe().await {
        KernelEsp::Accepted => "kernel-netlink",
        KernelEsp::Refused(_) | KernelEsp::Unknown(_) => "kernel-libipsec kernel-netlink",
    }
}

/// charon with the lab's strongswan.conf, then `swanctl --load-all` of the download.
async fn start_charon(namespace: &str, dir: &Path, charon: &Path, config: &str) -> Result<()> {
    let run = dir.join("run");
    let swanctl = dir.join("swanctl");
    std::fs::create_dir_all(&run).context("run directory")?;
    for sub in [
        "x509", "x509ca", "private", "pubkey", "rsa", "ecdsa", "pkcs8", "pkcs12",
    ] {
        std::fs::create_dir_all(swanctl.join(sub)).context("swanctl directory")?;
    }
    write_private(&swanctl.join("swanctl.conf"), config)?;
    let socket = run.join("charon.vici");
    let _ = std::fs::remove_file(&socket);
    let conf = dir.join("strongswan.conf");
    let plugins = charon_kernel_plugins().await;
    std::fs::write(
        &conf,
        format!(
            "# the lab's unmanaged site: daemon settings only, connections come from swanctl.conf\n\
             charon {{\n  load_modular = no\n  load = random nonce openssl kdf pem pkcs1 pkcs8 x509 pubkey revocation constraints {plugins} socket-default vici\n  threads = 16\n  plugins {{\n    vici {{\n      socket = unix://{socket}\n    }}\n  }}\n  filelog {{\n    lab {{\n      path = {log}\n      time_format = %H:%M:%S\n      flush_line = yes\n      default = 1\n    }}\n  }}\n}}\nswanctl {{\n  socket = unix://{socket}\n}}\n",
            socket = socket.display(),
            log = dir.join("charon.log").display(),
        ),
    )
    .context("strongswan.conf")?;
    let mut program = Command::new("ip");
    program
        .args([
            "netns",
            "exec",
            namespace,
            "sh",
            "-c",
            "mount --bind \"$0\" /run && exec \"$1\"",
        ])
        .arg(&run)
        .arg(charon)
        .env("STRONGSWAN_CONF", &conf);
    let pid = spawn_detached(program, &dir.join("charon.out"))?;
    std::fs::write(dir.join("daemon.pid"), pid.to_string()).context("pid file")?;
    let swanctl_run = |args: &[&str]| {
        Command::new("swanctl")
            .args(args)
            .env("STRONGSWAN_CONF", &conf)
            .env("SWANCTL_DIR", &swanctl)
            .output()
    };
    let started = Instant::now();
    while !swanctl_run(&["--stats"]).is_ok_and(|o| o.status.success()) {
        if started.elapsed() > Duration::from_secs(10) || !process::alive(pid) {
            bail!(
                "charon did not answer (see {})",
                dir.join("charon.out").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let loaded = swanctl_run(&["--load-all", "--noprompt"]).context("swanctl")?;
    if !loaded.status.success() {
        bail!(
            "swanctl --load-all refused the downloaded swanctl.conf: {}{}",
            String::from_utf8_lossy(&loaded.stdout),
            String::from_utf8_lossy(&loaded.stderr)
        );
    }
    Ok(())
}

/// The download's files: `ipsec.conf`, `ipsec.secrets` and, for certificate
/// authentication, the project's CA (`vpnaas-ca.pem`), each after its `# ==> FILE <==`
/// line.
fn split_libreswan(config: &str) -> Result<(String, String, Option<String>)> {
    let (conf, rest) = config
        .split_once("# ==> ipsec.secrets <==\n")
        .context("the download has no ipsec.secrets part")?;
    let marker = format!("\n# ==> {CA_FILE} <==\n");
    let (secrets, ca) = match rest.split_once(&marker) {
        Some((secrets, ca)) => (secrets, Some(ca.to_string())),
        None => (rest, None),
    };
    Ok((conf.to_string(), secrets.to_string(), ca))
}

/// Where pluto runs from, and the far end's credentials when it has certificates.
struct Pluto<'a> {
    root: &'a Path,
    dir: &'a Path,
    credentials: Option<&'a Credentials>,
}

/// pluto with the downloaded ipsec.conf and ipsec.secrets (it adds their conns itself),
/// and a `cert` connection's credentials imported as the download says.
async fn start_pluto(namespace: &str, site: &Pluto<'_>, config: &str) -> Result<()> {
    let (root, dir) = (site.root, site.dir);
    let pluto = root.join("usr/libexec/ipsec/pluto");
    if !pluto.exists() {
        bail!(
            "Libreswan is not unpacked in {} (scripts/setup.sh)",
            root.display()
        );
    }
    let (conf, secrets, ca) = split_libreswan(config)?;
    for sub in ["run", "nss", "ipsec.d"] {
        std::fs::create_dir_all(dir.join(sub)).context("pluto directory")?;
    }
    write_private(&dir.join("ipsec.conf"), &conf)?;
    write_private(&dir.join("ipsec.secrets"), &secrets)?;
    if !dir.join("nss/cert9.db").exists() {
        let nss = format!("sql:{}", dir.join("nss").display());
        command::run("certutil", &["-N", "-d", &nss, "--empty-password"]).await?;
    }
    if let Some(credentials) = site.credentials {
        let Some(ca) = ca else {
            bail!("the download of a cert connection has no {CA_FILE} part");
        };
        far_credentials::import_nss(credentials, &ca, dir).await?;
    }
    let path = |p: &str| dir.join(p).to_string_lossy().into_owned();
    let mut program = Command::new("ip");
    program
        .args(["netns", "exec", namespace, "sh", "-c"])
        .arg(
            "mount --bind \"$0\" /usr/libexec && exec \"$1\" --nofork --config \"$2\" \
             --rundir \"$3\" --dumpdir \"$3\" --nssdir \"$4\" --ipsecdir \"$5\" \
             --secretsfile \"$6\" --logfile \"$7\"",
        )
        .arg(root.join("usr/libexec"))
        .arg(&pluto)
        .args([
            path("ipsec.conf"),
            path("run"),
            path("nss"),
            path("ipsec.d"),
            path("ipsec.secrets"),
            path("pluto.log"),
        ]);
    let pid = spawn_detached(program, &dir.join("pluto.out"))?;
    std::fs::write(dir.join("daemon.pid"), pid.to_string()).context("pid file")?;
    let whack = root.join("usr/libexec/ipsec/whack");
    let started = Instant::now();
    loop {
        let status = Command::new(&whack)
            .arg("--ctlsocket")
            .arg(dir.join("run/pluto.ctl"))
            .arg("--status")
            .output();
        if status.is_ok_and(|o| o.status.success()) {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(10) || !process::alive(pid) {
            bail!(
                "pluto did not answer (see {})",
                dir.join("pluto.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Kills what runs in a namespace and removes it.
async fn empty_and_remove(namespace: &str) -> Result<()> {
    if !l3::namespace_exists(namespace).await {
        return Ok(());
    }
    let pids = command::run("ip", &["netns", "pids", namespace]).await?;
    for pid in pids.split_whitespace().filter_map(|p| p.parse().ok()) {
        // Gone already is fine: the namespace is what is being emptied.
        let _ = process::kill(pid);
    }
    l3::remove_namespace(namespace).await?;
    Ok(())
}

/// Removes unmanaged site N: its daemon, namespaces and directory.
pub async fn down(args: &DownArgs) -> Result<()> {
    remove(&args.lab, args.site).await
}

async fn remove(lab: &LabArgs, site: u8) -> Result<()> {
    empty_and_remove(&router_namespace(lab, site)).await?;
    empty_and_remove(&host_namespace(lab, site)).await?;
    let _ = std::fs::remove_dir_all(site_dir(lab, site));
    Ok(())
}

/// Removes every unmanaged site of the lab (for `lab down`).
pub async fn remove_all(lab: &LabArgs) -> Result<()> {
    let prefix = format!("{}-u", lab.prefix);
    for namespace in l3::namespaces_with_prefix(&prefix).await {
        let number = namespace
            .strip_prefix(&prefix)
            .map(|rest| rest.trim_start_matches('h'));
        if let Some(site) = number.and_then(|n| n.parse::<u8>().ok()) {
            remove(lab, site).await?;
        }
    }
    Ok(())
}
