//! Paging `GET /v1/deliveries` past expired deliveries (issue 9, D4): every
//! live delivery is listed exactly once, however many expired entries lie
//! between them.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Receiver, TestApp};

#[tokio::test]
async fn paging_to_the_end_sees_every_live_delivery_exactly_once() {
    let app = TestApp::builder()
        .with_config(|c| c.families.deliveries.delivery_retention = Duration::from_millis(300))
        .spawn()
        .await;
    // Live: retried in an hour (no TTL while retrying). Expiring: delivered.
    let later = Receiver::start(
        Duration::ZERO,
        Arc::new(|_, _| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                vec![("retry-after", "3600".into())],
            )
        }),
    )
    .await;
    let ok = Receiver::ok().await;
    let mut live = HashSet::new();
    for i in 0..12 {
        live.insert(app.deliveries().create(json!({"url": later.url})).await);
        for _ in 0..(1 + i % 4) {
            app.deliveries().create(json!({"url": ok.url})).await;
        }
    }
    // The newest entries are all expiring ones: several pages of them on
    // every shard (64 shards).
    for _ in 0..300 {
        app.deliveries().create(json!({"url": ok.url})).await;
    }
    app.settle().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut seen = Vec::new();
    let mut path = "/v1/deliveries?limit=2".to_owned();
    for _ in 0..100 {
        let (s, page) = app.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let items = page["deliveries"].as_array().unwrap();
        if seen.is_empty() {
            assert_eq!(items.len(), 2, "the first page is full: {page}");
        }
        for d in items {
            assert_eq!(d["state"], "failed_retrying", "{d}");
            seen.push(d["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/deliveries?limit=2&cursor={c}"),
            None => break,
        }
    }
    let distinct: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(distinct.len(), seen.len(), "each delivery once: {seen:?}");
    assert_eq!(distinct, live);
}
