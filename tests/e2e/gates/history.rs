//! Each gate's history.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::api::gates::ticket_id;
use crate::support::{TestApp, spawn_app};

#[tokio::test]
async fn history_records_who_did_what_and_when() {
    let app = spawn_app().await;
    app.gates().create("a", "g", &["live"]).await;
    let resp = app
        .client
        .put(format!("{}/api/services/a/live", app.base))
        .header("x-actor", "jens")
        .body(json!({"state": "closed", "message": "testing"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    app.put("/api/services/a/live", json!({"state": "open"}))
        .await;
    let (_, b) = app
        .gates()
        .test_and_set(json!({"services": {"a": ["live"]}}))
        .await;
    app.delete(&format!("/api/tickets/{}", ticket_id(&b))).await;
    let (s, h) = app.get("/api/services/a/live/history").await;
    assert_eq!(s, StatusCode::OK);
    let events: Vec<&str> = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["released", "granted", "update", "update", "created"]
    );
    assert_eq!(h["history"][3]["actor"], "jens");
    assert_eq!(h["history"][3]["state"], "closed");
    assert_eq!(h["history"][3]["message"], "testing");
    assert!(h["history"][0]["at"].as_str().unwrap().ends_with('Z'));
    let (_, h) = app.get("/api/gates/g/a/live/history?limit=2").await;
    assert_eq!(h["history"].as_array().unwrap().len(), 2);
    let (s, _) = app.get("/api/services/a/live/history?limit=0").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app.get("/api/services/a/nope/history").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn history_is_bounded() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.families.gates.gate_history_len = 5;
        })
        .spawn()
        .await;
    app.gates().create("a", "g", &["live"]).await;
    for i in 0..20 {
        app.put("/api/services/a/live", json!({"message": format!("m{i}")}))
            .await;
    }
    let mut conn = app.server.conn();
    let len: usize = redis::cmd("LLEN")
        .arg(app.keys.gates("default").history("a", "live"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(len, 5);
    let (_, h) = app.get("/api/services/a/live/history").await;
    assert_eq!(h["history"][0]["message"], "m19");
}
