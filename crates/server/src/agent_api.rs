//! The bus over HTTP, server side: routes for admins and the `service` role under `/v2.0/vpnaas-agent/{host}/`
//! through which a remote agent registers, fetches its routers' desired state, reports
//! status and long-polls its `router_changed` hints.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use tokio::sync::{Mutex, broadcast};
use vpnaas_bus::ControlPlane;
use vpnaas_bus::protocol::{Call, StatesRequest};
use vpnaas_model::Error as Fault;
use vpnaas_model::agent::{Heartbeat, RouterChanged, StatusReport, TakeoverClaim};

use crate::App;
use crate::api::{Endpoint, Path};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::openapi::operations;
use crate::service::agents::{LocalControlPlane, heartbeat};
use crate::service::desired::router_states;
use crate::service::status::apply_reports;

/// How long a hint poll waits for news before answering with none.
const POLL: Duration = Duration::from_secs(20);

/// Per-host hint subscriptions, kept between polls so no hint falls between two polls.
#[derive(Default)]
pub struct HintQueues(Mutex<HashMap<String, Arc<Mutex<HintQueue>>>>);

/// One host's hints.
struct HintQueue {
    receiver: broadcast::Receiver<RouterChanged>,
    /// False until the host was given a hint for every router it hosts: a new queue (a
    /// restarted server, or the host's first poll) cannot know what the host missed.
    caught_up: bool,
}

impl HintQueues {
    async fn queue(&self, app: &App, host: &str) -> Arc<Mutex<HintQueue>> {
        let mut queues = self.0.lock().await;
        queues
            .entry(host.to_string())
            .or_insert_with(|| {
                Arc::new(Mutex::new(HintQueue {
                    receiver: app.notifier.subscribe(host),
                    caught_up: false,
                }))
            })
            .clone()
    }
}

/// The routes of the agent protocol, with their descriptions.
pub fn endpoints() -> Vec<Endpoint> {
    Call::ALL
        .into_iter()
        .map(|call| {
            let template = call.template();
            match call {
                Call::Heartbeat => {
                    Endpoint::new(call.method(), template, beat, operations::heartbeat())
                }
                Call::HostedRouters => Endpoint::new(
                    call.method(),
                    template,
                    routers,
                    operations::hosted_routers(),
                ),
                Call::RouterStates => {
                    Endpoint::new(call.method(), template, states, operations::router_states())
                }
                Call::Reports => {
                    Endpoint::new(call.method(), template, report, operations::reports())
                }
                Call::Hints => Endpoint::new(call.method(), template, hints, operations::hints()),
                Call::Takeover => {
                    Endpoint::new(call.method(), template, takeover, operations::takeover())
                }
            }
        })
        .collect()
}

async fn beat(
    State(app): State<App>,
    caller: Caller,
    Path(host): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    caller.require_agent("vpnaas_agent")?;
    // An agent from before liveness probes sends no body.
    let beat = match body.is_empty() {
        true => Heartbeat::of(&host),
        false => serde_json::from_slice(&body)
            .map_err(|_| Fault::http_bad_request("Malformed heartbeat"))?,
    };
    if beat.host != host {
        return Err(Fault::http_bad_request("the heartbeat's host does not match the path").into());
    }
    app.hint_queues.queue(&app, &host).await;
    heartbeat(&app, &beat).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn takeover(
    State(app): State<App>,
    caller: Caller,
    Path(host): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Vec<String>>> {
    caller.require_agent("vpnaas_agent")?;
    let claim: TakeoverClaim = serde_json::from_slice(&body)
        .map_err(|_| Fault::http_bad_request("Malformed takeover claim"))?;
    if claim.host != host {
        return Err(Fault::http_bad_request("the claim's host does not match the path").into());
    }
    Ok(Json(crate::service::takeover::claim(&app, &claim).await?))
}

async fn routers(
    State(app): State<App>,
    caller: Caller,
    Path(host): Path<String>,
) -> ApiResult<Json<Vec<String>>> {
    caller.require_agent("vpnaas_agent")?;
    let hosted = LocalControlPlane::new(app)
        .hosted_routers(&host)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(hosted))
}

async fn states(
    State(app): State<App>,
    caller: Caller,
    Path(host): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Vec<vpnaas_model::agent::RouterState>>> {
    caller.require_agent("vpnaas_agent")?;
    let request: StatesRequest = serde_json::from_slice(&body)
        .map_err(|_| Fault::http_bad_request("Malformed desired-state request"))?;
    Ok(Json(router_states(&app, &host, &request.router_ids).await?))
}

async fn report(
    State(app): State<App>,
    caller: Caller,
    Path(host): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    caller.require_agent("vpnaas_agent")?;
    app.metrics.report_received(body.len());
    let reports: Vec<StatusReport> = serde_json::from_slice(&body)
        .map_err(|_| Fault::http_bad_request("Malformed status reports"))?;
    if reports.iter().any(|r| r.host != host) {
        return Err(Fault::http_bad_request("a report's host does not match the path").into());
    }
    apply_reports(&app, &reports).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn hints(
    State(app): State<App>,
    caller: Caller,
    Path(host): Path<String>,
) -> ApiResult<Json<Vec<RouterChanged>>> {
    caller.require_agent("vpnaas_agent")?;
    let queue = app.hint_queues.queue(&app, &host).await;
    let mut queue = queue.lock().await;
    if !queue.caught_up {
        let everything = every_hosted_router(&app, &host).await?;
        queue.caught_up = true;
        return Ok(Json(everything));
    }
    let mut out = Vec::new();
    match tokio::time::timeout(POLL, queue.receiver.recv()).await {
        Ok(Ok(first)) => out.push(first),
        Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
            return Ok(Json(every_hosted_router(&app, &host).await?));
        }
        Err(_) | Ok(Err(broadcast::error::RecvError::Closed)) => return Ok(Json(out)),
    }
    while let Ok(more) = queue.receiver.try_recv() {
        out.push(more);
    }
    Ok(Json(out))
}

/// A hint for every router the host has, for when its missed hints are unknown. An agent
/// applies only differences, so a hint for an unchanged router costs it one status report
/// (which is what a restarted server needs).
async fn every_hosted_router(app: &App, host: &str) -> ApiResult<Vec<RouterChanged>> {
    let mut routers = Vec::new();
    for record in app.store.list(vpnaas_model::Kind::Router).await? {
        routers.push(record.decode::<vpnaas_model::network::Router>()?);
    }
    Ok(routers
        .into_iter()
        .filter(|r| r.role_of(host).is_some())
        .map(|r| RouterChanged {
            router_id: r.id,
            revision: r.standard.revision_number,
        })
        .collect())
}
