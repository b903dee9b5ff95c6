//! The stream worker: dispatch by kind, ack after the outcome, dead letters,
//! reclaim of entries left by a dead consumer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use switchyard_shared::WorkKind;
use switchyard_worker::{Handler, Outcome, WorkEntry};

use crate::support::{eventually, spawn_app, worker_opts};

struct Counting {
    seen: AtomicUsize,
    outcome: Outcome,
}

impl Handler for Counting {
    fn handle<'a>(&'a self, _e: &'a WorkEntry) -> BoxFuture<'a, Outcome> {
        self.seen.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { self.outcome.clone() })
    }
}

/// A kind the test workers handle (they have no production handlers).
const DELIVERY: &str = "delivery";

fn xadd(conn: &mut redis::Connection, stream: &str, kind: &str) -> String {
    redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("kind")
        .arg(kind)
        .arg("payload")
        .arg("{}")
        .query(conn)
        .unwrap()
}

fn xlen(conn: &mut redis::Connection, stream: &str) -> usize {
    redis::cmd("XLEN").arg(stream).query(conn).unwrap()
}

#[tokio::test]
async fn entries_are_acked_after_handling_and_unknown_kinds_are_dead_lettered() {
    let app = spawn_app().await;
    let ok = Arc::new(Counting {
        seen: AtomicUsize::new(0),
        outcome: Outcome::Done,
    });
    let w = Arc::new(
        app.bare_worker("w1")
            .with_handler(WorkKind::Delivery, ok.clone()),
    );
    w.ensure_groups().await.unwrap();
    let mut redis = app.server.conn();
    let s3 = app.keys.work_stream(3);
    for _ in 0..5 {
        xadd(&mut redis, &s3, DELIVERY);
    }
    xadd(&mut redis, &app.keys.work_stream(9), "nobody.handles.this");
    let mut conn = app.redis.dedicated(Duration::from_secs(5)).await.unwrap();
    let mut n = 0;
    while n < 6 {
        n += w.step(&mut conn).await.unwrap();
    }
    assert_eq!(ok.seen.load(Ordering::SeqCst), 5);
    assert_eq!(
        xlen(&mut redis, &s3),
        0,
        "done entries are acked and deleted"
    );
    let dead: Vec<redis::Value> = redis::cmd("XRANGE")
        .arg(app.keys.dead_letters(9))
        .arg("-")
        .arg("+")
        .query(&mut redis)
        .unwrap();
    assert_eq!(dead.len(), 1);
    let text = format!("{dead:?}");
    assert!(text.contains("no handler for kind"), "{text}");
}

#[tokio::test]
async fn entries_of_a_dead_worker_are_reclaimed_and_poison_goes_to_dead_letters() {
    let app = spawn_app().await;
    let mut redis = app.server.conn();
    let s = app.keys.work_stream(1);
    // Worker A takes the entries and "dies" (never acks: its handler says retry).
    let flaky = Arc::new(Counting {
        seen: AtomicUsize::new(0),
        outcome: Outcome::Retry("busy".into()),
    });
    let a = Arc::new(
        app.bare_worker("a")
            .with_handler(WorkKind::Delivery, flaky.clone()),
    );
    a.ensure_groups().await.unwrap();
    for _ in 0..3 {
        xadd(&mut redis, &s, DELIVERY);
    }
    let mut conn = app.redis.dedicated(Duration::from_secs(5)).await.unwrap();
    let mut n = 0;
    while n < 3 {
        n += a.step(&mut conn).await.unwrap();
    }
    // Worker B reclaims them once they are idle past the visibility timeout.
    let good = Arc::new(Counting {
        seen: AtomicUsize::new(0),
        outcome: Outcome::Done,
    });
    let b = Arc::new(
        app.bare_worker("b")
            .with_handler(WorkKind::Delivery, good.clone()),
    );
    // Claims accumulate: entries read at different moments turn idle apart.
    let claimed = std::sync::atomic::AtomicUsize::new(0);
    eventually(Duration::from_secs(5), || async {
        claimed.fetch_add(b.reclaim().await.unwrap(), Ordering::SeqCst);
        claimed.load(Ordering::SeqCst) == 3
    })
    .await;
    assert_eq!(good.seen.load(Ordering::SeqCst), 3);
    assert_eq!(xlen(&mut redis, &s), 0);

    // An entry that always fails is dead-lettered after max deliveries (3).
    xadd(&mut redis, &s, DELIVERY);
    let mut n = 0;
    while n < 1 {
        n += a.step(&mut conn).await.unwrap();
    }
    eventually(Duration::from_secs(10), || async {
        a.reclaim().await.unwrap();
        xlen(&mut app.server.conn(), &s) == 0
    })
    .await;
    let dead: Vec<redis::Value> = redis::cmd("XRANGE")
        .arg(app.keys.dead_letters(1))
        .arg("-")
        .arg("+")
        .query(&mut redis)
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        format!("{dead:?}").contains("delivered 4 times"),
        "{dead:?}"
    );
}

#[tokio::test]
async fn entries_beyond_the_free_slots_are_kept_and_processed_without_waiting_for_reclaim() {
    // XREADGROUP's COUNT is per stream: one read over 16 of the shards returns more
    // entries than a worker with 4 slots can start. None may be stranded.
    let app = spawn_app().await;
    let ok = Arc::new(Counting {
        seen: AtomicUsize::new(0),
        outcome: Outcome::Done,
    });
    let mut opts = worker_opts("small");
    opts.worker_concurrency = 4;
    opts.worker_visibility = Duration::from_secs(600); // no reclaim can help
    let w = Arc::new(
        switchyard_worker::Worker::new(app.redis.clone(), app.keys.clone(), opts)
            .with_handler(WorkKind::Delivery, ok.clone()),
    );
    w.ensure_groups().await.unwrap();
    let mut redis = app.server.conn();
    for i in 0..160u16 {
        xadd(&mut redis, &app.keys.work_stream(i % 16), DELIVERY);
    }
    let mut conn = app.redis.dedicated(Duration::from_secs(5)).await.unwrap();
    let mut n = 0;
    let start = std::time::Instant::now();
    while n < 160 {
        assert!(start.elapsed() < Duration::from_secs(10), "stuck at {n}");
        n += w.step(&mut conn).await.unwrap();
    }
    assert_eq!(ok.seen.load(Ordering::SeqCst), 160);
    for s in 0..16 {
        assert_eq!(xlen(&mut redis, &app.keys.work_stream(s)), 0);
    }
}
