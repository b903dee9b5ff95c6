//! The request path on a Redis Cluster: a slot map and one multiplexed
//! connection per node, with redirects followed here.
//!
//! redis-rs 1.8's cluster connection was used first. Under a slot move it
//! stalled now and then: a `MOVED` put it into "slot refresh", and the
//! refresh hung until the response timeout while every other call queued
//! behind it (traced in `tests/e2e/cluster/resharding.rs`: "beginning slot
//! refresh" at 18.19 s, the next reply at 28.08 s, 1 run in 9; after a
//! master's `kill -9` the same, which is why it had to be rebuilt after 3
//! timeouts in a row). It also retries a call whose connection broke,
//! which may run a script twice. The [`Router`] does only what this
//! service needs, and nothing blocks a call on another:
//!
//! * a call goes to the master that owns its key's slot, on that node's
//!   multiplexed connection (calls to one node are pipelined on it);
//! * `MOVED` updates that slot and refreshes the map in the background,
//!   `ASK` sends `ASKING` + the call to the importing node, `TRYAGAIN`,
//!   `CLUSTERDOWN`, `LOADING`, `MASTERDOWN` and `READONLY` are retried
//!   10 ms doubling to 200 ms apart, within the response timeout — none of
//!   these ran the call, so sending it again is safe;
//! * a connection that fails is dropped and the map refreshed in the
//!   background; the call fails (its outcome is unknown: the caller
//!   answers 503 and the client retries with its idempotency key) — but a
//!   call that could not even connect is sent again once the map says
//!   where its slot went;
//! * the map comes from `CLUSTER SLOTS` of any node that answers, one
//!   refresh at a time, at most every [`REFRESH_GAP`].
//!
//! Commands without a key: `SCRIPT LOAD`/`FLUSH` go to every node, `SCRIPT
//! EXISTS` and `PING` to every master (answers combined), `DBSIZE` is
//! summed and `KEYS` joined over the masters; anything else goes to one
//! master.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, RedisError, RedisResult, Value};

use super::redis::Timeouts;
use super::shards::key_slot;

/// Slots of a Redis Cluster.
const SLOTS: usize = 16_384;
/// Least time between two refreshes of the slot map.
const REFRESH_GAP: Duration = Duration::from_millis(100);
/// Redirects one call follows at most.
const MAX_REDIRECTS: u32 = 16;

/// A node, `host:port` as the cluster announces it.
type Addr = Arc<str>;

/// Who serves what: each slot's master, and every node.
#[derive(Clone, Default)]
struct SlotMap {
    /// Slot → its master (empty while unknown).
    masters: Vec<Option<Addr>>,
    /// Every master, once.
    all_masters: Vec<Addr>,
    /// Every replica, once.
    replicas: Vec<Addr>,
}

impl SlotMap {
    /// From a `CLUSTER SLOTS` reply; `asked` is the host of the node that
    /// answered (an empty host means "the node you asked").
    fn parse(reply: &Value, asked: &str) -> Option<Self> {
        let Value::Array(ranges) = reply else {
            return None;
        };
        let mut map = SlotMap {
            masters: vec![None; SLOTS],
            ..SlotMap::default()
        };
        let node = |v: &Value| -> Option<Addr> {
            let Value::Array(parts) = v else { return None };
            let host = match parts.first()? {
                Value::BulkString(b) if !b.is_empty() => String::from_utf8_lossy(b).into_owned(),
                Value::SimpleString(s) if !s.is_empty() => s.clone(),
                _ => asked.to_owned(),
            };
            let Value::Int(port) = parts.get(1)? else {
                return None;
            };
            Some(format!("{host}:{port}").into())
        };
        for range in ranges {
            let Value::Array(parts) = range else { continue };
            let (Some(Value::Int(lo)), Some(Value::Int(hi))) = (parts.first(), parts.get(1)) else {
                continue;
            };
            let Some(master) = parts.get(2).and_then(node) else {
                continue;
            };
            let (lo, hi) = (usize::try_from(*lo).ok()?, usize::try_from(*hi).ok()?);
            for slot in map.masters.get_mut(lo..=hi.min(SLOTS - 1))? {
                *slot = Some(master.clone());
            }
            if !map.all_masters.contains(&master) {
                map.all_masters.push(master);
            }
            for r in parts.iter().skip(3).filter_map(node) {
                if !map.replicas.contains(&r) {
                    map.replicas.push(r);
                }
            }
        }
        (!map.all_masters.is_empty()).then_some(map)
    }
}

