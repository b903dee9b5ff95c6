//! Typed configuration. Every option has a flag and a `SWITCHYARD_*`
//! environment variable; each process parses its options once, at start-up,
//! and passes them down.

use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::gates::BuildWindows;

/// Where Redis is and how keys are laid out in it.
#[derive(Args, Debug, Clone)]
pub struct RedisOpts {
    /// Redis URL: redis://host:port/db, rediss://…, or unix:///path/to/redis.sock.
    #[arg(long, env = "SWITCHYARD_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of every key, so several deployments can share one Redis.
    #[arg(long, env = "SWITCHYARD_KEY_PREFIX", default_value = "sy")]
    pub key_prefix: String,

    /// Number of shards (fixed at deploy time; changing it is a migration).
    #[arg(long, env = "SWITCHYARD_SHARDS", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=16384))]
    pub shards: u16,

    /// Maximum pooled Redis connections per process.
    #[arg(long, env = "SWITCHYARD_REDIS_POOL_SIZE", default_value_t = 16)]
    pub redis_pool_size: usize,
}

impl RedisOpts {
    /// The pool (once Redis answers and the scripts are loaded, for at most
    /// 30 s) and the key layout of this deployment.
    pub async fn connect(&self) -> anyhow::Result<(crate::RedisPool, crate::Keys)> {
        use anyhow::Context;
        let url = self
            .redis_url
            .as_deref()
            .context("--redis-url is required")?;
        let pool = crate::RedisPool::new(url, self.redis_pool_size)?;
        pool.wait_ready(Duration::from_secs(30)).await?;
        Ok((pool, crate::Keys::new(&self.key_prefix, self.shards)))
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Logging.
#[derive(Args, Debug, Clone)]
pub struct LogOpts {
    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, env = "SWITCHYARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter, e.g. `info` or `switchyard_api=debug,info`.
    #[arg(long, env = "SWITCHYARD_LOG", default_value = "info")]
    pub log_level: String,
}

/// Deployment gates.
#[derive(Args, Debug, Clone)]
pub struct GateOpts {
    /// Gate namespace: all gates of a namespace live on one shard.
    #[arg(long, env = "SWITCHYARD_GATE_NAMESPACE", default_value = "default")]
    pub gate_namespace: String,

    /// How long a queued ticket lives unless it is sent again.
    #[arg(long, env = "SWITCHYARD_GATE_QUEUE_TTL", default_value = "2m", value_parser = humantime::parse_duration)]
    pub gate_queue_ttl: Duration,

    /// How long a granted ticket lives unless released or sent again (0 = forever).
    #[arg(long, env = "SWITCHYARD_GATE_GRANT_TTL", default_value = "12h", value_parser = humantime::parse_duration)]
    pub gate_grant_ttl: Duration,

    /// Entries kept in each gate's history.
    #[arg(long, env = "SWITCHYARD_GATE_HISTORY_LEN", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=10000))]
    pub gate_history_len: u32,

    /// Build windows per environment, as JSON or @path/to/file.json:
    /// {"live": {"weekdays": {"days_range": [0, 4], "hours_range": [8, 18]}}}.
    /// Days 0 = Monday … 6 = Sunday (inclusive), hours [start, end) in UTC.
    /// An environment without rules is never closed by a window.
    #[arg(long, env = "SWITCHYARD_GATE_WINDOWS", value_parser = BuildWindows::parse_arg, default_value = "{}")]
    pub gate_windows: BuildWindows,
}

/// Reliable deliveries (webhooks).
#[derive(Args, Debug, Clone)]
pub struct DeliveryOpts {
    /// A named retry policy, NAME=SPEC (repeatable; in the environment,
    /// `;`-separated). SPEC: `svix`, `scriptoria`, `schedule:5s,1m,1h`, or
    /// `exponential:base=1s,factor=2,cap=1h,max_attempts=10,max_age=1d,jitter=full,retry_4xx=false`.
    /// `svix`, `scriptoria` and `exponential` are always defined.
    #[arg(
        long = "retry-policy",
        env = "SWITCHYARD_RETRY_POLICIES",
        value_delimiter = ';'
    )]
    pub retry_policies: Vec<String>,

    /// Policy of deliveries that name none.
    #[arg(long, env = "SWITCHYARD_DEFAULT_RETRY_POLICY", default_value = "svix")]
    pub default_retry_policy: String,

    /// How long finished (succeeded, dead, cancelled) deliveries are kept.
    #[arg(long, env = "SWITCHYARD_DELIVERY_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub delivery_retention: Duration,

    /// Allow deliveries to link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10).
    #[arg(long, env = "SWITCHYARD_ALLOW_LINK_LOCAL", default_value_t = false)]
    pub allow_link_local: bool,
}

/// Petri nets and state machines.
#[derive(Args, Debug, Clone)]
pub struct NetOpts {
    /// How long closed state-machine entities (and applied event ids) are kept.
    #[arg(long, env = "SWITCHYARD_SM_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub sm_retention: Duration,

    /// Base URL receivers use to reach this API (for response links in callbacks).
    #[arg(
        long,
        env = "SWITCHYARD_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub public_url: String,

