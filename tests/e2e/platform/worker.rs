//! The stream worker: dispatch by kind, ack after the outcome, dead letters,
//! reclaim of entries left by a dead consumer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use switchyard_shared::WorkKind;
use switchyard_worker::{Handler, Outcome, WorkEntry, Worker};

use crate::support::{TestApp, eventually, spawn_app, worker_opts};

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

fn xadd(conn: &mut impl redis::ConnectionLike, stream: &str, kind: &str) -> String {
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

fn xlen(conn: &mut impl redis::ConnectionLike, stream: &str) -> usize {
    redis::cmd("XLEN").arg(stream).query(conn).unwrap()
}

/// A bare worker called `name` whose delivery handler counts its calls and
/// answers `outcome`; its stream groups exist.
async fn counting_worker(
    app: &TestApp,
    name: &str,
    outcome: Outcome,
) -> (Arc<Worker>, Arc<Counting>) {
    let counting = Arc::new(Counting {
        seen: AtomicUsize::new(0),
        outcome,
    });
    let w = Arc::new(
        app.bare_worker(name)
            .with_handler(WorkKind::Delivery, counting.clone()),
    );
    w.ensure_groups().await.unwrap();
    (w, counting)
}

/// Step `w` until it has read `n` entries.
async fn step_until(app: &TestApp, w: &Arc<Worker>, n: usize) {
    let mut conn = app.redis.dedicated(Duration::from_secs(5)).await.unwrap();
    let mut read = 0;
    while read < n {
        read += w.step(&mut conn).await.unwrap();
    }
}

fn dead_letters(app: &TestApp, shard: u16) -> Vec<redis::Value> {
    redis::cmd("XRANGE")
        .arg(app.keys.dead_letters(shard))
        .arg("-")
        .arg("+")
        .query(&mut app.server.conn())
        .unwrap()
}

#[tokio::test]
async fn handled_entries_are_acked_and_deleted() {
    let app = spawn_app().await;
    let (w, ok) = counting_worker(&app, "w1", Outcome::Done).await;
    let mut redis = app.server.conn();
    let s3 = app.keys.work_stream(3);
    for _ in 0..5 {
        xadd(&mut redis, &s3, DELIVERY);
    }
    step_until(&app, &w, 5).await;
    assert_eq!(ok.seen.load(Ordering::SeqCst), 5);
    assert_eq!(
        xlen(&mut redis, &s3),
        0,
        "done entries are acked and deleted"
    );
}

#[tokio::test]
async fn entries_of_an_unknown_kind_are_dead_lettered() {
    let app = spawn_app().await;
    let (w, _) = counting_worker(&app, "w1", Outcome::Done).await;
    xadd(
        &mut app.server.conn(),
        &app.keys.work_stream(9),
        "nobody.handles.this",
    );
    step_until(&app, &w, 1).await;
    let dead = dead_letters(&app, 9);
    assert_eq!(dead.len(), 1);
    let text = format!("{dead:?}");
    assert!(text.contains("no handler for kind"), "{text}");
}

#[tokio::test]
async fn entries_of_a_dead_worker_are_reclaimed() {
    let app = spawn_app().await;
    let mut redis = app.server.conn();
    let s = app.keys.work_stream(1);
    // Worker A takes the entries and "dies" (never acks: its handler says retry).
    let (a, _) = counting_worker(&app, "a", Outcome::Retry("busy".into())).await;
    for _ in 0..3 {
        xadd(&mut redis, &s, DELIVERY);
    }
    step_until(&app, &a, 3).await;
    // Worker B reclaims them once they are idle past the visibility timeout.
    let (b, good) = counting_worker(&app, "b", Outcome::Done).await;
    // Claims accumulate: entries read at different moments turn idle apart.
    let claimed = std::sync::atomic::AtomicUsize::new(0);
    eventually(Duration::from_secs(5), || async {
        claimed.fetch_add(b.reclaim().await.unwrap(), Ordering::SeqCst);
        claimed.load(Ordering::SeqCst) == 3
    })
    .await;
    assert_eq!(good.seen.load(Ordering::SeqCst), 3);
    assert_eq!(xlen(&mut redis, &s), 0);
}

#[tokio::test]
async fn an_entry_that_always_fails_is_dead_lettered_after_max_deliveries() {
    let app = spawn_app().await;
    let s = app.keys.work_stream(1);
    let (a, _) = counting_worker(&app, "a", Outcome::Retry("busy".into())).await;
    // An entry that always fails is dead-lettered after max deliveries (3).
    xadd(&mut app.server.conn(), &s, DELIVERY);
    step_until(&app, &a, 1).await;
    eventually(Duration::from_secs(10), || async {
        a.reclaim().await.unwrap();
        xlen(&mut app.server.conn(), &s) == 0
    })
    .await;
    let dead = dead_letters(&app, 1);
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
