//! Client commands for every resource, named after `openstack vpn …` and built from the
//! model's attribute maps: `create` and `set` get one option per attribute the API lets
//! POST and PUT change, so the CLI always matches the server's contract. It stays one file
//! (a little over 600 lines): the commands are one generic set over every kind, and a split
//! by resource would write that set again per kind.

use anyhow::{Context, Result, bail};
use clap::{Arg, ArgAction, ArgMatches, Command};
use serde_json::{Map, Value, json};
use vpnaas_client::Client;
use vpnaas_model::attr::{Attr, AttrType, Post};
use vpnaas_model::{Kind, attributes};

use crate::output::{self, Format};

/// CLI name of each resource command.
pub fn command_name(kind: Kind) -> &'static str {
    match kind {
        Kind::IkePolicy => "ike-policy",
        Kind::IpsecPolicy => "ipsec-policy",
        Kind::VpnService => "service",
        Kind::SiteConnection => "site-connection",
        Kind::EndpointGroup => "endpoint-group",
        Kind::Network => "network",
        Kind::Subnet => "subnet",
        Kind::Router => "router",
        Kind::Agent => "network-agent",
        Kind::Flavor => "flavor",
        Kind::ServiceProfile => "service-profile",
        // Internal kinds have no command (the CLI walks `Kind::ALL`); named for errors.
        Kind::CertificateAuthority => "certificate-authority",
        Kind::GatewayCredential => "gateway-credential",
    }
}

/// What each resource command manages, for `--help`.
fn about(kind: Kind) -> &'static str {
    match kind {
        Kind::IkePolicy => "IKE policies: how gateways authenticate and protect IKE (phase 1)",
        Kind::IpsecPolicy => "IPsec policies: how tunnels protect traffic (ESP, phase 2)",
        Kind::VpnService => "VPN services: a router that terminates tunnels",
        Kind::SiteConnection => "IPsec site connections: tunnels to peer gateways, with status",
        Kind::EndpointGroup => "Endpoint groups: local subnets or peer CIDRs of connections",
        Kind::Network => "Networks (an external one carries the routers' gateways)",
        Kind::Subnet => "Subnets of networks",
        Kind::Router => "Routers: gateway, interfaces, the agent hosting them",
        Kind::Agent => "Agents: the gateway hosts, alive or not",
        Kind::Flavor => "Flavors: a VPN driver (IKE daemon) services can choose",
        Kind::ServiceProfile => "Service profiles: the driver behind a flavor",
        Kind::CertificateAuthority | Kind::GatewayCredential => {
            "internal: kept by the server, never served"
        }
    }
}

fn list_columns(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::IkePolicy => &[
            "id",
            "name",
            "auth_algorithm",
            "encryption_algorithm",
            "ike_version",
            "pfs",
        ],
        Kind::IpsecPolicy => &[
            "id",
            "name",
            "transform_protocol",
            "auth_algorithm",
            "encryption_algorithm",
            "pfs",
        ],
        Kind::VpnService => &[
            "id",
            "name",
            "router_id",
            "subnet_id",
            "external_v4_ip",
            "provider",
            "status",
        ],
        Kind::SiteConnection => &[
            "id",
            "name",
            "peer_address",
            "peer_id",
            "status",
            "status_reason",
        ],
        Kind::EndpointGroup => &["id", "name", "type", "endpoints"],
        Kind::Network => &["id", "name", "router:external", "subnets"],
        Kind::Subnet => &["id", "name", "network_id", "cidr", "gateway_ip"],
        Kind::Router => &[
            "id",
            "name",
            "ha",
            "agent_host",
            "ha_standby_host",
            "revision_number",
        ],
        Kind::Agent => &["id", "host", "agent_type", "alive", "admin_state_up"],
        Kind::Flavor => &["id", "name", "service_type", "enabled", "service_profiles"],
        Kind::ServiceProfile => &["id", "driver", "enabled", "description"],
        Kind::CertificateAuthority | Kind::GatewayCredential => &["id"],
    }
}

