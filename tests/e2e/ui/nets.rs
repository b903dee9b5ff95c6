//! The nets pages: the list, a net's page (its DOT for the graph, the
//! marking by colour with groups, what transitions wait for, callbacks),
//! pause/resume and putting a token change what the JSON API answers; a
//! read-only token sees but cannot act; bad input is a readable 4xx.

use reqwest::StatusCode;
use serde_json::{Value, json};

use std::time::Duration;

use super::live::{next_event, stream};
use super::{Console, FULL, READ, open, with_tokens};
use crate::support::browser::Page;
use crate::support::{Receiver, TestApp};

/// The colours of the tokens in `place` of net `key`, as the JSON API shows them.
async fn colours(app: &TestApp, key: &str, place: &str) -> Vec<i64> {
    let (_, p) = app.get(&format!("/v1/nets/{key}/places")).await;
    p["places"][place]["tokens"]
        .as_object()
        .map(|t| t.keys().map(|c| c.parse().unwrap()).collect())
        .unwrap_or_default()
}

/// Two nets: `orders`, split into a group of 3 colours waiting in `work`
/// for `approved` (its size callback answered), and `broken`, failed
/// because its callback's receiver answers 400.
pub async fn seed(app: &TestApp) {
    let size = Receiver::ok().await;
    let (st, b) = app
        .put(
            "/v1/nets/orders",
            json!({"initialMarking": ["start"], "transitions": [
                {"name": "ask_size", "inputs": ["start"], "outputs": ["wait"],
                 "action": {"type": "notify", "url": size.url, "response_places": {"size": "size"}, "requested_data": ["color_group_size"]}},
                {"name": "group", "inputs": ["wait", "size"], "outputs": ["to_split"], "action": {"type": "create-color-group"}},
                {"name": "split", "inputs": ["to_split"], "outputs": ["work"], "action": {"type": "split"}},
                {"name": "approve", "inputs": ["work", "approved"], "outputs": ["done"], "action": {"type": "merge"}}
            ]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    app.drain().await;
    let cb: Value = serde_json::from_str(&size.received()[0].body).unwrap();
    // Answered with the app's bearer token (the seed also serves apps with tokens).
    let link = reqwest::Url::parse(cb["response_links"]["size"].as_str().unwrap()).unwrap();
    let path = format!("{}?{}", link.path(), link.query().unwrap_or(""));
    let (st, b) = app.put(&path, json!({"color_group_size": 3})).await;
    assert!(st.is_success(), "{st}: {b}");
    app.drain().await;
    assert_eq!(colours(app, "orders", "work").await.len(), 3);

    let refusing = Receiver::answering(StatusCode::BAD_REQUEST).await;
    let (st, b) = app
        .put(
            "/v1/nets/broken",
            json!({"initialMarking": ["start"], "transitions": [
                {"name": "tell", "inputs": ["start"], "outputs": ["told"], "action": {"type": "notify", "url": refusing.url}}
            ]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    app.settle().await;
    assert_eq!(app.nets().get("broken").await["status"], "failed");
}

/// In the browser test (after [`seed`]): the page of `orders` shows a
/// token put through the JSON API without a reload, in its marking and
/// in its graph drawn again.
pub async fn live_in_browser(page: &Page<'_>, app: &TestApp) {
    page.goto(&format!("{}/ui/nets/orders", app.base)).await;
    page.wait_for(
        "!!(document.querySelector('[sse-connect]') && document.querySelector('[sse-connect]').dataset.live === 'open' && document.querySelector('figure.graph[data-drawn] svg'))",
        Duration::from_secs(20),
    )
    .await;
    page.eval("window.__net_stay = 7").await;
    let before = page
        .eval("document.querySelectorAll('figure.graph svg .node.marked').length")
        .await;
    let colour = colours(app, "orders", "work").await[0];
    let (st, b) = app
        .put(
            &format!("/v1/nets/orders/places/approved/tokens?color={colour}"),
            json!({"by": "browser test"}),
        )
        .await;
    assert!(st.is_success(), "{st}: {b}");
    page.wait_for(
        &format!(
            "document.querySelector('tr[data-place=\"done\"] [data-color=\"{colour}\"]') !== null"
        ),
        Duration::from_secs(10),
    )
    .await;
    // `done` now holds a token: one more marked place in the redrawn graph.
    page.wait_for(
        &format!("document.querySelectorAll('figure.graph[data-drawn] svg .node.marked').length === {before} + 1"),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(page.eval("window.__net_stay").await, 7, "the page reloaded");
}

#[tokio::test]
async fn the_list_and_the_overview_show_failed_nets_first() {
    let app = open().await;
    seed(&app).await;
    let c = Console::new(&app);
    let page = c.get("/ui/nets").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body
            .contains(r#"data-net="orders" data-status="running""#)
    );
    assert!(
        page.body
            .contains(r#"data-net="broken" data-status="failed""#)
    );
    assert!(page.body.contains("End of the list."));
    assert!(
        page.body
            .contains(r#"sse-connect="/ui/events?topics=nets""#)
    );
    // Filtered by status.
    let failed = c.get("/ui/nets?status=failed").await;
    assert!(failed.body.contains(r#"data-net="broken""#));
    assert!(!failed.body.contains(r#"data-net="orders""#));
    let running = c.get("/ui/nets/list?status=running").await;
    assert!(running.body.contains(r#"data-net="orders""#));
    assert!(!running.body.contains(r#"data-net="broken""#));
    let none = c.get("/ui/nets?status=completed").await;
    assert!(none.body.contains("No completed nets."), "{}", none.body);
    assert_eq!(
        c.get("/ui/nets?status=odd").await.status,
        StatusCode::BAD_REQUEST
    );
    // The list needs no WebAssembly: the strict policy holds.
    assert!(!page.header("content-security-policy").contains("wasm"));

    let over = c.get("/ui/").await;
    let tile = over
        .body
        .split(r#"data-section="nets""#)
        .nth(1)
        .and_then(|t| t.split("</article>").next())
        .unwrap();
    assert!(tile.contains("<dt>failed</dt><dd>1</dd>"), "{tile}");
    assert!(tile.contains(r#"href="/ui/nets/broken""#), "{tile}");
}

#[tokio::test]
async fn a_net_page_shows_the_graph_marking_groups_waits_and_callbacks() {
    let app = open().await;
    seed(&app).await;
    let c = Console::new(&app);
    let page = c.get("/ui/nets/orders").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csp = page.header("content-security-policy");
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval'"),
        "{csp}"
    );
    let html = &page.body;
    // The graph: the API's DOT in a figure graph.js draws, and its scripts.
    assert!(
        html.contains(r#"<figure class="graph"><pre class="dot">digraph"#),
        "{html}"
    );
    assert!(html.contains("place marked"));
    assert!(html.contains("/viz-global.js"));
    assert!(html.contains("/graph.js"));
    // The marking: three coloured tokens in `work`, in one group.
    let work = html
        .split(r#"<tr data-place="work">"#)
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .unwrap();
    assert_eq!(work.matches("data-color=").count(), 3, "{work}");
    assert!(work.contains("class=\"chip c"));
    assert!(html.contains("<table class=\"groups\">"));
    // What waits, and the callbacks with their deliveries.
    assert!(html.contains("waits for approved"), "{html}");
    assert!(html.contains("ask_size"));
    assert!(html.contains("responses: size → size"), "{html}");
    assert!(html.contains("/ui/deliveries?owner=net%3Aorders"));
    // Every action's API call.
    assert!(html.contains("curl -X PATCH"));
    assert!(html.contains("/v1/nets/orders/places/"));

    let broken = c.get("/ui/nets/broken").await;
    assert!(broken.body.contains(r#"data-status="failed""#));
    assert!(broken.body.contains("Failed:"));

    let none = c.get("/ui/nets/nope").await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    let bad = c.get("/ui/nets/not%20a%20key").await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pause_resume_and_a_put_token_change_what_the_api_answers() {
    let app = open().await;
    seed(&app).await;
    let c = Console::new(&app);

    let r = c.post("/ui/nets/orders/active", "active=false").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Paused"));
    assert_eq!(app.nets().get("orders").await["active"], false);
    let r = c.post("/ui/nets/orders/active", "active=true").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(app.nets().get("orders").await["active"], true);

    // Approve one colour of the group: `approve` fires for it.
    let colour = colours(&app, "orders", "work").await[0];
    let r = c
        .post(
            "/ui/nets/orders/tokens",
            &format!("place=approved&color={colour}&color_group=&data=%7B%22by%22%3A%22ops%22%7D"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("1 transition(s) fired"), "{}", r.body);
    assert_eq!(colours(&app, "orders", "done").await, [colour]);
    assert_eq!(colours(&app, "orders", "work").await.len(), 2);

    // No colour: a new one (POST …/tokens).
    let r = c
        .post("/ui/nets/orders/tokens", "place=approved&color=&data=")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(colours(&app, "orders", "approved").await.len(), 1);
}

#[tokio::test]
async fn bad_input_is_a_readable_4xx() {
    let app = open().await;
    seed(&app).await;
    let c = Console::new(&app);
    for (form, status, reason) in [
        (
            "place=approved&color=red",
            StatusCode::BAD_REQUEST,
            "non-negative integer",
        ),
        (
            "place=approved&color=1&data=%7Bnope",
            StatusCode::BAD_REQUEST,
            "not JSON",
        ),
        (
            "place=approved&color_group=1",
            StatusCode::BAD_REQUEST,
            "needs a colour",
        ),
        ("place=nowhere&color=1", StatusCode::NOT_FOUND, "no place"),
        ("color=1", StatusCode::BAD_REQUEST, "place"),
    ] {
        let r = c.post("/ui/nets/orders/tokens", form).await;
        assert_eq!(r.status, status, "{form}: {}", r.body);
        assert!(r.header("content-type").starts_with("text/html"));
        assert!(r.body.contains(reason), "{form}: {}", r.body);
    }
    let r = c
        .post("/ui/nets/broken/tokens", "place=start&color=5")
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = c.post("/ui/nets/orders/active", "active=maybe").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = c.post("/ui/nets/nope/active", "active=false").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = c.get("/ui/nets?cursor=x").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_read_only_token_sees_but_cannot_act() {
    let app = with_tokens().await;
    seed(&app).await;
    let mut c = Console::new(&app);
    c.sign_in(READ).await;
    let page = c.get("/ui/nets/orders").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("data-action=\"pause\""));
    assert!(!page.body.contains("Put a token"));
    let colour = colours(&app, "orders", "work").await[0];
    for (path, form) in [
        ("/ui/nets/orders/active", "active=false".to_owned()),
        (
            "/ui/nets/orders/tokens",
            format!("place=approved&color={colour}"),
        ),
    ] {
        assert_eq!(
            c.post(path, &form).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(app.nets().get("orders").await["active"], true);
    assert!(colours(&app, "orders", "approved").await.is_empty());

    let mut full = Console::new(&app);
    full.sign_in(FULL).await;
    assert!(
        full.get("/ui/nets/orders")
            .await
            .body
            .contains("Put a token")
    );
}

#[tokio::test]
async fn a_put_through_the_api_reaches_the_net_page_and_the_list_live() {
    let app = open().await;
    seed(&app).await;
    let mut one = stream(&app, "nets-orders").await;
    assert_eq!(one.status(), StatusCode::OK);
    let colour = colours(&app, "orders", "work").await[1];
    let (st, b) = app
        .put(
            &format!("/v1/nets/orders/places/approved/tokens?color={colour}"),
            json!({}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert!(next_event(&mut one, "nets-orders", Duration::from_secs(5)).await);
    // The live region's fragment shows the new marking.
    let c = Console::new(&app);
    let after = c.get("/ui/nets/orders/live").await;
    let done = after
        .body
        .split(r#"<tr data-place="done">"#)
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .unwrap();
    assert!(
        done.contains(&format!(r#"data-color="{colour}""#)),
        "{done}"
    );

    // The list's topic follows pauses (and new nets).
    let mut list = stream(&app, "nets").await;
    let (st, _) = app
        .call(
            reqwest::Method::PATCH,
            "/v1/nets/orders",
            Some(r#"{"active": false}"#),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert!(next_event(&mut list, "nets", Duration::from_secs(5)).await);
    // A topic of a key that cannot be is refused.
    assert_eq!(
        stream(&app, "nets-a%20b").await.status(),
        StatusCode::NOT_FOUND
    );
}
