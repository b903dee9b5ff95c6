//! Test harness: a fresh `redis-server` per test on a unix socket in a temp
//! dir, and the real app on `127.0.0.1:0`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use switchyard_api::{AppState, router, serve};
use switchyard_scheduler::Scheduler;
use switchyard_shared::config::{ApiOpts, DeliveryOpts, NetOpts, SchedulerOpts, WorkerOpts};
use switchyard_shared::families::gates::{BuildWindows, GateSettings};
use switchyard_shared::{Keys, RedisPool};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

pub struct RedisServer {
    child: Child,
    _dir: TempDir,
    pub url: String,
}

impl RedisServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("redis.sock");
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--unixsocket",
            ])
            .arg(&socket)
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server must be installed (apt-get install -y redis-server)");
        let url = format!("unix://{}", socket.display());
        let start = Instant::now();
        loop {
            if let Ok(c) = redis::Client::open(url.as_str())
                && let Ok(mut conn) = c.get_connection()
                && redis::cmd("PING").query::<String>(&mut conn).is_ok()
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        Self {
            child,
            _dir: dir,
            url,
        }
    }

    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

pub fn gate_settings() -> GateSettings {
    GateSettings {
        namespace: "default".into(),
        queue_ttl: Duration::from_secs(120),
        grant_ttl: Duration::from_secs(12 * 3600),
        history_len: 100,
        windows: BuildWindows::default(),
    }
}

pub fn api_opts() -> ApiOpts {
    ApiOpts {
        listen: "127.0.0.1:0".into(),
        api_tokens: vec![],
        api_token_file: None,
        max_body_bytes: 64 * 1024,
        request_timeout: Duration::from_secs(30),
        shutdown_timeout: Duration::from_secs(5),
    }
}

pub fn scheduler_opts() -> SchedulerOpts {
    SchedulerOpts {
        sweep_interval: Duration::from_millis(20),
        sweep_batch: 16,
        timer_interval: Duration::from_millis(20),
        sm_check_interval: Duration::from_millis(50),
    }
}

pub fn worker_opts(name: &str) -> WorkerOpts {
    WorkerOpts {
        worker_name: Some(name.into()),
        worker_block: Duration::from_millis(100),
        worker_max_deliveries: 3,
        worker_visibility: Duration::from_secs(5),
        worker_concurrency: 32,
        worker_shutdown_timeout: Duration::from_secs(2),
        webhook_secret: Some(TEST_SECRET.into()),
        delivery_connect_timeout: Duration::from_secs(2),
        delivery_timeout: Duration::from_secs(4),
        ..WorkerOpts::default()
    }
}

/// The webhook signing secret of test workers (Standard Webhooks form).
pub const TEST_SECRET: &str = "whsec_c3dpdGNoeWFyZC10ZXN0LXNlY3JldC0zMmJ5dGVzISE=";

/// Test retry policies: fast ones, so retries happen within a test.
pub fn delivery_opts() -> DeliveryOpts {
    DeliveryOpts {
        retry_policies: vec![
            "fast=schedule:50ms,50ms,50ms".into(),
            "fast4xx=schedule:50ms,50ms,retry_4xx".into(),
        ],
        default_retry_policy: "fast".into(),
        ..DeliveryOpts::default()
    }
}

pub struct TestApp {
    pub redis: RedisServer,
    pub base: String,
    pub client: reqwest::Client,
    pub keys: Keys,
    pub pool: RedisPool,
    pub settings: GateSettings,
    pub delivery: DeliveryOpts,
    pub net: NetOpts,
    pub token: Option<String>,
    shutdown: CancellationToken,
}

pub struct AppConfig {
    pub settings: GateSettings,
    pub api: ApiOpts,
    pub delivery: DeliveryOpts,
    pub net: NetOpts,
    pub tokens: Vec<String>,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            settings: gate_settings(),
            api: api_opts(),
            delivery: delivery_opts(),
            net: NetOpts {
                net_fire_bound: 64,
                net_callback_policy: "fast".into(),
                ..NetOpts::default()
            },
            tokens: vec![],
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppConfig::default()).await
}

pub async fn spawn_app_with(mut cfg: AppConfig) -> TestApp {
    switchyard_shared::init_tls();
    let redis = RedisServer::start();
    let pool = RedisPool::new(&redis.url, 16).unwrap();
    pool.wait_ready(Duration::from_secs(5)).await.unwrap();
    let keys = Keys::new("sy", 16);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    cfg.net.public_url = format!("http://{addr}");
    let state = AppState::new(
        pool.clone(),
        &keys,
        cfg.settings.clone(),
        &cfg.delivery,
        &cfg.net,
        cfg.tokens.clone(),
    )
    .unwrap();
    let shutdown = CancellationToken::new();
    let app = router(state, &cfg.api);
    tokio::spawn(serve(
        listener,
        app,
        shutdown.clone(),
        Duration::from_secs(5),
    ));
    TestApp {
        redis,
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        keys,
        pool,
        settings: cfg.settings,
        delivery: cfg.delivery,
        net: cfg.net,
        token: cfg.tokens.first().cloned(),
        shutdown,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl TestApp {
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

    /// Create a service through the API (v0 form), asserting success.
    pub async fn create(&self, name: &str, group: &str, envs: &[&str]) {
        let (s, b) = self
            .post(
                &format!("/api/services/{name}"),
                serde_json::json!({"group": group, "environments": envs}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    pub fn scheduler(&self) -> Scheduler {
        Scheduler::new(
            self.pool.clone(),
            &self.keys,
            self.settings.clone(),
            self.delivery.delivery_retention,
            scheduler_opts(),
        )
    }

    /// Every key of the gate namespace with its DUMP, to prove "nothing changed".
    pub fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut conn = self.redis.conn();
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

/// A bare worker (no handlers) whose entries are reclaimable after 200 ms.
pub fn worker(app: &TestApp, name: &str) -> switchyard_worker::Worker {
    let mut opts = worker_opts(name);
    opts.worker_visibility = Duration::from_millis(200);
    switchyard_worker::Worker::new(app.pool.clone(), app.keys.clone(), opts)
}

/// The production worker (delivery handler registered), running until the
/// returned token is cancelled; and the scheduler moving timers.
pub fn run_worker_and_scheduler(app: &TestApp, name: &str) -> CancellationToken {
    run_worker_with(app, worker_opts(name))
}

/// The production worker only (no scheduler), until the token is cancelled.
pub fn run_worker_only(app: &TestApp, name: &str) -> CancellationToken {
    let stop = CancellationToken::new();
    let w = switchyard_worker::build(
        app.pool.clone(),
        app.keys.clone(),
        &worker_opts(name),
        &app.delivery,
        &app.net,
    )
    .unwrap();
    tokio::spawn(std::sync::Arc::new(w).run(stop.clone()));
    stop
}

pub fn run_worker_with(app: &TestApp, opts: WorkerOpts) -> CancellationToken {
    let stop = CancellationToken::new();
    let w = switchyard_worker::build(
        app.pool.clone(),
        app.keys.clone(),
        &opts,
        &app.delivery,
        &app.net,
    )
    .unwrap();
    tokio::spawn(std::sync::Arc::new(w).run(stop.clone()));
    tokio::spawn(app.scheduler().run(stop.clone()));
    stop
}
