//! Gate tickets: queued tickets not re-sent within their TTL and granted
//! tickets past theirs stop blocking others without anyone polling
//! (`gates.sweep`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use switchyard_shared::families::gates::{GateSettings, GateStore};

use crate::Ctx;
use crate::periodic::{BoxFuture, Periodic};

pub fn tasks(ctx: &Ctx) -> anyhow::Result<Vec<Arc<dyn Periodic>>> {
    let opts = &ctx.config.families.gates;
    Ok(vec![Arc::new(Sweep {
        gates: GateStore::new(ctx.redis.clone(), &ctx.keys, GateSettings::from(opts)),
        every: opts.sweep_interval,
        batch: ctx.config.scheduler.sweep_batch,
    })])
}

struct Sweep {
    gates: GateStore,
    every: Duration,
    batch: usize,
}

impl Periodic for Sweep {
    fn name(&self) -> &'static str {
        "gates.sweep"
    }
    fn every(&self) -> Duration {
        self.every
    }
    fn run_once(&self) -> BoxFuture<'_, anyhow::Result<usize>> {
        Box::pin(async move {
            let n = self
                .gates
                .sweep_expired(self.batch)
                .await
                .context("sweeping expired gate tickets")?;
            if n > 0 {
                metrics::counter!("switchyard_gate_tickets_expired_total").increment(n as u64);
                tracing::info!(expired = n, "gate tickets expired");
            }
            Ok(n)
        })
    }
}
