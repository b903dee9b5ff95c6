//! Thresholds: alerts fire once, respect the cooldown and recover.
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::provisioning;
use crate::support::Receiver;
use crate::support::{TestApp, eventually, spawn_app};
use switchyard_scheduler::Scheduler;

/// PROVISIONING with two thresholds: more than 2 entities in "1" alerts
/// `rx` (critical, an hour's cooldown, with recovery); anything older than
/// an hour in "2" is a warning. Entities "a" and "b" wait in "1".
async fn two_waiting_with_thresholds(app: &TestApp, rx: &Receiver) -> Scheduler {
    let mut def = provisioning();
    def["thresholds"] = json!([
        {"id": "too-many-waiting", "state": "1", "kind": "count_above", "value": 2, "severity": "critical",
         "action": {"type": "webhook", "url": rx.url}, "cooldown_seconds": 3600, "recovery": true},
        {"state": "2", "kind": "older_than", "value": 0, "age_seconds": 3600, "severity": "warning"}
    ]);
    app.machines().create(def).await;
    for e in ["a", "b"] {
        app.machines().transition("PROVISIONING", e, "1").await;
    }
    app.scheduler()
}

/// Entity "c" moves to `to` (into "1": the threshold is crossed; out of it:
/// it clears) and the notification is delivered, whether the check right
/// after the transition or the scheduler's got there first: `rx` has then
/// heard `heard` requests.
async fn move_c(app: &TestApp, sched: &Scheduler, rx: &Receiver, to: &str, heard: usize) {
    app.machines().transition("PROVISIONING", "c", to).await;
    sched.step("machines.thresholds").await.unwrap();
    app.drain().await;
    assert_eq!(rx.count(), heard);
}

#[tokio::test]
async fn a_count_at_the_threshold_does_not_cross_it() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let sched = two_waiting_with_thresholds(&app, &rx).await;
    assert_eq!(
        sched.step("machines.thresholds").await.unwrap(),
        0,
        "2 is not above 2"
    );
    let (_, text) = app.get("/api/statemachines/PROVISIONING/check").await;
    assert!(text.as_str().unwrap().starts_with("OK - "), "{text}");
}

#[tokio::test]
async fn a_crossed_threshold_alerts_once() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let sched = two_waiting_with_thresholds(&app, &rx).await;
    move_c(&app, &sched, &rx, "1", 1).await;
    assert_eq!(
        sched.step("machines.thresholds").await.unwrap(),
        0,
        "still above: no repeat"
    );
    let (_, text) = app.get("/api/statemachines/PROVISIONING/check").await;
    let text = text.as_str().unwrap();
    assert!(text.starts_with("CRITICAL - 1: 3 entities"), "{text}");
    assert!(text.contains("'1'=3;;2;0;"), "perfdata: {text}");
    let alert: Value = serde_json::from_str(&rx.received()[0].body).unwrap();
    assert_eq!(
        (alert["status"].as_str(), alert["severity"].as_str()),
        (Some("firing"), Some("critical"))
    );
}

#[tokio::test]
async fn a_threshold_that_clears_sends_a_recovery() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let sched = two_waiting_with_thresholds(&app, &rx).await;
    move_c(&app, &sched, &rx, "1", 1).await;
    move_c(&app, &sched, &rx, "3", 2).await;
    let rec: Value = serde_json::from_str(&rx.received()[1].body).unwrap();
    assert_eq!(rec["status"], "recovered");
}

#[tokio::test]
async fn crossing_again_within_the_cooldown_fires_without_a_notification() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let sched = two_waiting_with_thresholds(&app, &rx).await;
    move_c(&app, &sched, &rx, "1", 1).await;
    move_c(&app, &sched, &rx, "3", 2).await;
    app.machines().transition("PROVISIONING", "d", "1").await;
    sched.step("machines.thresholds").await.unwrap();
    // The after-transition check runs in the API's background: wait until
    // any it started has run.
    eventually(Duration::from_secs(10), || async {
        app.metrics_text()
            .await
            .lines()
            .find_map(|l| l.strip_prefix("switchyard_sm_threshold_checks_in_flight "))
            .is_none_or(|n| n.trim() == "0")
    })
    .await;
    sched.step("machines.thresholds").await.unwrap();
    app.drain().await;
    assert_eq!(rx.count(), 2, "no alert within the cooldown");
    let (_, m) = app.get("/api/statemachines/PROVISIONING/metrics").await;
    assert_eq!(m["thresholds"][0]["firing"], true);
    assert_eq!(m["thresholds"][1]["firing"], false);
    let prom = app.metrics_text().await;
    assert!(
        prom.contains(r#"switchyard_sm_entities{machine="PROVISIONING",state="1"} 3"#),
        "{prom}"
    );
}

