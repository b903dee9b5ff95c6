//! The transactions pages: every tenant's transactions (filtered by tenant
//! and status, paged to the end), a transaction's pipeline, counts and
//! per-item errors paged, abort (not for a read-only token), the overview
//! tile and the live topics.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Console, FULL, READ};
use crate::support::TestApp;
use crate::support::api::transactions::{SEED_CONTRACTOR, SEED_TOKEN};

/// The second tenant's token and contractor id.
pub const OTHER_TOKEN: &str = "other-tenant-token";
pub const OTHER_CONTRACTOR: &str = "9";

/// The tenants every console test app gets (the browser test's too).
pub fn tenants() -> Vec<String> {
    vec![
        format!("{SEED_TOKEN}={SEED_CONTRACTOR}"),
        format!("{OTHER_TOKEN}={OTHER_CONTRACTOR}"),
    ]
}

/// An app with a full and a read-only API token, both tenants, a fast
/// live interval.
async fn spawn() -> TestApp {
    TestApp::builder()
        .with_config(|c| {
            c.api.api_tokens = vec![FULL.into()];
            c.api.api_read_tokens = vec![READ.into()];
            c.api.ui_live_interval = Duration::from_millis(50);
            c.families.transactions.transactions_tenants = tenants();
            c.families.transactions.transactions_callback_policy = "fast".into();
        })
        .spawn()
        .await
}

fn collaborator(id: &str) -> Value {
    json!({"name": format!("C{id}"), "identification": id, "genre": "F", "active": true, "birthDate": "1990-01-01"})
}

/// Results about collaborators that do not exist: each one is invalid.
fn orphan_results(n: usize) -> Value {
    (0..n)
        .map(|i| json!({"collaboratorIdentification": format!("ghost{i}"), "indicatorId": "sales", "result": i, "date": "2000-01-05"}))
        .collect()
}

/// Transactions for the pages to show: for the seed tenant one done with
/// `errors` per-item errors, one invalidated and one open; for the other
/// tenant one open. Answers (done with errors, invalidated, open, other's open).
pub async fn seed_with(app: &TestApp, errors: usize) -> (String, String, String, String) {
    let tx = app.transactions(SEED_TOKEN);
    let with_errors = tx.create().await;
    tx.post(
        "collaborators",
        &with_errors,
        json!([collaborator("1"), collaborator("2")]),
    )
    .await;
    tx.post(
        "indicators",
        &with_errors,
        json!([{"indicatorId": "sales", "name": "Sales"}]),
    )
    .await;
    tx.post("results", &with_errors, orphan_results(errors))
        .await;
    let (s, b) = tx.commit(&with_errors, "").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let invalidated = tx.create().await;
    tx.post("results", &invalidated, orphan_results(2)).await;
    let (s, b) = tx.commit(&invalidated, "").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    app.drain().await;
    let open = tx.create().await;
    tx.post("collaborators", &open, json!([collaborator("3")]))
        .await;
    let other = app.transactions(OTHER_TOKEN).create().await;
    assert_eq!(tx.get(&with_errors).await["data"]["status"], 10);
    assert_eq!(tx.get(&invalidated).await["data"]["status"], 8);
    (with_errors, invalidated, open, other)
}

/// The browser test's transactions.
pub async fn seed(app: &TestApp) {
    seed_with(app, 30).await;
}

/// The transaction ids a list page shows, and its next page's href.
fn listed(html: &str) -> (Vec<String>, Option<String>) {
    let ids = html
        .split("data-tx=\"")
        .skip(1)
        .map(|r| r.split('"').next().unwrap().to_owned())
        .collect();
    let next = html
        .split("rel=\"next\"")
        .next()
        .filter(|_| html.contains("rel=\"next\""))
        .and_then(|before| before.rsplit("href=\"").next())
        .map(|h| h.split('"').next().unwrap().replace("&amp;", "&"));
    (ids, next)
}

