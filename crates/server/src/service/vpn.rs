//! The five VPN resources: policies, VPN services, endpoint groups and site connections,
//! with Neutron's validation pipeline (reference §1.8) and in-use guards (§1.9).

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{Map, Value, json};
use vpnaas_model::FaultKind;
use vpnaas_model::address::{self, Cidr, Endpoint};
use vpnaas_model::endpoint_group::EndpointGroup;
use vpnaas_model::enums::{DriverKind, EndpointType, Status, TransformProtocol};
use vpnaas_model::grammar::{self, PeerAddress};
use vpnaas_model::network::{Router, Subnet};
use vpnaas_model::policy::{IkePolicy, IpsecPolicy};
use vpnaas_model::site_connection::SiteConnection;
use vpnaas_model::vpn_service::VpnService;
use vpnaas_model::{Error as Fault, Kind, Resource};
use vpnaas_store::Transaction;

use super::{Stored, build, certificates, changed, fetch, fetch_visible_subnet};
use crate::auth::Caller;
use crate::config::Settings;
use crate::error::{ApiError, ApiResult};

/// The outcome of resolving a connection's `peer_address`, done before the write
/// transaction so that DNS never holds the store's writer lock.
pub type Resolved = Result<IpAddr, Fault>;

/// Resolves the `peer_address` in `fields` (a host name becomes its first address).
pub async fn resolve_peer(fields: &Map<String, Value>) -> Resolved {
    let text = fields
        .get("peer_address")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let not_resolved = || {
        Fault::bad_request(
            FaultKind::VPNPeerAddressNotResolved,
            format!("Peer address {text} cannot be resolved"),
        )
    };
    match grammar::parse_peer_address(text).map_err(|_| not_resolved())? {
        PeerAddress::Ip(ip) => Ok(ip),
        PeerAddress::Fqdn(name) => {
            let mut addresses = tokio::net::lookup_host((name.as_str(), 0))
                .await
                .map_err(|_| not_resolved())?;
            let ip = addresses.next().map(|a| a.ip()).ok_or_else(not_resolved)?;
            // A name is held to what its address could be as a literal.
            match grammar::unfit_peer(ip) {
                Some(why) => Err(Fault::invalid_input(
                    "peer_address",
                    format!("{name} resolves to {ip}, {why}, which cannot be a peer gateway"),
                )),
                None => Ok(ip),
            }
        }
    }
}

/// The kinds whose use cases live here (`service::Owner` routes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum VpnKind {
    IkePolicy,
    IpsecPolicy,
    EndpointGroup,
    VpnService,
    SiteConnection,
}

impl VpnKind {
    /// The kind, as the store and the API name it.
    pub(super) fn kind(self) -> Kind {
        match self {
            VpnKind::IkePolicy => Kind::IkePolicy,
            VpnKind::IpsecPolicy => Kind::IpsecPolicy,
            VpnKind::EndpointGroup => Kind::EndpointGroup,
            VpnKind::VpnService => Kind::VpnService,
            VpnKind::SiteConnection => Kind::SiteConnection,
        }
    }
}

/// Checks a new object and builds it from validated attributes; the caller saves it.
pub(super) async fn create(
    tx: &mut dyn Transaction,
    settings: &Settings,
    caller: &Caller,
    kind: VpnKind,
    fields: Map<String, Value>,
    resolved: Option<Resolved>,
) -> ApiResult<Stored> {
    match kind {
        VpnKind::IkePolicy => Ok(build::<IkePolicy>(fields, vec![])?.into()),
        VpnKind::IpsecPolicy => Ok(build::<IpsecPolicy>(fields, vec![])?.into()),
        VpnKind::EndpointGroup => create_endpoint_group(tx, caller, fields).await,
        VpnKind::VpnService => create_vpn_service(tx, caller, fields).await,
        VpnKind::SiteConnection => create_connection(tx, settings, caller, fields, resolved).await,
    }
}

