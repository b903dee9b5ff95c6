//! The deliveries API: idempotency, validation, listing.
use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::spawn_app;

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_delivery() {
    let app = spawn_app().await;
    let body = json!({"url": "http://127.0.0.1:9/x", "idempotency_key": "order-42"});
    let (s1, a) = app.deliveries().post(body.clone()).await;
    let (s2, b) = app.deliveries().post(body).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(a["id"], b["id"]);
}

#[tokio::test]
async fn bad_delivery_bodies_are_refused_where_they_are_wrong() {
    let app = spawn_app().await;
    let before = app.dbsize();
    for (body, loc) in [
        (json!({"url": "ftp://x/y"}), "body.url"),
        (
            json!({"url": "http://169.254.169.254/latest/meta-data"}),
            "body.url",
        ),
        (json!({"url": "http://[fe80::1]/"}), "body.url"),
        (json!({"url": 5}), "body.url"),
        (json!({}), "body"),
        (json!({"url": "http://a/", "method": "BREW"}), "body.method"),
        (
            json!({"url": "http://a/", "headers": {"webhook-id": "x"}}),
            "body.headers.webhook-id",
        ),
        (
            json!({"url": "http://a/", "headers": {"bad header": "x"}}),
            "body.headers.bad header",
        ),
        (json!({"url": "http://a/", "policy": "nope"}), "body.policy"),
        (
            json!({"url": "http://a/", "idempotency_key": "a b"}),
            "body.idempotency_key",
        ),
        (json!({"url": "http://a/", "extra": true}), "body.extra"),
    ] {
        let (s, e) = app.deliveries().post(body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {e}");
        assert_eq!(e["where"], loc, "{body}: {e}");
    }
    assert_eq!(before, app.dbsize(), "bad requests wrote nothing");
}

#[tokio::test]
async fn bad_listing_queries_are_refused() {
    let app = spawn_app().await;
    let before = app.dbsize();
    for q in [
        "state=bogus",
        "limit=0",
        "limit=501",
        "cursor=zzz",
        "what=1",
    ] {
        let (s, e) = app.get(&format!("/v1/deliveries?{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {e}");
    }
    assert_eq!(before, app.dbsize(), "bad requests wrote nothing");
}

#[tokio::test]
async fn unknown_or_malformed_delivery_ids_are_not_found() {
    let app = spawn_app().await;
    let before = app.dbsize();
    for id in [
        "nope",
        "d99-00000000000000000000000000000000",
        "d1-0123456789abcdef0123456789abcdef",
    ] {
        let (s, _) = app.get(&format!("/v1/deliveries/{id}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{id}");
        let (s, _) = app.delete(&format!("/v1/deliveries/{id}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{id}");
    }
    assert_eq!(before, app.dbsize(), "bad requests wrote nothing");
}

#[tokio::test]
async fn listing_pages_through_every_delivery() {
    let app = spawn_app().await;
    let mut ids = HashSet::new();
    for i in 0..25 {
        let (_, d) = app
            .deliveries()
            .post(json!({"url": format!("http://127.0.0.{}:9/x", 1 + i % 2)}))
            .await;
        ids.insert(d["id"].as_str().unwrap().to_owned());
    }
    let mut seen = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("?limit=10&cursor={c}"),
            None => "?limit=10".into(),
        };
        let (s, page) = app.get(&format!("/v1/deliveries{q}")).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for d in page["deliveries"].as_array().unwrap() {
            assert!(
                seen.insert(d["id"].as_str().unwrap().to_owned()),
                "no duplicates across pages"
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let (_, page) = app
        .get("/v1/deliveries?destination=127.0.0.2:9&limit=100")
        .await;
    assert_eq!(page["deliveries"].as_array().unwrap().len(), 12);
}
