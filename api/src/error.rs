//! Error policy of the API.
//!
//! Every error a client can cause is an [`AppError`] with an HTTP status, a
//! stable snake_case `code` that clients match on, a human `reason` (the
//! gatekeeper texts where they exist) and, when it helps, `where` the problem
//! is (`body.services.api[0]`, `path.service`, `query.queue`). The body keeps
//! gatekeeper's shape: `{"status": "error", "reason": …}` plus `code`/`where`.
//! 5xx bodies are opaque; their cause is logged.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchyard_shared::families::gates::GateError;

#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub code: &'static str,
    pub reason: String,
    pub location: Option<String>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            status,
            code,
            reason: reason.into(),
            location: None,
        }
    }

    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    pub fn bad_request(code: &'static str, reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, reason)
    }

    /// gatekeeper's "Your json contains invalid information. …".
    pub fn invalid(detail: impl AsRef<str>) -> Self {
        Self::bad_request(
            "invalid_json_content",
            format!(
                "Your json contains invalid information. {}",
                detail.as_ref()
            ),
        )
    }

    pub fn not_found(code: &'static str, reason: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, reason)
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            cause.to_string(),
        )
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, cause = %self.reason, "request failed");
            let reason = match self.status {
                StatusCode::SERVICE_UNAVAILABLE => "service unavailable, try again",
                _ => "internal error",
            };
            let body = json!({"status": "error", "code": self.code, "reason": reason});
            return (self.status, Json(body)).into_response();
        }
        let mut body = json!({"status": "error", "code": self.code, "reason": self.reason});
        if let Some(w) = self.location {
            body["where"] = w.into();
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<GateError> for AppError {
    fn from(e: GateError) -> Self {
        let reason = e.to_string();
        match e {
            GateError::ServiceNotFound { service } => {
                AppError::not_found("gate_not_found", reason).at(format!("service {service}"))
            }
            GateError::EnvironmentNotFound {
                service,
                environment,
            } => AppError::not_found("environment_not_found", reason)
                .at(format!("service {service}, environment {environment}")),
            GateError::AlreadyExists { service } => {
                AppError::bad_request("gate_exists", reason).at(format!("service {service}"))
            }
            GateError::TicketNotFound => AppError::not_found("ticket_not_found", reason),
            GateError::TicketMismatch { gates } => AppError::new(
                StatusCode::CONFLICT,
                "ticket_mismatch",
                format!("{reason}: {}", gates.join(", ")),
            ),
            GateError::Contended => AppError::new(StatusCode::CONFLICT, "contended", reason),
            GateError::Redis(_) | GateError::Pool(_) => {
                AppError::new(StatusCode::SERVICE_UNAVAILABLE, "redis_unavailable", reason)
            }
            GateError::Reply(_) => AppError::internal(reason),
        }
    }
}
