//! Noticing what changes in Neutron behind vpnaas's back (a router deleted or changed on
//! Neutron's own endpoint, where no guard runs): every `poll_interval`, the routers VPN
//! services use are read again and the copy brought up to date, in one list request per
//! 50 routers. A router Neutron no longer has takes its services to `ERROR` and its
//! agents drop it; copies no VPN service uses any more are dropped one poll after they
//! were last seen unused (a service being created may have just brought its router in).

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Neutron, mirror};
use crate::App;
use crate::error::ApiResult;
use crate::service::notify;

/// Follows Neutron until the server stops.
pub async fn follow(app: App, neutron: Arc<Neutron>) {
    let mut unused_before = BTreeSet::new();
    loop {
        tokio::time::sleep(neutron.poll_interval()).await;
        match check(&app, &neutron, &unused_before).await {
            Ok(unused) => unused_before = unused,
            Err(error) => tracing::warn!(%error, "cannot compare vpnaas's routers with Neutron's"),
        }
    }
}

/// One comparison: refreshes the routers in use and the subnets endpoint groups name;
/// drops the copies unused now and at the last check. Returns the copies unused now.
pub async fn check(
    app: &App,
    neutron: &Neutron,
    unused_before: &BTreeSet<String>,
) -> ApiResult<BTreeSet<String>> {
    let (used, unused) = mirror::routers_in_use(app).await?;
    let subnets = mirror::group_subnets(app).await?;
    let found = mirror::fetch(neutron, &used, &subnets).await?;
    let mut touched = mirror::store(app, found).await?;
    let stale: Vec<String> = unused
        .iter()
        .filter(|id| unused_before.contains(*id))
        .cloned()
        .collect();
    touched.extend(mirror::drop_unused(app, &stale).await?);
    notify::notify(app, touched);
    Ok(unused
        .into_iter()
        .filter(|id| !stale.contains(id))
        .collect())
}
