//! The nets API: validation and maintenance (client keys, tokens, pause, resume, delete, expire).
use reqwest::StatusCode;
use serde_json::json;

use super::bodies;
use crate::support::Receiver;
use crate::support::{TestApp, spawn_app};

#[tokio::test]
async fn expire_puts_a_ttl_on_every_key() {
    let app = spawn_app().await;
    let id = app.nets().create(json!({"initialMarking": ["start"], "transitions": [
        {"inputs": ["start"], "outputs": ["wait"], "action": {"type": "expire", "ttl_seconds": 60}},
        {"inputs": ["wait", "never"], "outputs": ["end"]}
    ]}))
    .await;
    let mut conn = app.server.conn();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("sy:*:net:{id}:*"))
        .query(&mut conn)
        .unwrap();
    assert!(keys.len() >= 4, "{keys:?}");
    for k in keys {
        let ttl: i64 = redis::cmd("PTTL").arg(&k).query(&mut conn).unwrap();
        assert!(ttl > 0 && ttl <= 60_000, "{k} has no TTL ({ttl})");
    }
    assert!(app.nets().get(&id).await["expires_at"].is_string());
    // Keys created after the expire action get the deadline too.
    app.put(
        &format!("/v1/nets/{id}/places/never/tokens?color=0"),
        json!({}),
    )
    .await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("sy:*:net:{id}:*"))
        .query(&mut conn)
        .unwrap();
    for k in keys {
        let ttl: i64 = redis::cmd("PTTL").arg(&k).query(&mut conn).unwrap();
        assert!(ttl > 0, "{k} has no TTL ({ttl})");
    }
}

#[tokio::test]
async fn invalid_nets_are_refused_before_anything_is_stored() {
    let app = spawn_app().await;
    let before = app.dbsize();
    for (spec, at) in [
        (
            json!({"transitions": [{"inputs": ["a"], "outputs": ["b"]}, {"inputs": ["b"], "action": {"type": "nope"}}]}),
            "body.transitions[1].action.type",
        ),
        (
            json!({"transitions": [{"inputs": ["a"], "outputs": ["sub.input"]}]}),
            "body.transitions[0].outputs[0]",
        ),
        (
            json!({"transitions": [{"inputs": ["a"], "type": "barrier"}]}),
            "body.transitions[0].type",
        ),
        (
            json!({"subnets": {"s": {"type": "weird"}}, "transitions": [{"inputs": ["a"]}]}),
            "body.subnets.s.type",
        ),
        (json!({"transitions": "x"}), "body.transitions"),
        (json!([1, 2]), "body"),
    ] {
        let (s, e) = app.post("/v1/nets", spec.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{spec}: {e}");
        assert_eq!(e["where"], at, "{spec}: {e}");
    }
    assert_eq!(before, app.dbsize(), "nothing stored");
}

/// The net `my-net`, put under its client key, with one transition that
/// needs `start` and `go` and calls back `url`.
fn my_net(url: &str) -> serde_json::Value {
    json!({"transitions": [
        {"inputs": ["start", "go"], "outputs": ["end"], "action": {"type": "notify", "url": url}}
    ]})
}

async fn put_my_net(app: &TestApp, url: &str) {
    let (s, b) = app.put("/v1/nets/my-net", my_net(url)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

#[tokio::test]
async fn a_net_under_a_client_key_can_be_put_again_but_not_changed() {
    let app = spawn_app().await;
    let (s, b) = app
        .put("/v1/nets/my-net", my_net("http://127.0.0.1:9/x"))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["places"]["go"]["index"], 1);
    let (s, _) = app
        .put("/v1/nets/my-net", my_net("http://127.0.0.1:9/x"))
        .await;
    assert_eq!(s, StatusCode::OK, "same net again");
    let (s, _) = app
        .put(
            "/v1/nets/my-net",
            json!({"transitions": [{"inputs": ["x"]}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
}

#[tokio::test]
async fn tokens_for_unknown_nets_places_or_colours_are_refused() {
    let app = spawn_app().await;
    put_my_net(&app, "http://127.0.0.1:9/x").await;
    assert_eq!(
        app.put("/v1/nets/nope/places/start/tokens?color=0", json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.put("/v1/nets/my-net/places/nowhere/tokens?color=0", json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.put("/v1/nets/my-net/places/9/tokens?color=0", json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.put("/v1/nets/my-net/places/start/tokens?color=77", json!({}))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.put("/v1/nets/my-net/places/start/tokens?color=x", json!({}))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.put("/v1/nets/my-net/places/start/tokens", json!({}))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    let (s, e) = app
        .call(
            reqwest::Method::PUT,
            "/v1/nets/my-net/places/start/tokens?color=0",
            Some("{bad"),
        )
        .await;
    assert_eq!(
        (s, e["reason"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Json was not valid"))
    );
}

#[tokio::test]
async fn a_paused_net_takes_tokens_but_fires_only_when_resumed() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    put_my_net(&app, &rx.url).await;
    let (s, _) = app
        .call(
            reqwest::Method::PATCH,
            "/v1/nets/my-net",
            Some(r#"{"active": false}"#),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        app.put(
            "/v1/nets/my-net/places/start/tokens?color=0&color_group=0",
            json!({})
        )
        .await
        .0,
        StatusCode::CREATED
    );
    assert_eq!(
        app.put("/v1/nets/my-net/places/1/tokens/0", json!({"by": "index"}))
            .await
            .0,
        StatusCode::CREATED
    );
    app.drain().await;
    assert_eq!(rx.count(), 0);
    let (_, ex) = app.get("/v1/nets/my-net/explain").await;
    assert!(ex["notes"][0].as_str().unwrap().contains("paused"), "{ex}");
    assert_eq!(ex["transitions"][0]["enabled"], json!([{"color": 0}]));
    let (s, _) = app
        .call(
            reqwest::Method::PATCH,
            "/v1/nets/my-net",
            Some(r#"{"active": true}"#),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    app.drain().await;
    assert_eq!(rx.count(), 1);
    assert_eq!(bodies(&rx)[0]["data"]["by"], "index");
}

#[tokio::test]
async fn a_net_is_listed_with_a_dot_drawing() {
    let app = spawn_app().await;
    put_my_net(&app, "http://127.0.0.1:9/x").await;
    let (s, dot) = app.get("/v1/nets/my-net/dot").await;
    assert_eq!(s, StatusCode::OK);
    assert!(dot.as_str().unwrap().starts_with("digraph"), "{dot}");
    let (_, l) = app.get("/v1/nets").await;
    assert_eq!(l["nets"][0]["id"], "my-net");
}

#[tokio::test]
async fn a_deleted_net_leaves_no_keys() {
    let app = spawn_app().await;
    put_my_net(&app, "http://127.0.0.1:9/x").await;
    assert_eq!(
        app.delete("/v1/nets/my-net").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get("/v1/nets/my-net").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.delete("/v1/nets/my-net").await.0, StatusCode::NOT_FOUND);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("sy:*:net:my-net:*")
        .query(&mut app.server.conn())
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}
