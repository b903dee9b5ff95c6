//! What the scheduler runs: periodic tasks, each one step at a time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use switchyard_shared::Redis;
use switchyard_shared::platform::indexes;

/// A boxed future (object-safe async).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One periodic task. A step must be safe to run in several schedulers at
/// once (each state change is one script call that re-checks its
/// condition), and bounded (a batch per step).
pub trait Periodic: Send + Sync {
    /// Stable name, e.g. `gates.sweep` (tests step a task by name).
    fn name(&self) -> &'static str;
    /// How often it runs.
    fn every(&self) -> Duration;
    /// Run once; returns how many items it handled.
    fn run_once(&self) -> BoxFuture<'_, anyhow::Result<usize>>;
}

/// The record key of entity `id` of index `i` (see [`IndexPrune::new`]).
pub type RecordKey = dyn Fn(usize, &str) -> String + Send + Sync;

/// `<family>.prune`: the listing indexes of a family whose entities expire
/// lose the entries of the gone ones ([`indexes::prune`]), at most `batch`
/// entries examined per index per step, among those older than the
/// family's retention. A family's task is one [`IndexPrune::new`] call.
pub struct IndexPrune {
    name: &'static str,
    redis: Redis,
    indexes: Vec<String>,
    record_key: Box<RecordKey>,
    retention: Duration,
    every: Duration,
    batch: usize,
    /// Per index: live entries past the retention passed over so far (a
    /// rolling position, so long-lived entities never hide expired ones
    /// behind them; lost on restart, which only restarts the round).
    skip: Mutex<Vec<usize>>,
}

impl IndexPrune {
    /// `indexes`: every index key (all shards, or all tenants);
    /// `record_key(i, id)`: the key whose existence says the entity `id` of
    /// index `i` is alive.
    pub fn new(
        name: &'static str,
        redis: Redis,
        indexes: Vec<String>,
        record_key: impl Fn(usize, &str) -> String + Send + Sync + 'static,
        retention: Duration,
        every: Duration,
        batch: usize,
    ) -> Self {
        let skip = Mutex::new(vec![0; indexes.len()]);
        IndexPrune {
            name,
            redis,
            indexes,
            record_key: Box::new(record_key),
            retention,
            every,
            batch: batch.max(1),
            skip,
        }
    }
}

impl Periodic for IndexPrune {
    fn name(&self) -> &'static str {
        self.name
    }
    fn every(&self) -> Duration {
        self.every
    }
    fn run_once(&self) -> BoxFuture<'_, anyhow::Result<usize>> {
        Box::pin(async move {
            let mut pruned = 0;
            for (i, index) in self.indexes.iter().enumerate() {
                let skip = self.skip.lock().expect("not poisoned")[i];
                let record_key = |id: &str| (self.record_key)(i, id);
                let (examined, removed) = indexes::prune(
                    &self.redis,
                    index,
                    &record_key,
                    self.retention,
                    skip,
                    self.batch,
                )
                .await
                .with_context(|| format!("{}: pruning {index}", self.name))?;
                self.skip.lock().expect("not poisoned")[i] = if examined < self.batch {
                    0
                } else {
                    skip + examined - removed
                };
                pruned += removed;
            }
            if pruned > 0 {
                metrics::counter!("switchyard_index_pruned_total", "task" => self.name)
                    .increment(pruned as u64);
                tracing::debug!(
                    task = self.name,
                    pruned,
                    "pruned index entries of gone entities"
                );
            }
            Ok(pruned)
        })
    }
}
