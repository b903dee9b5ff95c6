//! Transactions: each tenant's list of transactions (`GET /v1/transactions`)
//! loses the entries of transactions that have expired after
//! `--transaction-retention` (`transactions.prune`), at most
//! `--sweep-batch` entries examined per tenant per step. The other indexes
//! of a tenant need no pruning: the open set and the commit queue lose a
//! transaction when it is committed, aborted or finished, and the
//! consolidated store does not expire.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use switchyard_shared::families::transactions::keys::TenantKeys;
use switchyard_shared::platform::indexes;

use crate::Ctx;
use crate::periodic::{BoxFuture, Periodic};

pub fn tasks(ctx: &Ctx) -> anyhow::Result<Vec<Arc<dyn Periodic>>> {
    let opts = &ctx.config.families.transactions;
    let mut contractors: Vec<String> = opts.tenants()?.into_values().collect();
    contractors.sort_unstable();
    contractors.dedup();
    let tenants: Vec<TenantKeys> = contractors.iter().map(|c| ctx.keys.tenant(c)).collect();
    Ok(vec![Arc::new(Prune {
        redis: ctx.redis.clone(),
        skip: Mutex::new(vec![0; tenants.len()]),
        tenants,
        retention: opts.transaction_retention,
        every: ctx.config.scheduler.observe_interval,
        batch: ctx.config.scheduler.sweep_batch.max(1),
    })])
}

struct Prune {
    redis: switchyard_shared::Redis,
    tenants: Vec<TenantKeys>,
    retention: Duration,
    every: Duration,
    batch: usize,
    /// Per tenant: live entries past the retention passed over so far (a
    /// rolling position, so open or long-running transactions never hide
    /// expired ones behind them; lost on restart, which only restarts the round).
    skip: Mutex<Vec<usize>>,
}

impl Periodic for Prune {
    fn name(&self) -> &'static str {
        "transactions.prune"
    }
    fn every(&self) -> Duration {
        self.every
    }
    fn run_once(&self) -> BoxFuture<'_, anyhow::Result<usize>> {
        Box::pin(async move {
            let mut pruned = 0;
            for (i, t) in self.tenants.iter().enumerate() {
                let skip = self.skip.lock().expect("not poisoned")[i];
                let record = |id: &str| t.tx(id).record;
                let (examined, removed) = indexes::prune(
                    &self.redis,
                    &t.txs,
                    &record,
                    self.retention,
                    skip,
                    self.batch,
                )
                .await
                .context("pruning a tenant's transactions")?;
                self.skip.lock().expect("not poisoned")[i] = if examined < self.batch {
                    0
                } else {
                    skip + examined - removed
                };
                pruned += removed;
            }
            if pruned > 0 {
                metrics::counter!("switchyard_index_pruned_total", "task" => "transactions.prune")
                    .increment(pruned as u64);
                tracing::debug!(
                    pruned,
                    "pruned transaction index entries of expired transactions"
                );
            }
            Ok(pruned)
        })
    }
}
