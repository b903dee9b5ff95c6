//! `switchyard bench gates`: test-and-set + release through HTTP, and the
//! same Lua script driven by `redis-benchmark`, in one run on one Redis, with
//! the ratio. Machines are shared and noisy: compare the ratio, not the
//! absolute figures, between runs.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use switchyard_api::serve;
use switchyard_shared::config::{ApiConfig, WorkerConfig};
use switchyard_shared::families::gates::scripts;
use switchyard_shared::families::gates::{GateSettings, GateStore};
use switchyard_shared::{Keys, Redis};

use tokio_util::sync::CancellationToken;

use crate::redis_child::RedisChild;

#[derive(Args)]
pub struct BenchCmd {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Gate test-and-set + release through HTTP vs. the Lua script under redis-benchmark.
    Gates(GatesBench),
    /// Deliveries/s to a fast local receiver with 1 and 2 worker processes, and BullMQ on the same Redis.
    Deliveries(DeliveriesBench),
    /// Petri net firing: action-less chains over a split, a notify chain, and the firing script under redis-benchmark.
    Nets(NetsBench),
    /// State-machine transitions through HTTP (single and batch) and the transition script under redis-benchmark.
    Machines(MachinesBench),
}

#[derive(Args)]
struct MachinesBench {
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// How long each HTTP phase runs.
    #[arg(long, default_value = "5s", value_parser = humantime_parse)]
    duration: Duration,
    /// Events per batch call.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
    #[arg(long, default_value = "redis-benchmark")]
    redis_benchmark: PathBuf,
}

#[derive(Args)]
struct NetsBench {
    /// Colours of the split.
    #[arg(long, default_value_t = 1000)]
    colors: usize,
    /// Length of the action-less chain.
    #[arg(long, default_value_t = 100)]
    chain: usize,
    /// Colours sent through the notify chain (each answers 3 callbacks).
    #[arg(long, default_value_t = 200)]
    notify_colors: usize,
    /// Requests for the redis-benchmark phase.
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
    #[arg(long, default_value = "redis-benchmark")]
    redis_benchmark: PathBuf,
}

#[derive(Args)]
struct DeliveriesBench {
    /// Deliveries per run.
    #[arg(long, default_value_t = 5000)]
    jobs: usize,
    /// Concurrent attempts per worker (both systems).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The BullMQ peer's directory (npm ci runs there when node_modules is missing).
    #[arg(long, default_value = "benches/peers/bullmq")]
    bullmq_dir: PathBuf,
    /// Skip the BullMQ runs.
    #[arg(long)]
    no_bullmq: bool,
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
}

