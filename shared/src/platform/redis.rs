//! Redis connections, on one server or on a Redis Cluster.
//!
//! Requests share **one** multiplexed connection per process ([`Conn`]):
//! concurrent calls are pipelined on it automatically and it follows the
//! server by itself. On a single server that is redis-rs's
//! [`ConnectionManager`] (reconnects after a restart or failover); on a
//! Redis Cluster it is the [`Router`] (`platform::cluster`): one
//! multiplexed connection per node, every command routed by its first
//! key's slot, `MOVED`/`ASK` followed and `TRYAGAIN` retried. Both are
//! behind the one [`Conn`] type, so no store knows which mode it runs in.
//! On a cluster a `MULTI`/`EXEC` pipeline runs as one script
//! ([`scripts::transaction_call`]) and a plain pipeline command by
//! command, so both follow redirects too. Measured on
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
//! refused calls are retried 10 ms doubling to 200 ms apart within the
//! response timeout. The response timeout must exceed the longest
//! script, or a caller gives up on a call that still runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::{Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisFuture, Value};

use super::cluster::Router;
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
    Cluster(Arc<Router>),
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
/// write is applied — but is logged and counted
/// (`switchyard_redis_wait_short_total`), and the **whole server** that
/// ran it (every slot it owns, from the cluster's slot map; on a single
/// server, all of them) is not waited on until `ROLE` shows enough
/// replicas connected again, asked once per [`WAIT_RECHECK`]. A `WAIT`
/// blocks its connection on the server until it returns — on the shared
/// multiplexed connection, every call behind it — so a master without a
/// replica must cost one timeout, not one per slot or per write (that
/// stalled the shared connection after a failover: the promoted master
/// owns 22 of the 64 shards' slots, each timing out in turn).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitReplicas {
    pub replicas: u32,
    pub timeout: Duration,
}

/// How often a server whose `WAIT` came back short is asked (`ROLE`)
/// whether its replicas are back.
const WAIT_RECHECK: Duration = Duration::from_secs(1);

struct Wait {
    want: WaitReplicas,
    /// Slot ranges of servers whose `WAIT` came back short, each with
    /// when to ask again whether replicas are back.
    skip: std::sync::Mutex<Vec<(std::ops::RangeInclusive<u16>, std::time::Instant)>>,
}

/// What to do after a script call on a slot.
#[derive(Debug, PartialEq, Eq)]
enum WaitStep {
    /// `WAIT` for the replicas.
    Wait,
    /// The slot's server had too few replicas, recently: no `WAIT`.
    Skip,
    /// Ask the server (`ROLE`) whether its replicas are back; the next
    /// ask is already pushed a [`WAIT_RECHECK`] ahead.
    Recheck,
}

impl Wait {
    fn step(&self, slot: u16) -> WaitStep {
        let mut skip = self.skip.lock().expect("not poisoned");
        let now = std::time::Instant::now();
        match skip.iter_mut().find(|(r, _)| r.contains(&slot)) {
            None => WaitStep::Wait,
            Some((_, next)) if *next > now => WaitStep::Skip,
            Some((_, next)) => {
                *next = now + WAIT_RECHECK;
                WaitStep::Recheck
            }
        }
    }

    /// Whether a `WAIT` reply counts enough replicas.
    fn enough(&self, reply: &Value) -> bool {
        let acked = match reply {
            Value::Int(n) => u32::try_from(*n).unwrap_or(0),
            _ => 0,
        };
        acked >= self.want.replicas
    }

    /// A short `WAIT` on `slot`, whose server owns `slots`.
    fn came_back_short(&self, slot: u16, slots: Vec<std::ops::RangeInclusive<u16>>) {
        metrics::counter!("switchyard_redis_wait_short_total").increment(1);
        tracing::warn!(
            slot,
            want = self.want.replicas,
            "WAIT came back short: a write is on fewer replicas than --redis-wait-replicas; not waiting on its server until ROLE shows them back"
        );
        let mut skip = self.skip.lock().expect("not poisoned");
        let next = std::time::Instant::now() + WAIT_RECHECK;
        skip.retain(|(r, _)| !slots.iter().any(|s| ranges_meet(r, s)));
        skip.extend(slots.into_iter().map(|r| (r, next)));
    }

