//! Typed configuration of the platform. Every option has a flag and a
//! `SWITCHYARD_*` environment variable; each process parses its options
//! once, at start-up, and passes them down. Options that belong to one
//! family live in `families/<name>/config.rs`; the role configs
//! (`crate::config`) flatten both.

use std::time::Duration;

use clap::{Args, ValueEnum};

/// Where Redis is and how keys are laid out in it.
#[derive(Args, Debug, Clone)]
pub struct RedisOpts {
    /// Redis URL: redis://host:port/db, rediss://…, or unix:///path/to/redis.sock;
    /// for a Redis Cluster one or more comma-separated seed node URLs.
    #[arg(long, env = "SWITCHYARD_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Treat the server as a Redis Cluster without asking it (by default
    /// `INFO cluster` of the first URL decides).
    #[arg(long, env = "SWITCHYARD_REDIS_CLUSTER")]
    pub redis_cluster: bool,

    /// Prefix of every key, so several deployments can share one Redis.
    #[arg(long, env = "SWITCHYARD_KEY_PREFIX", default_value = "sy")]
    pub key_prefix: String,

    /// Number of shards. Fixed at deploy time, like the shard hash tags it
    /// implies: changing it moves entities to other shards (a migration).
    #[arg(long, env = "SWITCHYARD_SHARDS", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..=16384))]
    pub shards: u16,

    /// Connect timeout of every Redis connection.
    #[arg(long, env = "SWITCHYARD_REDIS_CONNECT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub redis_connect_timeout: Duration,

    /// Response timeout of a call on the shared connection; must exceed the
    /// longest script (a caller that gives up does not stop the script).
    #[arg(long, env = "SWITCHYARD_REDIS_RESPONSE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub redis_response_timeout: Duration,

    /// After each script call, `WAIT` until this many replicas have its
    /// writes, so an acknowledged change survives a failover (Redis
    /// replicates asynchronously otherwise). 0: do not wait. A wait that
    /// comes back short does not fail the call; see the README.
    #[arg(long, env = "SWITCHYARD_REDIS_WAIT_REPLICAS", default_value_t = 0)]
    pub redis_wait_replicas: u32,

    /// The longest `WAIT` for `--redis-wait-replicas`.
    #[arg(long, env = "SWITCHYARD_REDIS_WAIT_TIMEOUT", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub redis_wait_timeout: Duration,
}

impl RedisOpts {
    /// The explicit timeouts of this deployment's connections.
    pub fn timeouts(&self) -> super::redis::Timeouts {
        super::redis::Timeouts {
            connect: self.redis_connect_timeout,
            response: self.redis_response_timeout,
        }
    }

    /// The shared connection (once Redis answers and `scripts` are loaded,
    /// for at most 30 s) and the key layout of this deployment.
    pub async fn connect(
        &self,
        scripts: Vec<super::scripts::Named>,
    ) -> anyhow::Result<(super::redis::Redis, super::keys::Keys)> {
        use anyhow::Context;
        let url = self
            .redis_url
            .as_deref()
            .context("--redis-url is required")?;
        let mode = if self.redis_cluster {
            super::redis::Mode::Cluster
        } else {
            super::redis::Mode::Detect
        };
        let redis = super::redis::Redis::connect_ready_as(
            url,
            mode,
            self.timeouts(),
            scripts,
            Duration::from_secs(30),
        )
        .await?
        .with_wait(Some(super::redis::WaitReplicas {
            replicas: self.redis_wait_replicas,
            timeout: self.redis_wait_timeout,
        }));
        Ok((redis, super::keys::Keys::new(&self.key_prefix, self.shards)))
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

    /// Export OpenTelemetry traces over OTLP/HTTP (protobuf) to this
    /// collector, e.g. `http://otel-collector:4318` (`/v1/traces` is
    /// appended unless the URL ends with it). Off when unset; without it,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is honoured.
    #[arg(long, env = "SWITCHYARD_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// The `service.name` of exported traces (default: `switchyard-<role>`).
    #[arg(long, env = "SWITCHYARD_OTLP_SERVICE_NAME")]
    pub otlp_service_name: Option<String>,

    /// How often finished spans are sent to the collector, in batches.
    #[arg(long, env = "SWITCHYARD_OTLP_EXPORT_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub otlp_export_interval: Duration,
}

/// The outbox: how callbacks of every family are retried and where they may go.
#[derive(Args, Debug, Clone)]
pub struct OutboxOpts {
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

