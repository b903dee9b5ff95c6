//! The console in a real browser (headless Chromium over the DevTools
//! protocol, `support::browser`): sign in through the form, load every page
//! of [`PAGES`], check that no request leaves loopback and that no content
//! security policy violation happens, toggle a gate by clicking its button
//! and see it in the JSON API, see a change made through the JSON API
//! arrive without a reload, and write screenshots of each page at 1400 and
//! 400 px to `target/ui-screenshots/<page>-<width>.png` (and in dark mode
//! to `<page>-dark-1400.png`).
//!
//! Skipped (with a message) when Chromium is not installed, unless
//! `SWITCHYARD_TEST_BROWSER=1` (deploy/test.sh sets it).

use std::path::PathBuf;
use std::time::Duration;

use switchyard_shared::families::gates::BuildWindows;

use crate::support::TestApp;
use crate::support::browser::{Browser, Page};

use super::{FULL, READ, seed_gates};

/// Every console page the browser test loads: (screenshot name, path).
/// **A family with pages adds its own here** (and its entities in [`seed`]).
pub const PAGES: &[(&str, &str)] = &[
    ("login", "/ui/login"),
    ("overview", "/ui/"),
    ("gates", "/ui/gates?group=team"),
    ("transactions", "/ui/transactions"),
    ("transaction", "/ui/transactions/newest?status=10"),
    ("transaction-open", "/ui/transactions/newest?status=1"),
    ("api", "/ui/api"),
    ("deliveries", "/ui/deliveries"),
    ("delivery", "/ui/deliveries/find?q=order-42-created"),
    ("nets", "/ui/nets"),
    ("net", "/ui/nets/orders"),
    ("machines", "/ui/machines"),
    ("machine", "/ui/machines/orders"),
    ("workflows", "/ui/workflows"),
    ("workflow", "/ui/workflows/newest?status=running"),
    ("workflow-error", "/ui/workflows/newest?status=error"),
];

/// The widths every page is screenshot at.
const WIDTHS: [u32; 2] = [1400, 400];

/// Entities for the pages to show.
async fn seed(app: &TestApp) {
    seed_gates(app).await;
    super::transactions::seed(app).await;
    super::deliveries::seed(app).await;
    super::nets::seed(app).await;
    super::machines::seed(app).await;
    super::workflows::seed(app).await;
    app.post(
        "/api/gates/platform/deployer",
        serde_json::json!({"environments": ["develop", "staging", "live"]}),
    )
    .await;
    app.put(
        "/api/gates/team/api/testing",
        serde_json::json!({"state": "closed", "message": "flaky integration tests, looking into it"}),
    )
    .await;
    app.put(
        "/api/gates?queue=true",
        serde_json::json!({"gates": {"team": {"web": ["live"]}}, "link": "https://ci.example/builds/1234"}),
    )
    .await;
    app.put(
        "/api/gates?queue=true",
        serde_json::json!({"gates": {"team": {"web": ["live"]}}}),
    )
    .await;
    app.post(
        "/api/holidays",
        serde_json::json!({"holidays": [{"date": "2099-12-24", "reason": "Christmas Eve", "environments": ["live"]}]}),
    )
    .await;
}

/// Requests a page may make: this host (loopback) and inline data.
fn local(url: &str) -> bool {
    if url.starts_with("data:") || url.starts_with("blob:") || url == "about:blank" {
        return true;
    }
    reqwest::Url::parse(url).is_ok_and(|u| {
        matches!(
            u.host_str(),
            Some("127.0.0.1") | Some("localhost") | Some("[::1]")
        )
    })
}

fn screenshot_path(name: &str, width: u32) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/ui-screenshots")
        .join(format!("{name}-{width}.png"))
}

/// Record content-security-policy violations of every document the tab loads.
async fn watch_csp(page: &Page<'_>) {
    page.call(
        "Page.addScriptToEvaluateOnNewDocument",
        serde_json::json!({"source": "window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"}),
    )
    .await;
}

/// Load `path` and wait until htmx has processed it.
async fn open(page: &Page<'_>, app: &TestApp, path: &str) {
    page.goto(&format!("{}{path}", app.base)).await;
    page.wait_for(
        "document.readyState === 'complete' && (location.pathname === '/ui/login' || typeof htmx !== 'undefined')",
        Duration::from_secs(10),
    )
    .await;
    // Graphs (`m::graph`) are drawn once the vendored Graphviz has loaded.
    page.wait_for(
        "Array.from(document.querySelectorAll('figure.graph')).every(f => f.dataset.drawn || f.querySelector('.graph-error'))",
        Duration::from_secs(20),
    )
    .await;
    let failed = page
        .eval("document.querySelectorAll('.graph-error').length")
        .await;
    assert_eq!(failed, 0, "a graph was not drawn on {path}");
}

