//! The delivery engine: enqueue, attempts, retries, dead letters, replay,
//! cancel, signatures, timers, and a worker crash.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::verify;
use crate::support::Receiver;
use crate::support::{TEST_SECRET, TestApp, eventually, spawn_app};

#[tokio::test]
async fn a_delivery_arrives_signed_with_standard_webhook_headers() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let (s, d) = app
        .deliveries().post(json!({"url": rx.url, "body": {"event": "deploy", "n": 1}, "headers": {"X-Team": "blue"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let id = d["id"].as_str().unwrap().to_owned();
    assert_eq!(d["state"], "pending");
    app.drain().await;
    assert_eq!(app.deliveries().get(&id).await["state"], "succeeded");
    let got = rx.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.id(), id, "webhook-id is the delivery id");
    assert_eq!(r.headers["x-team"], "blue");
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(
        serde_json::from_str::<Value>(&r.body).unwrap(),
        json!({"event": "deploy", "n": 1})
    );
    assert!(
        verify(TEST_SECRET, &r.headers, &r.body),
        "signature verifies: {:?}",
        r.headers
    );
    assert!(
        !verify("whsec_b3RoZXItc2VjcmV0", &r.headers, &r.body),
        "and not with another secret"
    );
    let v = app.deliveries().get(&id).await;
    assert_eq!(v["attempts"], 1);
    assert_eq!(v["attempt_log"][0]["status"], 204);
    assert_eq!(v["attempt_log"][0]["outcome"], "succeeded");
}

#[tokio::test]
async fn failing_twice_then_succeeding_logs_three_attempts() {
    let app = spawn_app().await;
    let rx = Receiver::start(
        Duration::ZERO,
        Arc::new(|_, seen| {
            if seen <= 2 {
                (StatusCode::INTERNAL_SERVER_ERROR, vec![])
            } else {
                (StatusCode::OK, vec![])
            }
        }),
    )
    .await;
    let id = app
        .deliveries()
        .create(json!({"url": rx.url, "body": {"x": 1}, "policy": "fast"}))
        .await;
    app.settle().await;
    let v = app.deliveries().get(&id).await;
    assert_eq!(v["state"], "succeeded", "{v}");
    assert_eq!(v["attempts"], 3);
    let outcomes: Vec<&str> = v["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["succeeded", "retry", "retry"], "newest first");
    assert_eq!(v["attempt_log"][1]["status"], 500);
    assert!(
        v["attempt_log"][1]["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 500")
    );
    let ids: HashSet<String> = rx.received().iter().map(|r| r.id().to_owned()).collect();
    assert_eq!(ids.len(), 1, "every retry carries the same webhook-id");
}

/// A delivery to `url` (with `policy`, if any), attempted until it is dead
/// or waits for a timer further out than the test delays.
async fn settled_delivery(app: &TestApp, url: &str, policy: Option<&str>) -> String {
    let mut body = json!({ "url": url });
    if let Some(p) = policy {
        body["policy"] = json!(p);
    }
    let id = app.deliveries().create(body).await;
    app.settle().await;
    id
}

#[tokio::test]
async fn a_permanent_4xx_is_dead_without_a_retry() {
    let app = spawn_app().await;
    let rx = Receiver::answering(StatusCode::BAD_REQUEST).await;
    let id = settled_delivery(&app, &rx.url, None).await;
    let v = app.deliveries().get(&id).await;
    assert_eq!(v["state"], "dead", "{v}");
    assert_eq!(v["attempts"], 1, "4xx is not retried");
    assert!(
        v["last_error"].as_str().unwrap().contains("permanent"),
        "{v}"
    );
    let (_, l) = app.get("/v1/deliveries?state=dead").await;
    assert_eq!(l["deliveries"][0]["id"], id.as_str());
}

#[tokio::test]
async fn a_replay_delivers_a_dead_delivery() {
    let app = spawn_app().await;
    let fail = Arc::new(AtomicBool::new(true));
    let f2 = fail.clone();
    let rx = Receiver::start(
        Duration::ZERO,
        Arc::new(move |_, _| {
            if f2.load(Ordering::SeqCst) {
                (StatusCode::BAD_REQUEST, vec![])
            } else {
                (StatusCode::OK, vec![])
            }
        }),
    )
    .await;
    let id = settled_delivery(&app, &rx.url, None).await;
    assert_eq!(app.deliveries().get(&id).await["state"], "dead");

    fail.store(false, Ordering::SeqCst);
    let (s, r) = app
        .post(&format!("/v1/deliveries/{id}/retry"), json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    app.drain().await;
    assert_eq!(app.deliveries().get(&id).await["state"], "succeeded");
    assert_eq!(rx.count(), 2);
}

#[tokio::test]
async fn a_succeeded_delivery_is_not_replayed() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let id = settled_delivery(&app, &rx.url, None).await;
    assert_eq!(app.deliveries().get(&id).await["state"], "succeeded");
    let (s, _) = app
        .post(&format!("/v1/deliveries/{id}/retry"), json!({}))
        .await;
    assert_eq!(
        s,
        StatusCode::CONFLICT,
        "a succeeded delivery is not replayed"
    );
}

#[tokio::test]
async fn a_410_stops_even_when_4xx_are_retried() {
    let app = spawn_app().await;
    let gone = Receiver::answering(StatusCode::GONE).await;
    let a = settled_delivery(&app, &gone.url, Some("fast4xx")).await;
    let v = app.deliveries().get(&a).await;
    assert_eq!(v["state"], "dead", "{v}");
    assert_eq!(v["attempts"], 1, "410 stops even when 4xx are retried");
}

#[tokio::test]
async fn a_policy_can_retry_4xx_until_it_gives_up() {
    let app = spawn_app().await;
    let notfound = Receiver::answering(StatusCode::NOT_FOUND).await;
    let c = settled_delivery(&app, &notfound.url, Some("fast4xx")).await;
    let v = app.deliveries().get(&c).await;
    assert_eq!(v["state"], "dead", "{v}");
    assert_eq!(v["attempts"], 3, "fast4xx retries 404 until it gives up");
}

/// A receiver that answers 429 with `Retry-After: 3600`, and a delivery to
/// it that has been attempted once and now waits.
async fn a_delivery_told_to_retry_after_an_hour(app: &TestApp) -> (Receiver, String) {
    let busy = Receiver::start(
        Duration::ZERO,
        Arc::new(|_, _| {
            (
                StatusCode::TOO_MANY_REQUESTS,
                vec![("retry-after", "3600".to_owned())],
            )
        }),
    )
    .await;
    let b = settled_delivery(app, &busy.url, None).await;
    assert_eq!(app.deliveries().get(&b).await["state"], "failed_retrying");
    (busy, b)
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let app = spawn_app().await;
    let (_busy, b) = a_delivery_told_to_retry_after_an_hour(&app).await;
    let next = app.deliveries().get(&b).await["next_attempt_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let next = chrono::DateTime::parse_from_rfc3339(&next).unwrap();
    let wait = next.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!(
        (3500..=3600).contains(&wait),
        "Retry-After: 3600 → next attempt in ~1h, got {wait}s"
    );
}

#[tokio::test]
async fn cancelling_a_waiting_delivery_removes_its_retry_timer() {
    let app = spawn_app().await;
    let (_busy, b) = a_delivery_told_to_retry_after_an_hour(&app).await;
    // Cancel the waiting one: no more attempts; cancelling again is a conflict.
    let (s, v) = app.delete(&format!("/v1/deliveries/{b}")).await;
    assert_eq!(
        (s, v["state"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    let (s, _) = app.delete(&format!("/v1/deliveries/{b}")).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let mut conn = app.server.conn();
    let shard =
        switchyard_shared::families::deliveries::shard_of_id(&b, app.keys.shards()).unwrap();
    let timers: usize = redis::cmd("ZCARD")
        .arg(app.keys.timers(shard))
        .query(&mut conn)
        .unwrap();
    assert_eq!(timers, 0, "the pending retry timer is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_does_not_stall_the_others() {
    let app = TestApp::builder()
        .with_config(|c| c.families.deliveries.delivery_per_destination = 4)
        .spawn()
        .await;
    let slow = Receiver::start(
        Duration::from_secs(3),
        Arc::new(|_, _| (StatusCode::OK, vec![])),
    )
    .await;
    let fast = Receiver::ok().await;
    let mut opts = crate::support::worker_opts("w");
    opts.worker_concurrency = 16;
    let _stop = app.run_worker_with(opts);
    for _ in 0..40 {
        app.deliveries().post(json!({"url": slow.url})).await;
    }
    let start = Instant::now();
    let mut fast_ids = Vec::new();
    for _ in 0..20 {
        let (_, d) = app.deliveries().post(json!({"url": fast.url})).await;
        fast_ids.push(d["id"].as_str().unwrap().to_owned());
    }
    eventually(Duration::from_secs(10), || async { fast.count() == 20 }).await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "fast receiver waited {:?} behind the slow one",
        start.elapsed()
    );
    assert!(
        slow.count() <= 4,
        "at most the per-destination limit is in flight to the slow receiver"
    );
}

#[tokio::test]
async fn an_attempt_to_a_hanging_receiver_times_out() {
    let app = TestApp::builder()
        .with_config(|c| c.families.deliveries.delivery_timeout = Duration::from_millis(300))
        .spawn()
        .await;
    let hang = Receiver::start(
        Duration::from_secs(5),
        Arc::new(|_, _| (StatusCode::OK, vec![])),
    )
    .await;
    let id = app
        .deliveries()
        .create(json!({"url": hang.url, "policy": "fast"}))
        .await;
    app.drain().await;
    let v = app.deliveries().get(&id).await;
    assert!(v["attempts"].as_u64() >= Some(1), "{v}");
    let err = v["attempt_log"][0]["error"].as_str().unwrap();
    assert!(err.contains("timeout"), "{err}");
    assert!(v["attempt_log"][0]["latency_ms"].as_u64().unwrap() < 2000);
}
