//! The transactions store: every state change is one script call. The
//! API's calls (create, stage a batch, commit, abort) are one call each;
//! the worker's [`TransactionStore::step`] reads a transaction at its
//! checkpoint, computes one stage step (a batch imported, a page of 500
//! items validated or consolidated) and applies it with one call of
//! `lua/transactions/step.lua`, fenced by the checkpoint, which also queues
//! the next step.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::TransactionOpts;
use super::keys::{TenantKeys, TxKeys};
use super::model::{self, Entry, ItemError, Lookup, Op, SEP, Status, Window};
use super::rawjson;
use super::schema::{RESOURCES, Resource};
use super::scripts;
use super::views::{ErrorPage, ItemErrorView, TxPage, TxView};
use crate::platform::errors::StoreError;
use crate::platform::ids::destination_of;
use crate::platform::keys::Keys;
use crate::platform::outbox;
use crate::platform::redis::Redis as RedisPool;
use crate::platform::reply::{self, Refused};
use crate::platform::time::{ms, now_ms};
use crate::platform::trace;

/// Items one validate or consolidate step handles.
pub const PAGE: usize = 500;
/// Per-item errors shown in `GET /v1/transactions/{id}`.
pub const ERRORS_SHOWN: usize = 10;
/// Most parents followed when looking for a hierarchy cycle.
pub const CYCLE_DEPTH: usize = 64;
/// Most index entries one listing examines.
pub const LIST_BUDGET: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum TxError {
    #[error("Transaction not found")]
    NotFound,
    #[error("Transaction is already committed (status {0})")]
    Committed(u8),
    #[error("Idempotency-Key was used with another body")]
    IdempotencyMismatch,
    #[error("The transaction may receive at most {max} items ({received} received)")]
    TooManyItems { received: u64, max: u64 },
    #[error("Too many open transactions ({0}); commit or delete some")]
    TooManyOpen(u64),
    #[error("The pipeline is behind ({0} transactions waiting); retry later")]
    Backlog(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<redis::RedisError> for TxError {
    fn from(e: redis::RedisError) -> Self {
        Self::Store(e.into())
    }
}

impl From<Refused> for TxError {
    fn from(r: Refused) -> Self {
        let n = |f: &str| r.reply.get(f).and_then(Value::as_u64).unwrap_or(0);
        match r.code.as_str() {
            "not_found" => Self::NotFound,
            "committed" => Self::Committed(u8::try_from(n("status")).unwrap_or(0)),
            "idempotency_mismatch" => Self::IdempotencyMismatch,
            "too_many_items" => Self::TooManyItems {
                received: n("received"),
                max: n("max"),
            },
            "too_many_open" => Self::TooManyOpen(n("open")),
            "backlog" => Self::Backlog(n("queued")),
            other => Self::Store(StoreError::Reply(other.to_owned())),
        }
    }
}

/// What a staged batch answers: the stored items (the seed's echo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// The answer body, a JSON array.
    pub answer: String,
    /// The idempotency key named a batch staged before; nothing was stored.
    pub replay: bool,
}

/// What one pipeline step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// Applied; the status after it, and whether the transaction finished.
    Applied { status: u8, finished: bool },
    /// Already applied (a duplicate or late entry), or the transaction is gone.
    Stale,
}

#[derive(Deserialize)]
struct StageReply {
    batch: u64,
    #[serde(default)]
    replay: bool,
}

#[derive(Deserialize)]
struct CommitReply {
    modified: u8,
}

#[derive(Deserialize)]
struct StepReply {
    status: u8,
    finished: bool,
}

#[derive(Deserialize)]
struct Ok {
    #[allow(dead_code)]
    ok: bool,
}

/// The results of one step, as `step.lua` takes them.
#[derive(Default, Serialize)]
struct StepResults {
    staged: Vec<(String, String)>,
    order: Vec<(u64, String)>,
    skipped: u64,
    superseded: u64,
    valid: Vec<String>,
    errors: Vec<String>,
    /// Store keys removed before `store` is written (intervals trimmed away).
    unstore: Vec<(usize, String)>,
    store: Vec<(usize, String, String)>,
    /// Items consolidated (`store` also holds the intervals they trimmed).
    consolidated: u64,
    /// The records of the consolidated items, for the sink.
    #[serde(skip)]
    items: Vec<String>,
}

/// One per-item error, as stored (field order is the answer's).
#[derive(Serialize)]
struct StoredError<'a> {
    resource: &'a str,
    batch: u64,
    index: u64,
    identification: String,
    path: String,
    message: String,
}

/// The transactions store.
#[derive(Clone)]
pub struct TransactionStore {
    pub(super) pool: RedisPool,
    pub(super) keys: Keys,
    retention: Duration,
    max_items: u64,
    max_open: u64,
    max_backlog: u64,
    policy: String,
    sink: Option<(String, String)>,
}

/// The fields of a member that this API owns in a stored record
/// (`validFrom`/`validTo`: the days an interval record holds, inclusive).
const OWN_FIELDS: [&str; 5] = ["__v", "stackId", "contractorId", "validFrom", "validTo"];

/// `record` with its interval (`validFrom`, `validTo`) set to `from`..=`to`.
pub fn with_interval(record: &str, from: &str, to: &str) -> String {
    let members = rawjson::members(record);
    let (from, to) = (Value::from(from).to_string(), Value::from(to).to_string());
    rawjson::object(
        members
            .iter()
            .filter(|m| m.name != "validFrom" && m.name != "validTo")
            .map(|m| (m.raw_name, m.value))
            .chain([
                ("\"validFrom\"", from.as_str()),
                ("\"validTo\"", to.as_str()),
            ]),
    )
}

