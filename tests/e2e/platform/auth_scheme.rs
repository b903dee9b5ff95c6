//! Bearer auth interoperability: a 401 says which scheme it wants
//! (`WWW-Authenticate: Bearer`, RFC 6750), and the scheme is matched without
//! regard to case (RFC 7235).

use reqwest::StatusCode;

use crate::support::TestApp;

async fn app() -> TestApp {
    TestApp::builder()
        .with_config(|c| c.api.api_tokens = vec!["s3cret".into()])
        .spawn()
        .await
}

#[tokio::test]
async fn unauthorized_answers_name_the_bearer_scheme() {
    let app = app().await;
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic czNjcmV0"),
        Some("s3cret"),
    ] {
        let mut req = app.client.get(format!("{}/api/services", app.base));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(
            r.headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer"),
            "{auth:?}"
        );
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized");
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = app().await;
    for auth in [
        "Bearer s3cret",
        "bearer s3cret",
        "BEARER s3cret",
        "bEaReR  s3cret",
    ] {
        let r = app
            .client
            .get(format!("{}/api/services", app.base))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{auth}");
        assert!(r.headers().get("www-authenticate").is_none(), "{auth}");
    }
    for auth in ["Bearers3cret", "Bear s3cret", "bearer s3cretx"] {
        let r = app
            .client
            .get(format!("{}/api/services", app.base))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth}");
    }
}
