//! Switchyard's worker: consumes the per-shard work streams
//! (`sy:{NN}:work`) with a consumer group, dispatching each entry by its
//! `kind` field to a registered [`Handler`].
//!
//! * Reads use `XREADGROUP … BLOCK` on a dedicated connection.
//! * An entry is acknowledged (and deleted) only after its outcome is
//!   recorded; a handler that fails permanently, an unknown kind, or an
//!   entry delivered more than `--worker-max-deliveries` times goes to the
//!   shard's dead letters (`sy:{NN}:dead`) with the reason, in the same call.
//! * Entries pending longer than `--worker-visibility` (their worker died or
//!   hung) are reclaimed with `XAUTOCLAIM` by any live worker.
//! * [`Worker::step`] and [`Worker::reclaim`] are single iterations so tests
//!   can drive them; [`Worker::run`] loops until shutdown, finishing the
//!   entry in hand and leaving the rest to be reclaimed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use redis::Value;
use redis::aio::MultiplexedConnection;
use switchyard_shared::config::{RedisOpts, WorkerOpts};
use switchyard_shared::{Keys, RedisPool, scripts};
use tokio_util::sync::CancellationToken;

/// The consumer group every worker joins.
pub const GROUP: &str = "switchyard";
/// Dead letters kept per shard (approximate trim).
pub const DEAD_LETTERS_MAX: u64 = 100_000;

/// One entry of a work stream.
#[derive(Debug, Clone)]
pub struct WorkEntry {
    pub stream: String,
    pub id: String,
    pub kind: String,
    pub payload: String,
    /// How often the entry has been delivered, this time included.
    pub deliveries: u64,
}

/// What a handler made of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done: acknowledge.
    Done,
    /// Not now: leave it pending; it is reclaimed after the visibility timeout.
    Retry(String),
    /// Never: move it to the dead letters with this reason.
    Dead(String),
}

pub trait Handler: Send + Sync {
    fn handle<'a>(&'a self, entry: &'a WorkEntry) -> BoxFuture<'a, Outcome>;
}

pub struct Worker {
    pool: RedisPool,
    keys: Keys,
    opts: WorkerOpts,
    name: String,
    handlers: HashMap<String, Arc<dyn Handler>>,
}

