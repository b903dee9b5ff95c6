//! The workflow pages: the list by status (paged, jump to an id), a
//! workflow's tree with its current position, proceeding a workitem
//! (fields checked), cancel and replay, the overview tile, read-only
//! viewers and the live topic.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::live::{next_event, stream};
use super::{Console, FULL, READ};
use crate::support::TestApp;
use crate::support::participants::{Behaviour, Participants};
use crate::workflows::Flow;

/// [`seed_with`] participants of its own that hold every workitem.
pub async fn seed(app: &TestApp) -> (String, String) {
    let p = Participants::with_default(app, Behaviour::hold()).await;
    seed_with(app, &p).await
}

/// Two workflows through participants `p` (which must hold): one waiting
/// at `review` (launched with `{"doc": 42}`), one in error. Returns their
/// ids (waiting, in error).
pub async fn seed_with(app: &TestApp, p: &Participants) -> (String, String) {
    let waiting = app
        .workflows()
        .launch(
            "define\n  sequence\n    review task: 'check the draft'\n    publish\n",
            &p.url,
            json!({"doc": 42}),
        )
        .await;
    let failing = app
        .workflows()
        .launch(
            "define\n  sequence\n    prepare\n    error 'the printer is on fire'\n",
            &p.url,
            json!({}),
        )
        .await;
    p.run(app).await;
    // `prepare` is held: proceed it so the workflow reaches its error.
    let held = p
        .held()
        .into_iter()
        .find(|c| c.participant == "prepare")
        .unwrap();
    let (st, body) = app.workflows().proceed_at(&held.proceed_url, None).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    p.run(app).await;
    assert_eq!(app.workflows().status(&failing).await, "error");
    (waiting, failing)
}

