//! Transactions end to end (issue 11): the Robbyson ingestion API through
//! HTTP with the pipeline run by the real worker.
//!
//! * `seed` — the seed's examples byte for byte, auth, limits, idempotency,
//!   abort, the schemas;
//! * `pipeline` — required fields per resource, the stages' rules
//!   (dedup, PUT merges, cross-resource errors, the date window), per-item
//!   errors, the consolidated store, webhooks;
//! * `load` — concurrent clients, and a SIGKILLed worker mid-consolidate;
//! * `lifecycle` — retention (every index shrinks, the store stays),
//!   11 ImportError after retries, tenants from a file, statuses and
//!   progress only moving forward.

mod lifecycle;
mod load;
mod pipeline;
mod seed;
