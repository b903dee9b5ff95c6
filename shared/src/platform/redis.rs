//! Redis connections, on one server or on a Redis Cluster.
//!
//! Requests share **one** multiplexed connection per process ([`Conn`]):
//! concurrent calls are pipelined on it automatically and it follows the
//! server by itself. On a single server that is redis-rs's
//! [`ConnectionManager`] (reconnects after a restart or failover); on a
//! Redis Cluster it is redis-rs's cluster connection, which routes every
//! command by its first key's slot, follows `MOVED`/`ASK`, retries
//! `TRYAGAIN` and refreshes its slot map after errors. Both are behind the
//! one [`Conn`] type, so no store knows which mode it runs in. Measured on
//! this project's 2-core machine, 256 concurrent EVALSHA callers did
//! 188–218k calls/s through one multiplexed connection against 35–44k/s
//! through a deadpool of 16 (which sends UNWATCH+PING on every checkout),
//! so no pool is used for requests.
//!
//! Scripts are sent as EVALSHA by [`redis::Script`]; one that meets
//! `NOSCRIPT` is sent again by [`Conn`] as `EVAL` with its source (which
//! also caches it on that server), so a promoted replica (the script cache
//! is not replicated) or a `SCRIPT FLUSH`, even repeated, costs one extra
//! round trip, never a failed call.
//!
//! Blocking reads (`XREADGROUP … BLOCK`) must never run on the shared
//! connection — they would stall every request behind them (measured on a
//! cluster: 1.9 s for a GET behind a blocked read) — so they go through a
//! [`Dedicated`] connection with a response timeout longer than the block.
//! A read may not span slots on a cluster (`CROSSSLOT`), so
//! [`Redis::read_sets`] says how a set of streams splits into reads: one
//! read over all of them on a single server, one per slot on a cluster,
//! each on its own connection to the master that owns the slot.
//!
//! Replication is asynchronous unless `--redis-wait-replicas N` is set:
//! then every script call is followed by `WAIT N timeout` on the server
//! that ran it ([`WaitReplicas`]), so what a caller was told is done
//! survives a failover.
//!
//! Timeouts are explicit: a connect timeout and a response timeout
//! (`--redis-connect-timeout`, `--redis-response-timeout`); on a cluster,
//! retries wait 20 ms to 1 s (redis-rs's default starts at 1.28 s). The
//! response timeout must exceed the longest script, or a caller gives up
//! on a call that still runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisFuture, Value};

use super::scripts::{self, Named};
use super::shards::key_slot;

/// The connection every store calls through (cheap to clone: a handle),
/// the same type on a single server and on a cluster.
#[derive(Clone)]
pub struct Conn {
    link: Link,
    /// `WAIT` for replicas after each script call (`--redis-wait-replicas`).
    wait: Option<Arc<Wait>>,
}

#[derive(Clone)]
enum Link {
    /// One server: a reconnecting multiplexed connection.
    Single(ConnectionManager),
    /// A Redis Cluster: routes each command to its key's slot owner.
    Cluster(Arc<ClusterShared>),
}

/// Synchronous replication of script calls: after a script call answers,
/// `WAIT replicas timeout` on the same server connection, so a write the
/// caller sees acknowledged is on `replicas` replicas too and survives the
/// master's loss (a replica promoted by a failover has it). Redis
/// replication is asynchronous otherwise: a master killed the moment
/// after answering loses the last writes (seen in the failover test:
/// machine transitions answered "applied" and gone after the promotion).
///
/// A `WAIT` that comes back short (no replica attached, e.g. a master
/// whose replica was just promoted away) does not fail the call — the
/// write is applied — but is logged, counted
/// (`switchyard_redis_wait_short_total`) and not tried again on that slot
/// for [`WAIT_BACKOFF`], so a shard without a replica is not slowed by a
/// timeout per write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitReplicas {
    pub replicas: u32,
    pub timeout: Duration,
}

/// How long a slot whose `WAIT` came back short is not waited on.
const WAIT_BACKOFF: Duration = Duration::from_secs(1);

