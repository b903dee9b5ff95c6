//! Deliveries survive crashes, shutdowns and racing schedulers: nothing lost, nothing forked.
use std::collections::{HashMap, HashSet};

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use switchyard_shared::families::deliveries::{DeliveryStore, NewDelivery};

use crate::support::Receiver;
use crate::support::{TestApp, WorkerProcess, eventually, spawn_app, worker_opts};

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
        WorkerProcess::spawn(
            &app,
            name,
            &[
                "--worker-block",
                "100ms",
                "--delivery-per-destination",
                "32",
            ],
        )
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
    first.kill(); // SIGKILL, mid-flight
    let killed_at = rx.count();
    let mut second = spawn_worker("second");
    let mut conn = app.server.conn();
    eventually(Duration::from_secs(90), || {
        // One atomic read per shard: a timer moving into the stream between
        // two separate reads would look like "nothing left".
        let done = (0..app.keys.shards()).all(|s| {
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
    second.kill();
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
        let (_, d) = app.deliveries().post(json!({"url": rx.url})).await;
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
    let (_, d) = app.deliveries().post(json!({"url": rx.url})).await;
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
            tell_owner_success: false,
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
    let mut conn = app.redis.conn();
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