/// The interval (`validFrom`, `validTo`) of a stored interval record.
fn interval_of(record: &str) -> Option<(String, String)> {
    let v: Value = serde_json::from_str(record).ok()?;
    let text = |f: &str| v.get(f).and_then(Value::as_str).map(str::to_owned);
    Some((text("validFrom")?, text("validTo")?))
}

/// One interval series (a collaborator's hierarchy, or one of its
/// attributes): start date → (end date, record), as stored and as changed.
struct Series {
    resource: Resource,
    prefix: String,
    stored: BTreeMap<String, (String, String)>,
    now: BTreeMap<String, (String, String)>,
}

impl Series {
    /// Put `record` over `from..=to`: the intervals it overlaps are cut
    /// back to what lies outside it (one may split in two).
    fn put(&mut self, from: &str, to: &str, record: String) {
        let overlapping: Vec<(String, String, String)> = self
            .now
            .range(..=to.to_owned())
            .filter(|(_, (end, _))| end.as_str() >= from)
            .map(|(start, (end, rec))| (start.clone(), end.clone(), rec.clone()))
            .collect();
        for (start, end, rec) in overlapping {
            self.now.remove(&start);
            if start.as_str() < from
                && let Some(before) = model::day_before(from)
            {
                let cut = with_interval(&rec, &start, &before);
                self.now.insert(start.clone(), (before, cut));
            }
            if end.as_str() > to
                && let Some(after) = model::day_after(to)
            {
                let cut = with_interval(&rec, &after, &end);
                self.now.insert(after, (end, cut));
            }
        }
        self.now.insert(from.to_owned(), (to.to_owned(), record));
    }

    /// The record in effect on `day`.
    fn at(&self, day: &str) -> Option<(&String, &String)> {
        self.now
            .range(..=day.to_owned())
            .next_back()
            .filter(|(_, (end, _))| end.as_str() >= day)
            .map(|(start, (_, rec))| (start, rec))
    }

    /// What changed: keys to remove, then (key, record) to write.
    fn changes(&self, out: &mut StepResults) {
        let r = self.resource as usize + 1;
        for start in self.stored.keys().filter(|k| !self.now.contains_key(*k)) {
            out.unstore.push((r, format!("{}{start}", self.prefix)));
        }
        for (start, value) in &self.now {
            if self.stored.get(start) != Some(value) {
                out.store
                    .push((r, format!("{}{start}", self.prefix), value.1.clone()));
            }
        }
    }
}

/// `{"__v":v,<the item's members>,"stackId":"<tx>","contractorId":"<c>"}`.
pub fn record(item: &str, v: u64, tx: &str, contractor: &str) -> String {
    let members = rawjson::members(item);
    let v = v.to_string();
    let tx = Value::from(tx).to_string();
    let c = Value::from(contractor).to_string();
    let all = std::iter::once(("\"__v\"", v.as_str()))
        .chain(
            members
                .iter()
                .filter(|m| !OWN_FIELDS.contains(&m.name.as_str()))
                .map(|m| (m.raw_name, m.value)),
        )
        .chain([
            ("\"stackId\"", tx.as_str()),
            ("\"contractorId\"", c.as_str()),
        ]);
    rawjson::object(all)
}

/// A stored record without the fields this API owns, and its `__v`.
fn record_item(record: &str) -> (String, u64) {
    let members = rawjson::members(record);
    let v = members
        .iter()
        .find(|m| m.name == "__v")
        .and_then(|m| m.value.parse().ok())
        .unwrap_or(0);
    let item = rawjson::object(
        members
            .iter()
            .filter(|m| !OWN_FIELDS.contains(&m.name.as_str()))
            .map(|m| (m.raw_name, m.value)),
    );
    (item, v)
}

impl TransactionStore {
    pub fn new(pool: RedisPool, keys: Keys, opts: &TransactionOpts) -> Self {
        Self {
            pool,
            keys,
            retention: opts.transaction_retention,
            max_items: opts.transactions_max_items,
            max_open: opts.transactions_max_open,
            max_backlog: opts.transactions_max_backlog,
            policy: opts.transactions_callback_policy.clone(),
            sink: opts.transactions_sink_url.as_ref().map(|u| {
                let dest = destination_of(u);
                (u.clone(), dest)
            }),
        }
    }

    fn tenant(&self, contractor: &str) -> TenantKeys {
        self.keys.tenant(contractor)
    }

