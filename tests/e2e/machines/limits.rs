//! Input limits of the state-machines family: name lengths, action fields,
//! entity ids (`.`, `..`, control characters) and event ids (control
//! characters, bidirectional overrides), each refused with 400 and the
//! field in `where`.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::provisioning;
use crate::support::{TestApp, spawn_app};

/// Send a request with its path exactly as given: HTTP clients normalise
/// `%2e%2e` segments away before sending, as the URL standard says.
async fn raw(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let host = app.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = app
        .token
        .as_ref()
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    (
        StatusCode::from_u16(status).unwrap(),
        serde_json::from_str(rest).unwrap_or(Value::String(rest.into())),
    )
}

fn assert_refused(got: (StatusCode, Value), code: &str, at: &str, what: &str) {
    let (s, b) = got;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{what}: {b}");
    assert_eq!(
        (b["code"].as_str(), b["where"].as_str()),
        (Some(code), Some(at)),
        "{what}: {b}"
    );
}

#[tokio::test]
async fn machine_and_state_names_are_at_most_200_characters() {
    let app = spawn_app().await;
    let mut def = provisioning();
    def["name"] = json!("é".repeat(200));
    def["states"][1]["name"] = json!("n".repeat(200));
    app.machines().create(def.clone()).await;

    let mut long = def.clone();
    long["id"] = json!("LONG1");
    long["name"] = json!("x".repeat(201));
    assert_refused(
        app.machines().post(long).await,
        "statemachine_invalid",
        "body.name",
        "name",
    );
    let mut long = def.clone();
    long["id"] = json!("LONG2");
    long["states"][1]["name"] = json!("x".repeat(1_000_000 / 20));
    assert_refused(
        app.machines().post(long).await,
        "statemachine_invalid",
        "body.states[1].name",
        "state name",
    );
}

#[tokio::test]
async fn threshold_ids_and_action_fields_have_limits() {
    let app = spawn_app().await;
    let threshold = |id: Value, action: Value| {
        let mut def = provisioning();
        def["thresholds"] =
            json!([{"id": id, "state": "1", "kind": "count_above", "value": 1, "action": action}]);
        def
    };
    let ok_action = json!({"type": "webhook", "url": "http://127.0.0.1:9/x"});
    for (def, at) in [
        (
            threshold(json!("t".repeat(101)), ok_action.clone()),
            "body.thresholds[0].id",
        ),
        (
            threshold(
                json!("t"),
                json!({"type": "w".repeat(10_000), "url": "http://127.0.0.1:9/x"}),
            ),
            "body.thresholds[0].action.type",
        ),
        (
            threshold(
                json!("t"),
                json!({"type": "webhook", "url": format!("http://127.0.0.1:9/{}", "u".repeat(2048))}),
            ),
            "body.thresholds[0].action.url",
        ),
    ] {
        assert_refused(
            app.machines().post(def).await,
            "statemachine_invalid",
            at,
            at,
        );
    }
    let mut def = threshold(json!("t".repeat(100)), ok_action);
    def["thresholds"][0]["action"]["url"] =
        json!(format!("http://127.0.0.1:9/{}", "u".repeat(2048 - 19)));
    app.machines().create(def).await;
}

#[tokio::test]
async fn dot_segments_are_not_entity_ids() {
    let app = spawn_app().await;
    app.machines().create(provisioning()).await;
    for seg in ["%2e", "%2e%2e", ".%2e"] {
        let path = format!("/api/statemachines/PROVISIONING/entities/{seg}/transitions");
        let got = raw(&app, "POST", &path, Some(json!({"to": "1"}))).await;
        assert_refused(got, "entity_invalid", "path.entity", seg);
        let path = format!("/api/statemachines/PROVISIONING/entities/{seg}");
        assert_refused(
            raw(&app, "GET", &path, None).await,
            "entity_invalid",
            "path.entity",
            seg,
        );
    }
    for entity in [".", ".."] {
        let got = app
            .post(
                "/api/statemachines/PROVISIONING/transitions",
                json!({"events": [{"entity": "ok", "to": "1"}, {"entity": entity, "to": "1"}]}),
            )
            .await;
        assert_refused(got, "entity_invalid", "body.events[1].entity", entity);
    }
    // Dots inside an id are fine.
    let (s, b) = app
        .machines()
        .transition("PROVISIONING", "a.b..c", "1")
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn control_characters_are_not_entity_ids() {
    let app = spawn_app().await;
    app.machines().create(provisioning()).await;
    for seg in ["a%00", "a%0Ab", "a%7F", "a%E2%80%AEb", "a%E2%81%A6"] {
        let path = format!("/api/statemachines/PROVISIONING/entities/{seg}/transitions");
        let got = raw(&app, "POST", &path, Some(json!({"to": "1"}))).await;
        assert_refused(got, "entity_invalid", "path.entity", seg);
    }
    let got = app
        .post(
            "/api/statemachines/PROVISIONING/transitions",
            json!({"events": [{"entity": "a\r\nb", "to": "1"}]}),
        )
        .await;
    assert_refused(got, "entity_invalid", "body.events[0].entity", "batch");
}

#[tokio::test]
async fn control_characters_and_bidi_overrides_are_not_event_ids() {
    let app = spawn_app().await;
    app.machines().create(provisioning()).await;
    for id in [
        "a\u{0}",
        "a\r\nb",
        "\t",
        "a\u{7f}",
        "a\u{202a}",
        "a\u{202e}b",
        "a\u{2066}",
        "a\u{2069}",
    ] {
        let got = app
            .post(
                "/api/statemachines/PROVISIONING/entities/e/transitions",
                json!({"to": "1", "event_id": id}),
            )
            .await;
        assert_refused(got, "event_id_invalid", "body.event_id", &format!("{id:?}"));
        let got = app
            .post(
                "/api/statemachines/PROVISIONING/transitions",
                json!({"events": [{"entity": "e", "to": "1", "event_id": id}]}),
            )
            .await;
        assert_refused(
            got,
            "event_id_invalid",
            "body.events[0].event_id",
            &format!("{id:?}"),
        );
    }
    let (s, _) = app.get("/api/statemachines/PROVISIONING/entities/e").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nothing was applied");
    let (s, b) = app
        .post(
            "/api/statemachines/PROVISIONING/entities/e/transitions",
            json!({"to": "1", "event_id": "order 7 / é ✓"}),
        )
        .await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("applied")),
        "{b}"
    );
}
