//! Middleware of every route: bearer auth (and the actor; the console's
//! guard for its paths), the request deadline, JSON bodies for framework
//! rejections, request metrics.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{AppError, Code};
use crate::state::AppState;
use crate::tokens::TokenKind;

/// Who made a request, for gate histories: the `X-Actor` header if given,
/// else the label of the bearer token, else `anonymous`.
#[derive(Clone, Debug)]
pub struct Actor(pub String);

/// The token of an `Authorization: Bearer <token>` value; the scheme is
/// case-insensitive (RFC 7235 §2.1), spaces around the token are ignored.
pub(crate) fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Bearer auth of the JSON API (the console's paths go to its own guard,
/// [`crate::ui::auth::guard`]): with tokens configured, every non-health
/// request needs one; a read-only token may only GET/HEAD (else 403
/// `read_only`). Puts the [`Actor`] in the request.
pub async fn auth(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if crate::ui::is_console(path) {
        return crate::ui::auth::guard(state, req, next).await;
    }
    let open = matches!(path, "/healthz" | "/readyz");
    let mut actor = None;
    if !state.tokens.is_empty() && !open {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer);
        match presented.and_then(|p| state.tokens.find(p)) {
            Some(t) => {
                let reads = matches!(*req.method(), Method::GET | Method::HEAD);
                if t.kind == TokenKind::Read && !reads {
                    return AppError::new(Code::ReadOnly, "this token is read-only")
                        .into_response();
                }
                actor = Some(t.label.clone());
            }
            None => {
                let reason = if presented.is_some() {
                    "bearer token not accepted"
                } else {
                    "missing Authorization: Bearer <token> header"
                };
                let mut resp = AppError::new(Code::Unauthorized, reason).into_response();
                // RFC 6750 §3: a 401 names the scheme it wants.
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
                return resp;
            }
        }
    }
    let header_actor = req
        .headers()
        .get("x-actor")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(100).collect::<String>())
        .filter(|s| !s.is_empty());
    let actor = header_actor.or(actor).unwrap_or_else(|| "anonymous".into());
    req.extensions_mut().insert(Actor(actor));
    next.run(req).await
}

/// Requests slower than `--request-timeout` are answered 503 (JSON).
pub async fn deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => AppError::new(Code::Timeout, "the request took too long").into_response(),
    }
}

/// Rejections produced by axum itself (a malformed path segment, say) come
/// as plain text; every error the API answers is JSON (the console's HTML
/// error pages are left alone).
pub async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let bytes = axum::body::to_bytes(resp.into_body(), 4096)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let reason = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    // The framework chose the status (415, 404, …); the code says it refused.
    AppError::new(Code::BadRequest, reason)
        .with_status(status)
        .into_response()
}

/// Request counts and latency by method, route and status.
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", resp.status().as_u16().to_string()),
    ];
    metrics::counter!("switchyard_http_requests_total", &labels).increment(1);
    metrics::histogram!("switchyard_http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    resp
}
