//! `switchyard bench cluster`: the gates hot path and deliveries, each on a
//! private single redis-server and on a private local Redis Cluster (3
//! masters, no replicas) in one run, with the ratio cluster ÷ single, where
//! the time goes (per Redis node: commands, Lua calls, CPU, keys; the CPU of
//! Switchyard's own processes) and the Redis-bound ceiling each setup would
//! have with one core per Redis node, computed from the per-node CPU.
//!
//! With `--replicas`, a third setup in the same run: the same masters with
//! one replica each, and Switchyard (the in-process API and the worker
//! processes) on `--redis-wait-replicas 1`, so every script call is
//! followed by `WAIT 1`; with the ratio cluster with WAIT ÷ cluster
//! without, the `WAIT` calls per node next to the Lua calls, and the waits
//! that came back short (`switchyard_redis_wait_short_total`).
//!
//! Every Redis process runs on loopback TCP (a cluster cannot use unix
//! sockets), AOF off, in a temp dir; all are killed when the bench ends,
//! also on error, and die with this process (`PR_SET_PDEATHSIG`).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use redis::aio::MultiplexedConnection;
use switchyard_shared::platform::redis::WaitReplicas;
use tokio_util::sync::CancellationToken;

use super::common::{
    BENCH_SHARDS, Deployment, ServerArgs, cpu_secs, free_ports, parse_duration, prometheus_counter,
};
use super::deliveries::{Delivery, enqueue_all, start_receiver};
use super::gates::http_phase;

#[derive(Args)]
pub struct ClusterBench {
    /// Masters of the local cluster (no replicas; redis-cli needs at least 3).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(3..=16))]
    masters: u16,
    /// Concurrent HTTP clients of each gates run, each on its own gate.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// How long each gates run lasts.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Deliveries per deliveries run (enough for a few seconds, so the CPU
    /// figures, counted in 10 ms ticks, are not noise).
    #[arg(long, default_value_t = 40_000)]
    jobs: usize,
    /// Concurrent attempts per worker.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Worker processes of each deliveries run.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    #[command(flatten)]
    server: ServerArgs,
    /// The redis-cli executable (it creates the cluster).
    #[arg(long, default_value = "redis-cli")]
    redis_cli: PathBuf,
    /// Also run a third setup: the same masters with one replica each, and
    /// Switchyard on `--redis-wait-replicas 1` (a `WAIT 1` after each
    /// script call).
    #[arg(long)]
    replicas: bool,
}

/// The `WAIT` of the replicated setup: one replica, the
/// `--redis-wait-timeout` default.
const WAIT: WaitReplicas = WaitReplicas {
    replicas: 1,
    timeout: Duration::from_millis(100),
};

/// The counter of `WAIT`s that came back with fewer replicas than asked for.
const WAIT_SHORT: &str = "switchyard_redis_wait_short_total";

pub fn run(c: ClusterBench) -> anyhow::Result<()> {
    // Dropped last: the nodes are killed before their directory goes.
    let scratch = Scratch::new()?;
    // Spawned from the main thread, which lives as long as the process: the
    // parent-death signal fires when the spawning thread ends.
    let server = &c.server.redis_server;
    let masters = usize::from(c.masters);
    let single = Nodes::single(server, &scratch.0.join("single"))?;
    let cluster = Nodes::cluster(server, &c.redis_cli, &scratch.0.join("cluster"), masters, 0)?;
    let replicated = c
        .replicas
        .then(|| {
            Nodes::cluster(
                server,
                &c.redis_cli,
                &scratch.0.join("replicated"),
                masters,
                1,
            )
        })
        .transpose()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let res = rt.block_on(bench(&c, &single, &cluster, replicated.as_ref()));
    drop(rt);
    drop((single, cluster, replicated));
    res
}