/// The resource an id attribute refers to, so the CLI can take a name instead of an id.
fn referenced_kind(attr: &str) -> Option<Kind> {
    match attr {
        "router_id" => Some(Kind::Router),
        "subnet_id" => Some(Kind::Subnet),
        "network_id" => Some(Kind::Network),
        "vpnservice_id" => Some(Kind::VpnService),
        "ikepolicy_id" => Some(Kind::IkePolicy),
        "ipsecpolicy_id" => Some(Kind::IpsecPolicy),
        "local_ep_group_id" | "peer_ep_group_id" => Some(Kind::EndpointGroup),
        "flavor_id" => Some(Kind::Flavor),
        _ => None,
    }
}

fn flag(attr: &Attr) -> String {
    attr.name.replace(['_', ':'], "-")
}

/// `openstack vpn` spellings accepted beside the attribute names.
fn aliases(attr: &str) -> &'static [&'static str] {
    match attr {
        "router_id" => &["router"],
        "subnet_id" => &["subnet"],
        "network_id" => &["network"],
        "vpnservice_id" => &["vpnservice"],
        "ikepolicy_id" => &["ikepolicy"],
        "ipsecpolicy_id" => &["ipsecpolicy"],
        "local_ep_group_id" => &["local-endpoint-group"],
        "peer_ep_group_id" => &["peer-endpoint-group"],
        "flavor_id" => &["flavor"],
        "external_gateway_info" => &["external-gateway"],
        "peer_cidrs" => &["peer-cidr"],
        "endpoints" => &["value"],
        "cidr" => &["subnet-range"],
        _ => &[],
    }
}

fn option_for(attr: &Attr) -> Arg {
    let mut arg = Arg::new(attr.name)
        .long(flag(attr))
        .help(attr.doc)
        .visible_aliases(aliases(attr.name).to_vec());
    arg = match attr.ty {
        AttrType::CidrList
        | AttrType::StringList
        | AttrType::Nameservers
        | AttrType::ServiceTypes => arg.action(ArgAction::Append).value_name("VALUE"),
        AttrType::Routes => arg
            .action(ArgAction::Append)
            .value_name("destination=CIDR,nexthop=IP"),
        AttrType::EnumOrNull(values) => arg.value_parser(clap::builder::PossibleValuesParser::new(
            values.iter().copied().chain(["none"]),
        )),
        AttrType::Lifetime => arg.value_name("units=seconds,value=N"),
        AttrType::Dpd => arg.value_name("action=A,interval=N,timeout=N"),
        AttrType::GatewayInfo => arg.value_name("NETWORK|network_id=..,enable_snat=..|none"),
        AttrType::Enum(values, _) => arg.value_parser(clap::builder::PossibleValuesParser::new(
            values.iter().copied(),
        )),
        AttrType::Bool => arg
            .value_parser(clap::value_parser!(bool))
            .value_name("true|false"),
        _ => arg.value_name("VALUE"),
    };
    arg
}

fn settable(attr: &Attr, for_create: bool) -> bool {
    let allowed = if for_create {
        !matches!(attr.post, Post::Forbidden)
    } else {
        attr.put
    };
    // Availability zone hints can only be empty here (vpnaas has no zones): no option.
    let pointless = matches!(attr.ty, AttrType::AzHints);
    allowed && !pointless && attr.name != "tenant_id" && !(for_create && attr.name == "name")
}

