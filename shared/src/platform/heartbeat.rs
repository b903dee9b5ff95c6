//! The schedulers' heartbeat. Timers (retries, deferred work, expiries)
//! only move while a scheduler runs, so each scheduler writes one key
//! (`prefix:{<shard 0>}:scheduler:heartbeat`) every interval with a TTL of
//! a few intervals; workers and the API read it to say when none is seen
//! (`switchyard_scheduler_seen_seconds_ago`, a warning log, `/readyz`).
//!
//! The key's value is its TTL in milliseconds, so its age is the value
//! minus the remaining PTTL: only Redis's clock is used.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::errors::StoreError;
use super::keys::Keys;
use super::redis::Redis;

/// How many intervals the heartbeat outlives its last write.
pub const HEARTBEAT_INTERVALS: u32 = 3;

/// Write the heartbeat, valid for `ttl`.
pub async fn beat(redis: &Redis, keys: &Keys, ttl: Duration) -> Result<(), StoreError> {
    let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    let mut conn = redis.conn();
    let _: () = redis::cmd("SET")
        .arg(keys.scheduler_heartbeat())
        .arg(ms)
        .arg("PX")
        .arg(ms)
        .query_async(&mut conn)
        .await?;
    Ok(())
}

/// How long ago a scheduler last wrote the heartbeat; `None` when none
/// has within its TTL (no scheduler running).
pub async fn scheduler_seen(redis: &Redis, keys: &Keys) -> Result<Option<Duration>, StoreError> {
    let key = keys.scheduler_heartbeat();
    let mut conn = redis.conn();
    let (ttl, left): (Option<i64>, i64) = redis::pipe()
        .cmd("GET")
        .arg(&key)
        .cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await?;
    Ok(match (ttl, left) {
        (Some(ttl), left) if left >= 0 => Some(Duration::from_millis(
            u64::try_from(ttl - left).unwrap_or(0),
        )),
        _ => None,
    })
}

/// Set `switchyard_scheduler_seen_seconds_ago` (+Inf when none is seen)
/// and answer whether a scheduler is seen.
pub async fn observe(redis: &Redis, keys: &Keys) -> Result<bool, StoreError> {
    let seen = scheduler_seen(redis, keys).await?;
    metrics::gauge!("switchyard_scheduler_seen_seconds_ago")
        .set(seen.map_or(f64::INFINITY, |d| d.as_secs_f64()));
    Ok(seen.is_some())
}

/// What a process that defers work uses to say, at most once per
/// `every`, that no scheduler is running to move it back.
pub struct SchedulerWatch {
    every: Duration,
    last: Mutex<Option<Instant>>,
}

impl SchedulerWatch {
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: Mutex::new(None),
        }
    }

    /// True at most once per `every`: time to look at the heartbeat again.
    pub fn due(&self) -> bool {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|t| t.elapsed() < self.every) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// Work was deferred to a timer: check the heartbeat (rate-limited),
    /// refresh the gauge, and warn when no scheduler is seen.
    pub async fn deferred(&self, redis: &Redis, keys: &Keys) {
        if !self.due() {
            return;
        }
        match observe(redis, keys).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "work was deferred to a timer but no scheduler is running: \
                 deferred work and retries will not move until one runs"
            ),
            Err(e) => tracing::debug!(error = %e, "scheduler heartbeat unreadable"),
        }
    }
}
