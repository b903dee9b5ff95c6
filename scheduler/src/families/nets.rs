//! Petri nets: the per-shard net index loses the entries of nets that have
//! expired (after `--net-retention`) or were deleted (`nets.prune`).

use std::sync::Arc;

use crate::Ctx;
use crate::periodic::{IndexPrune, Periodic};

pub fn tasks(ctx: &Ctx) -> anyhow::Result<Vec<Arc<dyn Periodic>>> {
    let keys = ctx.keys.clone();
    let indexes = (0..keys.shards()).map(|s| keys.net_index(s)).collect();
    Ok(vec![Arc::new(IndexPrune::new(
        "nets.prune",
        ctx.redis.clone(),
        indexes,
        move |_, id| keys.net(id).meta,
        ctx.config.families.nets.net_retention,
        ctx.config.scheduler.observe_interval,
        ctx.config.scheduler.sweep_batch,
    ))])
}
