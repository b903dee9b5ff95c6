//! Switchyard's scheduler: the process that owns time. Several may run at
//! once; each step is a Lua call that re-checks the deadline, so a timer
//! fires exactly once whoever gets there first.
//!
//! The runtime runs a list of [`Periodic`] tasks, each on its own interval:
//!
//! * [`platform`] — timers (every shard's timer set, member `kind|payload`,
//!   moved into its work stream when due) and the work-stream gauges;
//! * [`families`] — the registry: each family adds its tasks (gate ticket
//!   expiry, delivery index pruning and gauges, threshold checks).
//!
//! [`Scheduler::step`] runs one named task once, so tests step it instead
//! of waiting for an interval.

pub mod families;
pub mod periodic;
pub mod platform;

use std::sync::Arc;

use switchyard_shared::config::SchedulerConfig;
use switchyard_shared::platform::probes::{self, Liveness};
use switchyard_shared::{Keys, Redis};
use tokio_util::sync::CancellationToken;

pub use periodic::Periodic;

/// Everything a family's `tasks` may use.
pub struct Ctx {
    pub redis: Redis,
    pub keys: Keys,
    pub config: SchedulerConfig,
}

pub struct Scheduler {
    tasks: Vec<Arc<dyn Periodic>>,
    /// Every task's loop holds a guard while it runs.
    liveness: Liveness,
}

impl Scheduler {
    /// The platform's tasks and every family's.
    pub fn new(redis: Redis, keys: Keys, config: SchedulerConfig) -> anyhow::Result<Self> {
        let ctx = Ctx {
            redis,
            keys,
            config,
        };
        let mut tasks = platform::tasks(&ctx);
        tasks.extend(families::tasks(&ctx)?);
        Ok(Self {
            tasks,
            liveness: Liveness::default(),
        })
    }

    /// The names of the tasks, in the order they were registered.
    pub fn task_names(&self) -> Vec<&'static str> {
        self.tasks.iter().map(|t| t.name()).collect()
    }

    /// Whether [`run`](Self::run)'s task loops are running (for `/healthz`
    /// of `--metrics-listen`).
    pub fn liveness(&self) -> Liveness {
        self.liveness.clone()
    }

    /// Run the task called `name` once; returns how many items it handled.
    pub async fn step(&self, name: &str) -> anyhow::Result<usize> {
        let task = self
            .tasks
            .iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| anyhow::anyhow!("no scheduler task {name:?}"))?;
        task.run_once().await
    }

    /// Run until `shutdown`: every task on its own interval; a failed step
    /// is counted, logged and retried at the next tick.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut handles = Vec::new();
        for task in self.tasks {
            let shutdown = shutdown.clone();
            let alive = self.liveness.enter();
            handles.push(tokio::spawn(async move {
                let _alive = alive;
                let mut every = tokio::time::interval(task.every());
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        _ = every.tick() => {}
                    }
                    // A panicking step is a bug; it must not silently stop
                    // this task while the others run on.
                    let step = std::panic::AssertUnwindSafe(task.run_once());
                    let res = match futures::FutureExt::catch_unwind(step).await {
                        Ok(res) => res,
                        Err(_) => Err(anyhow::anyhow!("the step panicked")),
                    };
                    if let Err(e) = res {
                        metrics::counter!("switchyard_scheduler_errors_total", "task" => task.name())
                            .increment(1);
                        tracing::error!(task = task.name(), error = %format!("{e:#}"), "scheduler step failed; retrying next tick");
                    }
                }
            }));
        }
        for h in handles {
            h.await.ok();
        }
        tracing::info!("scheduler stopped");
    }
}

/// Run the scheduler role until `shutdown`, with its probe server when
/// `--metrics-listen` is given.
pub async fn run(config: &SchedulerConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (redis, keys) = switchyard_shared::connect(&config.redis).await?;
    let scheduler = Scheduler::new(redis.clone(), keys, config.clone())?;
    if let Some(addr) = config.metrics.metrics_listen {
        let liveness = scheduler.liveness();
        probes::spawn(addr, "scheduler", redis, liveness, shutdown.clone()).await?;
    }
    tracing::info!(tasks = ?scheduler.task_names(), "scheduler running");
    scheduler.run(shutdown).await;
    Ok(())
}
