//! Switchyard's scheduler: the process that owns time. Several may run at
//! once; each step is a Lua call that re-checks the deadline, so a timer
//! fires exactly once whoever gets there first.
//!
//! Today it expires gate tickets: queued tickets not re-sent within their TTL
//! and granted tickets past theirs stop blocking others without anyone
//! polling. [`Scheduler::tick`] is one iteration, so tests step it directly.

use std::time::Duration;

use anyhow::Context;
use switchyard_shared::config::{GateOpts, RedisOpts, SchedulerOpts};
use switchyard_shared::gates::{GateSettings, GateStore};
use switchyard_shared::{Keys, RedisPool};
use tokio_util::sync::CancellationToken;

pub struct Scheduler {
    gates: GateStore,
    opts: SchedulerOpts,
}

impl Scheduler {
    pub fn new(pool: RedisPool, keys: &Keys, gate: GateSettings, opts: SchedulerOpts) -> Self {
        Self {
            gates: GateStore::new(pool, keys, gate),
            opts,
        }
    }

    /// One iteration: expire every ticket that is due. Returns how many.
    pub async fn tick(&self) -> anyhow::Result<usize> {
        let n = self
            .gates
            .sweep_expired(self.opts.sweep_batch)
            .await
            .context("sweeping expired gate tickets")?;
        if n > 0 {
            metrics::counter!("switchyard_gate_tickets_expired_total").increment(n as u64);
            tracing::info!(expired = n, "gate tickets expired");
        }
        Ok(n)
    }

    /// Tick every `--sweep-interval` until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(self.opts.sweep_interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = every.tick() => {
                    if let Err(e) = self.tick().await {
                        metrics::counter!("switchyard_scheduler_errors_total").increment(1);
                        tracing::warn!(error = %format!("{e:#}"), "scheduler step failed; retrying next tick");
                    }
                }
            }
        }
        tracing::info!("scheduler stopped");
    }
}

/// Run the scheduler role until `shutdown`.
pub async fn run(
    redis: &RedisOpts,
    gate: &GateOpts,
    opts: &SchedulerOpts,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let url = redis
        .redis_url
        .as_deref()
        .context("--redis-url is required")?;
    let pool = RedisPool::new(url, redis.redis_pool_size)?;
    pool.wait_ready(Duration::from_secs(30)).await?;
    let keys = Keys::new(&redis.key_prefix, redis.shards);
    tracing::info!(interval = ?opts.sweep_interval, "scheduler running");
    Scheduler::new(pool, &keys, GateSettings::from(gate), opts.clone())
        .run(shutdown)
        .await;
    Ok(())
}
