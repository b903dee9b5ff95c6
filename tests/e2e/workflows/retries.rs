//! The `active` callback's retries (research/workflows.md §1.5, §1.11 #7)
//! with a millisecond schedule: N+1 attempts at the configured spacing,
//! one delivery id throughout, `error` (or `on_error`) after the last
//! failure, and no ghost callbacks: cancel and proceed clear pending
//! retries.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use super::app_with;
use crate::support::TestApp;
use crate::support::participants::{Behaviour, Callback, Participants};

/// `schedule:100ms,200ms,300ms`: four attempts.
const DELAYS: [u64; 3] = [100, 200, 300];

async fn app() -> TestApp {
    app_with(|c| {
        c.outbox
            .retry_policies
            .push("wfms=schedule:100ms,200ms,300ms".into());
        c.families.workflows.workflow_callback_policy = "wfms".into();
    })
    .await
}

fn attempts_of(p: &Participants, name: &str) -> Vec<Callback> {
    p.all()
        .into_iter()
        .filter(|c| c.participant == name && c.status == "active")
        .collect()
}

#[track_caller]
fn assert_spacing(attempts: &[Callback]) {
    for (i, w) in attempts.windows(2).enumerate() {
        let gap = w[1].at - w[0].at;
        let delay = Duration::from_millis(DELAYS[i]);
        assert!(
            gap >= delay && gap < delay + Duration::from_secs(1),
            "attempt {} came {gap:?} after the previous one (delay {delay:?})",
            i + 2
        );
        assert_eq!(w[1].webhook_id(), w[0].webhook_id(), "one delivery id");
        assert_eq!(w[1].body, w[0].body, "the same callback");
        assert_eq!(w[1].attempt, i + 2);
    }
}

#[tokio::test]
async fn a_receiver_failing_n_times_gets_n_plus_one_attempts_at_the_configured_spacing() {
    let app = app().await;
    let p = Participants::start(&app).await;
    p.on("alpha", Behaviour::proceed().failing(3));
    let id = app
        .workflows()
        .launch("define\n  alpha\n  bravo\n", &p.url, json!({}))
        .await;
    p.run(&app).await;
    let attempts = attempts_of(&p, "alpha");
    assert_eq!(attempts.len(), 4, "{:?}", p.trace());
    assert_eq!(
        attempts.iter().map(|a| a.answered).collect::<Vec<_>>(),
        [500, 500, 500, 204]
    );
    assert_spacing(&attempts);
    assert_eq!(p.names(), ["alpha", "bravo"]);
    let wf = app.workflows().get(&id).await;
    assert_eq!(wf["status"], "completed", "{wf:#}");
}

#[tokio::test]
async fn after_the_last_failure_the_workflow_is_in_error_and_a_replay_dispatches_again() {
    let app = app().await;
    let p = Participants::start(&app).await;
    p.on("alpha", Behaviour::proceed().failing(1000));
    let id = app
        .workflows()
        .launch("define\n  alpha\n  bravo\n", &p.url, json!({}))
        .await;
    p.run(&app).await;
    let attempts = attempts_of(&p, "alpha");
    assert_eq!(attempts.len(), 4, "policy exhausted: {:?}", p.trace());
    assert_spacing(&attempts);
    let wf = app.workflows().get(&id).await;
    assert_eq!(wf["status"], "error", "{wf:#}");
    assert_eq!(wf["errors"].as_array().unwrap().len(), 1, "{wf:#}");
    assert_eq!(wf["errors"][0]["expid"], "0_0", "{wf:#}");
    assert!(
        app.workflows()
            .history_types(&id)
            .await
            .contains(&"error".to_owned())
    );
    p.run(&app).await;
    assert_eq!(attempts_of(&p, "alpha").len(), 4, "nothing more");

    p.on("alpha", Behaviour::proceed());
    let (s, b) = app.workflows().replay(&id).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    p.run(&app).await;
    assert_eq!(p.names(), ["alpha", "bravo"]);
    assert_eq!(app.workflows().status(&id).await, "completed");
}

