//! Bad input gets a 4xx JSON body saying what and where; state is unchanged.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::spawn_app;

fn assert_error(status: StatusCode, body: &Value, want: StatusCode) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["status"], "error", "{body}");
    assert!(
        body["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    assert!(body["code"].as_str().is_some(), "{body}");
}

#[tokio::test]
async fn bad_requests_are_4xx_with_a_reason_and_change_nothing() {
    let app = spawn_app().await;
    app.gates()
        .create("awesome", "team12", &["live", "dev"])
        .await;
    let (_, b) = app
        .put(
            "/api/services?queue=true",
            json!({"services": {"awesome": ["dev"]}}),
        )
        .await;
    assert_eq!(b["status"], "ok");
    let before = app.snapshot();

    let big = format!(
        r#"{{"group": "g", "environments": ["{}"]}}"#,
        "x".repeat(70 * 1024)
    );
    let cases: Vec<(Method, &str, String, StatusCode, Option<&str>, Option<&str>)> = vec![
        // (method, path, body, status, reason prefix, where)
        (Method::POST, "/api/services/new", "{not json".into(), StatusCode::BAD_REQUEST, Some("Json was not valid"), None),
        (Method::POST, "/api/services/new", "".into(), StatusCode::BAD_REQUEST, Some("Json was not valid"), None),
        (Method::POST, "/api/services/new", r#"{"group": "g", "environments": "live"}"#.into(), StatusCode::BAD_REQUEST,
            Some("Your json contains invalid information."), Some("body.environments")),
        (Method::POST, "/api/services/new", r#"{"group": "g", "environments": []}"#.into(), StatusCode::BAD_REQUEST,
            Some("Your json contains invalid information. Invalid environments."), Some("body.environments")),
        (Method::POST, "/api/services/new", r#"{"group": "g", "environments": ["a", "a"]}"#.into(), StatusCode::BAD_REQUEST,
            Some("Your json contains invalid information. Invalid environments."), Some("body.environments[1]")),
        (Method::POST, "/api/services/new", r#"{"environments": ["a"]}"#.into(), StatusCode::BAD_REQUEST,
            Some("Your json contains invalid information. Invalid group."), Some("body.group")),
        (Method::POST, "/api/services/new", r#"{"group": "g", "environments": ["a"], "colour": 1}"#.into(), StatusCode::BAD_REQUEST,
            Some("Your json contains invalid information. unknown field `colour`"), Some("body.colour")),
        (Method::POST, "/api/services/zzz.zzz", r#"{"group": "g", "environments": ["a"]}"#.into(), StatusCode::BAD_REQUEST,
            Some("Gate name not valid. Should not empty or contains dots"), Some("path.service")),
        (Method::POST, "/api/services/new", r#"{"group": "g", "environments": ["a.b"]}"#.into(), StatusCode::BAD_REQUEST,
            Some("Your json contains invalid information. Invalid environments. Gate name not valid"), Some("body.environments[0]")),
        (Method::POST, "/api/services/new", r#"{"group": "g.h", "environments": ["a"]}"#.into(), StatusCode::BAD_REQUEST,
            Some("Gate name not valid"), Some("body.group")),
        (Method::POST, "/api/services/new", r#"{"group": "g", "environments": ["a:b"]}"#.into(), StatusCode::BAD_REQUEST,
            None, Some("body.environments[0]")),
        (Method::POST, "/api/services/new", big, StatusCode::PAYLOAD_TOO_LARGE, None, None),
        (Method::POST, "/api/services/awesome", r#"{"group": "g", "environments": ["a"]}"#.into(), StatusCode::BAD_REQUEST,
            Some("Gate with this name already exists"), None),
        (Method::PUT, "/api/services/awesome/live", r#"{"state": 1}"#.into(), StatusCode::BAD_REQUEST,
            Some("Your json contains invalid information."), Some("body.state")),
        (Method::PUT, "/api/services/awesome/live", r#"{"state": "shut"}"#.into(), StatusCode::BAD_REQUEST,
            Some("state must be open or closed"), Some("body.state")),
        (Method::PUT, "/api/services/awesome/live", r#"{}"#.into(), StatusCode::BAD_REQUEST, None, Some("body")),
        (Method::PUT, "/api/services/awesome/live", format!(r#"{{"message": "{}"}}"#, "m".repeat(5000)), StatusCode::BAD_REQUEST,
            None, Some("body.message")),
        (Method::PUT, "/api/services", r#"{"services": {}}"#.into(), StatusCode::BAD_REQUEST,
            Some("Your json contains invalid information. Could not find gates"), None),
        (Method::PUT, "/api/services", r#"{"gates": {}}"#.into(), StatusCode::BAD_REQUEST,
            Some("Your json contains invalid information."), None),
        (Method::PUT, "/api/services", r#"{"services": {"awesome": [1]}}"#.into(), StatusCode::BAD_REQUEST,
            Some("Your json contains invalid information."), Some("body.services.awesome")),
        (Method::PUT, "/api/services", r#"{"services": {"awesome": []}}"#.into(), StatusCode::BAD_REQUEST,
            Some("Your json contains invalid information. Invalid environments."), None),
        (Method::PUT, "/api/services", r#"{"services": {"awesome": ["live"]}, "ticket": "../x"}"#.into(), StatusCode::BAD_REQUEST,
            None, Some("body.ticket")),
        (Method::PUT, "/api/services", r#"{"services": {"awesome": ["live"]}, "ticket": 5}"#.into(), StatusCode::BAD_REQUEST,
            None, Some("body.ticket")),
        (Method::PUT, "/api/services?queue=maybe", r#"{"services": {"awesome": ["live"]}}"#.into(), StatusCode::BAD_REQUEST,
            None, Some("query.queue")),
        (Method::PUT, "/api/services?queue=", r#"{"services": {"awesome": ["live"]}, "ticket": "00000000-0000-0000-0000-000000000000"}"#.into(),
            StatusCode::BAD_REQUEST, Some("queue must be true or false"), Some("query.queue")),
        (Method::PUT, "/api/services/awesome", r#"{"name": "a.b"}"#.into(), StatusCode::BAD_REQUEST, Some("Gate name not valid"), Some("body.name")),
        (Method::PUT, "/api/services/awesome", r#"{"environments": 3}"#.into(), StatusCode::BAD_REQUEST, None, Some("body.environments")),
        (Method::PUT, "/api/services/awesome", r#"{"environments": {"live": {"state": "x"}}}"#.into(), StatusCode::BAD_REQUEST,
            Some("state must be open or closed"), Some("body.environments.live.state")),
        (Method::POST, "/api/holidays", r#"{"holidays": [{"date": "24.12.2026", "environments": ["live"]}]}"#.into(), StatusCode::BAD_REQUEST,
            None, Some("body.holidays[0].date")),
        (Method::POST, "/api/holidays", r#"{"holiday": []}"#.into(), StatusCode::BAD_REQUEST, None, Some("body.holiday")),
        (Method::GET, "/api/services/awesome/live/history?limit=abc", String::new(), StatusCode::BAD_REQUEST, None, Some("query")),
        (Method::GET, "/api/nothing-here", String::new(), StatusCode::NOT_FOUND, None, None),
        (Method::PATCH, "/api/services/awesome", "{}".into(), StatusCode::METHOD_NOT_ALLOWED, None, None),
    ];
    for (method, path, body, want, reason, location) in cases {
        let (s, b) = app.call(method.clone(), path, Some(&body)).await;
        let ctx = format!(
            "{method} {path} {}",
            &body.chars().take(80).collect::<String>()
        );
        assert_error(s, &b, want);
        if let Some(r) = reason {
            assert!(b["reason"].as_str().unwrap().starts_with(r), "{ctx}: {b}");
        }
        if let Some(w) = location {
            assert_eq!(b["where"].as_str(), Some(w), "{ctx}: {b}");
        }
    }
    assert_eq!(app.snapshot(), before, "no bad request changed anything");
}

#[tokio::test]
async fn too_many_gates_in_one_request_is_refused() {
    let app = spawn_app().await;
    let envs: Vec<String> = (0..65).map(|i| format!("e{i}")).collect();
    let (s, b) = app
        .gates()
        .test_and_set(json!({"services": {"a": envs}}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b["reason"].as_str().unwrap().contains("at most 64"), "{b}");
}

#[tokio::test]
async fn framework_rejections_are_json_too() {
    let app = spawn_app().await;
    let (s, b) = app.get("/api/services/%FF").await;
    assert!(s.is_client_error(), "{s}");
    assert_eq!(b["status"], "error", "{b}");
    assert!(b["reason"].as_str().is_some_and(|r| !r.is_empty()), "{b}");
}
