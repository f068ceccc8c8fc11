//! `vpnaas`: the server, the client commands (named after `openstack vpn …`) and tools,
//! in one binary.

mod aio;
mod bench;
mod demo;
mod flags;
mod lab;
mod migrate;
mod output;
mod resource_cmd;
mod scale;
mod serve;
mod watch;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Command, FromArgMatches};
use vpnaas_client::{Client, Identity};
use vpnaas_model::Kind;

use output::Format;

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

fn cli() -> Command {
    let mut cli = Global::augment_args(
        Command::new("vpnaas")
            .version(env!("CARGO_PKG_VERSION"))
            .about("Site-to-site IPsec VPN as a service (Neutron VPNaaS v2.0 compatible)")
            .subcommand_required(true),
    )
    .subcommand(serve::ServerArgs::augment_args(
        Command::new("server").about("Run the API server"),
    ))
    .subcommand(Command::new("default-config").about("Print an annotated server configuration"))
    .subcommand(aio::RemoteAgentArgs::augment_args(
        Command::new("agent")
            .about("Run an agent (router namespaces, IKE daemons) for a vpnaas server"),
    ))
    .subcommand(demo::DemoArgs::augment_args(Command::new("demo").about(
        "A real tunnel between two sites on this machine, in one command (root)",
    )))
    .subcommand(aio::AllInOneArgs::augment_args(
        Command::new("all-in-one")
            .about("Run server, agent and in-process bus in one process (SQLite)"),
    ))
    .subcommand(
        Command::new("lab")
            .about("Build or remove a multi-site test topology on this machine (root)")
            .subcommand_required(true)
            .subcommand(lab::UpArgs::augment_args(
                Command::new("up")
                    .about("Create N sites through the API and their host namespaces"),
            ))
            .subcommand(lab::LabArgs::augment_args(
                Command::new("down").about("Remove everything the lab created"),
            ))
            .subcommand(lab::ExecArgs::augment_args(
                Command::new("exec").about("Run a command in a site's host namespace"),
            ))
            .subcommand(lab::GatewayArgs::augment_args(Command::new("power-off").about(
                "Power cut of a gateway host the lab started: its agent, daemons and namespaces",
            )))
            .subcommand(lab::GatewayArgs::augment_args(
                Command::new("power-on").about("Start a powered-off gateway host again"),
            )),
    )
    .subcommand(
        Command::new("bench")
            .about("Benchmarks")
            .subcommand_required(true)
            .subcommand(bench::BenchArgs::augment_args(
                Command::new("api").about("Benchmark a running API server"),
            ))
            .subcommand(bench::TunnelArgs::augment_args(
                Command::new("tunnel")
                    .about("Measure POST -> ACTIVE on a running all-in-one with a 2-site lab"),
            ))
            .subcommand(scale::ScaleArgs::augment_args(Command::new("scale").about(
                "Servers, fake-driver agents and many routers on this machine",
            ))),
    );
    for kind in Kind::ALL {
        cli = cli.subcommand(resource_cmd::command(kind));
    }
    cli
}

async fn run() -> Result<String> {
    let matches = cli().get_matches();
    let global = Global::from_arg_matches(&matches)?;
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
        "bench" => match args.subcommand() {
            Some(("api", bench_args)) => {
                bench::run(
                    &global.client(),
                    &bench::BenchArgs::from_arg_matches(bench_args)?,
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
            lab::down(&client, &lab::LabArgs::from_arg_matches(args)?).await?;
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
        _ => {
            let code = lab::exec(&lab::ExecArgs::from_arg_matches(args)?).await?;
            if code != 0 {
                anyhow::bail!("command exited with {code}");
            }
            Ok(String::new())
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VPNAAS_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(text) => {
            if !text.is_empty() {
                println!("{text}");
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("Error: {error}");
            ExitCode::FAILURE
        }
    }
}
