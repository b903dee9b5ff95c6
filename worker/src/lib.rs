//! Switchyard's worker: consumes the per-shard work streams
//! (`sy:{NN}:work`) with a consumer group, dispatching each entry by its
//! `kind` field to a registered [`Handler`].
//!
//! * Reads use `XREADGROUP … BLOCK` on dedicated connections: one read over
//!   every stream on a single server, one reader per shard on a Redis
//!   Cluster (a read may not span slots); up to `--worker-concurrency`
//!   entries are processed at once, whichever reader read them.
//! * An entry is acknowledged (and deleted) only after its outcome is
//!   recorded — by the handler's own script ([`Outcome::Handled`]) or here.
//!   A permanent failure, an unknown kind, or an entry delivered more than
//!   `--worker-max-deliveries` times goes to the shard's dead letters
//!   (`sy:{NN}:dead`) with the reason, in the same call as the ack.
//! * Entries pending longer than `--worker-visibility` (their worker died or
//!   hung) are reclaimed with `XAUTOCLAIM` by any live worker.
//! * [`Worker::step`] and [`Worker::reclaim`] are single iterations so tests
//!   drive them; [`Worker::run`] loops until shutdown, then stops reading,
//!   lets in-flight entries finish within a timeout and leaves the rest to be
//!   reclaimed.
//! * [`families`] — the registry: each family registers the handlers of
//!   its work kinds; [`owners`] — the platform's owner notices.

pub mod families;
pub mod owners;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use redis::Value;
use switchyard_shared::config::WorkerConfig;
use switchyard_shared::platform::config::WorkerOpts;
use switchyard_shared::platform::probes::{self, Liveness};
use switchyard_shared::platform::redis::{Dedicated, ReadGroup};
use switchyard_shared::platform::scripts;
use switchyard_shared::platform::trace::{self, Origin};
use switchyard_shared::telemetry;
use switchyard_shared::{Keys, Redis as RedisPool, WorkKind};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

/// The consumer group every worker joins.
pub use switchyard_shared::WORK_GROUP as GROUP;
/// Dead letters kept per shard (approximate trim).
pub const DEAD_LETTERS_MAX: u64 = 100_000;

/// One entry of a work stream.
#[derive(Debug, Clone)]
pub struct WorkEntry {
    pub shard: u16,
    pub stream: String,
    pub id: String,
    pub kind: String,
    pub payload: String,
    /// How often the entry has been delivered, this time included.
    pub deliveries: u64,
    /// The request that queued it (its `trace` field), if any.
    pub origin: Option<Origin>,
}

/// What a handler made of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done: acknowledge.
    Done,
    /// The handler recorded the outcome and acknowledged in one script.
    Handled,
    /// Not now: leave it pending; it is reclaimed after the visibility timeout.
    Retry(String),
    /// Never: move it to the dead letters with this reason.
    Dead(String),
}

pub trait Handler: Send + Sync {
    fn handle<'a>(&'a self, entry: &'a WorkEntry) -> BoxFuture<'a, Outcome>;

    /// Dead-letter an entry of this kind that was delivered too often, and
    /// record that on the entity it belongs to, in one call. Answers false
    /// when the handler leaves it to the worker's generic dead-lettering.
    fn dead_letter<'a>(
        &'a self,
        _entry: &'a WorkEntry,
        _reason: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async { Ok(false) })
    }
}

pub struct Worker {
    pool: RedisPool,
    keys: Keys,
    opts: WorkerOpts,
    name: String,
    handlers: HashMap<WorkKind, Arc<dyn Handler>>,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
    /// Entries read but not started yet: XREADGROUP's COUNT is per stream,
    /// so one read can return more than there are free slots. They are in
    /// this consumer's pending list, so a crash leaves them to be reclaimed.
    backlog: std::sync::Mutex<std::collections::VecDeque<WorkEntry>>,
    /// Every shard's work stream, by shard (built once: read on every step).
    streams: Vec<String>,
    /// The main loop and every reader hold a guard while they run.
    liveness: Liveness,
}