struct Wait {
    want: WaitReplicas,
    /// Slot → until when its waits are skipped.
    skip: std::sync::Mutex<HashMap<u16, std::time::Instant>>,
}

impl Wait {
    fn skipped(&self, slot: u16) -> bool {
        let mut skip = self.skip.lock().expect("not poisoned");
        match skip.get(&slot) {
            Some(until) if *until > std::time::Instant::now() => true,
            Some(_) => {
                skip.remove(&slot);
                false
            }
            None => false,
        }
    }

    fn came_back(&self, slot: u16, reply: &Value) {
        let acked = match reply {
            Value::Int(n) => u32::try_from(*n).unwrap_or(0),
            _ => 0,
        };
        if acked < self.want.replicas {
            metrics::counter!("switchyard_redis_wait_short_total").increment(1);
            tracing::warn!(
                slot,
                acked,
                want = self.want.replicas,
                "WAIT came back short: a write is on fewer replicas than --redis-wait-replicas; not waiting on this slot for 1 s"
            );
            self.skip
                .lock()
                .expect("not poisoned")
                .insert(slot, std::time::Instant::now() + WAIT_BACKOFF);
        }
    }
}

/// True for a plain (non-atomic) pipeline whose commands' keys (taken as
/// each command's first argument) fall in more than one slot. An atomic
/// pipeline (`MULTI`/`EXEC`) is never split: it must name one slot.
fn spans_slots(pipeline: &redis::Pipeline) -> bool {
    if pipeline.is_transaction() {
        return false;
    }
    let mut first = None;
    for cmd in pipeline.cmd_iter() {
        let key = match cmd.args_iter().nth(1) {
            Some(redis::Arg::Simple(k)) => key_slot(&String::from_utf8_lossy(k)),
            _ => continue,
        };
        match first {
            None => first = Some(key),
            Some(slot) if slot != key => return true,
            Some(_) => {}
        }
    }
    false
}

/// The slot of a script call's first key (`EVALSHA sha numkeys key …`,
/// `EVAL`, `FCALL`), `None` for any other command or a call without keys.
fn script_slot(cmd: &Cmd) -> Option<u16> {
    let mut args = cmd.args_iter().map(|a| match a {
        redis::Arg::Simple(b) => b,
        _ => &[][..],
    });
    let name = args.next()?;
    let script = [&b"EVALSHA"[..], b"EVAL", b"FCALL"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n));
    if !script {
        return None;
    }
    args.next()?;
    let numkeys: usize = std::str::from_utf8(args.next()?).ok()?.parse().ok()?;
    if numkeys == 0 {
        return None;
    }
    Some(key_slot(&String::from_utf8_lossy(args.next()?)))
}

/// Calls in a row that time out before the cluster connection is rebuilt
/// from the seeds.
const CLUSTER_REBUILD_AFTER: u32 = 3;

/// The shared cluster connection, rebuilt from the seeds when it stops
/// answering: redis-rs 1.8's cluster connection can stall for good after a
/// master is killed (every call times out, before and after the replica's
/// promotion; seen in `tests/e2e/cluster/failover.rs`).
pub struct ClusterShared {
    client: redis::cluster::ClusterClient,
    current: std::sync::RwLock<ClusterConnection>,
    timeouts_in_a_row: AtomicU32,
    rebuilding: AtomicBool,
}

impl ClusterShared {
    fn current(&self) -> ClusterConnection {
        self.current.read().expect("not poisoned").clone()
    }

