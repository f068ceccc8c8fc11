//! `POST /v2.0/vpn/ipsec-site-connections/{id}/reauthenticate` (vpnaas extension): asks
//! the connection's agent to authenticate its IKE SA again now, with the credentials it
//! holds, rather than at the next reauthentication the daemon would choose. The request
//! is a generation in the desired state (level-triggered, like every change): the agent
//! re-authenticates when it sees it grow, and reports it done.
//!
//! Who may change the connection may ask it; another project's connection is 404. A
//! connection that is administratively down (or on a service that is) has no IKE SA to
//! authenticate: 409 `ReauthenticationUnavailable`.

use serde_json::Value;
use vpnaas_model::site_connection::SiteConnection;
use vpnaas_model::vpn_service::VpnService;
use vpnaas_model::{Error as Fault, FaultKind, Kind};

use super::{Stored, notify};
use crate::App;
use crate::auth::Caller;
use crate::error::ApiResult;

/// Bumps the connection's re-authentication generation and tells its agent; returns the
/// connection as the caller may see it.
pub async fn reauthenticate(app: &App, caller: &Caller, id: &str) -> ApiResult<Value> {
    caller.require_write("update_ipsec_site_connection")?;
    let mut tx = app.store.begin().await?;
    let mut conn: SiteConnection = super::fetch(tx.as_mut(), caller, id).await?;
    let service: Option<VpnService> = tx.load(&conn.vpnservice_id).await?;
    if !conn.admin_state_up || !service.is_some_and(|s| s.admin_state_up) {
        return Err(Fault::conflict(
            FaultKind::ReauthenticationUnavailable,
            format!(
                "IPsec site connection {id} is administratively down (or its VPN service is): \
                 it has no IKE SA to re-authenticate"
            ),
        )
        .into());
    }
    conn.key_rotation.reauth += 1;
    let stored = Stored::from(conn);
    stored.save(tx.as_mut()).await?;
    let touched = super::touched_by(tx.as_mut(), &stored).await?;
    tx.commit().await?;
    notify::notify(app, touched);
    super::show(app, caller, Kind::SiteConnection, id).await
}
