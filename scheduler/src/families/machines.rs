//! State machines: thresholds are evaluated on a period and alerts sent
//! through the outbox with the default retry policy (`machines.thresholds`).

use std::sync::Arc;
use std::time::Duration;

use switchyard_shared::families::machines::MachineStore;

use crate::Ctx;
use crate::periodic::{BoxFuture, Periodic};

pub fn tasks(ctx: &Ctx) -> anyhow::Result<Vec<Arc<dyn Periodic>>> {
    let opts = &ctx.config.families.machines;
    let policies = ctx.config.outbox.policies()?;
    Ok(vec![Arc::new(Thresholds {
        machines: MachineStore::new(ctx.redis.clone(), ctx.keys.clone(), opts.sm_retention),
        alert_policy: policies.default_name().to_owned(),
        every: opts.sm_check_interval,
    })])
}

struct Thresholds {
    machines: MachineStore,
    alert_policy: String,
    every: Duration,
}

impl Periodic for Thresholds {
    fn name(&self) -> &'static str {
        "machines.thresholds"
    }
    fn every(&self) -> Duration {
        self.every
    }
    fn run_once(&self) -> BoxFuture<'_, anyhow::Result<usize>> {
        Box::pin(async move { Ok(self.machines.check_all(&self.alert_policy).await?) })
    }
}
