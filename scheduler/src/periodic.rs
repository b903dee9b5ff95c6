//! What the scheduler runs: periodic tasks, each one step at a time.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

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
