//! `switchyard`: one binary, one subcommand per role.
//!
//! * `switchyard api|worker|scheduler --redis-url URL` — one role each; run
//!   any number of replicas.
//! * `switchyard dev --listen ADDR --data-dir DIR` — all three roles in one
//!   process; without `--redis-url` it also runs a private `redis-server`
//!   child on a unix socket inside DIR (AOF on), which dies with this process.
//! * `switchyard bench gates` — the gate benchmark (see README).

mod bench;
mod redis_child;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use switchyard_shared::FamiliesOpts;
use switchyard_shared::config::{ApiConfig, SchedulerConfig, WorkerConfig};
use switchyard_shared::platform::config::{
    ApiOpts, LogOpts, MetricsOpts, OutboxOpts, RedisOpts, SchedulerOpts, WorkerOpts,
};
use switchyard_shared::telemetry;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Redis-backed coordination service"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the HTTP API.
    Api(Box<ApiConfig>),
    /// Run a background worker (stream consumer).
    Worker(Box<WorkerConfig>),
    /// Run a scheduler (timers, expiry).
    Scheduler(Box<SchedulerConfig>),
    /// Run api + worker + scheduler in one process, with a private redis-server unless --redis-url is given.
    Dev(Box<DevConfig>),
    /// Benchmarks.
    Bench(bench::BenchCmd),
}

/// `switchyard dev`: every role's options once, plus the private Redis.
#[derive(Args)]
struct DevConfig {
    #[command(flatten)]
    redis: RedisOpts,
    #[command(flatten)]
    log: LogOpts,
    #[command(flatten)]
    api: ApiOpts,
    #[command(flatten)]
    worker: WorkerOpts,
    #[command(flatten)]
    scheduler: SchedulerOpts,
    #[command(flatten)]
    outbox: OutboxOpts,
    #[command(flatten)]
    families: FamiliesOpts,
    /// Directory for the private redis-server (socket, AOF, log).
    #[arg(long, env = "SWITCHYARD_DATA_DIR", default_value = ".switchyard")]
    data_dir: PathBuf,
    /// The redis-server executable used for the private server.
    #[arg(long, env = "SWITCHYARD_REDIS_SERVER", default_value = "redis-server")]
    redis_server: PathBuf,
}

impl DevConfig {
    fn api(&self) -> ApiConfig {
        ApiConfig {
            redis: self.redis.clone(),
            log: self.log.clone(),
            api: self.api.clone(),
            outbox: self.outbox.clone(),
            families: self.families.clone(),
        }
    }
    fn worker(&self) -> WorkerConfig {
        WorkerConfig {
            redis: self.redis.clone(),
            log: self.log.clone(),
            worker: self.worker.clone(),
            metrics: MetricsOpts::default(),
            outbox: self.outbox.clone(),
            families: self.families.clone(),
        }
    }
    fn scheduler(&self) -> SchedulerConfig {
        SchedulerConfig {
            redis: self.redis.clone(),
            log: self.log.clone(),
            scheduler: self.scheduler.clone(),
            metrics: MetricsOpts::default(),
            outbox: self.outbox.clone(),
            families: self.families.clone(),
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// A token cancelled on SIGINT or SIGTERM.
fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
        tracing::info!("shutdown requested");
        t.cancel();
    });
    token
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    switchyard_shared::init_tls();
    match cli.cmd {
        Cmd::Api(c) => {
            let _telemetry = telemetry::init(&c.log, "api");
            runtime()?.block_on(async { switchyard_api::run(&c, shutdown_on_signals()).await })
        }
        Cmd::Worker(c) => {
            let _telemetry = telemetry::init(&c.log, "worker");
            runtime()?.block_on(async { switchyard_worker::run(&c, shutdown_on_signals()).await })
        }
        Cmd::Scheduler(c) => {
            let _telemetry = telemetry::init(&c.log, "scheduler");
            runtime()?
                .block_on(async { switchyard_scheduler::run(&c, shutdown_on_signals()).await })
        }
        Cmd::Dev(c) => dev(*c),
        Cmd::Bench(c) => bench::run(c),
    }
}

fn dev(mut c: DevConfig) -> anyhow::Result<()> {
    // Flushes the trace export when dev mode returns.
    let _telemetry = telemetry::init(&c.log, "dev");
    // Response links must point at this API unless told otherwise.
    if c.outbox.public_url == OutboxOpts::default().public_url {
        c.outbox.public_url = format!("http://{}", c.api.listen);
    }
    // The child is started from the main thread, before any other thread
    // exists: its parent-death signal is tied to the thread that forked it.
    let child = match &c.redis.redis_url {
        Some(_) => None,
        None => {
            let child = redis_child::RedisChild::start(&c.redis_server, &c.data_dir)?;
            c.redis.redis_url = Some(child.url());
            println!("Switchyard dev: private redis-server at {}", child.url());
            Some(child)
        }
    };
    let (api, worker, scheduler) = (c.api(), c.worker(), c.scheduler());
    let result = runtime()?.block_on(async {
        let shutdown = shutdown_on_signals();
        let stop_all = |r: anyhow::Result<()>| {
            if r.is_err() {
                shutdown.cancel();
            }
            r
        };
        let (a, w, s) = tokio::join!(
            async { stop_all(switchyard_api::run(&api, shutdown.clone()).await) },
            async { stop_all(switchyard_worker::run(&worker, shutdown.clone()).await) },
            async { stop_all(switchyard_scheduler::run(&scheduler, shutdown.clone()).await) }
        );
        a.and(w).and(s)
    });
    if let Some(child) = child {
        child.stop();
    }
    result
}
