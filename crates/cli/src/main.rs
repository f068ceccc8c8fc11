//! `vpnaas`: the server, the client commands (named after `openstack vpn …`) and tools,
//! in one binary.

mod aio;
mod bench;
mod bench_dpd;
mod bench_fixture;
mod demo;
mod flags;
mod import;
mod lab;
mod layers;
mod logging;
mod migrate;
mod output;
mod peer_config_cmd;
mod resource_cmd;
mod scale;
mod secrets_cmd;
mod serve;
mod watch;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Command, FromArgMatches};
use vpnaas_client::{Client, Identity};
use vpnaas_model::Kind;

use output::Format;

/// jemalloc with its background thread gives freed memory back to the system within
/// seconds: after a burst of connections (or an attack of them) ends, the server's memory
/// returns to its baseline; glibc's malloc keeps it in its arenas.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Options of every client command.
#[derive(Debug, Args)]
struct Global {
    /// API endpoint.
    #[arg(
        long,
        global = true,
        env = "VPNAAS_URL",
        default_value = "http://127.0.0.1:9696"
    )]
    url: String,
    /// Project to act for (noauth).
    #[arg(long, global = true, env = "VPNAAS_PROJECT")]
    project: Option<String>,
    /// Comma-separated roles (noauth).
    #[arg(long, global = true, env = "VPNAAS_ROLES")]
    roles: Option<String>,
    /// API token (token auth).
    #[arg(long, global = true, env = "VPNAAS_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Output format.
    #[arg(
        short = 'f',
        long = "format",
        global = true,
        value_enum,
        default_value = "table"
    )]
    format: Format,
}

impl Global {
    fn client(&self) -> Client {
        Client::new(&self.url).with_identity(Identity {
            project: self.project.clone(),
            user: None,
            roles: self.roles.clone(),
            token: self.token.clone(),
        })
    }
}

/// What `vpnaas --help` says vpnaas is.
const LONG_ABOUT: &str = "vpnaas runs site-to-site IPsec VPNs as a service. Its API server speaks \
the OpenStack Neutron VPNaaS v2.0 API (IKE and IPsec policies, VPN services on routers, \
endpoint groups, IPsec site connections) and keeps them in SQLite or PostgreSQL; agents on \
gateway hosts turn them into router namespaces and strongSwan or Libreswan daemons, and \
report each tunnel's status back. The client commands below talk to a server at --url; \
`vpnaas demo` shows a real tunnel on this machine in one command.";

/// A command taking the flags of `A` that says what it does: the derive would describe
/// it by `A`'s doc comment, which is written for programmers ("Flags of …").
fn command_with<A: Args>(name: &'static str, about: &'static str) -> Command {
    A::augment_args(Command::new(name))
        .about(about)
        .long_about(None)
}

fn cli() -> Command {
    let mut cli = Global::augment_args(Command::new("vpnaas"))
        .version(env!("CARGO_PKG_VERSION"))
        .about("Site-to-site IPsec VPN as a service (Neutron VPNaaS v2.0 compatible)")
        .long_about(LONG_ABOUT)
        .subcommand_required(true)
        .subcommand(command_with::<serve::ServerArgs>(
            "server",
            "Run the API server",
        ))
        .subcommand(Command::new("default-config").about("Print an annotated server configuration"))
        .subcommand(command_with::<aio::RemoteAgentArgs>(
            "agent",
            "Run an agent on a gateway host: router namespaces and IKE daemons for a server",
        ))
        .subcommand(command_with::<demo::DemoArgs>(
            "demo",
            "Two sites and a real tunnel in one command, on this machine (root)",
        ))
        .subcommand(command_with::<aio::AllInOneArgs>(
            "all-in-one",
            "Run the API server, an agent and their bus in one process (SQLite)",
        ))
        .subcommand(import_command())
        .subcommand(lab_command())
        .subcommand(bench_command())
        .subcommand(secrets_cmd::command());
    for kind in Kind::ALL {
        cli = cli.subcommand(resource_cmd::command(kind));
    }
    cli
}

fn import_command() -> Command {
    Command::new("import")
        .about("Move VPN objects from another system into vpnaas")
        .subcommand_required(true)
        .subcommand(
            command_with::<import::ImportArgs>(
                "neutron",
                "Import every VPN object of a running neutron-vpnaas, with the same ids",
            )
            .long_about(
                "Import a running neutron-vpnaas: its IKE and IPsec policies, endpoint groups, \
                 VPN services and IPsec site connections (PSKs included), read with an \
                 administrator's Keystone login (--os-* or OS_*), are created in vpnaas with \
                 the same ids, projects and attributes. What vpnaas refuses is reported with \
                 its reason and the import goes on; objects already imported are compared and \
                 updated where they differ, so running it again changes nothing. vpnaas is \
                 called with --token (or --project/--roles under noauth) or else with the \
                 Keystone token. Exits non-zero when any object was refused or differs.",
            ),
        )
}

