//! The deliveries pages: the list searches and filters as the JSON API
//! does, a delivery's page shows its attempts, and retry, cancel and the
//! bulk replay change what the JSON API answers; a read-only token sees
//! but cannot act; bad input is a readable 4xx.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::live::{next_event, stream};
use super::{Console, FULL, READ, open, with_tokens};
use crate::support::{Receiver, TestApp};

/// The ids of what [`seed`] made.
pub struct Seeded {
    /// Two deliveries to a receiver answering 500, dead after their retries.
    pub dead: [String; 2],
    /// Delivered (204).
    pub succeeded: String,
    /// Never attempted (no worker runs): pending.
    pub pending: String,
}

/// The idempotency key of the first dead delivery of [`seed`]: the
/// browser test opens its page through `/ui/deliveries/find?q=`.
pub const DEAD_KEY: &str = "order-42-created";

/// Deliveries in every state a page shows: two dead (500), one delivered,
/// one pending.
pub async fn seed(app: &TestApp) -> Seeded {
    let failing = Receiver::answering(StatusCode::INTERNAL_SERVER_ERROR).await;
    let ok = Receiver::ok().await;
    let d = app.deliveries();
    let dead = [
        d.create(json!({"url": format!("{}/orders/created", failing.url), "body": {"order": 42}, "idempotency_key": DEAD_KEY}))
            .await,
        d.create(json!({"url": format!("{}/orders/shipped", failing.url), "headers": {"x-team": "shop"}}))
            .await,
    ];
    let succeeded = d
        .create(json!({"url": format!("{}/invoices/paid", ok.url), "body": {"invoice": 7}}))
        .await;
    app.settle().await;
    let pending = d
        .create(json!({"url": "http://127.0.0.1:9/pending/hook", "body": {"n": 1}}))
        .await;
    for id in &dead {
        assert_eq!(d.get(id).await["state"], "dead");
    }
    assert_eq!(d.get(&succeeded).await["state"], "succeeded");
    Seeded {
        dead,
        succeeded,
        pending,
    }
}

