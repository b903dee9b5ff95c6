//! The retry path of creating endpoints not covered in their families'
//! tests (README "Safe retries"): a state machine defined again with the
//! same id and definition is the retry of a lost answer.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::spawn_app;

#[tokio::test]
async fn a_state_machine_defined_again_identically_is_a_retry_not_a_conflict() {
    let app = spawn_app().await;
    let def = json!({"id": "RETRY", "name": "r", "states": [
        {"id": "a", "name": "A", "next": ["b"]}, {"id": "b", "name": "B", "next": []}
    ]});
    let (s, first) = app.post("/api/statemachines", def.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let (s, _) = app
        .post(
            "/api/statemachines/RETRY/entities/e1/transitions",
            json!({"to": "a"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let before = app.snapshot();

    let (s, again) = app.post("/api/statemachines", def.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{again}");
    assert_eq!(again, first, "the same definition is answered");
    assert_eq!(app.snapshot(), before, "the retry changes nothing");

    let mut other = def;
    other["name"] = json!("another");
    let (s, b) = app.post("/api/statemachines", other).await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["code"], "statemachine_exists");
    assert_eq!(app.snapshot(), before);
}
