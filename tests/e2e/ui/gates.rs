//! The gates board: the page shows the entities, and its actions change
//! what the JSON API answers.

use reqwest::StatusCode;

use switchyard_shared::families::gates::BuildWindows;

use super::{Console, open, seed_gates};
use crate::support::TestApp;

#[tokio::test]
async fn the_board_shows_groups_services_environments_why_closed_tickets_holidays_and_windows() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.families.gates.gate_windows = BuildWindows::parse_arg(
                r#"{"live": {"always": {"days_range": [0, 6], "hours_range": [0, 24]}}}"#,
            )
            .unwrap();
        })
        .spawn()
        .await;
    seed_gates(&app).await;
    app.post(
        "/api/gates/other/batch",
        serde_json::json!({"environments": ["prod"]}),
    )
    .await;
    app.put(
        "/api/gates/team/api/live",
        serde_json::json!({"state": "closed", "message": "db migration"}),
    )
    .await;
    let (_, t) = app
        .put(
            "/api/gates?queue=true",
            serde_json::json!({"gates": {"team": {"web": "testing"}}, "link": "https://ci.example/42"}),
        )
        .await;
    let ticket = t["ticket"]["id"].as_str().unwrap().to_owned();
    app.post(
        "/api/holidays",
        serde_json::json!({"holidays": [{"date": "2099-12-24", "reason": "Christmas", "environments": ["live"]}]}),
    )
    .await;

    let c = Console::new(&app);
    let page = c.get("/ui/gates?group=team").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = &page.body;
    // Tabs per group, the grid, why a gate is closed.
    assert!(html.contains(r#"href="/ui/gates?group=other""#), "{html}");
    assert!(html.contains(r#"data-gate="api/live""#));
    assert!(html.contains(r#"data-gate="web/testing""#));
    assert!(html.contains("by manual"));
    assert!(html.contains("db migration"));
    assert!(html.contains("by queue"));
    // The ticket with its link, and the holiday.
    assert!(html.contains(&format!(r#"data-ticket="{ticket}""#)));
    assert!(html.contains(r#"href="https://ci.example/42""#));
    assert!(html.contains("Christmas"));
    assert!(html.contains(r#"data-window="live""#));
    assert!(html.contains("Mon–Sun 00:00–24:00"), "{html}");
    assert!(html.contains("open now"));
    // Every toggle shows its API call.
    assert!(html.contains("curl -X PUT"));
    assert!(html.contains("/api/gates/team/api/live"));
    // The other tab.
    let other = c.get("/ui/gates?group=other").await;
    assert!(other.body.contains(r#"data-gate="batch/prod""#));
    // History of a gate.
    let hist = c.get("/ui/gates/team/api/live/history").await;
    assert_eq!(hist.status, StatusCode::OK);
    assert!(
        hist.body.contains("<table class=\"history\">"),
        "{}",
        hist.body
    );
}

#[tokio::test]
async fn toggling_and_releasing_through_the_console_changes_what_the_api_answers() {
    let app = open().await;
    seed_gates(&app).await;
    let c = Console::new(&app);
    let resp = c
        .post(
            "/ui/gates/team/web/live/state",
            "state=closed&message=freeze",
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.body);
    // The answer is the refreshed board.
    assert!(resp.body.contains(r#"data-gate="web/live""#));
    let (_, gate) = app.get("/api/gates/team/web/live").await;
    assert_eq!(gate["state"], "closed");
    assert_eq!(gate["message"], "freeze");
    let (_, hist) = app.get("/api/gates/team/web/live/history").await;
    assert_eq!(hist["history"][0]["actor"], "console", "{hist}");

    let (_, t) = app
        .put(
            "/api/gates?queue=true",
            serde_json::json!({"gates": {"team": {"api": "testing"}}}),
        )
        .await;
    let id = t["ticket"]["id"].as_str().unwrap().to_owned();
    let resp = c
        .post(&format!("/ui/gates/tickets/{id}/release?group=team"), "")
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.body);
    let (st, _) = app.get(&format!("/api/tickets/{id}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let bad = c.post("/ui/gates/team/web/live/state", "state=ajar").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("state must be open or closed"));
}
