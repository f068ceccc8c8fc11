//! The HTTP edge: what happens to a connection and a request before the routes see it.
//! Slow and idle clients cannot hold the server: a request head must arrive within
//! `http_header_timeout` (which also closes keep-alive connections left idle that
//! long), a body within `http_body_timeout`; at most `http_max_connections` are served
//! at once, and the ones over the cap get a `503` and are closed. Requests too large get
//! Neutron's error JSON (`413`, `414`, `431`) like every other refusal. And a browser
//! page cannot use the server (noauth makes a header-less request admin): a body must be
//! declared JSON (a cross-site form or `text/plain` POST is refused `415`, and a JSON one
//! needs a CORS preflight this server never grants), and the `Host` must be one the
//! server is known by (DNS rebinding points a foreign name at it).

use std::sync::Arc;
use std::time::Duration;
use vpnaas_model::FaultKind;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use hyper::body::Incoming;
use tower::Layer;
use tower::util::MapRequestLayer;

use crate::error::neutron_error;

/// The longest request line (method, path and query) answered; longer is a `414`.
pub const MAX_URI_BYTES: usize = 16 * 1024;
/// The most header bytes (names and values) a request may carry; more is a `431`.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// The most headers a request may carry; more is a `431`.
pub const MAX_HEADERS: usize = 100;
/// The largest body read; larger is a `413` (the largest Neutron request is far smaller).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What hyper itself will buffer of a request head. Above our own limits, so that a
/// head between them and this gets our JSON answer; a head larger still gets hyper's
/// bare `431` (it never reaches us) — a bound on the memory one connection can take.
const HEAD_BUFFER_BYTES: usize = 256 * 1024;
/// hyper's own bound on the number of headers, above [`MAX_HEADERS`] for the same reason.
const HYPER_MAX_HEADERS: usize = 4 * MAX_HEADERS;

/// How long a connection over the cap may take to send the request it is refused.
const REFUSAL_PATIENCE: Duration = Duration::from_secs(1);
/// Connections being refused at once; beyond that, new ones are closed unanswered.
const REFUSALS_AT_ONCE: usize = 64;

/// The edge's limits and rules, from the settings.
#[derive(Debug, Clone)]
pub struct EdgePolicy {
    /// For a request head to arrive, and for an idle keep-alive connection to be kept.
    pub header_timeout: Duration,
    /// For a request body to arrive.
    pub body_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// The host names (or addresses) requests may be addressed to; any when `None`.
    pub allowed_hosts: Option<Arc<[String]>>,
}

/// Serves `api` on `listener` until `stop` resolves, then lets the requests under way
/// finish.
pub async fn serve<S>(
    listener: TcpListener,
    api: S,
    limits: EdgePolicy,
    stop: impl std::future::Future<Output = ()>,
) where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let served = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    let graceful = GracefulShutdown::new();
    let header_timeout = limits.header_timeout;
    let guarded = MapRequestLayer::new(|request: Request<Incoming>| request.map(Body::new))
        .layer(axum::middleware::from_fn_with_state(limits, guard_request).layer(api));
    tokio::pin!(stop);
    loop {
        let (tcp, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, most likely: let some connections end.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Without TCP_NODELAY, Nagle holds the tail of a large answer until the client's
        // delayed ACK on keep-alive connections: milliseconds on every big list.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        if let Ok(permit) = served.clone().try_acquire_owned() {
            let connection = http1(header_timeout)
                .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(guarded.clone()));
            tokio::spawn(serve_connection(graceful.watch(connection), permit));
        } else if let Ok(permit) = refusing.clone().try_acquire_owned() {
            tokio::spawn(refuse_overloaded(tcp, permit));
        } else {
            drop(tcp);
        }
    }
    graceful.shutdown().await;
}

fn http1(header_timeout: Duration) -> hyper::server::conn::http1::Builder {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(HEAD_BUFFER_BYTES)
        .max_headers(HYPER_MAX_HEADERS);
    http
}

/// Serves one connection; its place is given back when it ends.
async fn serve_connection(
    connection: impl std::future::Future<Output = hyper::Result<()>>,
    _permit: OwnedSemaphorePermit,
) {
    if let Err(error) = connection.await {
        tracing::debug!(%error, "connection ended");
    }
}

