//! The platform's `owner.failed` and `owner.succeeded` work: a delivery's
//! final outcome, queued by its last script in the same call, handed to the
//! owning family's hooks (`switchyard_shared::platform::outbox::OwnerHooks`).
//! Owners whose family registered no hooks are acknowledged and dropped.

use futures::future::BoxFuture;
use serde::Deserialize;
use switchyard_shared::platform::outbox::Owners;

use crate::{Handler, Outcome, WorkEntry};

#[derive(Deserialize)]
struct Notice {
    owner: String,
    delivery: String,
    #[serde(default)]
    reason: String,
}

/// Which outcome a handler announces.
#[derive(Clone, Copy, Debug)]
pub enum Announce {
    Failed,
    Succeeded,
}

pub struct OwnerHandler {
    pub owners: Owners,
    pub announce: Announce,
}

impl Handler for OwnerHandler {
    fn handle<'a>(&'a self, e: &'a WorkEntry) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let n: Notice = match serde_json::from_str(&e.payload) {
                Ok(n) => n,
                Err(err) => return Outcome::Dead(format!("bad owner notice payload: {err}")),
            };
            let Some((hooks, id)) = self.owners.of(&n.owner) else {
                return Outcome::Done;
            };
            let res = match self.announce {
                Announce::Failed => hooks.failed(id, &n.delivery, &n.reason).await,
                Announce::Succeeded => hooks.succeeded(id, &n.delivery).await,
            };
            match res {
                Ok(()) => Outcome::Done,
                Err(err) => Outcome::Retry(err.to_string()),
            }
        })
    }
}
