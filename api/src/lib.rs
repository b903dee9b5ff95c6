//! Switchyard's HTTP API: a stateless axum service. Every state change is
//! one Lua call through the stores of `switchyard-shared`; nothing is kept
//! between requests, so any number of replicas can run behind a balancer.
//!
//! * [`build`] makes the whole app from an [`ApiConfig`] and a connection;
//!   [`serve`] runs it on a listener until a shutdown token fires (tests
//!   bind `127.0.0.1:0`); [`run`] is the role's entry point.
//! * [`families`] — the registry: each family's routes (and OpenAPI paths,
//!   generated from the same routers) with its own state.
//! * [`ui`] — the web console under `/ui/` (each family's pages come with
//!   its registry entry, as its [`ui::Section`]).
//! * [`state`], [`middleware`], [`tokens`], [`error`] (the policy and the
//!   code table), [`extract`] (the JSON body extractor), `health`, [`openapi`].
//! * [`request_id`] — the outermost layer: `X-Request-Id` on every response,
//!   the request's span, and its origin carried into the work it queues.

pub mod error;
pub mod extract;
pub mod families;
mod health;
pub mod middleware;
pub mod openapi;
pub mod request_id;
pub mod state;
pub mod tokens;
pub mod ui;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use switchyard_shared::config::ApiConfig;
use switchyard_shared::{Keys, Redis, telemetry};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::error::{AppError, Code};
pub use crate::middleware::Actor;
pub use crate::state::{AppState, Ctx};
pub use crate::tokens::load_tokens;

/// The whole application: platform routes, every family's routes, the
/// OpenAPI document generated from them, and the middleware.
pub fn build(redis: Redis, keys: Keys, config: ApiConfig) -> anyhow::Result<Router> {
    let tokens = load_tokens(&config.api)?;
    let api = config.api.clone();
    let ctx = Ctx::new(redis.clone(), keys, config)?;
    let mut routes: OpenApiRouter<AppState> =
        OpenApiRouter::with_openapi(openapi::ApiDoc::openapi());
    let mut scrape = Vec::new();
    let mut sections = Vec::new();
    for family in families::all(&ctx)? {
        routes = routes.merge(family.routes);
        scrape.extend(family.on_scrape);
        sections.extend(family.ui);
    }
    let console = ui::Console::new(&sections, &tokens, &api)?;
    let routes = routes.merge(health::routes()).merge(openapi::routes());
    let (router, doc) = routes.split_for_parts();
    let router = router.merge(ui::routes(sections));
    let state = AppState {
        redis,
        keys: ctx.keys.clone(),
        scheduler_watch: Arc::new(switchyard_shared::platform::heartbeat::SchedulerWatch::new(
            std::time::Duration::from_secs(5),
        )),
        tokens: Arc::new(tokens),
        console: Arc::new(console),
        prometheus: telemetry::prometheus(),
        scrape: Arc::new(scrape),
        openapi: Arc::new(doc),
    };
    let app = router
        .route_layer(axum::middleware::from_fn(extract::path_params))
        .fallback(|uri: axum::http::Uri| async move {
            if ui::is_console(uri.path()) {
                ui::UiError::not_found("no such console page").into_response()
            } else {
                AppError::new(Code::RouteNotFound, "no such endpoint").into_response()
            }
        })
        .method_not_allowed_fallback(|| async {
            AppError::new(
                Code::MethodNotAllowed,
                "method not allowed on this endpoint",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::auth,
        ))
        .layer(axum::middleware::from_fn_with_state(
            api.request_timeout,
            middleware::deadline,
        ))
        .layer(axum::middleware::from_fn(middleware::json_errors))
        .layer(DefaultBodyLimit::max(api.max_body_bytes))
        .layer(axum::middleware::from_fn(middleware::track))
        .layer(axum::middleware::from_fn(request_id::request_id_and_span))
        .with_state(state);
    Ok(app)
}

/// Serve `app` on `listener` until `shutdown` fires; in-flight requests then
/// get `grace` to finish (the console's live-update streams end at once).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> anyhow::Result<()> {
    let app = app.layer(axum::Extension(ui::live::Closing(shutdown.clone())));
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
pub async fn run(config: &ApiConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (redis, keys) = switchyard_shared::connect(&config.redis).await?;
    let tokens = load_tokens(&config.api)?;
    if tokens.is_empty() {
        tracing::warn!("no API tokens configured: the API is open to anyone who can reach it");
    } else {
        tracing::info!(
            count = tokens.len(),
            "API tokens required on every non-health endpoint"
        );
    }
    let app = build(redis, keys, config.clone())?;
    let listener = TcpListener::bind(&config.api.listen)
        .await
        .with_context(|| format!("binding {}", config.api.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "API listening");
    println!("Switchyard API listening on http://{addr}");
    serve(listener, app, shutdown, config.api.shutdown_timeout).await
}