#[tokio::test]
async fn the_list_filters_by_status_pages_and_jumps_to_an_id() {
    let f = Flow::holding().await;
    let (waiting, failing) = seed_with(&f.app, &f.p).await;
    let c = Console::new(&f.app);
    let all = c.get("/ui/workflows").await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(
        all.body.contains(&format!(r#"data-workflow="{waiting}""#)),
        "{}",
        all.body
    );
    assert!(all.body.contains(&format!(r#"data-workflow="{failing}""#)));
    assert!(
        all.body
            .contains("sse-connect=\"/ui/events?topics=workflows\"")
    );
    assert!(all.body.contains("/v1/workflows?limit=50"));
    let errors = c.get("/ui/workflows?status=error").await;
    assert!(
        errors
            .body
            .contains(&format!(r#"data-workflow="{failing}""#))
    );
    assert!(
        !errors
            .body
            .contains(&format!(r#"data-workflow="{waiting}""#))
    );
    assert!(
        errors.body.contains(r#"aria-current="page">In error"#),
        "{}",
        errors.body
    );
    let none = c.get("/ui/workflows?status=cancelled").await;
    assert!(none.body.contains("No workflow is cancelled"));
    let bad = c.get("/ui/workflows?status=asleep").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("status is one of"), "{}", bad.body);
    let bad = c.get("/ui/workflows?cursor=zz").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Jump to an id.
    let jump = c.get(&format!("/ui/workflows?id={waiting}")).await;
    assert_eq!(jump.status, StatusCode::SEE_OTHER);
    assert_eq!(jump.header("location"), format!("/ui/workflows/{waiting}"));
    let newest = c.get("/ui/workflows/newest?status=error").await;
    assert_eq!(newest.status, StatusCode::SEE_OTHER);
    assert_eq!(
        newest.header("location"),
        format!("/ui/workflows/{failing}")
    );
    let none = c.get("/ui/workflows/newest?status=cancelled").await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert!(
        none.body.contains("no workflow is cancelled"),
        "{}",
        none.body
    );
    assert!(
        errors
            .body
            .contains(r#"href="/ui/workflows/newest?status=error""#)
    );
    let missing = c.get("/ui/workflows?id=20990101-0000-nothing-here").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("no workflow"), "{}", missing.body);

    // The overview's tile puts the workflow in error first.
    let tiles = c.get("/ui/overview").await;
    assert!(
        tiles.body.contains(&format!("{failing} in error")),
        "{}",
        tiles.body
    );

    // Paging: 50 a page, the next link until the end.
    for _ in 0..50 {
        f.launch("define\n  alpha\n", json!({})).await;
    }
    let first = c.get("/ui/workflows").await;
    assert_eq!(first.body.matches("data-workflow=").count(), 50);
    assert!(
        !first
            .body
            .contains(&format!(r#"data-workflow="{waiting}""#))
    );
    let next = first
        .body
        .split("href=\"")
        .find_map(|s| s.strip_prefix("/ui/workflows?cursor="))
        .and_then(|s| s.split('"').next())
        .unwrap();
    let second = c
        .get(&format!(
            "/ui/workflows?cursor={}",
            next.replace("&amp;", "&")
        ))
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert!(
        second
            .body
            .contains(&format!(r#"data-workflow="{waiting}""#))
    );
    assert!(
        second
            .body
            .contains(&format!(r#"data-workflow="{failing}""#))
    );
    assert!(!second.body.contains("rel=\"next\""));
}

#[tokio::test]
async fn a_workflow_page_shows_the_tree_at_its_position_workitems_and_history() {
    let f = Flow::holding().await;
    let (waiting, failing) = seed_with(&f.app, &f.p).await;
    let c = Console::new(&f.app);
    let page = c.get(&format!("/ui/workflows/{waiting}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let html = &page.body;
    // The tree, the current position highlighted, its ancestors on the path.
    assert!(
        html.contains(r#"<li class="here" data-expid="0_0_0">"#),
        "{html}"
    );
    assert!(html.contains(r#"<li class="path" data-expid="0_0">"#));
    assert!(html.contains(r#"<li data-expid="0_0_1">"#));
    assert!(html.contains("task: check the draft"));
    // The open workitem with its proceed form and API call; cancel.
    let wi = f.app.workflows().get(&waiting).await["workitems"][0]["workitem_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(html.contains(&format!(r#"data-workitem="{wi}""#)));
    assert!(html.contains(r#"data-action="proceed""#));
    assert!(html.contains(&format!("/v1/workflows/{waiting}/workitems/{wi}/proceed")));
    assert!(html.contains(r#"data-action="cancel""#));
    assert!(html.contains("hx-confirm=\"Cancel workflow"));
    assert!(!html.contains(r#"data-action="replay""#));
    // History, newest first.
    assert!(html.contains(r#"data-event="dispatched""#));
    let dispatched = html.find(r#"data-event="dispatched""#).unwrap();
    let launched = html.find(r#"data-event="launched""#).unwrap();
    assert!(dispatched < launched);
    assert!(html.contains(&format!("topics=workflows-{waiting}")));

    // The workflow in error: the failing expression and replay.
    let page = c.get(&format!("/ui/workflows/{failing}")).await;
    let html = &page.body;
    assert!(
        html.contains(r#"<li class="failed" data-expid="0_0_1">"#),
        "{html}"
    );
    assert!(html.contains("the printer is on fire"));
    assert!(html.contains(r#"data-action="replay""#));

    let gone = c.get("/ui/workflows/20990101-0000-nothing-here").await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert!(gone.body.contains("workflow_id not found"));
}

#[tokio::test]
async fn proceed_cancel_and_replay_through_the_console_change_what_the_api_answers() {
    let f = Flow::holding().await;
    let (waiting, failing) = seed_with(&f.app, &f.p).await;
    let c = Console::new(&f.app);
    let wi = f.app.workflows().get(&waiting).await["workitems"][0]["workitem_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let action = format!(
        "/ui/workflows/{waiting}/workitems/{}/proceed",
        wi.replace('!', "%21")
    );
    // Bad fields: readable 400s, nothing proceeded.
    let bad = c.post(&action, "fields=%7Bapproved%3A+true").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("fields is not JSON"), "{}", bad.body);
    let bad = c.post(&action, "fields=%5B1%5D").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("fields must be an object"),
        "{}",
        bad.body
    );
    let bad = c.post(&action, "fields=%7B%22__x__%22%3A1%7D").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("reserved"), "{}", bad.body);
    assert_eq!(
        f.app.workflows().get(&waiting).await["workitems"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Proceed with fields: the workitem is gone at once, the next one comes.
    let ok = c.post(&action, "fields=%7B%22approved%22%3A+true%7D").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert!(!ok.body.contains(&format!(r#"data-workitem="{wi}""#)));
    let again = c.post(&action, "fields=").await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.body.contains("workitem_id not found"));
    f.run().await;
    let wf = f.app.workflows().get(&waiting).await;
    assert_eq!(wf["workitems"][0]["participant"], "publish", "{wf:#}");
    assert_eq!(wf["workitems"][0]["fields"]["approved"], true);

    // Cancel.
    let ok = c.post(&format!("/ui/workflows/{waiting}/cancel"), "").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    f.run().await;
    assert_eq!(f.app.workflows().status(&waiting).await, "cancelled");
    let again = c.post(&format!("/ui/workflows/{waiting}/cancel"), "").await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);

    // Replay the one in error: it goes past the error and completes.
    let ok = c.post(&format!("/ui/workflows/{failing}/replay"), "").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    f.run().await;
    assert_eq!(f.app.workflows().status(&failing).await, "completed");
    let again = c.post(&format!("/ui/workflows/{failing}/replay"), "").await;
    assert_eq!(again.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn read_only_viewers_see_no_actions_and_cannot_act_and_changes_reach_the_live_topic() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.api.api_tokens = vec![FULL.into()];
            c.api.api_read_tokens = vec![READ.into()];
            c.api.ui_live_interval = Duration::from_millis(50);
            c.families.workflows.workflow_callback_policy = crate::workflows::FAST.into();
        })
        .spawn()
        .await;
    let (waiting, _) = seed(&app).await;
    let wi = app.workflows().get(&waiting).await["workitems"][0]["workitem_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut c = Console::new(&app);
    c.sign_in(READ).await;
    let page = c.get(&format!("/ui/workflows/{waiting}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!(r#"data-workitem="{wi}""#)));
    assert!(!page.body.contains(r#"data-action="proceed""#));
    assert!(!page.body.contains(r#"data-action="cancel""#));
    let refused = c.post(&format!("/ui/workflows/{waiting}/cancel"), "").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(app.workflows().status(&waiting).await, "running");

    let mut events = stream(&app, &format!("workflows-{waiting},workflows")).await;
    assert_eq!(events.status(), StatusCode::OK);
    let (st, body) = app
        .workflows()
        .proceed(&waiting, &wi, Some(json!({})))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert!(
        next_event(
            &mut events,
            &format!("workflows-{waiting}"),
            Duration::from_secs(5)
        )
        .await,
        "no event after a proceed"
    );
}

/// A workflow's page in headless Chromium (`browser::PAGES` screenshots
/// it): bad fields typed into the proceed form show the reason and proceed
/// nothing; good ones proceed the workitem, as the JSON API then says, and
/// the next workitem arrives without a reload.
#[tokio::test]
async fn a_workflow_page_works_in_a_browser() {
    let Some(browser) = crate::support::browser::Browser::launch().await else {
        return;
    };
    let f = Flow::holding().await;
    let (waiting, _) = seed_with(&f.app, &f.p).await;
    let page = browser.new_page().await;
    let open = |id: String| {
        let page = &page;
        let url = format!("{}/ui/workflows/{id}", f.app.base);
        async move {
            page.goto(&url).await;
            page.wait_for(
                "document.readyState === 'complete' && typeof htmx !== 'undefined'",
                Duration::from_secs(10),
            )
            .await;
        }
    };
    open(waiting.clone()).await;
    page.eval("window.__stay = 7").await;
    let form = "document.querySelector('form.proceed')";
    page.eval(&format!(
        "{form}.querySelector('textarea').value = '{{approved: yes}}'; {form}.querySelector('button').click(); true"
    ))
    .await;
    page.wait_for(
        "!document.getElementById('flash').hidden && document.getElementById('flash').textContent.startsWith('fields is not JSON')",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        f.app.workflows().get(&waiting).await["workitems"][0]["participant"],
        "review"
    );
    page.eval(&format!(
        "{form}.querySelector('textarea').value = '{{\"approved\": true}}'; {form}.querySelector('button').click(); true"
    ))
    .await;
    page.wait_for(
        "document.querySelector('article.workitem') === null",
        Duration::from_secs(10),
    )
    .await;
    f.run().await;
    let wf = f.app.workflows().get(&waiting).await;
    assert_eq!(wf["workitems"][0]["participant"], "publish", "{wf:#}");
    assert_eq!(wf["workitems"][0]["fields"]["approved"], true);
    // The next workitem arrives live.
    page.wait_for(
        "document.querySelector('article.workitem strong') !== null && document.querySelector('article.workitem strong').textContent === 'publish'",
        Duration::from_secs(10),
    )
    .await;
    // A live refresh keeps what is being typed into the fields.
    page.eval(&format!(
        "{form}.querySelector('textarea').value = '{{\"draft\": 1}}'; document.querySelector('.wf-head').dataset.old = '1'; htmx.trigger('#workflow', 'sse:workflows-{waiting}'); true"
    ))
    .await;
    page.wait_for(
        "document.querySelector('.wf-head').dataset.old === undefined",
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        page.eval(&format!("{form}.querySelector('textarea').value"))
            .await,
        "{\"draft\": 1}"
    );
    assert_eq!(page.eval("window.__stay").await, 7, "the page reloaded");
    let remote: Vec<String> = page
        .requests()
        .into_iter()
        .filter(|u| !u.starts_with(&f.app.base) && !u.starts_with("data:"))
        .collect();
    assert!(remote.is_empty(), "requests left the app: {remote:?}");
}
