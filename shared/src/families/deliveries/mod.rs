//! Reliable HTTP deliveries ("send this webhook reliably").
//!
//! A delivery is a Redis hash (`sy:{NN}:dlv:<id>`) plus an attempt log; its
//! id names its shard (`d<shard>-<uuid>`), so any replica finds it without a
//! lookup, and a script of any other entity on that shard can create one in
//! its own atomic call ([`lua/prelude.lua`]'s `outbox_delivery`). Attempts
//! run from the shard's work stream; retries wait in the shard's timer set
//! and are moved back into the stream by the scheduler (`timers_move.lua`).
//!
//! * [`RetryPolicy`] — named retry schedules (`svix`, `scriptoria`,
//!   configurable `exponential` and `schedule`), pure functions of the attempt
//!   count and age.
//! * [`classify`] — what an HTTP outcome means: success, retry (honouring
//!   `Retry-After`), or permanent failure.
//! * [`DeliveryStore`] — every state change is one script call.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use redis::AsyncCommands;
use serde::Serialize;
use serde_json::Value;

pub mod config;
pub mod scripts;

pub use crate::platform::ids::{address_forbidden, destination_of};
pub use crate::platform::outbox::{KIND, NewDelivery, Policies, RetryPolicy, new_id, shard_of_id};
pub use config::DeliveryOpts;

use crate::platform::errors::StoreError;
use crate::platform::keys::Keys;
use crate::platform::outbox::{BoxFuture, DeliveryKeys, Outbox};
use crate::platform::redis::{PoolError, Redis as RedisPool};
use crate::platform::time::iso_ms;

/// Attempt log entries kept per delivery.
pub const ATTEMPT_LOG_CAP: u32 = 100;
/// The states a delivery goes through.
pub const STATES: [&str; 6] = [
    "pending",
    "in_flight",
    "succeeded",
    "failed_retrying",
    "dead",
    "cancelled",
];

/// The timer member of a delivery's next attempt.
pub fn timer_member(id: &str) -> String {
    crate::platform::work::timer_member(KIND, id)
}

/// What an attempt's outcome means.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Success,
    /// Try again; `after` overrides the policy's delay (Retry-After).
    Retry {
        after: Option<Duration>,
    },
    /// Never retry.
    Permanent(String),
}

/// Classify an attempt: `status` is the HTTP status, `None` for a timeout or
/// connection error.
pub fn classify(status: Option<u16>, retry_after: Option<Duration>, retry_4xx: bool) -> Verdict {
    match status {
        None => Verdict::Retry { after: None },
        Some(s) if (200..300).contains(&s) => Verdict::Success,
        Some(429) | Some(503) => Verdict::Retry { after: retry_after },
        Some(410) => Verdict::Permanent("410 Gone: the receiver asked us to stop".into()),
        Some(s) if (400..500).contains(&s) && !retry_4xx => {
            Verdict::Permanent(format!("{s} is a permanent client error"))
        }
        Some(s) if (300..400).contains(&s) => {
            Verdict::Permanent(format!("{s}: redirects are not followed"))
        }
        Some(_) => Verdict::Retry { after: None },
    }
}

/// Parse a Retry-After header: delta seconds or an HTTP date.
pub fn parse_retry_after(v: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (at.with_timezone(&chrono::Utc) - now).to_std().ok()
}

// ---------------------------------------------------------------------------
// Store

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("delivery not found")]
    NotFound,
    #[error("delivery is {0}")]
    Conflict(String),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis pool: {0}")]
    Pool(#[from] PoolError),
    #[error("unexpected script reply: {0}")]
    Reply(String),
}

#[derive(Serialize, Debug, Clone)]
pub struct Attempt {
    pub at: String,
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_ms: u64,
}

#[derive(Serialize, Debug, Clone)]
pub struct DeliveryView {
    pub id: String,
    pub state: String,
    pub url: String,
    pub method: String,
    pub destination: String,
    pub headers: Value,
    pub body: Value,
    pub policy: String,
    pub attempts: u32,
    pub created: String,
    pub updated: String,
    pub next_attempt_at: Option<String>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<Attempt>>,
}

