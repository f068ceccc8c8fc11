//! What VPN services forbid of the routers and subnets they use: the checks Neutron's VPN
//! plugin registers as router and subnet callbacks. The built-in inventory runs them on its
//! own changes; under `inventory = "neutron"` the guarded requests that reach vpnaas
//! through the cloud's HTTP front run them before they are passed on to Neutron.

use vpnaas_model::FaultKind;
use vpnaas_model::endpoint_group::EndpointGroup;
use vpnaas_model::enums::EndpointType;
use vpnaas_model::site_connection::SiteConnection;
use vpnaas_model::vpn_service::VpnService;
use vpnaas_model::{Error as Fault, Kind};
use vpnaas_store::Transaction;

use crate::error::ApiResult;

/// `RouterInUse` when any VPN service runs on the router (its gateway must stay put).
pub async fn router_unused(tx: &mut dyn Transaction, router_id: &str) -> ApiResult<()> {
    let services = tx
        .referrers(Kind::VpnService, Kind::Router, router_id)
        .await?;
    if services.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = services.iter().map(|s| s.id.as_str()).collect();
    Err(Fault::conflict(
        FaultKind::RouterInUse,
        format!(
            "Router {router_id} is currently used by VPN service(s) ({})",
            ids.join(", ")
        ),
    )
    .into())
}

/// `SubnetInUseByVPNService` or `SubnetInUseByIPsecSiteConnection` when a VPN service on
/// the router, or a connection's local endpoint group, needs its interface on the subnet.
pub async fn interface_unused(
    tx: &mut dyn Transaction,
    router_id: &str,
    subnet_id: &str,
) -> ApiResult<()> {
    for service in tx
        .load_referrers::<VpnService>(Kind::Router, router_id)
        .await?
    {
        if service.subnet_id.as_deref() == Some(subnet_id) {
            return Err(Fault::conflict(
                FaultKind::SubnetInUseByVPNService,
                format!("Subnet {subnet_id} is used by VPNService {}", service.id),
            )
            .into());
        }
        for conn in tx
            .load_referrers::<SiteConnection>(Kind::VpnService, &service.id)
            .await?
        {
            if local_group_holds(tx, &conn, subnet_id).await? {
                return Err(Fault::conflict(
                    FaultKind::SubnetInUseByIPsecSiteConnection,
                    format!(
                        "Subnet {subnet_id} is used by ipsec site connection {}",
                        conn.id
                    ),
                )
                .into());
            }
        }
    }
    Ok(())
}

/// `SubnetInUseByEndpointGroup` when an endpoint group names the subnet.
pub async fn subnet_unused_by_groups(tx: &mut dyn Transaction, subnet_id: &str) -> ApiResult<()> {
    match tx
        .first_referrer(Kind::EndpointGroup, Kind::Subnet, subnet_id)
        .await?
    {
        Some(group) => Err(Fault::conflict(
            FaultKind::SubnetInUseByEndpointGroup,
            format!("Subnet {subnet_id} is used by endpoint group {group}"),
        )
        .into()),
        None => Ok(()),
    }
}

/// Whether the connection's local endpoint group holds the subnet.
async fn local_group_holds(
    tx: &mut dyn Transaction,
    conn: &SiteConnection,
    subnet_id: &str,
) -> ApiResult<bool> {
    let Some(group_id) = &conn.local_ep_group_id else {
        return Ok(false);
    };
    let group: Option<EndpointGroup> = tx.load(group_id).await?;
    Ok(group.is_some_and(|g| {
        g.endpoint_type == EndpointType::Subnet
            && g.endpoints.iter().any(|e| e.as_str() == subnet_id)
    }))
}