/// Answers the request of a connection over the cap with a `503` and closes it.
async fn refuse_overloaded(tcp: TcpStream, _permit: OwnedSemaphorePermit) {
    let refuse = tower::service_fn(|_: Request<Incoming>| async {
        let mut answer = neutron_error(
            StatusCode::SERVICE_UNAVAILABLE,
            FaultKind::HTTPServiceUnavailable,
            "The server is serving as many connections as it may; retry shortly.",
        );
        answer.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
        answer
            .headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        Ok::<_, std::convert::Infallible>(answer)
    });
    let mut http = http1(REFUSAL_PATIENCE);
    http.keep_alive(false);
    let connection = http.serve_connection(TokioIo::new(tcp), TowerToHyperService::new(refuse));
    let _ = tokio::time::timeout(REFUSAL_PATIENCE * 2, connection).await;
}

/// Refuses requests too large, and reads the body within its time: a client sending a
/// byte a second holds nothing for long.
async fn guard_request(State(limits): State<EdgePolicy>, request: Request, next: Next) -> Response {
    if let Some(refusal) = oversized_head(&request)
        .or_else(|| foreign_host(&request, limits.allowed_hosts.as_deref()))
        .or_else(|| not_json(&request))
    {
        return refusal;
    }
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, MAX_BODY_BYTES);
    let bytes = match tokio::time::timeout(limits.body_timeout, read).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            return neutron_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                FaultKind::HTTPRequestEntityTooLarge,
                &format!("Request body larger than {MAX_BODY_BYTES} bytes"),
            );
        }
        Err(_) => {
            let mut answer = neutron_error(
                StatusCode::REQUEST_TIMEOUT,
                FaultKind::HTTPRequestTimeout,
                &format!(
                    "The request body did not arrive within {} s",
                    limits.body_timeout.as_secs_f64()
                ),
            );
            // The rest of the body may still be on its way: do not read it as a request.
            answer.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            return answer;
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn oversized_head(request: &Request) -> Option<Response> {
    let uri = request.uri().to_string().len();
    if uri > MAX_URI_BYTES {
        return Some(neutron_error(
            StatusCode::URI_TOO_LONG,
            FaultKind::HTTPRequestURITooLong,
            &format!("Request URI of {uri} bytes; at most {MAX_URI_BYTES} are accepted"),
        ));
    }
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Some(neutron_error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            FaultKind::HTTPRequestHeaderFieldsTooLarge,
            &format!(
                "{} headers of {bytes} bytes; at most {MAX_HEADERS} headers of {MAX_HEADER_BYTES} bytes are accepted",
                headers.len()
            ),
        ));
    }
    None
}

/// A request addressed to a name the server is not known by: a page of another site
/// that rebound its name to this address.
fn foreign_host(request: &Request, allowed: Option<&[String]>) -> Option<Response> {
    let allowed = allowed?;
    let host = request.headers().get(axum::http::header::HOST)?;
    let name = host_name(host.to_str().unwrap_or_default());
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(name)) {
        return None;
    }
    Some(neutron_error(
        StatusCode::BAD_REQUEST,
        FaultKind::HTTPBadRequest,
        &format!(
            "Host '{}' is not one this server answers to (allowed_hosts)",
            name.escape_default()
        ),
    ))
}

/// The name in a `Host` header, without its port (`[::1]:9696` → `::1`).
fn host_name(host: &str) -> &str {
    if let Some(bracketed) = host.strip_prefix('[') {
        return bracketed.split(']').next().unwrap_or_default();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

/// A body that is not declared JSON. What a cross-site form or `fetch` may send without
/// asking the server first (`text/plain`, form encodings) is never accepted.
fn not_json(request: &Request) -> Option<Response> {
    let has_body = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() != "0")
        || request
            .headers()
            .contains_key(axum::http::header::TRANSFER_ENCODING);
    if !has_body {
        return None;
    }
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = declared.split(';').next().unwrap_or_default().trim();
    if media.eq_ignore_ascii_case("application/json") {
        return None;
    }
    Some(neutron_error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        FaultKind::HTTPUnsupportedMediaType,
        &format!(
            "The request body must be application/json, not '{}'",
            media.escape_default()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn host_names_lose_their_ports() {
        assert_eq!(host_name("localhost:9696"), "localhost");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        assert_eq!(host_name("[::1]:9696"), "::1");
        assert_eq!(host_name("[::1]"), "::1");
        assert_eq!(host_name("vpn.example.com:443"), "vpn.example.com");
    }
}