/// What a reply asks of the router.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// Done: hand the reply to the caller.
    Answer,
    /// `MOVED slot addr`: the slot has a new master.
    Moved(u16, Addr),
    /// `ASK slot addr`: this key is on the importing node.
    Ask(Addr),
    /// Not run, try again shortly (`TRYAGAIN`, `CLUSTERDOWN`, …).
    Later,
    /// The connection failed: drop it, refresh the map.
    Broken,
}

fn next(r: &RedisResult<Value>) -> Next {
    use redis::ServerErrorKind as K;
    let err: RedisError = match r {
        Ok(Value::ServerError(e)) => e.clone().into(),
        Ok(_) => return Next::Answer,
        Err(e) => e.clone(),
    };
    match err.kind() {
        ErrorKind::Server(K::Moved) => match err.redirect_node() {
            Some((addr, slot)) => Next::Moved(slot, addr.into()),
            None => Next::Answer,
        },
        ErrorKind::Server(K::Ask) => match err.redirect_node() {
            Some((addr, _)) => Next::Ask(addr.into()),
            None => Next::Answer,
        },
        ErrorKind::Server(
            K::TryAgain | K::ClusterDown | K::BusyLoading | K::MasterDown | K::ReadOnly,
        ) => Next::Later,
        _ if err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal() => {
            Next::Broken
        }
        _ => Next::Answer,
    }
}

/// Where a command goes.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// The master of this slot.
    Slot(u16),
    /// Any one master.
    AnyMaster,
    /// Every master; the answers combined.
    AllMasters(Combine),
    /// Every node, replicas too; the first master's answer.
    AllNodes,
}

/// How the answers of several masters make one.
#[derive(Debug, PartialEq, Eq)]
enum Combine {
    /// The first answer (all must succeed).
    First,
    /// Element-wise AND of 0/1 arrays (`SCRIPT EXISTS`).
    And,
    /// Sum of integers (`DBSIZE`).
    Sum,
    /// Arrays joined (`KEYS`).
    Join,
}

fn arg(cmd: &Cmd, i: usize) -> Option<&[u8]> {
    match cmd.args_iter().nth(i)? {
        redis::Arg::Simple(b) => Some(b),
        _ => None,
    }
}

fn is(a: Option<&[u8]>, name: &str) -> bool {
    a.is_some_and(|a| a.eq_ignore_ascii_case(name.as_bytes()))
}

/// The node(s) a command goes to: by its first key, or by its name.
fn target(cmd: &Cmd) -> Target {
    let name = arg(cmd, 0).unwrap_or_default().to_ascii_uppercase();
    let slot_of = |k: &[u8]| Target::Slot(key_slot(&String::from_utf8_lossy(k)));
    match name.as_slice() {
        b"EVALSHA" | b"EVAL" | b"FCALL" | b"EVALSHA_RO" | b"EVAL_RO" | b"FCALL_RO" => {
            let keys = arg(cmd, 2)
                .and_then(|n| std::str::from_utf8(n).ok()?.parse::<usize>().ok())
                .unwrap_or(0);
            match (keys, arg(cmd, 3)) {
                (1.., Some(k)) => slot_of(k),
                _ => Target::AnyMaster,
            }
        }
        b"XREAD" | b"XREADGROUP" => {
            let streams = cmd.args_iter().position(
                |a| matches!(a, redis::Arg::Simple(b) if b.eq_ignore_ascii_case(b"STREAMS")),
            );
            match streams.and_then(|i| arg(cmd, i + 1)) {
                Some(k) => slot_of(k),
                None => Target::AnyMaster,
            }
        }
        b"SCRIPT" if is(arg(cmd, 1), "EXISTS") => Target::AllMasters(Combine::And),
        b"SCRIPT" => Target::AllNodes,
        b"PING" | b"FLUSHALL" | b"FLUSHDB" => Target::AllMasters(Combine::First),
        b"DBSIZE" => Target::AllMasters(Combine::Sum),
        b"KEYS" => Target::AllMasters(Combine::Join),
        b"INFO" | b"CLUSTER" | b"WAIT" | b"ROLE" | b"TIME" | b"CLIENT" | b"CONFIG" | b"COMMAND"
        | b"ECHO" | b"HELLO" | b"MULTI" | b"EXEC" | b"DISCARD" | b"RANDOMKEY" | b"SCAN"
        | b"MEMORY" | b"LATENCY" | b"SLOWLOG" | b"PUBLISH" => Target::AnyMaster,
        _ => match arg(cmd, 1) {
            Some(k) => slot_of(k),
            None => Target::AnyMaster,
        },
    }
}

