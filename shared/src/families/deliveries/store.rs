//! The delivery store: every state change of a delivery is one script call.

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncCommands;
use serde_json::Value;

use super::error::DeliveryError;
use super::model::*;
use super::scripts;
use crate::platform::errors::StoreError;
use crate::platform::keys::Keys;
use crate::platform::outbox::{
    BoxFuture, DeliveryKeys, KIND, NewDelivery, Outbox, new_id, shard_of_id,
};
use crate::platform::redis::Redis;
use crate::platform::time::ms;
use crate::platform::trace::{self, Origin};

/// Most index entries one listing examines (live, stale or filtered out).
pub const LIST_BUDGET: usize = 2000;

#[derive(Clone)]
pub struct DeliveryStore {
    pool: Redis,
    keys: Keys,
    retention: Duration,
}

fn reply(raw: &str) -> Result<Value, DeliveryError> {
    let v: Value =
        serde_json::from_str(raw).map_err(|e| DeliveryError::reply(format!("{e}: {raw}")))?;
    match v.get("err").and_then(Value::as_str) {
        Some("not_found") => Err(DeliveryError::NotFound),
        Some("conflict") => Err(DeliveryError::Conflict(
            v.get("state")
                .and_then(Value::as_str)
                .unwrap_or("busy")
                .to_owned(),
        )),
        Some(other) => Err(DeliveryError::reply(other.to_owned())),
        None => Ok(v),
    }
}