#[tokio::test]
async fn the_console_works_in_a_browser_without_leaving_loopback() {
    let Some(browser) = Browser::launch().await else {
        return;
    };
    let app = TestApp::builder()
        .with_config(|c| {
            c.api.api_tokens = vec![FULL.into()];
            c.api.api_read_tokens = vec![READ.into()];
            c.api.ui_live_interval = Duration::from_millis(100);
            c.families.transactions.transactions_tenants = super::transactions::tenants();
            c.families.gates.gate_windows = BuildWindows::parse_arg(
                r#"{"live": {"office hours": {"days_range": [0, 4], "hours_range": [8, 18]}}}"#,
            )
            .unwrap();
        })
        .spawn()
        .await;
    seed(&app).await;
    let page = browser.new_page().await;
    watch_csp(&page).await;

    // Sign in through the form.
    open(&page, &app, "/ui/gates").await;
    assert_eq!(page.eval("location.pathname").await, "/ui/login");
    page.eval(&format!(
        "document.getElementById('token').value = '{FULL}'; document.querySelector('form.login').submit(); true"
    ))
    .await;
    page.wait_for(
        "location.pathname === '/ui/gates' && document.readyState === 'complete'",
        Duration::from_secs(10),
    )
    .await;

    // Every page, at both widths.
    for (name, path) in PAGES {
        open(&page, &app, path).await;
        let csp = page.eval("window.__csp").await;
        assert_eq!(csp, serde_json::json!([]), "CSP violations on {path}");
        for width in WIDTHS {
            page.screenshot(width, &screenshot_path(name, width)).await;
        }
        // And once as the OS's dark mode shows it.
        page.call(
            "Emulation.setEmulatedMedia",
            serde_json::json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
        )
        .await;
        page.screenshot(1400, &screenshot_path(&format!("{name}-dark"), 1400))
            .await;
        page.call(
            "Emulation.setEmulatedMedia",
            serde_json::json!({"features": []}),
        )
        .await;
    }

    // The gates board, with its live connection open.
    open(&page, &app, "/ui/gates?group=team").await;
    page.wait_for(
        "document.querySelector('[sse-connect]').dataset.live === 'open'",
        Duration::from_secs(10),
    )
    .await;
    page.eval("window.__stay = 42").await;
    // Start typing a message for api/live.
    let input = "document.getElementById('message-team-api-live')";
    page.eval(&format!("{input}.value = 'from the browser'"))
        .await;

    // A change through the JSON API shows up without a reload, and keeps
    // what is being typed.
    let (st, _) = app
        .put(
            "/api/gates/team/api/testing",
            serde_json::json!({"state": "open"}),
        )
        .await;
    assert_eq!(st, 200);
    page.wait_for(
        "document.querySelector('td[data-gate=\"api/testing\"] .badge').textContent === 'open' \
         && !document.getElementById('board').matches('.htmx-swapping, .htmx-settling')",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(page.eval("window.__stay").await, 42, "the page reloaded");
    assert_eq!(
        page.eval(&format!("{input}.value")).await,
        "from the browser"
    );

    // A hidden tab closes its stream; shown again, it reconnects and
    // catches up (no HTTP/1.1 connection is held by background tabs).
    let visibility = |hidden: bool| {
        format!(
            "Object.defineProperty(document, 'hidden', {{configurable: true, get: () => {hidden}}}); \
             document.dispatchEvent(new Event('visibilitychange')); true"
        )
    };
    page.eval(&visibility(true)).await;
    page.wait_for(
        "document.querySelector('[sse-connect]').dataset.live === 'paused'",
        Duration::from_secs(5),
    )
    .await;
    let (st, _) = app
        .put(
            "/api/gates/team/web/testing",
            serde_json::json!({"state": "closed"}),
        )
        .await;
    assert_eq!(st, 200);
    page.eval(&visibility(false)).await;
    page.wait_for(
        "document.querySelector('[sse-connect]').dataset.live === 'open' \
         && document.querySelector('td[data-gate=\"web/testing\"] .badge').textContent === 'closed' \
         && !document.getElementById('board').matches('.htmx-swapping, .htmx-settling')",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(page.eval("window.__stay").await, 42, "the page reloaded");

    // Close api/live by clicking its button; the JSON API sees it, with the message.
    page.eval(
        "document.querySelector('td[data-gate=\"api/live\"] button[data-toggle=\"closed\"]').click(); true",
    )
    .await;
    crate::support::eventually(Duration::from_secs(10), || async {
        let gate = app.get("/api/gates/team/api/live").await.1;
        gate["manual_state"] == "closed" && gate["message"] == "from the browser"
    })
    .await;
    page.wait_for(
        "document.querySelector('td[data-gate=\"api/live\"] button[data-toggle]').dataset.toggle === 'open'",
        Duration::from_secs(10),
    )
    .await;
    page.wait_for(&format!("{input}.value === ''"), Duration::from_secs(5))
        .await;
    let (_, hist) = app.get("/api/gates/team/api/live/history").await;
    assert_eq!(hist["history"][0]["actor"], "console:token-1", "{hist}");

    // A net's marking and graph follow a token put through the JSON API.
    super::nets::live_in_browser(&page, &app).await;

    // Nothing was requested from another host.
    let requests = page.requests();
    assert!(requests.len() > PAGES.len(), "{requests:?}");
    let remote: Vec<&String> = requests.iter().filter(|u| !local(u)).collect();
    assert!(remote.is_empty(), "requests left loopback: {remote:?}");
}
