//! The probe server of a worker or scheduler (`--metrics-listen ADDR`):
//!
//! * `GET /metrics` — Prometheus text of this process's metrics (the
//!   process-wide recorder of [`telemetry::prometheus`]);
//! * `GET /healthz` — `200 {"status": "ok", "role": …}` while every loop
//!   of the role runs ([`Liveness`]) and Redis answers `PING`; otherwise
//!   `503 {"status": "error", "role": …, "reason": …}`.
//!
//! The API serves its own `/healthz`, `/readyz` and `/metrics`.
//!
//! [`telemetry::prometheus`]: super::telemetry::prometheus

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::redis::Redis;
use super::telemetry;

/// How long `/healthz` waits for Redis to answer `PING`.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether a role's loops run: each loop holds a [`LoopGuard`] from
/// [`Liveness::enter`] while it runs. The role is alive once a loop has
/// entered and as long as none has left (a loop that ends, by shutdown or
/// by a bug, makes it not alive). Cheap to clone; clones share the state.
#[derive(Clone, Default, Debug)]
pub struct Liveness(Arc<Counts>);

#[derive(Default, Debug)]
struct Counts {
    entered: AtomicUsize,
    running: AtomicUsize,
}

impl Liveness {
    /// A loop starts; it counts as running until the guard is dropped
    /// (also when its task panics or is aborted).
    pub fn enter(&self) -> LoopGuard {
        self.0.entered.fetch_add(1, Ordering::SeqCst);
        self.0.running.fetch_add(1, Ordering::SeqCst);
        LoopGuard(self.0.clone())
    }

    /// At least one loop entered, and every loop that entered still runs.
    pub fn alive(&self) -> bool {
        let entered = self.0.entered.load(Ordering::SeqCst);
        entered > 0 && self.0.running.load(Ordering::SeqCst) == entered
    }
}

/// Held by a running loop; see [`Liveness::enter`].
#[derive(Debug)]
pub struct LoopGuard(Arc<Counts>);

impl Drop for LoopGuard {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Clone)]
struct Probe {
    role: &'static str,
    redis: Redis,
    liveness: Liveness,
}

/// Bind `addr` and serve the probes of `role` in the background until
/// `shutdown`. Installs the Prometheus recorder first, so everything the
/// role records from now on is rendered. Returns the bound address (port 0
/// picks one), which is also logged.
pub async fn spawn(
    addr: SocketAddr,
    role: &'static str,
    redis: Redis,
    liveness: Liveness,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    telemetry::prometheus();
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding --metrics-listen {addr}"))?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(Probe {
            role,
            redis,
            liveness,
        });
    tokio::spawn(async move {
        let server = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "metrics server failed");
        }
    });
    tracing::info!(role, metrics_listen = %bound, "serving /metrics and /healthz");
    Ok(bound)
}

async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        telemetry::prometheus().render(),
    )
        .into_response()
}

async fn healthz(State(p): State<Probe>) -> Response {
    let unhealthy = |reason: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "error", "role": p.role, "reason": reason})),
        )
            .into_response()
    };
    if !p.liveness.alive() {
        return unhealthy(format!("the {} loop is not running", p.role));
    }
    let mut conn = p.redis.conn();
    let cmd = redis::cmd("PING");
    let ping = cmd.query_async::<String>(&mut conn);
    match tokio::time::timeout(PING_TIMEOUT, ping).await {
        Ok(Ok(_)) => Json(json!({"status": "ok", "role": p.role})).into_response(),
        Ok(Err(e)) => unhealthy(format!("Redis PING failed: {e}")),
        Err(_) => unhealthy(format!("Redis PING took longer than {PING_TIMEOUT:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::Liveness;

    #[test]
    fn alive_while_every_loop_that_entered_runs() {
        let l = Liveness::default();
        assert!(!l.alive(), "not before a loop starts");
        let a = l.enter();
        let b = l.clone().enter();
        assert!(l.alive());
        drop(b);
        assert!(!l.alive(), "a loop that ended is not alive");
        drop(a);
        assert!(!l.alive());
    }
}
