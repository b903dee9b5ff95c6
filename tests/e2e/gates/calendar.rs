//! Gates closed by the calendar: holidays and build windows.

use chrono::{Datelike, Utc};
use reqwest::StatusCode;
use serde_json::json;
use switchyard_shared::families::gates::BuildWindows;

use crate::support::{TestApp, spawn_app};

#[tokio::test]
async fn holidays_close_the_listed_environments_today_only() {
    let app = spawn_app().await;
    app.gates().create("a", "g", &["live", "develop"]).await;
    let today = Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();
    let yesterday = today.pred_opt().unwrap();
    let (s, b) = app
        .post(
            "/api/holidays",
            json!({"holidays": [
                {"date": today.to_string(), "reason": "today", "environments": ["live"]},
                {"date": tomorrow.to_string(), "reason": "tomorrow", "environments": ["develop"]},
                {"date": yesterday.to_string(), "reason": "past", "environments": ["develop"]},
            ]}),
        )
        .await;
    assert_eq!((s, b), (StatusCode::OK, json!({"status": "ok"})));
    let (_, g) = app.get("/api/services/a").await;
    assert_eq!(g["environments"]["live"]["state"], "closed");
    assert_eq!(g["environments"]["live"]["closed_by"], json!(["holiday"]));
    assert_eq!(g["environments"]["develop"]["state"], "open");
    let (_, b) = app
        .gates()
        .test_and_set(json!({"services": {"a": ["live"]}}))
        .await;
    assert_eq!(b["status"], "denied");
    let (_, b) = app
        .gates()
        .test_and_set(json!({"services": {"a": ["develop"]}}))
        .await;
    assert_eq!(b["status"], "ok");
    let (_, h) = app.get("/api/holidays/").await;
    let dates: Vec<&str> = h["holidays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        [today.to_string(), tomorrow.to_string()],
        "upcoming only, by date"
    );
    // Replace-all: an empty list removes them.
    app.post("/api/holidays", json!({"holidays": []})).await;
    let (_, g) = app.get("/api/services/a/live").await;
    assert_eq!(g["state"], "open");
}

#[tokio::test]
async fn build_windows_close_gates_outside_their_hours() {
    let today = Utc::now().weekday().num_days_from_monday();
    let other = (today + 3) % 7;
    let windows = BuildWindows::parse_arg(&format!(
        r#"{{"live": {{"elsewhen": {{"days_range": [{other}, {other}], "hours_range": [0, 24]}}}},
            "develop": {{"always": {{"days_range": [0, 6], "hours_range": [0, 24]}}}}}}"#
    ))
    .unwrap();
    let app = TestApp::builder()
        .with_config(|c| {
            c.families.gates.gate_windows = windows;
        })
        .spawn()
        .await;
    app.gates()
        .create("a", "g", &["live", "develop", "staging"])
        .await;
    let (_, g) = app.get("/api/services/a").await;
    assert_eq!(g["environments"]["live"]["closed_by"], json!(["window"]));
    assert_eq!(g["environments"]["develop"]["state"], "open");
    assert_eq!(
        g["environments"]["staging"]["state"], "open",
        "no rules: never closed by time"
    );
    let (_, b) = app
        .gates()
        .test_and_set(json!({"services": {"a": ["live"]}}))
        .await;
    assert_eq!(b["status"], "denied");
    let (_, b) = app
        .gates()
        .test_and_set(json!({"services": {"a": ["develop", "staging"]}}))
        .await;
    assert_eq!(b["status"], "ok");
}
