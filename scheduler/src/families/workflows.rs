//! Workflows: the per-shard workflow indexes (every workflow, and one per
//! status) lose the entries of workflows that have expired after
//! `--workflow-retention` (`workflows.prune`). Timers need no task of their
//! own: they are platform timers (`workflows.timer|…`).

use std::sync::Arc;

use crate::Ctx;
use crate::periodic::{IndexPrune, Periodic};

pub fn tasks(ctx: &Ctx) -> anyhow::Result<Vec<Arc<dyn Periodic>>> {
    let keys = ctx.keys.clone();
    let mut indexes = Vec::new();
    for shard in 0..keys.shards() {
        indexes.push(keys.workflow_index(shard));
        indexes.extend(keys.workflow_status_indexes(shard));
    }
    Ok(vec![Arc::new(IndexPrune::new(
        "workflows.prune",
        ctx.redis.clone(),
        indexes,
        move |_, id| keys.workflow(id).record,
        ctx.config.families.workflows.workflow_retention,
        ctx.config.scheduler.observe_interval,
        ctx.config.scheduler.sweep_batch,
    ))])
}
