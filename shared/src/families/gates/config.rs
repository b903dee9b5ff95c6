//! Options of the gates family.

use std::time::Duration;

use clap::Args;

use super::windows::BuildWindows;

/// Deployment gates.
#[derive(Args, Debug, Clone)]
pub struct GateOpts {
    /// Gate namespace: all gates of a namespace live on one shard.
    #[arg(long, env = "SWITCHYARD_GATE_NAMESPACE", default_value = "default")]
    pub gate_namespace: String,

    /// How long a queued ticket lives unless it is sent again.
    #[arg(long, env = "SWITCHYARD_GATE_QUEUE_TTL", default_value = "2m", value_parser = humantime::parse_duration)]
    pub gate_queue_ttl: Duration,

    /// How long a granted ticket lives unless released or sent again (0 = forever).
    #[arg(long, env = "SWITCHYARD_GATE_GRANT_TTL", default_value = "12h", value_parser = humantime::parse_duration)]
    pub gate_grant_ttl: Duration,

    /// Entries kept in each gate's history.
    #[arg(long, env = "SWITCHYARD_GATE_HISTORY_LEN", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub gate_history_len: u32,

    /// Build windows per environment, as JSON or @path/to/file.json:
    /// {"live": {"weekdays": {"days_range": [0, 4], "hours_range": [8, 18]}}}.
    /// Days 0 = Monday … 6 = Sunday (inclusive), hours [start, end) in UTC.
    /// An environment without rules is never closed by a window.
    #[arg(long, env = "SWITCHYARD_GATE_WINDOWS", value_parser = BuildWindows::parse_arg, default_value = "{}")]
    pub gate_windows: BuildWindows,

    /// How long a released or expired ticket id stays refused, so that a late
    /// retry of a test-and-set under that id cannot take the gate again
    /// (one entry per ticket per window in the namespace's `gone` set).
    #[arg(long, env = "SWITCHYARD_GATE_GONE_WINDOW", default_value = "10m", value_parser = humantime::parse_duration)]
    pub gate_gone_window: Duration,

    /// How often the scheduler sweeps expired gate tickets.
    #[arg(long, env = "SWITCHYARD_SWEEP_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub sweep_interval: Duration,
}

crate::cli_defaults!(GateOpts);