#[tokio::test]
async fn the_list_shows_every_tenants_transactions_filtered_by_tenant_and_status() {
    let app = spawn().await;
    let (with_errors, invalidated, open, other) = seed_with(&app, 3).await;
    let mut c = Console::new(&app);
    c.sign_in(READ).await;

    let page = c.get("/ui/transactions").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let (ids, next) = listed(&page.body);
    // Newest first, every tenant.
    assert_eq!(
        ids,
        vec![
            other.clone(),
            open.clone(),
            invalidated.clone(),
            with_errors.clone()
        ]
    );
    assert!(next.is_none());
    let html = &page.body;
    assert!(html.contains(r#"data-status="10""#) && html.contains("DoneWithErrors"));
    assert!(html.contains(r#"data-status="8""#) && html.contains("Invalidated"));
    assert!(
        html.contains(r#"<option value="9""#),
        "the tenant filter: {html}"
    );
    // Tenants are named by contractor id; their tokens never appear.
    assert!(!html.contains(SEED_TOKEN) && !html.contains(OTHER_TOKEN));
    assert!(html.contains("curl -X GET"));
    assert!(html.contains("token: $TENANT_TOKEN"));
    assert!(html.contains(r#"sse-connect="/ui/events?topics=transactions""#));

    let page = c.get("/ui/transactions?tenant=9").await;
    assert_eq!(listed(&page.body).0, vec![other.clone()]);
    let page = c.get("/ui/transactions?status=1").await;
    assert_eq!(listed(&page.body).0, vec![other.clone(), open.clone()]);
    let page = c.get("/ui/transactions?tenant=8&status=8").await;
    assert_eq!(listed(&page.body).0, vec![invalidated.clone()]);
    let page = c.get("/ui/transactions?tenant=&status=").await;
    assert_eq!(listed(&page.body).0.len(), 4);
    // The live region answers the same list.
    let frag = c.get_htmx("/ui/transactions/list?status=10").await;
    assert_eq!(frag.status, StatusCode::OK);
    assert_eq!(listed(&frag.body).0, vec![with_errors.clone()]);

    for (bad, says) in [
        ("status=12", "is not 1..=11"),
        ("status=x", "is not 1..=11"),
        ("tenant=nobody", "no tenant"),
        ("cursor=zzz", "cursor"),
    ] {
        let page = c.get(&format!("/ui/transactions?{bad}")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(page.header("content-type").starts_with("text/html"));
        assert!(page.body.contains(says), "{bad}: {}", page.body);
    }
}

#[tokio::test]
async fn the_list_pages_to_the_end_across_tenants() {
    let app = spawn().await;
    let mut made = BTreeSet::new();
    for i in 0..56 {
        let token = if i % 2 == 0 { SEED_TOKEN } else { OTHER_TOKEN };
        made.insert(app.transactions(token).create().await);
    }
    let mut c = Console::new(&app);
    c.sign_in(READ).await;
    let mut seen = Vec::new();
    let mut path = "/ui/transactions".to_owned();
    let mut pages = 0;
    loop {
        let page = c.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let (ids, next) = listed(&page.body);
        seen.extend(ids);
        pages += 1;
        match next {
            Some(n) => path = n,
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(seen.len(), 56, "no transaction twice");
    assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), made);
    // The second page links back to the first.
    assert!(c.get(&path).await.body.contains("First page"));
}

#[tokio::test]
async fn a_transaction_shows_its_pipeline_counts_and_errors_paged() {
    let app = spawn().await;
    let (with_errors, invalidated, open, _) = seed_with(&app, 30).await;
    let mut c = Console::new(&app);
    c.sign_in(READ).await;

    let page = c.get(&format!("/ui/transactions/{with_errors}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let html = &page.body;
    // The pipeline: every status a step, the current one marked.
    for code in 1..=10 {
        assert!(
            html.contains(&format!(r#"data-step="{code}""#)),
            "step {code}: {html}"
        );
    }
    assert!(
        html.contains(r#"class="step current warn" data-step="10" aria-current="step""#),
        "{html}"
    );
    assert!(
        html.contains(r#"class="step done" data-step="9""#),
        "{html}"
    );
    assert!(html.contains(r#"class="step skipped" data-step="5""#));
    assert!(html.contains(r#"data-stage="Consolidate""#));
    // Counts.
    assert!(html.contains("<dt>received</dt><dd>33</dd>"), "{html}");
    assert!(html.contains("<dt>invalid</dt><dd>30</dd>"));
    assert!(html.contains("<dt>consolidated</dt><dd>3</dd>"));
    assert!(html.contains("tenant <strong>8</strong>"));
    // Errors, a page of 25 of 30.
    assert!(html.contains("Per-item errors <small>(30)</small>"));
    assert!(html.contains("Showing 1–25 of 30"));
    assert!(html.contains("collaborator ghost0 does not exist"));
    assert!(html.contains(&format!("/ui/transactions/{with_errors}?offset=25#errors")));
    assert!(html.contains(&format!("/v1/transactions/{with_errors}/errors?offset=0")));
    assert!(html.contains("limit=25"));
    assert!(html.contains(&format!(
        r#"sse-connect="/ui/events?topics=transactions-{with_errors}""#
    )));
    // No abort: it is committed (and this token is read-only).
    assert!(!html.contains("Abort transaction"));

    let second = c
        .get(&format!("/ui/transactions/{with_errors}?offset=25"))
        .await;
    assert!(
        second.body.contains("Showing 26–30 of 30"),
        "{}",
        second.body
    );
    assert!(second.body.contains("← Previous"));
    assert!(!second.body.contains("Next →"));
    let frag = c
        .get_htmx(&format!("/ui/transactions/{with_errors}/errors?offset=29"))
        .await;
    assert_eq!(frag.status, StatusCode::OK);
    assert_eq!(frag.body.matches("<tr><td>results</td>").count(), 1);
    let summary = c
        .get_htmx(&format!("/ui/transactions/{with_errors}/summary"))
        .await;
    assert!(
        summary
            .body
            .contains(r#"data-step="10" aria-current="step""#)
    );

    // Invalidated: the Validate stage failed; nothing consolidated.
    let inv = c.get(&format!("/ui/transactions/{invalidated}")).await;
    assert!(
        inv.body
            .contains(r#"class="stage failed" data-stage="Validate""#),
        "{}",
        inv.body
    );
    assert!(
        inv.body
            .contains(r#"class="step current bad" data-step="8""#)
    );
    // Open: received so far, no pipeline yet.
    let o = c.get(&format!("/ui/transactions/{open}")).await;
    assert!(
        o.body.contains(r#"class="step current" data-step="1""#),
        "{}",
        o.body
    );
    assert!(o.body.contains("<dt>received</dt><dd>1</dd>"));

    // The newest matching a filter.
    let newest = c.get("/ui/transactions/newest?status=10").await;
    assert_eq!(newest.status, StatusCode::SEE_OTHER);
    assert_eq!(
        newest.header("location"),
        format!("/ui/transactions/{with_errors}")
    );
    let newest = c.get("/ui/transactions/newest?tenant=8").await;
    assert_eq!(
        newest.header("location"),
        format!("/ui/transactions/{open}")
    );
    let none = c.get("/ui/transactions/newest?status=11").await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert!(none.body.contains("no transaction matches"));

    // Bad input.
    let bad = c
        .get(&format!("/ui/transactions/{with_errors}?offset=-1"))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("is not a number"));
    for missing in ["8999", "not%20an%20id", "x"] {
        let nf = c.get(&format!("/ui/transactions/{missing}")).await;
        assert_eq!(nf.status, StatusCode::NOT_FOUND, "{missing}");
        assert!(nf.body.contains("Transaction not found"));
    }
}

#[tokio::test]
async fn an_open_transaction_is_aborted_through_the_console_but_not_by_a_read_only_token() {
    let app = spawn().await;
    let (with_errors, _, open, other) = seed_with(&app, 1).await;
    let tx = app.transactions(SEED_TOKEN);

    let mut reader = Console::new(&app);
    reader.sign_in(READ).await;
    let page = reader.get(&format!("/ui/transactions/{open}")).await;
    assert!(
        !page.body.contains("Abort transaction"),
        "read-only sees no action"
    );
    let refused = reader
        .post(&format!("/ui/transactions/{open}/abort"), "")
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(tx.get(&open).await["data"]["status"], 1);

    let mut c = Console::new(&app);
    c.sign_in(FULL).await;
    let page = c.get(&format!("/ui/transactions/{open}")).await;
    let html = &page.body;
    assert!(html.contains("Abort transaction"));
    assert!(html.contains(&format!(r#"hx-post="/ui/transactions/{open}/abort""#)));
    assert!(html.contains("hx-confirm=\"Abort transaction"));
    assert!(
        html.contains(&format!(
            "curl -X DELETE &#39;{}/v1/transactions/{open}&#39;",
            app.base
        )) || html.contains(&format!(
            "curl -X DELETE '{}/v1/transactions/{open}'",
            app.base
        )),
        "{html}"
    );
    assert!(html.contains("token: $TENANT_TOKEN"));

    // From another site: refused.
    let csrf = c
        .post_from(
            Some("http://evil.example"),
            &format!("/ui/transactions/{open}/abort"),
            "",
        )
        .await;
    assert_eq!(csrf.status, StatusCode::FORBIDDEN);
    assert_eq!(tx.get(&open).await["data"]["status"], 1);

    let done = c.post(&format!("/ui/transactions/{open}/abort"), "").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.header("location"), "/ui/transactions?tenant=8");
    let (s, _) = tx
        .call(Method::GET, &format!("/v1/transactions/{open}"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Through htmx: 204 and HX-Redirect to the tenant's list.
    let mut req = c
        .client
        .post(format!("{}/ui/transactions/{other}/abort", app.base))
        .header("origin", &app.base)
        .header("hx-request", "true");
    req = req.header(
        "cookie",
        format!("switchyard_console={}", c.cookie.as_ref().unwrap()),
    );
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(resp.headers()["hx-redirect"], "/ui/transactions?tenant=9");
    let (s, _) = app
        .transactions(OTHER_TOKEN)
        .call(Method::GET, &format!("/v1/transactions/{other}"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A committed one cannot be aborted; a gone one is not found.
    let late = c
        .post(&format!("/ui/transactions/{with_errors}/abort"), "")
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert!(late.body.contains("already committed"), "{}", late.body);
    let gone = c.post(&format!("/ui/transactions/{open}/abort"), "").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_overview_tile_puts_invalidated_and_failed_transactions_first() {
    let app = spawn().await;
    let (with_errors, invalidated, _, _) = seed_with(&app, 1).await;
    let mut c = Console::new(&app);
    c.sign_in(READ).await;
    let page = c.get("/ui/").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = &page.body;
    let tile = html
        .split(r#"data-section="transactions""#)
        .nth(1)
        .unwrap()
        .split("</article>")
        .next()
        .unwrap();
    assert!(
        tile.contains(r#"<div class="bad"><dt>invalidated</dt><dd>1</dd></div>"#),
        "{tile}"
    );
    assert!(tile.contains("<dt>open</dt><dd>2</dd>"));
    let first = tile.find(&invalidated).expect("invalidated listed");
    let second = tile.find(&with_errors).expect("done with errors listed");
    assert!(first < second, "invalidated first: {tile}");
    // A tile with something failing comes before the others.
    assert!(
        html.find(r#"data-section="transactions""#) < html.find(r#"data-section="gates""#),
        "{html}"
    );
}

/// Read an SSE stream until an event named `name` arrives.
async fn event(resp: &mut reqwest::Response, name: &str) -> bool {
    let want = format!("event: {name}\n");
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, resp.chunk()).await {
        seen.push_str(&String::from_utf8_lossy(&chunk));
        if seen.contains(&want) {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn changes_reach_the_list_and_the_transactions_topics() {
    let app = spawn().await;
    let tx = app.transactions(SEED_TOKEN);
    let id = tx.create().await;
    let topic = format!("transactions-{id}");
    let mut stream = reqwest::Client::new()
        .get(format!(
            "{}/ui/events?topics=transactions,{topic}",
            app.base
        ))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    // A batch changes the transaction (its counts).
    tx.post("collaborators", &id, json!([collaborator("1")]))
        .await;
    assert!(event(&mut stream, &topic).await, "no {topic} event");
    // A new transaction changes the list.
    app.transactions(OTHER_TOKEN).create().await;
    assert!(event(&mut stream, "transactions").await);
    // The pipeline's progress changes both.
    tx.commit(&id, "").await;
    app.drain().await;
    assert!(event(&mut stream, &topic).await);
    assert!(event(&mut stream, "transactions").await);
    // Not a topic: a bad id.
    let bad = reqwest::Client::new()
        .get(format!("{}/ui/events?topics=transactions-a%20b", app.base))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::NOT_FOUND);
}
