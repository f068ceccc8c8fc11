//! Prometheus metrics of the server, served at `/metrics` in the OpenMetrics text format:
//! API latency by route, status transitions by reason, status reports, and, counted from
//! the store at scrape time, connections by status and agents by liveness. Labels never
//! carry tenant data (no ids, no names), so the endpoint needs no authentication.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use vpnaas_model::Kind;
use vpnaas_model::agent::{Agent, ConnectionEvent};
use vpnaas_model::enums::Status;
use vpnaas_model::site_connection::SiteConnection;

use crate::App;
use crate::error::ApiResult;

/// The OpenMetrics content type Prometheus asks for.
const CONTENT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Buckets from 100 µs to about 13 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    from: String,
    to: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AgentLabels {
    alive: bool,
}

/// The server's metrics and the registry that exposes them (and, in one process with an
/// agent, the agent's too).
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Histogram, fn() -> Histogram>,
    transitions: Family<TransitionLabels, Counter>,
    reports: Counter,
    report_bytes: Counter,
    failovers: Counter,
    connections: Family<StatusLabels, Gauge>,
    agents: Family<AgentLabels, Gauge>,
}

impl Metrics {
    /// Registers the server's metrics in `registry` (which may already hold others).
    pub fn new(mut registry: Registry) -> Metrics {
        let metrics = Metrics {
            requests: Family::new_with_constructor(latency_histogram),
            transitions: Family::default(),
            reports: Counter::default(),
            report_bytes: Counter::default(),
            failovers: Counter::default(),
            connections: Family::default(),
            agents: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "vpnaas_http_request_duration_seconds",
            "API request latency by method, route and status code",
            metrics.requests.clone(),
        );
        registry.register(
            "vpnaas_connection_transitions",
            "Status transitions of IPsec site connections, by old and new status and reason",
            metrics.transitions.clone(),
        );
        registry.register(
            "vpnaas_status_reports",
            "Status reports applied from agents",
            metrics.reports.clone(),
        );
        registry.register(
            "vpnaas_status_report_bytes",
            "Bytes of status reports received from agents over HTTP",
            metrics.report_bytes.clone(),
        );
        registry.register(
            "vpnaas_router_failovers",
            "Routers handed to another agent because theirs stopped beating",
            metrics.failovers.clone(),
        );
        registry.register(
            "vpnaas_connections",
            "IPsec site connections by status",
            metrics.connections.clone(),
        );
        registry.register(
            "vpnaas_agents",
            "Agents by liveness (heartbeat within agent_down_time)",
            metrics.agents.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// Records one API request.
    pub fn request(&self, method: &str, route: &str, code: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_string(),
                code,
            })
            .observe(seconds);
    }

    /// Counts the size of a status report as it arrived.
    pub fn report_received(&self, bytes: usize) {
        self.report_bytes.inc_by(bytes as u64);
    }

    /// Records an applied status report and the transitions it caused.
    pub fn report_applied(&self, transitions: &[ConnectionEvent]) {
        self.reports.inc();
        self.transitions(transitions);
    }

    /// Records routers taken over from dead agents and the transitions that caused.
    pub fn failed_over(&self, routers: usize, transitions: &[ConnectionEvent]) {
        self.failovers.inc_by(routers as u64);
        self.transitions(transitions);
    }

    fn transitions(&self, transitions: &[ConnectionEvent]) {
        for event in transitions {
            self.transitions
                .get_or_create(&TransitionLabels {
                    from: event.from.as_str().to_string(),
                    to: event.to.as_str().to_string(),
                    reason: event.reason.as_str().to_string(),
                })
                .inc();
        }
    }

    /// Counts connections and agents in the store, then renders every metric.
    async fn render(&self, app: &App) -> ApiResult<String> {
        let connections = app.store.list(Kind::SiteConnection).await?;
        let mut by_status: Vec<(Status, i64)> = Status::ALL
            .iter()
            .filter_map(|s| Status::parse(s))
            .map(|s| (s, 0))
            .collect();
        for record in &connections {
            let status = record.decode::<SiteConnection>()?.status;
            if let Some(entry) = by_status.iter_mut().find(|(s, _)| *s == status) {
                entry.1 += 1;
            }
        }
        for (status, count) in by_status {
            self.connections
                .get_or_create(&StatusLabels {
                    status: status.as_str().to_string(),
                })
                .set(count);
        }
        let liveness = crate::service::liveness::Liveness::of(app);
        let agents = app.store.list(Kind::Agent).await?;
        let mut alive = 0;
        for record in &agents {
            let agent = record.decode::<Agent>()?;
            alive += i64::from(liveness.alive(&agent));
        }
        self.agents
            .get_or_create(&AgentLabels { alive: true })
            .set(alive);
        self.agents
            .get_or_create(&AgentLabels { alive: false })
            .set(agents.len() as i64 - alive);
        Ok(encode(&self.registry))
    }
}

/// Renders a registry in the OpenMetrics text format.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, registry);
    text
}

/// The `/metrics` answer for a rendered registry.
pub fn exposition(text: String) -> Response {
    ([(CONTENT_TYPE, CONTENT)], text).into_response()
}

/// `GET /metrics` of the API server (anonymous only under noauth).
pub async fn scrape(State(app): State<App>, headers: axum::http::HeaderMap) -> ApiResult<Response> {
    crate::auth::may_scrape(&app, &headers).await?;
    scrape_anonymously(State(app)).await
}

/// `GET /metrics` on `metrics_listen`, an address of its own that the operator keeps
/// private.
async fn scrape_anonymously(State(app): State<App>) -> ApiResult<Response> {
    let text = app.metrics.render(&app).await?;
    Ok(exposition(text))
}

/// The server's metrics alone, for `metrics_listen`.
pub fn private_routes(app: App) -> Router {
    Router::new()
        .route("/metrics", get(scrape_anonymously))
        .with_state(app)
}

/// Serves only `/metrics` of `registry` on `listen` in the background (for a process
/// without the API, such as a remote agent); returns the bound address.
pub async fn serve(listen: SocketAddr, registry: Registry) -> std::io::Result<SocketAddr> {
    let registry = Arc::new(registry);
    let routes = Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move { exposition(encode(&registry)) }
        }),
    );
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let policy = crate::edge::EdgePolicy {
        allowed_hosts: None,
        ..crate::Settings::default().edge_policy()
    };
    tokio::spawn(crate::edge::serve(
        listener,
        routes,
        policy,
        std::future::pending(),
    ));
    tracing::info!(%addr, "metrics listening");
    Ok(addr)
}
