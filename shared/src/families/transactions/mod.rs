//! Transactions (issue 11): the Robbyson ingestion API with a processing
//! pipeline. A tenant (a `token` naming a contractor) opens a transaction,
//! sends batches of up to 500 items of five resources (checked against
//! JSON Schemas with tv4's error answer), commits, and the workers run the
//! pipeline: **Import** (date window, natural keys, last write wins),
//! **Validate** (cross-item and cross-resource rules, per-item errors) and
//! **Consolidate** (upserts into a per-tenant store, in commit order).
//!
//! * [`config`] — `TransactionOpts` (tenants, retention, limits, sink);
//!   [`keys`] — every key of a tenant on its shard; [`ids`] — Robbyson's ids.
//! * [`schema`] — the resources, their shipped schemas, tv4's first error;
//!   [`rawjson`] — JSON kept in the client's key order.
//! * [`model`] — statuses, staged entries, natural keys, the Validate rules.
//! * [`store`] — `TransactionStore`: one script call per state change; a
//!   pipeline step is fenced by the transaction's checkpoint and queues the
//!   next one (`lua/transactions/step.lua`).
//! * [`views`] — what the endpoints answer; [`scripts`] — `lua/transactions/`.
//! * [`browse`] — reads across tenants for operators (the web console).

pub mod browse;
pub mod config;
pub mod ids;
pub mod keys;
pub mod model;
pub mod rawjson;
pub mod schema;
pub mod scripts;
pub mod store;
pub mod views;

pub use config::TransactionOpts;
pub use store::{TransactionStore, TxError};
