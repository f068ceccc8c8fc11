//! The objects `vpnaas bench api` needs besides the ones it times: an external network
//! for router gateways, a VPN site whose every object is in use (for the guards), and
//! background objects spread over other projects (so that figures can be compared between
//! an empty database and a full one).

use anyhow::{Context, Result};
use serde_json::{Value, json};
use vpnaas_client::Client;
use vpnaas_model::Kind;

/// A VPN site of one project: every object below is in use by the connection (or by the
/// service, router or endpoint group above it), so deleting any of them is refused.
pub struct VpnSite {
    pub network: String,
    pub subnet: String,
    pub router: String,
    pub local_group: String,
    pub peer_group: String,
    pub service: String,
    pub ike: String,
    pub ipsec: String,
    pub connection: String,
}

fn id_of(created: &Value) -> Result<String> {
    Ok(created["id"]
        .as_str()
        .context("no id in the answer")?
        .to_string())
}

/// Creates (as admin) the external network routers take their gateways from; its
/// `/15` holds enough addresses for every project's router. Returns its id.
pub async fn external_network(admin: &Client, run_id: &str) -> Result<String> {
    let network = admin
        .create(
            Kind::Network,
            json!({"name": format!("bench-{run_id}-public"), "router:external": true}),
        )
        .await?;
    let network = id_of(&network)?;
    admin
        .create(
            Kind::Subnet,
            json!({"network_id": network, "cidr": "198.18.0.0/15", "ip_version": 4}),
        )
        .await?;
    Ok(network)
}

/// The connection attributes of a site (endpoint-group mode).
fn connection(site_ids: [&str; 5], n: usize) -> Value {
    let [service, ike, ipsec, local, peer] = site_ids;
    json!({
        "name": format!("conn-{n}"), "vpnservice_id": service, "ikepolicy_id": ike,
        "ipsecpolicy_id": ipsec, "local_ep_group_id": local, "peer_ep_group_id": peer,
        "peer_address": "198.51.100.7", "peer_id": "198.51.100.7", "psk": "bench-psk",
    })
}

/// Creates a site in `client`'s project: network, subnet, router with a gateway on
/// `external` and an interface on the subnet, endpoint groups, a VPN service, policies
/// and one connection using them all. Nine objects.
pub async fn site(client: &Client, external: &str) -> Result<VpnSite> {
    let network = id_of(&client.create(Kind::Network, json!({})).await?)?;
    let subnet = id_of(
        &client
            .create(
                Kind::Subnet,
                json!({"network_id": network, "cidr": "10.200.0.0/24", "ip_version": 4}),
            )
            .await?,
    )?;
    let router = id_of(
        &client
            .create(
                Kind::Router,
                json!({"external_gateway_info": {"network_id": external}}),
            )
            .await?,
    )?;
    client.add_router_interface(&router, &subnet).await?;
    let group = |kind: &str, endpoint: &str| json!({"type": kind, "endpoints": [endpoint]});
    let local_group = id_of(
        &client
            .create(Kind::EndpointGroup, group("subnet", &subnet))
            .await?,
    )?;
    let peer_group = id_of(
        &client
            .create(Kind::EndpointGroup, group("cidr", "172.16.0.0/24"))
            .await?,
    )?;
    let service = id_of(
        &client
            .create(Kind::VpnService, json!({"router_id": router}))
            .await?,
    )?;
    let ike = id_of(&client.create(Kind::IkePolicy, json!({})).await?)?;
    let ipsec = id_of(&client.create(Kind::IpsecPolicy, json!({})).await?)?;
    let ids = [
        service.as_str(),
        &ike,
        &ipsec,
        local_group.as_str(),
        peer_group.as_str(),
    ];
    let connection = id_of(
        &client
            .create(Kind::SiteConnection, connection(ids, 0))
            .await?,
    )?;
    Ok(VpnSite {
        network,
        subnet,
        router,
        local_group,
        peer_group,
        service,
        ike,
        ipsec,
        connection,
    })
}

/// Objects per site.
const SITE_OBJECTS: usize = 9;

/// Fills `client`'s project with `count` objects: a site, then connections, IKE and IPsec
/// policies and endpoint groups in turn (two connections for each of the others).
pub async fn background_project(client: &Client, external: &str, count: usize) -> Result<()> {
    if count < SITE_OBJECTS {
        for n in 0..count {
            client
                .create(Kind::IkePolicy, json!({"name": format!("bg-{n}")}))
                .await?;
        }
        return Ok(());
    }
    let site = site(client, external).await?;
    let ids = [
        site.service.as_str(),
        &site.ike,
        &site.ipsec,
        &site.local_group,
        &site.peer_group,
    ];
    for n in 0..count - SITE_OBJECTS {
        let name = json!({"name": format!("bg-{n}")});
        match n % 5 {
            0 | 1 => {
                client
                    .create(Kind::SiteConnection, connection(ids, n))
                    .await?
            }
            2 => client.create(Kind::IkePolicy, name).await?,
            3 => client.create(Kind::IpsecPolicy, name).await?,
            _ => {
                let group =
                    json!({"type": "cidr", "endpoints": [format!("172.17.{}.0/24", n % 250)]});
                client.create(Kind::EndpointGroup, group).await?
            }
        };
    }
    Ok(())
}

/// Deletes a site, connection first.
pub async fn delete_site(client: &Client, site: &VpnSite) -> Result<()> {
    client
        .delete(Kind::SiteConnection, &site.connection)
        .await?;
    client.delete(Kind::VpnService, &site.service).await?;
    for (kind, id) in [
        (Kind::EndpointGroup, &site.local_group),
        (Kind::EndpointGroup, &site.peer_group),
        (Kind::IkePolicy, &site.ike),
        (Kind::IpsecPolicy, &site.ipsec),
    ] {
        client.delete(kind, id).await?;
    }
    client
        .remove_router_interface(&site.router, &site.subnet)
        .await?;
    client.delete(Kind::Router, &site.router).await?;
    client.delete(Kind::Network, &site.network).await?;
    Ok(())
}
