//! The platform: what every family builds on. **Nothing here names a
//! family**; families reach each other only through the hooks defined here
//! (the outbox's [`outbox::OwnerHooks`], the [`outbox::Outbox`]).
//!
//! * [`config`] — option groups of the roles (Redis, logging, API, worker,
//!   scheduler, outbox) and `cli_defaults!`.
//! * [`redis`] — the one shared connection per process, dedicated
//!   connections for blocking reads, explicit timeouts.
//! * [`keys`] and [`shards`] — prefix, shard of an id, balanced hash tags.
//! * [`scripts`] — `lua_scripts!`, one declaration per script; loading.
//! * [`reply`] — the script reply convention, parsed once.
//! * [`work`] — work streams, the consumer group, timers.
//! * [`heartbeat`] — the schedulers' heartbeat: is any scheduler running?
//! * [`probes`] — `/metrics` and `/healthz` of a worker or scheduler, and
//!   the [`probes::Liveness`] of its loops.
//! * [`outbox`] — deliveries as every family sends them; owner hooks; retry policies.
//! * [`trace`] — request ids and trace context carried into work and callbacks.
//! * [`errors`], [`ids`], [`paging`], [`time`], [`telemetry`] (logs, metrics,
//!   optional OpenTelemetry traces).

pub mod cluster;
pub mod config;
pub mod errors;
pub mod heartbeat;
pub mod ids;
pub mod indexes;
pub mod keys;
pub mod outbox;
pub mod paging;
pub mod probes;
pub mod redis;
pub mod reply;
pub mod scripts;
pub mod shards;
pub mod telemetry;
pub mod time;
pub mod trace;
pub mod work;
