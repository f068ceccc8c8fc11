//! Which node speaks for a Neutron HA router. keepalived decides where the router's
//! gateway address is, and the vpnaas agent there runs the IKE daemon (whatever the
//! server says: the address is the fence). Neutron's `ha_state` follows keepalived by
//! seconds, and only when neutron-l3-agent reports it, so the server does not wait for
//! it: an agent that holds the address says so in its reports (`primary`), and the lease
//! moves to it under a new epoch (the former holder's reports are refused from then on).
//! [`mirror`](super::mirror) keeps that choice while both nodes still hold the router in
//! Neutron.

use vpnaas_model::agent::StatusReport;
use vpnaas_model::network::Router;

use crate::App;
use crate::error::ApiResult;
use crate::service::notify::{self, Touched};

/// Moves the lease of each HA router whose standby reports holding its gateway address.
pub async fn follow_primaries(app: &App, reports: &[StatusReport]) -> ApiResult<()> {
    let claims: Vec<&StatusReport> = reports.iter().filter(|r| r.primary).collect();
    if claims.is_empty() {
        return Ok(());
    }
    let mut tx = app.store.begin().await?;
    let mut touched = Vec::new();
    for claim in claims {
        let Some(mut router) = tx.load::<Router>(&claim.router_id).await? else {
            continue;
        };
        let told = take_over(&mut router, &claim.host);
        if !told.is_empty() {
            tx.save(&router).await?;
            touched.extend(told);
        }
    }
    tx.commit().await?;
    notify::notify(app, touched);
    Ok(())
}

/// Makes `host`, the router's standby, its active host (the active one becomes the
/// standby) under a new lease epoch and revision; the agents to tell. Nothing when `host`
/// is not the standby of an HA router (it holds the lease already, or not the router).
fn take_over(router: &mut Router, host: &str) -> Vec<Touched> {
    if !router.ha || router.ha_standby_host.as_deref() != Some(host) {
        return Vec::new();
    }
    tracing::info!(router = %router.id, from = ?router.agent_host, to = host, "the HA router's gateway address moved: lease follows");
    router.ha_standby_host = router.agent_host.take();
    router.agent_host = Some(host.to_string());
    router.lease_epoch += 1;
    router.standard.touch(&crate::service::timestamp());
    notify::touched(router)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn router(ha: bool) -> Router {
        serde_json::from_value(json!({
            "id": "r", "tenant_id": "p", "project_id": "p", "name": "", "description": "",
            "admin_state_up": true, "ha": ha, "status": "ACTIVE", "external_gateway_info": null,
            "agent_host": "hostA", "ha_standby_host": "hostC", "lease_epoch": 4,
        }))
        .expect("router")
    }

    #[test]
    fn the_standby_holding_the_address_takes_the_lease_under_a_new_epoch() {
        let mut router = router(true);
        let told = take_over(&mut router, "hostC");
        assert_eq!(router.agent_host.as_deref(), Some("hostC"));
        assert_eq!(router.ha_standby_host.as_deref(), Some("hostA"));
        assert_eq!(router.lease_epoch, 5);
        let hosts: Vec<&str> = told.iter().map(|t| t.host.as_str()).collect();
        assert_eq!(hosts, ["hostC", "hostA"], "both agents are told");
    }

    #[test]
    fn only_an_ha_routers_standby_can_claim() {
        for (ha, host) in [(true, "hostA"), (true, "hostB"), (false, "hostC")] {
            let mut router = router(ha);
            assert!(take_over(&mut router, host).is_empty(), "{ha} {host}");
            assert_eq!(router.agent_host.as_deref(), Some("hostA"));
            assert_eq!(router.lease_epoch, 4);
        }
    }
}