    /// `ROLE` on the slot's server showed enough replicas: wait again.
    fn back(&self, slot: u16) {
        tracing::info!(slot, "replicas back: waiting for them again");
        self.skip
            .lock()
            .expect("not poisoned")
            .retain(|(r, _)| !r.contains(&slot));
    }

    /// Connected replicas in a `ROLE` reply (`master`, offset, replicas).
    fn replicas_in_role(reply: &Value) -> usize {
        match reply {
            Value::Array(parts) => match parts.as_slice() {
                [Value::BulkString(role), _, Value::Array(replicas)] if role == b"master" => {
                    replicas.len()
                }
                _ => 0,
            },
            _ => 0,
        }
    }
}

fn ranges_meet(a: &std::ops::RangeInclusive<u16>, b: &std::ops::RangeInclusive<u16>) -> bool {
    a.start() <= b.end() && b.start() <= a.end()
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

impl Conn {
    /// One command: on a cluster through the [`Router`], which follows
    /// `MOVED`/`ASK` and retries refusals during a slot move.
    fn send<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.link {
            Link::Single(c) => c.req_packed_command(cmd),
            Link::Cluster(router) => {
                let router = router.clone();
                Box::pin(async move { router.call(cmd).await })
            }
        }
    }

    /// `WAIT` on the server that ran a script on `slot` (the same
    /// connection, so it covers the script's writes). An error (the
    /// master gone before it answered) is the call's: its writes may be
    /// lost, so it must not be reported done.
    async fn wait_replicas(&mut self, wait: &Wait, slot: u16) -> redis::RedisResult<()> {
        match wait.step(slot) {
            WaitStep::Skip => return Ok(()),
            WaitStep::Wait => {}
            WaitStep::Recheck => {
                let role = self.on_slot(redis::cmd("ROLE"), slot).await;
                if !matches!(&role, Ok(v) if Wait::replicas_in_role(v) >= wait.want.replicas as usize)
                {
                    return Ok(());
                }
                wait.back(slot);
            }
        }
        let ms = u64::try_from(wait.want.timeout.as_millis()).unwrap_or(u64::MAX);
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(wait.want.replicas).arg(ms);
        match self.on_slot(cmd, slot).await {
            Ok(Value::ServerError(e)) => Err(e.into()),
            Err(e) => Err(e),
            Ok(v) if wait.enough(&v) => Ok(()),
            Ok(_) => {
                let slots = match &self.link {
                    Link::Single(_) => vec![0..=u16::MAX],
                    Link::Cluster(router) => router.ranges_of_master_of(slot),
                };
                wait.came_back_short(slot, slots);
                Ok(())
            }
        }
    }

    /// One command on the server (the master) that owns `slot`, on the
    /// shared connection.
    async fn on_slot(&mut self, cmd: Cmd, slot: u16) -> redis::RedisResult<Value> {
        match &mut self.link {
            Link::Single(c) => c.req_packed_command(&cmd).await,
            Link::Cluster(router) => router.on_slot(&cmd, Some(slot), false).await,
        }
    }

    /// One command; an `EVALSHA` that meets `NOSCRIPT` is sent again as
    /// `EVAL` with the script's source ([`scripts::as_eval`]), so a flushed
    /// script cache never fails a call.
    async fn send_script(&mut self, cmd: &Cmd) -> redis::RedisResult<Value> {
        let reply = self.send(cmd).await;
        // A server error arrives as a value or as an error, depending on
        // the connection.
        let noscript = match &reply {
            Ok(Value::ServerError(e)) => e.kind() == Some(redis::ServerErrorKind::NoScript),
            Err(e) => e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript),
            Ok(_) => false,
        };
        match noscript.then(|| scripts::as_eval(cmd)).flatten() {
            Some(eval) => self.send(&eval).await,
            None => reply,
        }
    }

    /// A pipeline on the cluster connection. A transaction (`MULTI`/`EXEC`)
    /// goes as one call of the `TRANSACTION` script
    /// ([`scripts::transaction_call`]): redis-rs follows `MOVED`/`ASK` and
    /// retries `TRYAGAIN` for single commands, but a command redirected
    /// inside `MULTI` makes Redis discard the transaction (`EXECABORT`),
    /// which answered 503 while a slot moved. A plain pipeline has no
    /// promise beyond the order of its replies, so its commands go one by
    /// one, all at once, each to its own slot's master and each following
    /// redirects ([`Conn::send`]): redis-rs sends a pipeline to one node,
    /// refuses one whose commands name several slots, and does not follow
    /// an `ASK` for the commands of a pipeline after the first. On the
    /// multiplexed connection the commands still leave together.
    async fn cluster_pipeline(
        &mut self,
        pipeline: &redis::Pipeline,
    ) -> redis::RedisResult<Vec<Value>> {
        if let Some(call) = scripts::transaction_call(pipeline) {
            return match self.send_script(&call).await? {
                Value::ServerError(e) => Err(e.into()),
                v => Ok(vec![v]),
            };
        }
        let calls = pipeline.cmd_iter().map(|cmd| {
            let mut c = self.clone();
            async move { c.send(cmd).await }
        });
        futures::future::join_all(calls).await.into_iter().collect()
    }
}

