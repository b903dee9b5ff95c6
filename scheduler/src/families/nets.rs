//! Petri nets: the per-shard net index loses the entries of nets that have
//! expired (after `--net-retention`) or were deleted (`nets.prune`), at most
//! `--sweep-batch` entries examined per shard per step.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use switchyard_shared::families::nets::store::NetStore;

use crate::Ctx;
use crate::periodic::{BoxFuture, Periodic};

pub fn tasks(ctx: &Ctx) -> anyhow::Result<Vec<Arc<dyn Periodic>>> {
    let opts = &ctx.config.families.nets;
    let shards = ctx.keys.shards();
    Ok(vec![Arc::new(Prune {
        nets: NetStore::new(
            ctx.redis.clone(),
            ctx.keys.clone(),
            opts.net_fire_bound,
            opts.net_retention,
        ),
        shards,
        every: ctx.config.scheduler.observe_interval,
        batch: ctx.config.scheduler.sweep_batch.max(1),
        skip: Mutex::new(vec![0; usize::from(shards)]),
    })])
}

struct Prune {
    nets: NetStore,
    shards: u16,
    every: Duration,
    batch: usize,
    /// Per shard: live entries past the retention passed over so far (a
    /// rolling position, so long-running nets never hide expired ones
    /// behind them; lost on restart, which only restarts the round).
    skip: Mutex<Vec<usize>>,
}

impl Periodic for Prune {
    fn name(&self) -> &'static str {
        "nets.prune"
    }
    fn every(&self) -> Duration {
        self.every
    }
    fn run_once(&self) -> BoxFuture<'_, anyhow::Result<usize>> {
        Box::pin(async move {
            let mut pruned = 0;
            for shard in 0..self.shards {
                let skip = self.skip.lock().expect("not poisoned")[usize::from(shard)];
                let (examined, removed) = self
                    .nets
                    .prune_index(shard, skip, self.batch)
                    .await
                    .context("pruning the net index")?;
                self.skip.lock().expect("not poisoned")[usize::from(shard)] =
                    if examined < self.batch {
                        0
                    } else {
                        skip + examined - removed
                    };
                pruned += removed;
            }
            if pruned > 0 {
                metrics::counter!("switchyard_net_index_pruned_total").increment(pruned as u64);
                tracing::debug!(pruned, "pruned net index entries of expired nets");
            }
            Ok(pruned)
        })
    }
}
