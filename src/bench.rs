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
use switchyard_api::{AppState, router, serve};
use switchyard_shared::config::ApiOpts;
use switchyard_shared::gates::{BuildWindows, GateSettings};
use switchyard_shared::{Keys, RedisPool, scripts};
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
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn gates(g: GatesBench) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("switchyard-bench-{}", std::process::id()));
    let child = match &g.redis_url {
        Some(_) => None,
        None => Some(RedisChild::start(&g.redis_server, &dir)?),
    };
    let url = g
        .redis_url
        .clone()
        .or_else(|| child.as_ref().map(RedisChild::url))
        .context("no Redis")?;
    let res = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(gates_async(&g, &url));
    if let Some(c) = child {
        c.stop();
        std::fs::remove_dir_all(&dir).ok();
    }
    res
}

async fn gates_async(g: &GatesBench, url: &str) -> anyhow::Result<()> {
    let pool = RedisPool::new(url, 32)?;
    pool.wait_ready(Duration::from_secs(10)).await?;
    let keys = Keys::new("sybench", 16);
    let settings = GateSettings {
        namespace: "bench".into(),
        queue_ttl: Duration::from_secs(120),
        grant_ttl: Duration::from_secs(3600),
        history_len: 100,
        windows: BuildWindows::default(),
    };
    let state = AppState::new(
        pool.clone(),
        &keys,
        settings.clone(),
        &Default::default(),
        &Default::default(),
        vec![],
    )?;
    let opts = ApiOpts {
        listen: "127.0.0.1:0".into(),
        api_tokens: vec![],
        api_token_file: None,
        max_body_bytes: 1 << 20,
        request_timeout: Duration::from_secs(30),
        shutdown_timeout: Duration::from_secs(5),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    tokio::spawn(serve(
        listener,
        router(state.clone(), &opts),
        shutdown.clone(),
        Duration::from_secs(5),
    ));

    // --- Phase 1: HTTP, each client on its own gate: test-and-set, then release.
    let http = reqwest::Client::new();
    for i in 0..g.clients {
        state
            .gates
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
    let dir = std::env::temp_dir().join(format!("switchyard-bench-dlv-{}", std::process::id()));
    let child = RedisChild::start(&d.redis_server, &dir)?;
    let url = child.url();
    let res = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(deliveries_async(&d, &url));
    child.stop();
    std::fs::remove_dir_all(&dir).ok();
    res
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
    let pool = RedisPool::new(url, 16)?;
    pool.wait_ready(Duration::from_secs(10)).await?;
    let prefix = format!("sybench{workers}");
    let keys = Keys::new(&prefix, 16);
    let store = switchyard_shared::deliveries::DeliveryStore::new(
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
                    .enqueue(&switchyard_shared::deliveries::NewDelivery {
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
