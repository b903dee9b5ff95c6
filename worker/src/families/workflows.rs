//! Work of the workflows: `workflows.step` (a workflow has pending inputs:
//! run the engine over them and commit, see `WorkflowStore::step`) and
//! `workflows.timer` (a timeout, `wait` or handler schedule fired: a step
//! with the timer as an extra input). Failed callbacks reach the engine
//! through the family's owner hooks.

use futures::future::BoxFuture;
use std::sync::Arc;

use switchyard_shared::WorkKind;
use switchyard_shared::families::workflows::engine::Input;
use switchyard_shared::families::workflows::{WorkflowError, WorkflowStore};

use crate::families::Ctx;
use crate::{Handler, Outcome, WorkEntry, Worker};

/// The outcome of a step for the stream entry that asked for it.
fn outcome(
    r: Result<switchyard_shared::families::workflows::store::StepReport, WorkflowError>,
) -> Outcome {
    match r {
        // Gone (expired, or a stale timer of it): nothing to do.
        Ok(_) | Err(WorkflowError::NotFound) => Outcome::Done,
        // The stored state cannot be read: retrying cannot help.
        Err(e @ WorkflowError::Corrupt { .. }) => Outcome::Dead(e.to_string()),
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

/// `workflows.step`: payload = workflow id.
pub struct StepHandler {
    pub store: WorkflowStore,
}

impl Handler for StepHandler {
    fn handle<'a>(&'a self, e: &'a WorkEntry) -> BoxFuture<'a, Outcome> {
        Box::pin(async move { outcome(self.store.step(&e.payload, None).await) })
    }
}

/// `workflows.timer`: payload = `<workflow id>|<timer id>`.
pub struct TimerHandler {
    pub store: WorkflowStore,
}

impl Handler for TimerHandler {
    fn handle<'a>(&'a self, e: &'a WorkEntry) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Some((wfid, timer_id)) = e.payload.split_once('|') else {
                return Outcome::Dead(format!("bad workflows.timer payload {:?}", e.payload));
            };
            let input = Input::Timer {
                timer_id: timer_id.to_owned(),
            };
            outcome(self.store.step(wfid, Some(input)).await)
        })
    }
}

/// Register the workflows' work kinds.
pub fn register(w: Worker, ctx: &Ctx) -> anyhow::Result<Worker> {
    let opts = &ctx.config.families.workflows;
    anyhow::ensure!(
        ctx.config
            .outbox
            .policies()?
            .get(&opts.workflow_callback_policy)
            .is_some(),
        "--workflow-callback-policy {:?} is not a defined retry policy",
        opts.workflow_callback_policy
    );
    let store = WorkflowStore::new(
        ctx.redis.clone(),
        ctx.keys.clone(),
        opts,
        &ctx.config.outbox.public_url,
    );
    Ok(w.with_handler(
        WorkKind::WorkflowStep,
        Arc::new(StepHandler {
            store: store.clone(),
        }),
    )
    .with_handler(WorkKind::WorkflowTimer, Arc::new(TimerHandler { store })))
}
