//! A router's desired state, as its agent fetches it: gateway and interface addresses,
//! and every connection of its VPN services with the policies, endpoint CIDRs and secret
//! it needs, built from one store snapshot.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use vpnaas_model::Kind;
use vpnaas_model::address::{self, Cidr, Endpoint, IpAddress};
use vpnaas_model::agent::{Agent, ConnectionSpec, HaPeer, PortAddress, RouterState};
use vpnaas_model::certificate::{CertificateAuth, CertificateAuthority, GatewayCredential};
use vpnaas_model::endpoint_group::EndpointGroup;
use vpnaas_model::enums::{AuthMode, HaRole, StatusReason};
use vpnaas_model::network::{Router, Subnet};
use vpnaas_model::policy::{IkePolicy, IpsecPolicy};
use vpnaas_model::site_connection::SiteConnection;
use vpnaas_model::vpn_service::VpnService;
use vpnaas_store::Transaction;

use crate::App;
use crate::error::{ApiError, ApiResult};

/// Builds the desired states for `host` of those of `router_ids` it holds (as standby:
/// the same state, marked so), from one snapshot; objects several routers share (their
/// policies, the external subnet) are read once.
pub async fn router_states(
    app: &App,
    host: &str,
    router_ids: &[String],
) -> ApiResult<Vec<RouterState>> {
    let mut tx = app.store.read().await?;
    let mut reads = Reads::default();
    let mut states = Vec::with_capacity(router_ids.len());
    for router_id in router_ids {
        states.extend(router_state(tx.as_mut(), &mut reads, host, router_id).await?);
    }
    Ok(states)
}

/// One router's desired state for `host`, if it holds the router.
async fn router_state(
    tx: &mut dyn Transaction,
    reads: &mut Reads,
    host: &str,
    router_id: &str,
) -> ApiResult<Option<RouterState>> {
    let Some(router) = tx.load::<Router>(router_id).await? else {
        return Ok(None);
    };
    let Some(role) = router.role_of(host) else {
        return Ok(None);
    };
    let mut gateway = Vec::new();
    if let Some(info) = &router.external_gateway_info {
        for fixed in &info.external_fixed_ips {
            gateway.push(
                port_address(
                    tx,
                    reads,
                    &info.network_id,
                    &fixed.subnet_id,
                    &fixed.ip_address,
                )
                .await?,
            );
        }
    }
    let mut interfaces = Vec::new();
    for interface in &router.interfaces {
        let Some(subnet) = reads.load::<Subnet>(tx, &interface.subnet_id).await? else {
            continue;
        };
        interfaces.push(
            port_address(
                tx,
                reads,
                &subnet.network_id,
                &subnet.id,
                &interface.ip_address,
            )
            .await?,
        );
    }
    let services: Vec<VpnService> = tx.load_referrers(Kind::Router, router_id).await?;
    let mut connections = Vec::new();
    for service in &services {
        for conn in tx
            .load_referrers::<SiteConnection>(Kind::VpnService, &service.id)
            .await?
        {
            connections.extend(connection_spec(tx, reads, &router, service, conn).await?);
        }
    }
    let active_peer = match role {
        HaRole::Standby => reads.active_peer(tx, &router).await?,
        HaRole::Active => None,
    };
    Ok(Some(RouterState {
        router_id: router.id.clone(),
        revision: router.standard.revision_number,
        admin_state_up: router.admin_state_up,
        gateway,
        enable_snat: router
            .external_gateway_info
            .as_ref()
            .is_some_and(|g| g.enable_snat),
        interfaces,
        services: services
            .iter()
            .map(|s| (s.id.clone(), s.admin_state_up))
            .collect(),
        connections,
        driver: services.iter().find_map(|s| s.provider),
        ha: router.ha,
        role,
        lease_epoch: router.lease_epoch,
        active_peer,
    }))
}

