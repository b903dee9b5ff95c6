//! What the API's platform parts share ([`AppState`]: health, metrics,
//! auth, the console) and what a family is built from ([`Ctx`]).

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use switchyard_shared::config::ApiConfig;
use switchyard_shared::platform::outbox::Policies;
use switchyard_shared::{Keys, Redis};

use crate::families::ScrapeHook;

/// Everything a family's `family()` may use to build its state.
pub struct Ctx {
    pub redis: Redis,
    pub keys: Keys,
    pub config: ApiConfig,
    /// The retry policies callbacks may name (parsed once).
    pub policies: Arc<Policies>,
}

impl Ctx {
    pub fn new(redis: Redis, keys: Keys, config: ApiConfig) -> anyhow::Result<Self> {
        let policies = Arc::new(config.outbox.policies()?);
        Ok(Self {
            redis,
            keys,
            config,
            policies,
        })
    }
}

/// The state of the platform routes and middleware.
#[derive(Clone)]
pub struct AppState {
    pub redis: Redis,
    pub keys: Keys,
    /// When `/metrics` last refreshed the scheduler gauge (at most every 5 s).
    pub(crate) scheduler_watch: Arc<switchyard_shared::platform::heartbeat::SchedulerWatch>,
    pub(crate) tokens: Arc<crate::tokens::Tokens>,
    /// The web console's shared parts (cookie key, nav, live-update hub).
    pub(crate) console: Arc<crate::ui::Console>,
    pub(crate) prometheus: &'static PrometheusHandle,
    pub(crate) scrape: Arc<Vec<ScrapeHook>>,
    pub(crate) openapi: Arc<utoipa::openapi::OpenApi>,
}
