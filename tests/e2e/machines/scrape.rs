//! `/metrics` with many machines: a scrape refreshes the gauges of a
//! bounded number of machines, at most once per refresh interval, and the
//! refreshes visit every machine in turn.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use switchyard_api::families::machines::GAUGES_MACHINES_PER_REFRESH;
use switchyard_shared::families::machines::{IdCursor, MachineStore};

use super::provisioning;
use crate::support::{TestApp, spawn_app};

/// Machines enough for three refreshes.
const MACHINES: usize = GAUGES_MACHINES_PER_REFRESH * 2 + 5;

/// Commands Redis has processed so far (on a cluster, by every node:
/// `INFO` goes to each and answers per node).
fn commands(app: &TestApp) -> u64 {
    let info: redis::Value = redis::cmd("INFO")
        .arg("stats")
        .query(&mut app.server.conn())
        .unwrap();
    let texts: Vec<String> = match info {
        redis::Value::Map(nodes) => nodes
            .into_iter()
            .map(|(_, v)| redis::from_redis_value(v).unwrap())
            .collect(),
        one => vec![redis::from_redis_value(one).unwrap()],
    };
    texts
        .iter()
        .map(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("total_commands_processed:"))
                .unwrap()
                .trim()
                .parse::<u64>()
                .unwrap()
        })
        .sum()
}

/// `SCRAPE-000` … with one entity in state 1 each.
async fn many_machines(app: &TestApp) -> Vec<String> {
    let mut ids = vec![];
    for i in 0..MACHINES {
        let id = format!("SCRAPE-{i:03}");
        let mut def = provisioning();
        def["id"] = json!(id);
        app.machines().create(def).await;
        app.machines().transition(&id, "e", "1").await;
        ids.push(id);
    }
    ids
}

/// The machines whose `switchyard_sm_entities` gauge a scrape shows.
fn machines_shown(prom: &str) -> HashSet<String> {
    prom.lines()
        .filter_map(|l| l.strip_prefix("switchyard_sm_entities{machine=\""))
        .filter_map(|l| l.split('"').next())
        .filter(|m| m.starts_with("SCRAPE-"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_scrape_with_many_machines_reads_a_bounded_number_of_them() {
    let app = spawn_app().await;
    many_machines(&app).await;
    // What the two INFO calls around a scrape cost by themselves.
    let before = commands(&app);
    let info = commands(&app) - before;

    let before = commands(&app);
    let prom = app.metrics_text().await;
    let used = commands(&app) - before - info;
    assert_eq!(
        machines_shown(&prom).len(),
        GAUGES_MACHINES_PER_REFRESH,
        "one refresh publishes a bounded page of machines"
    );
    assert!(
        prom.contains("switchyard_sm_entities{machine=\"SCRAPE-") && prom.contains("\"} 1"),
        "{prom}"
    );
    // At most one ZRANGE per shard, one HGET per machine, and per machine
    // its counts, five buckets and one ZRANGE per non-terminal state (6).
    let bound = app.keys.shards() as u64 + GAUGES_MACHINES_PER_REFRESH as u64 * (1 + 1 + 5 + 6);
    assert!(
        used <= bound,
        "a scrape used {used} commands (bound {bound})"
    );

    // Within the refresh interval a scrape reads nothing.
    let before = commands(&app);
    let again = app.metrics_text().await;
    assert_eq!(
        commands(&app) - before - info,
        0,
        "a second scrape read Redis"
    );
    assert_eq!(machines_shown(&again), machines_shown(&prom));
}

#[tokio::test]
async fn successive_gauge_pages_visit_every_machine() {
    let app = spawn_app().await;
    let ids: HashSet<String> = many_machines(&app).await.into_iter().collect();
    let store = MachineStore::new(app.redis.clone(), app.keys.clone(), Duration::from_secs(60));
    let (mut seen, mut at) = (HashSet::new(), IdCursor::default());
    for _ in 0..MACHINES.div_ceil(GAUGES_MACHINES_PER_REFRESH) {
        let (page, next) = store
            .ids_page(at, GAUGES_MACHINES_PER_REFRESH)
            .await
            .unwrap();
        assert_eq!(page.len(), GAUGES_MACHINES_PER_REFRESH);
        let distinct: HashSet<&String> = page.iter().collect();
        assert_eq!(distinct.len(), page.len(), "a page names a machine once");
        seen.extend(page);
        at = next;
    }
    assert_eq!(seen, ids, "three pages cover every machine");
}