impl Worker {
    pub fn new(pool: RedisPool, keys: Keys, opts: WorkerOpts) -> Self {
        let name = opts.worker_name.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
            format!("{}-{}", host.trim(), std::process::id())
        });
        let streams = (0..keys.shards()).map(|s| keys.work_stream(s)).collect();
        Self {
            streams,
            permits: Arc::new(Semaphore::new(opts.worker_concurrency.max(1))),
            pool,
            keys,
            opts,
            name,
            handlers: HashMap::new(),
            tracker: TaskTracker::new(),
            backlog: std::sync::Mutex::default(),
            liveness: Liveness::default(),
        }
    }

    /// Whether [`run`](Self::run)'s loop and readers are running (for
    /// `/healthz` of `--metrics-listen`).
    pub fn liveness(&self) -> Liveness {
        self.liveness.clone()
    }

    /// Register the handler of one kind of work.
    pub fn with_handler(mut self, kind: WorkKind, h: Arc<dyn Handler>) -> Self {
        self.handlers.insert(kind, h);
        self
    }

    fn handler(&self, kind: &str) -> Option<&Arc<dyn Handler>> {
        self.handlers.get(&kind.parse::<WorkKind>().ok()?)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn streams(&self) -> &[String] {
        &self.streams
    }

    /// Create the consumer group on every shard's stream (idempotent).
    pub async fn ensure_groups(&self) -> anyhow::Result<()> {
        let mut conn = self.pool.conn();
        for s in self.streams() {
            let r: redis::RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(s)
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

    /// Wait for at least one free slot, then take as many as are free (≤ 256).
    async fn permits(&self) -> anyhow::Result<Vec<OwnedSemaphorePermit>> {
        let first = self.permits.clone().acquire_owned().await?;
        let mut permits = vec![first];
        while permits.len() < 256 {
            match self.permits.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        Ok(permits)
    }

    fn spawn_all(
        self: &Arc<Self>,
        entries: Vec<WorkEntry>,
        permits: Vec<OwnedSemaphorePermit>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        entries
            .into_iter()
            .zip(permits)
            .map(|(e, permit)| {
                let me = self.clone();
                let span = work_span(&e);
                self.tracker.spawn(async move {
                    let id = e.id.clone();
                    if let Err(err) = me.process(e).instrument(span).await {
                        tracing::warn!(entry = %id, error = %format!("{err:#}"), "processing failed; the entry will be reclaimed");
                    }
                    drop(permit);
                })
            })
            .collect()
    }

    /// XREADGROUP reply: [[stream, [[id, [field, value, …]], …]], …] (RESP2).
    fn parse_read(&self, v: &Value) -> Vec<WorkEntry> {
        let mut out = Vec::new();
        if let Value::Array(streams) = v {
            for s in streams {
                if let Value::Array(pair) = s
                    && let (Some(name), Some(entries)) = (pair.first().and_then(text), pair.get(1))
                {
                    let shard = self
                        .streams
                        .iter()
                        .position(|s| *s == name)
                        .and_then(|i| u16::try_from(i).ok())
                        .unwrap_or(0);
                    out.extend(parse_entries(shard, &name, entries));
                }
            }
        }
        out
    }

    /// Read new entries and process them to the end. Returns how many.
    pub async fn step(self: &Arc<Self>, conn: &mut Dedicated) -> anyhow::Result<usize> {
        let handles = self.read_and_spawn(conn).await?;
        let n = handles.len();
        for h in handles {
            h.await.context("worker task")?;
        }
        Ok(n)
    }

    async fn read_and_spawn(
        self: &Arc<Self>,
        conn: &mut Dedicated,
    ) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
        let permits = self.permits().await?;
        {
            let mut backlog = self
                .backlog
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !backlog.is_empty() {
                let n = permits.len().min(backlog.len());
                let entries: Vec<WorkEntry> = backlog.drain(..n).collect();
                drop(backlog);
                return Ok(self.spawn_all(entries, permits));
            }
        }
        let mut entries = self.read(conn, self.streams(), permits.len()).await?;
        if entries.len() > permits.len() {
            let rest = entries.split_off(permits.len());
            self.backlog
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(rest);
        }
        Ok(self.spawn_all(entries, permits))
    }

    /// One blocking read of `streams` for about `free` entries.
    async fn read(
        &self,
        conn: &mut Dedicated,
        streams: &[String],
        free: usize,
    ) -> anyhow::Result<Vec<WorkEntry>> {
        // COUNT is per stream: ask each shard for its share of the free
        // slots, so a read returns about as many entries as can start now.
        // With many shards that share is small (64 slots over 64 shards is
        // 1), so a busy shard would start one entry per read: ask each for
        // at least 16 (or all free slots); the overflow waits its turn.
        let per_stream = free.div_ceil(streams.len().max(1)).max(free.min(16)).max(1);
        let read = ReadGroup {
            group: GROUP,
            consumer: &self.name,
            count: per_stream,
            block: Some(self.opts.worker_block),
        };
        let reply = conn.read_group(&read, streams).await?;
        Ok(self.parse_read(&reply))
    }

    /// Free processing slots once there is at least one, and room for as
    /// many in `queue` (neither is held: readers must not keep slots while
    /// they block).
    async fn free_slots(&self, queue: &mpsc::Sender<WorkEntry>) -> anyhow::Result<usize> {
        let room = queue.reserve().await?;
        let queue_room = queue.capacity() + 1;
        drop(room);
        let slot = self.permits.acquire().await?;
        let free = self.permits.available_permits() + 1;
        drop(slot);
        Ok(free.min(queue_room).min(256))
    }

    /// One reader: read `streams` into `queue` until `shutdown`, on a
    /// dedicated connection opened again after an error.
    async fn read_loop(
        self: Arc<Self>,
        streams: Vec<String>,
        queue: mpsc::Sender<WorkEntry>,
        shutdown: CancellationToken,
    ) {
        let _alive = self.liveness.enter();
        let timeout = self.opts.worker_block + Duration::from_secs(5);
        let mut conn: Option<Dedicated> = None;
        while !shutdown.is_cancelled() {
            let res = tokio::select! {
                () = shutdown.cancelled() => break,
                r = async {
                    let free = self.free_slots(&queue).await?;
                    let conn = match &mut conn {
                        Some(c) => c,
                        None => conn.insert(
                            self.pool
                                .dedicated(timeout)
                                .await
                                .context("dedicated stream connection")?,
                        ),
                    };
                    self.read(conn, &streams, free).await
                } => r,
            };
            match res {
                Ok(entries) => {
                    for e in entries {
                        if queue.send(e).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    if queue.is_closed() {
                        return;
                    }
                    tracing::warn!(error = %format!("{e:#}"), streams = streams.len(), "worker read failed");
                    conn = None;
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    }
                }
            }
        }
    }

    /// Claim entries idle past the visibility timeout from dead or stuck
    /// consumers, and process them. Returns how many were claimed.
    pub async fn reclaim(self: &Arc<Self>) -> anyhow::Result<usize> {
        let mut total = 0;
        let idle = self.opts.worker_visibility.as_millis() as u64;
        for (shard, s) in self.streams().iter().enumerate() {
            let shard = shard as u16;
            loop {
                let permits = self.permits().await?;
                let mut conn = self.pool.conn();
                let reply: redis::RedisResult<Value> = redis::cmd("XAUTOCLAIM")
                    .arg(s)
                    .arg(GROUP)
                    .arg(&self.name)
                    .arg(idle)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(permits.len())
                    .query_async(&mut conn)
                    .await;
                let reply = match reply {
                    // No stream or group yet on this shard: nothing to reclaim.
                    Err(e) if e.code() == Some("NOGROUP") => break,
                    r => r.with_context(|| format!("XAUTOCLAIM {s}"))?,
                };
                let Value::Array(parts) = reply else { break };
                let Some(claimed) = parts.get(1) else { break };
                let mut entries = parse_entries(shard, s, claimed);
                if entries.is_empty() {
                    break;
                }
                for e in &mut entries {
                    // XAUTOCLAIM counted this delivery; read the count back.
                    let pending: Value = redis::cmd("XPENDING")
                        .arg(s)
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
                let more = entries.len() == permits.len();
                for h in self.spawn_all(entries, permits) {
                    h.await.context("worker task")?;
                }
                if !more {
                    break;
                }
            }
        }
        if total > 0 {
            metrics::counter!("switchyard_work_reclaimed_total").increment(total as u64);
            tracing::info!(total, "reclaimed stalled work entries");
        }
        Ok(total)
    }

    /// Handle one entry (inside its [`work_span`]) and record the outcome.
    /// The handler runs with the entry's origin as the
    /// [current](trace::current) one, naming this span when spans are
    /// exported, so the work and callbacks it queues stay in the trace.
    async fn process(&self, e: WorkEntry) -> anyhow::Result<()> {
        let origin = e.origin.clone().map(|o| Origin {
            traceparent: telemetry::traceparent(&tracing::Span::current()).or(o.traceparent),
            ..o
        });
        let outcome = if e.deliveries > self.opts.worker_max_deliveries {
            Outcome::Dead(format!("delivered {} times", e.deliveries))
        } else {
            match self.handler(&e.kind) {
                Some(h) => trace::scope(origin, h.handle(&e)).await,
                None => Outcome::Dead(format!("no handler for kind {:?}", e.kind)),
            }
        };
        let label = match &outcome {
            Outcome::Handled => "handled",
            Outcome::Done => {
                let mut conn = self.pool.conn();
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
                if let Some(h) = self.handler(&e.kind)
                    && h.dead_letter(&e, reason).await?
                {
                    tracing::warn!(id = %e.id, kind = %e.kind, reason, "work entry dead-lettered");
                    metrics::counter!("switchyard_work_entries_total", "kind" => e.kind.clone(), "outcome" => "dead")
                        .increment(1);
                    return Ok(());
                }
                let mut conn = self.pool.conn();
                let dead = self.keys.dead_letters(e.shard);
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

    /// Loop until `shutdown`: read and process; reclaim every half visibility
    /// timeout. On shutdown, stop claiming and give in-flight entries
    /// `--worker-shutdown-timeout` to finish.
    ///
    /// The streams are read by as many readers as [`Redis::read_sets`]
    /// says (one over every stream on a single server, one per shard on a
    /// cluster), each blocking on its own connection; all of them feed one
    /// queue, started at most `--worker-concurrency` at a time.
    ///
    /// [`Redis::read_sets`]: switchyard_shared::Redis::read_sets
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> anyhow::Result<()> {
        // The consumer groups first, retried: a worker that starts while
        // Redis is failing over or a cluster still forming must not stop
        // on a broken connection (seen: `XGROUP CREATE …: broken pipe`
        // right after a cluster's replicas attached).
        let mut pause = Duration::from_millis(50);
        while let Err(e) = self.ensure_groups().await {
            tracing::warn!(error = %format!("{e:#}"), "creating the consumer groups failed; retrying");
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(1));
        }
        let (queue, mut entries) = mpsc::channel(self.opts.worker_concurrency.max(1));
        let stop_reading = shutdown.child_token();
        let sets = self.pool.read_sets(self.streams());
        let readers = sets.len();
        for set in sets {
            self.tracker.spawn(
                self.clone()
                    .read_loop(set, queue.clone(), stop_reading.clone()),
            );
        }
        drop(queue);
        let reclaim_every = self.opts.worker_visibility / 2;
        let mut reclaim =
            tokio::time::interval_at(tokio::time::Instant::now() + reclaim_every, reclaim_every);
        reclaim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(name = %self.name, readers, kinds = ?self.handlers.keys().collect::<Vec<_>>(), "worker running");
        let alive = self.liveness.enter();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = reclaim.tick() => {
                    let me = self.clone();
                    // In the background, so a long reclaim never stops reading.
                    self.tracker.spawn(async move {
                        if let Err(e) = me.reclaim().await {
                            tracing::warn!(error = %format!("{e:#}"), "reclaim failed");
                        }
                    });
                }
                entry = entries.recv() => {
                    let Some(entry) = entry else { break };
                    let permit = tokio::select! {
                        () = shutdown.cancelled() => break,
                        p = self.permits.clone().acquire_owned() => p?,
                    };
                    drop(self.spawn_all(vec![entry], vec![permit]));
                }
            }
        }
        drop(alive);
        // Entries read but not started stay in this consumer's pending
        // list: reclaimed after the visibility timeout.
        stop_reading.cancel();
        drop(entries);
        self.tracker.close();
        if tokio::time::timeout(self.opts.worker_shutdown_timeout, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("in-flight work did not finish in time; it will be reclaimed");
        }
        self.leave_groups().await;
        tracing::info!(name = %self.name, "worker stopped");
        Ok(())
    }
}

impl Worker {
    /// Remove this consumer from every group where it holds nothing, so
    /// restarts do not pile up consumer names. The check and the removal
    /// are one script call: a worker sharing this name keeps its entries.
    async fn leave_groups(&self) {
        let mut conn = self.pool.conn();
        for s in self.streams() {
            let _: redis::RedisResult<i64> = scripts::CONSUMER_LEAVE
                .key(s)
                .arg(GROUP)
                .arg(&self.name)
                .invoke_async(&mut conn)
                .await;
        }
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn parse_entries(shard: u16, stream: &str, v: &Value) -> Vec<WorkEntry> {
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
        let mut origin = None;
        for kv in fields.chunks(2) {
            match (
                kv.first().and_then(text).as_deref(),
                kv.get(1).and_then(text),
            ) {
                (Some("kind"), Some(v)) => kind = v,
                (Some("payload"), Some(v)) => payload = v,
                (Some("trace"), Some(v)) => origin = Origin::decode(&v),
                _ => {}
            }
        }
        out.push(WorkEntry {
            shard,
            stream: stream.to_owned(),
            id,
            kind,
            payload,
            deliveries: 1,
            origin,
        });
    }
    out
}

/// The span of one work entry: its kind, stream entry id and request id,
/// a child of the request that queued it when the entry carries one.
fn work_span(e: &WorkEntry) -> tracing::Span {
    let span = tracing::info_span!(
        "work",
        otel.name = format!("work {}", e.kind),
        work.kind = %e.kind,
        work.stream_id = %e.id,
        work.shard = e.shard,
        work.deliveries = e.deliveries,
        request_id = tracing::field::Empty,
    );
    if let Some(o) = &e.origin {
        span.record("request_id", o.request_id.as_str());
        if let Some(tp) = &o.traceparent {
            telemetry::set_parent(&span, tp);
        }
    }
    span
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

/// Build the production worker: the platform's owner notices and every
/// family's handlers registered.
pub fn build(redis: RedisPool, keys: Keys, config: &WorkerConfig) -> anyhow::Result<Worker> {
    let ctx = families::Ctx::new(redis.clone(), keys.clone(), config.clone());
    let worker = Worker::new(redis, keys, config.worker.clone())
        .with_handler(
            WorkKind::OwnerFailed,
            Arc::new(owners::OwnerHandler {
                owners: ctx.owners.clone(),
                announce: owners::Announce::Failed,
            }),
        )
        .with_handler(
            WorkKind::OwnerSucceeded,
            Arc::new(owners::OwnerHandler {
                owners: ctx.owners.clone(),
                announce: owners::Announce::Succeeded,
            }),
        );
    families::register_all(worker, &ctx)
}

/// Run the worker role until `shutdown`, with its probe server when
/// `--metrics-listen` is given.
pub async fn run(config: &WorkerConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (redis, keys) = switchyard_shared::connect(&config.redis).await?;
    let worker = Arc::new(build(redis.clone(), keys, config)?);
    if let Some(addr) = config.metrics.metrics_listen {
        probes::spawn(addr, "worker", redis, worker.liveness(), shutdown.clone()).await?;
    }
    worker.run(shutdown).await
}
