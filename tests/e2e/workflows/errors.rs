//! Errors and cancels: `error` (status `error`, the errors list, replay),
//! `on_error` (participant, `redo`/`retry`, schedules, `pass`/`undo`,
//! `cancel`, `store`), `on_cancel`, `cancel_process`/`terminate`,
//! `forget` and `lose` (research/workflows.md §2.4, §2.5, §3.10, §3.11).

use reqwest::StatusCode;
use serde_json::json;

use super::{Flow, assert_cancels_follow_dispatches, assert_completed, plain};
use crate::support::participants::Behaviour;

#[tokio::test]
async fn an_error_expression_stops_the_workflow_and_a_replay_resumes_past_it() {
    let f = Flow::new().await;
    let (id, wf) = f
        .go(
            "define\n  alpha\n  error 'boom ${f:n}'\n  bravo\n",
            json!({"n": 1}),
        )
        .await;
    assert_eq!(f.names_in(&id), ["alpha"]);
    assert_eq!(wf["status"], "error", "{wf:#}");
    let errors = wf["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{wf:#}");
    assert_eq!(errors[0]["expid"], "0_1");
    assert_eq!(errors[0]["expression"], "error");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(message.ends_with("boom 1"), "{message}");
    assert!(errors[0]["at"].is_string());
    let history = f.app.workflows().history(&id).await;
    let last = history.last().unwrap();
    assert_eq!(last["type"], "error", "{history:#?}");
    if let Some(text) = last["text"].as_str() {
        assert!(text.contains("boom 1"), "{history:#?}");
    }
    // Cancel-free recovery: replay retries the failed expression, which
    // (as in Ruote) raised after being applied, so the flow goes on.
    let (s, b) = f.app.workflows().replay(&id).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    f.run().await;
    assert_eq!(f.names_in(&id), ["alpha", "bravo"]);
    let wf = f.get(&id).await;
    assert_completed(&wf, json!({"n": 1}));
    assert_eq!(wf["errors"], json!([]));
    assert_eq!(f.app.workflows().replay(&id).await.0, StatusCode::CONFLICT);
}

#[tokio::test]
async fn other_branches_go_on_while_one_is_in_error() {
    let f = Flow::holding().await;
    let id = f
        .launch(
            "define\n  concurrence\n    alpha\n    sequence\n      error boom\n  bravo\n",
            json!({}),
        )
        .await;
    f.run().await;
    assert_eq!(f.app.workflows().status(&id).await, "error");
    let alpha = f.held("alpha");
    f.proceed(&alpha, json!({"a": 1})).await;
    f.run().await;
    let wf = f.get(&id).await;
    assert_eq!(wf["status"], "error", "{wf:#}");
    assert_eq!(wf["errors"].as_array().unwrap().len(), 1);
    assert_eq!(
        f.p.names(),
        ["alpha"],
        "the concurrence waits for the failed branch"
    );
    assert_eq!(f.app.workflows().replay(&id).await.0, StatusCode::CREATED);
    f.run().await;
    let bravo = f.held("bravo");
    assert_eq!(plain(&bravo), json!({"a": 1}));
    f.proceed(&bravo, json!({})).await;
    f.run().await;
    assert_completed(&f.get(&id).await, json!({"a": 1}));
}

#[tokio::test]
async fn an_error_without_text_has_ruotes_default_message() {
    let f = Flow::new().await;
    let (_, wf) = f.go("define\n  error\n", json!({})).await;
    let message = wf["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.ends_with("error triggered from process definition"),
        "{wf:#}"
    );
}

#[tokio::test]
async fn a_workflow_in_error_can_be_cancelled() {
    let f = Flow::new().await;
    let (id, _) = f.go("define\n  error boom\n", json!({})).await;
    assert_eq!(f.app.workflows().cancel(&id).await.0, StatusCode::CREATED);
    f.run().await;
    assert_eq!(f.app.workflows().status(&id).await, "cancelled");
}

#[tokio::test]
async fn on_error_hands_the_failing_workitem_to_a_participant_and_the_flow_continues() {
    let f = Flow::new().await;
    f.p.on("fixer", Behaviour::set(json!({"fixed": true})));
    let (_, wf) = f
        .go(
            "define\n  sequence on_error: fixer\n    alpha\n    error broken\n    never\n  bravo\n",
            json!({}),
        )
        .await;
    assert_eq!(f.p.names(), ["alpha", "fixer", "bravo"]);
    let fixer = f.p.last("fixer");
    assert_eq!(
        fixer.fields["__error__"]["message"], "broken",
        "{:?}",
        fixer.body
    );
    assert_eq!(f.p.last("bravo").fields["fixed"], true);
    assert_eq!(wf["status"], "completed", "{wf:#}");
    assert_eq!(wf["errors"], json!([]));
}