/// The request path on a Redis Cluster (see the module's text).
pub struct Router {
    /// Seed URLs' settings (credentials, TLS) for every node.
    seeds: Vec<ConnectionInfo>,
    timeouts: Timeouts,
    map: RwLock<Arc<SlotMap>>,
    conns: Mutex<HashMap<Addr, MultiplexedConnection>>,
    /// One connect at a time per node (many calls to a node that just
    /// came back would each open a connection; a node that does not
    /// answer must not hold up connects to the others).
    connecting: Mutex<HashMap<Addr, Arc<tokio::sync::Mutex<()>>>>,
    /// One refresh at a time; when the last one ended.
    refreshing: tokio::sync::Mutex<Option<Instant>>,
}

impl Router {
    /// Read the slot map from the seeds.
    pub async fn connect(seeds: Vec<ConnectionInfo>, timeouts: Timeouts) -> RedisResult<Arc<Self>> {
        let router = Arc::new(Self {
            seeds,
            timeouts,
            map: RwLock::new(Arc::new(SlotMap::default())),
            conns: Mutex::new(HashMap::new()),
            connecting: Mutex::new(HashMap::new()),
            refreshing: tokio::sync::Mutex::new(None),
        });
        router.refresh().await?;
        Ok(router)
    }

    fn map(&self) -> Arc<SlotMap> {
        self.map.read().expect("not poisoned").clone()
    }

    /// The master serving `slot` now, as far as the map knows.
    pub fn master_of(&self, slot: u16) -> Option<ConnectionInfo> {
        let addr = self.map().masters.get(usize::from(slot))?.clone()?;
        Some(self.info(&addr))
    }

