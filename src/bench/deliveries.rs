//! `switchyard bench deliveries`: deliveries/s to a fast local receiver with
//! 1 and 2 worker processes, and the BullMQ peer on the same Redis.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use switchyard_shared::Keys;
use switchyard_shared::families::deliveries::{DeliveryStore, NewDelivery};
use tokio_util::sync::CancellationToken;

use super::common::{
    BENCH_SHARDS, ServerArgs, connect, cpu_secs, free_ports, prometheus_counter, serve_loopback,
    unix_socket, with_redis,
};

#[derive(Args, Clone)]
pub struct DeliveriesBench {
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
    #[command(flatten)]
    redis: ServerArgs,
}

pub fn run(d: DeliveriesBench) -> anyhow::Result<()> {
    with_redis(&d, None, &d.redis, "dlv", Some(2), bench)
}

async fn bench(d: &DeliveriesBench, url: &str) -> anyhow::Result<()> {
    let stop = CancellationToken::new();
    let (hook, count) = start_receiver(&stop).await?;
    let socket = unix_socket(url)?.to_owned();
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
            let (d, socket, hook) = (d.clone(), socket.clone(), hook.clone());
            let r = tokio::task::spawn_blocking(move || bullmq_run(&d, &socket, &hook, workers))
                .await??;
            println!("  BullMQ,     {workers} worker(s) in one node process: {r:.0} jobs/s");
            Some(r)
        };
        rows.push((workers, s, b));
    }
    report(&rows);
    stop.cancel();
    Ok(())
}

/// A receiver that answers 204 and counts, on loopback: its URL and count.
pub async fn start_receiver(
    stop: &CancellationToken,
) -> anyhow::Result<(String, Arc<AtomicUsize>)> {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let app = axum::Router::new().fallback(move || {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::Relaxed);
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let base = serve_loopback(app, stop).await?;
    Ok((format!("{base}/hook"), count))
}

/// Enqueue `d.jobs` deliveries to `hook` under a fresh prefix, then time
/// `workers` worker processes delivering them all. Answers deliveries/s.
async fn switchyard_run(
    d: &DeliveriesBench,
    url: &str,
    hook: &str,
    count: &AtomicUsize,
    workers: usize,
) -> anyhow::Result<f64> {
    let prefix = format!("sybench{workers}");
    // Enqueue everything first; only delivery is timed.
    enqueue_all(d.jobs, url, &prefix, hook).await?;
    let run = Delivery {
        jobs: d.jobs,
        concurrency: d.concurrency,
        workers,
        wait_replicas: 0,
    };
    Ok(run.deliver(url, &prefix, count).await?.per_sec)
}

/// A timed delivery run: `workers` worker processes deliver `jobs`
/// deliveries enqueued before (with [`enqueue_all`]), `concurrency`
/// attempts at a time each.
pub struct Delivery {
    pub jobs: usize,
    pub concurrency: usize,
    pub workers: usize,
    /// The workers' `--redis-wait-replicas` (0: no `WAIT`). When set, each
    /// worker also serves `/metrics` on a loopback port, read before it
    /// stops ([`Delivered::wait_short`]).
    pub wait_replicas: u32,
}

/// What a [`Delivery`] took.
pub struct Delivered {
    pub per_sec: f64,
    /// CPU seconds the worker processes used, start-up included.
    pub worker_cpu: f64,
    /// With `wait_replicas`: the workers' `switchyard_redis_wait_short_total`
    /// (WAITs that came back with fewer replicas than asked for).
    pub wait_short: Option<u64>,
}

impl Delivery {
    /// Start the workers on `prefix` and wait until the receiver's `count`
    /// grew by `jobs`; then stop the workers.
    pub async fn deliver(
        &self,
        url: &str,
        prefix: &str,
        count: &AtomicUsize,
    ) -> anyhow::Result<Delivered> {
        let before = count.load(Ordering::Relaxed);
        let start = Instant::now();
        let metrics = match self.wait_replicas {
            0 => Vec::new(),
            _ => free_ports(self.workers)?,
        };
        let mut procs = Vec::with_capacity(self.workers);
        for w in 0..self.workers {
            procs.push(Worker(self.start_worker(url, prefix, w, metrics.get(w))?));
        }
        let deadline = Instant::now() + Duration::from_secs(300);
        while count.load(Ordering::Relaxed) - before < self.jobs {
            anyhow::ensure!(Instant::now() < deadline, "switchyard run timed out");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let secs = start.elapsed().as_secs_f64();
        let mut worker_cpu = 0.0;
        for p in &procs {
            worker_cpu += cpu_secs(p.0.id())?;
        }
        let mut wait_short = None;
        for port in &metrics {
            let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
                .await?
                .error_for_status()?
                .text()
                .await?;
            *wait_short.get_or_insert(0) +=
                prometheus_counter(&text, "switchyard_redis_wait_short_total");
        }
        drop(procs);
        Ok(Delivered {
            per_sec: self.jobs as f64 / secs,
            worker_cpu,
            wait_short,
        })
    }

    /// Worker process number `w` of this binary on `prefix`, serving
    /// `/metrics` on loopback `metrics` when given.
    fn start_worker(
        &self,
        url: &str,
        prefix: &str,
        w: usize,
        metrics: Option<&u16>,
    ) -> anyhow::Result<Child> {
        let concurrency = self.concurrency.to_string();
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["worker", "--redis-url", url, "--key-prefix", prefix])
            .args(["--log-level", "warn"])
            .args(["--worker-name", &format!("bench-{w}")])
            .args(["--worker-block", "50ms"])
            .args(["--worker-concurrency", &concurrency])
            .args(["--delivery-per-destination", &concurrency])
            .args(["--redis-wait-replicas", &self.wait_replicas.to_string()]);
        if let Some(port) = metrics {
            cmd.args(["--metrics-listen", &format!("127.0.0.1:{port}")]);
        }
        cmd.spawn().context("starting a worker process")
    }
}

/// A worker process, stopped (SIGTERM, then waited for) when dropped, so
/// an error or a timeout leaves none behind.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status()
            .ok();
        self.0.wait().ok();
    }
}

/// Enqueue `jobs` deliveries to `hook`, from 16 concurrent tasks.
pub async fn enqueue_all(jobs: usize, url: &str, prefix: &str, hook: &str) -> anyhow::Result<()> {
    let pool = connect(url).await?;
    let store = DeliveryStore::new(
        pool.clone(),
        Keys::new(prefix, BENCH_SHARDS),
        Duration::from_secs(3600),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in (0..jobs)
        .collect::<Vec<_>>()
        .chunks(jobs.div_ceil(16).max(1))
    {
        let (store, hook, chunk) = (store.clone(), hook.to_owned(), chunk.to_vec());
        tasks.spawn(async move {
            for i in chunk {
                store
                    .enqueue(&NewDelivery {
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
    Ok(())
}

/// The BullMQ peer with `workers` workers in one node process (after `npm
/// ci` when node_modules is missing). Answers jobs/s.
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
        .args(["--socket", socket, "--url", hook])
        .args(["--jobs", &d.jobs.to_string()])
        .args(["--concurrency", &d.concurrency.to_string()])
        .args(["--workers", &workers.to_string()])
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

fn report(rows: &[(usize, f64, Option<f64>)]) {
    println!();
    for &(w, s, b) in rows {
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
}
