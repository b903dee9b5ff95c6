//! Platform pages: the redirect, assets and their headers, the overview.

use reqwest::StatusCode;

use super::{Console, open, seed_gates};

/// The versioned asset URLs a page links.
fn asset_urls(html: &str) -> Vec<String> {
    html.split('"')
        .filter(|s| s.starts_with("/ui/assets/"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_root_redirects_to_the_console() {
    let app = open().await;
    let c = Console::new(&app);
    for path in ["/", "/ui"] {
        let page = c.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.header("location"), "/ui/");
    }
}

#[tokio::test]
async fn assets_are_served_with_their_types_long_caching_and_a_strict_csp() {
    let app = open().await;
    let c = Console::new(&app);
    let page = c.get("/ui/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header("content-type").starts_with("text/html"));
    let csp = page.header("content-security-policy");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(page.header("x-frame-options"), "DENY");
    // Nothing is loaded from another host.
    for attr in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!page.body.contains(attr), "{attr} in {}", page.body);
    }
    let urls = asset_urls(&page.body);
    let want = [
        ("htmx.min.js", "text/javascript"),
        ("sse.min.js", "text/javascript"),
        ("console.js", "text/javascript"),
        ("simple.min.css", "text/css"),
        ("console.css", "text/css"),
    ];
    for (file, ty) in want {
        let url = urls
            .iter()
            .find(|u| u.ends_with(&format!("/{file}")))
            .unwrap_or_else(|| panic!("{file} not linked"));
        let asset = c.get(url).await;
        assert_eq!(asset.status, StatusCode::OK, "{url}");
        assert!(asset.header("content-type").starts_with(ty), "{url}");
        assert!(asset.header("cache-control").contains("immutable"), "{url}");
        assert!(asset.body.len() > 100, "{url}");
    }
    // Another version of the same file is not served (the path is the cache key).
    let stale = c.get("/ui/assets/000000000000/htmx.min.js").await;
    assert_eq!(stale.status, StatusCode::NOT_FOUND);
    assert!(stale.header("content-type").starts_with("text/html"));
}

#[tokio::test]
async fn the_overview_lists_the_families_with_their_counts() {
    let app = open().await;
    seed_gates(&app).await;
    app.put(
        "/api/gates/team/api/live",
        serde_json::json!({"state": "closed"}),
    )
    .await;
    let c = Console::new(&app);
    let page = c.get("/ui/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(r#"data-section="gates""#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"href="/ui/gates""#));
    assert!(
        page.body.contains("<dt>services</dt><dd>2</dd>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("<dt>closed</dt><dd>1</dd>"),
        "{}",
        page.body
    );
    // The nav links the API reference.
    assert!(page.body.contains(r#"href="/ui/api""#));
    // The live region of the overview and its fragment.
    assert!(page.body.contains("sse-connect=\"/ui/events?topics="));
    let tiles = c.get("/ui/overview").await;
    assert_eq!(tiles.status, StatusCode::OK);
    assert!(tiles.body.contains(r#"data-section="gates""#));
}

#[tokio::test]
async fn an_unknown_console_page_is_an_html_404() {
    let app = open().await;
    let page = Console::new(&app).get("/ui/no-such-page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(page.body.contains("error-reason"));
}
