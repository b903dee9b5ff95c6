//! Switchyard's scheduler: the process that owns time. Several may run at
//! once; each step is a Lua call that re-checks the deadline, so a timer
//! fires exactly once whoever gets there first.
//!
//! * Timers: every shard's timer set (`sy:{NN}:timers`, member `kind|payload`)
//!   is moved into its work stream when due (`timers_move.lua`) — delivery
//!   retries and deferred work.
//! * Gate tickets: queued tickets not re-sent within their TTL and granted
//!   tickets past theirs stop blocking others without anyone polling.
//! * Gauges: stream depth, oldest pending entry, dead deliveries; and the
//!   delivery index is pruned past the retention.
//!
//! [`Scheduler::tick`] and [`Scheduler::move_timers`] are single iterations,
//! so tests step them directly.

use std::time::Duration;

use anyhow::Context;
use redis::AsyncCommands;
use switchyard_shared::config::{DeliveryOpts, GateOpts, RedisOpts, SchedulerOpts};
use switchyard_shared::deliveries::DeliveryStore;
use switchyard_shared::gates::{GateSettings, GateStore};
use switchyard_shared::{Keys, RedisPool};
use tokio_util::sync::CancellationToken;

pub struct Scheduler {
    machines: switchyard_shared::machines::MachineStore,
    alert_policy: String,
    pool: RedisPool,
    keys: Keys,
    gates: GateStore,
    deliveries: DeliveryStore,
    opts: SchedulerOpts,
}

impl Scheduler {
    pub fn new(
        pool: RedisPool,
        keys: &Keys,
        gate: GateSettings,
        retention: Duration,
        opts: SchedulerOpts,
    ) -> Self {
        Self {
            machines: switchyard_shared::machines::MachineStore::new(
                pool.clone(),
                keys.clone(),
                retention,
            ),
            alert_policy: "svix".into(),
            gates: GateStore::new(pool.clone(), keys, gate),
            deliveries: DeliveryStore::new(pool.clone(), keys.clone(), retention),
            pool,
            keys: keys.clone(),
            opts,
        }
    }

    /// Expire every gate ticket that is due. Returns how many.
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

    /// Move every due timer of every shard into its work stream. Returns how many.
    pub async fn move_timers(&self) -> anyhow::Result<usize> {
        let mut total = 0;
        for shard in 0..self.keys.shards() {
            loop {
                let n = self
                    .deliveries
                    .move_timers(shard, self.opts.sweep_batch.max(1))
                    .await?;
                total += n;
                if n < self.opts.sweep_batch.max(1) {
                    break;
                }
            }
        }
        if total > 0 {
            metrics::counter!("switchyard_timers_fired_total").increment(total as u64);
        }
        Ok(total)
    }

    /// The retry policy of threshold webhooks.
    pub fn with_alert_policy(mut self, policy: &str) -> Self {
        self.alert_policy = policy.to_owned();
        self
    }

    /// Evaluate state-machine thresholds; returns notifications sent.
    pub async fn check_machines(&self) -> anyhow::Result<usize> {
        Ok(self.machines.check_all(&self.alert_policy).await?)
    }

    /// Refresh the gauges and prune expired index entries.
    pub async fn observe(&self) -> anyhow::Result<()> {
        let mut depth = 0u64;
        let mut dead = 0u64;
        let mut oldest_ms: Option<i64> = None;
        let mut pruned = 0;
        for shard in 0..self.keys.shards() {
            let mut conn = self.pool.get().await?;
            let stream = self.keys.work_stream(shard);
            let len: u64 = conn.xlen(&stream).await.unwrap_or(0);
            depth += len;
            dead += conn.zcard::<_, u64>(self.keys.delivery_dead(shard)).await?;
            // XPENDING summary: [count, smallest id, greatest id, consumers].
            let summary: redis::RedisResult<redis::Value> = redis::cmd("XPENDING")
                .arg(&stream)
                .arg(switchyard_shared::WORK_GROUP)
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
            pruned += self.deliveries.prune_index(shard).await?;
        }
        metrics::gauge!("switchyard_work_stream_depth").set(depth as f64);
        metrics::gauge!("switchyard_deliveries_dead").set(dead as f64);
        let age = oldest_ms.map_or(0.0, |ms| {
            (switchyard_shared::time::now_ms() - ms).max(0) as f64 / 1000.0
        });
        metrics::gauge!("switchyard_work_oldest_pending_seconds").set(age);
        if pruned > 0 {
            tracing::debug!(pruned, "pruned delivery index entries past retention");
        }
        Ok(())
    }

    /// Run until `shutdown`: timers every `--timer-interval`, ticket sweeps
    /// every `--sweep-interval`, gauges every 10 s.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut timers = tokio::time::interval(self.opts.timer_interval);
        let mut sweep = tokio::time::interval(self.opts.sweep_interval);
        let mut observe = tokio::time::interval(Duration::from_secs(10));
        let mut machines = tokio::time::interval(self.opts.sm_check_interval);
        for i in [&mut timers, &mut sweep, &mut observe, &mut machines] {
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            let res = tokio::select! {
                () = shutdown.cancelled() => break,
                _ = timers.tick() => self.move_timers().await.map(drop),
                _ = sweep.tick() => self.tick().await.map(drop),
                _ = observe.tick() => self.observe().await,
                _ = machines.tick() => self.check_machines().await.map(drop),
            };
            if let Err(e) = res {
                metrics::counter!("switchyard_scheduler_errors_total").increment(1);
                tracing::warn!(error = %format!("{e:#}"), "scheduler step failed; retrying next tick");
            }
        }
        tracing::info!("scheduler stopped");
    }
}

/// Run the scheduler role until `shutdown`.
pub async fn run(
    redis: &RedisOpts,
    gate: &GateOpts,
    dopts: &DeliveryOpts,
    opts: &SchedulerOpts,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (pool, keys) = redis.connect().await?;
    tracing::info!(sweep = ?opts.sweep_interval, timers = ?opts.timer_interval, "scheduler running");
    Scheduler::new(
        pool,
        &keys,
        GateSettings::from(gate),
        dopts.delivery_retention,
        opts.clone(),
    )
    .run(shutdown)
    .await;
    Ok(())
}
