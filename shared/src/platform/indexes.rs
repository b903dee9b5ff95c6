//! Listing indexes of entities that expire: per shard, a ZSET id → created
//! (ms). An entity's keys expire by TTL, but its index entry has no TTL of
//! its own, so every index shrinks in two ways: a listing that meets a gone
//! entity drops its entry ([`drop_gone`]), and the scheduler's
//! `<family>.prune` task walks the entries older than the family's
//! retention ([`prune`]). Both remove an entry only if its record is gone
//! and the entry still has the score the caller read, in one script call.

use std::time::Duration;

use super::errors::StoreError;
use super::redis::Redis;
use super::scripts;
use super::time::now_ms;

/// Drop the entries `(id, record key, score as read)` of `index` whose
/// record no longer exists. Returns how many were removed.
pub async fn drop_gone(
    redis: &Redis,
    index: &str,
    entries: &[(String, String, String)],
) -> Result<usize, StoreError> {
    if entries.is_empty() {
        return Ok(0);
    }
    let mut inv = scripts::INDEX_PRUNE.key(index);
    for (id, record, score) in entries {
        inv.key(record).arg(id).arg(score);
    }
    let mut conn = redis.conn();
    let removed: usize = inv.invoke_async(&mut conn).await?;
    Ok(removed)
}

/// One step over `index`: among the entries created more than `retention`
/// ago, pass over `skip` (the caller's rolling position over live ones),
/// examine up to `batch` and drop those whose record (`record_key(id)`) is
/// gone. Returns (entries examined, entries removed).
pub async fn prune(
    redis: &Redis,
    index: &str,
    record_key: &(dyn Fn(&str) -> String + Send + Sync),
    retention: Duration,
    skip: usize,
    batch: usize,
) -> Result<(usize, usize), StoreError> {
    let retention = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now_ms().saturating_sub(retention);
    let rows: Vec<(String, String)> = {
        let mut conn = redis.conn();
        redis::cmd("ZRANGEBYSCORE")
            .arg(index)
            .arg("-inf")
            .arg(format!("({cutoff}"))
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(skip)
            .arg(batch)
            .query_async(&mut conn)
            .await?
    };
    let entries: Vec<(String, String, String)> = rows
        .into_iter()
        .map(|(id, score)| {
            let record = record_key(&id);
            (id, record, score)
        })
        .collect();
    let removed = drop_gone(redis, index, &entries).await?;
    Ok((entries.len(), removed))
}
