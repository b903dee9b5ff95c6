//! Concurrency and crashes: many clients at once, and a worker process
//! SIGKILLed mid-consolidate. Counts must come out exact: nothing lost,
//! nothing counted twice; statuses seen by polling only move forward.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::api::transactions::{SEED_TOKEN, spawn_with_tenants};

use crate::support::{WorkerProcess, worker_opts};

fn batch(client: usize, batch: usize, size: usize) -> Value {
    Value::Array(
        (0..size)
            .map(|i| {
                json!({"name": "n", "identification": format!("{client}-{batch}-{i}"),
                       "genre": "F", "active": true, "birthDate": "1990-01-01"})
            })
            .collect(),
    )
}

/// How long a transaction may take to finish before the test calls it
/// stuck: a debug build on a loaded 2-core machine took 25 s for the
/// 100,000 items.
const LIVENESS: Duration = Duration::from_secs(120);

/// 20 clients × 10 batches of 500 (100,000 items), each
/// client its own transaction, with two workers running. The bounds on
/// waiting ([`LIVENESS`]) only catch a pipeline that stops; how fast it
/// goes is `bench transactions`' business.
#[tokio::test]
async fn concurrent_clients_all_reach_done_with_exact_counts() {
    const CLIENTS: usize = 20;
    const BATCHES: usize = 10;
    const SIZE: usize = 500;
    let app = spawn_with_tenants().await;
    let _w1 = app.run_worker_and_scheduler("w1");
    let _w2 = app.run_worker_with(worker_opts("w2"));
    let runs = (0..CLIENTS).map(|c| {
        let app = &app;
        async move {
            let tx = app.transactions(SEED_TOKEN);
            let id = tx.create().await;
            for b in 0..BATCHES {
                tx.post("collaborators", &id, batch(c, b, SIZE)).await;
            }
            assert_eq!(tx.commit(&id, "").await.0, StatusCode::OK);
            let v = tx.wait_final(&id, LIVENESS).await;
            assert_eq!(v["data"]["status"], 7, "{v}");
            assert_eq!(v["data"]["counts"]["consolidated"], (BATCHES * SIZE) as u64);
        }
    });
    futures::future::join_all(runs).await;
    let mut conn = app.server.conn();
    let keys = app.keys.tenant("8");
    let stored: usize = redis::cmd("HLEN")
        .arg(&keys.store[0])
        .query(&mut conn)
        .unwrap();
    assert_eq!(stored, CLIENTS * BATCHES * SIZE);
}

/// A worker process is SIGKILLed while a big transaction consolidates;
/// another worker reclaims its entry and resumes from the checkpoint.
#[tokio::test]
async fn a_worker_killed_mid_consolidate_loses_and_doubles_nothing() {
    // A short visibility, so the rescuer reclaims the victim's entry at once
    // (it must exceed the delivery timeout).
    let app = crate::support::TestApp::builder()
        .with_config(|c| {
            c.families.transactions.transactions_tenants = vec![format!("{SEED_TOKEN}=8")];
            c.families.deliveries.delivery_timeout = Duration::from_millis(200);
        })
        .spawn()
        .await;
    let tx = app.transactions(SEED_TOKEN);
    let id = tx.create().await;
    const BATCHES: usize = 20;
    for b in 0..BATCHES {
        tx.post("collaborators", &id, batch(0, b, 500)).await;
    }
    let mut worker = WorkerProcess::spawn(&app, "victim", &[]);
    tx.commit(&id, "").await;
    // Kill it once consolidation is under way.
    let start = std::time::Instant::now();
    loop {
        let v = tx.get(&id).await;
        let status = v["data"]["status"].as_u64().unwrap();
        if status >= 6 {
            break;
        }
        assert!(start.elapsed() < LIVENESS, "{v}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    worker.kill();
    let before = tx.get(&id).await;
    // Killed mid-consolidate: some of the store written, not all.
    assert_eq!(before["data"]["status"], 6, "{before}");
    assert!(before["data"]["counts"]["consolidated"].as_u64().unwrap() < (BATCHES * 500) as u64);
    let mut opts = worker_opts("rescuer");
    opts.worker_visibility = Duration::from_millis(300);
    let _rescuer = app.run_worker_with(opts);
    let v = tx.wait_final(&id, LIVENESS).await;
    assert_eq!(v["data"]["status"], 7, "{v} (before the rescue: {before})");
    assert_eq!(v["data"]["counts"]["consolidated"], (BATCHES * 500) as u64);
    assert_eq!(v["data"]["counts"]["valid"], (BATCHES * 500) as u64);
    let mut conn = app.server.conn();
    let stored: usize = redis::cmd("HLEN")
        .arg(&app.keys.tenant("8").store[0])
        .query(&mut conn)
        .unwrap();
    assert_eq!(stored, BATCHES * 500);
}