#[tokio::test]
async fn the_list_searches_by_state_url_destination_owner_and_time() {
    let app = open().await;
    let s = seed(&app).await;
    let c = Console::new(&app);

    let all = c.get("/ui/deliveries").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    for id in s.dead.iter().chain([&s.succeeded, &s.pending]) {
        assert!(
            all.body.contains(&format!(r#"data-delivery="{id}""#)),
            "{id}"
        );
    }
    assert!(all.body.contains("/orders/created"));
    assert!(all.body.contains("HTTP 500"), "the last error's excerpt");
    assert!(all.body.contains("curl -X GET"), "the listing's API call");
    assert!(all.body.contains("End of the list."));

    let dead = c.get("/ui/deliveries?state=dead").await;
    assert!(
        dead.body
            .contains(&format!(r#"data-delivery="{}""#, s.dead[0]))
    );
    assert!(
        !dead
            .body
            .contains(&format!(r#"data-delivery="{}""#, s.succeeded))
    );
    assert!(dead.body.contains("Replay all 2 dead shown"));
    assert!(dead.body.contains("/v1/deliveries?state=dead"), "its curl");

    let url = c.get("/ui/deliveries?url=SHIPPED").await;
    assert!(
        url.body
            .contains(&format!(r#"data-delivery="{}""#, s.dead[1]))
    );
    assert!(
        !url.body
            .contains(&format!(r#"data-delivery="{}""#, s.dead[0]))
    );

    let dest = c
        .get("/ui/deliveries?destination=127.0.0.1%3A9&state=")
        .await;
    assert!(
        dest.body
            .contains(&format!(r#"data-delivery="{}""#, s.pending))
    );
    assert!(
        !dest
            .body
            .contains(&format!(r#"data-delivery="{}""#, s.succeeded))
    );

    let owned = c.get("/ui/deliveries?owner=net%3A").await;
    assert!(owned.body.contains("No delivery matches"), "{}", owned.body);

    let future = c.get("/ui/deliveries?since=2999-01-01").await;
    assert!(future.body.contains("No delivery matches"));
    let past = c.get("/ui/deliveries?until=2000-01-01T00:00").await;
    assert!(past.body.contains("No delivery matches"));
    let window = c
        .get("/ui/deliveries?since=2000-01-01T00:00:00Z&until=2999-01-01")
        .await;
    assert!(
        window
            .body
            .contains(&format!(r#"data-delivery="{}""#, s.pending))
    );

    // The JSON API takes the same filters.
    let (st, l) = app
        .get("/v1/deliveries?url=invoices&since=2000-01-01")
        .await;
    assert_eq!(st, StatusCode::OK, "{l}");
    let ids: Vec<&str> = l["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [s.succeeded.as_str()]);
}

#[tokio::test]
async fn the_list_pages_to_the_end() {
    let app = open().await;
    for i in 0..7 {
        app.deliveries()
            .create(json!({"url": format!("http://127.0.0.1:9/page/{i}")}))
            .await;
    }
    let c = Console::new(&app);
    let mut path = "/ui/deliveries?limit=3".to_owned();
    let mut seen = 0;
    for _ in 0..5 {
        let page = c.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        seen += page.body.matches("data-delivery=").count();
        let Some(end) = page.body.find(r#"" rel="next""#) else {
            break;
        };
        let start = page.body[..end].rfind("href=\"").unwrap() + 6;
        path = page.body[start..end]
            .replace("&#38;", "&")
            .replace("&amp;", "&");
    }
    assert_eq!(seen, 7);
}

#[tokio::test]
async fn a_delivery_page_shows_its_request_and_attempts() {
    let app = open().await;
    let s = seed(&app).await;
    let c = Console::new(&app);
    let page = c.get(&format!("/ui/deliveries/{}", s.dead[0])).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let html = &page.body;
    assert!(html.contains(r#"data-state="dead""#));
    assert!(html.contains("/orders/created"));
    assert!(
        html.contains("&#34;order&#34;: 42") || html.contains("&quot;order&quot;: 42"),
        "{html}"
    );
    // Four attempts (the first and three retries of the test policy), each
    // with its status, latency and the response excerpt.
    assert_eq!(html.matches("data-attempt=").count(), 4, "{html}");
    assert!(html.contains("<code>500</code>"));
    assert!(html.contains(" ms</td>"));
    assert!(html.contains("HTTP 500"));
    assert!(
        html.contains(&format!("/v1/deliveries/{}/retry", s.dead[0])),
        "retry's curl"
    );
    assert!(html.contains(r#"sse-connect="/ui/events?topics=deliveries-"#));

    let none = c.get("/ui/deliveries/d0-nothing-here").await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert!(none.body.contains("delivery not found"), "{}", none.body);
}

#[tokio::test]
async fn retry_cancel_and_the_bulk_replay_change_what_the_api_answers() {
    let app = open().await;
    let s = seed(&app).await;
    let c = Console::new(&app);
    let d = app.deliveries();

    let r = c
        .post(&format!("/ui/deliveries/{}/retry", s.dead[0]), "")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Queued again"));
    assert_eq!(d.get(&s.dead[0]).await["state"], "pending");

    let r = c
        .post(&format!("/ui/deliveries/{}/cancel", s.pending), "")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(d.get(&s.pending).await["state"], "cancelled");

    // Not possible in its state: a readable 409.
    let r = c
        .post(&format!("/ui/deliveries/{}/cancel", s.succeeded), "")
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("succeeded"), "{}", r.body);

    // The bulk replay: the cancelled one and the other dead one; a
    // succeeded one is refused and said so.
    let form = format!("id={}&id={}&id={}", s.pending, s.dead[1], s.succeeded);
    let r = c.post("/ui/deliveries/replay?state=dead", &form).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Replayed 2 of 3."), "{}", r.body);
    assert!(r.body.contains("is succeeded"), "{}", r.body);
    assert_eq!(d.get(&s.pending).await["state"], "pending");
    assert_eq!(d.get(&s.dead[1]).await["state"], "pending");

    let r = c.post("/ui/deliveries/replay", "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("select at least one"), "{}", r.body);
}

#[tokio::test]
async fn bad_input_is_a_readable_4xx() {
    let app = open().await;
    let c = Console::new(&app);
    for (path, reason) in [
        ("/ui/deliveries?state=lost", "state must be one of"),
        ("/ui/deliveries?since=yesterday", "a time is RFC 3339"),
        ("/ui/deliveries?limit=0", "limit must be"),
        ("/ui/deliveries?cursor=nope", "cursor is not one"),
        ("/ui/deliveries?colour=red", "unknown field"),
    ] {
        let page = c.get(path).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(page.header("content-type").starts_with("text/html"));
        assert!(page.body.contains(reason), "{path}: {}", page.body);
    }
    let (st, e) = app.get("/v1/deliveries?until=soon").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(e["where"], "query.until");
}

#[tokio::test]
async fn a_read_only_token_sees_but_cannot_act() {
    let app = with_tokens().await;
    let s = seed(&app).await;
    let mut c = Console::new(&app);
    c.sign_in(READ).await;
    let page = c.get(&format!("/ui/deliveries/{}", s.dead[0])).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("data-action=\"retry\""), "no buttons");
    let list = c.get("/ui/deliveries?state=dead").await;
    assert!(!list.body.contains("Replay all"), "no bulk actions");
    for (path, form) in [
        (format!("/ui/deliveries/{}/retry", s.dead[0]), String::new()),
        (
            format!("/ui/deliveries/{}/cancel", s.pending),
            String::new(),
        ),
        (
            "/ui/deliveries/replay".to_owned(),
            format!("id={}", s.dead[1]),
        ),
    ] {
        let r = c.post(&path, &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(app.deliveries().get(&s.dead[0]).await["state"], "dead");
    assert_eq!(app.deliveries().get(&s.dead[1]).await["state"], "dead");

    let mut full = Console::new(&app);
    full.sign_in(FULL).await;
    let page = full.get(&format!("/ui/deliveries/{}", s.dead[0])).await;
    assert!(page.body.contains("data-action=\"retry\""));
}

#[tokio::test]
async fn the_overview_tile_counts_dead_first_and_names_them() {
    let app = open().await;
    let s = seed(&app).await;
    let c = Console::new(&app);
    let page = c.get("/ui/").await;
    let tile = page
        .body
        .split(r#"data-section="deliveries""#)
        .nth(1)
        .and_then(|t| t.split("</article>").next())
        .unwrap();
    let dead_at = tile.find("<dt>dead</dt>").unwrap();
    let pending_at = tile.find("<dt>pending</dt>").unwrap();
    assert!(dead_at < pending_at, "{tile}");
    assert!(tile.contains("<dt>dead</dt><dd>2</dd>"), "{tile}");
    assert!(
        tile.contains(&format!("/ui/deliveries/{}", s.dead[1])),
        "{tile}"
    );
}

#[tokio::test]
async fn changes_reach_the_list_and_a_delivery_page_live() {
    let app = open().await;
    let s = seed(&app).await;
    let mut list = stream(&app, "deliveries").await;
    let mut one = stream(&app, &format!("deliveries-{}", s.dead[0])).await;
    assert_eq!(one.status(), StatusCode::OK);
    let (st, _) = app
        .post(&format!("/v1/deliveries/{}/retry", s.dead[0]), json!(null))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    assert!(
        next_event(
            &mut one,
            &format!("deliveries-{}", s.dead[0]),
            Duration::from_secs(5)
        )
        .await
    );
    assert!(next_event(&mut list, "deliveries", Duration::from_secs(5)).await);
    // A new delivery is a change of the list too.
    app.deliveries()
        .create(json!({"url": "http://127.0.0.1:9/new"}))
        .await;
    assert!(next_event(&mut list, "deliveries", Duration::from_secs(5)).await);
}

#[tokio::test]
async fn find_opens_a_delivery_by_id_or_idempotency_key() {
    let app = open().await;
    let s = seed(&app).await;
    let c = Console::new(&app);
    for q in [DEAD_KEY, s.dead[0].as_str()] {
        let r = c.get(&format!("/ui/deliveries/find?q={q}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{q}: {}", r.body);
        assert_eq!(
            r.header("location"),
            format!("/ui/deliveries/{}", s.dead[0])
        );
    }
    let r = c.get("/ui/deliveries/find?q=nobody").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body.contains("no delivery has"), "{}", r.body);
    let r = c.get("/ui/deliveries/find?q=").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}