    /// A seed's settings with `addr`'s host and port.
    fn info(&self, addr: &str) -> ConnectionInfo {
        let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "6379"));
        let seed = self.seeds[0].clone();
        let port = port.parse().unwrap_or(6379);
        let to = match seed.addr() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => ConnectionAddr::Tcp(host.to_owned(), port),
        };
        seed.set_addr(to)
    }

    /// The connection to `addr`, opened if there is none.
    async fn conn(&self, addr: &Addr) -> RedisResult<MultiplexedConnection> {
        if let Some(c) = self.conns.lock().expect("not poisoned").get(addr) {
            return Ok(c.clone());
        }
        let gate = self
            .connecting
            .lock()
            .expect("not poisoned")
            .entry(addr.clone())
            .or_default()
            .clone();
        let _one = gate.lock().await;
        if let Some(c) = self.conns.lock().expect("not poisoned").get(addr) {
            return Ok(c.clone());
        }
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeouts.connect))
            .set_response_timeout(Some(self.timeouts.response));
        let c = redis::Client::open(self.info(addr))?
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?;
        self.conns
            .lock()
            .expect("not poisoned")
            .insert(addr.clone(), c.clone());
        Ok(c)
    }

    fn forget(&self, addr: &Addr) {
        self.conns.lock().expect("not poisoned").remove(addr);
    }

    /// Read the slot map again (`CLUSTER SLOTS` of the first node that
    /// answers: known masters, then the seeds). One refresh at a time; a
    /// caller that waited for another's refresh takes it.
    pub async fn refresh(&self) -> RedisResult<()> {
        let asked_at = Instant::now();
        let mut last = self.refreshing.lock().await;
        if last.is_some_and(|t| t > asked_at || t.elapsed() < REFRESH_GAP) {
            return Ok(());
        }
        let map = self.map();
        let mut candidates: Vec<Addr> = map.all_masters.clone();
        candidates.extend(map.replicas.iter().cloned());
        for seed in &self.seeds {
            if let Some(addr) = tcp_addr(seed)
                && !candidates.contains(&addr)
            {
                candidates.push(addr);
            }
        }
        let mut last_err = None;
        for addr in candidates {
            let host = addr.rsplit_once(':').map_or(&*addr, |(h, _)| h).to_owned();
            let asked = async {
                let mut c = self.conn(&addr).await?;
                let mut cmd = redis::cmd("CLUSTER");
                cmd.arg("SLOTS");
                c.req_packed_command(&cmd).await
            };
            match tokio::time::timeout(self.timeouts.connect, asked).await {
                Ok(Ok(reply)) => {
                    if let Some(map) = SlotMap::parse(&reply, &host) {
                        *self.map.write().expect("not poisoned") = Arc::new(map);
                        *last = Some(Instant::now());
                        return Ok(());
                    }
                    last_err = Some(RedisError::from((
                        ErrorKind::Client,
                        "CLUSTER SLOTS",
                        format!("{addr} answered no slots"),
                    )));
                }
                Ok(Err(e)) => {
                    if matches!(next(&Err(e.clone())), Next::Broken) {
                        self.forget(&addr);
                    }
                    last_err = Some(e);
                }
                Err(_) => {
                    self.forget(&addr);
                    last_err = Some(RedisError::from((
                        ErrorKind::Io,
                        "CLUSTER SLOTS",
                        format!("{addr} did not answer"),
                    )));
                }
            }
        }
        *last = Some(Instant::now());
        Err(last_err.unwrap_or_else(|| (ErrorKind::Client, "no cluster node to ask").into()))
    }

    /// [`Router::refresh`] in the background.
    fn refresh_soon(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.refresh().await {
                tracing::warn!(error = %e, "refreshing the Redis Cluster slot map failed");
            }
        });
    }

    /// One command, to the node(s) it belongs to (see the module's text).
    pub async fn call(self: &Arc<Self>, cmd: &Cmd) -> RedisResult<Value> {
        match target(cmd) {
            Target::Slot(slot) => self.on_slot(cmd, Some(slot), true).await,
            Target::AnyMaster => self.on_slot(cmd, None, true).await,
            Target::AllMasters(how) => {
                let masters = self.map().all_masters.clone();
                let replies = self.on_each(cmd, &masters).await?;
                combine(how, replies)
            }
            Target::AllNodes => {
                let map = self.map();
                let masters = self.on_each(cmd, &map.all_masters).await?;
                // A replica that fails (syncing, gone) does not fail the call.
                let _ = self.on_each(cmd, &map.replicas).await;
                combine(Combine::First, masters)
            }
        }
    }

    /// `cmd` on each of `nodes`, all at once; the first error fails it.
    async fn on_each(self: &Arc<Self>, cmd: &Cmd, nodes: &[Addr]) -> RedisResult<Vec<Value>> {
        let calls = nodes.iter().map(|addr| async move {
            let r = match self.conn(addr).await {
                Ok(mut c) => c.req_packed_command(cmd).await,
                Err(e) => Err(e),
            };
            if next(&r) == Next::Broken {
                self.forget(addr);
                self.refresh_soon();
            }
            match r {
                Ok(Value::ServerError(e)) => Err(e.into()),
                other => other,
            }
        });
        futures::future::join_all(calls).await.into_iter().collect()
    }

    /// `cmd` on the master of `slot` (any master for `None`); with
    /// `follow`, redirects are followed and refusals retried.
    pub async fn on_slot(
        self: &Arc<Self>,
        cmd: &Cmd,
        slot: Option<u16>,
        follow: bool,
    ) -> RedisResult<Value> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(10);
        let mut redirect: Option<(Addr, bool)> = None;
        let mut redirects = 0;
        loop {
            let may_wait = started.elapsed() + pause < self.timeouts.response;
            let (addr, asking) = match redirect.take() {
                Some(r) => r,
                None => {
                    let map = self.map();
                    let addr = match slot {
                        Some(s) => map.masters.get(usize::from(s)).cloned().flatten(),
                        None => map.all_masters.first().cloned(),
                    };
                    match addr {
                        Some(a) => (a, false),
                        None if follow && may_wait => {
                            // A slot no master serves (yet): ask again.
                            let _ = self.refresh().await;
                            back_off(&mut pause).await;
                            continue;
                        }
                        None => {
                            return Err((
                                ErrorKind::Server(redis::ServerErrorKind::ClusterDown),
                                "no master serves the slot",
                            )
                                .into());
                        }
                    }
                }
            };
            let mut c = match self.conn(&addr).await {
                Ok(c) => c,
                Err(e) => {
                    // Never sent: safe to send again once the map knows more.
                    self.forget(&addr);
                    if !(follow && may_wait) {
                        self.refresh_soon();
                        return Err(e);
                    }
                    let _ = self.refresh().await;
                    back_off(&mut pause).await;
                    continue;
                }
            };
            let r = if asking {
                let mut p = redis::pipe();
                p.cmd("ASKING").ignore().add_command(cmd.clone());
                c.req_packed_commands(&p, 0, 2)
                    .await
                    .map(|mut v| v.pop().unwrap_or(Value::Nil))
            } else {
                c.req_packed_command(cmd).await
            };
            match next(&r) {
                Next::Answer => {
                    if matches!(&r, Err(e) if e.is_timeout()) {
                        // A node that stopped answering may have been
                        // failed over: the next calls should find out.
                        self.refresh_soon();
                    }
                    return r;
                }
                Next::Broken => {
                    self.forget(&addr);
                    self.refresh_soon();
                    return r;
                }
                _ if !follow => return r,
                Next::Moved(s, to) => {
                    redirects += 1;
                    if redirects > MAX_REDIRECTS {
                        return r;
                    }
                    self.set_master(s, to.clone());
                    self.refresh_soon();
                    redirect = Some((to, false));
                }
                Next::Ask(to) => {
                    redirects += 1;
                    if redirects > MAX_REDIRECTS {
                        return r;
                    }
                    redirect = Some((to, true));
                }
                Next::Later => {
                    if !may_wait {
                        return r;
                    }
                    if matches!(&r, Err(e) if e.kind() == ErrorKind::Server(redis::ServerErrorKind::ReadOnly))
                    {
                        self.refresh_soon();
                    }
                    back_off(&mut pause).await;
                }
            }
        }
    }

    /// The map says `slot` is served by `to` (after a `MOVED`), until the
    /// next refresh.
    fn set_master(&self, slot: u16, to: Addr) {
        let mut map = self.map.write().expect("not poisoned");
        let mut next = SlotMap::clone(&map);
        if let Some(m) = next.masters.get_mut(usize::from(slot)) {
            *m = Some(to.clone());
        }
        if !next.all_masters.contains(&to) {
            next.all_masters.push(to);
        }
        *map = Arc::new(next);
    }

    /// The slot ranges served by the master of `slot` (from the map; just
    /// `slot` when the map does not know it).
    pub fn ranges_of_master_of(&self, slot: u16) -> Vec<std::ops::RangeInclusive<u16>> {
        let map = self.map();
        let Some(Some(master)) = map.masters.get(usize::from(slot)) else {
            return vec![slot..=slot];
        };
        let mut ranges: Vec<std::ops::RangeInclusive<u16>> = Vec::new();
        for (s, m) in (0u16..).zip(&map.masters) {
            if m.as_ref() != Some(master) {
                continue;
            }
            match ranges.last_mut() {
                Some(r) if *r.end() + 1 == s => *r = *r.start()..=s,
                _ => ranges.push(s..=s),
            }
        }
        ranges
    }
}

