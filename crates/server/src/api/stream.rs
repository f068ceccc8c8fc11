//! `GET /v2.0/vpn/events/stream` (a vpnaas extension): the server's change stream as
//! server-sent events. Each change is told only to callers who may see the object: it is
//! read again through `show`, so visibility and redaction are the API's own (another
//! project's objects never appear, a reader gets `psk` as `***`).

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt, stream};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::App;
use crate::auth::Caller;
use crate::changes::Change;
use crate::error::ApiResult;
use crate::service;

/// The policy target of the stream (`get_vpn_events`): anyone who may read.
const ACTION: &str = "get_vpn_events";

pub(super) async fn change_stream(
    State(app): State<App>,
    caller: Caller,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    caller.require_read(ACTION)?;
    Ok(Sse::new(events_for(app, caller)).keep_alive(KeepAlive::default()))
}

/// The changes `caller` may see, from now on, as SSE events: first `ready` (the
/// subscription is in place), then a `change` per committed change, and `resync` when
/// the caller fell so far behind that some were lost (read everything again). Ends when
/// the server stops.
pub(crate) fn events_for(
    app: App,
    caller: Caller,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let closed = app.changes.closed();
    let receiver = app.changes.subscribe();
    let ready = stream::once(async { Ok(Event::default().event("ready").data("{}")) });
    let changes = stream::unfold(
        (receiver, app, caller),
        |(mut receiver, app, caller)| async move {
            loop {
                let event = match receiver.recv().await {
                    Ok(change) => told(&app, &caller, &change).await,
                    Err(RecvError::Lagged(_)) => Some(Event::default().event("resync").data("{}")),
                    Err(RecvError::Closed) => return None,
                };
                if let Some(event) = event {
                    return Some((Ok(event), (receiver, app, caller)));
                }
            }
        },
    );
    ready.chain(changes).take_until(closed)
}

/// The event telling `caller` of `change`, if the caller may see its object.
async fn told(app: &App, caller: &Caller, change: &Change) -> Option<Event> {
    let kind = change.kind.singular();
    let data = if change.deleted {
        if !caller.owns(&change.project_id) {
            return None;
        }
        json!({"kind": kind, "id": change.id, "action": "deleted"})
    } else {
        let shown = service::show(app, caller, change.kind, &change.id)
            .await
            .ok()?;
        json!({"kind": kind, "id": change.id, "action": "changed", kind: shown})
    };
    Some(Event::default().event("change").data(data.to_string()))
}
