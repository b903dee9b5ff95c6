//! What every bench shares: the private Redis and runtime, the in-process
//! API, the options every bench repeats, the `redis-benchmark` driver, and
//! the small number helpers.

use std::ffi::OsStr;
use std::future::Future;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use switchyard_api::serve;
use switchyard_shared::config::ApiConfig;
use switchyard_shared::{Keys, Redis};
use tokio_util::sync::CancellationToken;

use crate::redis_child::RedisChild;

/// Shards of the benchmark deployments (the default).
pub const BENCH_SHARDS: u16 = 64;

/// The redis-server every bench starts in a temp dir (unless told a URL).
#[derive(Args, Clone)]
pub struct ServerArgs {
    /// The redis-server executable.
    #[arg(long, default_value = "redis-server")]
    pub redis_server: PathBuf,
}

/// The options of the benches that also drive a script under redis-benchmark.
#[derive(Args)]
pub struct ScriptArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The redis-benchmark executable.
    #[arg(long, default_value = "redis-benchmark")]
    pub redis_benchmark: PathBuf,
    /// Requests for the redis-benchmark phase.
    #[arg(long, default_value_t = 100_000)]
    pub requests: u64,
}

impl ScriptArgs {
    /// Send `command` (an `EVALSHA …`) `requests` times from 50 clients over
    /// `socket`, each `__rand_int__` drawn below `keyspace`. Answers calls/s
    /// and redis-benchmark's whole output.
    pub fn redis_benchmark<S: AsRef<OsStr>>(
        &self,
        socket: &str,
        keyspace: u64,
        command: &[S],
    ) -> anyhow::Result<(f64, String)> {
        let out = Command::new(&self.redis_benchmark)
            .arg("-s")
            .arg(socket)
            .args(["-c", "50", "-n", &self.requests.to_string()])
            .args(["-r", &keyspace.to_string(), "-q"])
            .args(command)
            .output()
            .with_context(|| format!("running {}", self.redis_benchmark.display()))?;
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let rps = parse_rps(&text)
            .with_context(|| format!("could not read redis-benchmark output: {text}"))?;
        Ok((rps, text))
    }
}

/// A duration option: `10s`, `500ms`, `2m` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
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

/// Run `bench(args, url)` on `url`, or on a private redis-server in a temp
/// dir (stopped and removed afterwards), inside a fresh async runtime.
pub fn with_redis<A>(
    args: &A,
    url: Option<String>,
    server: &ServerArgs,
    name: &str,
    worker_threads: Option<usize>,
    bench: impl AsyncFnOnce(&A, &str) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("switchyard-bench-{name}-{}", std::process::id()));
    let child = match &url {
        Some(_) => None,
        None => Some(RedisChild::start(&server.redis_server, &dir)?),
    };
    let url = url
        .or_else(|| child.as_ref().map(RedisChild::url))
        .context("no Redis")?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = worker_threads {
        rt.worker_threads(n);
    }
    let res = rt.enable_all().build()?.block_on(bench(args, &url));
    if let Some(c) = child {
        c.stop();
        std::fs::remove_dir_all(&dir).ok();
    }
    res
}

/// The socket path of a `unix://` Redis URL (redis-benchmark and the BullMQ
/// peer reach Redis through it).
pub fn unix_socket(url: &str) -> anyhow::Result<&str> {
    url.strip_prefix("unix://")
        .context("this bench needs a unix-socket Redis URL (omit --redis-url)")
}

/// The shared connection to the benchmark's Redis, scripts loaded.
pub async fn connect(url: &str) -> anyhow::Result<Redis> {
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
pub fn bench_config(base: &str) -> ApiConfig {
    let mut c = ApiConfig::default();
    c.outbox.public_url = base.to_owned();
    c.families.gates.gate_namespace = "bench".into();
    c.families.gates.gate_grant_ttl = Duration::from_secs(3600);
    c
}

/// A bench deployment on one Redis: the shared connection, keys under
/// `sybench`, and a stop token for what the bench starts in-process.
pub struct Deployment {
    pub pool: Redis,
    pub keys: Keys,
    pub stop: CancellationToken,
}

impl Deployment {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            pool: connect(url).await?,
            keys: Keys::new("sybench", BENCH_SHARDS),
            stop: CancellationToken::new(),
        })
    }

    /// Start the API in-process on a loopback port (public URL = that port,
    /// so links point at itself); answers its base URL. Stops with `stop`.
    pub async fn start_api(&self) -> anyhow::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let app = switchyard_api::build(self.pool.clone(), self.keys.clone(), bench_config(&base))?;
        let grace = Duration::from_secs(5);
        tokio::spawn(serve(listener, app, self.stop.clone(), grace));
        Ok(base)
    }
}

/// Serve `app` (a stand-in receiver) on a loopback port until `stop`;
/// answers its base URL.
pub async fn serve_loopback(app: axum::Router, stop: &CancellationToken) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let stop = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    });
    Ok(base)
}

/// Run `client(i)` for `n` concurrent clients; answers their results in
/// client order, or the first error.
pub async fn each_client<T, F, Fut>(n: usize, client: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(client(i))).collect();
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.context("client task")??);
    }
    Ok(out)
}

/// `n` loopback ports that are free now.
pub fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    // Held together so that no port is handed out twice.
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// The sum of counter `name`'s series in Prometheus text (0 when absent:
/// a counter never incremented is not rendered).
pub fn prometheus_counter(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// CPU seconds (user + system, all threads) that process `pid` has used so
/// far, from `/proc/<pid>/stat` (Linux).
pub fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count from its `)`. The
    // state is field 3, utime field 14, stime field 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("malformed /proc stat")?
        .1
        .split_whitespace()
        .collect();
    let field = |n: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(n - 3)
            .context("short /proc stat")?
            .parse::<u64>()?)
    };
    Ok((field(14)? + field(15)?) as f64 / clock_ticks())
}

/// Clock ticks per second of `/proc`'s CPU times.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf(3) only reads a configuration value.
    #[allow(unsafe_code)]
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
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

/// The p50 and p99 of `lat` in milliseconds (sorts it).
pub fn p50_p99_ms(lat: &mut [Duration]) -> (f64, f64) {
    lat.sort_unstable();
    (ms(percentile(lat, 0.5)), ms(percentile(lat, 0.99)))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
