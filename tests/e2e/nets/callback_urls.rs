//! Callback URLs of a net definition (notify, create-color-group and the
//! subnets' URLs) are checked at create by the platform's one URL
//! validator: a forbidden address is a 400 there, not a failure at send
//! time (issue 9, D10).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, spawn_app};

/// Net definitions with one forbidden callback URL, and where it is.
fn forbidden_nets() -> Vec<(Value, &'static str)> {
    vec![
        (
            json!({"transitions": [{"inputs": ["start"], "outputs": ["done"],
                "action": {"type": "notify", "url": "http://169.254.169.254/latest"}}]}),
            "body.transitions[0].action.url",
        ),
        (
            json!({"transitions": [{"inputs": ["start"], "outputs": ["done"],
                "action": {"type": "notify", "url": "http://[::ffff:169.254.169.254]/"}}]}),
            "body.transitions[0].action.url",
        ),
        (
            json!({"transitions": [
                {"inputs": ["start"], "outputs": ["a"]},
                {"inputs": ["a"], "outputs": ["b"],
                 "action": {"type": "create-color-group", "url": "http://[64:ff9b::a9fe:a9fe]/"}}]}),
            "body.transitions[1].action.url",
        ),
        (
            json!({"subnets": {"s": {"type": "success-failure", "notification_url": "http://[fe80::1]/x"}},
                "transitions": [{"inputs": ["s.success"], "outputs": ["done"]}]}),
            "body.subnets.s.notification_url",
        ),
        (
            json!({"subnets": {"s": {"type": "data-request", "url": "http://[2002:a9fe:a9fe::]/x"}},
                "transitions": [{"inputs": ["s.output"], "outputs": ["done"]}]}),
            "body.subnets.s.url",
        ),
    ]
}

#[tokio::test]
async fn a_forbidden_callback_url_is_refused_at_create() {
    let app = spawn_app().await;
    let before = app.dbsize();
    for (spec, at) in forbidden_nets() {
        let (s, e) = app.post("/v1/nets", spec.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{spec}: {e}");
        assert_eq!(e["code"], "net_invalid", "{spec}: {e}");
        assert_eq!(e["where"], at, "{spec}: {e}");
    }
    assert_eq!(before, app.dbsize(), "refused nets wrote nothing");
}

#[tokio::test]
async fn callback_urls_follow_the_deliveries_rules() {
    let app = spawn_app().await;
    for url in ["ftp://x/y", "http://", "not a url"] {
        let spec = json!({"transitions": [{"inputs": ["start"], "outputs": ["done"],
            "action": {"type": "notify", "url": url}}]});
        let (s, e) = app.post("/v1/nets", spec).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{url}: {e}");
        assert_eq!(e["where"], "body.transitions[0].action.url", "{url}: {e}");
    }
    // Short URLs to a plain host are fine (the old rule wanted 10 bytes).
    let spec = json!({"transitions": [{"inputs": ["start"], "outputs": ["done"],
        "action": {"type": "notify", "url": "http://h/"}}]});
    let (s, e) = app.post("/v1/nets", spec).await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
}

#[tokio::test]
async fn forbidden_callback_urls_are_accepted_with_allow_link_local() {
    let app = TestApp::builder()
        .with_config(|c| c.outbox.allow_link_local = true)
        .spawn()
        .await;
    for (spec, _) in forbidden_nets() {
        let (s, e) = app.post("/v1/nets", spec.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{spec}: {e}");
    }
}
