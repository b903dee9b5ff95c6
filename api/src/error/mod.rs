//! Error policy of the API.
//!
//! Every error a client can cause is an [`AppError`] with an HTTP status, a
//! stable snake_case `code` that clients match on, a human `reason` (the
//! gatekeeper texts where they exist) and, when it helps, `where` the problem
//! is (`body.services.api[0]`, `path.service`, `query.queue`). The body keeps
//! gatekeeper's shape: `{"status": "error", "reason": …}` plus `code`/`where`.
//! 5xx bodies are opaque; their cause is logged.

mod codes;

pub use codes::Code;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub code: Code,
    pub reason: String,
    pub location: Option<String>,
    /// Fields added to the body for this error (e.g. `allowed` states).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// An error with the status of its code.
    pub fn new(code: Code, reason: impl Into<String>) -> Self {
        Self {
            status: code.status(),
            code,
            reason: reason.into(),
            location: None,
            extra: serde_json::Map::new(),
        }
    }

    /// Add a field to the error body.
    pub fn with(mut self, field: &str, value: serde_json::Value) -> Self {
        self.extra.insert(field.to_owned(), value);
        self
    }

    /// Answer with another status than the code's (only for refusals the
    /// framework made with its own status).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Where the problem is (`body.services.api[0]`, `path.service`, …).
    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    /// gatekeeper's "Your json contains invalid information. …".
    pub fn invalid(detail: impl AsRef<str>) -> Self {
        Self::new(
            Code::InvalidJsonContent,
            format!(
                "Your json contains invalid information. {}",
                detail.as_ref()
            ),
        )
    }

    pub fn not_found(code: Code, reason: impl Into<String>) -> Self {
        Self::new(code, reason)
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::new(Code::Internal, cause.to_string())
    }

    /// A store's infrastructure failure: 503 when Redis is unreachable, else a bug.
    pub fn store(e: &switchyard_shared::platform::errors::StoreError) -> Self {
        match e {
            switchyard_shared::platform::errors::StoreError::Redis(_) => {
                Self::new(Code::RedisUnavailable, e.to_string())
            }
            _ => Self::internal(e),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code.as_str(), cause = %self.reason, "request failed");
            let reason = match self.status {
                StatusCode::SERVICE_UNAVAILABLE => "service unavailable, try again",
                _ => "internal error",
            };
            let body = json!({"status": "error", "code": self.code.as_str(), "reason": reason});
            return (self.status, Json(body)).into_response();
        }
        let mut body =
            json!({"status": "error", "code": self.code.as_str(), "reason": self.reason});
        if let Some(w) = self.location {
            body["where"] = w.into();
        }
        for (k, v) in self.extra {
            body[k] = v;
        }
        (self.status, Json(body)).into_response()
    }
}
