//! Switchyard's HTTP API: a stateless axum service. Every state change is one
//! Lua call through the stores of `switchyard-shared`; nothing is kept
//! between requests, so any number of replicas can run behind a balancer.
//!
//! * [`router`] builds the app from an [`AppState`]; [`serve`] runs it on a
//!   listener until a shutdown token fires (tests bind `127.0.0.1:0`).
//! * `gates` — the deployment-gate endpoints (`/api/services…`, `/api/gates…`,
//!   `/api/tickets…`, `/api/holidays`).
//! * `health` — `/healthz`, `/readyz`, `/metrics`; `openapi` — `/openapi.json`.
//! * `error` and `body` — the error policy and the JSON extractor.

pub mod body;
mod deliveries;
pub mod error;
mod gates;
mod health;
mod machines;
mod nets;
pub mod openapi;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::PrometheusHandle;
use switchyard_shared::config::{ApiOpts, DeliveryOpts, GateOpts, NetOpts, RedisOpts};
use switchyard_shared::deliveries::{DeliveryStore, Policies};
use switchyard_shared::gates::{GateSettings, GateStore};
use switchyard_shared::machines::MachineStore;
use switchyard_shared::nets::NetStore;
use switchyard_shared::{Keys, RedisPool, telemetry};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::AppError;

/// Who made a request, for gate histories: the `X-Actor` header if given,
/// else the label of the bearer token, else `anonymous`.
#[derive(Clone, Debug)]
pub struct Actor(pub String);

#[derive(Clone)]
pub struct AppState {
    pub gates: GateStore,
    pub deliveries: DeliveryStore,
    pub policies: Arc<Policies>,
    pub allow_link_local: bool,
    pub nets: NetStore,
    pub machines: MachineStore,
    /// When each machine's thresholds were last checked from this process.
    pub(crate) last_check: Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>>,
    pub public_url: String,
    pub net_callback_policy: String,
    pub pool: RedisPool,
    tokens: Arc<Vec<String>>,
    prometheus: &'static PrometheusHandle,
}

impl AppState {
    pub fn new(
        pool: RedisPool,
        keys: &Keys,
        gate: GateSettings,
        dopts: &DeliveryOpts,
        nopts: &NetOpts,
        tokens: Vec<String>,
    ) -> anyhow::Result<Self> {
        let policies = Policies::new(&dopts.retry_policies, &dopts.default_retry_policy)
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok(Self {
            gates: GateStore::new(pool.clone(), keys, gate),
            deliveries: DeliveryStore::new(pool.clone(), keys.clone(), dopts.delivery_retention),
            policies: Arc::new(policies),
            allow_link_local: dopts.allow_link_local,
            machines: MachineStore::new(pool.clone(), keys.clone(), nopts.sm_retention),
            last_check: Arc::default(),
            nets: NetStore::new(
                pool.clone(),
                keys.clone(),
                nopts.net_fire_bound,
                nopts.net_retention,
            ),
            public_url: nopts.public_url.clone(),
            net_callback_policy: nopts.net_callback_policy.clone(),
            pool,
            tokens: Arc::new(tokens),
            prometheus: telemetry::prometheus(),
        })
    }
}

/// All bearer tokens from flags/environment and the token file.
pub fn load_tokens(opts: &ApiOpts) -> anyhow::Result<Vec<String>> {
    let mut tokens: Vec<String> = opts
        .api_tokens
        .iter()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    if let Some(path) = &opts.api_token_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading token file {}", path.display()))?;
        tokens.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned),
        );
    }
    Ok(tokens)
}

/// The whole application.
pub fn router(state: AppState, opts: &ApiOpts) -> Router {
    let api = Router::new()
        .merge(gates::routes())
        .merge(deliveries::routes())
        .merge(nets::routes())
        .merge(machines::routes())
        .merge(health::routes())
        .merge(openapi::routes())
        .fallback(|| async { AppError::not_found("route_not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            AppError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this endpoint",
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(middleware::from_fn_with_state(
            opts.request_timeout,
            deadline,
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(DefaultBodyLimit::max(opts.max_body_bytes));
    api.layer(middleware::from_fn(track)).with_state(state)
}

/// Constant-time comparison, so a token cannot be guessed byte by byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn auth(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let open = matches!(path, "/healthz" | "/readyz");
    let mut actor = None;
    if !state.tokens.is_empty() && !open {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let found = presented.and_then(|p| {
            let mut hit = None;
            for (i, t) in state.tokens.iter().enumerate() {
                if same(p.as_bytes(), t.as_bytes()) {
                    hit = Some(i);
                }
            }
            hit
        });
        match found {
            Some(i) => actor = Some(format!("token-{}", i + 1)),
            None => {
                let reason = if presented.is_some() {
                    "bearer token not accepted"
                } else {
                    "missing Authorization: Bearer <token> header"
                };
                return AppError::new(StatusCode::UNAUTHORIZED, "unauthorized", reason)
                    .into_response();
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
async fn deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long",
        )
        .into_response(),
    }
}

/// Rejections produced by axum itself (a malformed path segment, say) come
/// as plain text; every error the API answers is JSON.
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
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
    AppError::new(status, "bad_request", reason).into_response()
}

/// Request counts and latency by method, route and status.
async fn track(req: Request, next: Next) -> Response {
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

/// Serve `app` on `listener` until `shutdown` fires; in-flight requests then
/// get `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> anyhow::Result<()> {
    let token = shutdown.clone();
    let server =
        axum::serve(listener, app).with_graceful_shutdown(async move { token.cancelled().await });
    tokio::select! {
        res = server => res.context("HTTP server failed"),
        () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(?grace, "in-flight requests did not finish in time; closing");
            Ok(())
        }
    }
}

/// Run the API role: connect, bind, serve until `shutdown`.
pub async fn run(
    redis: &RedisOpts,
    gate: &GateOpts,
    dopts: &DeliveryOpts,
    nopts: &NetOpts,
    opts: &ApiOpts,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (pool, keys) = redis.connect().await?;
    let tokens = load_tokens(opts)?;
    if tokens.is_empty() {
        tracing::warn!("no API tokens configured: the API is open to anyone who can reach it");
    } else {
        tracing::info!(
            count = tokens.len(),
            "API tokens required on every non-health endpoint"
        );
    }
    if Policies::new(&dopts.retry_policies, &dopts.default_retry_policy)
        .map_err(|e| anyhow::anyhow!(e))?
        .get(&nopts.net_callback_policy)
        .is_none()
    {
        anyhow::bail!(
            "--net-callback-policy {:?} is not a defined retry policy",
            nopts.net_callback_policy
        );
    }
    let state = AppState::new(pool, &keys, GateSettings::from(gate), dopts, nopts, tokens)?;
    let listener = TcpListener::bind(&opts.listen)
        .await
        .with_context(|| format!("binding {}", opts.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "API listening");
    println!("Switchyard API listening on http://{addr}");
    serve(
        listener,
        router(state, opts),
        shutdown,
        opts.shutdown_timeout,
    )
    .await
}
