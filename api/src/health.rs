//! Liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use switchyard_shared::platform::heartbeat;

use crate::error::Code;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_text))
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process is alive")))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready: Redis is reachable and every script is loaded. `scheduler` says
/// whether a scheduler's heartbeat is seen (`ok`) or not (`missing`: timers
/// — retries, deferred work, expiries — do not move); it does not change
/// the status, since the API serves without one.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = r#"Redis reachable, scripts loaded: {"status": "ok", "scheduler": "ok" | "missing"}"#),
              (status = 503, description = "Not ready, with the reason")))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.redis.ensure_ready().await {
        Ok(()) => {
            let scheduler = match heartbeat::observe(&state.redis, &state.keys).await {
                Ok(true) => "ok",
                Ok(false) => "missing",
                Err(_) => "unknown",
            };
            Json(json!({"status": "ok", "scheduler": scheduler})).into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "error", "code": Code::NotReady.as_str(), "reason": format!("{e:#}")})),
        )
            .into_response(),
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics_text(State(state): State<AppState>) -> Response {
    // Families refresh their gauges first (e.g. state-machine figures).
    for hook in state.scrape.iter() {
        hook().await;
    }
    if state.scheduler_watch.due() {
        heartbeat::observe(&state.redis, &state.keys).await.ok();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.prometheus.render(),
    )
        .into_response()
}