async fn bench(
    c: &ClusterBench,
    single: &Nodes,
    cluster: &Nodes,
    replicated: Option<&Nodes>,
) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut targets = vec![
        Target::connect("single node", single, None).await?,
        Target::connect(&format!("cluster of {}", c.masters), cluster, None).await?,
    ];
    if let Some(r) = replicated {
        let name = format!("cluster of {} + replicas, WAIT 1", c.masters);
        targets.push(Target::connect(&name, r, Some(WAIT)).await?);
    }
    let third = match replicated {
        Some(_) => format!(
            ", and the same cluster with one replica per master and Switchyard on --redis-wait-replicas 1 (WAIT 1, timeout {:?}, after each script call)",
            WAIT.timeout
        ),
        None => String::new(),
    };
    println!(
        "Redis: one redis-server vs a local Redis Cluster of {} masters (no replicas){third}, all in this run on this machine ({cores} cores); \
         loopback TCP, AOF off, {BENCH_SHARDS} shards",
        c.masters
    );
    for t in &targets {
        println!("  {}: {}", t.name, t.describe().await?);
    }

    let mut gates = Vec::new();
    for t in &targets {
        println!();
        println!("gates on the {}:", t.name);
        gates.push(gates_run(c, t).await?);
    }
    let stop = CancellationToken::new();
    let (hook, count) = start_receiver(&stop).await?;
    let mut deliveries = Vec::new();
    for t in &targets {
        println!();
        deliveries.push(deliveries_run(c, t, &hook, &count).await?);
    }
    stop.cancel();

    println!();
    println!(
        "On {cores} cores the cluster cannot be faster: its Redis processes, Switchyard and the load generator share them. \
         \"Separate machines\" below gives one core to each Redis node and computes its ceiling from the CPU it used per operation."
    );
    report(
        "gates (test-and-set + release through HTTP)",
        ("iteration", "iterations"),
        &gates,
        "this process (API + HTTP load generator)",
        "All gates of a namespace live on one shard, so one master takes every call of it: more masters do not raise one namespace's \
         ceiling (each namespace, i.e. each API deployment's --gate-namespace, is placed on its own shard).",
    );
    report(
        &format!(
            "deliveries ({} worker process(es), concurrency {})",
            c.workers, c.concurrency
        ),
        ("delivery", "deliveries"),
        &deliveries,
        "worker process(es)",
        &format!(
            "Deliveries spread over the {BENCH_SHARDS} shards, so each master takes its share; beyond the Redis ceiling, \
             add worker processes (each worker core gives the worker figure above)."
        ),
    );
    Ok(())
}

/// A Redis setup under test: its URL (seeds of a cluster), a connection
/// to each node for its statistics, and the `WAIT` Switchyard does on it.
struct Target<'a> {
    name: String,
    url: String,
    nodes: &'a Nodes,
    conns: Vec<MultiplexedConnection>,
    wait: Option<WaitReplicas>,
}

impl<'a> Target<'a> {
    async fn connect(
        name: &str,
        nodes: &'a Nodes,
        wait: Option<WaitReplicas>,
    ) -> anyhow::Result<Self> {
        let mut conns = Vec::new();
        for n in &nodes.nodes {
            conns.push(
                redis::Client::open(n.url())?
                    .get_multiplexed_async_connection()
                    .await?,
            );
        }
        Ok(Self {
            name: name.to_owned(),
            url: nodes.url(),
            nodes,
            conns,
            wait,
        })
    }

    /// Its nodes, each master's slots and each replica's master on a cluster.
    async fn describe(&self) -> anyhow::Result<String> {
        let mut out = Vec::new();
        for (n, conn) in self.nodes.nodes.iter().zip(&self.conns) {
            let mut d = format!("127.0.0.1:{} (pid {})", n.port, n.child.id());
            if let Some(master) = n.replica_of {
                d += &format!(" replica of {master}");
            } else if self.nodes.cluster {
                let nodes: String = redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query_async(&mut conn.clone())
                    .await?;
                let slots = nodes
                    .lines()
                    .find(|l| l.contains("myself"))
                    .map(|l| l.split_whitespace().skip(8).collect::<Vec<_>>().join(","))
                    .unwrap_or_default();
                d += &format!(" slots {slots}");
            }
            out.push(d);
        }
        Ok(out.join(", "))
    }

