//! Durable timers: `wait`, `timeout` with its `timeout` callback and the
//! flow continuing with the dispatched fields plus `__timed_out__`, and
//! `on_timeout` handlers (research/workflows.md §1.8, §2.3, §2.4, §3.11).
//! Durations are short; `settle()` waits for the scheduler's timers.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use super::{Flow, assert_completed, plain};
use crate::support::participants::Behaviour;

#[tokio::test]
async fn wait_holds_the_flow_until_its_timer_fires() {
    let f = Flow::new().await;
    let id = f
        .launch("define\n  alpha\n  wait for: 0.3s\n  bravo\n", json!({}))
        .await;
    f.app.drain().await;
    f.p.idle().await;
    f.app.drain().await;
    assert_eq!(f.p.names(), ["alpha"], "bravo waits");
    let tree = f.app.workflows().tree(&id).await;
    assert_eq!(
        tree["positions"],
        json!(["0_1"]),
        "waiting at the wait: {tree:#}"
    );
    f.run().await;
    assert_eq!(f.p.names(), ["alpha", "bravo"]);
    let gap = f.p.last("bravo").at - f.p.last("alpha").at;
    assert!(gap >= Duration::from_millis(300), "{gap:?}");
    assert_completed(&f.get(&id).await, json!({}));
    // A wait without a duration, or in the past, replies at once.
    let (id, wf) = f
        .go(
            "define\n  wait\n  wait until: '2001-01-01 00:00:00'\n  charly\n",
            json!({}),
        )
        .await;
    assert_eq!(f.names_in(&id), ["charly"]);
    assert_eq!(wf["status"], "completed");
}

#[tokio::test]
async fn a_participant_timeout_sends_a_timeout_callback_and_the_flow_continues() {
    let f = Flow::new().await;
    f.p.on("alpha", Behaviour::hold());
    let id = f
        .launch("define\n  alpha timeout: 0.2s\n  bravo\n", json!({"a": 1}))
        .await;
    f.run().await;
    let alpha = f.p.of("alpha");
    assert_eq!(alpha.len(), 1);
    let timeouts = f.p.with_status("timeout");
    assert_eq!(timeouts.len(), 1, "{:?}", f.p.trace());
    assert_eq!(timeouts[0].participant, "alpha");
    assert_eq!(timeouts[0].workitem_id, alpha[0].workitem_id);
    assert!(
        timeouts[0].fields.get("__timed_out__").is_some(),
        "{:?}",
        timeouts[0].body
    );
    assert!(timeouts[0].at - alpha[0].at >= Duration::from_millis(200));
    let bravo = f.p.last("bravo");
    assert_eq!(*bravo.params(), json!({"ref": "bravo"}));
    assert_eq!(bravo.fields["a"], 1);
    assert!(
        bravo.fields.get("__timed_out__").is_some(),
        "the flow continues with the dispatched fields and __timed_out__: {:?}",
        bravo.body
    );
    let (s, b) = f
        .app
        .workflows()
        .proceed_at(&alpha[0].proceed_url, Some(json!({"late": true})))
        .await;
    assert_eq!(
        (s, b),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "workitem_id not found"})
        )
    );
    let wf = f.get(&id).await;
    assert_eq!(wf["status"], "completed", "{wf:#}");
    assert_eq!(wf["fields"]["a"], 1);
    assert!(wf["fields"].get("late").is_none());
    assert!(
        f.app
            .workflows()
            .history_types(&id)
            .await
            .contains(&"timed_out".to_owned())
    );
}

#[tokio::test]
async fn a_numeric_timeout_is_seconds() {
    let f = Flow::new().await;
    f.p.on("alpha", Behaviour::hold());
    let (id, _) = f
        .go(
            json!(["define", {}, [["alpha", {"timeout": 0.2}, []], ["bravo", {}, []]]]),
            json!({}),
        )
        .await;
    assert_eq!(f.p.with_status("timeout").len(), 1);
    assert_eq!(f.names_in(&id), ["alpha", "bravo"]);
}

#[tokio::test]
async fn a_timeout_on_a_sequence_cancels_its_participants_with_status_cancel() {
    let f = Flow::new().await;
    f.p.on("alpha", Behaviour::hold());
    let (id, wf) = f
        .go(
            "define\n  sequence timeout: 0.2s\n    alpha\n    never\n  bravo\n",
            json!({}),
        )
        .await;
    let mut trace = f.p.trace();
    trace.sort();
    assert_eq!(trace, ["alpha:active", "alpha:cancel", "bravo:active"]);
    assert_eq!(f.names_in(&id), ["alpha", "bravo"]);
    assert_eq!(wf["status"], "completed");
}