    /// Counts calls that timed out in a row; past the bound, one task
    /// builds a new connection and swaps it in.
    fn observe<T>(self: &Arc<Self>, r: &redis::RedisResult<T>) {
        match r {
            Err(e) if e.is_timeout() || e.is_connection_dropped() => {
                let n = self.timeouts_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
                if n >= CLUSTER_REBUILD_AFTER && !self.rebuilding.swap(true, Ordering::AcqRel) {
                    let shared = self.clone();
                    tokio::spawn(async move {
                        match shared.client.get_async_connection().await {
                            Ok(c) => {
                                *shared.current.write().expect("not poisoned") = c;
                                shared.timeouts_in_a_row.store(0, Ordering::Relaxed);
                                tracing::warn!(
                                    "the Redis Cluster connection stopped answering; rebuilt it from the seeds"
                                );
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "rebuilding the Redis Cluster connection failed; will retry");
                            }
                        }
                        shared.rebuilding.store(false, Ordering::Release);
                    });
                }
            }
            _ => self.timeouts_in_a_row.store(0, Ordering::Relaxed),
        }
    }
}

impl Conn {
    fn send<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.link {
            Link::Single(c) => c.req_packed_command(cmd),
            Link::Cluster(shared) => {
                let shared = shared.clone();
                Box::pin(async move {
                    let mut c = shared.current();
                    let r = c.req_packed_command(cmd).await;
                    shared.observe(&r);
                    r
                })
            }
        }
    }

    /// `WAIT` on the server that ran a script on `slot` (the same
    /// connection, so it covers the script's writes). An error (the
    /// master gone before it answered) is the call's: its writes may be
    /// lost, so it must not be reported done.
    async fn wait_replicas(&mut self, wait: &Wait, slot: u16) -> redis::RedisResult<()> {
        if wait.skipped(slot) {
            return Ok(());
        }
        let ms = u64::try_from(wait.want.timeout.as_millis()).unwrap_or(u64::MAX);
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(wait.want.replicas).arg(ms);
        let reply = match &mut self.link {
            Link::Single(c) => c.req_packed_command(&cmd).await,
            Link::Cluster(shared) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                    Route::new(slot, SlotAddr::Master),
                ));
                shared.current().route_command(cmd, route).await
            }
        };
        match reply {
            Ok(Value::ServerError(e)) => Err(e.into()),
            Err(e) => Err(e),
            Ok(v) => {
                wait.came_back(slot, &v);
                Ok(())
            }
        }
    }
}

impl ConnectionLike for Conn {
    /// One command; an `EVALSHA` that meets `NOSCRIPT` is sent again as
    /// `EVAL` with the script's source ([`scripts::as_eval`]), so a flushed
    /// script cache never fails a call.
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let reply = self.send(cmd).await;
            // A server error arrives as a value or as an error, depending on
            // the connection.
            let noscript = match &reply {
                Ok(Value::ServerError(e)) => e.kind() == Some(redis::ServerErrorKind::NoScript),
                Err(e) => e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript),
                Ok(_) => false,
            };
            let reply = match noscript.then(|| scripts::as_eval(cmd)).flatten() {
                Some(eval) => self.send(&eval).await,
                None => reply,
            };
            if let (Some(wait), Ok(v)) = (self.wait.clone(), &reply)
                && !matches!(v, Value::ServerError(_))
                && let Some(slot) = script_slot(cmd)
                && let Err(e) = self.wait_replicas(&wait, slot).await
            {
                return Err(e);
            }
            reply
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.link {
            Link::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Link::Cluster(shared) => {
                let shared = shared.clone();
                Box::pin(async move {
                    let mut c = shared.current();
                    let r = if spans_slots(pipeline) {
                        // redis-rs sends a pipeline to one node and refuses
                        // one whose commands name several slots; a plain
                        // (non-atomic) pipeline has no promise beyond
                        // order of replies, so its commands go one by one,
                        // all at once, each to its own slot's master.
                        let calls = pipeline.cmd_iter().map(|cmd| {
                            let mut c = c.clone();
                            async move { c.req_packed_command(cmd).await }
                        });
                        futures::future::join_all(calls)
                            .await
                            .into_iter()
                            .collect::<redis::RedisResult<Vec<Value>>>()
                    } else {
                        c.req_packed_commands(pipeline, offset, count).await
                    };
                    shared.observe(&r);
                    r
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match &self.link {
            Link::Single(c) => c.get_db(),
            Link::Cluster(shared) => shared.current().get_db(),
        }
    }
}

/// Explicit connection timeouts.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    pub response: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            response: Duration::from_secs(10),
        }
    }
}