    /// Each node's counters now, and this process's CPU.
    async fn snapshot(&self) -> anyhow::Result<Snapshot> {
        let mut nodes = Vec::new();
        for conn in &self.conns {
            let mut conn = conn.clone();
            let info: String = redis::cmd("INFO")
                .arg("stats")
                .arg("cpu")
                .arg("commandstats")
                .query_async(&mut conn)
                .await?;
            let keys: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await?;
            nodes.push(NodeStats {
                user: info_field(&info, "used_cpu_user").unwrap_or(0.0),
                sys: info_field(&info, "used_cpu_sys").unwrap_or(0.0),
                commands: info_field(&info, "total_commands_processed").unwrap_or(0),
                lua: ["cmdstat_evalsha", "cmdstat_eval"]
                    .iter()
                    .filter_map(|c| command_calls(&info, c))
                    .sum(),
                wait: command_calls(&info, "cmdstat_wait").unwrap_or(0),
                reads: info_field(&info, "total_reads_processed").unwrap_or(0),
                keys,
            });
        }
        Ok(Snapshot {
            at: Instant::now(),
            nodes,
            this: cpu_secs(std::process::id())?,
        })
    }
}

/// One node's counters (`INFO stats`, `cpu`, `commandstats`; `DBSIZE`), or
/// their growth over a run.
#[derive(Clone, Copy)]
struct NodeStats {
    /// CPU seconds in user mode: commands, Lua, parsing and replies.
    user: f64,
    /// CPU seconds in the kernel: mostly socket reads and writes.
    sys: f64,
    /// `total_commands_processed` (the commands scripts call count too).
    commands: u64,
    /// `EVALSHA` and `EVAL` calls.
    lua: u64,
    /// `WAIT` calls.
    wait: u64,
    /// Reads from client sockets (`total_reads_processed`): fewer commands
    /// per read means more system calls per command.
    reads: u64,
    /// Keys (at the end of a run).
    keys: u64,
}

impl NodeStats {
    fn cpu(&self) -> f64 {
        self.user + self.sys
    }

    /// The growth from `before` to `self` (keys: `self`'s).
    fn since(&self, before: &Self) -> Self {
        Self {
            user: self.user - before.user,
            sys: self.sys - before.sys,
            commands: self.commands.saturating_sub(before.commands),
            lua: self.lua.saturating_sub(before.lua),
            wait: self.wait.saturating_sub(before.wait),
            reads: self.reads.saturating_sub(before.reads),
            keys: self.keys,
        }
    }
}

struct Snapshot {
    at: Instant,
    nodes: Vec<NodeStats>,
    /// This process's CPU seconds so far.
    this: f64,
}

/// A run on one target: its rate and where the time went.
struct Run {
    target: String,
    ops: f64,
    per_sec: f64,
    secs: f64,
    /// Per node: its port, its role and its counters' growth over the run.
    nodes: Vec<(u16, &'static str, NodeStats)>,
    /// CPU seconds of the Switchyard side measured for this run.
    switchyard_cpu: f64,
    /// CPU seconds of everything measured (Redis, this process, workers).
    total_cpu: f64,
    /// On a target with `WAIT`: how many came back short over the run
    /// (`switchyard_redis_wait_short_total` of the Switchyard side).
    wait_short: Option<u64>,
}

impl Run {
    /// The run of `ops` operations at `per_sec` between snapshots `a` and
    /// `b`; the Switchyard side is `workers`' CPU seconds when given, else
    /// this process's.
    fn new(
        t: &Target<'_>,
        (ops, per_sec): (f64, f64),
        a: &Snapshot,
        b: &Snapshot,
        workers: Option<f64>,
    ) -> Self {
        let nodes: Vec<_> = t
            .nodes
            .nodes
            .iter()
            .zip(a.nodes.iter().zip(&b.nodes))
            .map(|(n, (a, b))| (n.port, n.role(t.nodes.cluster), b.since(a)))
            .collect();
        let this = b.this - a.this;
        let mut run = Self {
            target: t.name.clone(),
            ops,
            per_sec,
            secs: (b.at - a.at).as_secs_f64(),
            nodes,
            switchyard_cpu: workers.unwrap_or(this),
            total_cpu: 0.0,
            wait_short: None,
        };
        run.total_cpu = run.redis(NodeStats::cpu) + this + workers.unwrap_or(0.0);
        run
    }

