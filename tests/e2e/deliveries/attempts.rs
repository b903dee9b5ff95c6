//! The delivery engine: enqueue, attempts, retries, dead letters, replay,
//! cancel, signatures, timers, and a worker crash.

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use switchyard_shared::families::deliveries::{DeliveryStore, NewDelivery};

use crate::support::Receiver;
use crate::support::{TEST_SECRET, TestApp, eventually, spawn_app, worker_opts};

/// Standard Webhooks verification, written from the specification: the key
/// is the base64 after `whsec_`; the signed content is `id.timestamp.body`;
/// the header holds space-separated `v1,<base64 HMAC-SHA256>` signatures.
fn verify(secret: &str, headers: &HashMap<String, String>, body: &str) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let (Some(id), Some(ts), Some(sigs)) = (
        headers.get("webhook-id"),
        headers.get("webhook-timestamp"),
        headers.get("webhook-signature"),
    ) else {
        return false;
    };
    let ts_num: i64 = ts.parse().unwrap();
    if (chrono::Utc::now().timestamp() - ts_num).abs() > 300 {
        return false; // replay window
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    sigs.split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

#[tokio::test]
async fn a_delivery_arrives_signed_with_standard_webhook_headers() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let _stop = app.run_worker_and_scheduler("w");
    let (s, d) = app
        .post("/v1/deliveries", json!({"url": rx.url, "body": {"event": "deploy", "n": 1}, "headers": {"X-Team": "blue"}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{d}");
    let id = d["id"].as_str().unwrap().to_owned();
    assert_eq!(d["state"], "pending");
    eventually(Duration::from_secs(10), || async {
        app.deliveries().get(&id).await["state"] == "succeeded"
    })
    .await;
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
    let _stop = app.run_worker_and_scheduler("w");
    let (_, d) = app
        .post(
            "/v1/deliveries",
            json!({"url": rx.url, "body": {"x": 1}, "policy": "fast"}),
        )
        .await;
    let id = d["id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(10), || async {
        app.deliveries().get(&id).await["state"] == "succeeded"
    })
    .await;
    let v = app.deliveries().get(&id).await;
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

#[tokio::test]
async fn a_permanent_4xx_is_dead_and_a_replay_delivers_it() {
    let app = spawn_app().await;
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let f2 = fail.clone();
    let rx = Receiver::start(
        Duration::ZERO,
        Arc::new(move |_, _| {
            if f2.load(std::sync::atomic::Ordering::SeqCst) {
                (StatusCode::BAD_REQUEST, vec![])
            } else {
                (StatusCode::OK, vec![])
            }
        }),
    )
    .await;
    let _stop = app.run_worker_and_scheduler("w");
    let (_, d) = app.post("/v1/deliveries", json!({"url": rx.url})).await;
    let id = d["id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(10), || async {
        app.deliveries().get(&id).await["state"] == "dead"
    })
    .await;
    let v = app.deliveries().get(&id).await;
    assert_eq!(v["attempts"], 1, "4xx is not retried");
    assert!(
        v["last_error"].as_str().unwrap().contains("permanent"),
        "{v}"
    );
    let (_, l) = app.get("/v1/deliveries?state=dead").await;
    assert_eq!(l["deliveries"][0]["id"], id.as_str());

    fail.store(false, std::sync::atomic::Ordering::SeqCst);
    let (s, r) = app
        .post(&format!("/v1/deliveries/{id}/retry"), json!({}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{r}");
    eventually(Duration::from_secs(10), || async {
        app.deliveries().get(&id).await["state"] == "succeeded"
    })
    .await;
    assert_eq!(rx.count(), 2);
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
async fn gone_stops_and_retry_after_is_honoured_and_4xx_can_be_retried_by_policy() {
    let app = spawn_app().await;
    let gone = Receiver::start(Duration::ZERO, Arc::new(|_, _| (StatusCode::GONE, vec![]))).await;
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
    let notfound = Receiver::start(
        Duration::ZERO,
        Arc::new(|_, _| (StatusCode::NOT_FOUND, vec![])),
    )
    .await;
    let _stop = app.run_worker_and_scheduler("w");
    let (_, a) = app
        .post(
            "/v1/deliveries",
            json!({"url": gone.url, "policy": "fast4xx"}),
        )
        .await;
    let (_, b) = app.post("/v1/deliveries", json!({"url": busy.url})).await;
    let (_, c) = app
        .post(
            "/v1/deliveries",
            json!({"url": notfound.url, "policy": "fast4xx"}),
        )
        .await;
    let (a, b, c) = (
        a["id"].as_str().unwrap().to_owned(),
        b["id"].as_str().unwrap().to_owned(),
        c["id"].as_str().unwrap().to_owned(),
    );
    eventually(Duration::from_secs(10), || async {
        app.deliveries().get(&a).await["state"] == "dead"
    })
    .await;
    assert_eq!(
        app.deliveries().get(&a).await["attempts"],
        1,
        "410 stops even when 4xx are retried"
    );
    eventually(Duration::from_secs(10), || async {
        app.deliveries().get(&b).await["state"] == "failed_retrying"
    })
    .await;
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
    eventually(Duration::from_secs(10), || async {
        app.deliveries().get(&c).await["state"] == "dead"
    })
    .await;
    assert_eq!(
        app.deliveries().get(&c).await["attempts"],
        3,
        "fast4xx retries 404 until it gives up"
    );

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

#[tokio::test]
async fn idempotency_keys_and_bad_input() {
    let app = spawn_app().await;
    let body = json!({"url": "http://127.0.0.1:9/x", "idempotency_key": "order-42"});
    let (s1, a) = app.post("/v1/deliveries", body.clone()).await;
    let (s2, b) = app.post("/v1/deliveries", body).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(a["id"], b["id"]);
    let before = {
        let mut conn = app.server.conn();
        redis::cmd("DBSIZE").query::<usize>(&mut conn).unwrap()
    };
    for (body, loc) in [
        (json!({"url": "ftp://x/y"}), "body.url"),
        (
            json!({"url": "http://169.254.169.254/latest/meta-data"}),
            "body.url",
        ),
        (json!({"url": "http://[fe80::1]/"}), "body.url"),
        (json!({"url": 5}), "body.url"),
        (json!({}), "body"),
        (json!({"url": "http://a/", "method": "BREW"}), "body.method"),
        (
            json!({"url": "http://a/", "headers": {"webhook-id": "x"}}),
            "body.headers.webhook-id",
        ),
        (
            json!({"url": "http://a/", "headers": {"bad header": "x"}}),
            "body.headers.bad header",
        ),
        (json!({"url": "http://a/", "policy": "nope"}), "body.policy"),
        (
            json!({"url": "http://a/", "idempotency_key": "a b"}),
            "body.idempotency_key",
        ),
        (json!({"url": "http://a/", "extra": true}), "body.extra"),
    ] {
        let (s, e) = app.post("/v1/deliveries", body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {e}");
        assert_eq!(e["where"], loc, "{body}: {e}");
    }
    for q in [
        "state=bogus",
        "limit=0",
        "limit=501",
        "cursor=zzz",
        "what=1",
    ] {
        let (s, e) = app.get(&format!("/v1/deliveries?{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {e}");
    }
    for id in [
        "nope",
        "d99-00000000000000000000000000000000",
        "d1-0123456789abcdef0123456789abcdef",
    ] {
        let (s, _) = app.get(&format!("/v1/deliveries/{id}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{id}");
        let (s, _) = app.delete(&format!("/v1/deliveries/{id}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{id}");
    }
    let after = {
        let mut conn = app.server.conn();
        redis::cmd("DBSIZE").query::<usize>(&mut conn).unwrap()
    };
    assert_eq!(before, after, "bad requests wrote nothing");
}

#[tokio::test]
async fn listing_pages_through_every_delivery() {
    let app = spawn_app().await;
    let mut ids = HashSet::new();
    for i in 0..25 {
        let (_, d) = app
            .post(
                "/v1/deliveries",
                json!({"url": format!("http://127.0.0.{}:9/x", 1 + i % 2)}),
            )
            .await;
        ids.insert(d["id"].as_str().unwrap().to_owned());
    }
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("?limit=10&cursor={c}"),
            None => "?limit=10".into(),
        };
        let (s, page) = app.get(&format!("/v1/deliveries{q}")).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for d in page["deliveries"].as_array().unwrap() {
            assert!(
                seen.insert(d["id"].as_str().unwrap().to_owned()),
                "no duplicates across pages"
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let (_, page) = app
        .get("/v1/deliveries?destination=127.0.0.2:9&limit=100")
        .await;
    assert_eq!(page["deliveries"].as_array().unwrap().len(), 12);
}

#[tokio::test]
async fn two_schedulers_move_each_of_10000_due_timers_once() {
    let app = spawn_app().await;
    let mut conn = app.server.conn();
    let past = chrono::Utc::now().timestamp_millis() - 1000;
    for shard in 0..4u16 {
        let mut pipe = redis::pipe();
        for i in 0..2500 {
            pipe.cmd("ZADD")
                .arg(app.keys.timers(shard))
                .arg(past)
                .arg(format!("probe|{shard}-{i}"))
                .ignore();
        }
        pipe.query::<()>(&mut conn).unwrap();
    }
    let (a, b) = (app.scheduler(), app.scheduler());
    let (x, y) = tokio::join!(a.step("timers"), b.step("timers"));
    assert_eq!(x.unwrap() + y.unwrap(), 10_000);
    let mut payloads = HashSet::new();
    for shard in 0..4u16 {
        let rows: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(app.keys.work_stream(shard))
            .arg("-")
            .arg("+")
            .query(&mut conn)
            .unwrap();
        for (_, fields) in rows {
            let p = fields
                .iter()
                .find(|(k, _)| k == "payload")
                .unwrap()
                .1
                .clone();
            assert!(payloads.insert(p), "a timer fired twice");
        }
        let left: usize = redis::cmd("ZCARD")
            .arg(app.keys.timers(shard))
            .query(&mut conn)
            .unwrap();
        assert_eq!(left, 0);
    }
    assert_eq!(payloads.len(), 10_000);
}

/// A worker process is SIGKILLed in the middle of 2,000 deliveries to a slow
/// receiver; a second worker process finishes the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_worker_loses_nothing() {
    const N: usize = 2000;
    let app = spawn_app().await;
    let rx = Receiver::start(
        Duration::from_millis(20),
        Arc::new(|_, _| (StatusCode::OK, vec![])),
    )
    .await;
    let store = DeliveryStore::new(
        app.redis.clone(),
        app.keys.clone(),
        Duration::from_secs(3600),
    );
    let mut ids = HashSet::new();
    for i in 0..N {
        let (id, _) = store
            .enqueue(&NewDelivery {
                url: rx.url.clone(),
                method: "POST".into(),
                headers: Default::default(),
                body: json!({"n": i}).to_string(),
                policy: "fast".into(),
                idempotency_key: None,
                destination: "127.0.0.1".into(),
                owner: None,
            })
            .await
            .unwrap();
        ids.insert(id);
    }
    // Timers (deferred entries of the busy destination) move in this process.
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(app.scheduler().run(stop.clone()));
    let spawn_worker = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args([
                "worker",
                "--redis-url",
                &app.server.url,
                "--worker-name",
                name,
            ])
            .args([
                "--worker-visibility",
                "1s",
                "--delivery-timeout",
                "800ms",
                "--worker-block",
                "100ms",
                "--delivery-per-destination",
                "32",
            ])
            .args([
                "--retry-policy",
                "fast=schedule:50ms,50ms,50ms",
                "--log-level",
                "warn",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    };
    let mut first = spawn_worker("first");
    let start = Instant::now();
    while rx.count() < N / 4 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "first worker made no progress"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill().unwrap(); // SIGKILL, mid-flight
    first.wait().unwrap();
    let killed_at = rx.count();
    let mut second = spawn_worker("second");
    let mut conn = app.server.conn();
    eventually(Duration::from_secs(90), || {
        // One atomic read per shard: a timer moving into the stream between
        // two separate reads would look like "nothing left".
        let done = (0..16u16).all(|s| {
            let (len, timers): (usize, usize) = redis::pipe()
                .atomic()
                .cmd("XLEN")
                .arg(app.keys.work_stream(s))
                .cmd("ZCARD")
                .arg(app.keys.timers(s))
                .query(&mut conn)
                .unwrap();
            len == 0 && timers == 0
        });
        async move { done }
    })
    .await;
    second.kill().ok();
    second.wait().ok();
    stop.cancel();

    let got = rx.received();
    let mut by_id: HashMap<String, Vec<String>> = HashMap::new();
    for r in &got {
        by_id
            .entry(r.id().to_owned())
            .or_default()
            .push(r.body.clone());
    }
    let delivered: HashSet<String> = by_id.keys().cloned().collect();
    assert_eq!(
        delivered, ids,
        "every delivery arrived, and nothing else did"
    );
    for (id, bodies) in &by_id {
        assert!(
            bodies.iter().all(|b| b == &bodies[0]),
            "duplicates of {id} are the same message"
        );
    }
    for id in &ids {
        let v = store.get(id, true).await.unwrap();
        assert_eq!(
            v.state,
            "succeeded",
            "{id} stays {}: {}",
            v.state,
            serde_json::to_string(&v).unwrap()
        );
    }
    eprintln!(
        "crash test: killed after {killed_at} requests; {} requests for {N} deliveries ({} duplicates)",
        got.len(),
        got.len() - N
    );
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
        app.post("/v1/deliveries", json!({"url": slow.url})).await;
    }
    let start = Instant::now();
    let mut fast_ids = Vec::new();
    for _ in 0..20 {
        let (_, d) = app.post("/v1/deliveries", json!({"url": fast.url})).await;
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
async fn attempts_time_out_and_big_responses_are_cut() {
    let app = TestApp::builder()
        .with_config(|c| c.families.deliveries.delivery_timeout = Duration::from_millis(300))
        .spawn()
        .await;
    let hang = Receiver::start(
        Duration::from_secs(5),
        Arc::new(|_, _| (StatusCode::OK, vec![])),
    )
    .await;
    let _stop = app.run_worker_and_scheduler("w");
    let (_, d) = app
        .post("/v1/deliveries", json!({"url": hang.url, "policy": "fast"}))
        .await;
    let id = d["id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(10), || async {
        app.deliveries().get(&id).await["attempts"].as_u64() >= Some(1)
    })
    .await;
    let v = app.deliveries().get(&id).await;
    let err = v["attempt_log"][0]["error"].as_str().unwrap();
    assert!(err.contains("timeout"), "{err}");
    assert!(v["attempt_log"][0]["latency_ms"].as_u64().unwrap() < 2000);
}

#[tokio::test]
async fn finished_deliveries_expire_after_the_retention_and_metrics_report_the_engine() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let stop = app.run_worker_and_scheduler("w");
    let (_, d) = app.post("/v1/deliveries", json!({"url": rx.url})).await;
    let id = d["id"].as_str().unwrap().to_owned();
    eventually(Duration::from_secs(10), || async {
        app.deliveries().get(&id).await["state"] == "succeeded"
    })
    .await;
    let shard =
        switchyard_shared::families::deliveries::shard_of_id(&id, app.keys.shards()).unwrap();
    let k = app.keys.delivery(shard, &id);
    let mut conn = app.server.conn();
    let ttl: i64 = redis::cmd("PTTL").arg(&k.record).query(&mut conn).unwrap();
    let retention = app
        .config
        .families
        .deliveries
        .delivery_retention
        .as_millis() as i64;
    assert!(
        ttl > 0 && ttl <= retention,
        "finished record expires: {ttl}"
    );
    let ttl: i64 = redis::cmd("PTTL").arg(&k.log).query(&mut conn).unwrap();
    assert!(ttl > 0, "attempt log expires too");
    let len: usize = redis::cmd("XLEN").arg(&k.stream).query(&mut conn).unwrap();
    assert_eq!(len, 0, "acknowledged entries are deleted from the stream");
    stop.cancel();
    let scheduler = app.scheduler();
    scheduler.step("streams.gauges").await.unwrap();
    scheduler.step("deliveries.prune").await.unwrap();
    let text = app.metrics_text().await;
    for m in [
        r#"switchyard_deliveries_total{outcome="succeeded"}"#,
        "switchyard_delivery_attempt_seconds_bucket",
        "switchyard_work_stream_depth",
        "switchyard_work_oldest_pending_seconds",
        "switchyard_deliveries_dead",
        "switchyard_deliveries_enqueued_total",
    ] {
        assert!(text.contains(m), "{m} missing from /metrics");
    }
}

#[tokio::test]
async fn a_script_changes_state_and_queues_its_callback_in_one_call() {
    // The outbox: any script that includes the prelude can create a delivery
    // in the same atomic call as its state change.
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let _stop = app.run_worker_and_scheduler("w");
    let shard = 5;
    let id = switchyard_shared::families::deliveries::new_id(shard);
    let k = app.keys.delivery(shard, &id);
    let state_key = format!("{}:example:state", app.keys.shard_base(shard));
    let script = redis::Script::new(&format!(
        "{}\n{}\nredis.call('SET', KEYS[4], 'approved')\n\
         outbox_delivery(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], 'POST', '{{}}', ARGV[3], 'fast', 'x', now_ms())\n\
         return 1",
        include_str!("../../../lua/platform/prelude.lua"),
        include_str!("../../../lua/platform/outbox.lua"),
    ));
    let mut conn = app.redis.get().await.unwrap();
    let _: i64 = script
        .key(&k.record)
        .key(&k.stream)
        .key(&k.index)
        .key(&state_key)
        .arg(&id)
        .arg(&rx.url)
        .arg(r#"{"approved":true}"#)
        .invoke_async(&mut conn)
        .await
        .unwrap();
    eventually(Duration::from_secs(10), || async { rx.count() == 1 }).await;
    assert_eq!(rx.received()[0].id(), id);
    assert_eq!(rx.received()[0].body, r#"{"approved":true}"#);
}

#[tokio::test]
async fn a_stopping_worker_finishes_what_it_holds() {
    let app = spawn_app().await;
    let rx = Receiver::start(
        Duration::from_millis(500),
        Arc::new(|_, _| (StatusCode::OK, vec![])),
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (_, d) = app.post("/v1/deliveries", json!({"url": rx.url})).await;
        ids.push(d["id"].as_str().unwrap().to_owned());
    }
    let stop = app.run_worker_and_scheduler("w");
    // Wait until all five are in flight, then ask the worker to stop.
    eventually(Duration::from_secs(5), || async {
        let mut n = 0;
        for id in &ids {
            if app.deliveries().get(id).await["state"] == "in_flight" {
                n += 1;
            }
        }
        n == 5
    })
    .await;
    stop.cancel();
    eventually(Duration::from_secs(5), || async {
        let mut ok = true;
        for id in &ids {
            ok &= app.deliveries().get(id).await["state"] == "succeeded";
        }
        ok
    })
    .await;
    assert_eq!(rx.count(), 5);
}

#[tokio::test]
async fn a_delivery_whose_entry_keeps_failing_to_finish_goes_dead() {
    // Simulate attempts that crashed: the entry was claimed by a ghost
    // consumer again and again without an outcome.
    let app = TestApp::builder()
        .with_config(|c| c.families.deliveries.delivery_timeout = Duration::from_millis(100))
        .spawn()
        .await;
    let rx = Receiver::ok().await;
    let (_, d) = app.post("/v1/deliveries", json!({"url": rx.url})).await;
    let id = d["id"].as_str().unwrap().to_owned();
    let shard =
        switchyard_shared::families::deliveries::shard_of_id(&id, app.keys.shards()).unwrap();
    let stream = app.keys.work_stream(shard);
    let mut conn = app.server.conn();
    let _: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("switchyard")
        .arg("0")
        .arg("MKSTREAM")
        .query(&mut conn);
    let read: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("switchyard")
        .arg("ghost")
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query(&mut conn)
        .unwrap();
    assert!(format!("{read:?}").contains(&id));
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(&stream)
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .unwrap();
    let entry = entries[0].0.clone();
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(&stream)
        .arg("switchyard")
        .arg("ghost")
        .arg(0)
        .arg(&entry)
        .arg("RETRYCOUNT")
        .arg(10)
        .query(&mut conn)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await; // past the 200 ms visibility
    let w = Arc::new(app.production_worker({
        let mut o = worker_opts("w");
        o.worker_visibility = Duration::from_millis(200);
        o
    }));
    assert_eq!(w.reclaim().await.unwrap(), 1);
    let v = app.deliveries().get(&id).await;
    assert_eq!(v["state"], "dead", "{v}");
    assert!(
        v["last_error"].as_str().unwrap().contains("dead-lettered"),
        "{v}"
    );
    assert_eq!(rx.count(), 0);
    let dead: Vec<redis::Value> = redis::cmd("XRANGE")
        .arg(app.keys.dead_letters(shard))
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .unwrap();
    assert_eq!(dead.len(), 1);
}

#[tokio::test]
async fn a_stale_attempt_cannot_revive_or_fork_a_delivery() {
    let app = spawn_app().await;
    let store = DeliveryStore::new(
        app.redis.clone(),
        app.keys.clone(),
        Duration::from_secs(3600),
    );
    let (id, _) = store
        .enqueue(&NewDelivery {
            url: "http://127.0.0.1:9/x".into(),
            method: "POST".into(),
            headers: Default::default(),
            body: "{}".into(),
            policy: "fast".into(),
            idempotency_key: None,
            destination: "127.0.0.1:9".into(),
            owner: None,
        })
        .await
        .unwrap();
    let switchyard_shared::families::deliveries::Begin::Go(a) =
        store.begin(&id, "1-1").await.unwrap()
    else {
        panic!("skip")
    };
    // While the attempt runs, the delivery is cancelled and then replayed.
    store.cancel(&id).await.unwrap();
    store.retry(&id).await.unwrap();
    // The old attempt finishes: its lease is stale, nothing changes.
    let finish = |outcome: &'static str, lease: i64, entry: &'static str| {
        switchyard_shared::families::deliveries::Finish {
            id: &id,
            lease,
            outcome,
            status: Some(500),
            error: None,
            latency_ms: 1,
            next_at_ms: chrono::Utc::now().timestamp_millis() + 60_000,
            started_ms: 0,
            entry_id: entry,
            group: "switchyard",
        }
    };
    assert_eq!(
        store
            .finish(&finish("retry", a.lease, "1-1"))
            .await
            .unwrap(),
        None,
        "stale"
    );
    let v = store.get(&id, true).await.unwrap();
    assert_eq!(v.state, "pending", "the replay stands");
    assert_eq!(v.attempts, 0);
    // The replay's entry begins; a second entry for the same round is skipped.
    let switchyard_shared::families::deliveries::Begin::Go(b) =
        store.begin(&id, "2-1").await.unwrap()
    else {
        panic!("skip")
    };
    assert!(b.lease > a.lease);
    assert!(
        matches!(store.begin(&id, "3-1").await.unwrap(), switchyard_shared::families::deliveries::Begin::Skip(s) if s == "duplicate")
    );
    // Cancelled while in flight, then the destination-busy path: stays cancelled.
    store.cancel(&id).await.unwrap();
    let shard =
        switchyard_shared::families::deliveries::shard_of_id(&id, app.keys.shards()).unwrap();
    let k = app.keys.delivery(shard, &id);
    let mut conn = app.redis.get().await.unwrap();
    let _: i64 = switchyard_shared::platform::scripts::WORK_DEFER
        .key(&k.stream)
        .key(&k.timers)
        .key(&k.record)
        .arg("switchyard")
        .arg("2-1")
        .arg(switchyard_shared::families::deliveries::timer_member(&id))
        .arg(10)
        .arg(b.lease)
        .invoke_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(store.get(&id, false).await.unwrap().state, "cancelled");
    assert_eq!(
        store
            .finish(&finish("succeeded", b.lease, "2-1"))
            .await
            .unwrap()
            .as_deref(),
        Some("cancelled")
    );
}
