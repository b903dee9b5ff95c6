//! Transactions: each tenant's list of transactions (`GET /v1/transactions`)
//! loses the entries of transactions that have expired after
//! `--transaction-retention` (`transactions.prune`). The other indexes of a
//! tenant need no pruning: the open set and the commit queue lose a
//! transaction when it is committed, aborted or finished, and the
//! consolidated store does not expire.

use std::sync::Arc;

use switchyard_shared::families::transactions::keys::TenantKeys;

use crate::Ctx;
use crate::periodic::{IndexPrune, Periodic};

pub fn tasks(ctx: &Ctx) -> anyhow::Result<Vec<Arc<dyn Periodic>>> {
    let opts = &ctx.config.families.transactions;
    let mut contractors: Vec<String> = opts.tenants()?.into_values().collect();
    contractors.sort_unstable();
    contractors.dedup();
    let tenants: Vec<TenantKeys> = contractors.iter().map(|c| ctx.keys.tenant(c)).collect();
    let indexes = tenants.iter().map(|t| t.txs.clone()).collect();
    Ok(vec![Arc::new(IndexPrune::new(
        "transactions.prune",
        ctx.redis.clone(),
        indexes,
        move |i, id| tenants[i].tx(id).record,
        opts.transaction_retention,
        ctx.config.scheduler.observe_interval,
        ctx.config.scheduler.sweep_batch,
    ))])
}