    /// `f` summed over the nodes.
    fn redis(&self, f: impl Fn(&NodeStats) -> f64) -> f64 {
        self.nodes.iter().map(|(_, _, n)| f(n)).sum()
    }

    /// The busiest node's CPU seconds.
    fn busiest(&self) -> f64 {
        self.nodes
            .iter()
            .map(|(_, _, n)| n.cpu())
            .fold(0.0, f64::max)
    }

    /// Redis-bound ceiling with one core per node: the busiest node's
    /// CPU per operation, inverted.
    fn ceiling(&self) -> f64 {
        self.ops / self.busiest().max(f64::MIN_POSITIVE)
    }
}

/// Gates on `t`: the in-process API on `t` (waiting for replicas as `t`
/// says), then `bench gates`' HTTP phase.
async fn gates_run(c: &ClusterBench, t: &Target<'_>) -> anyhow::Result<Run> {
    let mut d = Deployment::connect(&t.url).await?;
    d.pool = d.pool.with_wait(t.wait);
    let base = d.start_api().await?;
    // The API's counters live in this process's recorder.
    let short = || {
        prometheus_counter(
            &switchyard_shared::telemetry::prometheus().render(),
            WAIT_SHORT,
        )
    };
    let short_before = short();
    let a = t.snapshot().await?;
    let r = http_phase(c.clients, c.duration, &d.pool, &d.keys, &base).await;
    let b = t.snapshot().await?;
    d.stop.cancel();
    let r = r?;
    let mut run = Run::new(t, (r.iterations as f64, r.per_sec), &a, &b, None);
    run.wait_short = t.wait.map(|_| short().saturating_sub(short_before));
    Ok(run)
}

/// Deliveries on `t`: enqueue (untimed), then `bench deliveries`' timed
/// worker run (the workers waiting for replicas as `t` says).
async fn deliveries_run(
    c: &ClusterBench,
    t: &Target<'_>,
    hook: &str,
    count: &AtomicUsize,
) -> anyhow::Result<Run> {
    let prefix = "sybench-cluster";
    enqueue_all(c.jobs, &t.url, prefix, hook).await?;
    let run = Delivery {
        jobs: c.jobs,
        concurrency: c.concurrency,
        workers: c.workers,
        wait_replicas: t.wait.map_or(0, |w| w.replicas),
    };
    let a = t.snapshot().await?;
    let r = run.deliver(&t.url, prefix, count).await?;
    let b = t.snapshot().await?;
    println!(
        "deliveries on the {}: {} POSTs to {hook} (answers 204), {} worker process(es), concurrency {}: {:.0} deliveries/s",
        t.name, c.jobs, c.workers, c.concurrency, r.per_sec
    );
    let mut out = Run::new(t, (c.jobs as f64, r.per_sec), &a, &b, Some(r.worker_cpu));
    out.wait_short = r.wait_short;
    Ok(out)
}

/// The comparison of one workload: the ratios, each node's share, the
/// Switchyard side, the ceilings on separate machines, and with a
/// replicated run, the evidence that its waits were not short.
fn report(what: &str, (op, ops): (&str, &str), runs: &[Run], side: &str, note: &str) {
    let [single, cluster, rest @ ..] = runs else {
        return;
    };
    let waited = rest.first();
    let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    println!();
    println!(
        "{what}: cluster {:.0}/s ÷ single node {:.0}/s = {:.2}",
        cluster.per_sec,
        single.per_sec,
        cluster.per_sec / single.per_sec
    );
    if let Some(w) = waited {
        println!(
            "  cluster with WAIT 1 {:.0}/s ÷ cluster without {:.0}/s = {:.2}",
            w.per_sec,
            cluster.per_sec,
            w.per_sec / cluster.per_sec
        );
    }
    println!("  where the time goes (counters over each timed run; µs = Redis CPU µs per {op}):");
    println!(
        "    {:<30} {:>6} {:<7} {:>9} {:>9} {:>6} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7}",
        "node",
        "port",
        "role",
        "commands",
        "Lua calls",
        "share",
        "WAITs",
        "keys",
        "reads",
        "user s",
        "sys s",
        "µs"
    );
    for r in runs {
        let lua = r.redis(|n| n.lua as f64).max(1.0);
        for (port, role, n) in &r.nodes {
            println!(
                "    {:<30} {port:>6} {role:<7} {:>9} {:>9} {:>5.1}% {:>8} {:>8} {:>8} {:>7.2} {:>7.2} {:>7.1}",
                r.target,
                n.commands,
                n.lua,
                100.0 * n.lua as f64 / lua,
                n.wait,
                n.keys,
                n.reads,
                n.user,
                n.sys,
                1e6 * n.cpu() / r.ops
            );
        }
    }
    for r in runs {
        println!(
            "    {}: Redis {:.1} µs/{op} in all ({:.1} user, {:.1} sys; {:.1} commands and {:.2} socket reads per {op}), \
             {side} {:.1} µs/{op}; CPU measured {:.1} s of {:.1} core-s in {:.1} s",
            r.target,
            1e6 * r.redis(NodeStats::cpu) / r.ops,
            1e6 * r.redis(|n| n.user) / r.ops,
            1e6 * r.redis(|n| n.sys) / r.ops,
            r.redis(|n| n.commands as f64) / r.ops,
            r.redis(|n| n.reads as f64) / r.ops,
            1e6 * r.switchyard_cpu / r.ops,
            r.total_cpu,
            r.secs * cores,
            r.secs
        );
    }
    if let Some(w) = waited {
        wait_evidence(w, side);
    }
    let (one, many) = (single.ceiling(), cluster.ceiling());
    println!(
        "  on separate machines (one core per Redis node, Redis the limit): single node ≈ {one:.0} {ops}/s (1 ÷ its CPU per {op}); \
         {} masters ≈ {many:.0} {ops}/s (1 ÷ the busiest master's CPU per {op}; it did {:.0}% of the cluster's Redis CPU) = ×{:.2}",
        cluster.nodes.len(),
        100.0 * cluster.busiest() / cluster.redis(NodeStats::cpu).max(f64::MIN_POSITIVE),
        many / one
    );
    if let Some(w) = waited {
        println!(
            "    with replicas and WAIT 1: {} nodes ≈ {:.0} {ops}/s (1 ÷ the busiest node's CPU per {op}) = ×{:.2} of the cluster without; \
             a WAIT also costs a replica round trip, which CPU does not show",
            w.nodes.len(),
            w.ceiling(),
            w.ceiling() / many
        );
    }
    let per_core = |r: &Run| r.ops / r.switchyard_cpu.max(f64::MIN_POSITIVE);
    println!(
        "  (CPU per {op} measured with {cores} cores shared by every process; a node with a core of its own may batch differently.) \
         Switchyard side: one core of {side} ≈ {:.0} {ops}/s on the single node, {:.0} on the cluster{}.",
        per_core(single),
        per_core(cluster),
        waited.map_or(String::new(), |w| format!(
            ", {:.0} on the cluster with WAIT 1",
            per_core(w)
        ))
    );
    let per_read = |r: &Run| r.redis(|n| n.commands as f64) / r.redis(|n| n.reads as f64).max(1.0);
    let (one, many) = (per_read(single), per_read(cluster));
    if one > 1.5 * many {
        println!(
            "  Batching: {one:.0} commands per socket read on the single node, {many:.0} on the cluster's nodes: the same load split \
             over {} nodes (and, for a worker, one reader per shard) arrives in smaller batches, so each command costs more system calls.",
            cluster.nodes.len()
        );
    }
    println!("  {note}");
}

/// That the replicated run's waits were real: per master, its `WAIT` calls
/// next to its Lua calls (every script call is followed by one `WAIT`; a
/// short one stops the waits on its slot for a second, so short waits
/// show as fewer `WAIT`s than Lua calls), and the Switchyard side's count
/// of short waits.
fn wait_evidence(w: &Run, side: &str) {
    let masters: Vec<String> = w
        .nodes
        .iter()
        .filter(|(_, role, _)| *role == "master")
        .map(|(port, _, n)| format!("{port}: {} WAITs / {} Lua calls", n.wait, n.lua))
        .collect();
    let (waits, lua) = (w.redis(|n| n.wait as f64), w.redis(|n| n.lua as f64));
    let short = w
        .wait_short
        .map_or_else(|| "not read".to_owned(), |n| n.to_string());
    println!(
        "  WAIT 1 on the {}: {} (WAITs ÷ Lua calls = {:.3}); {WAIT_SHORT} of {side} over the run: {short}",
        w.target,
        masters.join(", "),
        waits / lua.max(1.0)
    );
}

/// `name:value` of an `INFO` reply.
fn info_field<T: std::str::FromStr>(info: &str, name: &str) -> Option<T> {
    info.lines()
        .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.parse().ok())
}