fn lab_command() -> Command {
    Command::new("lab")
        .about("Build or remove a multi-site test topology on this machine (root)")
        .subcommand_required(true)
        .subcommand(command_with::<lab::UpArgs>(
            "up",
            "Create N sites through the API and their host namespaces",
        ))
        .subcommand(
            command_with::<lab::DownArgs>(
                "down",
                "Remove the lab, VPN objects on its routers included",
            )
            .long_about(
                "Remove the lab: the VPN site connections, services and endpoint groups on its \
                     routers, its routers and networks, then wait (at most --timeout) until the agents \
                     have removed every namespace and IKE daemon of those routers; then its host \
                     namespaces, gateway hosts and fabric. Fails naming whatever is left.",
            ),
        )
        .subcommand(
            command_with::<lab::ExecArgs>("exec", "Run a command in a site's host namespace")
                .long_about(
                    "Run a command in a site's host namespace. The command replaces vpnaas: \
                     signals sent to it reach the command, and the exit status is the command's.",
                ),
        )
        .subcommand(command_with::<lab::GatewayArgs>(
            "power-off",
            "Power cut of a gateway host the lab started: its agent, daemons and namespaces",
        ))
        .subcommand(command_with::<lab::GatewayArgs>(
            "power-on",
            "Start a powered-off gateway host again",
        ))
        .subcommand(
            Command::new("unmanaged")
                .about("A site vpnaas does not manage, configured from a peer-config download")
                .subcommand_required(true)
                .subcommand(
                    command_with::<lab::unmanaged::UpArgs>(
                        "up",
                        "Build unmanaged site N as the far end of a connection",
                    )
                    .long_about(
                        "Build unmanaged site N as the far end of CONNECTION: namespaces \
                         <prefix>-u<N> (its router, on the lab's internet with the connection's \
                         peer address) and <prefix>-uh<N> (a host at .10 of its first peer CIDR), \
                         and a plain strongSwan or Libreswan there whose only connection \
                         settings are the connection's downloaded peer configuration.",
                    ),
                )
                .subcommand(command_with::<lab::unmanaged::DownArgs>(
                    "down",
                    "Remove unmanaged site N: its daemon and namespaces",
                )),
        )
}

fn bench_command() -> Command {
    Command::new("bench")
        .about("Measure the API, a tunnel's set-up time, or many agents at scale")
        .subcommand_required(true)
        .subcommand(command_with::<bench::BenchArgs>(
            "api",
            "Benchmark a running API server",
        ))
        .subcommand(command_with::<bench::TunnelArgs>(
            "tunnel",
            "Measure POST -> ACTIVE on a running all-in-one with a 2-site lab",
        ))
        .subcommand(command_with::<bench_dpd::DpdArgs>(
            "dpd",
            "Measure how soon a silent peer is DOWN on a running all-in-one with a 2-site lab",
        ))
        .subcommand(command_with::<scale::ScaleArgs>(
            "scale",
            "Servers, fake-driver agents and many routers on this machine",
        ))
}

async fn run(matches: &clap::ArgMatches) -> Result<String> {
    let global = Global::from_arg_matches(matches)?;
    let Some((name, args)) = matches.subcommand() else {
        anyhow::bail!("missing command")
    };
    match name {
        "server" => {
            serve::run(&serve::ServerArgs::from_arg_matches(args)?).await?;
            Ok(String::new())
        }
        "default-config" => Ok(vpnaas_server::config::DEFAULT_CONFIG.trim_end().to_string()),
        "agent" => {
            aio::run_agent(
                &aio::RemoteAgentArgs::from_arg_matches(args)?,
                global.token.clone(),
            )
            .await?;
            Ok(String::new())
        }
        "demo" => demo::run(&demo::DemoArgs::from_arg_matches(args)?).await,
        "all-in-one" => {
            aio::run(&aio::AllInOneArgs::from_arg_matches(args)?).await?;
            Ok(String::new())
        }
        "lab" => run_lab(&global, args).await,
        "secrets" => secrets_cmd::run(args).await,
        "import" => {
            let Some(("neutron", args)) = args.subcommand() else {
                anyhow::bail!("missing import source")
            };
            let has_identity =
                global.token.is_some() || global.project.is_some() || global.roles.is_some();
            import::run(
                &global.client(),
                has_identity,
                global.format,
                &import::ImportArgs::from_arg_matches(args)?,
            )
            .await?;
            Ok(String::new())
        }
        "bench" => match args.subcommand() {
            Some(("api", bench_args)) => {
                bench::run(
                    &global.client(),
                    &bench::BenchArgs::from_arg_matches(bench_args)?,
                )
                .await
            }
            Some(("dpd", bench_args)) => {
                bench_dpd::run(
                    &global.client(),
                    &bench_dpd::DpdArgs::from_arg_matches(bench_args)?,
                )
                .await
            }
            Some(("scale", bench_args)) => {
                scale::run(&scale::ScaleArgs::from_arg_matches(bench_args)?).await
            }
            Some((_, bench_args)) => {
                bench::tunnel(
                    &global.client(),
                    &bench::TunnelArgs::from_arg_matches(bench_args)?,
                )
                .await
            }
            None => anyhow::bail!("missing benchmark"),
        },
        resource => {
            let kind = Kind::ALL
                .into_iter()
                .find(|k| resource_cmd::command_name(*k) == resource)
                .ok_or_else(|| anyhow::anyhow!("unknown command {resource}"))?;
            resource_cmd::run(&global.client(), global.format, kind, args).await
        }
    }
}