impl Worker {
    pub fn new(pool: RedisPool, keys: Keys, opts: WorkerOpts) -> Self {
        let name = opts.worker_name.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        });
        Self {
            pool,
            keys,
            opts,
            name,
            handlers: HashMap::new(),
        }
    }

    /// Register the handler of one kind of work.
    pub fn with_handler(mut self, kind: &str, h: Arc<dyn Handler>) -> Self {
        self.handlers.insert(kind.to_owned(), h);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn streams(&self) -> Vec<String> {
        (0..self.keys.shards())
            .map(|s| self.keys.work_stream(s))
            .collect()
    }

    /// Create the consumer group on every shard's stream (idempotent).
    pub async fn ensure_groups(&self) -> anyhow::Result<()> {
        let mut conn = self.pool.get().await?;
        for s in self.streams() {
            let r: redis::RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&s)
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut conn)
                .await;
            if let Err(e) = r
                && e.code() != Some("BUSYGROUP")
            {
                return Err(e).with_context(|| format!("XGROUP CREATE {s}"));
            }
        }
        Ok(())
    }

    /// Read new entries (blocking up to `--worker-block`) and process them.
    /// Returns how many were processed.
    pub async fn step(&self, conn: &mut MultiplexedConnection) -> anyhow::Result<usize> {
        let streams = self.streams();
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&self.name)
            .arg("COUNT")
            .arg(64)
            .arg("BLOCK")
            .arg(self.opts.worker_block.as_millis() as u64)
            .arg("STREAMS")
            .arg(&streams);
        for _ in &streams {
            cmd.arg(">");
        }
        let reply: Value = cmd.query_async(conn).await.context("XREADGROUP")?;
        let entries = parse_read(&reply);
        let n = entries.len();
        for e in entries {
            self.process(e).await?;
        }
        Ok(n)
    }

    /// Claim entries idle past the visibility timeout from dead or stuck
    /// consumers, and process them. Returns how many were claimed.
    pub async fn reclaim(&self) -> anyhow::Result<usize> {
        let mut total = 0;
        let idle = self.opts.worker_visibility.as_millis() as u64;
        for s in self.streams() {
            let mut conn = self.pool.get().await?;
            let reply: Value = redis::cmd("XAUTOCLAIM")
                .arg(&s)
                .arg(GROUP)
                .arg(&self.name)
                .arg(idle)
                .arg("0-0")
                .arg("COUNT")
                .arg(64)
                .query_async(&mut conn)
                .await
                .with_context(|| format!("XAUTOCLAIM {s}"))?;
            let Value::Array(parts) = reply else { continue };
            let Some(claimed) = parts.get(1) else {
                continue;
            };
            let mut entries = parse_entries(&s, claimed);
            for e in &mut entries {
                // XAUTOCLAIM counted this delivery; read the count back.
                let pending: Value = redis::cmd("XPENDING")
                    .arg(&s)
                    .arg(GROUP)
                    .arg(&e.id)
                    .arg(&e.id)
                    .arg(1)
                    .query_async(&mut conn)
                    .await?;
                e.deliveries = pending_count(&pending).unwrap_or(1);
            }
            drop(conn);
            total += entries.len();
            for e in entries {
                self.process(e).await?;
            }
        }
        Ok(total)
    }

    async fn process(&self, e: WorkEntry) -> anyhow::Result<()> {
        let outcome = if e.deliveries > self.opts.worker_max_deliveries {
            Outcome::Dead(format!("delivered {} times", e.deliveries))
        } else {
            match self.handlers.get(&e.kind) {
                Some(h) => h.handle(&e).await,
                None => Outcome::Dead(format!("no handler for kind {:?}", e.kind)),
            }
        };
        let mut conn = self.pool.get().await?;
        let label = match &outcome {
            Outcome::Done => {
                let _: i64 = scripts::WORK_ACK
                    .key(&e.stream)
                    .arg(GROUP)
                    .arg(&e.id)
                    .invoke_async(&mut conn)
                    .await?;
                "done"
            }
            Outcome::Retry(why) => {
                tracing::debug!(id = %e.id, kind = %e.kind, why, "left pending for retry");
                "retry"
            }
            Outcome::Dead(reason) => {
                let dead = e.stream.replace(":work", ":dead");
                let _: i64 = scripts::WORK_DEAD
                    .key(&e.stream)
                    .key(&dead)
                    .arg(GROUP)
                    .arg(&e.id)
                    .arg(&e.kind)
                    .arg(&e.payload)
                    .arg(reason)
                    .arg(e.deliveries)
                    .arg(DEAD_LETTERS_MAX)
                    .invoke_async(&mut conn)
                    .await?;
                tracing::warn!(id = %e.id, kind = %e.kind, reason, "work entry dead-lettered");
                "dead"
            }
        };
        metrics::counter!("switchyard_work_entries_total", "kind" => e.kind.clone(), "outcome" => label)
            .increment(1);
        Ok(())
    }

    /// Loop until `shutdown`: read, process, and reclaim every half visibility timeout.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.ensure_groups().await?;
        let timeout = self.opts.worker_block + Duration::from_secs(5);
        let mut conn = self
            .pool
            .dedicated(timeout)
            .await
            .context("dedicated stream connection")?;
        let mut last_reclaim = tokio::time::Instant::now();
        let reclaim_every = self.opts.worker_visibility / 2;
        tracing::info!(name = %self.name, kinds = ?self.handlers.keys().collect::<Vec<_>>(), "worker running");
        while !shutdown.is_cancelled() {
            let res = tokio::select! {
                () = shutdown.cancelled() => break,
                r = self.step(&mut conn) => r,
            };
            if let Err(e) = res {
                tracing::warn!(error = %format!("{e:#}"), "worker step failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                if let Ok(c) = self.pool.dedicated(timeout).await {
                    conn = c;
                }
            }
            if last_reclaim.elapsed() >= reclaim_every {
                last_reclaim = tokio::time::Instant::now();
                if let Err(e) = self.reclaim().await {
                    tracing::warn!(error = %format!("{e:#}"), "reclaim failed");
                }
            }
        }
        tracing::info!(name = %self.name, "worker stopped");
        Ok(())
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// XREADGROUP reply: [[stream, [[id, [field, value, …]], …]], …] (RESP2).
fn parse_read(v: &Value) -> Vec<WorkEntry> {
    let mut out = Vec::new();
    if let Value::Array(streams) = v {
        for s in streams {
            if let Value::Array(pair) = s
                && let (Some(name), Some(entries)) = (pair.first().and_then(text), pair.get(1))
            {
                out.extend(parse_entries(&name, entries));
            }
        }
    }
    out
}

fn parse_entries(stream: &str, v: &Value) -> Vec<WorkEntry> {
    let mut out = Vec::new();
    let Value::Array(entries) = v else { return out };
    for e in entries {
        let Value::Array(pair) = e else { continue };
        let (Some(id), Some(Value::Array(fields))) = (pair.first().and_then(text), pair.get(1))
        else {
            continue;
        };
        let mut kind = String::new();
        let mut payload = String::new();
        for kv in fields.chunks(2) {
            match (
                kv.first().and_then(text).as_deref(),
                kv.get(1).and_then(text),
            ) {
                (Some("kind"), Some(v)) => kind = v,
                (Some("payload"), Some(v)) => payload = v,
                _ => {}
            }
        }
        out.push(WorkEntry {
            stream: stream.to_owned(),
            id,
            kind,
            payload,
            deliveries: 1,
        });
    }
    out
}

/// XPENDING extended reply: [[id, consumer, idle, count]].
fn pending_count(v: &Value) -> Option<u64> {
    let Value::Array(rows) = v else { return None };
    let Value::Array(row) = rows.first()? else {
        return None;
    };
    match row.get(3)? {
        Value::Int(n) => u64::try_from(*n).ok(),
        _ => None,
    }
}

/// Run the worker role until `shutdown`.
pub async fn run(
    redis: &RedisOpts,
    opts: &WorkerOpts,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let url = redis
        .redis_url
        .as_deref()
        .context("--redis-url is required")?;
    let pool = RedisPool::new(url, redis.redis_pool_size)?;
    pool.wait_ready(Duration::from_secs(30)).await?;
    let keys = Keys::new(&redis.key_prefix, redis.shards);
    Worker::new(pool, keys, opts.clone()).run(shutdown).await
}