/// The `vpnaas <resource> …` command tree of one kind.
pub fn command(kind: Kind) -> Command {
    let attrs = attributes(kind);
    let target = Arg::new("target").value_name("NAME_OR_ID").required(true);
    let mut create = Command::new("create")
        .about(format!("Create a {}", kind.singular()))
        .arg(
            Arg::new("name")
                .value_name("NAME")
                .help("name of the new object"),
        );
    create = create.args(attrs.iter().filter(|a| settable(a, true)).map(option_for));
    let set = Command::new("set")
        .about(format!("Change a {}", kind.singular()))
        .arg(target.clone())
        .args(attrs.iter().filter(|a| settable(a, false)).map(option_for));
    let list = Command::new("list")
        .about(format!("List {}", kind.plural()))
        .arg(
            Arg::new("filter")
                .long("filter")
                .action(ArgAction::Append)
                .value_name("ATTR=VALUE")
                .help("only objects whose ATTR is VALUE (repeat to combine)"),
        );
    let (create, list) = if kind == Kind::SiteConnection {
        live_options(create, list)
    } else {
        (create, list)
    };
    let mut cmd = Command::new(command_name(kind))
        .about(about(kind))
        .subcommand_required(true)
        .subcommand(create)
        .subcommand(list)
        .subcommand(
            Command::new("show")
                .about(format!("Show a {}", kind.singular()))
                .arg(target.clone()),
        )
        .subcommand(set)
        .subcommands((kind == Kind::SiteConnection).then(|| {
            Command::new("events")
                .about("Show a connection's last transitions")
                .arg(target.clone())
        }))
        .subcommands((kind == Kind::SiteConnection).then(|| {
            Command::new("reauthenticate")
                .about("Authenticate the connection's IKE SA again now, with its current key")
                .arg(target.clone())
        }))
        .subcommands(
            (kind == Kind::SiteConnection).then(|| crate::peer_config_cmd::command(&target)),
        )
        .subcommands((kind == Kind::SiteConnection).then(|| {
            Command::new("peer-credentials")
                .about("Issue a certificate and key for the connection's peer from the project's CA (shown once)")
                .arg(target.clone())
        }))
        .subcommands((kind == Kind::VpnService).then(|| {
            Command::new("renew-certificate")
                .about("Renew the gateway certificate now (same key; tunnels stay up)")
                .arg(target.clone())
        }))
        .subcommand(
            Command::new("delete")
                .about(format!("Delete {}", kind.plural()))
                .arg(
                    Arg::new("target")
                        .value_name("NAME_OR_ID")
                        .required(true)
                        .num_args(1..),
                ),
        );
    if kind == Kind::Router {
        for (name, about) in [
            ("add-interface", "Attach a subnet to a router"),
            ("remove-interface", "Detach a subnet from a router"),
        ] {
            cmd = cmd.subcommand(
                Command::new(name)
                    .about(about)
                    .arg(Arg::new("router").value_name("ROUTER").required(true))
                    .arg(Arg::new("subnet").value_name("SUBNET").required(true)),
            );
        }
        cmd = cmd.subcommand(crate::migrate::command());
    }
    if kind == Kind::Flavor {
        for (name, about) in [
            ("add-profile", "Associate a service profile with a flavor"),
            ("remove-profile", "Remove a service profile from a flavor"),
        ] {
            cmd = cmd.subcommand(
                Command::new(name)
                    .about(about)
                    .arg(Arg::new("flavor").value_name("FLAVOR").required(true))
                    .arg(Arg::new("profile").value_name("PROFILE_ID").required(true)),
            );
        }
    }
    cmd
}

/// `--wait` on create, `--watch` on list and an `events` action, for site connections.
fn live_options(create: Command, list: Command) -> (Command, Command) {
    let create = create
        .arg(
            Arg::new("wait")
                .long("wait")
                .action(ArgAction::SetTrue)
                .help("follow the connection until ACTIVE; fail on a failure reason or timeout"),
        )
        .arg(
            Arg::new("timeout")
                .long("timeout")
                .value_name("SECONDS")
                .default_value("60")
                .value_parser(clap::value_parser!(u64)),
        );
    let list = list
        .arg(
            Arg::new("watch")
                .long("watch")
                .action(ArgAction::SetTrue)
                .help("redraw a live table until Ctrl-C"),
        )
        .arg(
            Arg::new("interval")
                .long("interval")
                .value_name("SECONDS")
                .default_value("1")
                .value_parser(clap::value_parser!(f64)),
        );
    (create, list)
}