#[tokio::test]
async fn on_error_handles_a_callback_that_kept_failing() {
    let app = app().await;
    let p = Participants::start(&app).await;
    p.on("alpha", Behaviour::proceed().failing(1000));
    let id = app
        .workflows()
        .launch(
            "define\n  alpha on_error: fixer\n  bravo\n",
            &p.url,
            json!({}),
        )
        .await;
    p.run(&app).await;
    assert_eq!(attempts_of(&p, "alpha").len(), 4);
    assert_eq!(p.names(), ["fixer", "bravo"]);
    assert!(p.last("fixer").fields.get("__error__").is_some());
    assert!(
        p.with_status("cancel").is_empty() && p.with_status("error").is_empty(),
        "the participant replaced in place gets nothing: {:?}",
        p.trace()
    );
    assert_eq!(app.workflows().status(&id).await, "completed");
}

#[tokio::test]
async fn a_cancel_during_retries_leaves_no_ghost_active_callbacks() {
    let app = app().await;
    let p = Participants::start(&app).await;
    p.on("alpha", Behaviour::proceed().failing(1000));
    let id = app
        .workflows()
        .launch("define\n  alpha\n  bravo\n", &p.url, json!({}))
        .await;
    app.drain().await;
    assert_eq!(
        attempts_of(&p, "alpha").len(),
        1,
        "the first attempt failed"
    );
    let (s, b) = app.workflows().cancel(&id).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let cancelled_at = Instant::now();
    p.run(&app).await;
    let late: Vec<_> = attempts_of(&p, "alpha")
        .into_iter()
        .filter(|c| c.at > cancelled_at)
        .collect();
    assert!(
        late.is_empty(),
        "active callbacks after the cancel: {late:?}"
    );
    assert_eq!(app.workflows().status(&id).await, "cancelled");
    assert_eq!(p.with_status("cancel").len(), 1, "{:?}", p.trace());
    // `run` settles: it waited for every timer due within the settle
    // horizon, past the whole schedule.
    assert_eq!(attempts_of(&p, "alpha").len(), 1);
}

#[tokio::test]
async fn a_proceed_during_retries_clears_them() {
    let app = app().await;
    let p = Participants::start(&app).await;
    p.on("alpha", Behaviour::hold().failing(1000));
    let id = app
        .workflows()
        .launch("define\n  alpha\n  bravo\n", &p.url, json!({}))
        .await;
    app.drain().await;
    let first = attempts_of(&p, "alpha");
    assert_eq!(first.len(), 1);
    // The receiver did the work although it answered 500: it proceeds.
    let (s, b) = app
        .workflows()
        .proceed_at(&first[0].proceed_url, Some(json!({"done": true})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    p.run(&app).await;
    // `run` waited for every timer within the settle horizon: the schedule.
    assert_eq!(
        attempts_of(&p, "alpha").len(),
        1,
        "no retry after the proceed"
    );
    assert_eq!(p.names(), ["bravo"]);
    let wf = app.workflows().get(&id).await;
    assert_eq!(wf["status"], "completed", "{wf:#}");
    assert_eq!(wf["fields"], json!({"done": true}));
}

#[tokio::test]
async fn a_timed_out_dispatch_is_not_retried_after_its_replacement() {
    let app = app().await;
    let p = Participants::start(&app).await;
    p.on("alpha", Behaviour::proceed().failing(1000));
    let id = app
        .workflows()
        .launch(
            "define\n  alpha timeout: 0.15s, on_timeout: fallback\n  bravo\n",
            &p.url,
            json!({}),
        )
        .await;
    p.run(&app).await;
    let timeout = p.with_status("timeout");
    assert_eq!(timeout.len(), 1, "{:?}", p.trace());
    let attempts = attempts_of(&p, "alpha");
    assert_eq!(
        attempts.len(),
        2,
        "attempts at 0 and 100 ms, none at 300 ms after the 150 ms timeout: {:?}",
        p.trace()
    );
    assert!(attempts.iter().all(|a| a.at < timeout[0].at));
    let fallback = p.last("fallback");
    assert_eq!(
        fallback.workitem_id, attempts[0].workitem_id,
        "replaced in place"
    );
    assert_ne!(fallback.webhook_id(), attempts[0].webhook_id());
    assert_eq!(p.names(), ["fallback", "bravo"]);
    assert_eq!(app.workflows().status(&id).await, "completed");
}