/// What a worker gets when it starts an attempt.
#[derive(Debug, Clone)]
pub enum Begin {
    Skip(String),
    Go(BeginAttempt),
}

#[derive(Debug, Clone)]
pub struct BeginAttempt {
    pub lease: i64,
    pub url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub policy: String,
    pub attempts: u32,
    pub created_ms: i64,
    pub owner: String,
}

/// A work entry being dead-lettered, for [`DeliveryStore::kill`].
#[derive(Debug, Clone)]
pub struct DeadEntry<'a> {
    pub reason: &'a str,
    pub group: &'a str,
    pub entry_id: &'a str,
    pub deliveries: u64,
    pub dead_letters_max: u64,
}

/// The outcome of one attempt, for [`DeliveryStore::finish`].
#[derive(Debug, Clone)]
pub struct Finish<'a> {
    pub id: &'a str,
    pub lease: i64,
    /// `succeeded`, `retry` or `dead`.
    pub outcome: &'a str,
    pub status: Option<u16>,
    pub error: Option<&'a str>,
    pub latency_ms: u64,
    pub next_at_ms: i64,
    pub started_ms: i64,
    pub entry_id: &'a str,
    pub group: &'a str,
}

#[derive(Clone)]
pub struct DeliveryStore {
    pool: RedisPool,
    keys: Keys,
    retention: Duration,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn reply(raw: &str) -> Result<Value, DeliveryError> {
    let v: Value =
        serde_json::from_str(raw).map_err(|e| DeliveryError::Reply(format!("{e}: {raw}")))?;
    match v.get("err").and_then(Value::as_str) {
        Some("not_found") => Err(DeliveryError::NotFound),
        Some("conflict") => Err(DeliveryError::Conflict(
            v.get("state")
                .and_then(Value::as_str)
                .unwrap_or("busy")
                .to_owned(),
        )),
        Some(other) => Err(DeliveryError::Reply(other.to_owned())),
        None => Ok(v),
    }
}

impl DeliveryStore {
    pub fn new(pool: RedisPool, keys: Keys, retention: Duration) -> Self {
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
            serde_json::to_string(&d.headers).map_err(|e| DeliveryError::Reply(e.to_string()))?;
        let mut conn = self.pool.get().await?;
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
            .invoke_async(&mut conn)
            .await?;
        let v = reply(&raw)?;
        match v.get("existing").and_then(Value::as_str) {
            Some(existing) => Ok((existing.to_owned(), false)),
            None => Ok((id, true)),
        }
    }

    /// One delivery with its attempt log.
    pub async fn get(&self, id: &str, with_log: bool) -> Result<DeliveryView, DeliveryError> {
        let k = self.dkeys(id)?;
        let mut conn = self.pool.get().await?;
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
        const BUDGET: usize = 2000;
        let mut conn = self.pool.get().await?;
        // With filters, look further per shard; the budget bounds the work.
        let per_shard = if state.is_some() || destination.is_some() {
            BUDGET
        } else {
            limit + 1
        };
        let indexes = (0..self.keys.shards()).map(|s| (s, self.keys.delivery_index(s)));
        let cands =
            crate::paging::newest_first(&mut conn, indexes, per_shard, cursor.as_ref()).await?;
        let mut out = Vec::new();
        let mut next = None;
        for (examined, (created, id, shard)) in cands.into_iter().enumerate() {
            if out.len() == limit || examined >= BUDGET {
                next = Some(crate::paging::cursor(created, &id));
                break;
            }
            let k = self.keys.delivery(shard, &id);
            let rec: HashMap<String, String> = conn.hgetall(&k.record).await?;
            if rec.is_empty() {
                // Expired after its retention: drop it from the index too.
                let _: i64 = conn.zrem(&k.index, &id).await?;
                continue;
            }
            let v = view(rec, None);
            if state.is_some_and(|s| s != v.state)
                || destination.is_some_and(|d| d != v.destination)
            {
                continue;
            }
            out.push(v);
        }
        Ok((out, next))
    }