/// Sleep `pause`, then double it (at most 200 ms): the wait between
/// attempts of a refused call.
async fn back_off(pause: &mut Duration) {
    tokio::time::sleep(*pause).await;
    *pause = (*pause * 2).min(Duration::from_millis(200));
}

/// `host:port` of a TCP seed.
fn tcp_addr(info: &ConnectionInfo) -> Option<Addr> {
    match info.addr() {
        ConnectionAddr::Tcp(h, p)
        | ConnectionAddr::TcpTls {
            host: h, port: p, ..
        } => Some(format!("{h}:{p}").into()),
        _ => None,
    }
}

fn combine(how: Combine, replies: Vec<Value>) -> RedisResult<Value> {
    let mut replies = replies.into_iter();
    let Some(first) = replies.next() else {
        return Err((ErrorKind::Client, "no cluster master known").into());
    };
    Ok(match how {
        Combine::First => first,
        Combine::Sum => {
            let mut sum = 0i64;
            for v in std::iter::once(first).chain(replies) {
                if let Value::Int(n) = v {
                    sum += n;
                }
            }
            Value::Int(sum)
        }
        Combine::Join => {
            let mut all = Vec::new();
            for v in std::iter::once(first).chain(replies) {
                if let Value::Array(items) = v {
                    all.extend(items);
                }
            }
            Value::Array(all)
        }
        Combine::And => {
            let Value::Array(mut acc) = first else {
                return Ok(first);
            };
            for v in replies {
                if let Value::Array(items) = v {
                    for (a, b) in acc.iter_mut().zip(items) {
                        if !matches!((&*a, &b), (Value::Int(1), Value::Int(1))) {
                            *a = Value::Int(0);
                        }
                    }
                }
            }
            Value::Array(acc)
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn commands_go_by_their_first_key_or_their_name() {
        let slot = |k: &str| Target::Slot(key_slot(k));
        assert_eq!(target(redis::cmd("HGETALL").arg("{a}:x")), slot("{a}:x"));
        assert_eq!(
            target(
                redis::cmd("EVALSHA")
                    .arg("abc")
                    .arg(2)
                    .arg("{b}:k")
                    .arg("{b}:l")
            ),
            slot("{b}:k")
        );
        assert_eq!(
            target(redis::cmd("EVALSHA").arg("abc").arg(0)),
            Target::AnyMaster
        );
        assert_eq!(
            target(
                redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg("g")
                    .arg("c")
                    .arg("STREAMS")
                    .arg("{s}:w")
                    .arg(">")
            ),
            slot("{s}:w")
        );
        assert_eq!(
            target(redis::cmd("SCRIPT").arg("EXISTS").arg("abc")),
            Target::AllMasters(Combine::And)
        );
        assert_eq!(
            target(redis::cmd("SCRIPT").arg("LOAD").arg("return 1")),
            Target::AllNodes
        );
        assert_eq!(
            target(&redis::cmd("PING")),
            Target::AllMasters(Combine::First)
        );
        assert_eq!(
            target(redis::cmd("CLUSTER").arg("SLOTS")),
            Target::AnyMaster
        );
    }

    #[test]
    fn the_slot_map_reads_cluster_slots() {
        let node =
            |host: &str, port: i64| Value::Array(vec![bulk(host), Value::Int(port), bulk("id")]);
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(5460),
                node("127.0.0.1", 7000),
                node("127.0.0.1", 7003),
            ]),
            Value::Array(vec![Value::Int(5461), Value::Int(16383), node("", 7001)]),
        ]);
        let map = SlotMap::parse(&reply, "10.0.0.9").unwrap();
        assert_eq!(map.masters[0].as_deref(), Some("127.0.0.1:7000"));
        assert_eq!(map.masters[5460].as_deref(), Some("127.0.0.1:7000"));
        assert_eq!(map.masters[5461].as_deref(), Some("10.0.0.9:7001"));
        assert_eq!(map.all_masters.len(), 2);
        assert_eq!(map.replicas.len(), 1);
        assert!(SlotMap::parse(&Value::Array(vec![]), "h").is_none());
    }

    #[test]
    fn a_slots_master_serves_these_ranges() {
        let mut map = SlotMap {
            masters: vec![Some(Addr::from("a:1")); SLOTS],
            ..SlotMap::default()
        };
        for m in &mut map.masters[100..200] {
            *m = Some("b:2".into());
        }
        map.masters[300] = None;
        let router = Router {
            seeds: Vec::new(),
            timeouts: Timeouts::default(),
            map: RwLock::new(Arc::new(map)),
            conns: Mutex::new(HashMap::new()),
            connecting: Mutex::new(HashMap::new()),
            refreshing: tokio::sync::Mutex::new(None),
        };
        assert_eq!(
            router.ranges_of_master_of(5),
            vec![0..=99, 200..=299, 301..=16383]
        );
        assert_eq!(router.ranges_of_master_of(150), vec![100..=199]);
        assert_eq!(router.ranges_of_master_of(300), vec![300..=300]);
    }

    #[test]
    fn replies_say_what_comes_next() {
        let err = |code: &str, detail: &str| -> RedisResult<Value> {
            redis::parse_redis_value(format!("-{code} {detail}\r\n").as_bytes())
        };
        assert_eq!(next(&Ok(Value::Okay)), Next::Answer);
        assert_eq!(
            next(&err("MOVED", "127 127.0.0.1:7001")),
            Next::Moved(127, "127.0.0.1:7001".into())
        );
        assert_eq!(
            next(&err("ASK", "127 127.0.0.1:7002")),
            Next::Ask("127.0.0.1:7002".into())
        );
        assert_eq!(next(&err("TRYAGAIN", "Multiple keys")), Next::Later);
        assert_eq!(next(&err("ERR", "wrong")), Next::Answer);
    }

    #[test]
    fn answers_of_several_masters_combine() {
        let ints = |v: &[i64]| Value::Array(v.iter().map(|n| Value::Int(*n)).collect());
        assert_eq!(
            combine(Combine::And, vec![ints(&[1, 1, 0]), ints(&[1, 0, 1])]).unwrap(),
            ints(&[1, 0, 0])
        );
        assert_eq!(
            combine(Combine::Sum, vec![Value::Int(2), Value::Int(3)]).unwrap(),
            Value::Int(5)
        );
        assert_eq!(
            combine(Combine::Join, vec![ints(&[1]), ints(&[2])]).unwrap(),
            ints(&[1, 2])
        );
    }
}
