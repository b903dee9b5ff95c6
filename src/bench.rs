//! `switchyard bench gates`: test-and-set + release through HTTP, and the
//! same Lua script driven by `redis-benchmark`, in one run on one Redis, with
//! the ratio. Machines are shared and noisy: compare the ratio, not the
//! absolute figures, between runs.

use std::path::PathBuf;
use std::process::Command;
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
