//! `ApiError`: every failure a handler can return, rendered as Neutron's
//! `{"NeutronError": {"type", "message", "detail"}}` with the matching status.
//! Internal causes are logged, never sent to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use vpnaas_model::FaultKind;
use vpnaas_model::{Error as Fault, FaultClass};

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A refusal from the Neutron catalogue.
    #[error(transparent)]
    Fault(#[from] Fault),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] vpnaas_store::Error),
    /// 401 from `auth = "keystone"`: the fault, and where to get a token
    /// (`WWW-Authenticate`).
    #[error("{0}")]
    Challenge(Fault, String),
    /// An error Neutron answered to a request vpnaas made on the caller's behalf
    /// (`inventory = "neutron"`), passed on as it came: status and `NeutronError` body.
    #[error("Neutron answered {0}")]
    Passed(StatusCode, axum::body::Bytes),
    /// A bug: a state the code believed impossible.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

fn status_of(class: FaultClass) -> StatusCode {
    match class {
        FaultClass::BadRequest => StatusCode::BAD_REQUEST,
        FaultClass::Unauthorized => StatusCode::UNAUTHORIZED,
        FaultClass::Forbidden => StatusCode::FORBIDDEN,
        FaultClass::NotFound => StatusCode::NOT_FOUND,
        FaultClass::Conflict => StatusCode::CONFLICT,
        FaultClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Renders a Neutron error body.
pub fn neutron_error(status: StatusCode, kind: FaultKind, message: &str) -> Response {
    let body = json!({"NeutronError": {"type": kind.name(), "message": message, "detail": ""}});
    (status, Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Fault(fault) => {
                neutron_error(status_of(fault.class), fault.kind, &fault.message)
            }
            ApiError::Challenge(fault, challenge) => {
                let mut response =
                    neutron_error(status_of(fault.class), fault.kind, &fault.message);
                if let Ok(value) = axum::http::HeaderValue::from_str(&challenge) {
                    response
                        .headers_mut()
                        .insert(axum::http::header::WWW_AUTHENTICATE, value);
                }
                response
            }
            ApiError::Passed(status, body) => (
                status,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response(),
            other => {
                tracing::error!(error = %other, "request failed");
                neutron_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    FaultKind::HTTPInternalServerError,
                    "Request Failed: internal server error while processing your request.",
                )
            }
        }
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> Self {
        ApiError::Internal(format!("document does not match its type: {e}"))
    }
}
