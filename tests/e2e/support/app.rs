//! The app under test: a fresh `redis-server`, the real API on
//! `127.0.0.1:0`, and the worker and scheduler on demand — stepped by
//! [`TestApp::drain`], or run in the background where a test is about
//! timing or concurrency.
//!
//! Configuration goes through the real role configs:
//! `TestApp::builder().with_config(|c: &mut ApiConfig| …)`. The worker and
//! scheduler get the same outbox and family options, so a new family needs
//! no new field here.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use switchyard_scheduler::Scheduler;
use switchyard_shared::config::{ApiConfig, SchedulerConfig, WorkerConfig};
use switchyard_shared::platform::config::{RedisOpts, SchedulerOpts, WorkerOpts};
use switchyard_shared::{Keys, Redis};
use tokio_util::sync::CancellationToken;

use super::redis::RedisServer;

/// Shards of the test deployment (the production default).
pub const SHARDS: u16 = 64;

/// How far ahead [`TestApp::settle`] waits for timers.
pub const SETTLE_HORIZON: Duration = Duration::from_secs(2);

/// The webhook signing secret of test workers (Standard Webhooks form).
pub const TEST_SECRET: &str = "whsec_c3dpdGNoeWFyZC10ZXN0LXNlY3JldC0zMmJ5dGVzISE=";

/// The API config of every test unless it changes it: fast retry policies
/// (so retries happen within a test), a small body limit, a signing secret
/// and short callback timeouts.
pub fn test_config() -> ApiConfig {
    let mut c = ApiConfig::default();
    c.api.listen = "127.0.0.1:0".into();
    c.api.max_body_bytes = 64 * 1024;
    c.api.request_timeout = Duration::from_secs(30);
    c.api.shutdown_timeout = Duration::from_secs(5);
    c.outbox.retry_policies = vec![
        "fast=schedule:50ms,50ms,50ms".into(),
        "fast4xx=schedule:50ms,50ms,retry_4xx".into(),
    ];
    c.outbox.default_retry_policy = "fast".into();
    let f = &mut c.families;
    f.gates.gate_namespace = "default".into();
    f.gates.gate_queue_ttl = Duration::from_secs(120);
    f.gates.gate_grant_ttl = Duration::from_secs(12 * 3600);
    f.gates.gate_history_len = 100;
    f.gates.sweep_interval = Duration::from_millis(20);
    f.deliveries.webhook_secret = Some(TEST_SECRET.into());
    f.deliveries.delivery_connect_timeout = Duration::from_secs(2);
    f.deliveries.delivery_timeout = Duration::from_secs(4);
    f.nets.net_fire_bound = 64;
    f.nets.net_callback_policy = "fast".into();
    f.machines.sm_check_interval = Duration::from_millis(50);
    c
}

/// The options of a test worker called `name`.
pub fn worker_opts(name: &str) -> WorkerOpts {
    WorkerOpts {
        worker_name: Some(name.into()),
        worker_block: Duration::from_millis(100),
        worker_max_deliveries: 3,
        worker_visibility: Duration::from_secs(5),
        worker_concurrency: 32,
        worker_shutdown_timeout: Duration::from_secs(2),
    }
}

pub struct TestAppBuilder {
    config: ApiConfig,
    /// On a cluster of the test's own with replicas ([`RedisServer::start_with_replicas`]).
    replicas: bool,
    /// The shared connection's timeouts.
    timeouts: switchyard_shared::platform::redis::Timeouts,
    /// `--redis-wait-replicas` of the shared connection.
    wait: Option<switchyard_shared::platform::redis::WaitReplicas>,
}

impl TestAppBuilder {
    /// Change the API config (and with it the families' and outbox options
    /// the worker and scheduler get).
    pub fn with_config(mut self, f: impl FnOnce(&mut ApiConfig)) -> Self {
        f(&mut self.config);
        self
    }

    /// Run on a cluster of the test's own, 3 masters with a replica each,
    /// whose nodes the test reaches through `app.server.cluster()`
    /// (`SWITCHYARD_TEST_REDIS=cluster` only).
    pub fn with_replicas(mut self) -> Self {
        self.replicas = true;
        self
    }

