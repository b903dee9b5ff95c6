//! Reliable HTTP deliveries ("send this webhook reliably").
//!
//! A delivery is a Redis hash (`sy:{NN}:dlv:<id>`) plus an attempt log; its
//! id names its shard (`d<shard>-<uuid>`), so any replica finds it without a
//! lookup, and a script of any other entity on that shard can create one in
//! its own atomic call (`outbox_delivery` in `lua/platform/outbox.lua`). Attempts
//! run from the shard's work stream; retries wait in the shard's timer set
//! and are moved back into the stream by the scheduler (`lua/platform/timers_move.lua`).
//!
//! * [`RetryPolicy`] — named retry schedules (`svix`, `scriptoria`,
//!   configurable `exponential` and `schedule`), pure functions of the attempt
//!   count and age.
//! * [`classify`] — what an HTTP outcome means: success, retry (honouring
//!   `Retry-After`), or permanent failure.
//! * [`DeliveryStore`] — every state change is one script call.

pub mod classify;
pub mod config;
pub mod error;
pub mod model;
pub mod scripts;
pub mod store;

pub use crate::platform::ids::{address_forbidden, destination_of};
pub use crate::platform::outbox::{KIND, NewDelivery, Policies, RetryPolicy, new_id, shard_of_id};
pub use classify::{Verdict, classify, parse_retry_after};
pub use config::DeliveryOpts;
pub use error::DeliveryError;
pub use model::*;
pub use store::{DeliveryStore, LIST_BUDGET};