    async fn reply<T: serde::de::DeserializeOwned>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
    ) -> Result<T, TxError> {
        let raw: String = inv.invoke_async(&mut self.pool.conn()).await?;
        Ok(reply::parse::<T>(&raw)??)
    }

    /// Spare delivery ids (and record keys) on the tenant's shard.
    fn deliveries(&self, t: &TenantKeys, n: usize) -> Vec<(String, String)> {
        (0..n)
            .map(|_| {
                let id = outbox::new_id(t.shard);
                let rec = self.keys.delivery(t.shard, &id).record;
                (id, rec)
            })
            .collect()
    }

    /// Open a transaction. Its id is Robbyson's: the contractor id, then
    /// the UTC year, zero-based month, day, hour, minute, second and
    /// millisecond, unpadded (an opaque string to clients).
    pub async fn create(
        &self,
        contractor: &str,
        callback: Option<&str>,
    ) -> Result<TxView, TxError> {
        let t = self.tenant(contractor);
        let (url, dest) = match callback {
            Some(u) => (u.to_owned(), destination_of(u)),
            None => (String::new(), String::new()),
        };
        let mut at = now_ms();
        loop {
            let id = super::ids::transaction_id(contractor, at);
            let k = t.tx(&id);
            let r = self
                .reply::<Ok>(
                    scripts::TX_CREATE
                        .key(&k.record)
                        .key(&t.txs)
                        .key(&t.open)
                        .key(&t.queue)
                        .arg(&id)
                        .arg(at)
                        .arg(&url)
                        .arg(&dest)
                        .arg(self.max_open)
                        .arg(self.max_backlog),
                )
                .await;
            match r {
                Err(TxError::Store(StoreError::Reply(code))) if code == "exists" => at += 1,
                Err(e) => return Err(e),
                Result::Ok(_) => return Ok(TxView::created(&id, at)),
            }
        }
    }

    /// Stage a checked batch (`items`: compact texts) in an open transaction
    /// and answer the stored items. With an idempotency key (and the body's
    /// sha-256), a re-sent batch answers what the first one stored.
    pub async fn stage(
        &self,
        contractor: &str,
        id: &str,
        resource: Resource,
        op: Op,
        items: &[&str],
        idempotency: Option<(&str, &str)>,
    ) -> Result<Staged, TxError> {
        let t = self.tenant(contractor);
        let k = t.tx(id);
        if items.is_empty() && idempotency.is_none() {
            // Nothing to store; the transaction must still exist and be open.
            let status: Option<u8> = redis::cmd("HGET")
                .arg(&k.record)
                .arg("status")
                .query_async(&mut self.pool.conn())
                .await?;
            return match status {
                None => Err(TxError::NotFound),
                Some(1) => Result::Ok(Staged {
                    answer: "[]".into(),
                    replay: false,
                }),
                Some(s) => Err(TxError::Committed(s)),
            };
        }
        let body = format!("[{}]", items.join(","));
        let (key, sha) = idempotency.unwrap_or(("", ""));
        let r: StageReply = self
            .reply(
                scripts::TX_STAGE
                    .key(&k.record)
                    .key(&k.chunks)
                    .key(&k.idem)
                    .arg(resource.name())
                    .arg(op.as_str())
                    .arg(&body)
                    .arg(items.len())
                    .arg(key)
                    .arg(sha)
                    .arg(self.max_items),
            )
            .await?;
        let body = if r.replay {
            let chunk: Option<String> = redis::cmd("LINDEX")
                .arg(&k.chunks)
                .arg(r.batch)
                .query_async(&mut self.pool.conn())
                .await?;
            chunk
                .and_then(|c| c.splitn(3, '\t').nth(2).map(str::to_owned))
                .unwrap_or_else(|| "[]".into())
        } else {
            body
        };
        let answer = format!(
            "[{}]",
            rawjson::array_items(&body)
                .into_iter()
                .map(|i| record(i, 0, id, contractor))
                .collect::<Vec<_>>()
                .join(",")
        );
        Result::Ok(Staged {
            answer,
            replay: r.replay,
        })
    }

    /// Commit: answers whether it changed the transaction (a second commit does not).
    pub async fn commit(
        &self,
        contractor: &str,
        id: &str,
        window: &Window,
    ) -> Result<bool, TxError> {
        let t = self.tenant(contractor);
        let k = t.tx(id);
        let d = self.deliveries(&t, 1);
        let r: CommitReply = self
            .reply(
                scripts::TX_COMMIT
                    .key(&k.record)
                    .key(&t.open)
                    .key(&t.queue)
                    .key(&t.stream)
                    .key(&t.deliveries)
                    .key(&d[0].1)
                    .arg(id)
                    .arg(contractor)
                    .arg(window.start.as_deref().unwrap_or_default())
                    .arg(window.end.as_deref().unwrap_or_default())
                    .arg(self.max_backlog)
                    .arg(&self.policy)
                    .arg(&d[0].0)
                    .arg(trace::current_text()),
            )
            .await?;
        Result::Ok(r.modified == 1)
    }

    /// Delete an open transaction and what it staged.
    pub async fn abort(&self, contractor: &str, id: &str) -> Result<(), TxError> {
        let t = self.tenant(contractor);
        let k = t.tx(id);
        self.reply::<Ok>(
            scripts::TX_ABORT
                .key(&k.record)
                .key(&k.chunks)
                .key(&k.idem)
                .key(&t.txs)
                .key(&t.open)
                .arg(id),
        )
        .await?;
        Result::Ok(())
    }

    async fn record_of(&self, k: &TxKeys) -> Result<HashMap<String, String>, TxError> {
        let rec: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&k.record)
            .query_async(&mut self.pool.conn())
            .await?;
        if rec.is_empty() {
            return Err(TxError::NotFound);
        }
        Result::Ok(rec)
    }

    /// The transaction: status, counts, progress and its first errors.
    pub async fn get(&self, contractor: &str, id: &str) -> Result<TxView, TxError> {
        let k = self.tenant(contractor).tx(id);
        let rec = self.record_of(&k).await?;
        let errors: Vec<String> = redis::cmd("LRANGE")
            .arg(&k.errors)
            .arg(0)
            .arg(ERRORS_SHOWN as i64 - 1)
            .query_async(&mut self.pool.conn())
            .await?;
        Result::Ok(TxView::from_record(id, &rec, parse_errors(&errors)))
    }

    /// A page of a transaction's per-item errors, in item order.
    pub async fn errors(
        &self,
        contractor: &str,
        id: &str,
        offset: usize,
        limit: usize,
    ) -> Result<ErrorPage, TxError> {
        let k = self.tenant(contractor).tx(id);
        self.record_of(&k).await?;
        let mut conn = self.pool.conn();
        let total: usize = redis::cmd("LLEN")
            .arg(&k.errors)
            .query_async(&mut conn)
            .await?;
        let raw: Vec<String> = redis::cmd("LRANGE")
            .arg(&k.errors)
            .arg(offset)
            .arg((offset + limit) as i64 - 1)
            .query_async(&mut conn)
            .await?;
        let errors = parse_errors(&raw);
        let next = offset + errors.len();
        Result::Ok(ErrorPage {
            data: errors,
            total,
            next_offset: (next < total).then_some(next),
        })
    }

    /// The tenant's transactions, newest first; `status` filters.
    /// `cursor` is the `next_cursor` of the previous page.
    pub async fn list(
        &self,
        contractor: &str,
        status: Option<u8>,
        cursor: Option<(i64, String)>,
        limit: usize,
    ) -> Result<TxPage, TxError> {
        let t = self.tenant(contractor);
        let mut conn = self.pool.conn();
        let max = cursor
            .as_ref()
            .map_or_else(|| "+inf".to_owned(), |(ms, _)| ms.to_string());
        let entries: Vec<(String, f64)> = redis::cmd("ZREVRANGEBYSCORE")
            .arg(&t.txs)
            .arg(&max)
            .arg("-inf")
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(LIST_BUDGET)
            .query_async(&mut conn)
            .await?;
        // A filtered page may run out of budget before it fills: it then
        // ends, short or empty, with a cursor after the last entry looked
        // at, so a client paging on still reaches every match.
        let budget_spent = entries.len() == LIST_BUDGET;
        let mut looked_at = None;
        let mut data = Vec::new();
        let mut next_cursor = None;
        let mut gone = Vec::new();
        for (id, score) in entries {
            let created = score as i64;
            if let Some((ms, last)) = &cursor
                && created == *ms
                && id.as_str() >= last.as_str()
            {
                continue;
            }
            if data.len() == limit {
                if let Some(v) = data.last().map(|v: &TxView| v.data.id.clone()) {
                    let last_created = data.last().map_or(0, |v: &TxView| v.created);
                    next_cursor = Some(crate::paging::cursor(last_created, &v));
                }
                break;
            }
            looked_at = Some((created, id.clone()));
            let k = t.tx(&id);
            let rec: HashMap<String, String> = redis::cmd("HGETALL")
                .arg(&k.record)
                .query_async(&mut conn)
                .await?;
            if rec.is_empty() {
                gone.push(id);
                continue;
            }
            let view = TxView::from_record(&id, &rec, vec![]);
            if status.is_none_or(|s| s == view.data.status) {
                data.push(view);
            }
        }
        if next_cursor.is_none()
            && budget_spent
            && let Some((created, id)) = &looked_at
        {
            next_cursor = Some(crate::paging::cursor(*created, id));
        }
        if !gone.is_empty() {
            // Expired transactions leave the index lazily.
            let _: i64 = redis::cmd("ZREM")
                .arg(&t.txs)
                .arg(&gone)
                .query_async(&mut conn)
                .await?;
        }
        Result::Ok(TxPage {
            data: data.into_iter().map(|v| v.data).collect(),
            next_cursor,
        })
    }

    /// Consolidated records of `resource` about `identification` (the
    /// collaborator for attributes, hierarchies and results). With `day`:
    /// only those in effect that day (attributes, hierarchies: the
    /// interval holding it; results: dated that day).
    pub async fn records(
        &self,
        contractor: &str,
        resource: Resource,
        identification: &str,
        day: Option<&str>,
    ) -> Result<Vec<String>, TxError> {
        let t = self.tenant(contractor);
        let (store, index) = t.store_of(resource);
        let mut conn = self.pool.conn();
        let keys: Vec<String> = match resource {
            Resource::Collaborators | Resource::Indicators => vec![identification.to_owned()],
            _ => {
                redis::cmd("ZRANGEBYLEX")
                    .arg(index)
                    .arg(format!("[{identification}{SEP}"))
                    .arg(format!("({identification}\u{20}"))
                    .query_async(&mut conn)
                    .await?
            }
        };
        if keys.is_empty() {
            return Result::Ok(vec![]);
        }
        let found: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(store)
            .arg(&keys)
            .query_async(&mut conn)
            .await?;
        let on_day = |r: &String| match (day, resource) {
            (None, _) | (_, Resource::Collaborators | Resource::Indicators) => true,
            (Some(d), Resource::Results) => serde_json::from_str::<Value>(r)
                .ok()
                .and_then(|v| model::period(&v))
                .is_some_and(|(from, _)| from == d),
            (Some(d), _) => {
                interval_of(r).is_some_and(|(from, to)| from.as_str() <= d && d <= to.as_str())
            }
        };
        Result::Ok(found.into_iter().flatten().filter(on_day).collect())
    }

    /// A page of consolidated records of `resource`, in key order, after
    /// the store key `after`. Answers the records and the next `after`.
    pub async fn list_records(
        &self,
        contractor: &str,
        resource: Resource,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, Option<String>), TxError> {
        let t = self.tenant(contractor);
        let (store, index) = t.store_of(resource);
        let mut conn = self.pool.conn();
        let min = after.map_or_else(|| "-".to_owned(), |a| format!("({a}"));
        let keys: Vec<String> = redis::cmd("ZRANGEBYLEX")
            .arg(index)
            .arg(&min)
            .arg("+")
            .arg("LIMIT")
            .arg(0)
            .arg(limit + 1)
            .query_async(&mut conn)
            .await?;
        let more = keys.len() > limit;
        let keys = &keys[..keys.len().min(limit)];
        if keys.is_empty() {
            return Result::Ok((vec![], None));
        }
        let found: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(store)
            .arg(keys)
            .query_async(&mut conn)
            .await?;
        let next = more.then(|| keys[keys.len() - 1].clone());
        Result::Ok((found.into_iter().flatten().collect(), next))
    }

    /// Start the head of a tenant's queue (work `transactions.kick`).
    pub async fn kick(&self, contractor: &str) -> Result<(), TxError> {
        let t = self.tenant(contractor);
        let head: Option<String> = redis::cmd("LINDEX")
            .arg(&t.queue)
            .arg(0)
            .query_async(&mut self.pool.conn())
            .await?;
        let Some(head) = head else {
            return Result::Ok(());
        };
        let k = t.tx(&head);
        self.reply::<Ok>(
            scripts::TX_KICK
                .key(&t.queue)
                .key(&k.record)
                .key(&t.stream)
                .arg(&head)
                .arg(contractor),
        )
        .await?;
        Result::Ok(())
    }

    /// A step kept failing: the transaction ends in 11 ImportError.
    pub async fn fail(&self, contractor: &str, id: &str, reason: &str) -> Result<(), TxError> {
        let t = self.tenant(contractor);
        let k = t.tx(id);
        let d = self.deliveries(&t, 1);
        let r = self
            .reply::<Ok>(
                scripts::TX_FAIL
                    .key(&k.record)
                    .key(&k.chunks)
                    .key(&k.idem)
                    .key(&k.staged)
                    .key(&k.order)
                    .key(&k.valid)
                    .key(&k.errors)
                    .key(&t.queue)
                    .key(&t.stream)
                    .key(&t.deliveries)
                    .key(&d[0].1)
                    .arg(id)
                    .arg(contractor)
                    .arg(ms(self.retention))
                    .arg(&self.policy)
                    .arg(&d[0].0)
                    .arg(reason),
            )
            .await;
        match r {
            Result::Ok(_) | Err(TxError::NotFound) => Result::Ok(()),
            Err(TxError::Store(StoreError::Reply(c))) if c == "finished" => Result::Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One pipeline step of transaction `id` at checkpoint `ckpt`.
    pub async fn step(
        &self,
        contractor: &str,
        id: &str,
        ckpt: u64,
    ) -> Result<StepOutcome, TxError> {
        let t = self.tenant(contractor);
        let k = t.tx(id);
        let rec = match self.record_of(&k).await {
            Result::Ok(r) => r,
            Err(TxError::NotFound) => return Result::Ok(StepOutcome::Stale),
            Err(e) => return Err(e),
        };
        let num = |f: &str| rec.get(f).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let stage = rec.get("stage").cloned().unwrap_or_default();
        if num("ckpt") != ckpt || !matches!(stage.as_str(), "import" | "validate" | "consolidate") {
            return Result::Ok(StepOutcome::Stale);
        }
        let (pos, total) = (num("pos"), num("total"));
        let mut results = StepResults::default();
        let mut advanced = 0u64;
        let mut sink_body = String::new();
        if pos < total {
            match stage.as_str() {
                "import" => {
                    let window = Window {
                        start: rec.get("wstart").filter(|s| !s.is_empty()).cloned(),
                        end: rec.get("wend").filter(|s| !s.is_empty()).cloned(),
                    };
                    self.import(&k, pos, &window, &mut results).await?;
                    advanced = 1;
                }
                "validate" => {
                    let sent: HashSet<Resource> = RESOURCES
                        .into_iter()
                        .filter(|r| num(&format!("r:{}", r.name())) > 0)
                        .collect();
                    advanced = self.validate(&t, &k, pos, &sent, &mut results).await?;
                }
                _ => {
                    advanced = self
                        .consolidate(&t, &k, id, contractor, pos, &mut results)
                        .await?;
                    if self.sink.is_some() && !results.items.is_empty() {
                        sink_body = format!(
                            "{{\"_id\":{},\"contractorId\":{},\"items\":[{}]}}",
                            Value::from(id),
                            Value::from(contractor),
                            results.items.join(",")
                        );
                    }
                }
            }
        }
        let d = self.deliveries(&t, 3);
        let (sink_url, sink_dest) = self.sink.clone().unwrap_or_default();
        let results =
            serde_json::to_string(&results).map_err(|e| StoreError::Encode(e.to_string()))?;
        let mut inv = scripts::TX_STEP.key(&k.record);
        inv.key(&k.staged)
            .key(&k.order)
            .key(&k.valid)
            .key(&k.errors)
            .key(&t.queue)
            .key(&t.stream)
            .key(&t.deliveries);
        for s in &t.store {
            inv.key(s);
        }
        for s in &t.store_index {
            inv.key(s);
        }
        inv.key(&k.chunks).key(&k.idem);
        for (_, rec) in &d {
            inv.key(rec);
        }
        inv.arg(id)
            .arg(contractor)
            .arg(ckpt)
            .arg(&stage)
            .arg(advanced)
            .arg(&results)
            .arg(ms(self.retention))
            .arg(&self.policy)
            .arg(&sink_url)
            .arg(&sink_dest)
            .arg(&sink_body);
        for (did, _) in &d {
            inv.arg(did);
        }
        match self.reply::<StepReply>(&inv).await {
            Result::Ok(r) => Result::Ok(StepOutcome::Applied {
                status: r.status,
                finished: r.finished,
            }),
            Err(TxError::NotFound) => Result::Ok(StepOutcome::Stale),
            Err(TxError::Store(StoreError::Reply(c))) if c == "stale" => {
                Result::Ok(StepOutcome::Stale)
            }
            Err(e) => Err(e),
        }
    }

    /// Import batch `pos`: window, natural keys, last write wins (PUT merges).
    async fn import(
        &self,
        k: &TxKeys,
        pos: u64,
        window: &Window,
        out: &mut StepResults,
    ) -> Result<(), TxError> {
        let mut conn = self.pool.conn();
        let chunk: Option<String> = redis::cmd("LINDEX")
            .arg(&k.chunks)
            .arg(pos)
            .query_async(&mut conn)
            .await?;
        let Some(chunk) = chunk else {
            return Result::Ok(());
        };
        let mut parts = chunk.splitn(3, '\t');
        let (Some(resource), Some(op), Some(items)) = (
            parts.next().and_then(Resource::parse),
            parts.next().and_then(Op::parse),
            parts.next(),
        ) else {
            return Err(StoreError::Reply(format!("unreadable batch {pos}")).into());
        };
        let mut fresh: Vec<(String, Entry)> = Vec::new();
        for (index, item) in rawjson::array_items(items).into_iter().enumerate() {
            let v: Value = serde_json::from_str(item).unwrap_or(Value::Null);
            if window.excludes(&v) {
                out.skipped += 1;
                continue;
            }
            let entry = Entry {
                resource,
                op,
                batch: pos,
                index: index as u64,
                item: item.to_owned(),
            };
            fresh.push((model::natural_key(resource, &v), entry));
        }
        if fresh.is_empty() {
            return Result::Ok(());
        }
        let keys: Vec<&str> = fresh.iter().map(|(k, _)| k.as_str()).collect();
        let before: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(&k.staged)
            .arg(&keys)
            .query_async(&mut conn)
            .await?;
        let mut current: HashMap<String, Entry> = HashMap::new();
        for ((key, _), prev) in fresh.iter().zip(before) {
            if let Some(e) = prev.as_deref().and_then(Entry::decode) {
                current.entry(key.clone()).or_insert(e);
            }
        }
        let mut order = Vec::new();
        for (key, entry) in fresh {
            let next = match current.get(&key) {
                Some(prev) => {
                    out.superseded += 1;
                    match entry.op {
                        Op::Put => Entry {
                            op: prev.op,
                            item: rawjson::merge(&prev.item, &entry.item),
                            ..entry
                        },
                        Op::Post => entry,
                    }
                }
                None => {
                    order.push((pos * 1000 + entry.index, key.clone()));
                    entry
                }
            };
            current.insert(key, next);
        }
        out.order = order;
        out.staged = current.into_iter().map(|(k, e)| (k, e.encode())).collect();
        Result::Ok(())
    }

    /// Validate the page of staged items from rank `pos`.
    async fn validate(
        &self,
        t: &TenantKeys,
        k: &TxKeys,
        pos: u64,
        sent: &HashSet<Resource>,
        out: &mut StepResults,
    ) -> Result<u64, TxError> {
        let mut conn = self.pool.conn();
        let keys: Vec<String> = redis::cmd("ZRANGE")
            .arg(&k.order)
            .arg(pos)
            .arg(pos + PAGE as u64 - 1)
            .query_async(&mut conn)
            .await?;
        if keys.is_empty() {
            return Result::Ok(0);
        }
        let raw: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(&k.staged)
            .arg(&keys)
            .query_async(&mut conn)
            .await?;
        let entries: Vec<(String, Entry)> = keys
            .iter()
            .zip(raw)
            .filter_map(|(key, e)| Some((key.clone(), Entry::decode(e.as_deref()?)?)))
            .collect();
        // Every reference the page needs, looked up in one pipeline each.
        let mut refs: HashSet<(Resource, String)> = HashSet::new();
        let mut puts: Vec<(Resource, String)> = Vec::new();
        // A PUT of an interval updates the record in effect on its first day.
        let mut interval_puts: Vec<(Resource, String, String, String)> = Vec::new();
        for (_, e) in &entries {
            let v = e.value();
            let c = |f: &str| {
                v.get(f)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            match e.resource {
                Resource::Results => {
                    refs.insert((Resource::Collaborators, c("collaboratorIdentification")));
                    refs.insert((Resource::Indicators, c("indicatorId")));
                }
                Resource::Attributes | Resource::Hierarchies => {
                    refs.insert((Resource::Collaborators, c("collaboratorIdentification")));
                    refs.insert((Resource::Collaborators, c("parentIdentification")));
                }
                _ => {}
            }
            if e.op == Op::Put && model::is_interval(e.resource) {
                if let Some((from, _)) = model::period(&v) {
                    interval_puts.push((
                        e.resource,
                        model::store_key(e.resource, &v),
                        model::interval_prefix(e.resource, &v),
                        from,
                    ));
                }
            } else if e.op == Op::Put {
                puts.push((e.resource, model::store_key(e.resource, &v)));
            }
        }
        let refs: Vec<(Resource, String)> = refs.into_iter().collect();
        let mut pipe = redis::pipe();
        for (r, key) in &refs {
            pipe.cmd("HEXISTS")
                .arg(&k.staged)
                .arg(format!("{}{SEP}{key}", r.name()));
            pipe.cmd("HEXISTS").arg(t.store_of(*r).0).arg(key);
        }
        for (r, key) in &puts {
            pipe.cmd("HEXISTS").arg(t.store_of(*r).0).arg(key);
        }
        let found: Vec<bool> = if refs.is_empty() && puts.is_empty() {
            vec![]
        } else {
            pipe.query_async(&mut conn).await?
        };
        let existing: HashSet<(Resource, String)> = refs
            .iter()
            .enumerate()
            .filter(|(i, _)| found[2 * i] || found[2 * i + 1])
            .map(|(_, r)| r.clone())
            .collect();
        let mut known_puts: HashSet<(Resource, String)> = puts
            .iter()
            .enumerate()
            .filter(|(i, _)| found[2 * refs.len() + i])
            .map(|(_, r)| r.clone())
            .collect();
        for (r, key, prefix, from) in interval_puts {
            if self.interval_at(t, r, &prefix, &from).await?.is_some() {
                known_puts.insert((r, key));
            }
        }
        let mut cycles = HashSet::new();
        for (key, e) in &entries {
            if e.resource == Resource::Hierarchies && self.cycle(t, k, e).await? {
                cycles.insert(key.clone());
            }
        }
        struct Page<'a> {
            existing: &'a HashSet<(Resource, String)>,
            known_puts: &'a HashSet<(Resource, String)>,
            sent: &'a HashSet<Resource>,
            cycle: bool,
        }
        impl Lookup for Page<'_> {
            fn exists(&self, r: Resource, key: &str) -> bool {
                self.existing.contains(&(r, key.to_owned()))
            }
            fn sent(&self, r: Resource) -> bool {
                self.sent.contains(&r)
            }
            fn update_of_unknown(&self, e: &Entry) -> bool {
                e.op == Op::Put
                    && !self
                        .known_puts
                        .contains(&(e.resource, model::store_key(e.resource, &e.value())))
            }
            fn cycle(&self, _: &Entry) -> bool {
                self.cycle
            }
        }
        for (key, e) in &entries {
            let page = Page {
                existing: &existing,
                known_puts: &known_puts,
                sent,
                cycle: cycles.contains(key),
            };
            match model::validate(e, &page) {
                None => out.valid.push(key.clone()),
                Some(ItemError { path, message }) => {
                    let v = e.value();
                    let stored = StoredError {
                        resource: e.resource.name(),
                        batch: e.batch,
                        index: e.index,
                        identification: model::identification(e.resource, &v),
                        path,
                        message,
                    };
                    out.errors.push(
                        serde_json::to_string(&stored)
                            .map_err(|e| StoreError::Encode(e.to_string()))?,
                    );
                }
            }
        }
        Result::Ok(keys.len() as u64)
    }

    /// Whether following a hierarchy's parents (same period, this
    /// transaction first, then the store) leads back to it.
    async fn cycle(&self, t: &TenantKeys, k: &TxKeys, e: &Entry) -> Result<bool, TxError> {
        let v = e.value();
        let me = model::identification(Resource::Hierarchies, &v);
        let mut parent = v
            .get("parentIdentification")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut conn = self.pool.conn();
        for _ in 0..CYCLE_DEPTH {
            if parent.is_empty() {
                return Result::Ok(false);
            }
            if parent == me {
                return Result::Ok(true);
            }
            let mut probe = v.clone();
            probe["collaboratorIdentification"] = Value::from(parent.clone());
            let staged: Option<String> = redis::cmd("HGET")
                .arg(&k.staged)
                .arg(model::natural_key(Resource::Hierarchies, &probe))
                .query_async(&mut conn)
                .await?;
            let item = match staged.as_deref().and_then(Entry::decode) {
                Some(e) => Some(e.item),
                // The parent's hierarchy in effect on the item's first day.
                None => {
                    let day = model::period(&v).map(|p| p.0).unwrap_or_default();
                    let prefix = model::interval_prefix(Resource::Hierarchies, &probe);
                    self.interval_at(t, Resource::Hierarchies, &prefix, &day)
                        .await?
                }
            };
            let Some(item) = item else {
                return Result::Ok(false);
            };
            let pv: Value = serde_json::from_str(&item).unwrap_or(Value::Null);
            parent = pv
                .get("parentIdentification")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
        }
        Result::Ok(false)
    }

    /// Consolidate the page of valid items from `pos`: POST replaces the
    /// stored record, PUT merges into it; `__v` counts the versions.
    /// Attributes and hierarchies are date intervals: an item holds over
    /// its `date` (one day) or `startDate..=endDate`, and the records of
    /// its series that it overlaps are cut back to the days outside it
    /// (a PUT merges into the record in effect on its first day).
    async fn consolidate(
        &self,
        t: &TenantKeys,
        k: &TxKeys,
        id: &str,
        contractor: &str,
        pos: u64,
        out: &mut StepResults,
    ) -> Result<u64, TxError> {
        let mut conn = self.pool.conn();
        let keys: Vec<String> = redis::cmd("LRANGE")
            .arg(&k.valid)
            .arg(pos)
            .arg(pos + PAGE as u64 - 1)
            .query_async(&mut conn)
            .await?;
        if keys.is_empty() {
            return Result::Ok(0);
        }
        let raw: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(&k.staged)
            .arg(&keys)
            .query_async(&mut conn)
            .await?;
        let entries: Vec<Entry> = raw
            .into_iter()
            .filter_map(|e| Entry::decode(e.as_deref()?))
            .collect();
        let targets: Vec<(Resource, String)> = entries
            .iter()
            .map(|e| (e.resource, model::store_key(e.resource, &e.value())))
            .collect();
        let mut pipe = redis::pipe();
        for (r, key) in &targets {
            pipe.cmd("HGET").arg(t.store_of(*r).0).arg(key);
        }
        let old: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
        let mut series: HashMap<(Resource, String), Series> = HashMap::new();
        for ((e, (r, key)), old) in entries.iter().zip(targets).zip(old) {
            if model::is_interval(r) {
                let v = e.value();
                let Some((from, to)) = model::period(&v) else {
                    continue;
                };
                let prefix = model::interval_prefix(r, &v);
                let s = match series.entry((r, prefix)) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        let loaded = self.series(t, r, &slot.key().1).await?;
                        slot.insert(loaded)
                    }
                };
                let (item, ver) = match s
                    .at(&from)
                    .map(|(start, rec)| (start.clone(), record_item(rec)))
                {
                    Some((start, (prev, pv))) => {
                        let item = if e.op == Op::Put {
                            rawjson::merge(&prev, &e.item)
                        } else {
                            e.item.clone()
                        };
                        (item, if start == from { pv + 1 } else { 0 })
                    }
                    None => (e.item.clone(), 0),
                };
                let rec = with_interval(&record(&item, ver, id, contractor), &from, &to);
                out.items.push(rec.clone());
                s.put(&from, &to, rec);
                continue;
            }
            let (item, v) = match old.as_deref().map(record_item) {
                Some((prev, v)) if e.op == Op::Put => (rawjson::merge(&prev, &e.item), v + 1),
                Some((_, v)) => (e.item.clone(), v + 1),
                None => (e.item.clone(), 0),
            };
            let rec = record(&item, v, id, contractor);
            out.items.push(rec.clone());
            out.store.push((r as usize + 1, key, rec));
        }
        for s in series.values() {
            s.changes(out);
        }
        out.consolidated = out.items.len() as u64;
        Result::Ok(keys.len() as u64)
    }

    /// The stored intervals of one series.
    async fn series(
        &self,
        t: &TenantKeys,
        resource: Resource,
        prefix: &str,
    ) -> Result<Series, TxError> {
        let (store, index) = t.store_of(resource);
        let mut conn = self.pool.conn();
        // Start dates are digits and '-', all below '~'.
        let keys: Vec<String> = redis::cmd("ZRANGEBYLEX")
            .arg(index)
            .arg(format!("[{prefix}"))
            .arg(format!("({prefix}~"))
            .query_async(&mut conn)
            .await?;
        let mut stored = BTreeMap::new();
        if !keys.is_empty() {
            let records: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(store)
                .arg(&keys)
                .query_async(&mut conn)
                .await?;
            for (key, rec) in keys.iter().zip(records) {
                let Some(rec) = rec else { continue };
                let start = key[prefix.len()..].to_owned();
                let end = interval_of(&rec).map_or_else(|| start.clone(), |(_, e)| e);
                stored.insert(start, (end, rec));
            }
        }
        Result::Ok(Series {
            resource,
            prefix: prefix.to_owned(),
            now: stored.clone(),
            stored,
        })
    }

    /// The stored interval record of a series in effect on `day`: one
    /// lookup of the latest start on or before it, then its end checked.
    async fn interval_at(
        &self,
        t: &TenantKeys,
        resource: Resource,
        prefix: &str,
        day: &str,
    ) -> Result<Option<String>, TxError> {
        let (store, index) = t.store_of(resource);
        let mut conn = self.pool.conn();
        let key: Vec<String> = redis::cmd("ZREVRANGEBYLEX")
            .arg(index)
            .arg(format!("[{prefix}{day}"))
            .arg(format!("[{prefix}"))
            .arg("LIMIT")
            .arg(0)
            .arg(1)
            .query_async(&mut conn)
            .await?;
        let Some(key) = key.first() else {
            return Result::Ok(None);
        };
        let rec: Option<String> = redis::cmd("HGET")
            .arg(store)
            .arg(key)
            .query_async(&mut conn)
            .await?;
        Result::Ok(rec.filter(|r| interval_of(r).is_some_and(|(_, end)| end.as_str() >= day)))
    }
}

fn parse_errors(raw: &[String]) -> Vec<ItemErrorView> {
    raw.iter()
        .filter_map(|e| serde_json::from_str(e).ok())
        .collect()
}

/// A status seen by a client, for "statuses only move forward" checks.
pub fn status_rank(code: u8) -> u8 {
    Status::from_code(code).map_or(0, Status::rank)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_echo_the_item_between_the_own_fields() {
        assert_eq!(
            record(r#"{"name":"A","__v":9,"x":1}"#, 0, "82", "8"),
            r#"{"__v":0,"name":"A","x":1,"stackId":"82","contractorId":"8"}"#
        );
        assert_eq!(
            record("{}", 2, "1", "8"),
            r#"{"__v":2,"stackId":"1","contractorId":"8"}"#
        );
        let (item, v) = record_item(r#"{"__v":3,"a":1,"stackId":"1","contractorId":"8"}"#);
        assert_eq!((item.as_str(), v), (r#"{"a":1}"#, 3));
    }
}
