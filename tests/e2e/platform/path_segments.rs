//! A path parameter that does not percent-decode to UTF-8 is refused once,
//! by the platform, for every family: 400 `path_invalid`, `where:
//! "path.<param>"`.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::spawn_app;

#[tokio::test]
async fn path_parameters_that_are_not_utf8_are_named() {
    let app = spawn_app().await;
    let before = app.snapshot();
    let cases = [
        (Method::GET, "/api/gates/%FF/x", "path.group"),
        (Method::GET, "/api/gates/g/%C0%AF", "path.service"),
        (Method::GET, "/api/services/%FF", "path.service"),
        (Method::PUT, "/api/services/s/%FE%FF", "path.env"),
        (Method::GET, "/api/tickets/%80", "path.id"),
        (Method::GET, "/v1/nets/%FF", "path.id"),
        (Method::PUT, "/v1/nets/k/places/%FF/tokens/1", "path.place"),
        (Method::GET, "/api/statemachines/%FF", "path.sm"),
        (
            Method::POST,
            "/api/statemachines/M/entities/%C0%AF/transitions",
            "path.entity",
        ),
        (Method::GET, "/v1/deliveries/%FF", "path.id"),
    ];
    for (method, path, at) in cases {
        let (s, b) = app.call(method.clone(), path, Some("{}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{method} {path}: {b}");
        assert_eq!(b["code"], "path_invalid", "{method} {path}: {b}");
        assert_eq!(b["where"], at, "{method} {path}: {b}");
    }
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn percent_encoded_utf8_in_a_path_is_still_decoded() {
    let app = spawn_app().await;
    // é is valid UTF-8: it reaches the handler, which judges the name.
    let (s, b) = app.get("/api/gates/%C3%A9/x").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(
        (&b["code"], &b["where"]),
        (&json!("name_invalid"), &json!("path.group")),
        "{b}"
    );
}
