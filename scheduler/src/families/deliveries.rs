//! Deliveries: the listing indexes are pruned past the retention and the
//! dead-delivery gauge refreshed (`deliveries.prune`).

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use switchyard_shared::Keys;
use switchyard_shared::families::deliveries::DeliveryStore;

use crate::Ctx;
use crate::periodic::{BoxFuture, Periodic};

pub fn tasks(ctx: &Ctx) -> anyhow::Result<Vec<Arc<dyn Periodic>>> {
    Ok(vec![Arc::new(Prune {
        store: DeliveryStore::new(
            ctx.redis.clone(),
            ctx.keys.clone(),
            ctx.config.families.deliveries.delivery_retention,
        ),
        redis: ctx.redis.clone(),
        keys: ctx.keys.clone(),
        every: ctx.config.scheduler.observe_interval,
    })])
}

struct Prune {
    store: DeliveryStore,
    redis: switchyard_shared::Redis,
    keys: Keys,
    every: Duration,
}

impl Periodic for Prune {
    fn name(&self) -> &'static str {
        "deliveries.prune"
    }
    fn every(&self) -> Duration {
        self.every
    }
    fn run_once(&self) -> BoxFuture<'_, anyhow::Result<usize>> {
        Box::pin(async move {
            let mut dead = 0u64;
            let mut pruned = 0;
            let mut conn = self.redis.conn();
            for shard in 0..self.keys.shards() {
                dead += conn.zcard::<_, u64>(self.keys.delivery_dead(shard)).await?;
                pruned += self.store.prune_index(shard).await?;
            }
            metrics::gauge!("switchyard_deliveries_dead").set(dead as f64);
            if pruned > 0 {
                tracing::debug!(pruned, "pruned delivery index entries past retention");
            }
            Ok(pruned)
        })
    }
}
