//! Consumers left by killed workers are removed by the scheduler
//! (`streams.consumers`) once idle past `--consumer-idle-timeout`, unless
//! they hold pending entries (issue 9, D8).

use std::time::Duration;

use switchyard_scheduler::Scheduler;
use switchyard_shared::config::SchedulerConfig;
use switchyard_shared::platform::config::{RedisOpts, SchedulerOpts};
use switchyard_shared::platform::work::WORK_GROUP;

use crate::support::{TestApp, spawn_app};

/// The consumer idle bound of these tests.
const IDLE: Duration = Duration::from_millis(200);

/// A scheduler whose consumers idle past [`IDLE`] are removable, 16 per step.
fn scheduler(app: &TestApp) -> Scheduler {
    let config = SchedulerConfig {
        redis: RedisOpts::default(),
        log: Default::default(),
        metrics: Default::default(),
        scheduler: SchedulerOpts {
            sweep_batch: 16,
            consumer_idle_timeout: IDLE,
            ..SchedulerOpts::default()
        },
        outbox: app.config.outbox.clone(),
        families: app.config.families.clone(),
    };
    Scheduler::new(app.redis.clone(), app.keys.clone(), config).unwrap()
}

fn add_entry(app: &TestApp, shard: u16) -> String {
    redis::cmd("XADD")
        .arg(app.keys.work_stream(shard))
        .arg("*")
        .arg("kind")
        .arg("x")
        .query(&mut app.server.conn())
        .unwrap()
}

/// Read the stream of `shard` as consumer `name` (what a worker does; it
/// creates the consumer): one new entry is taken and left pending.
fn take(app: &TestApp, shard: u16, name: &str) -> String {
    let id = add_entry(app, shard);
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(WORK_GROUP)
        .arg(name)
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(app.keys.work_stream(shard))
        .arg(">")
        .query(&mut app.server.conn())
        .unwrap();
    id
}

/// A worker called `name` took an entry of `shard` and acknowledged it
/// (then was killed): its consumer stays with nothing pending.
fn take_and_ack(app: &TestApp, shard: u16, name: &str) {
    let id = take(app, shard, name);
    let _: i64 = redis::cmd("XACK")
        .arg(app.keys.work_stream(shard))
        .arg(WORK_GROUP)
        .arg(id)
        .query(&mut app.server.conn())
        .unwrap();
}

/// The consumer names of `shard`'s group.
fn consumers(app: &TestApp, shard: u16) -> Vec<String> {
    let infos: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(app.keys.work_stream(shard))
        .arg(WORK_GROUP)
        .query(&mut app.server.conn())
        .unwrap();
    let mut names: Vec<String> = infos
        .iter()
        .map(|i| redis::from_redis_value(i["name"].clone()).unwrap())
        .collect();
    names.sort();
    names
}

async fn groups(app: &TestApp) {
    app.bare_worker("setup").ensure_groups().await.unwrap();
}

#[tokio::test]
async fn idle_consumers_without_pending_entries_are_removed() {
    let app = spawn_app().await;
    groups(&app).await;
    for name in ["dead-1", "dead-2"] {
        take_and_ack(&app, 3, name);
    }
    take_and_ack(&app, 7, "dead-3");
    assert_eq!(consumers(&app, 3), ["dead-1", "dead-2"]);
    tokio::time::sleep(IDLE * 2).await;
    let removed = scheduler(&app).step("streams.consumers").await.unwrap();
    assert_eq!(removed, 3);
    assert!(consumers(&app, 3).is_empty());
    assert!(consumers(&app, 7).is_empty());
}

#[tokio::test]
async fn a_consumer_with_pending_entries_stays() {
    let app = spawn_app().await;
    groups(&app).await;
    take(&app, 3, "holder"); // killed holding an entry: 1 pending
    take_and_ack(&app, 3, "dead");
    tokio::time::sleep(IDLE * 2).await;
    assert_eq!(scheduler(&app).step("streams.consumers").await.unwrap(), 1);
    assert_eq!(consumers(&app, 3), ["holder"]);
}

#[tokio::test]
async fn a_recently_active_consumer_stays() {
    let app = spawn_app().await;
    groups(&app).await;
    take_and_ack(&app, 3, "old");
    tokio::time::sleep(IDLE * 2).await;
    // Built first, so "live" is as fresh as can be when the step runs.
    let s = scheduler(&app);
    take_and_ack(&app, 3, "live");
    assert_eq!(s.step("streams.consumers").await.unwrap(), 1);
    assert_eq!(consumers(&app, 3), ["live"]);
}

#[tokio::test]
async fn removal_is_bounded_per_step() {
    let app = spawn_app().await;
    groups(&app).await;
    for i in 0..20 {
        take_and_ack(&app, 5, &format!("dead-{i:02}"));
    }
    tokio::time::sleep(IDLE * 2).await;
    let s = scheduler(&app);
    assert_eq!(s.step("streams.consumers").await.unwrap(), 16);
    assert_eq!(consumers(&app, 5).len(), 4);
    assert_eq!(s.step("streams.consumers").await.unwrap(), 4);
    assert!(consumers(&app, 5).is_empty());
}

/// A stopping worker leaves the groups where its name holds nothing, and
/// keeps the consumer where entries are pending under its name (another
/// live worker with the same name must not lose them).
#[tokio::test]
async fn a_stopping_worker_leaves_only_where_its_name_holds_nothing() {
    let app = spawn_app().await;
    groups(&app).await;
    take_and_ack(&app, 1, "same");
    take(&app, 2, "same"); // pending: as if a twin worker held it
    let worker = std::sync::Arc::new(app.bare_worker("same"));
    let stop = tokio_util::sync::CancellationToken::new();
    stop.cancel();
    worker.run(stop).await.unwrap();
    assert!(consumers(&app, 1).is_empty(), "nothing pending: left");
    assert_eq!(consumers(&app, 2), ["same"], "pending entries keep it");
}
