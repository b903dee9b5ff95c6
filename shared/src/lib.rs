//! Switchyard's shared library: everything the `api`, `worker` and
//! `scheduler` processes have in common.
//!
//! **The rule:** [`platform`] code never names a family; a family reaches
//! another only through platform hooks (the outbox's owner hooks and
//! [`platform::outbox::Outbox`]).
//!
//! * [`platform`] — config, connection, keys and shards, scripts and the reply
//!   convention, work streams and timers, the outbox, ids, paging, time,
//!   telemetry.
//! * [`families`] — one folder per family (options, keys, scripts, store,
//!   model) and the registry that lists them (`families/mod.rs`).
//! * [`config`] — the one config of each role: platform option groups plus
//!   [`families::FamiliesOpts`].

pub mod config;
pub mod families;
pub mod platform;

pub use families::{FamiliesOpts, WorkKind};
pub use platform::keys::Keys;
pub use platform::redis::Redis;
pub use platform::work::WORK_GROUP;
pub use platform::{paging, telemetry, time};

/// Every script: the platform's and every family's.
pub fn scripts() -> Vec<platform::scripts::Named> {
    [platform::scripts::platform::all(), families::scripts()].concat()
}

/// Connect to the deployment's Redis (every script loaded) and its key layout.
pub async fn connect(redis: &platform::config::RedisOpts) -> anyhow::Result<(Redis, Keys)> {
    redis.connect(scripts()).await
}

/// Install the process-wide TLS crypto provider (ring) for HTTP clients.
/// Idempotent; call before building any `reqwest::Client`.
pub fn init_tls() {
    drop(rustls::crypto::ring::default_provider().install_default());
}
