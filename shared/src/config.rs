//! The one config of each role: the platform option groups it needs plus
//! every family's options ([`FamiliesOpts`]), parsed once at start-up.

use clap::Args;

use crate::families::FamiliesOpts;
use crate::platform::config::{
    ApiOpts, LogOpts, MetricsOpts, OutboxOpts, RedisOpts, SchedulerOpts, WorkerOpts,
};

pub use crate::platform::config::LogFormat;

/// `switchyard api`.
#[derive(Args, Debug, Clone, Default)]
pub struct ApiConfig {
    #[command(flatten)]
    pub redis: RedisOpts,
    #[command(flatten)]
    pub log: LogOpts,
    #[command(flatten)]
    pub api: ApiOpts,
    #[command(flatten)]
    pub outbox: OutboxOpts,
    #[command(flatten)]
    pub families: FamiliesOpts,
}

/// `switchyard worker`.
#[derive(Args, Debug, Clone, Default)]
pub struct WorkerConfig {
    #[command(flatten)]
    pub redis: RedisOpts,
    #[command(flatten)]
    pub log: LogOpts,
    #[command(flatten)]
    pub worker: WorkerOpts,
    #[command(flatten)]
    pub metrics: MetricsOpts,
    #[command(flatten)]
    pub outbox: OutboxOpts,
    #[command(flatten)]
    pub families: FamiliesOpts,
}

/// `switchyard scheduler`.
#[derive(Args, Debug, Clone, Default)]
pub struct SchedulerConfig {
    #[command(flatten)]
    pub redis: RedisOpts,
    #[command(flatten)]
    pub log: LogOpts,
    #[command(flatten)]
    pub scheduler: SchedulerOpts,
    #[command(flatten)]
    pub metrics: MetricsOpts,
    #[command(flatten)]
    pub outbox: OutboxOpts,
    #[command(flatten)]
    pub families: FamiliesOpts,
}
