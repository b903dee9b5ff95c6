//! The API's registry of families: **one line per family** in [`all`].
//! Each family module exposes `family(&Ctx) -> Family`: its routes (an
//! `OpenApiRouter`, so the OpenAPI document is generated from the very
//! routes that are served), with its own state, an optional hook run
//! before a metrics scrape, and its optional part of the web console (a
//! [`Section`](crate::ui::Section): pages under `/ui/<segment>`, its tile on
//! the overview, its live-update topics).

pub mod deliveries;
pub mod gates;
pub mod machines;
pub mod nets;
pub mod transactions;
pub mod workflows;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use utoipa_axum::router::OpenApiRouter;

use crate::state::{AppState, Ctx};

/// Work done before `/metrics` renders (e.g. refreshing gauges).
pub type ScrapeHook = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// One family's part of the API.
pub struct Family {
    pub name: &'static str,
    pub routes: OpenApiRouter<AppState>,
    pub on_scrape: Option<ScrapeHook>,
    /// The family's console pages, if it has any.
    pub ui: Option<crate::ui::Section>,
}

/// Every family's part of the API.
pub fn all(ctx: &Ctx) -> anyhow::Result<Vec<Family>> {
    Ok(vec![
        gates::family(ctx)?,
        deliveries::family(ctx)?,
        nets::family(ctx)?,
        machines::family(ctx)?,
        workflows::family(ctx)?,
        transactions::family(ctx)?,
    ])
}
