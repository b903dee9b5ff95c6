//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
}

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The process is alive")))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready: Redis is reachable and every script is loaded.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "Redis reachable, scripts loaded"),
              (status = 503, description = "Not ready, with the reason")))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.pool.ensure_ready().await {
        Ok(()) => Json(json!({"status": "ok"})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "error", "code": "not_ready", "reason": format!("{e:#}")})),
        )
            .into_response(),
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics_text(State(state): State<AppState>) -> Response {
    // State-machine figures are read fresh at scrape time.
    if let Ok(ids) = state.machines.ids().await {
        for id in ids {
            if let Ok(def) = state.machines.definition(&id).await
                && let Ok(m) = state.machines.metrics(&def).await
            {
                state.machines.export(&def, &m);
            }
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.prometheus.render(),
    )
        .into_response()
}