    /// The response timeout of the test's shared connection (default:
    /// `--redis-response-timeout`'s).
    pub fn with_response_timeout(mut self, response: Duration) -> Self {
        self.timeouts.response = response;
        self
    }

    /// Script calls wait for `replicas` replicas (`--redis-wait-replicas`,
    /// with its default timeout).
    pub fn with_wait_replicas(mut self, replicas: u32) -> Self {
        let opts = RedisOpts::default();
        self.wait = Some(switchyard_shared::platform::redis::WaitReplicas {
            replicas,
            timeout: opts.redis_wait_timeout,
        });
        self
    }

    pub async fn spawn(self) -> TestApp {
        let mut config = self.config;
        switchyard_shared::init_tls();
        let server = if self.replicas {
            RedisServer::start_with_replicas()
        } else {
            RedisServer::start()
        };
        let redis = Redis::connect_ready(
            &server.url,
            self.timeouts,
            switchyard_shared::scripts(),
            Duration::from_secs(5),
        )
        .await
        .unwrap()
        .with_wait(self.wait);
        let keys = Keys::new("sy", SHARDS);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        config.outbox.public_url = format!("http://{addr}");
        let app = switchyard_api::build(redis.clone(), keys.clone(), config.clone()).unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(switchyard_api::serve(
            listener,
            app,
            shutdown.clone(),
            Duration::from_secs(5),
        ));
        TestApp {
            server,
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            keys,
            redis,
            token: config.api.api_tokens.first().cloned(),
            config,
            shutdown,
        }
    }
}

pub struct TestApp {
    /// The test's own redis-server.
    pub server: RedisServer,
    pub base: String,
    pub client: reqwest::Client,
    pub keys: Keys,
    /// The shared connection, as the roles use it.
    pub redis: Redis,
    pub config: ApiConfig,
    /// Sent as the bearer token on every call (the first configured one).
    pub token: Option<String>,
    shutdown: CancellationToken,
}

