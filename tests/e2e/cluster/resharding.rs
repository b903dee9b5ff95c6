//! Shards' slots moved to another master under load (`CLUSTER SETSLOT`
//! IMPORTING/MIGRATING, `MIGRATE` in small batches, `SETSLOT … NODE`):
//! `MOVED`, `ASK` and `TRYAGAIN` are followed or retried, no client sees
//! an error, nothing is lost. Two slots move: the state machine's shard
//! (every entity of the machine: hundreds of keys, so the slot stays
//! half-migrated for a while under transitions and reads) and shard 0's
//! (its work stream: the worker's reader must follow it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Load, check_nothing_lost, skip};
use crate::support::{Receiver, TestApp};

/// Keys the machine's slot must hold before it moves.
const MACHINE_KEYS: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slot_moved_under_load_loses_nothing() {
    if skip("a_slot_moved_under_load_loses_nothing") {
        return;
    }
    super::log_to_file();
    let app = Arc::new(TestApp::builder().with_replicas().spawn().await);
    let rx = Receiver::ok().await;
    let _roles = app.run_worker_and_scheduler("w1");
    let load = Load::start(&app, &rx.url).await;
    let cluster = app.server.cluster();
    let machine_slot = cluster.keyslot(&app.keys.machine("PROVISIONING").meta());
    let stream_slot = cluster.keyslot(&app.keys.work_stream(0));

    // Entities in the machine's slot first (the clients create them).
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster.keys_in_slot(machine_slot) < MACHINE_KEYS {
        assert!(Instant::now() < deadline, "the load made too few keys");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (slot, batch) in [(machine_slot, 5), (stream_slot, 1)] {
        let from = cluster.master_of(slot);
        let to = *cluster.masters().iter().find(|m| **m != from).unwrap();
        let start = Instant::now();
        // A few keys per MIGRATE, 10 ms apart: the slot stays
        // half-migrated (ASK for the moved keys, TRYAGAIN for calls
        // spanning both sides) while the clients run.
        let moved = tokio::task::block_in_place(|| {
            cluster.move_slot(slot, to, batch, Duration::from_millis(10))
        });
        println!(
            "slot {slot} ({moved} keys) moved from :{from} to :{to} in {:?}",
            start.elapsed()
        );
        assert_eq!(cluster.master_of(slot), to);
    }
    // Load on the moved slots before it stops.
    load.seen.progressed(200, "after the move").await;
    let seen = load.stop().await;

    let unavailable = seen.unavailable.lock().unwrap().clone();
    let unexpected = seen.unexpected.lock().unwrap().clone();
    assert!(
        unavailable.is_empty() && unexpected.is_empty(),
        "errors during the move: {unavailable:?} {unexpected:?}"
    );
    check_nothing_lost(&app, &seen, &rx).await;
}
