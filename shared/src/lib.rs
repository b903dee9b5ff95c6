//! Switchyard's shared library: everything the `api`, `worker` and
//! `scheduler` processes have in common.
//!
//! * [`config`] — the typed command-line/environment options of every role.
//! * [`keys`] — the only place key strings are formatted (prefix, shard hash tags).
//! * [`scripts`] — the Lua scripts from `lua/`, embedded and invoked by EVALSHA.
//! * [`redis_pool`] — connection pool construction and readiness checks.
//! * [`deliveries`] — reliable HTTP deliveries: records, retry policies, timers.
//! * [`machines`] — state machines: definitions, transitions, metrics, thresholds.
//! * [`gates`] — the deployment-gate store: every state change is one script call.
//! * [`telemetry`] — logging and the Prometheus recorder.
//! * [`time`] — the one time format of the API (ISO 8601, UTC).

pub mod config;
pub mod deliveries;
pub mod gates;
pub mod keys;
pub mod machines;
pub mod nets;
pub mod paging;
pub mod redis_pool;
pub mod scripts;
pub mod telemetry;
pub mod time;

pub use keys::Keys;

/// Install the process-wide TLS crypto provider (ring) for HTTP clients.
/// Idempotent; call before building any `reqwest::Client`.
pub fn init_tls() {
    drop(rustls::crypto::ring::default_provider().install_default());
}

/// The consumer group of every work stream.
pub const WORK_GROUP: &str = "switchyard";
pub use redis_pool::RedisPool;
