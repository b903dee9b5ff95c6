//! `--redis-wait-replicas`: each script call is followed by `WAIT` on the
//! same server; one that comes back short (here: a single server has no
//! replica) does not fail the call, and that server — every slot of it —
//! is not waited on again until `ROLE` shows replicas (asked once a
//! second): a `WAIT` holds the shared connection, so one per slot would
//! stall it. The failover test (`tests/e2e/cluster/failover.rs`) runs
//! with it on a cluster with replicas.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;
use crate::support::redis::cluster_mode;

/// `calls=N` of `cmdstat_wait` in `INFO commandstats`.
async fn waits(app: &TestApp) -> u64 {
    let mut conn = app.redis.conn();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_wait:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn a_short_wait_answers_the_call_and_backs_off_on_that_server() {
    if cluster_mode() {
        // INFO would reach one node of several; the cluster runs the
        // failover test with waits instead.
        return;
    }
    let app = TestApp::builder().with_wait_replicas(1).spawn().await;
    assert_eq!(waits(&app).await, 0);
    let started = Instant::now();
    let (s, b) = app
        .post(
            "/api/services/alpha",
            json!({"group": "g", "environments": ["live"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // No replica: the WAIT ran out its timeout (100 ms) and the call was
    // still answered as done.
    assert!(started.elapsed() >= Duration::from_millis(100));
    let waited = waits(&app).await;
    assert!(waited >= 1);
    // Neither the same gate's slot nor any other (deliveries spread over
    // every shard) is waited on again within the second.
    for i in 0..5 {
        let (s, b) = app
            .put("/api/services", json!({"services": {"alpha": ["live"]}}))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, b) = app
            .deliveries()
            .post(json!({"url": format!("http://127.0.0.1:9/{i}")}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    assert_eq!(waits(&app).await, waited);
}