#[tokio::test]
async fn on_error_on_an_ancestor_cancels_the_active_siblings_first() {
    let f = Flow::new().await;
    f.p.on("alpha", Behaviour::hold());
    let (_, wf) = f
        .go(
            "define\n  concurrence on_error: fixer\n    alpha\n    sequence\n      bravo\n      error x\n  charly\n",
            json!({}),
        )
        .await;
    let mut trace = f.p.trace();
    trace.sort();
    assert_eq!(
        trace,
        [
            "alpha:active",
            "alpha:cancel",
            "bravo:active",
            "charly:active",
            "fixer:active"
        ]
    );
    let alpha = f.p.last("alpha");
    let cancel = &f.p.with_status("cancel")[0];
    assert_eq!(cancel.workitem_id, alpha.workitem_id);
    assert!(
        cancel.fields.get("__error__").is_none(),
        "a plain cancel: {:?}",
        cancel.body
    );
    assert!(f.p.last("fixer").fields.get("__error__").is_some());
    assert_eq!(wf["status"], "completed");
}

#[tokio::test]
async fn a_sibling_dispatched_in_the_same_step_as_the_error_is_not_cancelled_unannounced() {
    let f = Flow::holding().await;
    f.p.on("fixer", Behaviour::proceed());
    let (_, wf) = f
        .go(
            "define\n  concurrence on_error: fixer\n    alpha\n    sequence\n      error x\n",
            json!({}),
        )
        .await;
    assert_eq!(wf["status"], "completed", "{wf:#}");
    assert!(f.p.names().contains(&"fixer".to_owned()));
    assert_cancels_follow_dispatches(&f.p);
}

#[tokio::test]
async fn on_error_redo_runs_the_expression_again_with_the_failing_workitem() {
    let f = Flow::new().await;
    f.p.on(
        "alpha",
        Behaviour::reply(|_, visit| Some(json!({"fail": if visit == 1 { "yes" } else { "no" }}))),
    );
    let (_, wf) = f
        .go(
            "define\n  sequence on_error: redo\n    alpha\n    error x, if: '${f:fail} == yes'\n  bravo\n",
            json!({}),
        )
        .await;
    assert_eq!(f.p.names(), ["alpha", "alpha", "bravo"]);
    let second = &f.p.of("alpha")[1];
    assert_eq!(second.fields["fail"], "yes", "{:?}", second.body);
    assert_eq!(second.fields["__error__"]["message"], "x");
    assert_eq!(wf["status"], "completed");
}

#[tokio::test]
async fn an_on_error_schedule_retries_then_passes() {
    let f = Flow::new().await;
    f.p.on("alpha", Behaviour::set(json!({"fail": "yes"})));
    let (_, wf) = f
        .go(
            "define\n  sequence on_error: '0.1s: retry * 2, pass'\n    alpha\n    error x, if: '${f:fail} == yes'\n  bravo\n",
            json!({}),
        )
        .await;
    assert_eq!(f.p.names(), ["alpha", "alpha", "alpha", "bravo"]);
    let alphas = f.p.of("alpha");
    for w in alphas.windows(2) {
        assert!(
            w[1].at - w[0].at >= std::time::Duration::from_millis(100),
            "retried after the delay"
        );
    }
    assert_eq!(wf["status"], "completed", "{wf:#}");
}

#[tokio::test]
async fn on_error_pass_and_undo_give_up_on_the_expression() {
    for handler in ["pass", "undo"] {
        let f = Flow::new().await;
        let (id, wf) = f
            .go(
                format!("define\n  sequence on_error: {handler}\n    alpha\n    error x\n    never\n  bravo\n"),
                json!({}),
            )
            .await;
        assert_eq!(f.names_in(&id), ["alpha", "bravo"], "{handler}");
        assert_eq!(wf["status"], "completed", "{handler}: {wf:#}");
    }
}

#[tokio::test]
async fn on_error_cancel_triggers_the_on_cancel_handler() {
    let f = Flow::new().await;
    let (_, wf) = f
        .go(
            "define\n  sequence on_error: cancel, on_cancel: cleaner\n    alpha\n    error x\n  bravo\n",
            json!({}),
        )
        .await;
    assert_eq!(f.p.names(), ["alpha", "cleaner", "bravo"]);
    assert_eq!(wf["status"], "completed");
}

#[tokio::test]
async fn on_error_store_keeps_the_error_in_a_field_and_continues() {
    let f = Flow::new().await;
    let (_, wf) = f
        .go(
            "define\n  sequence on_error: 'store: err'\n    error 'went wrong'\n  bravo\n",
            json!({}),
        )
        .await;
    assert_eq!(f.p.names(), ["bravo"]);
    assert_eq!(
        f.p.last("bravo").fields["err"]["message"],
        "went wrong",
        "{:?}",
        f.p.last("bravo").body
    );
    assert_eq!(wf["status"], "completed");
}

#[tokio::test]
async fn an_on_error_handler_named_like_a_define_is_a_subprocess() {
    let f = Flow::new().await;
    let (_, wf) = f
        .go(
            "define\n  sequence on_error: rescue\n    error x\n  bravo\n  define rescue\n    medic what: '${f:__error__.message}'\n",
            json!({}),
        )
        .await;
    assert_eq!(
        f.p.names(),
        ["medic", "bravo"],
        "the subprocess wins over a participant"
    );
    assert_eq!(f.p.last("medic").params()["what"], "x");
    assert_eq!(wf["status"], "completed");
}