/// Checks a change and returns the object as changed; the caller saves it.
pub(super) async fn update(
    tx: &mut dyn Transaction,
    settings: &Settings,
    caller: &Caller,
    kind: VpnKind,
    id: &str,
    changes: Map<String, Value>,
    resolved: Option<Resolved>,
) -> ApiResult<Stored> {
    match kind {
        VpnKind::IkePolicy => update_policy::<IkePolicy>(tx, caller, id, changes).await,
        VpnKind::IpsecPolicy => update_policy::<IpsecPolicy>(tx, caller, id, changes).await,
        VpnKind::EndpointGroup => {
            let group: EndpointGroup = fetch(tx, caller, id).await?;
            Ok(changed(&group, changes)?.into())
        }
        VpnKind::VpnService => {
            let service: VpnService = fetch(tx, caller, id).await?;
            Ok(changed(&service, changes)?.into())
        }
        VpnKind::SiteConnection => {
            update_connection(tx, settings, caller, id, changes, resolved).await
        }
    }
}

/// Deletes an object after its guards pass; returns it as it was.
pub(super) async fn delete(
    tx: &mut dyn Transaction,
    caller: &Caller,
    kind: VpnKind,
    id: &str,
) -> ApiResult<Stored> {
    let removed: Stored = match kind {
        VpnKind::IkePolicy => {
            let policy: IkePolicy = fetch(tx, caller, id).await?;
            if used_by_connection(tx, kind.kind(), id).await? {
                return Err(Fault::policy_in_use(kind.kind(), id).into());
            }
            policy.into()
        }
        VpnKind::IpsecPolicy => {
            let policy: IpsecPolicy = fetch(tx, caller, id).await?;
            if used_by_connection(tx, kind.kind(), id).await? {
                return Err(Fault::policy_in_use(kind.kind(), id).into());
            }
            policy.into()
        }
        VpnKind::EndpointGroup => {
            let group: EndpointGroup = fetch(tx, caller, id).await?;
            if used_by_connection(tx, kind.kind(), id).await? {
                return Err(Fault::bad_request(
                    FaultKind::EndpointGroupInUse,
                    format!("Endpoint group {id} is in use and cannot be deleted"),
                )
                .into());
            }
            group.into()
        }
        VpnKind::VpnService => {
            let service: VpnService = fetch(tx, caller, id).await?;
            if used_by_connection(tx, kind.kind(), id).await? {
                return Err(Fault::conflict(
                    FaultKind::VPNServiceInUse,
                    format!("VPNService {id} is still in use"),
                )
                .into());
            }
            certificates::forget(tx, id).await?;
            service.into()
        }
        VpnKind::SiteConnection => {
            let conn: SiteConnection = fetch(tx, caller, id).await?;
            tx.delete_events(id).await?;
            conn.into()
        }
    };
    tx.delete(kind.kind(), id).await?;
    Ok(removed)
}

async fn used_by_connection(tx: &mut dyn Transaction, kind: Kind, id: &str) -> ApiResult<bool> {
    Ok(tx
        .first_referrer(Kind::SiteConnection, kind, id)
        .await?
        .is_some())
}

/// Policies in use may still be renamed and re-described (a deliberate difference from
/// Neutron, which refuses even that); every other change is `<Policy>InUse`.
async fn update_policy<P: Resource + Into<Stored>>(
    tx: &mut dyn Transaction,
    caller: &Caller,
    id: &str,
    changes: Map<String, Value>,
) -> ApiResult<Stored> {
    let policy: P = fetch(tx, caller, id).await?;
    let cosmetic = changes.keys().all(|k| k == "name" || k == "description");
    if !cosmetic && used_by_connection(tx, P::KIND, id).await? {
        return Err(Fault::policy_in_use(P::KIND, id).into());
    }
    Ok(changed(&policy, changes)?.into())
}

