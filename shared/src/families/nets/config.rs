//! Options of the Petri-nets family.

use std::time::Duration;

use clap::Args;

/// Petri nets.
#[derive(Args, Debug, Clone)]
pub struct NetOpts {
    /// Transitions fired per call at most; a longer chain continues as stream work.
    #[arg(long, env = "SWITCHYARD_NET_FIRE_BOUND", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub net_fire_bound: u32,

    /// How long a completed net is kept.
    #[arg(long, env = "SWITCHYARD_NET_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub net_retention: Duration,

    /// Retry policy of net callbacks.
    #[arg(long, env = "SWITCHYARD_NET_CALLBACK_POLICY", default_value = "svix")]
    pub net_callback_policy: String,
}

crate::cli_defaults!(NetOpts);