/// Runs `vpnaas <resource> <action> …`.
pub async fn run(
    client: &Client,
    format: Format,
    kind: Kind,
    matches: &ArgMatches,
) -> Result<String> {
    let Some((action, args)) = matches.subcommand() else {
        bail!("missing action")
    };
    let switch = |name: &str| {
        args.try_get_one::<bool>(name)
            .ok()
            .flatten()
            .copied()
            .unwrap_or(false)
    };
    match action {
        "events" => {
            return crate::watch::events(
                client,
                format,
                &resolve(client, kind, target(args)?).await?,
            )
            .await;
        }
        "reauthenticate" => {
            let id = resolve(client, kind, target(args)?).await?;
            return Ok(output::object(format, &client.reauthenticate(&id).await?));
        }
        "peer-config" => {
            let id = resolve(client, kind, target(args)?).await?;
            return crate::peer_config_cmd::run(client, format, &id, args).await;
        }
        "peer-credentials" => {
            let id = resolve(client, kind, target(args)?).await?;
            return Ok(output::object(format, &client.peer_credentials(&id).await?));
        }
        "renew-certificate" => {
            let id = resolve(client, kind, target(args)?).await?;
            return Ok(output::object(
                format,
                &client.renew_certificate(&id).await?,
            ));
        }
        "list" if switch("watch") => {
            let interval = args
                .get_one::<f64>("interval")
                .copied()
                .unwrap_or(1.0)
                .max(0.1);
            return crate::watch::watch(client, std::time::Duration::from_secs_f64(interval)).await;
        }
        _ => {}
    }
    match action {
        "create" => {
            let mut body = attrs_from(client, kind, args, true).await?;
            if let Some(name) = args.get_one::<String>("name") {
                body.insert("name".into(), json!(name));
            }
            let created = client.create(kind, Value::Object(body)).await?;
            if switch("wait") {
                let id = created["id"]
                    .as_str()
                    .context("created object without id")?;
                let timeout = args.get_one::<u64>("timeout").copied().unwrap_or(60);
                let active =
                    crate::watch::wait_active(client, id, std::time::Duration::from_secs(timeout))
                        .await?;
                return Ok(output::object(format, &active));
            }
            Ok(output::object(format, &created))
        }
        "set" => {
            let id = resolve(client, kind, target(args)?).await?;
            let body = attrs_from(client, kind, args, false).await?;
            if body.is_empty() {
                bail!("nothing to change: give at least one option (see --help)");
            }
            Ok(output::object(
                format,
                &client.update(kind, &id, Value::Object(body)).await?,
            ))
        }
        "show" => Ok(output::object(
            format,
            &client.find(kind, target(args)?).await?,
        )),
        "list" => {
            let filters: Vec<(String, String)> = args
                .get_many::<String>("filter")
                .into_iter()
                .flatten()
                .map(|f| {
                    f.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .context("a filter is ATTR=VALUE")
                })
                .collect::<Result<_>>()?;
            let query: Vec<(&str, &str)> = filters
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            Ok(output::list(
                format,
                &client.list(kind, &query).await?,
                list_columns(kind),
            ))
        }
        "delete" => {
            for name in args.get_many::<String>("target").into_iter().flatten() {
                let id = resolve(client, kind, name).await?;
                client.delete(kind, &id).await?;
            }
            Ok(String::new())
        }
        "add-interface" | "remove-interface" => {
            let router = resolve(
                client,
                Kind::Router,
                args.get_one::<String>("router").context("router")?,
            )
            .await?;
            let subnet = resolve(
                client,
                Kind::Subnet,
                args.get_one::<String>("subnet").context("subnet")?,
            )
            .await?;
            let info = if action == "add-interface" {
                client.add_router_interface(&router, &subnet).await?
            } else {
                client.remove_router_interface(&router, &subnet).await?
            };
            Ok(output::object(format, &info))
        }
        "migrate-driver" => crate::migrate::run(client, args).await,
        "add-profile" | "remove-profile" => {
            let flavor = resolve(
                client,
                Kind::Flavor,
                args.get_one::<String>("flavor").context("flavor")?,
            )
            .await?;
            let profile = args.get_one::<String>("profile").context("profile")?;
            if action == "add-profile" {
                Ok(output::object(
                    format,
                    &client.associate_profile(&flavor, profile).await?,
                ))
            } else {
                client.disassociate_profile(&flavor, profile).await?;
                Ok(String::new())
            }
        }
        other => bail!("unknown action {other}"),
    }
}

