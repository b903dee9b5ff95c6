//! Workflows: the per-shard workflow indexes (every workflow, and one per
//! status) lose the entries of workflows that have expired after
//! `--workflow-retention` (`workflows.prune`), at most `--sweep-batch`
//! entries examined per index and shard per step. Timers need no task of
//! their own: they are platform timers (`workflows.timer|…`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use switchyard_shared::families::workflows::WorkflowStore;

use crate::Ctx;
use crate::periodic::{BoxFuture, Periodic};

pub fn tasks(ctx: &Ctx) -> anyhow::Result<Vec<Arc<dyn Periodic>>> {
    let shards = ctx.keys.shards();
    let slots = usize::from(shards) * WorkflowStore::INDEXES_PER_SHARD;
    Ok(vec![Arc::new(Prune {
        store: WorkflowStore::new(
            ctx.redis.clone(),
            ctx.keys.clone(),
            &ctx.config.families.workflows,
            &ctx.config.outbox.public_url,
        ),
        shards,
        every: ctx.config.scheduler.observe_interval,
        batch: ctx.config.scheduler.sweep_batch.max(1),
        skip: Mutex::new(vec![0; slots]),
    })])
}

struct Prune {
    store: WorkflowStore,
    shards: u16,
    every: Duration,
    batch: usize,
    /// Per (shard, index): live entries past the retention passed over so
    /// far (a rolling position, so long-running workflows never hide
    /// expired ones behind them; lost on restart, which only restarts the round).
    skip: Mutex<Vec<usize>>,
}

impl Periodic for Prune {
    fn name(&self) -> &'static str {
        "workflows.prune"
    }
    fn every(&self) -> Duration {
        self.every
    }
    fn run_once(&self) -> BoxFuture<'_, anyhow::Result<usize>> {
        Box::pin(async move {
            let mut pruned = 0;
            for shard in 0..self.shards {
                for which in 0..WorkflowStore::INDEXES_PER_SHARD {
                    let slot = usize::from(shard) * WorkflowStore::INDEXES_PER_SHARD + which;
                    let skip = self.skip.lock().expect("not poisoned")[slot];
                    let (examined, removed) = self
                        .store
                        .prune_index(shard, which, skip, self.batch)
                        .await
                        .context("pruning a workflow index")?;
                    self.skip.lock().expect("not poisoned")[slot] = if examined < self.batch {
                        0
                    } else {
                        skip + examined - removed
                    };
                    pruned += removed;
                }
            }
            if pruned > 0 {
                metrics::counter!("switchyard_workflow_index_pruned_total")
                    .increment(pruned as u64);
                tracing::debug!(pruned, "pruned workflow index entries of expired workflows");
            }
            Ok(pruned)
        })
    }
}