impl ConnectionLike for Conn {
    /// One command ([`Conn::send_script`]); a script call is followed by
    /// `WAIT` when `--redis-wait-replicas` asks for it.
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let reply = self.send_script(cmd).await;
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
        Box::pin(async move {
            match &mut self.link {
                Link::Single(c) => c.req_packed_commands(pipeline, offset, count).await,
                Link::Cluster(_) => self.cluster_pipeline(pipeline).await,
            }
        })
    }

    fn get_db(&self) -> i64 {
        match &self.link {
            Link::Single(c) => c.get_db(),
            Link::Cluster(_) => 0,
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
            Link::Cluster(
                Router::connect(seeds.clone(), timeouts)
                    .await
                    .with_context(|| format!("connecting to Redis Cluster at {url}"))?,
            )
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
                skip: std::sync::Mutex::new(Vec::new()),
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

    /// The master that owns `key`'s slot now: the cluster's slot map,
    /// read again first (at most every 100 ms: a reader asks after an
    /// error, which is when the map may be stale).
    async fn slot_owner(&self, key: &str) -> anyhow::Result<ConnectionInfo> {
        let Link::Cluster(router) = &self.conn.link else {
            return Ok(self.seeds[0].clone());
        };
        router.refresh().await.context("CLUSTER SLOTS")?;
        router
            .master_of(key_slot(key))
            .with_context(|| format!("no master owns the slot of {key}"))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn role_counts_connected_replicas() {
        let replica = |port: &[u8]| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::BulkString(port.to_vec()),
                Value::BulkString(b"3129659".to_vec()),
            ])
        };
        let master = Value::Array(vec![
            Value::BulkString(b"master".to_vec()),
            Value::Int(3129659),
            Value::Array(vec![replica(b"9001"), replica(b"9002")]),
        ]);
        assert_eq!(Wait::replicas_in_role(&master), 2);
        let alone = Value::Array(vec![
            Value::BulkString(b"master".to_vec()),
            Value::Int(0),
            Value::Array(vec![]),
        ]);
        assert_eq!(Wait::replicas_in_role(&alone), 0);
        assert_eq!(Wait::replicas_in_role(&Value::Nil), 0);
    }

    #[test]
    fn a_short_wait_skips_every_slot_of_its_server_until_rechecked() {
        let wait = Wait {
            want: WaitReplicas {
                replicas: 1,
                timeout: Duration::from_millis(100),
            },
            skip: std::sync::Mutex::new(Vec::new()),
        };
        assert_eq!(wait.step(10), WaitStep::Wait);
        wait.came_back_short(10, vec![0..=5460]);
        assert_eq!(wait.step(5000), WaitStep::Skip);
        assert_eq!(wait.step(6000), WaitStep::Wait);
        // Due for a recheck: one caller asks, the others keep skipping.
        wait.skip.lock().unwrap()[0].1 = std::time::Instant::now();
        assert_eq!(wait.step(7), WaitStep::Recheck);
        assert_eq!(wait.step(8), WaitStep::Skip);
        wait.back(8);
        assert_eq!(wait.step(9), WaitStep::Wait);
    }
}