/// `calls` of `cmdstat_<command>:calls=…,usec=…` in `INFO commandstats`.
fn command_calls(info: &str, stat: &str) -> Option<u64> {
    let rest = info
        .lines()
        .find_map(|l| l.trim().strip_prefix(stat)?.strip_prefix(":calls="))?;
    rest.split(',').next()?.parse().ok()
}

/// The bench's temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Self> {
        let dir =
            std::env::temp_dir().join(format!("switchyard-bench-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// A redis-server on a loopback port.
struct Node {
    child: Child,
    port: u16,
    /// A cluster replica's master's port.
    replica_of: Option<u16>,
}

impl Node {
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `replica` or `master` in a cluster, `server` alone.
    fn role(&self, cluster: bool) -> &'static str {
        match (self.replica_of, cluster) {
            (Some(_), _) => "replica",
            (None, true) => "master",
            (None, false) => "server",
        }
    }
}

/// redis-server processes on loopback ports: one plain server, or the
/// masters and replicas of a cluster. Killed when dropped.
struct Nodes {
    /// Masters first, then replicas.
    nodes: Vec<Node>,
    cluster: bool,
}

impl Nodes {
    /// One plain redis-server in `dir`.
    fn single(server: &Path, dir: &Path) -> anyhow::Result<Self> {
        Self::start(server, dir, 1, false)
    }

    /// A Redis Cluster in `dir`: `masters` masters with `replicas` replicas
    /// each, created with redis-cli; answers once every node says
    /// `cluster_state:ok` and every replica's link to its master is up.
    /// Its nodes are killed on error too.
    fn cluster(
        server: &Path,
        redis_cli: &Path,
        dir: &Path,
        masters: usize,
        replicas: usize,
    ) -> anyhow::Result<Self> {
        let mut me = Self::start(server, dir, masters * (1 + replicas), true)?;
        me.create(redis_cli, dir, replicas)?;
        Ok(me)
    }

    /// Start `n` servers in `dir` on free loopback ports (cluster-enabled,
    /// with a bus port each, when `cluster`) and wait until each answers.
    fn start(server: &Path, dir: &Path, n: usize, cluster: bool) -> anyhow::Result<Self> {
        let ports = free_ports(if cluster { 2 * n } else { n })?;
        let mut me = Self {
            nodes: Vec::new(),
            cluster,
        };
        for i in 0..n {
            let (port, bus) = if cluster {
                (ports[2 * i], Some(ports[2 * i + 1]))
            } else {
                (ports[i], None)
            };
            let child = spawn_server(server, &dir.join(port.to_string()), port, bus)?;
            me.nodes.push(Node {
                child,
                port,
                replica_of: None,
            });
        }
        for node in &mut me.nodes {
            wait_ping(node)?;
        }
        Ok(me)
    }

    /// One URL, or the cluster's comma-separated seeds (its masters).
    fn url(&self) -> String {
        let urls: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.replica_of.is_none())
            .map(Node::url)
            .collect();
        urls.join(",")
    }

    /// Join the nodes into a cluster (`redis-cli --cluster create`, slots
    /// split evenly, `replicas` replicas per master), wait until every node
    /// says `cluster_state:ok` and every replica's `master_link_status` is
    /// `up`, and note each node's role (masters first).
    fn create(&mut self, redis_cli: &Path, dir: &Path, replicas: usize) -> anyhow::Result<()> {
        let log = dir.join("cluster-create.log");
        let mut cli = Command::new(redis_cli)
            .args(["--cluster", "create"])
            .args(self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", &replicas.to_string()])
            .arg("--cluster-yes")
            .stdin(Stdio::null())
            .stdout(File::create(&log)?)
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (install it with `apt-get install -y redis-tools`)",
                    redis_cli.display()
                )
            })?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = cli.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                cli.kill().ok();
                cli.wait().ok();
                bail!("redis-cli --cluster create took over 30 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if !status.success() {
            bail!(
                "redis-cli --cluster create failed ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for n in &mut self.nodes {
            let mut conn = redis::Client::open(n.url())?
                .get_connection_with_timeout(Duration::from_secs(2))?;
            loop {
                let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut conn)?;
                let repl: String = redis::cmd("INFO").arg("replication").query(&mut conn)?;
                let ok = info.contains("cluster_state:ok");
                let role: Option<String> = info_field(&repl, "role");
                let ready = match role.as_deref() {
                    Some("master") => true,
                    Some("slave") => {
                        n.replica_of = info_field(&repl, "master_port");
                        info_field::<String>(&repl, "master_link_status").as_deref() == Some("up")
                    }
                    _ => false,
                };
                if ok && ready {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "node 127.0.0.1:{} is not ready after 30 s (cluster_state:ok and, on a replica, master_link_status:up): {info}{repl}",
                        n.port
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.nodes
            .sort_by_key(|n| (n.replica_of.is_some(), n.replica_of, n.port));
        let found = self.nodes.iter().filter(|n| n.replica_of.is_some()).count();
        if found != replicas * (self.nodes.len() - found) {
            bail!(
                "redis-cli made {found} replicas of {} nodes, not {replicas} per master",
                self.nodes.len()
            );
        }
        Ok(())
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.child.kill().ok();
            n.child.wait().ok();
        }
    }
}