/// Whether the server is a cluster: asked (`INFO cluster`) or forced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Ask the first seed: `cluster_enabled:1` means a cluster.
    #[default]
    Detect,
    /// A cluster, whatever the first seed says.
    Cluster,
}

/// Retries of a cluster call (MOVED, ASK, TRYAGAIN, a node down during a
/// failover), waiting `CLUSTER_RETRY_WAIT_MS` between attempts.
const CLUSTER_RETRIES: u32 = 16;
/// Shortest and longest wait between retries of a cluster call, in ms.
const CLUSTER_RETRY_WAIT_MS: (u64, u64) = (20, 1_000);

/// One process's Redis: the shared connection, the seeds for dedicated
/// connections, and the scripts that must be loaded for it to be ready.
#[derive(Clone)]
pub struct Redis {
    conn: Conn,
    url: Arc<str>,
    seeds: Arc<[ConnectionInfo]>,
    timeouts: Timeouts,
    scripts: Arc<[Named]>,
}

/// The comma-separated seed URLs of `--redis-url`.
fn seeds(url: &str) -> anyhow::Result<Vec<ConnectionInfo>> {
    let seeds = url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.into_connection_info()
                .with_context(|| format!("invalid Redis URL {s:?}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!seeds.is_empty(), "no Redis URL in {url:?}");
    Ok(seeds)
}

/// A plain multiplexed connection to one node.
async fn node_conn(
    info: ConnectionInfo,
    connect: Duration,
    response: Duration,
) -> redis::RedisResult<MultiplexedConnection> {
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(connect))
        .set_response_timeout(Some(response));
    redis::Client::open(info)?
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
}

/// `seed` without the `CLIENT SETINFO` redis-rs sends on connecting.
fn without_setinfo(seed: &ConnectionInfo) -> ConnectionInfo {
    let settings = seed.redis_settings().clone().set_skip_set_lib_name();
    seed.clone().set_redis_settings(settings)
}

/// What the first seed says of itself.
struct Probe {
    /// `cluster_enabled:1`.
    cluster: bool,
    /// Redis 7.2 or newer, which knows `CLIENT SETINFO` (older servers
    /// answer it with an error, counted in `errorstat_ERR` once per
    /// connection, so it is not sent to them).
    setinfo: bool,
}

/// `INFO` of the server behind `seed`.
async fn probe(seed: &ConnectionInfo, timeouts: Timeouts) -> anyhow::Result<Probe> {
    let mut conn = node_conn(without_setinfo(seed), timeouts.connect, timeouts.response).await?;
    let info: String = redis::cmd("INFO")
        .query_async(&mut conn)
        .await
        .context("INFO")?;
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
    };
    let version: Vec<u32> = field("redis_version")
        .unwrap_or("0")
        .split('.')
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    Ok(Probe {
        cluster: field("cluster_enabled") == Some("1"),
        setinfo: version.as_slice() >= [7, 2].as_slice(),
    })
}

/// Settings a cluster cannot take, refused with a clear error.
fn check_cluster_seeds(seeds: &[ConnectionInfo]) -> anyhow::Result<()> {
    for s in seeds {
        anyhow::ensure!(
            !matches!(s.addr(), ConnectionAddr::Unix(_)),
            "a Redis Cluster is reached over TCP (nodes announce host:port), not {}",
            s.addr()
        );
        anyhow::ensure!(
            s.redis_settings().db() == 0,
            "a Redis Cluster has only database 0, the URL names database {}",
            s.redis_settings().db()
        );
    }
    Ok(())
}

impl Redis {
    /// Connect to `url`: one URL (`redis://…`, `rediss://…` or
    /// `unix:///path/to/socket`) or comma-separated cluster seeds; a
    /// cluster is detected with `INFO`. `scripts` are checked (and
    /// loaded if missing) by [`Redis::ensure_ready`].
    pub async fn connect(
        url: &str,
        timeouts: Timeouts,
        scripts: Vec<Named>,
    ) -> anyhow::Result<Self> {
        Self::connect_as(url, Mode::Detect, timeouts, scripts).await
    }

