//! Options of the state-machines family.

use std::time::Duration;

use clap::Args;

/// State machines.
#[derive(Args, Debug, Clone)]
pub struct MachineOpts {
    /// How long closed state-machine entities (and applied event ids) are kept.
    #[arg(long, env = "SWITCHYARD_SM_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub sm_retention: Duration,

    /// How often the scheduler evaluates state-machine thresholds.
    #[arg(long, env = "SWITCHYARD_SM_CHECK_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub sm_check_interval: Duration,
}

crate::cli_defaults!(MachineOpts);
