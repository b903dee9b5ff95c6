//! A deployment without a running scheduler says so: `/readyz` (still 200)
//! reports `"scheduler": "missing"` and the gauge
//! `switchyard_scheduler_seen_seconds_ago` is +Inf; once a scheduler has
//! beaten, both say it is there (issue 9, D16).

use reqwest::StatusCode;
use switchyard_shared::platform::heartbeat;

use crate::support::spawn_app;

#[tokio::test]
async fn readyz_says_the_scheduler_is_missing_until_one_beats() {
    let app = spawn_app().await;
    let (s, b) = app.get("/readyz").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], "ok", "{b}");
    assert_eq!(b["scheduler"], "missing", "{b}");

    app.scheduler().step("scheduler.heartbeat").await.unwrap();
    let (s, b) = app.get("/readyz").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["scheduler"], "ok", "{b}");
}

#[tokio::test]
async fn the_heartbeat_has_a_hash_tag_and_expires() {
    let app = spawn_app().await;
    app.scheduler().step("scheduler.heartbeat").await.unwrap();
    let key = app.keys.scheduler_heartbeat();
    assert!(key.starts_with(&app.keys.shard_base(0)), "{key}");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query(&mut app.server.conn())
        .unwrap();
    assert!(ttl > 0, "the heartbeat expires: {ttl}");
    let seen = heartbeat::scheduler_seen(&app.redis, &app.keys)
        .await
        .unwrap()
        .expect("seen");
    assert!(seen.as_secs() < 5, "{seen:?}");
    // Gone (the scheduler stopped and its TTL passed): missing again.
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query(&mut app.server.conn())
        .unwrap();
    let (_, b) = app.get("/readyz").await;
    assert_eq!(b["scheduler"], "missing", "{b}");
}