    /// [`Redis::connect`], with the mode given or detected.
    pub async fn connect_as(
        url: &str,
        mode: Mode,
        timeouts: Timeouts,
        scripts: Vec<Named>,
    ) -> anyhow::Result<Self> {
        let mut seeds = seeds(url)?;
        let probe = probe(&seeds[0], timeouts)
            .await
            .with_context(|| format!("connecting to Redis at {url}"))?;
        if !probe.setinfo {
            seeds = seeds.iter().map(without_setinfo).collect();
        }
        let cluster = match mode {
            Mode::Cluster => true,
            Mode::Detect => probe.cluster,
        };
        let link = if cluster {
            check_cluster_seeds(&seeds)?;
            let client = redis::cluster::ClusterClientBuilder::new(seeds.clone())
                .connection_timeout(timeouts.connect)
                .response_timeout(timeouts.response)
                .retries(CLUSTER_RETRIES)
                .min_retry_wait(CLUSTER_RETRY_WAIT_MS.0)
                .max_retry_wait(CLUSTER_RETRY_WAIT_MS.1)
                .build()
                .with_context(|| format!("invalid Redis Cluster seeds {url:?}"))?;
            let first = client
                .get_async_connection()
                .await
                .with_context(|| format!("connecting to Redis Cluster at {url}"))?;
            Link::Cluster(Arc::new(ClusterShared {
                client,
                current: std::sync::RwLock::new(first),
                timeouts_in_a_row: AtomicU32::new(0),
                rebuilding: AtomicBool::new(false),
            }))
        } else {
            anyhow::ensure!(
                seeds.len() == 1,
                "several Redis URLs given, but {} is not a Redis Cluster",
                seeds[0].addr()
            );
            let client = redis::Client::open(seeds[0].clone())?;
            let cfg = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeouts.connect))
                .set_response_timeout(Some(timeouts.response));
            Link::Single(
                ConnectionManager::new_with_config(client, cfg)
                    .await
                    .with_context(|| format!("connecting to Redis at {url}"))?,
            )
        };
        Ok(Self {
            conn: Conn { link, wait: None },
            url: url.into(),
            seeds: seeds.into(),
            timeouts,
            scripts: scripts.into(),
        })
    }

    /// [`Redis::connect`], retried until Redis answers and the scripts are
    /// loaded, for at most `limit`.
    pub async fn connect_ready(
        url: &str,
        timeouts: Timeouts,
        scripts: Vec<Named>,
        limit: Duration,
    ) -> anyhow::Result<Self> {
        Self::connect_ready_as(url, Mode::Detect, timeouts, scripts, limit).await
    }

    /// [`Redis::connect_ready`], with the mode given or detected.
    pub async fn connect_ready_as(
        url: &str,
        mode: Mode,
        timeouts: Timeouts,
        scripts: Vec<Named>,
        limit: Duration,
    ) -> anyhow::Result<Self> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // One attempt is bounded too: the connection manager retries
            // its first connect by itself.
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let one = async {
                let redis = Self::connect_as(url, mode, timeouts, scripts.clone()).await?;
                redis.ensure_ready().await.map(|()| redis)
            };
            let attempt = match tokio::time::timeout(left.max(timeouts.connect), one).await {
                Ok(res) => res,
                Err(_) => Err(anyhow::anyhow!("connecting took longer than {limit:?}")),
            };
            match attempt {
                Ok(redis) => return Ok(redis),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(e.context(format!("Redis at {url} not ready")));
                }
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "Redis not ready yet");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }

    /// The `--redis-url` this handle was made from.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The shared connection (a cheap handle; never blocks; reconnects by
    /// itself, and a failed call reports its own error).
    pub fn conn(&self) -> Conn {
        self.conn.clone()
    }

    /// Script calls on [`Redis::conn`] wait for `want.replicas` replicas
    /// ([`WaitReplicas`]); `None` or 0 replicas: no waiting.
    #[must_use]
    pub fn with_wait(mut self, want: Option<WaitReplicas>) -> Self {
        self.conn.wait = want.filter(|w| w.replicas > 0).map(|want| {
            Arc::new(Wait {
                want,
                skip: std::sync::Mutex::new(HashMap::new()),
            })
        });
        self
    }

    /// Connections of their own, for blocking reads (XREADGROUP BLOCK)
    /// that must not hold up the shared one. `response_timeout` must
    /// exceed the longest block.
    pub async fn dedicated(&self, response_timeout: Duration) -> redis::RedisResult<Dedicated> {
        Ok(Dedicated {
            inner: match &self.conn.link {
                Link::Single(_) => DedicatedInner::Single(
                    node_conn(
                        self.seeds[0].clone(),
                        self.timeouts.connect,
                        response_timeout,
                    )
                    .await?,
                ),
                Link::Cluster(_) => DedicatedInner::Cluster {
                    redis: self.clone(),
                    response_timeout,
                    by_key: HashMap::new(),
                },
            },
        })
    }

    /// How `keys` split into blocking reads: a read may name only keys of
    /// one slot on a cluster, any keys on a single server. Each set keeps
    /// the order of `keys`.
    pub fn read_sets(&self, keys: &[String]) -> Vec<Vec<String>> {
        match self.conn.link {
            Link::Single(_) => vec![keys.to_vec()],
            Link::Cluster(_) => {
                let mut sets: Vec<(u16, Vec<String>)> = Vec::new();
                for k in keys {
                    let slot = key_slot(k);
                    match sets.iter_mut().find(|(s, _)| *s == slot) {
                        Some((_, set)) => set.push(k.clone()),
                        None => sets.push((slot, vec![k.clone()])),
                    }
                }
                sets.into_iter().map(|(_, set)| set).collect()
            }
        }
    }

    /// Ready = Redis answers and every script is in its cache (loaded now if
    /// it was not, e.g. after a restart or SCRIPT FLUSH). On a cluster, PING
    /// and SCRIPT EXISTS go to every master and SCRIPT LOAD to every node.
    pub async fn ensure_ready(&self) -> anyhow::Result<()> {
        let mut conn = self.conn();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .context("PING")?;
        if !scripts::all_loaded(&mut conn, &self.scripts)
            .await
            .context("SCRIPT EXISTS")?
        {
            scripts::load_all(&mut conn, &self.scripts).await?;
        }
        Ok(())
    }

    /// The master that owns `key`'s slot now (`CLUSTER SLOTS` through the
    /// shared connection), with the first seed's credentials.
    async fn slot_owner(&self, key: &str) -> anyhow::Result<ConnectionInfo> {
        let slot = i64::from(key_slot(key));
        let mut conn = self.conn();
        let ranges: Vec<Value> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut conn)
            .await
            .context("CLUSTER SLOTS")?;
        let seed = &self.seeds[0];
        for range in ranges {
            // [start, end, [host, port, id, …], replicas…]
            let Value::Array(parts) = range else { continue };
            let (Some(Value::Int(lo)), Some(Value::Int(hi)), Some(Value::Array(master))) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                continue;
            };
            if !(*lo..=*hi).contains(&slot) {
                continue;
            }
            let host = match master.first() {
                Some(Value::BulkString(b)) if !b.is_empty() => String::from_utf8_lossy(b).into(),
                // An empty host means "the node you asked": a seed's host.
                _ => match seed.addr() {
                    ConnectionAddr::Tcp(h, _) => h.clone(),
                    other => other.to_string(),
                },
            };
            let Some(Value::Int(port)) = master.get(1) else {
                continue;
            };
            let port = u16::try_from(*port).context("CLUSTER SLOTS port")?;
            return Ok(seed.clone().set_addr(ConnectionAddr::Tcp(host, port)));
        }
        anyhow::bail!("no master owns slot {slot} (of {key})")
    }
}