fn target(args: &ArgMatches) -> Result<&str> {
    args.get_one::<String>("target")
        .map(String::as_str)
        .context("NAME_OR_ID is required")
}

pub(crate) async fn resolve(client: &Client, kind: Kind, name_or_id: &str) -> Result<String> {
    let found = client.find(kind, name_or_id).await?;
    found["id"]
        .as_str()
        .map(String::from)
        .context("object without id")
}

async fn attrs_from(
    client: &Client,
    kind: Kind,
    args: &ArgMatches,
    for_create: bool,
) -> Result<Map<String, Value>> {
    let mut body = Map::new();
    for attr in attributes(kind).iter().filter(|a| settable(a, for_create)) {
        let value = match attr.ty {
            AttrType::Bool => args.get_one::<bool>(attr.name).map(|b| json!(b)),
            AttrType::Routes => match args.get_many::<String>(attr.name) {
                Some(values) => Some(Value::Array(
                    values.map(|v| key_values(v)).collect::<Result<_>>()?,
                )),
                None => None,
            },
            AttrType::CidrList
            | AttrType::StringList
            | AttrType::Nameservers
            | AttrType::ServiceTypes => args.get_many::<String>(attr.name).map(|values| {
                json!(
                    values
                        .flat_map(|v| v.split(','))
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .collect::<Vec<_>>()
                )
            }),
            _ => match args.get_one::<String>(attr.name) {
                Some(text) => Some(convert(client, attr, text).await?),
                None => None,
            },
        };
        if let Some(value) = value {
            body.insert(attr.name.to_string(), value);
        }
    }
    Ok(body)
}

async fn convert(client: &Client, attr: &Attr, text: &str) -> Result<Value> {
    Ok(match attr.ty {
        AttrType::Int(_) | AttrType::IpVersion => json!(
            text.parse::<i64>()
                .with_context(|| format!("--{} needs a number", flag(attr)))?
        ),
        AttrType::Lifetime | AttrType::Dpd => key_values(text)?,
        AttrType::GatewayInfo if text.eq_ignore_ascii_case("none") => Value::Null,
        AttrType::GatewayInfo if !text.contains('=') => {
            json!({"network_id": resolve(client, Kind::Network, text).await?})
        }
        AttrType::GatewayInfo => {
            let mut info = key_values(text)?;
            if let Some(network) = info
                .get("network_id")
                .and_then(Value::as_str)
                .map(String::from)
            {
                info["network_id"] = json!(resolve(client, Kind::Network, &network).await?);
            }
            info
        }
        AttrType::IpOrNull | AttrType::EnumOrNull(_) if text.eq_ignore_ascii_case("none") => {
            Value::Null
        }
        AttrType::Uuid | AttrType::UuidOrNull => match referenced_kind(attr.name) {
            Some(kind) => json!(resolve(client, kind, text).await?),
            None => json!(text),
        },
        _ => json!(text),
    })
}

/// `a=1,b=x` → `{"a": 1, "b": "x"}` (integers and booleans typed).
fn key_values(text: &str) -> Result<Value> {
    let mut map = Map::new();
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .with_context(|| format!("'{pair}' is not KEY=VALUE"))?;
        let value = if let Ok(n) = value.parse::<i64>() {
            json!(n)
        } else if let Ok(b) = value.parse::<bool>() {
            json!(b)
        } else {
            json!(value)
        };
        map.insert(key.trim().to_string(), value);
    }
    Ok(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_are_typed() {
        assert_eq!(
            key_values("action=hold,interval=10,timeout=40").expect("parses"),
            json!({"action": "hold", "interval": 10, "timeout": 40})
        );
        assert!(key_values("oops").is_err());
    }

    #[test]
    fn every_resource_command_builds() {
        for kind in Kind::ALL {
            command(kind).debug_assert();
        }
    }
}
