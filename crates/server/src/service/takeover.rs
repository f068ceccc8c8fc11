//! The fast path of HA failover: an HA router's standby probes its active agent over UDP
//! (several times a second, agent to agent) and, when the answers stop, claims the
//! router's lease. The server stays the only authority: it grants a claim only to the
//! router's recorded standby, under the epoch the server holds now, and never back to an
//! agent that lost the lease to a claim while the holder still beats (anti-flap: agents
//! cut off from each other but not from the server switch over once). A grant is the same
//! move as a switchover: the standby holds the lease under a new epoch, the old holder
//! becomes the standby (and, if it lives, stops its daemon before it lets go of the
//! addresses). The heartbeat path (`scheduler`) stays the fallback.

use vpnaas_model::agent::{Agent, ConnectionEvent, LeaseClaim, TakeoverClaim};
use vpnaas_model::network::Router;
use vpnaas_store::Transaction;

use super::liveness::Liveness;
use super::notify::{Touched, notify, touched};
use super::status::mark_agent_down;
use crate::App;
use crate::error::ApiResult;

/// Why a claim on one router is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The router is gone or not HA.
    NotHa,
    /// The claimant is not the router's standby.
    NotStandby,
    /// The lease moved since the claimant's desired state was read.
    StaleEpoch,
    /// The claimant lost this lease to a claim and the holder still beats.
    ClaimedBack,
    /// The server does not count the claimant as live.
    ClaimantDead,
}

/// Whether `claim` on `router` by `host` is granted; `alive` says whether an agent beats.
pub fn judge(
    router: &Router,
    host: &str,
    claim: &LeaseClaim,
    alive: impl Fn(&str) -> bool,
) -> Result<(), Refusal> {
    if !router.ha {
        return Err(Refusal::NotHa);
    }
    if router.ha_standby_host.as_deref() != Some(host) {
        return Err(Refusal::NotStandby);
    }
    if router.lease_epoch != claim.lease_epoch {
        return Err(Refusal::StaleEpoch);
    }
    if !alive(host) {
        return Err(Refusal::ClaimantDead);
    }
    let holder_beats = router.agent_host.as_deref().is_some_and(&alive);
    if router.lease_claimed_from.as_deref() == Some(host) && holder_beats {
        return Err(Refusal::ClaimedBack);
    }
    Ok(())
}

/// Grants the lease to the standby `host`: it becomes the holder under a new epoch, the
/// old holder its standby, barred from claiming it back.
pub fn grant(router: &mut Router, host: &str) {
    router.lease_claimed_from = router.agent_host.replace(host.to_string());
    router.ha_standby_host = router.lease_claimed_from.clone();
    router.lease_epoch += 1;
    router.standard.touch(&super::timestamp());
}

/// What granting a claim did.
#[derive(Default)]
struct Granted {
    routers: Vec<String>,
    told: Vec<Touched>,
    transitions: Vec<ConnectionEvent>,
}

/// Judges a standby's claim, router by router, in one transaction; the ids granted.
pub async fn claim(app: &App, claim: &TakeoverClaim) -> ApiResult<Vec<String>> {
    if !super::scheduler::places_routers(app) {
        // Under Neutron, keepalived decides which node is primary (`neutron::ha`).
        return Ok(vec![]);
    }
    let liveness = Liveness::of(app);
    let mut tx = app.store.begin().await?;
    let agents: Vec<Agent> = tx.load_all().await?;
    let alive = |host: &str| {
        agents
            .iter()
            .any(|a| a.host == host && a.admin_state_up && liveness.alive(a))
    };
    let mut granted = Granted::default();
    for wanted in &claim.routers {
        let Some(mut router) = tx.load::<Router>(&wanted.router_id).await? else {
            continue;
        };
        match judge(&router, &claim.host, wanted, alive) {
            Ok(()) => take(tx.as_mut(), &mut router, claim, &liveness, &mut granted).await?,
            Err(refusal) => {
                tracing::warn!(router = %wanted.router_id, claimant = %claim.host, silent = %claim.silent_host, epoch = wanted.lease_epoch, ?refusal, "takeover claim refused");
            }
        }
    }
    tx.commit().await?;
    app.metrics
        .failed_over(granted.routers.len(), &granted.transitions);
    notify(app, granted.told);
    Ok(granted.routers)
}

async fn take(
    tx: &mut dyn Transaction,
    router: &mut Router,
    claim: &TakeoverClaim,
    liveness: &Liveness,
    granted: &mut Granted,
) -> ApiResult<()> {
    grant(router, &claim.host);
    tx.save(&*router).await?;
    tracing::warn!(router = %router.id, from = %claim.silent_host, to = %claim.host, epoch = router.lease_epoch, "active agent silent to its standby: router taken over");
    let detail = "the router's standby stopped hearing its active agent and takes over";
    granted
        .transitions
        .extend(mark_agent_down(tx, &router.id, detail, liveness.now_ms).await?);
    granted.told.extend(touched(router));
    granted.routers.push(router.id.clone());
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn router(ha: bool, claimed_from: Option<&str>) -> Router {
        serde_json::from_value(json!({
            "id": "r", "tenant_id": "p", "project_id": "p", "name": "", "description": "",
            "admin_state_up": true, "ha": ha, "status": "ACTIVE", "external_gateway_info": null,
            "agent_host": "a", "ha_standby_host": "b", "lease_epoch": 4,
            "lease_claimed_from": claimed_from,
        }))
        .expect("router")
    }

    fn at(epoch: u64) -> LeaseClaim {
        LeaseClaim {
            router_id: "r".into(),
            lease_epoch: epoch,
        }
    }

    #[test]
    fn only_the_standby_under_the_current_epoch_is_granted() {
        let everyone = |_: &str| true;
        let r = router(true, None);
        assert_eq!(judge(&r, "b", &at(4), everyone), Ok(()));
        assert_eq!(judge(&r, "c", &at(4), everyone), Err(Refusal::NotStandby));
        assert_eq!(judge(&r, "a", &at(4), everyone), Err(Refusal::NotStandby));
        assert_eq!(judge(&r, "b", &at(3), everyone), Err(Refusal::StaleEpoch));
        assert_eq!(
            judge(&router(false, None), "b", &at(4), everyone),
            Err(Refusal::NotHa)
        );
        assert_eq!(
            judge(&r, "b", &at(4), |h| h != "b"),
            Err(Refusal::ClaimantDead)
        );
    }

    #[test]
    fn a_grant_swaps_the_agents_and_bars_a_claim_back_while_the_holder_beats() {
        let mut r = router(true, None);
        grant(&mut r, "b");
        assert_eq!(
            (
                r.agent_host.as_deref(),
                r.ha_standby_host.as_deref(),
                r.lease_epoch,
                r.lease_claimed_from.as_deref()
            ),
            (Some("b"), Some("a"), 5, Some("a"))
        );
        assert_eq!(
            judge(&r, "a", &at(5), |_| true),
            Err(Refusal::ClaimedBack),
            "cut off from each other, both beating: held"
        );
        assert_eq!(
            judge(&r, "a", &at(5), |h| h != "b"),
            Ok(()),
            "the holder stopped beating too"
        );
    }
}