/// Connections for blocking reads ([`Redis::dedicated`]): one on a single
/// server; on a cluster one per stream, to the master that owns the
/// stream's slot, opened when first used and opened again (owner looked up
/// anew) after any error — a `MOVED`, an `UNBLOCKED` after a slot
/// migration, a failover's closed connection.
pub struct Dedicated {
    inner: DedicatedInner,
}

enum DedicatedInner {
    Single(MultiplexedConnection),
    Cluster {
        redis: Redis,
        response_timeout: Duration,
        by_key: HashMap<String, MultiplexedConnection>,
    },
}

/// The arguments of one `XREADGROUP` (every stream read from `>`).
#[derive(Clone, Copy, Debug)]
pub struct ReadGroup<'a> {
    pub group: &'a str,
    pub consumer: &'a str,
    /// COUNT, per stream.
    pub count: usize,
    /// BLOCK; `None` answers at once.
    pub block: Option<Duration>,
}

impl ReadGroup<'_> {
    fn cmd(&self, streams: &[String], block: bool) -> Cmd {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(self.group)
            .arg(self.consumer)
            .arg("COUNT")
            .arg(self.count.max(1));
        if let (true, Some(b)) = (block, self.block) {
            cmd.arg("BLOCK")
                .arg(u64::try_from(b.as_millis()).unwrap_or(u64::MAX));
        }
        cmd.arg("STREAMS").arg(streams);
        for _ in streams {
            cmd.arg(">");
        }
        cmd
    }
}

