//! One shard's slot moved to another master under load (`CLUSTER SETSLOT`
//! IMPORTING/MIGRATING, `MIGRATE` in small batches, `SETSLOT … NODE`):
//! MOVED and ASK are followed, no client sees an error, nothing is lost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Load, check_nothing_lost, skip};
use crate::support::{Receiver, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slot_moved_under_load_loses_nothing() {
    if skip("a_slot_moved_under_load_loses_nothing") {
        return;
    }
    let app = Arc::new(TestApp::builder().with_replicas().spawn().await);
    let rx = Receiver::ok().await;
    let _roles = app.run_worker_and_scheduler("w1");
    let load = Load::start(&app, &rx.url).await;
    tokio::time::sleep(Duration::from_secs(1)).await; // keys in the slot first

    let cluster = app.server.cluster();
    let slot = cluster.keyslot(&app.keys.work_stream(0));
    let from = cluster.master_of(slot);
    let to = *cluster.masters().iter().find(|m| **m != from).unwrap();
    let start = Instant::now();
    // One key per MIGRATE, 20 ms apart: the slot stays half-migrated
    // (ASK for the moved keys, TRYAGAIN for calls spanning both sides)
    // while the clients run.
    let moved =
        tokio::task::block_in_place(|| cluster.move_slot(slot, to, 1, Duration::from_millis(20)));
    println!(
        "slot {slot} ({moved} keys) moved from :{from} to :{to} in {:?}",
        start.elapsed()
    );
    assert_eq!(cluster.master_of(slot), to);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = load.stop().await;

    let unavailable = seen.unavailable.lock().unwrap().clone();
    let unexpected = seen.unexpected.lock().unwrap().clone();
    assert!(
        unavailable.is_empty() && unexpected.is_empty(),
        "errors during the move: {unavailable:?} {unexpected:?}"
    );
    check_nothing_lost(&app, &seen, &rx).await;
}