async fn port_address(
    tx: &mut dyn Transaction,
    reads: &mut Reads,
    network_id: &str,
    subnet_id: &str,
    ip: &IpAddress,
) -> ApiResult<PortAddress> {
    let subnet: Subnet = reads
        .load(tx, subnet_id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("subnet {subnet_id} vanished")))?;
    let address = IpNet::new(ip.ip(), subnet.cidr.net().prefix_len())
        .map_err(|_| ApiError::Internal("prefix".into()))?;
    Ok(PortAddress {
        network_id: network_id.to_string(),
        subnet_id: subnet_id.to_string(),
        address,
        gateway: subnet.gateway_ip.as_ref().map(IpAddress::ip),
    })
}

/// Traffic selectors: the networks of the CIDRs, host bits cleared.
fn selectors(cidrs: impl IntoIterator<Item = IpNet>) -> Vec<IpNet> {
    cidrs.into_iter().map(|c| c.trunc()).collect()
}

/// Why the server cannot hand a connection to its router's agent: the agent could not
/// run it, so the connection says so instead of waiting without a word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unplaceable {
    /// The reason, as the connection's `status_reason` shows it.
    pub reason: StatusReason,
    /// What to do about it, for the event history.
    pub detail: String,
}

/// The connection's two tunnel ends, `(local, peer)`: its peer's address and the router's
/// gateway address of the same IP version.
pub fn tunnel_ends(
    router: &Router,
    conn: &SiteConnection,
) -> Result<(IpAddr, IpAddr), Unplaceable> {
    let Some(peer) = conn.peer_address.ip() else {
        return Err(Unplaceable {
            reason: StatusReason::PeerUnresolved,
            detail: format!(
                "the peer address {} is not an IP address: set peer_address again to resolve it",
                conn.peer_address
            ),
        });
    };
    let version = address::version_of(peer);
    match router.gateway_ip(version) {
        Some(local) => Ok((local, peer)),
        None => Err(Unplaceable {
            reason: StatusReason::NoGatewayForPeerFamily,
            detail: format!(
                "router {} has no IPv{version} gateway address for the IPv{version} peer {peer}",
                router.id
            ),
        }),
    }
}

/// The desired state of one connection as its router's agent gets it (our end of the
/// tunnel), or why none can be built.
pub async fn connection(
    app: &App,
    conn: SiteConnection,
) -> ApiResult<Result<ConnectionSpec, String>> {
    let mut tx = app.store.read().await?;
    let mut reads = Reads::default();
    let Some(service) = tx.load::<VpnService>(&conn.vpnservice_id).await? else {
        return Ok(Err("its VPN service is gone".into()));
    };
    let Some(router) = tx.load::<Router>(&service.router_id).await? else {
        return Ok(Err("the router of its VPN service is gone".into()));
    };
    if let Err(why) = tunnel_ends(&router, &conn) {
        return Ok(Err(why.detail));
    }
    Ok(
        connection_spec(tx.as_mut(), &mut reads, &router, &service, conn)
            .await?
            .ok_or_else(|| "one of its policies is gone".to_string()),
    )
}

async fn connection_spec(
    tx: &mut dyn Transaction,
    reads: &mut Reads,
    router: &Router,
    service: &VpnService,
    conn: SiteConnection,
) -> ApiResult<Option<ConnectionSpec>> {
    let (Some(ike), Some(ipsec)) = (
        reads.load::<IkePolicy>(tx, &conn.ikepolicy_id).await?,
        reads.load::<IpsecPolicy>(tx, &conn.ipsecpolicy_id).await?,
    ) else {
        return Ok(None);
    };
    let (local_cidrs, peer_cidrs) = match &service.subnet_id {
        Some(subnet_id) => {
            let subnet: Option<Subnet> = reads.load(tx, subnet_id).await?;
            (
                selectors(subnet.map(|s| s.cidr.net())),
                selectors(conn.peer_cidrs.iter().map(Cidr::net)),
            )
        }
        None => {
            let mut local = Vec::new();
            if let Some(group) = load_group(tx, reads, &conn.local_ep_group_id).await? {
                for subnet_id in &group.endpoints {
                    if let Some(subnet) = reads.load::<Subnet>(tx, subnet_id.as_str()).await? {
                        local.extend(selectors([subnet.cidr.net()]));
                    }
                }
            }
            let peer = load_group(tx, reads, &conn.peer_ep_group_id)
                .await?
                .map(|g| selectors(g.endpoints.iter().filter_map(Endpoint::cidr)))
                .unwrap_or_default();
            (local, peer)
        }
    };
    // The status report of the router says why a connection left out here is not run.
    let Ok((local_address, peer_address)) = tunnel_ends(router, &conn) else {
        return Ok(None);
    };
    let local_id = if conn.local_id.is_empty() {
        local_address.to_string()
    } else {
        conn.local_id.clone()
    };
    let certificate = match conn.auth_mode {
        AuthMode::Psk => None,
        AuthMode::Cert => match certificate_auth(tx, reads, service, &conn).await? {
            Some(auth) => Some(auth),
            None => {
                tracing::warn!(connection = %conn.id, "a cert connection without a gateway certificate is left out");
                return Ok(None);
            }
        },
    };
    Ok(Some(ConnectionSpec {
        certificate,
        enabled: service.admin_state_up && conn.admin_state_up && router.admin_state_up,
        service_id: service.id.clone(),
        local_address,
        local_id,
        peer_address,
        peer_id: conn.peer_id.clone(),
        psk: conn.psk.clone(),
        local_cidrs,
        peer_cidrs,
        ike,
        ipsec,
        dpd: conn.dpd.clone(),
        initiator: conn.initiator,
        mtu: conn.mtu,
        generations: conn.key_rotation.asked(),
        id: conn.id,
    }))
}