#[tokio::test]
async fn on_timeout_replaces_the_participant_with_a_handler_at_the_same_place() {
    let f = Flow::new().await;
    f.p.on("alpha", Behaviour::hold());
    f.p.on("boss", Behaviour::set(json!({"escalated": true})));
    let (_, wf) = f
        .go(
            "define\n  alpha timeout: 0.2s, on_timeout: boss\n  bravo\n",
            json!({}),
        )
        .await;
    assert_eq!(f.p.names(), ["alpha", "boss", "bravo"]);
    assert_eq!(f.p.with_status("timeout").len(), 1);
    let (alpha, boss) = (f.p.last("alpha"), f.p.last("boss"));
    assert_eq!(boss.expid(), alpha.expid(), "replaced in place");
    assert!(
        boss.fields.get("__timed_out__").is_some(),
        "{:?}",
        boss.body
    );
    assert_eq!(f.p.last("bravo").fields["escalated"], true);
    assert_eq!(wf["status"], "completed");
}

#[tokio::test]
async fn on_timeout_redo_dispatches_the_participant_again() {
    let f = Flow::new().await;
    f.p.on(
        "alpha",
        Behaviour::reply(|_, visit| (visit > 1).then(|| json!({"done": true}))),
    );
    let (_, wf) = f
        .go(
            "define\n  alpha timeout: 0.2s, on_timeout: redo\n  bravo\n",
            json!({}),
        )
        .await;
    assert_eq!(f.p.names(), ["alpha", "alpha", "bravo"]);
    let alphas = f.p.of("alpha");
    assert_ne!(
        alphas[0].webhook_id(),
        alphas[1].webhook_id(),
        "a new dispatch is a new delivery"
    );
    assert_eq!(f.p.last("bravo").fields["done"], true);
    assert_eq!(wf["status"], "completed");
}

#[tokio::test]
async fn on_timeout_error_puts_the_workflow_in_error() {
    let f = Flow::new().await;
    f.p.on("alpha", Behaviour::hold());
    let (id, wf) = f
        .go(
            "define\n  alpha timeout: 0.2s, on_timeout: error\n  bravo\n",
            json!({}),
        )
        .await;
    assert_eq!(wf["status"], "error", "{wf:#}");
    assert_eq!(f.names_in(&id), ["alpha"]);
    assert_eq!(wf["errors"].as_array().unwrap().len(), 1, "{wf:#}");
}

#[tokio::test]
async fn a_proceed_before_the_timeout_clears_the_timer() {
    let f = Flow::new().await;
    f.p.on(
        "alpha",
        Behaviour::set(json!({"in_time": true})).proceeding_after(Duration::from_millis(10)),
    );
    let (id, wf) = f
        .go("define\n  alpha timeout: 0.3s\n  bravo\n", json!({}))
        .await;
    assert_completed(&wf, json!({"in_time": true}));
    assert!(f.p.with_status("timeout").is_empty());
    assert_eq!(f.names_in(&id), ["alpha", "bravo"]);
    assert!(
        !plain(&f.p.last("bravo"))
            .as_object()
            .unwrap()
            .contains_key("__timed_out__")
    );
}

#[tokio::test]
async fn a_cancel_clears_pending_waits_and_timeouts() {
    let f = Flow::new().await;
    f.p.on("alpha", Behaviour::hold());
    let waiting = f
        .launch("define\n  wait for: 0.3s\n  bravo\n", json!({}))
        .await;
    let timing = f
        .launch("define\n  alpha timeout: 0.3s\n  charly\n", json!({}))
        .await;
    f.run_without_timers().await;
    assert_eq!(f.p.names(), ["alpha"]);
    for id in [&waiting, &timing] {
        assert_eq!(f.app.workflows().cancel(id).await.0, StatusCode::CREATED);
    }
    f.run().await;
    assert_eq!(f.p.trace(), ["alpha:active", "alpha:cancel"]);
    for id in [&waiting, &timing] {
        assert_eq!(f.app.workflows().status(id).await, "cancelled");
        let types = f.app.workflows().history_types(id).await;
        assert!(!types.contains(&"timed_out".to_owned()), "{types:?}");
    }
}

#[tokio::test]
async fn a_later_cancel_is_a_plain_cancel_even_after_a_timeout() {
    // Ruote reports it as `timeout` because `__timed_out__` stays in the
    // fields (research §1.8, §1.11 #9); Switchyard labels it by what happened.
    let f = Flow::holding().await;
    let id = f
        .launch("define\n  alpha timeout: 0.15s\n  bravo\n", json!({}))
        .await;
    f.run().await;
    assert!(f.held("bravo").fields.get("__timed_out__").is_some());
    assert_eq!(f.app.workflows().cancel(&id).await.0, StatusCode::CREATED);
    f.run().await;
    let mut trace = f.p.trace();
    trace.sort();
    assert_eq!(
        trace,
        [
            "alpha:active",
            "alpha:timeout",
            "bravo:active",
            "bravo:cancel"
        ]
    );
    assert_eq!(
        *f.p.last("alpha").params(),
        json!({"ref": "alpha", "timeout": "0.15s"}),
        "params hold every attribute"
    );
}
