//! Nets over time (issue 9): a token PUT retries its POST, the net index is
//! pruned by the scheduler, paging skips expired nets without ending early,
//! and a finished net shows when it expires.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::distinct;
use crate::support::{Receiver, TestApp};

/// Nets complete when created with this spec (one plain firing).
fn completing() -> Value {
    json!({"initialMarking": ["start"], "transitions": [{"inputs": ["start"], "outputs": ["done"]}]})
}

/// Nets stay running with this spec (no token, no TTL).
fn running() -> Value {
    json!({"transitions": [{"inputs": ["start"], "outputs": ["done"]}]})
}

/// An app whose completed nets expire after 300 ms.
async fn short_retention() -> TestApp {
    TestApp::builder()
        .with_config(|c| c.families.nets.net_retention = Duration::from_millis(300))
        .spawn()
        .await
}

/// Past the retention of [`short_retention`].
async fn past_retention() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

/// `n` client keys `<prefix>-<i>` whose nets live on `shard`.
fn keys_on_shard(app: &TestApp, shard: u16, prefix: &str, n: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .filter(|id| app.keys.net(id).shard == shard)
        .take(n)
        .collect()
}

/// Create a net under a client key.
async fn put_net(app: &TestApp, id: &str, spec: Value) {
    let (s, b) = app.put(&format!("/v1/nets/{id}"), spec).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

fn zcard(app: &TestApp, key: &str) -> usize {
    redis::cmd("ZCARD")
        .arg(key)
        .query(&mut app.server.conn())
        .unwrap()
}

fn index_size(app: &TestApp) -> usize {
    (0..app.keys.shards())
        .map(|s| zcard(app, &app.keys.net_index(s)))
        .sum()
}

#[tokio::test]
async fn a_put_to_the_location_of_a_post_is_its_idempotent_retry() {
    let app = crate::support::spawn_app().await;
    let rx = Receiver::ok().await;
    let id = app
        .nets()
        .create(json!({"transitions": [
            {"inputs": ["start"], "outputs": ["done"], "action": {"type": "notify", "url": rx.url}}
        ]}))
        .await;
    let resp = app
        .client
        .post(format!("{}/v1/nets/{id}/places/start/tokens", app.base))
        .body(r#"{"a":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let posted: Value = resp.json().await.unwrap();
    assert_eq!(posted["fired"], 1, "{posted}");
    // The client lost that answer and retries with a PUT to the Location.
    let (s, again) = app.put(&location, json!({"a": 1})).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["fired"], 0, "nothing fired: {again}");
    assert_eq!(
        (&again["color"], &again["color_group"]),
        (&posted["color"], &posted["color_group"])
    );
    app.drain().await;
    let net = app.nets().get(&id).await;
    assert_eq!(net["fired"], 1, "{net}");
    assert_eq!(net["notifications"], 1, "{net}");
    assert_eq!(distinct(&rx), 1, "one callback");
}

#[tokio::test]
async fn the_scheduler_prunes_the_net_index_of_expired_nets_a_batch_at_a_time() {
    let app = short_retention().await;
    let shard = 5;
    // The oldest entry of the shard is a net that keeps running.
    let ids = keys_on_shard(&app, shard, "n", 21);
    put_net(&app, &ids[0], running()).await;
    for id in &ids[1..] {
        put_net(&app, id, completing()).await;
    }
    // And nets on other shards.
    let others = (0..)
        .map(|i| format!("o-{i}"))
        .filter(|id| app.keys.net(id).shard != shard);
    for id in others.take(10) {
        put_net(&app, &id, completing()).await;
    }
    let index = app.keys.net_index(shard);
    assert_eq!(zcard(&app, &index), 21);
    assert_eq!(index_size(&app), 31);
    past_retention().await;
    let scheduler = app.scheduler();
    // The test scheduler's --sweep-batch is 16: 16 examined on the shard
    // (the running net and 15 expired ones), the rest at the next step.
    let first = scheduler.step("nets.prune").await.unwrap();
    assert_eq!(zcard(&app, &index), 21 - 15);
    assert_eq!(first, 15 + 10);
    let second = scheduler.step("nets.prune").await.unwrap();
    assert_eq!(second, 5);
    assert_eq!(zcard(&app, &index), 1, "only the running net is left");
    assert_eq!(index_size(&app), 1);
    assert_eq!(scheduler.step("nets.prune").await.unwrap(), 0);
    // Deleted nets leave the index too; then it is empty.
    assert_eq!(
        app.delete(&format!("/v1/nets/{}", ids[0])).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(index_size(&app), 0);
}

#[tokio::test]
async fn a_page_is_not_empty_while_a_net_exists_behind_expired_ones() {
    let app = short_retention().await;
    // D4: one running net, then more than a page of newer nets on its
    // shard that complete and expire.
    let ids = keys_on_shard(&app, 9, "d4", 13);
    put_net(&app, &ids[0], running()).await;
    for id in &ids[1..] {
        put_net(&app, id, completing()).await;
    }
    past_retention().await;
    let (s, page) = app.get("/v1/nets?limit=5").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page["nets"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["nets"][0]["id"], ids[0].as_str(), "{page}");
    assert_eq!(page["next_cursor"], Value::Null, "{page}");
}

#[tokio::test]
async fn paging_to_the_end_sees_every_live_net_exactly_once() {
    let app = short_retention().await;
    let mut live = HashSet::new();
    // Live and expiring nets interleaved, many on one shard.
    let same = keys_on_shard(&app, 3, "p", 24);
    for (i, id) in same.iter().enumerate() {
        if i % 3 == 0 {
            put_net(&app, id, running()).await;
            live.insert(id.clone());
        } else {
            put_net(&app, id, completing()).await;
        }
        if i % 4 == 0 {
            live.insert(app.nets().create(running()).await);
        }
        app.nets().create(completing()).await;
    }
    past_retention().await;
    let mut seen = Vec::new();
    let mut path = "/v1/nets?limit=3".to_owned();
    for _ in 0..100 {
        let (s, page) = app.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for n in page["nets"].as_array().unwrap() {
            seen.push(n["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/nets?limit=3&cursor={c}"),
            None => break,
        }
    }
    let distinct: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(distinct.len(), seen.len(), "each net once: {seen:?}");
    assert_eq!(distinct, live);
}

#[tokio::test]
async fn a_completed_net_shows_when_it_expires() {
    let app = crate::support::spawn_app().await;
    let id = app.nets().create(completing()).await;
    let net = app.nets().get(&id).await;
    assert_eq!(net["status"], "completed", "{net}");
    let at = net["expires_at"].as_str().expect("expires_at is set");
    let at = chrono::DateTime::parse_from_rfc3339(at).unwrap();
    let left = at.signed_duration_since(chrono::Utc::now());
    // The default retention is 7 days.
    assert!(
        left > chrono::Duration::days(7) - chrono::Duration::minutes(1)
            && left <= chrono::Duration::days(7),
        "expires in {left}"
    );
    // A running net does not expire.
    let id = app.nets().create(running()).await;
    assert_eq!(app.nets().get(&id).await["expires_at"], Value::Null);
}
