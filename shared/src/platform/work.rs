//! Work streams and timers: each shard has one work stream
//! (`prefix:{tag}:work`, read by the workers' consumer group) and one timer
//! set (`prefix:{tag}:timers`, ZSET member `kind|payload` → due ms) whose due
//! members the scheduler moves into the stream in one script call, so a
//! timer fires once however many schedulers run.

use super::errors::StoreError;
use super::keys::Keys;
use super::redis::Redis;
use super::scripts;

/// The consumer group of every work stream.
pub const WORK_GROUP: &str = "switchyard";

/// The timer member of `kind` work with `payload`.
pub fn timer_member(kind: &str, payload: &str) -> String {
    format!("{kind}|{payload}")
}

/// Move at most `limit` due timers of `shard` into its work stream.
/// Returns how many moved.
pub async fn move_timers(
    redis: &Redis,
    keys: &Keys,
    shard: u16,
    limit: usize,
) -> Result<usize, StoreError> {
    let mut conn = redis.conn();
    let n: i64 = scripts::TIMERS_MOVE
        .key(keys.timers(shard))
        .key(keys.work_stream(shard))
        .arg(limit)
        .invoke_async(&mut conn)
        .await?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Remove at most `limit` consumers of `shard`'s work stream group that
/// have been idle longer than `idle` and hold no pending entries (the
/// names of killed workers). Returns how many were removed.
pub async fn prune_consumers(
    redis: &Redis,
    keys: &Keys,
    shard: u16,
    idle: std::time::Duration,
    limit: usize,
) -> Result<usize, StoreError> {
    let mut conn = redis.conn();
    let n: i64 = scripts::CONSUMERS_PRUNE
        .key(keys.work_stream(shard))
        .arg(WORK_GROUP)
        .arg(u64::try_from(idle.as_millis()).unwrap_or(u64::MAX))
        .arg(limit)
        .invoke_async(&mut conn)
        .await?;
    Ok(usize::try_from(n).unwrap_or(0))
}
