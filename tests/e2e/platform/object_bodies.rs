//! Every JSON body is an object: an array (which serde would bind to a
//! struct's fields by position) or a scalar is refused with 400
//! `json_invalid` at `body`, and nothing changes.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::spawn_app;

#[tokio::test]
async fn array_and_scalar_bodies_are_refused_on_every_body_endpoint() {
    let app = spawn_app().await;
    app.gates().create("x", "g", &["a", "b"]).await;
    let (s, b) = app
        .put(
            "/v1/nets/k1",
            json!({"transitions": [{"inputs": ["start"], "outputs": ["end"]}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    app.machines()
        .create(json!({"id": "M", "name": "m", "states": [{"id": "s", "name": "S", "next": []}]}))
        .await;
    let before = app.snapshot();

    let cases: Vec<(Method, &str, &str)> = vec![
        (Method::PUT, "/api/services/x", r#"["a"]"#),
        (Method::PUT, "/api/services/x", "[]"),
        (Method::POST, "/api/services/y", r#"["g", ["a"]]"#),
        (
            Method::PUT,
            "/api/services/x/a",
            r#"["closed", "by array"]"#,
        ),
        (Method::PUT, "/api/services", r#"[{"x": ["a"]}]"#),
        (Method::PUT, "/api/gates", r#"[{"g": {"x": ["a"]}}]"#),
        (Method::POST, "/api/holidays", "[[]]"),
        (
            Method::POST,
            "/v1/deliveries",
            r#"["http://127.0.0.1:9/x", "PUT"]"#,
        ),
        (Method::POST, "/v1/deliveries", r#""http://127.0.0.1:9/x""#),
        (
            Method::POST,
            "/api/statemachines",
            r#"["ARR1", "n", [["s", "S"]]]"#,
        ),
        (
            Method::POST,
            "/api/setup/statemachine/new",
            r#"["ARR2", "n", [["s", "S"]]]"#,
        ),
        (
            Method::POST,
            "/api/statemachines/M/entities/e/transitions",
            r#"["s"]"#,
        ),
        (
            Method::POST,
            "/api/statemachines/M/transitions",
            r#"[[{"entity": "e", "to": "s"}]]"#,
        ),
        (Method::POST, "/v1/nets", r#"[{"inputs": ["a"]}]"#),
        (Method::PUT, "/v1/nets/k2", r#"[{"inputs": ["a"]}]"#),
        (Method::PATCH, "/v1/nets/k1", "[false]"),
        (
            Method::PUT,
            "/v1/nets/k1/places/start/tokens?color=1&color_group=1",
            r#"[1, 2]"#,
        ),
        (Method::PUT, "/v1/nets/k1/places/start/tokens/1", "7"),
        (Method::POST, "/v1/nets/k1/places/start/tokens", r#"["a"]"#),
        (Method::POST, "/v1/nets/k1/places/start/tokens", "null"),
    ];
    for (method, path, body) in cases {
        let (s, b) = app.call(method.clone(), path, Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {path} {body}: {b}");
        assert_eq!(b["code"], "json_invalid", "{method} {path} {body}: {b}");
        assert_eq!(b["where"], "body", "{method} {path} {body}: {b}");
    }
    assert_eq!(
        app.snapshot(),
        before,
        "no array or scalar body changed anything"
    );
    let (s, b) = app.get("/api/services/x").await;
    assert_eq!(
        (s, &b["name"]),
        (StatusCode::OK, &json!("x")),
        "not renamed: {b}"
    );
}

#[tokio::test]
async fn an_empty_token_body_is_still_empty_data() {
    let app = spawn_app().await;
    let (s, b) = app
        .put(
            "/v1/nets/k",
            json!({"transitions": [{"inputs": ["start"], "outputs": ["end"]}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app
        .call(Method::POST, "/v1/nets/k/places/start/tokens", Some("  "))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}