/// A redis-server on loopback `port` with its files in `dir`, AOF off; a
/// cluster node when given a cluster `bus` port. It gets SIGKILL when the
/// thread that started it ends (`PR_SET_PDEATHSIG`).
fn spawn_server(server: &Path, dir: &Path, port: u16, bus: Option<u16>) -> anyhow::Result<Child> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = Command::new(server);
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(dir.join("redis.log"));
    if let Some(bus) = bus {
        cmd.args([
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            &bus.to_string(),
        ])
        .args(["--cluster-config-file", "nodes.conf"])
        .args(["--cluster-node-timeout", "5000"])
        .args(["--cluster-require-full-coverage", "no"]);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and only
    // calls async-signal-safe functions (prctl, getppid, _exit).
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent as libc::pid_t {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd.spawn().with_context(|| {
        format!(
            "starting {} (install it with `apt-get install -y redis-server`)",
            server.display()
        )
    })
}

/// Wait (up to 15 s) until `node` answers PING.
fn wait_ping(node: &mut Node) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = node.child.try_wait()? {
            bail!("redis-server on port {} exited early ({status})", node.port);
        }
        if let Ok(mut conn) =
            redis::Client::open(node.url())?.get_connection_with_timeout(Duration::from_secs(1))
            && redis::cmd("PING").query::<String>(&mut conn).is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "redis-server on port {} did not answer within 15 s",
                node.port
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
