//! Event ids are scoped per entity, and the applied ids of an idle machine
//! expire after `--sm-retention`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::provisioning;
use crate::support::{TestApp, spawn_app};

async fn send(app: &TestApp, entity: &str, to: &str, event_id: &str) -> (StatusCode, Value) {
    app.post(
        &format!("/api/statemachines/PROVISIONING/entities/{entity}/transitions"),
        json!({"to": to, "event_id": event_id}),
    )
    .await
}

#[tokio::test]
async fn another_entity_may_reuse_an_event_id() {
    let app = spawn_app().await;
    app.machines().create(provisioning()).await;
    let (_, a) = send(&app, "ev6", "1", "E-shared-1").await;
    let (s, b) = send(&app, "ev7", "1", "E-shared-1").await;
    assert_eq!(a["status"], "applied", "{a}");
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("applied")),
        "{b}"
    );
    let (s, e) = app
        .get("/api/statemachines/PROVISIONING/entities/ev7")
        .await;
    assert_eq!((s, e["state"].as_str()), (StatusCode::OK, Some("1")), "{e}");
}

#[tokio::test]
async fn the_same_entity_repeating_its_event_id_is_a_duplicate() {
    let app = spawn_app().await;
    app.machines().create(provisioning()).await;
    send(&app, "ev6", "1", "E-1").await;
    send(&app, "ev7", "1", "E-1").await;
    // Another move of ev6 under the id it used: not applied.
    let (s, b) = send(&app, "ev6", "2", "E-1").await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("duplicate")),
        "{b}"
    );
    let (_, e) = app
        .get("/api/statemachines/PROVISIONING/entities/ev6")
        .await;
    assert_eq!(e["state"], "1", "{e}");
}

#[tokio::test]
async fn a_batch_scopes_event_ids_per_entity_too() {
    let app = spawn_app().await;
    app.machines().create(provisioning()).await;
    let (s, b) = app
        .post(
            "/api/statemachines/PROVISIONING/transitions",
            json!({"events": [
                {"entity": "a", "to": "1", "event_id": "x"},
                {"entity": "b", "to": "1", "event_id": "x"},
                {"entity": "a", "to": "2", "event_id": "x"}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let statuses: Vec<&str> = b["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["applied", "applied", "duplicate"]);
}

#[tokio::test]
async fn an_idle_machines_applied_ids_expire_after_the_retention() {
    let retention = Duration::from_millis(400);
    let app = TestApp::builder()
        .with_config(|c| c.families.machines.sm_retention = retention)
        .spawn()
        .await;
    app.machines().create(provisioning()).await;
    send(&app, "ev6", "1", "E-1").await;
    let key = app.keys.machine("PROVISIONING").events();
    let mut conn = app.server.conn();
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
    assert!(
        ttl > 0 && ttl <= retention.as_millis() as i64,
        "the applied ids carry the retention as their TTL: {ttl}"
    );
    // No further transitions: the retention passes (Redis expires the key
    // on its own clock).
    tokio::time::sleep(retention + Duration::from_millis(100)).await;
    let exists: i64 = redis::cmd("EXISTS").arg(&key).query(&mut conn).unwrap();
    assert_eq!(exists, 0, "the idle machine's applied ids are gone");
    // The machine itself stays.
    let (s, _) = app.get("/api/statemachines/PROVISIONING").await;
    assert_eq!(s, StatusCode::OK);
}
