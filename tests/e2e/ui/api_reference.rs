//! The API reference (`/ui/api`): the vendored Swagger UI reading the
//! OpenAPI document from `/ui/api/openapi.json` behind the console's
//! sign-in (the JSON API's `/openapi.json` wants a bearer token, not the
//! console's cookie); in a browser it draws every family's paths without
//! leaving loopback or breaking the content security policy.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::{Console, FULL, READ, with_tokens};
use crate::support::TestApp;
use crate::support::browser::Browser;

/// One path of each family (and of the platform) the reference must show.
const FAMILY_PATHS: &[&str] = &[
    "/api/gates",
    "/v1/deliveries",
    "/v1/nets",
    "/api/statemachines",
    "/v1/workflows",
    "/v1/transactions",
    "/openapi.json",
];

#[tokio::test]
async fn the_reference_reads_the_whole_document_through_the_console_session() {
    let app = with_tokens().await;
    let mut c = Console::new(&app);
    // Signed out: to the sign-in form, and no document.
    let page = c.get("/ui/api").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.header("location").starts_with("/ui/login"));
    let doc = c.get("/ui/api/openapi.json").await;
    assert_eq!(doc.status, StatusCode::SEE_OTHER);

    c.sign_in(READ).await;
    let page = c.get("/ui/api").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let html = &page.body;
    assert!(html.contains(r#"data-url="/ui/api/openapi.json""#));
    assert!(html.contains("/swagger-ui-bundle.js"));
    assert!(html.contains("/api-reference.js"));
    assert!(html.contains(r#"href="/ui/api" aria-current="page""#));
    assert!(html.contains("curl -X GET"));
    // The viewer and its starter are served, cacheable, same origin.
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "api-reference.js",
        "api-reference.css",
    ] {
        let href = html
            .split('"')
            .find(|s| s.ends_with(&format!("/{asset}")))
            .unwrap_or_else(|| panic!("{asset} not linked"));
        let a = c.get(href).await;
        assert_eq!(a.status, StatusCode::OK, "{asset}");
        assert!(a.header("cache-control").contains("immutable"));
    }

    // The cookie reads the document from the console's route...
    let doc = c.get("/ui/api/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK, "{}", doc.body);
    assert!(doc.header("content-type").starts_with("application/json"));
    let doc: Value = serde_json::from_str(&doc.body).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for p in FAMILY_PATHS {
        assert!(paths.contains_key(*p), "{p} missing from the document");
    }
    // ... the same document as the JSON API's, which wants a bearer token.
    let (st, api_doc) = app.get("/openapi.json").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(api_doc, doc);
    let cookie_only = c.get("/openapi.json").await;
    assert_eq!(cookie_only.status, StatusCode::UNAUTHORIZED);
    // Every path the server answers is in it: the page says how many.
    assert!(html.contains(&format!("({} paths)", paths.len())), "{html}");
}

#[tokio::test]
async fn an_open_console_shows_the_reference_too() {
    let app = super::open().await;
    let c = Console::new(&app);
    assert_eq!(c.get("/ui/api").await.status, StatusCode::OK);
    let doc = c.get("/ui/api/openapi.json").await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(
        !c.get("/ui/api")
            .await
            .body
            .contains("Authorization: Bearer")
    );
}

fn screenshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/ui-screenshots")
        .join(format!("{name}.png"))
}

/// Requests a page may make: loopback and inline data.
fn local(url: &str) -> bool {
    url.starts_with("data:")
        || url.starts_with("blob:")
        || url == "about:blank"
        || reqwest::Url::parse(url).is_ok_and(|u| {
            matches!(
                u.host_str(),
                Some("127.0.0.1") | Some("localhost") | Some("[::1]")
            )
        })
}

#[tokio::test]
async fn the_reference_draws_every_familys_paths_in_a_browser_without_leaving_loopback() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let app: TestApp = with_tokens().await;
    let page = browser.new_page().await;
    page.call(
        "Page.addScriptToEvaluateOnNewDocument",
        serde_json::json!({"source": "window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"}),
    )
    .await;
    // Sign in through the form, coming back to the reference.
    page.goto(&format!("{}/ui/api", app.base)).await;
    page.wait_for(
        "document.readyState === 'complete' && location.pathname === '/ui/login'",
        Duration::from_secs(10),
    )
    .await;
    page.eval(&format!(
        "document.getElementById('token').value = '{FULL}'; document.querySelector('form.login').submit(); true"
    ))
    .await;
    page.wait_for(
        "location.pathname === '/ui/api' && document.readyState === 'complete'",
        Duration::from_secs(10),
    )
    .await;

    // Swagger UI draws one block per operation of the document.
    let (_, doc) = app.get("/openapi.json").await;
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    page.wait_for(
        &format!("document.querySelectorAll('#swagger-ui .opblock').length === {operations}"),
        Duration::from_secs(20),
    )
    .await;
    let shown = page
        .eval("[...document.querySelectorAll('#swagger-ui .opblock-summary-path')].map(e => e.dataset.path)")
        .await;
    let shown: Vec<&str> = shown
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for p in FAMILY_PATHS {
        assert!(shown.contains(p), "{p} not drawn: {shown:?}");
    }
    // Open one operation: its parameters and responses render too.
    page.eval("document.querySelector('#swagger-ui .opblock-summary-control').click(); true")
        .await;
    page.wait_for(
        "document.querySelector('#swagger-ui .opblock.is-open .responses-wrapper') !== null",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        page.eval("window.__csp").await,
        serde_json::json!([]),
        "CSP violations on /ui/api"
    );

    for width in [1400, 400] {
        page.screenshot(width, &screenshot_path(&format!("api-rendered-{width}")))
            .await;
    }
    page.call(
        "Emulation.setEmulatedMedia",
        serde_json::json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
    )
    .await;
    page.screenshot(1400, &screenshot_path("api-rendered-dark-1400"))
        .await;

    let requests = page.requests();
    assert!(
        requests.iter().any(|u| u.ends_with("/ui/api/openapi.json")),
        "{requests:?}"
    );
    let remote: Vec<&String> = requests.iter().filter(|u| !local(u)).collect();
    assert!(remote.is_empty(), "requests left loopback: {remote:?}");
}
