//! The platform's periodic tasks: moving due timers into the work streams,
//! the work-stream gauges, and removing the consumers killed workers left.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use switchyard_shared::platform::heartbeat;
use switchyard_shared::platform::work::{WORK_GROUP, move_timers, prune_consumers};
use switchyard_shared::{Keys, Redis};

use crate::Ctx;
use crate::periodic::{BoxFuture, Periodic};

/// The platform's tasks.
pub fn tasks(ctx: &Ctx) -> Vec<Arc<dyn Periodic>> {
    vec![
        Arc::new(Heartbeat {
            redis: ctx.redis.clone(),
            keys: ctx.keys.clone(),
            every: ctx.config.scheduler.observe_interval,
        }),
        Arc::new(Timers {
            redis: ctx.redis.clone(),
            keys: ctx.keys.clone(),
            every: ctx.config.scheduler.timer_interval,
            batch: ctx.config.scheduler.sweep_batch.max(1),
        }),
        Arc::new(StreamGauges {
            redis: ctx.redis.clone(),
            keys: ctx.keys.clone(),
            every: ctx.config.scheduler.observe_interval,
        }),
        Arc::new(Consumers {
            redis: ctx.redis.clone(),
            keys: ctx.keys.clone(),
            every: ctx.config.scheduler.observe_interval,
            idle: ctx.config.scheduler.consumer_idle_timeout,
            batch: ctx.config.scheduler.sweep_batch.max(1),
        }),
    ]
}

/// Consumers idle past `--consumer-idle-timeout` with nothing pending are
/// removed from the work streams' group, at most a sweep batch per step
/// (`streams.consumers`): killed workers leave their names behind, and a
/// worker without a stable `--worker-name` gets a new one at every start.
struct Consumers {
    redis: Redis,
    keys: Keys,
    every: Duration,
    idle: Duration,
    batch: usize,
}

impl Periodic for Consumers {
    fn name(&self) -> &'static str {
        "streams.consumers"
    }
    fn every(&self) -> Duration {
        self.every
    }
    fn run_once(&self) -> BoxFuture<'_, anyhow::Result<usize>> {
        Box::pin(async move {
            let mut removed = 0;
            for shard in 0..self.keys.shards() {
                if removed >= self.batch {
                    break;
                }
                removed += prune_consumers(
                    &self.redis,
                    &self.keys,
                    shard,
                    self.idle,
                    self.batch - removed,
                )
                .await?;
            }
            if removed > 0 {
                metrics::counter!("switchyard_stream_consumers_removed_total")
                    .increment(removed as u64);
            }
            Ok(removed)
        })
    }
}

/// The schedulers' heartbeat (`scheduler.heartbeat`): workers and the API
/// read it to say when no scheduler runs (`platform::heartbeat`).
struct Heartbeat {
    redis: Redis,
    keys: Keys,
    every: Duration,
}

impl Periodic for Heartbeat {
    fn name(&self) -> &'static str {
        "scheduler.heartbeat"
    }
    fn every(&self) -> Duration {
        self.every
    }
    fn run_once(&self) -> BoxFuture<'_, anyhow::Result<usize>> {
        Box::pin(async move {
            let ttl = self.every * heartbeat::HEARTBEAT_INTERVALS;
            heartbeat::beat(&self.redis, &self.keys, ttl).await?;
            Ok(1)
        })
    }
}

/// Every due timer of every shard into its work stream (`timers`).
struct Timers {
    redis: Redis,
    keys: Keys,
    every: Duration,
    batch: usize,
}

impl Periodic for Timers {
    fn name(&self) -> &'static str {
        "timers"
    }
    fn every(&self) -> Duration {
        self.every
    }
    fn run_once(&self) -> BoxFuture<'_, anyhow::Result<usize>> {
        Box::pin(async move {
            // Every shard at once: the shared connection pipelines the calls.
            let shards = (0..self.keys.shards()).map(|shard| async move {
                let mut moved = 0;
                loop {
                    let n = move_timers(&self.redis, &self.keys, shard, self.batch).await?;
                    moved += n;
                    if n < self.batch {
                        return Ok::<usize, anyhow::Error>(moved);
                    }
                }
            });
            let mut total = 0;
            for moved in futures::future::join_all(shards).await {
                total += moved?;
            }
            if total > 0 {
                metrics::counter!("switchyard_timers_fired_total").increment(total as u64);
            }
            Ok(total)
        })
    }
}

/// Stream depth and the age of the oldest pending entry (`streams.gauges`).
struct StreamGauges {
    redis: Redis,
    keys: Keys,
    every: Duration,
}

impl Periodic for StreamGauges {
    fn name(&self) -> &'static str {
        "streams.gauges"
    }
    fn every(&self) -> Duration {
        self.every
    }
    fn run_once(&self) -> BoxFuture<'_, anyhow::Result<usize>> {
        Box::pin(async move {
            let mut depth = 0u64;
            let mut oldest_ms: Option<i64> = None;
            let mut conn = self.redis.conn();
            for shard in 0..self.keys.shards() {
                let stream = self.keys.work_stream(shard);
                let len: u64 = conn.xlen(&stream).await.unwrap_or(0);
                depth += len;
                // XPENDING summary: [count, smallest id, greatest id, consumers].
                let summary: redis::RedisResult<redis::Value> = redis::cmd("XPENDING")
                    .arg(&stream)
                    .arg(WORK_GROUP)
                    .query_async(&mut conn)
                    .await;
                if let Ok(redis::Value::Array(parts)) = summary
                    && let Some(redis::Value::BulkString(id)) = parts.get(1)
                    && let Some(ms) = std::str::from_utf8(id)
                        .ok()
                        .and_then(|s| s.split('-').next()?.parse().ok())
                {
                    oldest_ms = Some(oldest_ms.map_or(ms, |o: i64| o.min(ms)));
                }
            }
            metrics::gauge!("switchyard_work_stream_depth").set(depth as f64);
            let age = oldest_ms.map_or(0.0, |ms| {
                (switchyard_shared::time::now_ms() - ms).max(0) as f64 / 1000.0
            });
            metrics::gauge!("switchyard_work_oldest_pending_seconds").set(age);
            Ok(0)
        })
    }
}
