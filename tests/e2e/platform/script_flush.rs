//! `SCRIPT FLUSH` on every node while gate test-and-sets and workflow
//! proceeds are under load: every call still succeeds, because a script
//! call that meets `NOSCRIPT` reloads the script (on a cluster, on every
//! node) and retries. Runs on a single server and on the test cluster.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::worker_opts;
use crate::support::{TestApp, eventually};
use crate::workflows::Flow;

/// Concurrence branches of the workflow, each proceeded under load.
const BRANCHES: usize = 24;
/// Gate clients, each looping over test-and-set and release.
const GATE_CLIENTS: usize = 8;
/// Test-and-set rounds per gate client.
const GATE_ROUNDS: usize = 25;

/// Flush every node's script cache every few milliseconds until `stop`;
/// returns how many flushes were done.
async fn flush_until(urls: Vec<String>, stop: Arc<AtomicBool>) -> usize {
    let mut conns = Vec::new();
    for url in &urls {
        let client = redis::Client::open(url.as_str()).unwrap();
        conns.push(client.get_multiplexed_async_connection().await.unwrap());
    }
    let mut flushes = 0;
    let mut every = tokio::time::interval(Duration::from_millis(3));
    while !stop.load(Ordering::SeqCst) {
        every.tick().await;
        for conn in &mut conns {
            let () = redis::cmd("SCRIPT")
                .arg("FLUSH")
                .query_async(conn)
                .await
                .unwrap();
            flushes += 1;
        }
    }
    flushes
}

/// `rounds` test-and-sets of one gate by one client, each grant released
/// at once. Asserts every answer is a 200; returns how many were granted.
async fn gate_client(app: &TestApp, client: usize, rounds: usize) -> usize {
    let service = format!("svc{}", client % 4);
    let mut granted = 0;
    for round in 0..rounds {
        let ticket = format!("c{client}-r{round}");
        let (s, b) = app
            .gates()
            .test_and_set(json!({"services": {&service: ["prod"]}, "ticket": ticket}))
            .await;
        assert_eq!(s, StatusCode::OK, "test-and-set {ticket}: {b}");
        if b["status"] == "ok" {
            granted += 1;
            let (s, b) = app.delete(&format!("/api/tickets/{ticket}")).await;
            assert_eq!(s, StatusCode::OK, "release {ticket}: {b}");
        } else {
            assert_eq!(b["status"], "denied", "{b}");
        }
    }
    granted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn script_flush_on_every_node_under_load_fails_no_call() {
    let f = Flow::holding().await;
    let app = &f.app;
    for s in 0..4 {
        app.gates()
            .create(&format!("svc{s}"), "flush", &["prod"])
            .await;
    }
    let branches: String = (0..BRANCHES).map(|i| format!("    p{i:02}\n")).collect();
    let id = f
        .launch(
            format!("define\n  concurrence merge_type: mix\n{branches}  after\n"),
            json!({}),
        )
        .await;
    // Every branch's callback is held; on a loaded machine an attempt may
    // time out and come back on its retry, so run until all are in.
    eventually(Duration::from_secs(30), || async {
        f.run().await;
        f.p.held().len() == BRANCHES
    })
    .await;
    let held = f.p.held();

    // Workers run scripts too (the join, the dispatch of `after`).
    let _roles = app.run_worker_with(worker_opts("flush"));
    let stop = Arc::new(AtomicBool::new(false));
    let urls: Vec<String> = app.server.url.split(',').map(str::to_owned).collect();
    let flusher = tokio::spawn(flush_until(urls, stop.clone()));

    let proceeded = AtomicUsize::new(0);
    let wf = app.workflows();
    let proceeds = futures::future::join_all(held.iter().enumerate().map(|(n, cb)| {
        let (wf, proceeded) = (&wf, &proceeded);
        async move {
            let (s, b) = wf
                .proceed_at(&cb.proceed_url, Some(json!({ format!("f{n}"): n })))
                .await;
            assert_eq!(s, StatusCode::CREATED, "proceed {}: {b}", cb.participant);
            proceeded.fetch_add(1, Ordering::SeqCst);
        }
    }));
    let gates = futures::future::join_all(
        (0..GATE_CLIENTS).map(|client| gate_client(app, client, GATE_ROUNDS)),
    );
    let ((), granted) = tokio::join!(async { drop(proceeds.await) }, gates);
    assert_eq!(proceeded.load(Ordering::SeqCst), BRANCHES);
    assert!(
        granted.iter().sum::<usize>() >= 4,
        "every gate granted at least once: {granted:?}"
    );

    // The worker's part: the join fires once, under flushes too.
    eventually(Duration::from_secs(20), || async {
        !f.p.of("after").is_empty()
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let flushes = flusher.await.unwrap();
    assert!(flushes > 0, "the script caches were flushed");

    let after = f.p.last("after");
    let (s, b) = wf.proceed_at(&after.proceed_url, Some(json!({}))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    eventually(Duration::from_secs(20), || async {
        wf.status(&id).await == "completed"
    })
    .await;
    let history = wf.history(&id).await;
    let count = |t: &str| history.iter().filter(|e| e["type"] == t).count();
    assert_eq!(count("proceeded"), BRANCHES + 1);
    assert_eq!(count("completed"), 1);

    // No work entry failed for want of a script.
    let mut conn = app.server.conn();
    for shard in 0..app.keys.shards() {
        let dead: usize = redis::cmd("XLEN")
            .arg(app.keys.dead_letters(shard))
            .query(&mut conn)
            .unwrap();
        assert_eq!(dead, 0, "dead letters on shard {shard}");
    }
}