async fn create_vpn_service(
    tx: &mut dyn Transaction,
    caller: &Caller,
    fields: Map<String, Value>,
) -> ApiResult<Stored> {
    let router_id = fields["router_id"].as_str().unwrap_or_default().to_string();
    let router: Router = fetch(tx, caller, &router_id).await?;
    let driver = fields
        .get("provider")
        .and_then(|p| serde_json::from_value::<DriverKind>(p.clone()).ok())
        .unwrap_or(DriverKind::Strongswan);
    super::flavors::check_router_driver(tx, &router_id, driver, None).await?;
    if router.external_gateway_info.is_none() {
        return Err(Fault::bad_request(
            FaultKind::RouterIsNotExternal,
            format!("Router {router_id} has no external network gateway set"),
        )
        .into());
    }
    if let Some(subnet_id) = fields.get("subnet_id").and_then(Value::as_str)
        && !router.has_interface_on(subnet_id)
    {
        return Err(not_connected(subnet_id, &router_id).into());
    }
    let ip = |v| {
        router
            .gateway_ip(v)
            .map_or(Value::Null, |ip| json!(ip.to_string()))
    };
    let service: VpnService = build(
        fields,
        vec![
            ("external_v4_ip", ip(4)),
            ("external_v6_ip", ip(6)),
            ("status", json!(Status::PendingCreate)),
        ],
    )?;
    Ok(service.into())
}

fn not_connected(subnet_id: &str, router_id: &str) -> Fault {
    Fault::bad_request(
        FaultKind::SubnetIsNotConnectedToRouter,
        format!("Subnet {subnet_id} is not connected to Router {router_id}"),
    )
}

async fn create_endpoint_group(
    tx: &mut dyn Transaction,
    caller: &Caller,
    fields: Map<String, Value>,
) -> ApiResult<Stored> {
    let group: EndpointGroup = build(fields, vec![])?;
    check_endpoints(tx, caller, &group).await?;
    Ok(group.into())
}

async fn check_endpoints(
    tx: &mut dyn Transaction,
    caller: &Caller,
    group: &EndpointGroup,
) -> ApiResult<()> {
    let kind = group.endpoint_type;
    let invalid = |endpoint: &str, why: &str| {
        Fault::bad_request(
            FaultKind::InvalidEndpointInEndpointGroup,
            format!("Endpoint '{endpoint}' is invalid for group type '{kind}': {why}"),
        )
    };
    if group.endpoints.is_empty() {
        return Err(Fault::bad_request(
            FaultKind::MissingEndpointForEndpointGroup,
            format!("No endpoints specified for endpoint group '{}'", group.name),
        )
        .into());
    }
    let texts: Vec<&str> = group.endpoints.iter().map(Endpoint::as_str).collect();
    let mut unique = texts.clone();
    unique.sort_unstable();
    unique.dedup();
    if unique.len() != texts.len() {
        return Err(invalid(&texts.join(","), "Endpoints have to be unique").into());
    }
    for endpoint in &group.endpoints {
        let text = endpoint.as_str();
        match kind {
            EndpointType::Cidr => {
                if endpoint.cidr().is_none() {
                    return Err(invalid(text, "Invalid CIDR").into());
                }
            }
            EndpointType::Subnet => {
                grammar::check_uuid(text).map_err(|_| invalid(text, "Invalid UUID"))?;
                if fetch_visible_subnet(tx, caller, text).await.is_err() {
                    return Err(Fault::bad_request(
                        FaultKind::NonExistingSubnetInEndpointGroup,
                        format!("Subnet {text} in endpoint group does not exist"),
                    )
                    .into());
                }
            }
            EndpointType::Network | EndpointType::Router => {
                grammar::check_uuid(text).map_err(|_| invalid(text, "Invalid UUID"))?;
            }
            EndpointType::Vlan => {
                if !text.parse::<u16>().is_ok_and(|v| (1..=4094).contains(&v)) {
                    return Err(invalid(text, "Invalid VLAN id (1-4094)").into());
                }
            }
        }
    }
    Ok(())
}

async fn create_connection(
    tx: &mut dyn Transaction,
    settings: &Settings,
    caller: &Caller,
    fields: Map<String, Value>,
    resolved: Option<Resolved>,
) -> ApiResult<Stored> {
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let ipsec: IpsecPolicy = fetch(tx, caller, &text("ipsecpolicy_id")).await?;
    if ipsec.transform_protocol == TransformProtocol::AhEsp {
        return Err(Fault::bad_request(
            FaultKind::IpsecValidationFailure,
            "IPSec does not support IPsec Policy attribute transform_protocol with value 'ah-esp'",
        )
        .into());
    }
    let service: VpnService = fetch(tx, caller, &text("vpnservice_id")).await?;
    let ike: IkePolicy = fetch(tx, caller, &text("ikepolicy_id")).await?;
    super::flavors::check_policies(
        service.provider.unwrap_or(DriverKind::Strongswan),
        &ike,
        &ipsec,
    )?;
    let mut conn: SiteConnection = build(
        fields,
        vec![
            ("status", json!(Status::PendingCreate)),
            ("route_mode", json!("static")),
        ],
    )?;
    check_connection(tx, caller, &mut conn, &service, resolved).await?;
    certificates::prepare(tx, settings, &mut conn, &service, &ike).await?;
    Ok(conn.into())
}