impl Dedicated {
    /// `XREADGROUP … STREAMS streams… > …`, answered like one XREADGROUP
    /// (RESP2: `[[stream, [[id, [field, value, …]], …]], …]`, or nil when
    /// nothing came within the block).
    ///
    /// On a cluster each stream is read on its own connection, all at
    /// once: first without blocking, and only when every stream is empty
    /// with the block, so like a single read it answers as soon as one
    /// stream has entries (the blocked reads still run out their block).
    pub async fn read_group(
        &mut self,
        read: &ReadGroup<'_>,
        streams: &[String],
    ) -> anyhow::Result<Value> {
        match &mut self.inner {
            DedicatedInner::Single(conn) => Ok(read
                .cmd(streams, true)
                .query_async(conn)
                .await
                .context("XREADGROUP")?),
            DedicatedInner::Cluster {
                redis,
                response_timeout,
                by_key,
            } => {
                let mut conns = Vec::with_capacity(streams.len());
                for s in streams {
                    let conn = match by_key.get(s) {
                        Some(c) => c.clone(),
                        None => {
                            let owner = redis.slot_owner(s).await?;
                            let c = node_conn(owner, redis.timeouts.connect, *response_timeout)
                                .await
                                .with_context(|| format!("connecting to the owner of {s}"))?;
                            by_key.insert(s.clone(), c.clone());
                            c
                        }
                    };
                    conns.push(conn);
                }
                let mut out = Vec::new();
                for block in [false, true] {
                    if block && read.block.is_none() {
                        break;
                    }
                    let reads = streams.iter().zip(conns.iter_mut()).map(|(s, conn)| {
                        let cmd = read.cmd(std::slice::from_ref(s), block);
                        async move { (s, cmd.query_async::<Value>(conn).await) }
                    });
                    let mut failed = None;
                    for (s, reply) in futures::future::join_all(reads).await {
                        match reply {
                            Ok(Value::Array(streams)) => out.extend(streams),
                            Ok(_) => {}
                            Err(e) => {
                                // Look the owner up again at the next read.
                                by_key.remove(s);
                                failed.get_or_insert((s.clone(), e));
                            }
                        }
                    }
                    // Entries already read are in this consumer's pending
                    // list: answer them even when another stream failed.
                    if !out.is_empty() {
                        return Ok(Value::Array(out));
                    }
                    if let Some((s, e)) = failed {
                        return Err(anyhow::Error::new(e).context(format!("XREADGROUP {s}")));
                    }
                }
                Ok(Value::Nil)
            }
        }
    }
}