#[tokio::test]
async fn the_nearest_on_error_wins() {
    let f = Flow::new().await;
    let (_, wf) = f
        .go(
            "define on_error: outer\n  sequence on_error: inner\n    error x\n  bravo\n",
            json!({}),
        )
        .await;
    assert_eq!(f.p.names(), ["inner", "bravo"]);
    assert_eq!(wf["status"], "completed");
}

#[tokio::test]
async fn on_cancel_runs_when_its_expression_is_cancelled() {
    let f = Flow::holding().await;
    f.p.on("cleaner", Behaviour::set(json!({"cleaned": true})));
    let id = f
        .launch(
            "define\n  sequence on_cancel: cleaner\n    alpha\n  bravo\n",
            json!({}),
        )
        .await;
    f.run().await;
    let alpha = f.held("alpha");
    assert_eq!(f.app.workflows().cancel(&id).await.0, StatusCode::CREATED);
    f.run().await;
    let mut trace = f.p.trace();
    trace.sort();
    assert_eq!(trace, ["alpha:active", "alpha:cancel", "cleaner:active"]);
    assert_eq!(f.p.with_status("cancel")[0].workitem_id, alpha.workitem_id);
    let wf = f.get(&id).await;
    assert_eq!(wf["status"], "cancelled", "{wf:#}");
    assert!(!f.p.names().contains(&"bravo".to_owned()));
}

#[tokio::test]
async fn a_second_cancel_while_on_cancel_runs_is_refused() {
    let f = Flow::holding().await;
    let id = f
        .launch(
            "define\n  sequence on_cancel: cleaner\n    alpha\n",
            json!({}),
        )
        .await;
    f.run().await;
    assert_eq!(f.app.workflows().cancel(&id).await.0, StatusCode::CREATED);
    f.run().await;
    let cleaner = f.held("cleaner");
    assert_eq!(f.app.workflows().status(&id).await, "running", "cancelling");
    assert_eq!(
        f.app.workflows().cancel(&id).await,
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "workflow_id not found"})
        )
    );
    f.proceed(&cleaner, json!({})).await;
    f.run().await;
    assert_eq!(f.app.workflows().status(&id).await, "cancelled");
    let mut trace = f.p.trace();
    trace.sort();
    assert_eq!(trace, ["alpha:active", "alpha:cancel", "cleaner:active"]);
}

#[tokio::test]
async fn cancel_process_and_terminate_end_the_workflow_from_inside() {
    for name in ["cancel_process", "terminate"] {
        let f = Flow::new().await;
        f.p.on("alpha", Behaviour::hold());
        let (_, wf) = f
            .go(
                format!("define\n  concurrence\n    alpha\n    sequence\n      bravo\n      {name}\n      never\n  charly\n"),
                json!({}),
            )
            .await;
        let mut trace = f.p.trace();
        trace.sort();
        assert_eq!(
            trace,
            ["alpha:active", "alpha:cancel", "bravo:active"],
            "{name}"
        );
        assert_eq!(wf["status"], "cancelled", "{name}: {wf:#}");
        assert_eq!(
            f.app
                .workflows()
                .proceed_at(&f.held("alpha").proceed_url, None)
                .await
                .0,
            StatusCode::BAD_REQUEST
        );
    }
}

#[tokio::test]
async fn forget_replies_at_once_and_its_branch_runs_on() {
    for def in [
        "define\n  forget\n    alpha\n  bravo\n",
        "define\n  alpha forget: true\n  bravo\n",
    ] {
        let f = Flow::holding().await;
        let id = f.launch(def, json!({})).await;
        f.run().await;
        let mut names = f.p.names();
        names.sort();
        assert_eq!(names, ["alpha", "bravo"], "{def}: bravo does not wait");
        f.proceed(&f.held("bravo"), json!({"b": 1})).await;
        f.run().await;
        f.proceed(&f.held("alpha"), json!({"a": 1})).await;
        f.run().await;
        let wf = f.get(&id).await;
        assert_eq!(wf["status"], "completed", "{def}: {wf:#}");
        assert_eq!(wf["fields"]["b"], 1, "{def}: {wf:#}");
        assert!(f.p.with_status("cancel").is_empty());
    }
}

#[tokio::test]
async fn lose_never_replies() {
    let f = Flow::holding().await;
    let id = f
        .launch(
            "define\n  concurrence count: 1\n    lose\n      alpha\n    bravo\n  charly\n",
            json!({}),
        )
        .await;
    f.run().await;
    f.proceed(&f.held("alpha"), json!({"a": 1})).await;
    f.run().await;
    assert!(!f.p.names().contains(&"charly".to_owned()), "lost");
    f.proceed(&f.held("bravo"), json!({"b": 1})).await;
    f.run().await;
    let charly = f.held("charly");
    assert_eq!(plain(&charly), json!({"b": 1}));
    f.proceed(&charly, json!({})).await;
    f.run().await;
    assert_completed(&f.get(&id).await, json!({"b": 1}));
}
