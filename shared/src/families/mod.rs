//! The families, and the registry that lists them: **adding a family is a
//! new folder here plus one line in each list below** (its options in
//! [`FamiliesOpts`], its scripts in `SCRIPTS`, its owner hooks in
//! [`owners`] if it sends callbacks, its work kinds in [`WorkKind`] if it
//! queues work). Each family folder holds `config.rs` (options), `keys.rs`
//! (key layout), `scripts.rs` (its Lua scripts) and its store and model.

pub mod deliveries;
pub mod gates;
pub mod machines;
pub mod nets;
pub mod transactions;
pub mod workflows;

use std::sync::Arc;

use clap::Args;

use crate::platform::keys::Keys;
use crate::platform::outbox::{Outbox, Owners};
use crate::platform::redis::Redis;
use crate::platform::scripts::{Named, ScriptModule};

/// The options of every family; every role flattens all of them, so one
/// environment file configures every role.
#[derive(Args, Debug, Clone, Default)]
pub struct FamiliesOpts {
    #[command(flatten)]
    pub gates: gates::GateOpts,
    #[command(flatten)]
    pub deliveries: deliveries::DeliveryOpts,
    #[command(flatten)]
    pub nets: nets::NetOpts,
    #[command(flatten)]
    pub machines: machines::MachineOpts,
    #[command(flatten)]
    pub workflows: workflows::WorkflowOpts,
    #[command(flatten)]
    pub transactions: transactions::TransactionOpts,
}

/// Every family's scripts, one module per family.
const SCRIPTS: &[ScriptModule] = &[
    gates::scripts::MODULE,
    deliveries::scripts::MODULE,
    nets::scripts::MODULE,
    machines::scripts::MODULE,
    workflows::scripts::MODULE,
    transactions::scripts::MODULE,
];

/// Every family's scripts.
pub fn scripts() -> Vec<Named> {
    SCRIPTS.iter().flat_map(|m| (m.all)()).collect()
}

/// Helper files prepended to some family's scripts.
pub fn script_libs() -> Vec<&'static str> {
    SCRIPTS
        .iter()
        .flat_map(|m| m.libs.iter().copied())
        .collect()
}

/// The owner hooks of every family that owns callbacks.
pub fn owners(redis: &Redis, keys: &Keys, opts: &FamiliesOpts) -> Owners {
    Owners::default()
        .register(nets::OWNER, nets::owner_hooks(redis, keys, &opts.nets))
        .register(
            workflows::OWNER,
            workflows::owner_hooks(workflows::WorkflowStore::new(
                redis.clone(),
                keys.clone(),
                &opts.workflows,
                "",
            )),
        )
}

/// The outbox other families enqueue through (the deliveries family's).
pub fn outbox(redis: &Redis, keys: &Keys, opts: &FamiliesOpts) -> Arc<dyn Outbox> {
    Arc::new(deliveries::DeliveryStore::new(
        redis.clone(),
        keys.clone(),
        opts.deliveries.delivery_retention,
    ))
}

macro_rules! work_kinds {
    ($($(#[$doc:meta])* $variant:ident = $s:literal,)+) => {
        /// Every kind of work that flows through the work streams (the `kind`
        /// field of an entry, and the `kind|` prefix of a timer member).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum WorkKind {
            $($(#[$doc])* $variant,)+
        }

        impl WorkKind {
            pub const ALL: &[WorkKind] = &[$(WorkKind::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(WorkKind::$variant => $s,)+
                }
            }
        }

        impl std::str::FromStr for WorkKind {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok(WorkKind::$variant),)+
                    other => Err(format!("unknown work kind {other:?}")),
                }
            }
        }
    };
}

work_kinds! {
    /// Platform: a delivery's owner is told it finally failed.
    OwnerFailed = "owner.failed",
    /// Platform: a delivery's owner is told it was delivered.
    OwnerSucceeded = "owner.succeeded",
    /// Deliveries: one attempt of a delivery.
    Delivery = "delivery",
    /// Nets: a transition's callback, handed to the outbox.
    NetNotify = "net.notify",
    /// Nets: a firing chain continued past the per-call bound.
    NetContinue = "net.continue",
    /// Workflows: apply a workflow's pending inputs (payload: workflow id).
    WorkflowStep = "workflows.step",
    /// Workflows: a workflow timer fired (payload: `<workflow id>|<timer id>`).
    WorkflowTimer = "workflows.timer",
    /// Transactions: one pipeline step (payload: `<contractor>|<id>|<checkpoint>`).
    TransactionStep = "transactions.step",
    /// Transactions: start the head of a tenant's queue (payload: contractor).
    TransactionKick = "transactions.kick",
}

impl std::fmt::Display for WorkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
