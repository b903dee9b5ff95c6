//! A transaction's life after the pipeline: finished transactions and
//! their staged items expire after `--transaction-retention` (every index
//! shrinks with them, the consolidated store stays), a step that keeps
//! failing ends in 11 ImportError after its retries, tenants from a file,
//! and statuses and progress seen by polling only move forward.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::api::transactions::{SEED_TOKEN, spawn_with_tenants};
use crate::support::{TestApp, worker_opts};
use switchyard_shared::families::transactions::store::{self, status_rank};

fn collaborator(id: &str) -> Value {
    json!({"name": format!("C{id}"), "identification": id, "genre": "F", "active": true, "birthDate": "1990-01-01"})
}

fn pttl(app: &TestApp, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query(&mut app.server.conn())
        .unwrap()
}

fn card(app: &TestApp, cmd: &str, key: &str) -> usize {
    redis::cmd(cmd)
        .arg(key)
        .query(&mut app.server.conn())
        .unwrap()
}

#[tokio::test]
async fn finished_transactions_expire_with_their_staged_items_and_leave_every_index() {
    let retention = Duration::from_millis(300);
    let app = TestApp::builder()
        .with_config(|c| {
            c.families.transactions.transactions_tenants = vec![format!("{SEED_TOKEN}=8")];
            c.families.transactions.transaction_retention = retention;
        })
        .spawn()
        .await;
    let tx = app.transactions(SEED_TOKEN);
    // One reaches Done, one is Invalidated, one stays open.
    let done = tx.create().await;
    tx.post("collaborators", &done, json!([collaborator("1")]))
        .await;
    let invalid = tx.create().await;
    tx.post("results", &invalid, json!([{"collaboratorIdentification": "404", "indicatorId": "i", "result": 1, "date": "2000-01-01"}])).await;
    let open = tx.create().await;
    tx.post("collaborators", &open, json!([collaborator("2")]))
        .await;
    tx.commit(&done, "").await;
    tx.commit(&invalid, "").await;
    app.drain().await;
    assert_eq!(tx.get(&done).await["data"]["status"], 7);
    assert_eq!(tx.get(&invalid).await["data"]["status"], 8);

    let t = app.keys.tenant("8");
    for id in [&done, &invalid] {
        for key in t.tx(id).own() {
            let ttl = pttl(&app, key);
            // -2: a key the transaction never wrote (no errors, say).
            assert!(
                ttl == -2 || (ttl > 0 && ttl <= retention.as_millis() as i64),
                "{key}: {ttl}"
            );
        }
        assert!(pttl(&app, &t.tx(id).record) > 0);
        assert!(pttl(&app, &t.tx(id).staged) > 0);
    }
    assert_eq!(pttl(&app, &t.tx(&open).record), -1, "an open one stays");
    assert_eq!(pttl(&app, &t.store[0]), -1, "the store does not expire");
    assert_eq!(card(&app, "ZCARD", &t.txs), 3);
    assert_eq!(card(&app, "SCARD", &t.open), 1);
    assert_eq!(card(&app, "LLEN", &t.queue), 0);

    tokio::time::sleep(retention + Duration::from_millis(50)).await;
    for id in [&done, &invalid] {
        for key in t.tx(id).own() {
            assert_eq!(pttl(&app, key), -2, "{key} is gone");
        }
        let (s, _) = tx
            .call(Method::GET, &format!("/v1/transactions/{id}"), None)
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    // The scheduler drops them from the tenant's list.
    let scheduler = app.scheduler();
    assert_eq!(scheduler.step("transactions.prune").await.unwrap(), 2);
    assert_eq!(card(&app, "ZCARD", &t.txs), 1);
    assert_eq!(scheduler.step("transactions.prune").await.unwrap(), 0);
    let (_, page) = tx.call(Method::GET, "/v1/transactions", None).await;
    let page: Value = serde_json::from_str(&page).unwrap();
    let listed: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [open.as_str()]);
    // What they consolidated stays.
    assert_eq!(tx.record("collaborators", "1").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_step_that_keeps_failing_ends_in_import_error_and_the_queue_moves_on() {
    // A short visibility (below, so the retries — reclaims — come at once)
    // must exceed the delivery timeout.
    let app = TestApp::builder()
        .with_config(|c| {
            c.families.transactions.transactions_tenants = vec![format!("{SEED_TOKEN}=8")];
            c.families.deliveries.delivery_timeout = Duration::from_millis(20);
        })
        .spawn()
        .await;
    let tx = app.transactions(SEED_TOKEN);
    let broken = tx.create().await;
    tx.post("collaborators", &broken, json!([collaborator("1")]))
        .await;
    let next = tx.create().await;
    tx.post("collaborators", &next, json!([collaborator("2")]))
        .await;
    // The staged batch becomes unreadable: every import attempt fails.
    let t = app.keys.tenant("8");
    let _: () = redis::cmd("LSET")
        .arg(&t.tx(&broken).chunks)
        .arg(0)
        .arg("garbage")
        .query(&mut app.server.conn())
        .unwrap();
    tx.commit(&broken, "").await;
    tx.commit(&next, "").await;
    assert_eq!(
        tx.get(&next).await["data"]["status"],
        2,
        "it waits its turn"
    );

    // worker_opts: at most 3 deliveries.
    let mut opts = worker_opts("retrier");
    opts.worker_visibility = Duration::from_millis(50);
    opts.worker_block = Duration::from_millis(10);
    let worker = Arc::new(app.production_worker(opts));
    worker.ensure_groups().await.unwrap();
    let mut conn = app.redis.dedicated(Duration::from_secs(5)).await.unwrap();
    let start = std::time::Instant::now();
    while tx.get(&next).await["data"]["status"] != 7 {
        assert!(start.elapsed() < Duration::from_secs(5), "not done in time");
        worker.step(&mut conn).await.unwrap();
        worker.reclaim().await.unwrap();
    }
    let v = tx.get(&broken).await;
    assert_eq!(v["data"]["status"], 11, "{v}");
    assert_eq!(v["data"]["descStatus"], "ImportError");
    assert_eq!(v["data"]["counts"]["consolidated"], 0);
    let failure = v["data"]["failure"].as_str().unwrap();
    assert_eq!(failure, "delivered 4 times", "after its retries: {v}");
    // The step's entry is in the dead letters; the transaction expires.
    let dead: Vec<redis::Value> = redis::cmd("XRANGE")
        .arg(app.keys.dead_letters(t.shard))
        .arg("-")
        .arg("+")
        .query(&mut app.server.conn())
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        format!("{dead:?}").contains("transactions.step"),
        "{dead:?}"
    );
    assert!(pttl(&app, &t.tx(&broken).record) > 0);
    assert_eq!(card(&app, "LLEN", &t.queue), 0);
    assert_eq!(
        tx.record("collaborators", "1").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(tx.record("collaborators", "2").await.0, StatusCode::OK);
}

#[tokio::test]
async fn tenants_come_from_a_file_too() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants");
    std::fs::write(
        &file,
        "# token=contractor\n\n  filetoken = 12  \nsecond=13\n",
    )
    .unwrap();
    let app = TestApp::builder()
        .with_config(|c| {
            c.families.transactions.transactions_tenants = vec![format!("{SEED_TOKEN}=8")];
            c.families.transactions.transactions_tenant_file = Some(file.clone());
        })
        .spawn()
        .await;
    for (token, contractor) in [("filetoken", "12"), ("second", "13"), (SEED_TOKEN, "8")] {
        let id = app.transactions(token).create().await;
        assert!(id.starts_with(contractor), "{token}: {id}");
        assert_eq!(
            pttl(&app, &app.keys.tenant(contractor).tx(&id).record),
            -1,
            "stored under contractor {contractor}"
        );
    }
    let (s, _) = app
        .transactions("# token")
        .call(Method::POST, "/v1/transactions/", None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn statuses_and_progress_seen_by_polling_only_move_forward() {
    let app = spawn_with_tenants().await;
    let _w = app.run_worker_and_scheduler("w");
    let tx = app.transactions(SEED_TOKEN);
    let id = tx.create().await;
    for b in 0..4 {
        let items: Vec<Value> = (0..500)
            .map(|i| collaborator(&format!("{b}-{i}")))
            .collect();
        tx.post("collaborators", &id, Value::Array(items)).await;
    }
    tx.commit(&id, "").await;
    let order = ["import", "validate", "consolidate", "done"];
    let (mut last_rank, mut last_stage, mut last_done) = (0, 0, 0);
    let mut seen = vec![];
    let start = std::time::Instant::now();
    loop {
        let v = tx.get(&id).await;
        let status = v["data"]["status"].as_u64().unwrap() as u8;
        let rank = status_rank(status);
        assert!(rank >= last_rank, "status went back to {status}: {v}");
        let p = &v["data"]["progress"];
        let stage = order
            .iter()
            .position(|s| *s == p["stage"].as_str().unwrap())
            .unwrap();
        let done = p["done"].as_u64().unwrap();
        assert!(stage >= last_stage, "stage went back: {v}");
        if stage == last_stage {
            assert!(done >= last_done, "progress went back: {v}");
        }
        assert!(done <= p["total"].as_u64().unwrap() || stage == 3, "{v}");
        (last_rank, last_stage, last_done) = (rank, stage, done);
        if seen.last() != Some(&status) {
            seen.push(status);
        }
        if status == 7 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{v}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(seen.last(), Some(&7));
}

/// A listing filtered by status examines a bounded number of index
/// entries per call; a match older than that budget is still reached by
/// paging on (a page may come back short, even empty, with a cursor).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_filtered_listing_pages_past_its_budget_to_the_oldest_match() {
    let app = TestApp::builder()
        .with_config(|c| {
            let t = &mut c.families.transactions;
            t.transactions_tenants = vec![format!("{SEED_TOKEN}=8")];
            t.transactions_max_open = 5000;
        })
        .spawn()
        .await;
    let app = Arc::new(app);
    let tx = app.transactions(SEED_TOKEN);
    let oldest = tx.create().await;
    tx.post("collaborators", &oldest, json!([collaborator("1")]))
        .await;
    assert_eq!(tx.commit(&oldest, "").await.0, StatusCode::OK);
    app.settle().await;
    assert_eq!(
        tx.get(&oldest).await["data"]["status"],
        7,
        "the oldest is Done"
    );
    // More open transactions after it than one listing examines.
    let newer = store::LIST_BUDGET + 50;
    let mut creates = tokio::task::JoinSet::new();
    for c in 0..16 {
        let app = app.clone();
        creates.spawn(async move {
            let tx = app.transactions(SEED_TOKEN);
            for _ in (c..newer).step_by(16) {
                tx.create().await;
            }
        });
    }
    creates.join_all().await;
    let mut found = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let (s, body) = tx
            .call(
                Method::GET,
                &format!("/v1/transactions?status=7&limit=10{cursor}"),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        for t in page["data"].as_array().unwrap() {
            found.push(t["_id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(found, vec![oldest]);
}