impl DeliveryStore {
    pub fn new(pool: Redis, keys: Keys, retention: Duration) -> Self {
        Self {
            pool,
            keys,
            retention,
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    fn dkeys(&self, id: &str) -> Result<DeliveryKeys, DeliveryError> {
        let shard = shard_of_id(id, self.keys.shards()).ok_or(DeliveryError::NotFound)?;
        Ok(self.keys.delivery(shard, id))
    }

    /// Create a delivery and queue its first attempt. Returns its id and
    /// whether it is new (false: the idempotency key named an existing one).
    /// The delivery carries the [current](trace::current) origin (the
    /// request or work entry being handled), sent with every attempt.
    pub async fn enqueue(&self, d: &NewDelivery) -> Result<(String, bool), DeliveryError> {
        let shard = match &d.idempotency_key {
            Some(k) => self.keys.shard_of(k),
            None => rand::random_range(0..self.keys.shards()),
        };
        let id = new_id(shard);
        let k = self.keys.delivery(shard, &id);
        let idem_key = self
            .keys
            .delivery_idempotency(shard, d.idempotency_key.as_deref().unwrap_or(""));
        let headers =
            serde_json::to_string(&d.headers).map_err(|e| DeliveryError::reply(e.to_string()))?;
        let mut conn = self.pool.conn();
        let raw: String = scripts::DELIVERY_ENQUEUE
            .key(&k.record)
            .key(&k.stream)
            .key(&k.index)
            .key(&idem_key)
            .arg(&id)
            .arg(&d.url)
            .arg(&d.method)
            .arg(headers)
            .arg(&d.body)
            .arg(&d.policy)
            .arg(&d.destination)
            .arg(d.idempotency_key.as_deref().unwrap_or(""))
            .arg(ms(self.retention))
            .arg(d.owner.as_deref().unwrap_or(""))
            .arg(trace::current_text())
            .invoke_async(&mut conn)
            .await?;
        let v = reply(&raw)?;
        match v.get("existing").and_then(Value::as_str) {
            Some(existing) => Ok((existing.to_owned(), false)),
            None => Ok((id, true)),
        }
    }

    /// The delivery an idempotency key created, while the key is kept
    /// (the delivery's retention).
    pub async fn by_idempotency_key(&self, key: &str) -> Result<Option<String>, DeliveryError> {
        let k = self.keys.delivery_idempotency(self.keys.shard_of(key), key);
        let mut conn = self.pool.conn();
        Ok(conn.get(k).await?)
    }

    /// One delivery with its attempt log.
    pub async fn get(&self, id: &str, with_log: bool) -> Result<DeliveryView, DeliveryError> {
        let k = self.dkeys(id)?;
        let mut conn = self.pool.conn();
        let (rec, log): (HashMap<String, String>, Vec<String>) = redis::pipe()
            .atomic()
            .hgetall(&k.record)
            .lrange(&k.log, 0, -1)
            .query_async(&mut conn)
            .await?;
        if rec.is_empty() {
            return Err(DeliveryError::NotFound);
        }
        Ok(view(rec, with_log.then_some(log)))
    }

    /// Deliveries, newest first, optionally filtered by state and destination.
    /// `cursor` continues a previous page. Examines a bounded number of
    /// records per call; the next cursor is returned when more may exist.
    pub async fn list(
        &self,
        state: Option<&str>,
        destination: Option<&str>,
        limit: usize,
        cursor: Option<(i64, String)>,
    ) -> Result<(Vec<DeliveryView>, Option<String>), DeliveryError> {
        let filter = DeliveryFilter {
            state: state.map(str::to_owned),
            destination: destination.map(str::to_owned),
            ..DeliveryFilter::default()
        };
        self.search(&filter, limit, cursor).await
    }

    /// Deliveries passing `filter`, newest first, `limit` per page from
    /// `cursor`. The time bounds narrow the index range read (a listing
    /// starts at `until` and ends at `since`); at most [`LIST_BUDGET`]
    /// records are examined per call, and the next cursor is returned when
    /// more may exist.
    pub async fn search(
        &self,
        filter: &DeliveryFilter,
        limit: usize,
        cursor: Option<(i64, String)>,
    ) -> Result<(Vec<DeliveryView>, Option<String>), DeliveryError> {
        let mut conn = self.pool.conn();
        // `until` is exclusive: start at its previous ms, after every id.
        let upper = filter.until_ms.map(|u| (u - 1, "~".to_owned()));
        let from = match (cursor, upper) {
            (Some(c), Some(u)) => Some(if (c.0, c.1.as_str()) < (u.0, u.1.as_str()) {
                c
            } else {
                u
            }),
            (c, u) => c.or(u),
        };
        let indexes = (0..self.keys.shards()).map(|s| (s, self.keys.delivery_index(s)));
        // Each index is read further as needed; the budget bounds the work.
        let mut it = crate::paging::NewestFirst::new(indexes, limit + 1, from.as_ref());
        let mut page = crate::paging::Page::new(limit, LIST_BUDGET);
        let next = loop {
            let (created, id, shard) = match page.next(&mut it, &mut conn).await? {
                Ok(entry) => entry,
                Err(next) => break next,
            };
            if filter.since_ms.is_some_and(|s| created < s) {
                // Newest first: everything after this is older still.
                break None;
            }
            let k = self.keys.delivery(shard, &id);
            let rec: HashMap<String, String> = conn.hgetall(&k.record).await?;
            if rec.is_empty() {
                // Expired after its retention: drop it from the index too.
                let _: i64 = conn.zrem(&k.index, &id).await?;
                continue;
            }
            let v = view(rec, None);
            if filter.keeps(&v) {
                page.items.push(v);
            }
        };
        Ok((page.items, next))
    }

    /// How many deliveries are dead (the shards' dead sets; a dead record
    /// expired after its retention counts until the index pruner drops it),
    /// and how many are indexed in all.
    pub async fn counts(&self) -> Result<(u64, u64), DeliveryError> {
        let mut pipe = redis::pipe();
        for s in 0..self.keys.shards() {
            pipe.zcard(self.keys.delivery_dead(s))
                .zcard(self.keys.delivery_index(s));
        }
        let mut conn = self.pool.conn();
        let n: Vec<u64> = pipe.query_async(&mut conn).await?;
        let dead = n.iter().step_by(2).sum();
        let all = n.iter().skip(1).step_by(2).sum();
        Ok((dead, all))
    }

    /// Replay a dead, failed or cancelled delivery.
    pub async fn retry(&self, id: &str) -> Result<(), DeliveryError> {
        let k = self.dkeys(id)?;
        let mut conn = self.pool.conn();
        let raw: String = scripts::DELIVERY_RETRY
            .key(&k.record)
            .key(&k.log)
            .key(&k.stream)
            .key(&k.timers)
            .key(&k.dead)
            .key(&k.index)
            .arg(timer_member(id))
            .invoke_async(&mut conn)
            .await?;
        reply(&raw).map(drop)
    }

    /// Cancel a delivery that has not finished.
    pub async fn cancel(&self, id: &str) -> Result<(), DeliveryError> {
        let k = self.dkeys(id)?;
        let mut conn = self.pool.conn();
        let raw: String = scripts::DELIVERY_CANCEL
            .key(&k.record)
            .key(&k.log)
            .key(&k.timers)
            .arg(timer_member(id))
            .arg(ms(self.retention))
            .invoke_async(&mut conn)
            .await?;
        reply(&raw).map(drop)
    }

    /// Start an attempt from work entry `entry`: take a new lease.
    pub async fn begin(&self, id: &str, entry: &str) -> Result<Begin, DeliveryError> {
        let k = self.dkeys(id)?;
        let mut conn = self.pool.conn();
        let raw: String = scripts::DELIVERY_BEGIN
            .key(&k.record)
            .arg(entry)
            .invoke_async(&mut conn)
            .await?;
        let v = reply(&raw)?;
        if let Some(s) = v.get("skip").and_then(Value::as_str) {
            return Ok(Begin::Skip(s.to_owned()));
        }
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let n = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or_default();
        Ok(Begin::Go(BeginAttempt {
            lease: n("lease") as i64,
            url: s("url"),
            method: s("method"),
            headers: serde_json::from_str(&s("headers")).unwrap_or_default(),
            body: s("body"),
            policy: s("policy"),
            attempts: n("attempts") as u32,
            created_ms: n("created") as i64,
            owner: s("owner"),
            origin: Origin::decode(&s("trace")),
        }))
    }

    /// Record an attempt's outcome and acknowledge its stream entry, in one
    /// call. Returns the new state, or `None` when the lease was stale.
    pub async fn finish(&self, f: &Finish<'_>) -> Result<Option<String>, DeliveryError> {
        let k = self.dkeys(f.id)?;
        let mut conn = self.pool.conn();
        let raw: String = scripts::DELIVERY_FINISH
            .key(&k.record)
            .key(&k.log)
            .key(&k.stream)
            .key(&k.timers)
            .key(&k.dead)
            .arg(f.lease)
            .arg(f.outcome)
            .arg(f.status.map(|s| s.to_string()).unwrap_or_default())
            .arg(f.error.unwrap_or(""))
            .arg(f.latency_ms)
            .arg(f.next_at_ms)
            .arg(f.entry_id)
            .arg(f.group)
            .arg(ms(self.retention))
            .arg(ATTEMPT_LOG_CAP)
            .arg(timer_member(f.id))
            .arg(f.started_ms)
            .arg(if f.tell_owner_success { "1" } else { "0" })
            .invoke_async(&mut conn)
            .await?;
        let v = reply(&raw)?;
        if v.get("stale").and_then(Value::as_bool) == Some(true) {
            return Ok(None);
        }
        Ok(v.get("state").and_then(Value::as_str).map(str::to_owned))
    }

    /// Dead-letter a delivery's work entry and mark the delivery dead, in one call.
    pub async fn kill(&self, id: &str, entry: &DeadEntry<'_>) -> Result<bool, DeliveryError> {
        let k = self.dkeys(id)?;
        let shard = shard_of_id(id, self.keys.shards()).ok_or(DeliveryError::NotFound)?;
        let mut conn = self.pool.conn();
        let n: i64 = scripts::DELIVERY_KILL
            .key(&k.record)
            .key(&k.log)
            .key(&k.dead)
            .key(&k.stream)
            .key(self.keys.dead_letters(shard))
            .arg(entry.reason)
            .arg(ms(self.retention))
            .arg(ATTEMPT_LOG_CAP)
            .arg(entry.group)
            .arg(entry.entry_id)
            .arg(KIND)
            .arg(id)
            .arg(entry.deliveries)
            .arg(entry.dead_letters_max)
            .invoke_async(&mut conn)
            .await?;
        Ok(n == 1)
    }

    /// Drop index entries whose records expired. Only entries older than the
    /// retention can be gone; each is checked, since a delivery still retrying
    /// (a long schedule) is older than that and must stay listed.
    pub async fn prune_index(&self, shard: u16) -> Result<usize, DeliveryError> {
        let cutoff = crate::platform::time::now_ms() - ms(self.retention) as i64;
        let mut conn = self.pool.conn();
        let mut removed = 0;
        for index in [
            self.keys.delivery_index(shard),
            self.keys.delivery_dead(shard),
        ] {
            let old: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(&index)
                .arg("-inf")
                .arg(cutoff)
                .arg("LIMIT")
                .arg(0)
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            for id in old {
                let exists: bool = conn.exists(self.keys.delivery(shard, &id).record).await?;
                if !exists {
                    removed += conn.zrem::<_, _, usize>(&index, &id).await?;
                }
            }
        }
        Ok(removed)
    }
}

impl Outbox for DeliveryStore {
    fn enqueue<'a>(
        &'a self,
        d: &'a NewDelivery,
    ) -> BoxFuture<'a, Result<(String, bool), StoreError>> {
        Box::pin(async move {
            DeliveryStore::enqueue(self, d).await.map_err(|e| match e {
                DeliveryError::Store(e) => e,
                other => StoreError::Reply(other.to_string()),
            })
        })
    }
}