/// The app with the test config.
pub async fn spawn_app() -> TestApp {
    TestApp::builder().spawn().await
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            config: test_config(),
            replicas: false,
            timeouts: RedisOpts::default().timeouts(),
            wait: None,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.body(b.to_owned());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(&body.to_string())).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(&body.to_string())).await
    }
    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// The Prometheus text of /metrics.
    pub async fn metrics_text(&self) -> String {
        let resp = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        resp.text().await.unwrap()
    }

    /// The worker role's config: the app's outbox and family options.
    pub fn worker_config(&self, opts: WorkerOpts) -> WorkerConfig {
        WorkerConfig {
            redis: RedisOpts::default(),
            log: Default::default(),
            metrics: Default::default(),
            worker: opts,
            outbox: self.config.outbox.clone(),
            families: self.config.families.clone(),
        }
    }

    /// A scheduler of this app (stepped by the test, or run).
    pub fn scheduler(&self) -> Scheduler {
        let config = SchedulerConfig {
            redis: RedisOpts::default(),
            log: Default::default(),
            metrics: Default::default(),
            scheduler: SchedulerOpts {
                sweep_batch: 16,
                timer_interval: Duration::from_millis(20),
                ..SchedulerOpts::default()
            },
            outbox: self.config.outbox.clone(),
            families: self.config.families.clone(),
        };
        Scheduler::new(self.redis.clone(), self.keys.clone(), config).unwrap()
    }

    /// The production worker (every handler registered) with `opts`.
    pub fn production_worker(&self, opts: WorkerOpts) -> switchyard_worker::Worker {
        switchyard_worker::build(
            self.redis.clone(),
            self.keys.clone(),
            &self.worker_config(opts),
        )
        .unwrap()
    }

    /// A bare worker (no handlers) whose entries are reclaimable after 200 ms.
    pub fn bare_worker(&self, name: &str) -> switchyard_worker::Worker {
        let mut opts = worker_opts(name);
        opts.worker_visibility = Duration::from_millis(200);
        switchyard_worker::Worker::new(self.redis.clone(), self.keys.clone(), opts)
    }

    /// Step the production worker and move due timers until neither has
    /// anything left: every queued piece of work (and every piece of work
    /// it queues) is handled. Timers not yet due are left alone. Returns
    /// how many entries were handled.
    pub async fn drain(&self) -> usize {
        let mut opts = worker_opts("drain");
        opts.worker_block = Duration::from_millis(10);
        let worker = Arc::new(self.production_worker(opts));
        worker.ensure_groups().await.unwrap();
        let scheduler = self.scheduler();
        let mut conn = self.redis.dedicated(Duration::from_secs(10)).await.unwrap();
        let mut handled = 0;
        loop {
            let moved = scheduler.step("timers").await.unwrap();
            let n = worker.step(&mut conn).await.unwrap();
            handled += n;
            if moved == 0 && n == 0 {
                return handled;
            }
        }
    }

    /// [`drain`](Self::drain), then wait for each timer that falls due
    /// within [`SETTLE_HORIZON`] (retries with the short test delays) and
    /// drain again, until no timer is due that soon. Timers further out
    /// (e.g. a `Retry-After` of an hour) are left alone. Returns how many
    /// entries were handled.
    pub async fn settle(&self) -> usize {
        let mut handled = self.drain().await;
        while let Some(wait) = self.next_timer_in().await {
            if wait > SETTLE_HORIZON {
                break;
            }
            tokio::time::sleep(wait + Duration::from_millis(1)).await;
            handled += self.drain().await;
        }
        handled
    }

    /// How long until the earliest timer of any shard is due (by Redis
    /// time, which the scripts use), or `None` without timers.
    async fn next_timer_in(&self) -> Option<Duration> {
        let mut conn = self.server.conn();
        let (secs, micros): (u64, u64) = redis::cmd("TIME").query(&mut conn).unwrap();
        let now_ms = secs * 1000 + micros / 1000;
        (0..self.keys.shards())
            .filter_map(|shard| {
                let first: Vec<(String, f64)> = redis::cmd("ZRANGE")
                    .arg(self.keys.timers(shard))
                    .arg(0)
                    .arg(0)
                    .arg("WITHSCORES")
                    .query(&mut conn)
                    .unwrap();
                first.first().map(|(_, due)| *due as u64)
            })
            .min()
            .map(|due| Duration::from_millis(due.saturating_sub(now_ms)))
    }

    /// How many keys the test's Redis holds.
    pub fn dbsize(&self) -> usize {
        redis::cmd("DBSIZE").query(&mut self.server.conn()).unwrap()
    }

    /// The production worker and the scheduler, running until the returned
    /// token is cancelled (or dropped with [`Running`]).
    pub fn run_worker_and_scheduler(&self, name: &str) -> Running {
        self.run_worker_with(worker_opts(name))
    }

    /// The production worker with `opts`, and the scheduler, in the background.
    pub fn run_worker_with(&self, opts: WorkerOpts) -> Running {
        let stop = CancellationToken::new();
        let worker = Arc::new(self.production_worker(opts)).run(stop.clone());
        tokio::spawn(async move {
            if let Err(e) = worker.await {
                eprintln!("the worker stopped: {e:#}");
            }
        });
        tokio::spawn(self.scheduler().run(stop.clone()));
        Running(stop)
    }

    /// The production worker only (no scheduler), in the background.
    pub fn run_worker_only(&self, name: &str) -> Running {
        let stop = CancellationToken::new();
        tokio::spawn(Arc::new(self.production_worker(worker_opts(name))).run(stop.clone()));
        Running(stop)
    }

    /// Every key of the gate namespace with its DUMP, to prove "nothing changed".
    pub fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut conn = self.server.conn();
        let mut keys: Vec<String> = redis::cmd("KEYS")
            .arg(self.keys.gates("default").pattern())
            .query(&mut conn)
            .unwrap();
        keys.sort();
        keys.into_iter()
            .map(|k| {
                let d: Vec<u8> = redis::cmd("DUMP").arg(&k).query(&mut conn).unwrap();
                (k, d)
            })
            .collect()
    }
}

/// Background roles of a test; they stop when this is dropped or cancelled.
pub struct Running(pub CancellationToken);

impl Running {
    pub fn cancel(&self) {
        self.0.cancel();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Poll `f` until it returns true, for at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < limit,
            "condition not reached within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
