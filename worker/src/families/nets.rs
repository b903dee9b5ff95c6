//! Work of the Petri nets: callbacks (`net.notify`, handed to the delivery
//! engine with a stable idempotency key, so a redelivered entry never sends
//! twice under different ids), chains continued past the per-call bound
//! (`net.continue`). Failed callbacks reach the net through its owner
//! hooks (`switchyard_shared::families::nets::owner`).

use futures::future::BoxFuture;
use serde::Deserialize;
use std::sync::Arc;

use switchyard_shared::families::nets::{NetError, NetStore};
use switchyard_shared::platform::outbox::{NewDelivery, Outbox, Owner};

use switchyard_shared::WorkKind;

use crate::families::Ctx;
use crate::{Handler, Outcome, WorkEntry, Worker};

#[derive(Deserialize)]
struct Notify {
    net: String,
    cb: String,
    url: String,
    #[serde(default)]
    policy: String,
    body: String,
}

pub struct NotifyHandler {
    pub nets: NetStore,
    pub outbox: Arc<dyn Outbox>,
    pub default_policy: String,
}

impl NotifyHandler {
    async fn run(&self, e: &WorkEntry) -> Outcome {
        let n: Notify = match serde_json::from_str(&e.payload) {
            Ok(n) => n,
            Err(err) => return Outcome::Dead(format!("bad net.notify payload: {err}")),
        };
        match self.nets.exists(&n.net).await {
            Ok(false) => return Outcome::Done, // deleted: its callbacks are cancelled
            Ok(true) => {}
            Err(err) => return Outcome::Retry(err.to_string()),
        }
        let destination = switchyard_shared::platform::ids::destination_of(&n.url);
        let policy = if n.policy.is_empty() {
            self.default_policy.clone()
        } else {
            n.policy
        };
        let d = NewDelivery {
            url: n.url,
            method: "PUT".into(),
            headers: Default::default(),
            body: n.body,
            policy,
            idempotency_key: Some(n.cb),
            destination,
            owner: Some(Owner::format(
                switchyard_shared::families::nets::OWNER,
                &n.net,
            )),
        };
        match self.outbox.enqueue(&d).await {
            Ok(_) => {
                metrics::counter!("switchyard_net_notifications_total").increment(1);
                Outcome::Done
            }
            Err(err) => Outcome::Retry(err.to_string()),
        }
    }
}

impl Handler for NotifyHandler {
    fn handle<'a>(&'a self, e: &'a WorkEntry) -> BoxFuture<'a, Outcome> {
        Box::pin(self.run(e))
    }
}

pub struct ContinueHandler {
    pub nets: NetStore,
}

impl Handler for ContinueHandler {
    fn handle<'a>(&'a self, e: &'a WorkEntry) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match self.nets.cont(&e.payload).await {
                Ok(_) | Err(NetError::NotFound) => Outcome::Done,
                Err(err) => Outcome::Retry(err.to_string()),
            }
        })
    }
}

/// Register the nets' work kinds.
pub fn register(w: Worker, ctx: &Ctx) -> anyhow::Result<Worker> {
    let opts = &ctx.config.families.nets;
    let nets = NetStore::new(
        ctx.redis.clone(),
        ctx.keys.clone(),
        opts.net_fire_bound,
        opts.net_retention,
    );
    Ok(w.with_handler(
        WorkKind::NetNotify,
        Arc::new(NotifyHandler {
            nets: nets.clone(),
            outbox: ctx.outbox.clone(),
            default_policy: opts.net_callback_policy.clone(),
        }),
    )
    .with_handler(WorkKind::NetContinue, Arc::new(ContinueHandler { nets })))
}