async fn run_lab(global: &Global, args: &clap::ArgMatches) -> Result<String> {
    let (action, args) = args
        .subcommand()
        .ok_or_else(|| anyhow::anyhow!("missing lab action"))?;
    let client = global.client();
    match action {
        "up" => {
            let sites = lab::up(&client, &lab::UpArgs::from_arg_matches(args)?).await?;
            let columns = [
                "site",
                "router_id",
                "cidr",
                "gateway_ip",
                "host_namespace",
                "host_ip",
            ];
            Ok(output::list(global.format, &sites, &columns))
        }
        "down" => {
            lab::down(&client, &lab::DownArgs::from_arg_matches(args)?).await?;
            Ok(String::new())
        }
        "power-off" => {
            lab::power_off_gateway(&lab::GatewayArgs::from_arg_matches(args)?).await?;
            Ok(String::new())
        }
        "power-on" => {
            lab::power_on_gateway(&lab::GatewayArgs::from_arg_matches(args)?)?;
            Ok(String::new())
        }
        "unmanaged" => match args.subcommand() {
            Some(("up", args)) => {
                let site =
                    lab::unmanaged::up(&client, &lab::unmanaged::UpArgs::from_arg_matches(args)?)
                        .await?;
                Ok(output::object(global.format, &site))
            }
            Some(("down", args)) => {
                lab::unmanaged::down(&lab::unmanaged::DownArgs::from_arg_matches(args)?).await?;
                Ok(String::new())
            }
            _ => anyhow::bail!("missing lab unmanaged action"),
        },
        _ => match lab::exec(&lab::ExecArgs::from_arg_matches(args)?).await? {},
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let matches = cli().get_matches_from(peer_config_cmd::with_format_alias(std::env::args_os()));
    // The demo logs to a file of its own (see `demo::run`).
    if matches.subcommand_name() != Some("demo") {
        logging::to_terminal();
    }
    match run(&matches).await {
        Ok(text) => {
            if !text.is_empty() {
                println!("{text}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            // With its causes: "cannot start the server" alone does not say what to fix.
            eprintln!("Error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command, nested ones included, says what it does in words for its users:
    /// never the doc comment of the struct that holds its flags ("Flags of …").
    #[test]
    fn every_command_says_what_it_does() {
        fn check(command: &Command, path: &str) {
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
                let long = sub.get_long_about().map(ToString::to_string);
                for text in std::iter::once(&about).chain(long.as_ref()) {
                    assert!(
                        !text.is_empty()
                            && !text.starts_with("Flags of")
                            && !text.starts_with("Options of")
                            && !text.starts_with('`'),
                        "`{path}` describes itself as {text:?}"
                    );
                }
                check(sub, &path);
            }
        }
        let cli = cli();
        cli.clone().debug_assert();
        check(&cli, "vpnaas");
    }

    /// A command's own flag with the id of a global one (`url`, `project`, …) is given
    /// the global's value, default included: `--neutron-url`'s field once got
    /// `--url`'s default over the settings file's `[neutron] url`.
    #[test]
    fn no_command_flag_shares_an_id_with_a_global_flag() {
        fn check(command: &Command, globals: &[String], path: &str) {
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                for arg in sub.get_arguments().filter(|a| !a.is_global_set()) {
                    let id = arg.get_id().as_str();
                    assert!(
                        !globals.iter().any(|g| g == id),
                        "`{path}` has a flag with the global id {id:?}"
                    );
                }
                check(sub, globals, &path);
            }
        }
        let cli = cli();
        let globals: Vec<String> = cli
            .get_arguments()
            .filter(|a| a.is_global_set())
            .map(|a| a.get_id().to_string())
            .collect();
        check(&cli, &globals, "vpnaas");
    }

    /// `vpnaas server --config FILE` without `--neutron-url`: the file's `[neutron]`
    /// table is what counts.
    #[test]
    fn the_servers_neutron_url_comes_from_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("server.toml");
        let text = "inventory = \"neutron\"\n[neutron]\nurl = \"http://neutron:9696\"\n";
        std::fs::write(&file, text).expect("write");
        let path = file.to_str().expect("utf-8");
        let matches = cli().get_matches_from(["vpnaas", "server", "--config", path]);
        let (_, args) = matches.subcommand().expect("server");
        let settings = serve::ServerArgs::from_arg_matches(args)
            .expect("server flags")
            .settings()
            .expect("settings");
        assert_eq!(settings.neutron.url, "http://neutron:9696");
    }
}