/// What a `cert` connection authenticates with: its service's certificate and key, and
/// the CA it trusts for the peer (its own `peer_ca_certificate`, else the project's).
async fn certificate_auth(
    tx: &mut dyn Transaction,
    reads: &mut Reads,
    service: &VpnService,
    conn: &SiteConnection,
) -> ApiResult<Option<CertificateAuth>> {
    let Some(gateway) = reads.load::<GatewayCredential>(tx, &service.id).await? else {
        return Ok(None);
    };
    let peer_ca = match &conn.peer_ca_certificate {
        Some(pem) => pem.clone(),
        None => match reads
            .load::<CertificateAuthority>(tx, &service.project_id)
            .await?
        {
            Some(ca) => ca.certificate,
            None => return Ok(None),
        },
    };
    Ok(Some(CertificateAuth {
        local_certificate: gateway.certificate,
        local_key: gateway.private_key,
        peer_ca,
    }))
}

async fn load_group(
    tx: &mut dyn Transaction,
    reads: &mut Reads,
    id: &Option<String>,
) -> ApiResult<Option<EndpointGroup>> {
    match id {
        Some(id) => reads.load(tx, id).await,
        None => Ok(None),
    }
}

/// The objects read while building one desired state, each fetched once: a router's
/// connections usually share their policies and subnets.
#[derive(Default)]
struct Reads {
    bodies: HashMap<(Kind, String), Option<String>>,
    /// The agents, read once when a standby's state needs its active agent's address.
    agents: Option<Vec<Agent>>,
}

impl Reads {
    /// Where the router's active agent answers liveness probes, if it does.
    async fn active_peer(
        &mut self,
        tx: &mut dyn Transaction,
        router: &Router,
    ) -> ApiResult<Option<HaPeer>> {
        let Some(host) = router.agent_host.as_deref() else {
            return Ok(None);
        };
        if self.agents.is_none() {
            self.agents = Some(tx.load_all().await?);
        }
        let agents = self.agents.as_deref().unwrap_or_default();
        Ok(agents
            .iter()
            .find(|a| a.host == host)
            .and_then(|a| a.ha_address)
            .map(|address| HaPeer {
                host: host.to_string(),
                address,
            }))
    }

    async fn load<R: vpnaas_model::Resource>(
        &mut self,
        tx: &mut dyn Transaction,
        id: &str,
    ) -> ApiResult<Option<R>> {
        let key = (R::KIND, id.to_string());
        if !self.bodies.contains_key(&key) {
            let body = tx.get(R::KIND, id).await?.map(|r| r.body);
            self.bodies.insert(key.clone(), body);
        }
        match self.bodies.get(&key).and_then(Option::as_ref) {
            Some(body) => Ok(Some(serde_json::from_str(body)?)),
            None => Ok(None),
        }
    }
}
