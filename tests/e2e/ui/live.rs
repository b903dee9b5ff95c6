//! Live updates: the SSE stream sends a topic's event after a change made
//! anywhere (here: through the JSON API), and the stream count is capped.

use std::time::Duration;

use reqwest::StatusCode;

use super::{FULL, open, seed_gates};
use crate::support::TestApp;

/// Open `/ui/events?topics=…` (with the session of a bearer token when given).
pub async fn stream(app: &TestApp, topics: &str) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(format!("{}/ui/events?topics={topics}", app.base));
    if let Some(t) = &app.token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

/// Read the stream until an event named `name` arrives (at most `limit`).
pub async fn next_event(resp: &mut reqwest::Response, name: &str, limit: Duration) -> bool {
    let want = format!("event: {name}\n");
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + limit;
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, resp.chunk()).await {
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if seen.contains(&want) {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn a_change_through_the_api_reaches_a_subscribed_page_as_an_event() {
    let app = open().await;
    seed_gates(&app).await;
    let mut events = stream(&app, "gates").await;
    assert_eq!(events.status(), StatusCode::OK);
    assert!(
        events
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    app.put(
        "/api/gates/team/web/testing",
        serde_json::json!({"state": "closed"}),
    )
    .await;
    assert!(
        next_event(&mut events, "gates", Duration::from_secs(5)).await,
        "no gates event after a change"
    );
    // A ticket queued is a change too.
    let (st, _) = app
        .put(
            "/api/gates?queue=true",
            serde_json::json!({"gates": {"team": {"api": "live"}}}),
        )
        .await;
    assert_eq!(st, 200);
    assert!(next_event(&mut events, "gates", Duration::from_secs(5)).await);
}

#[tokio::test]
async fn the_stream_needs_a_session_and_known_topics() {
    let app = TestApp::builder()
        .with_config(|c| c.api.api_tokens = vec![FULL.into()])
        .spawn()
        .await;
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/ui/events?topics=gates", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        stream(&app, "nothing-here").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        stream(&app, "gates-x y").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn streams_beyond_the_cap_get_503_and_a_closed_stream_frees_its_slot() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.api.ui_live_clients = 1;
            c.api.ui_live_interval = Duration::from_millis(50);
        })
        .spawn()
        .await;
    let first = stream(&app, "gates").await;
    assert_eq!(first.status(), StatusCode::OK);
    let second = stream(&app, "gates").await;
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(second.headers().contains_key("retry-after"));
    drop(first);
    crate::support::eventually(Duration::from_secs(5), || async {
        stream(&app, "gates").await.status() == StatusCode::OK
    })
    .await;
}

#[tokio::test]
async fn a_stream_ends_when_the_server_shuts_down() {
    let app = open().await;
    let mut events = stream(&app, "gates").await;
    assert_eq!(events.status(), StatusCode::OK);
    // Dropping the app fires its shutdown; the grace period is 5 s, the
    // stream must not wait for it.
    drop(app);
    let ended = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(Some(_)) = events.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the live stream outlived the shutdown");
}

#[tokio::test]
async fn a_resuming_page_gets_every_topic_at_once() {
    let app = open().await;
    let mut events = stream(&app, "gates&replay=1").await;
    assert_eq!(events.status(), StatusCode::OK);
    assert!(
        next_event(&mut events, "gates", Duration::from_secs(5)).await,
        "no replayed event"
    );
}