#[tokio::test]
async fn an_alert_held_back_by_the_cooldown_is_sent_when_it_ends() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let mut def = provisioning();
    def["thresholds"] = json!([{"id": "busy", "state": "1", "kind": "count_above", "value": 0, "severity": "warning",
        "action": {"type": "webhook", "url": rx.url}, "cooldown_seconds": 1}]);
    app.machines().create(def).await;
    let sched = app.scheduler();
    app.machines().transition("PROVISIONING", "a", "1").await;
    sched.step("machines.thresholds").await.unwrap();
    app.drain().await;
    assert_eq!(rx.count(), 1);
    app.machines().transition("PROVISIONING", "a", "3").await; // clears: recovery
    sched.step("machines.thresholds").await.unwrap();
    app.drain().await;
    assert_eq!(rx.count(), 2);
    app.machines().transition("PROVISIONING", "b", "1").await; // fires again inside the 1 s cooldown: held back…
    sched.step("machines.thresholds").await.unwrap();
    // …and announced once the cooldown has passed, while still true.
    eventually(Duration::from_secs(10), || async {
        sched.step("machines.thresholds").await.unwrap();
        app.drain().await;
        rx.count() == 3
    })
    .await;
    let third: Value = serde_json::from_str(&rx.received()[2].body).unwrap();
    assert_eq!(third["status"], "firing");
}

#[tokio::test]
async fn duplicate_threshold_ids_are_refused() {
    let app = spawn_app().await;
    let (s, e) = app
        .post(
            "/api/statemachines",
            json!({"id": "X", "states": [{"id": "1"}], "thresholds": [
            {"id": "t", "state": "1", "kind": "entry_rate_above", "value": 1, "window": "1m"},
            {"id": "t", "state": "1", "kind": "entry_rate_above", "value": 2, "window": "1m"}]}),
        )
        .await;
    assert_eq!(
        (s, e["where"].as_str()),
        (StatusCode::BAD_REQUEST, Some("body.thresholds[1].id"))
    );
}

#[tokio::test]
async fn a_single_transition_checks_thresholds_right_away() {
    // The scheduler is configured to check once an hour and is not even
    // running: only the check right after the transition can send this alert.
    let app = TestApp::builder()
        .with_config(|c| c.families.machines.sm_check_interval = Duration::from_secs(3600))
        .spawn()
        .await;
    let rx = Receiver::ok().await;
    let _w = app.run_worker_only("w");
    let mut def = provisioning();
    def["thresholds"] = json!([{"id": "any-waiting", "state": "1", "kind": "count_above", "value": 0,
        "severity": "critical", "action": {"type": "webhook", "url": rx.url}}]);
    let (s, b) = app.post("/api/statemachines", def).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app.machines().transition("PROVISIONING", "a", "1").await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("applied")),
        "{b}"
    );
    eventually(Duration::from_secs(5), || async { rx.count() == 1 }).await;
    let alert: Value = serde_json::from_str(&rx.received()[0].body).unwrap();
    assert_eq!(
        (alert["threshold"].as_str(), alert["status"].as_str()),
        (Some("any-waiting"), Some("firing"))
    );
}

/// The scheduler's alerts go out with the configured default retry policy
/// (it used to hard-code `svix`).
#[tokio::test]
async fn scheduler_alerts_use_the_default_retry_policy() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let mut def = provisioning();
    def["thresholds"] = json!([
        {"state": "1", "kind": "oldest_age_above", "age_seconds": 1, "severity": "warning",
         "action": {"type": "webhook", "url": rx.url}}
    ]);
    let (s, b) = app.post("/api/statemachines", def).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    app.machines().transition("PROVISIONING", "a", "1").await;
    // Nothing is old yet, so the check right after the transition sends
    // nothing; only the scheduler's later check can.
    let sched = app.scheduler();
    eventually(Duration::from_secs(10), || async {
        sched.step("machines.thresholds").await.unwrap() > 0
    })
    .await;
    let (_, list) = app.get("/v1/deliveries").await;
    let alerts = list["deliveries"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{list}");
    assert_eq!(alerts[0]["policy"], app.config.outbox.default_retry_policy);
    assert_eq!(alerts[0]["policy"], "fast");
}
