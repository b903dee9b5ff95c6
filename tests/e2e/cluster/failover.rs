//! A master killed (`kill -9`) under load: its replica is promoted, the
//! clients see only 503s, within 15 s of the promotion, and nothing is
//! lost. The app runs with `--redis-wait-replicas 1`: without it Redis
//! replicates asynchronously and a write answered just before the kill
//! may be gone after the promotion. Run alone with
//! `SWITCHYARD_TEST_REDIS=cluster cargo nextest run -p switchyard --test e2e
//! -E 'test(a_killed_master)'`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Load, check_nothing_lost, skip};
use crate::support::{Receiver, TestApp};

/// How long after the promotion a 503 may still come.
const SETTLE: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_master_fails_over_with_only_503s_and_loses_nothing() {
    if skip("a_killed_master_fails_over_with_only_503s_and_loses_nothing") {
        return;
    }
    super::log_to_file();
    // A short response timeout: a call caught by the failover gives up
    // (503) within 2 s instead of 10.
    let app = Arc::new(
        TestApp::builder()
            .with_replicas()
            .with_response_timeout(Duration::from_secs(2))
            .with_wait_replicas(1)
            .spawn()
            .await,
    );
    let rx = Receiver::ok().await;
    let _roles = app.run_worker_and_scheduler("w1");
    let load = Load::start(&app, &rx.url).await;
    load.seen.progressed(300, "before the kill").await;

    let cluster = app.server.cluster();
    let slot = cluster.keyslot(&app.keys.work_stream(0));
    let victim = cluster.master_of(slot);
    let pid = cluster
        .nodes
        .iter()
        .find(|n| n.port == victim)
        .unwrap()
        .pid();
    let killed_at = Instant::now();
    cluster.kill(victim);
    let promotion = tokio::task::block_in_place(|| {
        cluster.wait_promoted(slot, victim, Duration::from_secs(30))
    });
    println!(
        "master :{victim} (pid {pid:?}) killed; slot {slot} on :{} after {:?}",
        promotion.new_master,
        promotion.at - killed_at
    );
    // Load after the promotion too (calls on every shard succeed again),
    // then stop.
    load.seen.progressed(300, "after the promotion").await;
    let seen = load.stop().await;

    let unexpected = seen.unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "answers other than 503: {unexpected:?}"
    );
    match seen.error_window() {
        Some((window, last)) => {
            let when = match last.checked_duration_since(promotion.at) {
                Some(d) => format!("{d:?} after"),
                None => format!("{:?} before", promotion.at - last),
            };
            println!(
                "503s: {}, first to last: {window:?}, the last {when} the promotion",
                seen.unavailable.lock().unwrap().len(),
            );
            assert!(
                last < promotion.at + SETTLE,
                "a 503 came {:?} after the promotion",
                last - promotion.at
            );
        }
        None => println!("503s: none"),
    }
    check_nothing_lost(&app, &seen, &rx).await;
}