    /// Transitions fired per call at most; a longer chain continues as stream work.
    #[arg(long, env = "SWITCHYARD_NET_FIRE_BOUND", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub net_fire_bound: u32,

    /// How long a completed net is kept.
    #[arg(long, env = "SWITCHYARD_NET_RETENTION", default_value = "7d", value_parser = humantime::parse_duration)]
    pub net_retention: Duration,

    /// Retry policy of net callbacks.
    #[arg(long, env = "SWITCHYARD_NET_CALLBACK_POLICY", default_value = "svix")]
    pub net_callback_policy: String,
}

/// The HTTP API.
#[derive(Args, Debug, Clone)]
pub struct ApiOpts {
    /// Address to listen on.
    #[arg(long, env = "SWITCHYARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Bearer token accepted on every non-health endpoint (repeatable; in the
    /// environment, comma-separated). Without tokens the API is open.
    #[arg(
        long = "api-token",
        env = "SWITCHYARD_API_TOKENS",
        value_delimiter = ','
    )]
    pub api_tokens: Vec<String>,

    /// File with one accepted bearer token per line (`#` comments allowed).
    #[arg(long, env = "SWITCHYARD_API_TOKEN_FILE")]
    pub api_token_file: Option<std::path::PathBuf>,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "SWITCHYARD_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Requests taking longer are answered 503.
    #[arg(long, env = "SWITCHYARD_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// How long in-flight requests may take to finish after SIGINT/SIGTERM.
    #[arg(long, env = "SWITCHYARD_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
}

/// The scheduler.
#[derive(Args, Debug, Clone)]
pub struct SchedulerOpts {
    /// How often expired gate tickets are swept.
    #[arg(long, env = "SWITCHYARD_SWEEP_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub sweep_interval: Duration,

    /// Most tickets expired per sweep step, and timers moved per shard per step.
    #[arg(long, env = "SWITCHYARD_SWEEP_BATCH", default_value_t = 256)]
    pub sweep_batch: usize,

    /// How often state-machine thresholds are evaluated.
    #[arg(long, env = "SWITCHYARD_SM_CHECK_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub sm_check_interval: Duration,

    /// How often due timers (delivery retries, deferred work) are moved into the work streams.
    #[arg(long, env = "SWITCHYARD_TIMER_INTERVAL", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub timer_interval: Duration,
}

/// The worker.
#[derive(Args, Debug, Clone)]
pub struct WorkerOpts {
    /// Name of this consumer in the stream consumer groups (default: host-pid).
    #[arg(long, env = "SWITCHYARD_WORKER_NAME")]
    pub worker_name: Option<String>,

    /// How long a blocking stream read waits before checking for shutdown.
    #[arg(long, env = "SWITCHYARD_WORKER_BLOCK", default_value = "2s", value_parser = humantime::parse_duration)]
    pub worker_block: Duration,

    /// Entries delivered more often than this go to the dead letters.
    #[arg(long, env = "SWITCHYARD_WORKER_MAX_DELIVERIES", default_value_t = 10)]
    pub worker_max_deliveries: u64,

    /// An entry pending longer than this is reclaimed by another worker.
    #[arg(long, env = "SWITCHYARD_WORKER_VISIBILITY", default_value = "60s", value_parser = humantime::parse_duration)]
    pub worker_visibility: Duration,

    /// Entries processed at once by one worker.
    #[arg(long, env = "SWITCHYARD_WORKER_CONCURRENCY", default_value_t = 64)]
    pub worker_concurrency: usize,

    /// How long in-flight entries may take to finish on shutdown; the rest
    /// are left to be reclaimed.
    #[arg(long, env = "SWITCHYARD_WORKER_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub worker_shutdown_timeout: Duration,

    /// Signing secret for webhook-signature (Standard Webhooks: `whsec_` + base64).
    #[arg(long, env = "SWITCHYARD_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// Connect timeout of a delivery attempt.
    #[arg(long, env = "SWITCHYARD_DELIVERY_CONNECT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub delivery_connect_timeout: Duration,

    /// Total timeout of a delivery attempt (must stay below the visibility timeout).
    #[arg(long, env = "SWITCHYARD_DELIVERY_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub delivery_timeout: Duration,

    /// Response bytes read from a receiver (the rest is discarded).
    #[arg(long, env = "SWITCHYARD_DELIVERY_MAX_RESPONSE_BYTES", default_value_t = 64 * 1024)]
    pub delivery_max_response_bytes: usize,

    /// Attempts in flight to one destination (host:port) per worker.
    #[arg(
        long,
        env = "SWITCHYARD_DELIVERY_PER_DESTINATION",
        default_value_t = 16
    )]
    pub delivery_per_destination: usize,
}

/// Defaults as the command line would give them (tests, benchmarks).
macro_rules! defaults {
    ($($t:ty),*) => {$(
        impl Default for $t {
            fn default() -> Self {
                #[derive(clap::Parser)]
                struct P {
                    #[command(flatten)]
                    inner: $t,
                }
                <P as clap::Parser>::parse_from(["switchyard"]).inner
            }
        }
    )*};
}
defaults!(
    DeliveryOpts,
    WorkerOpts,
    SchedulerOpts,
    ApiOpts,
    GateOpts,
    NetOpts
);
