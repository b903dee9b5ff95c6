//! The worker's registry of families: **one line per family** in
//! [`register_all`]. Each family module exposes `register(Worker, &Ctx)`,
//! adding the handlers of its work kinds.

pub mod deliveries;
pub mod nets;
pub mod transactions;
pub mod workflows;

use std::sync::Arc;

use switchyard_shared::config::WorkerConfig;
use switchyard_shared::platform::outbox::{Outbox, Owners};
use switchyard_shared::{Keys, Redis};

use crate::Worker;

/// Everything a family's `register` may use.
pub struct Ctx {
    pub redis: Redis,
    pub keys: Keys,
    pub config: WorkerConfig,
    /// Every family's owner hooks (`switchyard_shared::families::owners`).
    pub owners: Owners,
    /// Where work creates deliveries outside a script.
    pub outbox: Arc<dyn Outbox>,
}

impl Ctx {
    pub fn new(redis: Redis, keys: Keys, config: WorkerConfig) -> Self {
        let owners = switchyard_shared::families::owners(&redis, &keys, &config.families);
        let outbox = switchyard_shared::families::outbox(&redis, &keys, &config.families);
        Self {
            redis,
            keys,
            config,
            owners,
            outbox,
        }
    }
}

/// Register every family's handlers.
pub fn register_all(w: Worker, ctx: &Ctx) -> anyhow::Result<Worker> {
    let w = deliveries::register(w, ctx)?;
    let w = nets::register(w, ctx)?;
    let w = workflows::register(w, ctx)?;
    let w = transactions::register(w, ctx)?;
    Ok(w)
}