#[derive(Args)]
struct GatesBench {
    /// Use this Redis (default: a private redis-server in a temp dir).
    #[arg(long, env = "SWITCHYARD_REDIS_URL")]
    redis_url: Option<String>,
    /// Concurrent HTTP clients, each on its own gate.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// How long the HTTP phase runs.
    #[arg(long, default_value = "10s", value_parser = humantime_parse)]
    duration: Duration,
    /// Requests for the redis-benchmark phase.
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Gates pre-created for the redis-benchmark phase (random pick per call,
    /// so most calls take the grant path).
    #[arg(long, default_value_t = 500_000)]
    keyspace: u64,
    /// The redis-server and redis-benchmark executables.
    #[arg(long, default_value = "redis-server")]
    redis_server: PathBuf,
    #[arg(long, default_value = "redis-benchmark")]
    redis_benchmark: PathBuf,
}

fn humantime_parse(s: &str) -> Result<Duration, String> {
    // clap's value_parser needs a fn path; keep humantime out of this crate's deps.
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    match unit {
        "s" | "" => Ok(Duration::from_secs(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("bad duration unit in {s:?} (use ms, s or m)")),
    }
}

pub fn run(c: BenchCmd) -> anyhow::Result<()> {
    match c.what {
        What::Gates(g) => gates(g),
        What::Deliveries(d) => deliveries(d),
        What::Nets(n) => nets_bench(n),
        What::Machines(m) => machines_bench(m),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Run a benchmark on `url`, or on a private redis-server in a temp dir
/// (stopped and removed afterwards), inside a fresh async runtime.
fn with_redis<F, Fut>(
    url: Option<String>,
    server: &std::path::Path,
    name: &str,
    worker_threads: Option<usize>,
    run: F,
) -> anyhow::Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let dir = std::env::temp_dir().join(format!("switchyard-bench-{name}-{}", std::process::id()));
    let child = match &url {
        Some(_) => None,
        None => Some(RedisChild::start(server, &dir)?),
    };
    let url = url
        .or_else(|| child.as_ref().map(RedisChild::url))
        .context("no Redis")?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = worker_threads {
        rt.worker_threads(n);
    }
    let res = rt.enable_all().build()?.block_on(run(url));
    if let Some(c) = child {
        c.stop();
        std::fs::remove_dir_all(&dir).ok();
    }
    res
}

fn gates(g: GatesBench) -> anyhow::Result<()> {
    let g = &g;
    with_redis(
        g.redis_url.clone(),
        &g.redis_server,
        "gates",
        None,
        |url| async move { gates_async(g, &url).await },
    )
}

async fn gates_async(g: &GatesBench, url: &str) -> anyhow::Result<()> {
    let pool = connect(url).await?;
    let keys = Keys::new("sybench", BENCH_SHARDS);
    let shutdown = CancellationToken::new();
    let base = start_api(&pool, &keys, &shutdown).await?;
    let gates = GateStore::new(
        pool.clone(),
        &keys,
        GateSettings::from(&bench_config(&base).families.gates),
    );

    // --- Phase 1: HTTP, each client on its own gate: test-and-set, then release.
    let http = reqwest::Client::new();
    for i in 0..g.clients {
        gates
            .create_service(&format!("svc{i}"), "bench", &["live".to_owned()], "bench")
            .await?;
    }
    println!(
        "HTTP phase: {} clients, {:?}, test-and-set + release per iteration",
        g.clients, g.duration
    );
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..g.clients {
        let (http, base, dur) = (http.clone(), base.clone(), g.duration);
        tasks.push(tokio::spawn(async move {
            let body = format!(r#"{{"services": {{"svc{i}": ["live"]}}}}"#);
            let mut lat = Vec::new();
            while start.elapsed() < dur {
                let t0 = Instant::now();
                let r = http
                    .put(format!("{base}/api/services"))
                    .body(body.clone())
                    .send()
                    .await?;
                let v: serde_json::Value = r.json().await?;
                let t1 = Instant::now();
                let id = v["ticket"]["id"]
                    .as_str()
                    .context("no ticket: not granted")?
                    .to_owned();
                let r = http
                    .delete(format!("{base}/api/tickets/{id}"))
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "release failed: {}", r.status());
                let t2 = Instant::now();
                lat.push((t1 - t0, t2 - t1));
            }
            anyhow::Ok(lat)
        }));
    }
    let mut tas_lat = Vec::new();
    let mut rel_lat = Vec::new();
    for t in tasks {
        for (a, b) in t.await.context("client task")?? {
            tas_lat.push(a);
            rel_lat.push(b);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    tas_lat.sort_unstable();
    rel_lat.sort_unstable();
    let pairs = tas_lat.len() as f64;
    let http_tas_rate = pairs / elapsed;
    println!(
        "  iterations (test-and-set + release): {:.0}/s",
        pairs / elapsed
    );
    println!(
        "  HTTP requests:                       {:.0}/s",
        2.0 * pairs / elapsed
    );
    println!(
        "  test-and-set latency p50 {:.2} ms, p99 {:.2} ms; release p50 {:.2} ms, p99 {:.2} ms",
        ms(percentile(&tas_lat, 0.5)),
        ms(percentile(&tas_lat, 0.99)),
        ms(percentile(&rel_lat, 0.5)),
        ms(percentile(&rel_lat, 0.99))
    );
    shutdown.cancel();

    // --- Phase 2: the same test-and-set script under redis-benchmark.
    let Some(socket) = url.strip_prefix("unix://") else {
        bail!("the redis-benchmark phase needs a unix-socket Redis URL (omit --redis-url)");
    };
    let gk = keys.gates("bench");
    let prefix = gk.state("rb", "");
    let mut conn = pool.get().await?;
    // Pre-create the gates redis-benchmark picks from: keys named like its
    // 12-digit __rand_int__ placeholders. In chunks, so no call runs long.
    let fill = redis::Script::new(
        "for i = tonumber(ARGV[2]), tonumber(ARGV[3]) - 1 do \
           redis.call('HSET', ARGV[1] .. string.format('%012d', i), 'state', 'open', 'state_ts', 0, 'message', '', 'message_ts', '') \
         end return 1",
    );
    let mut made = 0;
    while made < g.keyspace {
        let end = (made + 20_000).min(g.keyspace);
        let _: i64 = fill
            .arg(&prefix)
            .arg(made)
            .arg(end)
            .invoke_async(&mut conn)
            .await?;
        made = end;
    }
    drop(conn);
    let sha = scripts::GATES_TAS.get_hash().to_owned();
    let today = chrono_today();
    let args: Vec<String> = [
        "EVALSHA".into(),
        sha,
        "8".into(),
        gk.services(),
        gk.tickets(),
        gk.expiry(),
        gk.fence(),
        gk.holidays(),
        format!("{prefix}__rand_int__"),
        format!("{}__rand_int__", gk.queue("rb", "")),
        format!("{}__rand_int__", gk.history("rb", "")),
        "t__rand_int__".into(),
        "0".into(),
        "0".into(),
        "120000".into(),
        "3600000".into(),
        "100".into(),
        today,
        String::new(),
        "bench".into(),
        "1".into(),
        "rb".into(),
        "live".into(),
        "0".into(),
        String::new(),
    ]
    .into();
    println!(
        "redis-benchmark phase: {} EVALSHA gates_tas.lua calls over {} pre-created gates ({made} made), 50 clients",
        g.requests, g.keyspace
    );
    let out = Command::new(&g.redis_benchmark)
        .arg("-s")
        .arg(socket)
        .args([
            "-c",
            "50",
            "-n",
            &g.requests.to_string(),
            "-r",
            &g.keyspace.to_string(),
            "-q",
        ])
        .args(&args)
        .output()
        .with_context(|| format!("running {}", g.redis_benchmark.display()))?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let rps = parse_rps(&text)
        .with_context(|| format!("could not read redis-benchmark output: {text}"))?;
    println!("  Lua test-and-set: {rps:.0} calls/s");
    println!();
    println!(
        "ratio: HTTP test-and-set (each followed by a release) {:.0}/s ÷ raw Lua test-and-set {rps:.0}/s = {:.3}",
        http_tas_rate,
        http_tas_rate / rps
    );
    println!(
        "       HTTP requests {:.0}/s ÷ raw Lua calls {rps:.0}/s = {:.3}  (API, load generator and Redis share this machine's cores)",
        2.0 * http_tas_rate,
        2.0 * http_tas_rate / rps
    );
    Ok(())
}

/// Shards of the benchmark deployments (the default).
const BENCH_SHARDS: u16 = 64;

/// The shared connection to the benchmark's Redis, scripts loaded.
async fn connect(url: &str) -> anyhow::Result<Redis> {
    let opts = switchyard_shared::platform::config::RedisOpts::default();
    Redis::connect_ready(
        url,
        opts.timeouts(),
        switchyard_shared::scripts(),
        Duration::from_secs(10),
    )
    .await
}

/// The API configuration of the benchmarks: defaults, gate namespace
/// `bench` with a 1 h grant, links pointing at `base`.
fn bench_config(base: &str) -> ApiConfig {
    let mut c = ApiConfig::default();
    c.api.public_url = base.to_owned();
    c.families.gates.gate_namespace = "bench".into();
    c.families.gates.gate_grant_ttl = Duration::from_secs(3600);
    c
}

/// Start the API in-process on a loopback port (public URL = that port, so
/// links point at itself); answers its base URL. Stops with `stop`.
async fn start_api(pool: &Redis, keys: &Keys, stop: &CancellationToken) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = switchyard_api::build(pool.clone(), keys.clone(), bench_config(&base))?;
    tokio::spawn(serve(listener, app, stop.clone(), Duration::from_secs(5)));
    Ok(base)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn chrono_today() -> String {
    switchyard_shared::time::today(switchyard_shared::time::utc_now())
}

/// `-q` output: "EVALSHA ...: 12345.67 requests per second, p50=0.123 msec".
fn parse_rps(text: &str) -> Option<f64> {
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("requests per second"))?;
    let before = line.split(" requests per second").next()?;
    let num = before.rsplit([' ', ':', '\r']).find(|s| !s.is_empty())?;
    num.parse().ok()
}

fn deliveries(d: DeliveriesBench) -> anyhow::Result<()> {
    let d = &d;
    with_redis(None, &d.redis_server, "dlv", Some(2), |url| async move {
        deliveries_async(d, &url).await
    })
}

/// A receiver that answers 204 and counts, on loopback.
async fn start_receiver() -> anyhow::Result<(String, Arc<AtomicUsize>, CancellationToken)> {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let app = axum::Router::new().fallback(move || {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::Relaxed);
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { s.cancelled().await })
            .await
    });
    Ok((url, count, stop))
}

async fn switchyard_run(
    d: &DeliveriesBench,
    url: &str,
    hook: &str,
    count: &AtomicUsize,
    workers: usize,
) -> anyhow::Result<f64> {
    let pool = connect(url).await?;
    let prefix = format!("sybench{workers}");
    let keys = Keys::new(&prefix, BENCH_SHARDS);
    let store = switchyard_shared::families::deliveries::DeliveryStore::new(
        pool.clone(),
        keys,
        Duration::from_secs(3600),
    );
    let before = count.load(Ordering::Relaxed);
    // Enqueue everything first, concurrently; only delivery is timed.
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in (0..d.jobs)
        .collect::<Vec<_>>()
        .chunks(d.jobs.div_ceil(16).max(1))
    {
        let (store, hook, chunk) = (store.clone(), hook.to_owned(), chunk.to_vec());
        tasks.spawn(async move {
            for i in chunk {
                store
                    .enqueue(&switchyard_shared::families::deliveries::NewDelivery {
                        url: hook.clone(),
                        method: "POST".into(),
                        headers: Default::default(),
                        body: format!(r#"{{"event":"bench","n":{i}}}"#),
                        policy: "svix".into(),
                        idempotency_key: None,
                        destination: "bench".into(),
                        owner: None,
                    })
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let exe = std::env::current_exe()?;
    let start = Instant::now();
    let mut procs = Vec::new();
    for w in 0..workers {
        procs.push(
            Command::new(&exe)
                .args([
                    "worker",
                    "--redis-url",
                    url,
                    "--key-prefix",
                    &prefix,
                    "--log-level",
                    "warn",
                ])
                .args([
                    "--worker-name",
                    &format!("bench-{w}"),
                    "--worker-block",
                    "50ms",
                ])
                .args(["--worker-concurrency", &d.concurrency.to_string()])
                .args(["--delivery-per-destination", &d.concurrency.to_string()])
                .spawn()
                .context("starting a worker process")?,
        );
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while count.load(Ordering::Relaxed) - before < d.jobs {
        anyhow::ensure!(Instant::now() < deadline, "switchyard run timed out");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    for mut p in procs {
        // SAFETY-free graceful stop: SIGTERM via kill(1), then wait.
        Command::new("kill")
            .arg("-TERM")
            .arg(p.id().to_string())
            .status()
            .ok();
        p.wait().ok();
    }
    Ok(d.jobs as f64 / secs)
}

fn bullmq_run(
    d: &DeliveriesBench,
    socket: &str,
    hook: &str,
    workers: usize,
) -> anyhow::Result<f64> {
    if !d.bullmq_dir.join("node_modules").exists() {
        let ok = Command::new("npm")
            .arg("ci")
            .arg("--silent")
            .current_dir(&d.bullmq_dir)
            .status()?;
        anyhow::ensure!(ok.success(), "npm ci failed in {}", d.bullmq_dir.display());
    }
    let out = Command::new("node")
        .arg("bench.mjs")
        .args([
            "--socket",
            socket,
            "--url",
            hook,
            "--jobs",
            &d.jobs.to_string(),
        ])
        .args([
            "--concurrency",
            &d.concurrency.to_string(),
            "--workers",
            &workers.to_string(),
        ])
        .args(["--prefix", &format!("bq{workers}")])
        .current_dir(&d.bullmq_dir)
        .output()
        .context("running node (BullMQ peer)")?;
    anyhow::ensure!(
        out.status.success(),
        "BullMQ peer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim()).context("BullMQ peer output")?;
    v["per_second"].as_f64().context("per_second missing")
}

async fn deliveries_async(d: &DeliveriesBench, url: &str) -> anyhow::Result<()> {
    let (hook, count, stop) = start_receiver().await?;
    let socket = url
        .strip_prefix("unix://")
        .context("unix socket url")?
        .to_owned();
    println!(
        "deliveries: {} POSTs of a small JSON body to {hook} (answers 204), concurrency {} per worker, one Redis",
        d.jobs, d.concurrency
    );
    let mut rows = Vec::new();
    for workers in [1, 2] {
        let s = switchyard_run(d, url, &hook, &count, workers).await?;
        println!("  switchyard, {workers} worker process(es): {s:.0} deliveries/s");
        let b = if d.no_bullmq {
            None
        } else {
            let (socket, hook, d2) = (socket.clone(), hook.clone(), d.bullmq_dir.clone());
            let jobs = d.jobs;
            let conc = d.concurrency;
            let r = tokio::task::spawn_blocking(move || {
                bullmq_run(
                    &DeliveriesBench {
                        jobs,
                        concurrency: conc,
                        bullmq_dir: d2,
                        no_bullmq: false,
                        redis_server: PathBuf::new(),
                    },
                    &socket,
                    &hook,
                    workers,
                )
            })
            .await??;
            println!("  BullMQ,     {workers} worker(s) in one node process: {r:.0} jobs/s");
            Some(r)
        };
        rows.push((workers, s, b));
    }
    println!();
    for (w, s, b) in rows {
        match b {
            Some(b) => println!(
                "ratio with {w} worker(s): switchyard / BullMQ = {:.2}",
                s / b
            ),
            None => println!("{w} worker(s): {s:.0}/s"),
        }
    }
    println!(
        "(Switchyard's deliveries carry webhook-id/timestamp headers and a durable attempt log; BullMQ's jobs are removed on completion.)"
    );
    stop.cancel();
    Ok(())
}

fn nets_bench(n: NetsBench) -> anyhow::Result<()> {
    let n = &n;
    with_redis(None, &n.redis_server, "nets", None, |url| async move {
        nets_async(n, &url).await
    })
}

async fn commands_processed(pool: &Redis) -> anyhow::Result<(u64, u64)> {
    let mut conn = pool.get().await?;
    let info: String = redis::cmd("INFO").arg("all").query_async(&mut conn).await?;
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split([',', '\r']).next())
            .and_then(|v| v.trim_start_matches("calls=").parse().ok())
            .unwrap_or(0)
    };
    // Client round trips of the engine: script calls plus stream reads/claims
    // (commands run inside scripts are counted by Redis under their own
    // names, so total_commands_processed would overcount).
    let trips =
        field("cmdstat_evalsha:") + field("cmdstat_xreadgroup:") + field("cmdstat_xautoclaim:");
    Ok((trips, field("cmdstat_evalsha:")))
}

async fn wait_fired(
    nets: &switchyard_shared::families::nets::NetStore,
    id: &str,
    total: u64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (meta, _) = nets.load(id).await?;
        let fired: u64 = meta.get("fired").and_then(|v| v.parse().ok()).unwrap_or(0);
        if fired >= total {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "net {id} stuck at {fired}/{total} firings"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn nets_async(n: &NetsBench, url: &str) -> anyhow::Result<()> {
    use switchyard_shared::families::nets::{NetStore, compile};
    let pool = connect(url).await?;
    let keys = Keys::new("sybench", BENCH_SHARDS);
    let nets = NetStore::new(pool.clone(), keys.clone(), 256, Duration::from_secs(3600));
    // One in-process worker runs continuations and callbacks.
    let mut wcfg = WorkerConfig::default();
    wcfg.worker.worker_block = Duration::from_millis(20);
    wcfg.families.deliveries.delivery_per_destination = 64;
    let worker = Arc::new(switchyard_worker::build(pool.clone(), keys.clone(), &wcfg)?);
    let stop = CancellationToken::new();
    tokio::spawn(worker.clone().run(stop.clone()));

    // (a) a chain of action-less transitions over a split.
    let mut ts = vec![
        serde_json::json!({"inputs": ["seed"], "outputs": ["g"], "action": {"type": "create-color-group"}}),
        serde_json::json!({"inputs": ["g"], "outputs": ["c0"], "action": {"type": "split"}}),
    ];
    for i in 0..n.chain {
        ts.push(
            serde_json::json!({"inputs": [format!("c{i}")], "outputs": [format!("c{}", i + 1)]}),
        );
    }
    let compiled = compile(&serde_json::json!({"transitions": ts}))
        .map_err(|e| anyhow::anyhow!("{}: {}", e.location, e.message))?;
    nets.create("chain", &compiled, "http://127.0.0.1:9", true, "svix")
        .await?;
    let total = 2 + (n.chain * n.colors) as u64;
    let (c0, e0) = commands_processed(&pool).await?;
    let start = Instant::now();
    nets.post(
        "chain",
        0,
        &format!(r#"{{"color_group_size": {}}}"#, n.colors),
    )
    .await?;
    wait_fired(&nets, "chain", total).await?;
    let secs = start.elapsed().as_secs_f64();
    let (c1, e1) = commands_processed(&pool).await?;
    let chain_rate = total as f64 / secs;
    println!(
        "(a) chain of {} action-less transitions over a split of {} colours: {total} firings in {secs:.2} s = {chain_rate:.0} firings/s",
        n.chain, n.colors
    );
    println!(
        "    Redis calls per firing (EVALSHA + XREADGROUP + XAUTOCLAIM): {:.3} (EVALSHA alone: {:.3}; bound 256 firings per call)",
        (c1 - c0) as f64 / total as f64,
        (e1 - e0) as f64 / total as f64
    );

    // (b) a notify chain answered by a local receiver through the HTTP API.
    let api_base = start_api(&pool, &keys, &stop).await?;
    // The receiver answers every callback by PUTting to its response link.
    let http = reqwest::Client::new();
    let answered = Arc::new(AtomicUsize::new(0));
    let (h2, a2) = (http.clone(), answered.clone());
    let rx = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let (http, answered) = (h2.clone(), a2.clone());
        async move {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
                && let Some(link) = v["response_links"]["done"].as_str()
            {
                let link = link.to_owned();
                tokio::spawn(async move {
                    if http.put(link).body("{}").send().await.is_ok() {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let rl = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", rl.local_addr()?);
    let s2 = stop.clone();
    tokio::spawn(async move {
        axum::serve(rl, rx)
            .with_graceful_shutdown(async move { s2.cancelled().await })
            .await
    });
    let steps = 3;
    let mut ts = vec![
        serde_json::json!({"inputs": ["seed"], "outputs": ["g"], "action": {"type": "create-color-group"}}),
        serde_json::json!({"inputs": ["g"], "outputs": ["p0"], "action": {"type": "split"}}),
    ];
    for i in 0..steps {
        ts.push(serde_json::json!({"inputs": [format!("p{i}")], "outputs": [format!("w{i}")],
            "action": {"type": "notify", "url": hook, "response_places": {"done": format!("r{i}")}}}));
        ts.push(serde_json::json!({"inputs": [format!("w{i}"), format!("r{i}")], "outputs": [format!("p{}", i + 1)]}));
    }
    let compiled = compile(&serde_json::json!({"transitions": ts}))
        .map_err(|e| anyhow::anyhow!("{}: {}", e.location, e.message))?;
    nets.create("notify", &compiled, &api_base, true, "svix")
        .await?;
    let total = 2 + (2 * steps * n.notify_colors) as u64;
    let start = Instant::now();
    nets.post(
        "notify",
        0,
        &format!(r#"{{"color_group_size": {}}}"#, n.notify_colors),
    )
    .await?;
    wait_fired(&nets, "notify", total).await?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "(b) notify chain ({steps} callbacks per colour, each answered by PUT to its response link), {} colours: {total} firings, {} callbacks in {secs:.2} s = {:.0} firings/s, {:.0} callbacks/s",
        n.notify_colors,
        answered.load(Ordering::Relaxed),
        total as f64 / secs,
        (steps * n.notify_colors) as f64 / secs
    );
    stop.cancel();

    // (c) the firing script itself under redis-benchmark: each call records a
    // token and fires one transition.
    let compiled = compile(&serde_json::json!({"transitions": [
        {"inputs": ["seed"], "outputs": ["g"], "action": {"type": "create-color-group"}},
        {"inputs": ["a"], "outputs": ["b"]}
    ]}))
    .map_err(|e| anyhow::anyhow!("{}: {}", e.location, e.message))?;
    nets.create("rb", &compiled, "http://127.0.0.1:9", true, "svix")
        .await?;
    let keyspace = 100_000u64; // the largest colour group allowed
    nets.post("rb", 0, &format!(r#"{{"color_group_size": {keyspace}}}"#))
        .await?;
    let k = nets.keys("rb");
    let place_a = compiled.place_index("a").context("place a")?;
    let socket = url.strip_prefix("unix://").context("unix socket")?;
    let (f0, _) = nets.load("rb").await?;
    let fired0: u64 = f0.get("fired").and_then(|v| v.parse().ok()).unwrap_or(0);
    let out = Command::new(&n.redis_benchmark)
        .arg("-s")
        .arg(socket)
        .args([
            "-c",
            "50",
            "-n",
            &n.requests.to_string(),
            "-r",
            &keyspace.to_string(),
            "-q",
        ])
        .args([
            "EVALSHA",
            switchyard_shared::families::nets::scripts::NET.get_hash(),
            "9",
        ])
        .args([
            &k.meta, &k.marking, &k.groups, &k.fired, &k.seen, &k.agenda, &k.stream, &k.index,
            &k.begins,
        ])
        .args([
            "put",
            "rb",
            "256",
            "3600000",
            &place_a.to_string(),
            "__rand_int__",
            "-",
            "{}",
        ])
        .output()
        .context("running redis-benchmark")?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let rps = parse_rps(&text).with_context(|| format!("redis-benchmark output: {text}"))?;
    if std::env::var("BENCH_DEBUG").is_ok() {
        let mut conn = pool.get().await?;
        let r: redis::RedisResult<String> = redis::cmd("EVALSHA")
            .arg(switchyard_shared::families::nets::scripts::NET.get_hash())
            .arg(9)
            .arg(&[
                &k.meta, &k.marking, &k.groups, &k.fired, &k.seen, &k.agenda, &k.stream, &k.index,
                &k.begins,
            ])
            .arg(&[
                "put",
                "rb",
                "256",
                "3600000",
                &place_a.to_string(),
                "000000012345",
                "-",
                "{}",
            ])
            .query_async(&mut conn)
            .await;
        eprintln!("one call: {r:?}");
        eprintln!(
            "{}",
            text.chars()
                .rev()
                .take(600)
                .collect::<String>()
                .chars()
                .rev()
                .collect::<String>()
        );
    }
    let (f1, _) = nets.load("rb").await?;
    let fired1: u64 = f1.get("fired").and_then(|v| v.parse().ok()).unwrap_or(0);
    let firing_share = (fired1 - fired0) as f64 / n.requests as f64;
    println!(
        "(c) redis-benchmark, EVALSHA net.lua put+fire: {rps:.0} calls/s ({:.0} firings/s; {:.1}% of calls fired, the rest repeated a colour)",
        rps * firing_share,
        firing_share * 100.0
    );
    println!();
    println!(
        "ratio (a) ÷ (c) firings/s: {:.2}  (chains fire up to 256 transitions per call, so one call does more work than a put)",
        chain_rate / (rps * firing_share)
    );
    Ok(())
}

fn machines_bench(m: MachinesBench) -> anyhow::Result<()> {
    let m = &m;
    with_redis(None, &m.redis_server, "sm", None, |url| async move {
        machines_async(m, &url).await
    })
}

async fn machines_async(m: &MachinesBench, url: &str) -> anyhow::Result<()> {
    let pool = connect(url).await?;
    let keys = Keys::new("sybench", BENCH_SHARDS);
    let stop = CancellationToken::new();
    let base = start_api(&pool, &keys, &stop).await?;
    let http = reqwest::Client::new();
    let def = serde_json::json!({"id": "BENCH", "states": [
        {"id": "1", "next": ["2", "3"]}, {"id": "2", "next": ["4"]}, {"id": "3", "next": []},
        {"id": "4", "next": ["5"]}, {"id": "5", "next": ["6"]}, {"id": "6", "next": ["4", "7"]}, {"id": "7", "next": ["3"]}
    ]});
    let r = http
        .post(format!("{base}/api/statemachines"))
        .body(def.to_string())
        .send()
        .await?;
    anyhow::ensure!(
        r.status().is_success(),
        "creating the machine: {}",
        r.status()
    );
    // Each entity walks 1 → 2 → 4 → 5 → 6 → 4 → 5 → 6 …
    let walk = |i: usize| -> &'static str {
        match i {
            0 => "1",
            1 => "2",
            _ => ["4", "5", "6"][(i - 2) % 3],
        }
    };
    let mut rates = vec![];
    for batch in [1usize, m.batch] {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..m.clients {
            let (http, base, dur) = (http.clone(), base.clone(), m.duration);
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut done = 0usize;
                let mut step = 0usize;
                while start.elapsed() < dur {
                    let t0 = Instant::now();
                    if batch == 1 {
                        let r = http
                            .post(format!("{base}/api/statemachines/BENCH/entities/c{c}/transitions"))
                            .body(format!(r#"{{"to": "{}"}}"#, walk(step)))
                            .send()
                            .await?;
                        anyhow::ensure!(r.status().is_success(), "transition failed: {}", r.status());
                    } else {
                        let events: Vec<serde_json::Value> = (0..batch)
                            .map(|e| serde_json::json!({"entity": format!("b{c}-{e}"), "to": walk(step)}))
                            .collect();
                        let r = http
                            .post(format!("{base}/api/statemachines/BENCH/transitions"))
                            .body(serde_json::json!({"events": events}).to_string())
                            .send()
                            .await?;
                        anyhow::ensure!(r.status().is_success(), "batch failed: {}", r.status());
                    }
                    lat.push(t0.elapsed());
                    done += batch;
                    step += 1;
                }
                anyhow::Ok((done, lat))
            }));
        }
        let mut total = 0;
        let mut lat = vec![];
        for t in tasks {
            let (d, l) = t.await??;
            total += d;
            lat.extend(l);
        }
        lat.sort_unstable();
        let rate = total as f64 / start.elapsed().as_secs_f64();
        println!(
            "HTTP, {} event(s) per call, {} clients: {rate:.0} transitions/s (call p50 {:.2} ms, p99 {:.2} ms)",
            batch,
            m.clients,
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99))
        );
        rates.push(rate);
    }
    stop.cancel();

    // The transition script under redis-benchmark: one new entity entering state 1 per call.
    let k = keys.machine("BENCH");
    let socket = url.strip_prefix("unix://").context("unix socket")?;
    let mut args: Vec<String> = vec![
        "EVALSHA".into(),
        switchyard_shared::families::machines::scripts::SM_TRANSITION
            .get_hash()
            .into(),
        (4 + 7 + 2).to_string(),
    ];
    args.extend([
        k.meta(),
        k.counts(),
        k.events(),
        k.bucket(switchyard_shared::time::now_ms() / 60_000),
    ]);
    for s in ["1", "2", "3", "4", "5", "6", "7"] {
        args.push(k.state(s));
    }
    args.push(k.entity("rb__rand_int__"));
    args.push(k.history("rb__rand_int__"));
    args.extend([
        "100".into(),
        "3600000".into(),
        "1".into(),
        "rb__rand_int__".into(),
        "1".into(),
    ]);
    // at, data, event id: none.
    args.extend(["".into(), "".into(), "".into()]);
    let out = Command::new(&m.redis_benchmark)
        .arg("-s")
        .arg(socket)
        .args([
            "-c",
            "50",
            "-n",
            &m.requests.to_string(),
            "-r",
            "1000000000",
            "-q",
        ])
        .args(&args)
        .output()
        .context("running redis-benchmark")?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let rps = parse_rps(&text).with_context(|| format!("redis-benchmark output: {text}"))?;
    let mut conn = pool.get().await?;
    let entered: i64 = redis::cmd("HGET")
        .arg(k.counts())
        .arg("1")
        .query_async(&mut conn)
        .await
        .unwrap_or(0);
    println!(
        "redis-benchmark, EVALSHA sm_transition.lua (one new entity per call): {rps:.0} calls/s ({entered} entities now in state 1)"
    );
    println!();
    println!(
        "ratio: HTTP single {:.0}/s ÷ script {rps:.0}/s = {:.3}",
        rates[0],
        rates[0] / rps
    );
    println!(
        "ratio: HTTP batch of {} {:.0}/s ÷ script {rps:.0}/s = {:.3}",
        m.batch,
        rates[1],
        rates[1] / rps
    );
    Ok(())
}
