//! `--metrics-listen` of the worker and scheduler roles: real
//! `switchyard` processes serving `GET /metrics` (their own metrics) and
//! `GET /healthz` (200 while the loop runs and Redis answers, 503 once
//! Redis is gone) over real HTTP on `127.0.0.1:0`.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Receiver, eventually, spawn_app};

/// A `switchyard worker|scheduler` process with `--metrics-listen
/// 127.0.0.1:0`; SIGKILLed and reaped when dropped.
struct Role {
    child: Child,
    /// `http://` + the probe server's bound address, read from its log.
    base: String,
}

impl Role {
    fn spawn(role: &str, redis_url: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args([role, "--redis-url", redis_url])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(["--log-format", "json", "--log-level", "info"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the switchyard binary starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let base = format!("http://{}", bound_address(stderr));
        Self { child, base }
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let resp = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        let status = resp.status();
        (status, resp.text().await.unwrap())
    }

    async fn healthz(&self) -> (StatusCode, Value) {
        let (status, body) = self.get("/healthz").await;
        (status, serde_json::from_str(&body).unwrap())
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The `metrics_listen` field of the JSON log line that announces the probe
/// server; the rest of the log is passed on to the test's stderr.
fn bound_address(stderr: ChildStderr) -> String {
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.expect("the role's log");
        eprintln!("{line}");
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let Some(addr) = v["fields"]["metrics_listen"].as_str() {
            let addr = addr.to_owned();
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    eprintln!("{line}");
                }
            });
            return addr;
        }
    }
    panic!("the role exited without announcing --metrics-listen");
}

#[tokio::test]
async fn worker_and_scheduler_serve_their_metrics_and_health() {
    let app = spawn_app().await;
    let url = app.server.url.clone();
    let worker = Role::spawn(
        "worker",
        &url,
        &["--worker-name", "probed", "--worker-block", "100ms"],
    );
    let scheduler = Role::spawn("scheduler", &url, &["--observe-interval", "100ms"]);

    for (role, name) in [(&worker, "worker"), (&scheduler, "scheduler")] {
        eventually(Duration::from_secs(10), || async {
            role.healthz().await.0 == StatusCode::OK
        })
        .await;
        let (status, body) = role.healthz().await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"status": "ok", "role": name}));
    }

    // Work for the worker: one delivery, sent by the worker process.
    let rx = Receiver::ok().await;
    let id = app
        .deliveries()
        .create(json!({"url": rx.url, "body": {"n": 1}}))
        .await;
    eventually(Duration::from_secs(10), || async {
        app.deliveries().get(&id).await["state"] == "succeeded"
    })
    .await;

    let (status, text) = worker.get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.lines()
            .any(|l| l.starts_with("switchyard_work_entries_total{")),
        "the worker counts the entry it handled:\n{text}"
    );
    assert!(
        !text.contains("switchyard_http_requests_total"),
        "only the worker's own metrics (the API runs elsewhere):\n{text}"
    );

    eventually(Duration::from_secs(10), || async {
        scheduler
            .get("/metrics")
            .await
            .1
            .contains("switchyard_work_stream_depth")
    })
    .await;
    let (_, text) = scheduler.get("/metrics").await;
    assert!(
        !text.contains("switchyard_work_entries_total"),
        "only the scheduler's own metrics:\n{text}"
    );

    let (status, _) = worker.get("/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn healthz_is_503_once_redis_is_gone() {
    switchyard_shared::init_tls();
    // A Redis of this test's own, so it can be killed (also in cluster mode).
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("redis.sock");
    let mut redis = Command::new("redis-server")
        .args(["--port", "0", "--save", "", "--appendonly", "no"])
        .arg("--unixsocket")
        .arg(&socket)
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let url = format!("unix://{}", socket.display());
    eventually(Duration::from_secs(10), || async { socket.exists() }).await;

    let worker = Role::spawn(
        "worker",
        &url,
        &["--worker-name", "probed", "--worker-block", "100ms"],
    );
    let scheduler = Role::spawn("scheduler", &url, &[]);
    for role in [&worker, &scheduler] {
        eventually(Duration::from_secs(10), || async {
            role.healthz().await.0 == StatusCode::OK
        })
        .await;
    }

    redis.kill().unwrap();
    redis.wait().unwrap();
    for (role, name) in [(&worker, "worker"), (&scheduler, "scheduler")] {
        eventually(Duration::from_secs(20), || async {
            role.healthz().await.0 == StatusCode::SERVICE_UNAVAILABLE
        })
        .await;
        let (_, body) = role.healthz().await;
        assert_eq!(body["status"], "error");
        assert_eq!(body["role"], name);
        assert!(body["reason"].as_str().unwrap().contains("Redis"), "{body}");
        // Metrics stay available while Redis is down.
        assert_eq!(role.get("/metrics").await.0, StatusCode::OK);
    }
}