async fn update_connection(
    tx: &mut dyn Transaction,
    settings: &Settings,
    caller: &Caller,
    id: &str,
    changes: Map<String, Value>,
    resolved: Option<Resolved>,
) -> ApiResult<Stored> {
    let existing: SiteConnection = fetch(tx, caller, id).await?;
    let service: VpnService = fetch(tx, caller, &existing.vpnservice_id).await?;
    let mut conn = changed(&existing, changes)?;
    check_connection(tx, caller, &mut conn, &service, resolved).await?;
    let ike: IkePolicy = fetch(tx, caller, &conn.ikepolicy_id).await?;
    certificates::prepare(tx, settings, &mut conn, &service, &ike).await?;
    if conn.psk != existing.psk {
        // The agent loads the new key beside the SAs up instead of bouncing them.
        conn.key_rotation.credentials += 1;
    }
    Ok(conn.into())
}

/// The checks of reference §1.8 step 3 that follow the existence checks: mode rules,
/// endpoint groups, IP versions, DPD, MTU, then the peer address against the gateway.
async fn check_connection(
    tx: &mut dyn Transaction,
    caller: &Caller,
    conn: &mut SiteConnection,
    service: &VpnService,
    resolved: Option<Resolved>,
) -> ApiResult<()> {
    let router: Router = fetch(tx, caller, &service.router_id).await?;
    let local_version = match &service.subnet_id {
        Some(subnet_id) => check_legacy_mode(tx, caller, conn, subnet_id).await?,
        None => check_endpoint_group_mode(tx, caller, conn, &router).await?,
    };
    if conn.dpd.timeout <= conn.dpd.interval {
        return Err(Fault::bad_request(
            FaultKind::IPsecSiteConnectionDpdIntervalValueError,
            "ipsec_site_connection dpd_timeout is equal to or less than dpd_interval",
        )
        .into());
    }
    check_mtu(conn.mtu, local_version)?;
    if let Some(resolved) = resolved {
        conn.peer_address = resolved?.into();
    }
    let peer = conn
        .peer_address
        .ip()
        .ok_or_else(|| ApiError::Internal("stored peer address".into()))?;
    let peer_version = address::version_of(peer);
    if router.gateway_ip(peer_version).is_none() {
        return Err(Fault::bad_request(
            FaultKind::ExternalNetworkHasNoSubnet,
            format!(
                "Router's {} external network has no IPv{peer_version} subnet",
                router.id
            ),
        )
        .into());
    }
    Ok(())
}

fn check_mtu(mtu: u32, local_version: u8) -> ApiResult<()> {
    let minimum = if local_version == 6 { 1280 } else { 68 };
    if mtu < minimum {
        return Err(Fault::bad_request(
            FaultKind::IPsecSiteConnectionMtuError,
            format!("ipsec_site_connection MTU {mtu} is too small for ipv{local_version}"),
        )
        .into());
    }
    Ok(())
}

fn which(local: bool, peer: bool) -> (&'static str, &'static str) {
    match (local, peer) {
        (true, true) => ("s", "local and peer"),
        (true, false) => ("", "local"),
        _ => ("", "peer"),
    }
}

