//! Threshold webhooks are checked at create by the platform's one URL
//! validator: a forbidden address is a 400 (issue 9, D10).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, spawn_app};

fn machine_with_webhook(url: &str) -> Value {
    json!({
        "id": "HOOKED",
        "name": "hooked",
        "states": [{"id": "a", "next": ["b"]}, {"id": "b"}],
        "thresholds": [{"state": "a", "kind": "count_above", "value": 1,
            "action": {"type": "webhook", "url": url}}]
    })
}

const FORBIDDEN: &[&str] = &[
    "http://[::ffff:169.254.169.254]/",
    "http://169.254.169.254/latest",
    "http://[::169.254.169.254]/",
    "http://[fd00:ec2::254]/",
];

#[tokio::test]
async fn a_threshold_webhook_to_a_forbidden_address_is_refused() {
    let app = spawn_app().await;
    for url in FORBIDDEN {
        let (s, e) = app.machines().post(machine_with_webhook(url)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{url}: {e}");
        assert_eq!(e["code"], "statemachine_invalid", "{url}: {e}");
        assert_eq!(e["where"], "body.thresholds[0].action.url", "{url}: {e}");
    }
    let (s, _) = app.get("/api/statemachines/HOOKED").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nothing was stored");
}

#[tokio::test]
async fn a_threshold_webhook_to_a_forbidden_address_is_accepted_with_allow_link_local() {
    let app = TestApp::builder()
        .with_config(|c| c.outbox.allow_link_local = true)
        .spawn()
        .await;
    let (s, e) = app
        .machines()
        .post(machine_with_webhook(FORBIDDEN[0]))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
}