    /// Replay a dead, failed or cancelled delivery.
    pub async fn retry(&self, id: &str) -> Result<(), DeliveryError> {
        let k = self.dkeys(id)?;
        let mut conn = self.pool.get().await?;
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
        let mut conn = self.pool.get().await?;
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
        let mut conn = self.pool.get().await?;
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
        }))
    }

    /// Record an attempt's outcome and acknowledge its stream entry, in one
    /// call. Returns the new state, or `None` when the lease was stale.
    pub async fn finish(&self, f: &Finish<'_>) -> Result<Option<String>, DeliveryError> {
        let k = self.dkeys(f.id)?;
        let mut conn = self.pool.get().await?;
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
        let mut conn = self.pool.get().await?;
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

    /// Move up to `limit` due timers of `shard` into its work stream.
    pub async fn move_timers(&self, shard: u16, limit: usize) -> Result<usize, DeliveryError> {
        let mut conn = self.pool.get().await?;
        let n: i64 = crate::platform::scripts::TIMERS_MOVE
            .key(self.keys.timers(shard))
            .key(self.keys.work_stream(shard))
            .arg(limit)
            .invoke_async(&mut conn)
            .await?;
        Ok(n as usize)
    }

    /// Drop index entries whose records expired. Only entries older than the
    /// retention can be gone; each is checked, since a delivery still retrying
    /// (a long schedule) is older than that and must stay listed.
    pub async fn prune_index(&self, shard: u16) -> Result<usize, DeliveryError> {
        let cutoff = crate::platform::time::now_ms() - ms(self.retention) as i64;
        let mut conn = self.pool.get().await?;
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

fn view(rec: HashMap<String, String>, log: Option<Vec<String>>) -> DeliveryView {
    let s = |k: &str| rec.get(k).cloned().unwrap_or_default();
    let n = |k: &str| rec.get(k).and_then(|v| v.parse::<i64>().ok());
    let state = s("state");
    DeliveryView {
        id: s("id"),
        url: s("url"),
        method: s("method"),
        destination: s("destination"),
        headers: serde_json::from_str(&s("headers")).unwrap_or(Value::Null),
        body: serde_json::from_str(&s("body")).unwrap_or(Value::Null),
        policy: s("policy"),
        attempts: n("attempts").unwrap_or(0) as u32,
        created: iso_ms(n("created").unwrap_or(0)),
        updated: iso_ms(n("updated").unwrap_or(0)),
        next_attempt_at: match state.as_str() {
            "pending" | "failed_retrying" => n("next_at").map(iso_ms),
            _ => None,
        },
        last_status: rec.get("last_status").and_then(|v| v.parse().ok()),
        last_error: rec.get("last_error").filter(|e| !e.is_empty()).cloned(),
        state,
        attempt_log: log.map(|entries| {
            entries
                .iter()
                .filter_map(|e| serde_json::from_str::<Value>(e).ok())
                .map(|e| Attempt {
                    at: iso_ms(e.get("at").and_then(Value::as_f64).unwrap_or(0.0) as i64),
                    outcome: e
                        .get("outcome")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    status: e.get("status").and_then(Value::as_u64).map(|s| s as u16),
                    error: e.get("error").and_then(Value::as_str).map(str::to_owned),
                    latency_ms: e.get("latency_ms").and_then(Value::as_f64).unwrap_or(0.0) as u64,
                })
                .collect()
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_name_their_shard() {
        let id = new_id(7);
        assert_eq!(shard_of_id(&id, 16), Some(7));
        assert_eq!(shard_of_id(&id, 4), None, "shard out of range");
        assert_eq!(shard_of_id("d7-xyz", 16), None);
        assert_eq!(shard_of_id("../etc", 16), None);
    }

    #[test]
    fn scriptoria_waits_n5_plus_30_for_12_attempts_about_61_hours() {
        let p = RetryPolicy::Scriptoria;
        let delays: Vec<u64> = (1..12)
            .map(|d| p.delay(d, Duration::ZERO, 0.5).unwrap().as_secs())
            .collect();
        assert_eq!(&delays[..5], &[30, 31, 62, 273, 1054]);
        assert_eq!(delays[10], 100_030);
        assert_eq!(p.delay(12, Duration::ZERO, 0.5), None);
        let total: u64 = delays.iter().sum();
        assert!((60 * 3600..62 * 3600).contains(&total), "{total}");
    }

    #[test]
    fn svix_schedule() {
        let p = RetryPolicy::svix();
        let d: Vec<u64> = (1..8)
            .map(|n| p.delay(n, Duration::ZERO, 0.0).unwrap().as_secs())
            .collect();
        assert_eq!(d, [5, 300, 1800, 7200, 18000, 36000, 36000]);
        assert_eq!(p.delay(8, Duration::ZERO, 0.0), None);
    }

    #[test]
    fn exponential_caps_jitters_and_gives_up_on_age() {
        let p = RetryPolicy::parse(
            "exponential:base=1s,factor=2,cap=5s,max_attempts=6,max_age=20s,jitter=none",
        )
        .unwrap();
        let d: Vec<u64> = (1..6)
            .map(|n| p.delay(n, Duration::ZERO, 0.3).unwrap().as_secs())
            .collect();
        assert_eq!(d, [1, 2, 4, 5, 5]);
        assert_eq!(p.delay(6, Duration::ZERO, 0.3), None);
        assert_eq!(p.delay(3, Duration::from_secs(18), 0.3), None, "max age");
        let j =
            RetryPolicy::parse("exponential:base=10s,factor=1,max_attempts=3,jitter=full").unwrap();
        assert_eq!(
            j.delay(1, Duration::ZERO, 0.5),
            Some(Duration::from_secs(5))
        );
        assert!(RetryPolicy::parse("exponential:bogus=1").is_err());
        assert!(RetryPolicy::parse("weird").is_err());
        let s = RetryPolicy::parse("schedule:50ms,100ms").unwrap();
        assert_eq!(s.max_attempts(), 3);
    }

    #[test]
    fn classification() {
        assert_eq!(classify(Some(204), None, false), Verdict::Success);
        assert_eq!(classify(None, None, false), Verdict::Retry { after: None });
        assert_eq!(
            classify(Some(500), None, false),
            Verdict::Retry { after: None }
        );
        let ra = Some(Duration::from_secs(7));
        assert_eq!(classify(Some(429), ra, false), Verdict::Retry { after: ra });
        assert_eq!(classify(Some(503), ra, false), Verdict::Retry { after: ra });
        assert!(matches!(
            classify(Some(410), None, true),
            Verdict::Permanent(_)
        ));
        assert!(matches!(
            classify(Some(400), None, false),
            Verdict::Permanent(_)
        ));
        assert_eq!(
            classify(Some(404), None, true),
            Verdict::Retry { after: None }
        );
        let now = chrono::Utc::now();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        let later = (now + chrono::Duration::seconds(60)).to_rfc2822();
        let d = parse_retry_after(&later, now).unwrap();
        assert!((59..=60).contains(&d.as_secs()), "{d:?}");
    }

    #[test]
    fn policies_registry() {
        let p = Policies::new(&["fast=schedule:10ms,10ms".into()], "svix").unwrap();
        assert!(
            p.get("fast").is_some() && p.get("svix").is_some() && p.get("scriptoria").is_some()
        );
        assert!(Policies::new(&[], "nope").is_err());
        assert!(Policies::new(&["broken".into()], "svix").is_err());
    }
}

impl Outbox for DeliveryStore {
    fn enqueue<'a>(
        &'a self,
        d: &'a NewDelivery,
    ) -> BoxFuture<'a, Result<(String, bool), StoreError>> {
        Box::pin(async move {
            DeliveryStore::enqueue(self, d).await.map_err(|e| match e {
                DeliveryError::Redis(e) => StoreError::Redis(e),
                other => StoreError::Reply(other.to_string()),
            })
        })
    }
}
