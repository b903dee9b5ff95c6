//! The scheduler's registry of families: **one line per family** in
//! [`tasks`]. Each family module exposes `tasks(&Ctx)`, its periodic tasks
//! (families with nothing periodic are not listed).

pub mod deliveries;
pub mod gates;
pub mod machines;
pub mod nets;
pub mod transactions;
pub mod workflows;

use std::sync::Arc;

use crate::Ctx;
use crate::periodic::Periodic;

/// Every family's periodic tasks.
pub fn tasks(ctx: &Ctx) -> anyhow::Result<Vec<Arc<dyn Periodic>>> {
    Ok([
        gates::tasks(ctx)?,
        deliveries::tasks(ctx)?,
        machines::tasks(ctx)?,
        nets::tasks(ctx)?,
        workflows::tasks(ctx)?,
        transactions::tasks(ctx)?,
    ]
    .concat())
}
