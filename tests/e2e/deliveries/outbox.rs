//! The outbox seen from a script, retention and metrics.
use serde_json::json;

use crate::support::Receiver;
use crate::support::{TestApp, spawn_app};

/// One delivery to a receiver that accepts it, delivered; returns its id.
async fn a_delivered_delivery(app: &TestApp, rx: &Receiver) -> String {
    let id = app.deliveries().create(json!({"url": rx.url})).await;
    app.drain().await;
    assert_eq!(app.deliveries().get(&id).await["state"], "succeeded");
    id
}

#[tokio::test]
async fn finished_deliveries_expire_after_the_retention() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let id = a_delivered_delivery(&app, &rx).await;
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
}

#[tokio::test]
async fn metrics_report_the_delivery_engine() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    a_delivered_delivery(&app, &rx).await;
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
    let mut conn = app.redis.conn();
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
    app.drain().await;
    assert_eq!(rx.count(), 1);
    assert_eq!(rx.received()[0].id(), id);
    assert_eq!(rx.received()[0].body, r#"{"approved":true}"#);
}