/// Service with a subnet: peer CIDRs required (checked first, as Neutron does), no
/// endpoint groups; returns the local version.
async fn check_legacy_mode(
    tx: &mut dyn Transaction,
    caller: &Caller,
    conn: &SiteConnection,
    subnet_id: &str,
) -> ApiResult<u8> {
    if conn.peer_cidrs.is_empty() {
        return Err(Fault::bad_request(
            FaultKind::MissingPeerCidrs,
            "Missing peer CIDRs for IPsec site-to-site connection",
        )
        .into());
    }
    let (local, peer) = (
        conn.local_ep_group_id.is_some(),
        conn.peer_ep_group_id.is_some(),
    );
    if local || peer {
        let (suffix, which) = which(local, peer);
        return Err(Fault::bad_request(
            FaultKind::InvalidEndpointGroup,
            format!("Endpoint group{suffix} {which} cannot be specified, when VPN Service has subnet specified"),
        )
        .into());
    }
    let subnet: Subnet = fetch_visible_subnet(tx, caller, subnet_id).await?;
    let peer_version = single_version(conn.peer_cidrs.iter().map(Cidr::net)).ok_or_else(|| {
        Fault::bad_request(
            FaultKind::MixedIPVersionsForPeerCidrs,
            "Peer CIDRs do not have the same IP version, as required for IPSec site-to-site connection",
        )
    })?;
    if peer_version != subnet.ip_version {
        return Err(mixed_connection().into());
    }
    Ok(subnet.ip_version)
}

/// Service without a subnet: both groups required (local `subnet`, peer `cidr`), no peer
/// CIDRs; returns the local version.
async fn check_endpoint_group_mode(
    tx: &mut dyn Transaction,
    caller: &Caller,
    conn: &SiteConnection,
    router: &Router,
) -> ApiResult<u8> {
    if !conn.peer_cidrs.is_empty() {
        return Err(Fault::bad_request(
            FaultKind::PeerCidrsInvalid,
            "Peer CIDRs cannot be specified, when using endpoint groups",
        )
        .into());
    }
    let (Some(local_id), Some(peer_id)) = (&conn.local_ep_group_id, &conn.peer_ep_group_id) else {
        let (suffix, which) = which(
            conn.local_ep_group_id.is_none(),
            conn.peer_ep_group_id.is_none(),
        );
        return Err(Fault::bad_request(
            FaultKind::MissingRequiredEndpointGroup,
            format!("Missing endpoint group{suffix} {which} for IPSec site-to-site connection"),
        )
        .into());
    };
    let local: EndpointGroup = fetch(tx, caller, local_id).await?;
    let peer: EndpointGroup = fetch(tx, caller, peer_id).await?;
    for (group, role, expected) in [
        (&local, "local", EndpointType::Subnet),
        (&peer, "peer", EndpointType::Cidr),
    ] {
        if group.endpoint_type != expected {
            return Err(Fault::bad_request(
                FaultKind::WrongEndpointGroupType,
                format!(
                    "Endpoint group {role} type is '{}' and should be '{expected}'",
                    group.endpoint_type
                ),
            )
            .into());
        }
    }
    let mut local_cidrs = Vec::new();
    for subnet_id in local.endpoints.iter().map(Endpoint::as_str) {
        if !router.has_interface_on(subnet_id) {
            return Err(not_connected(subnet_id, &router.id).into());
        }
        let subnet: Subnet = fetch_visible_subnet(tx, caller, subnet_id).await?;
        local_cidrs.push(subnet.cidr.net());
    }
    let mixed = |group: &EndpointGroup| {
        Fault::bad_request(
            FaultKind::MixedIPVersionsForIPSecEndpoints,
            format!(
                "Endpoints in group {} do not have the same IP version, as required for IPSec site-to-site connection",
                group.id
            ),
        )
    };
    let local_version = single_version(local_cidrs).ok_or_else(|| mixed(&local))?;
    let peer_version = single_version(peer.endpoints.iter().filter_map(Endpoint::cidr))
        .ok_or_else(|| mixed(&peer))?;
    if local_version != peer_version {
        return Err(mixed_connection().into());
    }
    Ok(local_version)
}

fn mixed_connection() -> Fault {
    Fault::bad_request(
        FaultKind::MixedIPVersionsForIPSecConnection,
        "IP versions are not compatible between peer and local endpoints",
    )
}

/// The one IP version shared by all CIDRs, or `None` when they mix (or there are none).
fn single_version(cidrs: impl IntoIterator<Item = IpNet>) -> Option<u8> {
    let mut versions = cidrs.into_iter().map(|n| address::version_of(n.addr()));
    let first = versions.next()?;
    versions.all(|v| v == first).then_some(first)
}
