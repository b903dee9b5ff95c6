//! The state-machine pages: the list (filter, paging), a machine's diagram
//! with its figures and firing thresholds, the entity lookup, the overview
//! tile and the live topic.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::live::{next_event, stream};
use super::{Console, READ, open, with_tokens};
use crate::support::{TestApp, eventually};

/// An `orders` machine (new → paid → shipped, paid ⇄ on hold, any →
/// cancelled) with a
/// critical threshold on `new` that fires with one entity there, and
/// entities `o-1` (new) and `o-2` (moved to paid).
pub async fn seed(app: &TestApp) {
    let (st, body) = app
        .post(
            "/api/statemachines",
            json!({"id": "orders", "name": "Order fulfilment", "states": [
                {"id": "new", "name": "New order", "next": ["paid", "cancelled"]},
                {"id": "paid", "name": "Paid", "next": ["shipped", "on_hold", "cancelled"]},
                {"id": "on_hold", "name": "On hold", "next": ["paid", "cancelled"]},
                {"id": "shipped", "name": "Shipped"},
                {"id": "cancelled", "name": "Cancelled"}],
              "thresholds": [
                {"id": "backlog", "state": "new", "kind": "count_above", "value": 0, "severity": "critical"},
                {"id": "slow-payment", "state": "paid", "kind": "oldest_age_above", "age_seconds": 3600}]}),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let (st, body) = app
        .post(
            "/api/statemachines/orders/transitions",
            json!({"events": [
                {"entity": "o-1", "to": "new"},
                {"entity": "o-2", "to": "new"},
                {"entity": "o-2", "to": "paid", "data": {"amount": 42}, "event_id": "pay-2"}]}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
}

#[tokio::test]
async fn the_list_shows_machines_with_entities_and_alerts_and_filters_them() {
    let app = open().await;
    seed(&app).await;
    let c = Console::new(&app);
    // The threshold check after the transitions records the firing alert.
    eventually(Duration::from_secs(10), || async {
        c.get("/ui/machines")
            .await
            .body
            .contains(r#"<span class="badge bad">backlog</span>"#)
    })
    .await;
    let page = c.get("/ui/machines").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = &page.body;
    assert!(html.contains(r#"data-machine="orders""#), "{html}");
    assert!(html.contains(r#"href="/ui/machines/orders""#));
    assert!(html.contains("Order fulfilment"));
    assert!(html.contains("sse-connect=\"/ui/events?topics=machines\""));
    assert!(html.contains("curl -X GET"));
    // Filter by part of the name, any case; no match says so.
    let hit = c.get("/ui/machines?q=FULFIL").await;
    assert!(hit.body.contains(r#"data-machine="orders""#));
    let miss = c.get("/ui/machines?q=zzz").await;
    assert!(!miss.body.contains(r#"data-machine="orders""#));
    assert!(miss.body.contains("No machine matches"), "{}", miss.body);
    // The live region's refetch is the list alone.
    let part = c.get_htmx("/ui/machines?q=").await;
    assert!(part.body.contains(r#"data-machine="orders""#));
    assert!(!part.body.contains("<html"));

    // The overview's tile names the firing alert.
    let tiles = c.get("/ui/overview").await;
    assert!(
        tiles.body.contains("orders: backlog firing"),
        "{}",
        tiles.body
    );
    assert!(tiles.body.contains(r#"href="/ui/machines/orders""#));
}

#[tokio::test]
async fn the_list_pages_to_the_end() {
    let app = open().await;
    for i in 0..53 {
        let (st, body) = app
            .post(
                "/api/statemachines",
                json!({"id": format!("m{i:02}"), "states": [{"id": "a", "next": ["b"]}, {"id": "b"}]}),
            )
            .await;
        assert_eq!(st, 201, "{body}");
    }
    let c = Console::new(&app);
    let first = c.get("/ui/machines").await;
    assert!(first.body.contains(r#"data-machine="m00""#));
    assert!(first.body.contains(r#"data-machine="m49""#));
    assert!(!first.body.contains(r#"data-machine="m50""#));
    assert!(
        first.body.contains(r#"href="/ui/machines?after=m49""#),
        "{}",
        first.body
    );
    let second = c.get("/ui/machines?after=m49").await;
    assert!(second.body.contains(r#"data-machine="m52""#));
    assert!(!second.body.contains(r#"data-machine="m49""#));
    assert!(!second.body.contains("rel=\"next\""));
}

#[tokio::test]
async fn a_machine_page_draws_its_states_with_figures_thresholds_and_edges() {
    let app = open().await;
    seed(&app).await;
    let c = Console::new(&app);
    let page = c.get("/ui/machines/orders").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let html = &page.body;
    // The diagram: a box per state, an edge per move, the figures.
    assert!(html.contains(r#"<svg class="diagram""#), "{html}");
    for s in ["new", "paid", "on_hold", "shipped", "cancelled"] {
        assert!(html.contains(&format!(r#"data-state="{s}""#)), "{s}");
    }
    assert_eq!(html.matches("marker-end=\"url(#arrow)\"").count(), 7 + 1);
    assert!(html.contains("1 in state"));
    assert!(
        html.contains("paid: 1 in 1 min, 1 in 5 min, 1 in 1 h"),
        "{html}"
    );
    // The backlog threshold fires now: highlighted, first.
    assert!(html.contains(r#"class="state initial critical""#), "{html}");
    assert!(html.contains(r#"<tr data-threshold="backlog" class="alert critical">"#));
    assert!(html.contains("1 alert firing"));
    let backlog = html.find(r#"data-threshold="backlog""#).unwrap();
    let slow = html.find(r#"data-threshold="slow-payment""#).unwrap();
    assert!(backlog < slow, "firing thresholds first");
    // The live topic, the metrics call.
    assert!(html.contains("sse-connect=\"/ui/events?topics=machines-orders\""));
    assert!(html.contains("/api/statemachines/orders/metrics"));
    // The live fragment alone.
    let part = c.get("/ui/machines/orders/live").await;
    assert_eq!(part.status, StatusCode::OK);
    assert!(part.body.contains(r#"<svg class="diagram""#));
    assert!(!part.body.contains("<html"));
    // Unknown and malformed machines.
    let gone = c.get("/ui/machines/nope").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(
        gone.body.contains("state machine not found"),
        "{}",
        gone.body
    );
    let bad = c.get("/ui/machines/a%20b").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_entity_lookup_shows_state_and_history_and_refuses_bad_ids() {
    let app = open().await;
    seed(&app).await;
    let c = Console::new(&app);
    let found = c.get("/ui/machines/orders/entity?entity=o-2").await;
    assert_eq!(found.status, StatusCode::OK);
    let html = &found.body;
    assert!(html.contains(r#"data-entity="o-2""#), "{html}");
    assert!(html.contains(r#"data-entity-state="paid""#));
    assert!(html.contains("pay-2"));
    assert!(html.contains("amount"));
    assert!(html.contains("/api/statemachines/orders/entities/o-2"));
    // Without script: the page itself takes ?entity=.
    let page = c.get("/ui/machines/orders?entity=o-1").await;
    assert!(page.body.contains(r#"data-entity-state="new""#));
    // Unknown: said plainly; malformed: a readable 400.
    let missing = c.get("/ui/machines/orders/entity?entity=o-9").await;
    assert_eq!(missing.status, StatusCode::OK);
    assert!(missing.body.contains("No entity"));
    let bad = c.get("/ui/machines/orders/entity?entity=a%20b").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("entity ids are"), "{}", bad.body);
}

#[tokio::test]
async fn a_transition_reaches_the_machines_live_topic_and_read_only_viewers_see_the_pages() {
    let app = with_tokens().await;
    seed(&app).await;
    let mut c = Console::new(&app);
    c.sign_in(READ).await;
    let page = c.get("/ui/machines/orders").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(r#"<svg class="diagram""#));

    let mut events = stream(&app, "machines-orders").await;
    assert_eq!(events.status(), StatusCode::OK);
    let (st, _) = app
        .post(
            "/api/statemachines/orders/entities/o-1/transitions",
            json!({"to": "cancelled"}),
        )
        .await;
    assert_eq!(st, 200);
    assert!(
        next_event(&mut events, "machines-orders", Duration::from_secs(5)).await,
        "no event after a transition"
    );
}

/// A machine's page in headless Chromium: the entity lookup answers in
/// place, and a transition made through the JSON API redraws the diagram
/// without a reload. Writes `target/ui-screenshots/machine-lookup-<width>.png`.
#[tokio::test]
async fn a_machine_page_works_in_a_browser() {
    let Some(browser) = crate::support::browser::Browser::launch().await else {
        return;
    };
    let app = open().await;
    seed(&app).await;
    let page = browser.new_page().await;
    page.goto(&format!("{}/ui/machines/orders", app.base)).await;
    page.wait_for(
        "document.readyState === 'complete' && typeof htmx !== 'undefined' && document.querySelector('[sse-connect]').dataset.live === 'open'",
        Duration::from_secs(10),
    )
    .await;
    page.eval("window.__stay = 3").await;
    page.eval(
        "document.querySelector('div.lookup input').value = 'o-2'; document.querySelector('div.lookup button').click(); true",
    )
    .await;
    page.wait_for(
        "document.querySelector('[data-entity-state=\"paid\"]') !== null",
        Duration::from_secs(10),
    )
    .await;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
    for width in [1400, 400] {
        page.screenshot(width, &dir.join(format!("machine-lookup-{width}.png")))
            .await;
    }
    let (st, _) = app
        .post(
            "/api/statemachines/orders/entities/o-2/transitions",
            json!({"to": "shipped"}),
        )
        .await;
    assert_eq!(st, 200);
    page.wait_for(
        "document.querySelector('#state-paid td').textContent === '0'",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(page.eval("window.__stay").await, 3, "the page reloaded");
    let remote: Vec<String> = page
        .requests()
        .into_iter()
        .filter(|u| !u.starts_with(&app.base) && !u.starts_with("data:"))
        .collect();
    assert!(remote.is_empty(), "requests left the app: {remote:?}");
}
