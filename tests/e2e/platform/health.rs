//! Health, readiness, metrics, OpenAPI, auth, scripts and the dev process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use switchyard_shared::platform::scripts;

use crate::support::redis::cluster_mode;
use crate::support::{RedisServer, TestApp, spawn_app};

#[tokio::test]
async fn every_script_loads_into_a_real_redis() {
    if cluster_mode() {
        // One client on one server; on a cluster the readiness check loads
        // the scripts on every node (platform::script_flush tests it).
        return;
    }
    let redis = RedisServer::start();
    let client = redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let all = switchyard_shared::scripts();
    scripts::load_all(&mut conn, &all).await.unwrap();
    assert!(scripts::all_loaded(&mut conn, &all).await.unwrap());
    assert!(all.len() >= 10);
}

#[tokio::test]
async fn health_ready_and_script_reload_after_flush() {
    let app = spawn_app().await;
    let (s, b) = app.get("/healthz").await;
    assert_eq!((s, b), (StatusCode::OK, json!({"status": "ok"})));
    let (s, _) = app.get("/readyz").await;
    assert_eq!(s, StatusCode::OK);
    // After SCRIPT FLUSH calls still work (EVALSHA reloads) and readyz reloads.
    let mut conn = app.server.conn();
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut conn).unwrap();
    app.gates().create("a", "g", &["live"]).await;
    let (s, _) = app.get("/readyz").await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn readyz_is_503_when_redis_is_gone() {
    if cluster_mode() {
        // SHUTDOWN reaches one node of the cluster; a node lost on a
        // cluster is the failover test's business.
        return;
    }
    let app = spawn_app().await;
    let mut conn = app.server.conn();
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").arg("NOSAVE").query(&mut conn);
    let (s, b) = app.get("/readyz").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert_eq!(b["status"], "error");
    let (s, b) = app.get("/api/services/a").await;
    assert_eq!(
        s,
        StatusCode::SERVICE_UNAVAILABLE,
        "an outage is a 503, not a client error: {b}"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    app.get("/api/services/nope").await;
    app.gates().create("a", "g", &["live"]).await;
    app.gates()
        .test_and_set(json!({"services": {"a": ["live"]}}))
        .await;
    let resp = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(text.contains(r#"switchyard_http_requests_total{method="GET",route="/api/services/{service}",status="404"}"#), "{text}");
    assert!(
        text.contains("switchyard_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"switchyard_gate_test_and_set_total{outcome="ok"}"#),
        "{text}"
    );
}

#[tokio::test]
async fn openapi_lists_every_endpoint() {
    let app = spawn_app().await;
    let (s, doc) = app.get("/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/healthz", &["get"][..]),
        ("/readyz", &["get"]),
        ("/metrics", &["get"]),
        ("/openapi.json", &["get"]),
        ("/api/services", &["get", "put"]),
        ("/api/services/{service}", &["get", "post", "put", "delete"]),
        ("/api/services/{service}/{env}", &["get", "put"]),
        ("/api/services/{service}/{env}/history", &["get"]),
        ("/api/gates", &["get", "put"]),
        (
            "/api/gates/{group}/{service}",
            &["get", "post", "put", "delete"],
        ),
        ("/api/gates/{group}/{service}/{env}", &["get", "put"]),
        ("/api/gates/{group}/{service}/{env}/history", &["get"]),
        ("/api/tickets/{id}", &["get", "delete"]),
        ("/api/holidays", &["get", "post"]),
    ] {
        for m in methods {
            assert!(
                paths.get(path).and_then(|p| p.get(*m)).is_some(),
                "{m} {path} missing from openapi.json"
            );
            // And the route really exists: not the 404/405 fallback.
            let (status, body) = app
                .call(
                    m.to_uppercase().parse().unwrap(),
                    &path
                        .replace("{service}", "s")
                        .replace("{env}", "e")
                        .replace("{group}", "g")
                        .replace("{id}", "i"),
                    Some("{}"),
                )
                .await;
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED && body["code"] != "route_not_found",
                "{m} {path}: {status} {body}"
            );
        }
    }
}

#[tokio::test]
async fn tokens_are_required_when_configured() {
    let app = TestApp::builder()
        .with_config(|c| c.api.api_tokens = vec!["s3cret".into(), "other".into()])
        .spawn()
        .await;
    let c = &app.client;
    let r = c
        .get(format!("{}/api/services", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "error");
    assert_eq!(body["code"], "unauthorized");
    let r = c
        .get(format!("{}/api/services", app.base))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .get(format!("{}/api/services", app.base))
        .bearer_auth("other")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for open in ["/healthz", "/readyz"] {
        let r = c.get(format!("{}{open}", app.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{open}");
    }
    // The token's label is the actor in histories.
    app.gates().create("a", "g", &["live"]).await;
    let (_, h) = app.get("/api/services/a/live/history").await;
    assert_eq!(h["history"][0]["actor"], "token-1");
}

/// One HTTP call from a plain (non-async) test.
fn http_status(method: &str, url: &str, body: &str) -> u16 {
    switchyard_shared::init_tls();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .request(method.parse().unwrap(), url)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        resp.status().as_u16()
    })
}

fn pid_alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// `switchyard dev` starts its private redis-server; SIGKILL of the parent
/// takes the child down too, and the data written survives in the AOF.
#[test]
fn dev_mode_runs_everything_and_its_redis_dies_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args([
                "dev",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir.path())
            .env_remove("SWITCHYARD_REDIS_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = spawn();
    let out = BufReader::new(child.stdout.take().unwrap());
    let url = out
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("Switchyard API listening on ")
                .map(str::to_owned)
        })
        .expect("dev prints the API URL");
    assert_eq!(url, format!("http://127.0.0.1:{port}"));
    let http = http_status("GET", &format!("{url}/readyz"), "");
    assert_eq!(http, 200);
    let create = http_status(
        "POST",
        &format!("{url}/api/services/persisted"),
        r#"{"group": "g", "environments": ["live"]}"#,
    );
    assert_eq!(create, 200);

    let redis_pid: i32 = std::fs::read_to_string(dir.path().join("redis.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid_alive(redis_pid));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let start = Instant::now();
    while pid_alive(redis_pid) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "redis-server outlived its parent"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Started again on the same data dir, the AOF brings the service back.
    let mut child = spawn();
    let out = BufReader::new(child.stdout.take().unwrap());
    let url = out
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("Switchyard API listening on ")
                .map(str::to_owned)
        })
        .unwrap();
    assert_eq!(
        http_status("GET", &format!("{url}/api/services/persisted"), ""),
        200
    );
    // SIGTERM: graceful; the child redis stops too.
    let redis_pid: i32 = std::fs::read_to_string(dir.path().join("redis.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful exit: {status}");
    assert!(!pid_alive(redis_pid));
}

/// The document is generated from the routers: every family is in it, and
/// every operation it lists is served (not the 404/405 fallback).
#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = spawn_app().await;
    let (_, doc) = app.get("/openapi.json").await;
    let paths = doc["paths"].as_object().unwrap();
    for family in [
        "/api/services",
        "/v1/deliveries",
        "/v1/nets",
        "/api/statemachines",
    ] {
        assert!(
            paths.contains_key(family),
            "{family} missing from openapi.json"
        );
    }
    let mut checked = 0;
    for (path, ops) in paths {
        let concrete: String = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in ops.as_object().unwrap().keys() {
            let (status, body) = app
                .call(
                    method.to_uppercase().parse().unwrap(),
                    &concrete,
                    Some("{}"),
                )
                .await;
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED && body["code"] != "route_not_found",
                "{method} {path}: {status} {body}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} operations documented");
}
