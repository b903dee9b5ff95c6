//! Work of the Petri nets: callbacks (`net.notify`, handed to the delivery
//! engine with a stable idempotency key, so a redelivered entry never sends
//! twice under different ids), chains continued past the per-call bound
//! (`net.continue`), and failed callbacks (`owner.failed`).

use futures::future::BoxFuture;
use serde::Deserialize;
use switchyard_shared::deliveries::{DeliveryStore, NewDelivery};
use switchyard_shared::nets::{NetError, NetStore};

use crate::{Handler, Outcome, WorkEntry};

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
    pub deliveries: DeliveryStore,
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
        let destination = switchyard_shared::deliveries::destination_of(&n.url);
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
            owner: Some(format!("net:{}", n.net)),
        };
        match self.deliveries.enqueue(&d).await {
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

#[derive(Deserialize)]
struct OwnerFailed {
    owner: String,
    delivery: String,
    #[serde(default)]
    reason: String,
}

pub struct OwnerFailedHandler {
    pub nets: NetStore,
}

impl Handler for OwnerFailedHandler {
    fn handle<'a>(&'a self, e: &'a WorkEntry) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let f: OwnerFailed = match serde_json::from_str(&e.payload) {
                Ok(f) => f,
                Err(err) => return Outcome::Dead(format!("bad owner.failed payload: {err}")),
            };
            let Some(net) = f.owner.strip_prefix("net:") else {
                return Outcome::Done; // no other owners yet
            };
            let reason = format!("callback {} failed: {}", f.delivery, f.reason);
            match self.nets.fail(net, &reason).await {
                Ok(_) => Outcome::Done,
                Err(err) => Outcome::Retry(err.to_string()),
            }
        })
    }
}
