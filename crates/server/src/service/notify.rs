//! Telling agents their routers changed: a router's revision is bumped in the same
//! transaction as the change, and each agent holding it (an HA router's standby too) is
//! sent a `router_changed` hint once the transaction commits; the agent then fetches the
//! router's whole desired state. A lost hint is healed by the agent's periodic resync.

use vpnaas_model::agent::RouterChanged;
use vpnaas_model::network::Router;
use vpnaas_store::Transaction;

use crate::App;
use crate::error::ApiResult;

/// A router whose agent must be told it changed (sent after the transaction commits).
#[derive(Debug, Clone)]
pub struct Touched {
    /// Hosting agent.
    pub host: String,
    /// What changed.
    pub event: RouterChanged,
}

/// Tells the hosting agents, after commit, that their routers changed.
pub fn notify(app: &App, touched: Vec<Touched>) {
    for t in touched {
        app.notifier.router_changed(&t.host, t.event);
    }
}

/// Bumps a router's revision inside the caller's transaction.
pub async fn bump(tx: &mut dyn Transaction, router_id: &str) -> ApiResult<Vec<Touched>> {
    let Some(mut router) = tx.load::<Router>(router_id).await? else {
        return Ok(vec![]);
    };
    router.standard.touch(&super::timestamp());
    tx.save(&router).await?;
    Ok(touched(&router))
}

/// The notifications for a router already saved at its new revision: one per agent
/// holding it (an HA router's standby too).
pub fn touched(router: &Router) -> Vec<Touched> {
    router
        .hosts()
        .map(|host| told(router, host.to_string()))
        .collect()
}

/// The notification of one agent (e.g. one that just lost the router) for a router saved
/// at its new revision.
pub fn told(router: &Router, host: String) -> Touched {
    Touched {
        host,
        event: RouterChanged {
            router_id: router.id.clone(),
            revision: router.standard.revision_number,
        },
    }
}