    /// Policy of callbacks that name none (deliveries, threshold alerts).
    #[arg(long, env = "SWITCHYARD_DEFAULT_RETRY_POLICY", default_value = "svix")]
    pub default_retry_policy: String,

    /// Base URL receivers use to reach this API (for response links in callbacks).
    #[arg(
        long,
        env = "SWITCHYARD_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub public_url: String,

    /// Allow callbacks to link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10).
    #[arg(long, env = "SWITCHYARD_ALLOW_LINK_LOCAL", default_value_t = false)]
    pub allow_link_local: bool,
}

impl OutboxOpts {
    /// The named retry policies these options define.
    pub fn policies(&self) -> anyhow::Result<super::outbox::Policies> {
        super::outbox::Policies::new(&self.retry_policies, &self.default_retry_policy)
            .map_err(anyhow::Error::msg)
    }
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

    /// File with one accepted bearer token per line (`#` comments allowed;
    /// a line `read:<token>` is a read-only token).
    #[arg(long, env = "SWITCHYARD_API_TOKEN_FILE")]
    pub api_token_file: Option<std::path::PathBuf>,

    /// Read-only bearer token (repeatable; in the environment,
    /// comma-separated): it may GET the API and view the web console, any
    /// other method is refused with 403 `read_only`.
    #[arg(
        long = "api-read-token",
        env = "SWITCHYARD_API_READ_TOKENS",
        value_delimiter = ','
    )]
    pub api_read_tokens: Vec<String>,

    /// Key signing the web console's session cookies. Default: derived from
    /// the configured tokens, so replicas with the same tokens agree.
    #[arg(long, env = "SWITCHYARD_UI_COOKIE_SECRET", hide_env_values = true)]
    pub ui_cookie_secret: Option<String>,

    /// How often each API replica polls Redis for changes while a console
    /// page is subscribed to live updates (one poll per topic per replica).
    #[arg(long, env = "SWITCHYARD_UI_LIVE_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub ui_live_interval: Duration,

    /// Most live-update (Server-Sent Events) clients per API replica; more get 503.
    #[arg(long, env = "SWITCHYARD_UI_LIVE_CLIENTS", default_value_t = 256)]
    pub ui_live_clients: usize,

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
    /// Most items handled per periodic step (tickets expired, timers moved
    /// per shard, index entries pruned).
    #[arg(long, env = "SWITCHYARD_SWEEP_BATCH", default_value_t = 256)]
    pub sweep_batch: usize,

    /// How often due timers (delivery retries, deferred work) are moved into the work streams.
    #[arg(long, env = "SWITCHYARD_TIMER_INTERVAL", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub timer_interval: Duration,

    /// How often gauges are refreshed and indexes pruned.
    #[arg(long, env = "SWITCHYARD_OBSERVE_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub observe_interval: Duration,

    /// A stream consumer idle longer than this with no pending entries is
    /// removed from its group (the names of killed workers). Keep it well
    /// above `--worker-block` and `--worker-visibility` (default: ten times
    /// the default visibility).
    #[arg(long, env = "SWITCHYARD_CONSUMER_IDLE_TIMEOUT", default_value = "10m", value_parser = humantime::parse_duration)]
    pub consumer_idle_timeout: Duration,
}

/// The worker.
#[derive(Args, Debug, Clone)]
pub struct WorkerOpts {
    /// Name of this consumer in the stream consumer groups (default:
    /// host-pid, new at every start). A stable name makes a restarted worker
    /// reuse its consumer; names left by killed workers are removed by the
    /// scheduler after `--consumer-idle-timeout`. Unique per running worker
    /// (e.g. the pod name).
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
}

/// The probe server of a worker or scheduler (`GET /metrics`, `GET /healthz`).
#[derive(Args, Debug, Clone)]
pub struct MetricsOpts {
    /// Serve `GET /metrics` (Prometheus text) and `GET /healthz` on this
    /// address (e.g. `0.0.0.0:9100`; port 0 picks one and prints it). Off
    /// by default.
    #[arg(long, env = "SWITCHYARD_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// `Default` for an option group, as the command line would give it with no
/// flags and no environment (tests, benchmarks).
#[macro_export]
macro_rules! cli_defaults {
    ($($t:ty),* $(,)?) => {$(
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
crate::cli_defaults!(
    RedisOpts,
    LogOpts,
    OutboxOpts,
    ApiOpts,
    SchedulerOpts,
    WorkerOpts,
    MetricsOpts
);
