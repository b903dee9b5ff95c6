//! Work of the transactions: `transactions.step` (one pipeline step of a
//! transaction at a checkpoint; see `TransactionStore::step`, which queues
//! the next one in the same call) and `transactions.kick` (start the head
//! of a tenant's queue once the transaction before it finished). A step
//! that keeps failing is dead-lettered and its transaction ends in
//! 11 ImportError, so the tenant's queue moves on.

use futures::future::BoxFuture;
use std::sync::Arc;

use switchyard_shared::WorkKind;
use switchyard_shared::families::transactions::TransactionStore;

use crate::families::Ctx;
use crate::{Handler, Outcome, WorkEntry, Worker};

/// `transactions.step`: payload = `<contractor>|<id>|<checkpoint>`.
pub struct StepHandler {
    pub store: TransactionStore,
}

fn parse(payload: &str) -> Option<(&str, &str, u64)> {
    let mut p = payload.splitn(3, '|');
    Some((p.next()?, p.next()?, p.next()?.parse().ok()?))
}

impl Handler for StepHandler {
    fn handle<'a>(&'a self, e: &'a WorkEntry) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Some((contractor, id, ckpt)) = parse(&e.payload) else {
                return Outcome::Dead(format!("bad transactions.step payload {:?}", e.payload));
            };
            match self.store.step(contractor, id, ckpt).await {
                Ok(_) => Outcome::Done,
                Err(err) => Outcome::Retry(err.to_string()),
            }
        })
    }

    fn dead_letter<'a>(
        &'a self,
        e: &'a WorkEntry,
        reason: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async move {
            if let Some((contractor, id, _)) = parse(&e.payload) {
                self.store.fail(contractor, id, reason).await?;
            }
            // The worker dead-letters the entry itself.
            Ok(false)
        })
    }
}

/// `transactions.kick`: payload = contractor id.
pub struct KickHandler {
    pub store: TransactionStore,
}

impl Handler for KickHandler {
    fn handle<'a>(&'a self, e: &'a WorkEntry) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match self.store.kick(&e.payload).await {
                Ok(()) => Outcome::Done,
                Err(err) => Outcome::Retry(err.to_string()),
            }
        })
    }
}

/// Register the transactions' work kinds.
pub fn register(w: Worker, ctx: &Ctx) -> anyhow::Result<Worker> {
    let opts = &ctx.config.families.transactions;
    anyhow::ensure!(
        ctx.config
            .outbox
            .policies()?
            .get(&opts.transactions_callback_policy)
            .is_some(),
        "--transactions-callback-policy {:?} is not a defined retry policy",
        opts.transactions_callback_policy
    );
    opts.sink(ctx.config.outbox.allow_link_local)?;
    let store = TransactionStore::new(ctx.redis.clone(), ctx.keys.clone(), opts);
    Ok(w.with_handler(
        WorkKind::TransactionStep,
        Arc::new(StepHandler {
            store: store.clone(),
        }),
    )
    .with_handler(WorkKind::TransactionKick, Arc::new(KickHandler { store })))
}
