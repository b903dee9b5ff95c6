//! Tags and the expressions that act on them or on the process
//! (research/workflows.md §2.3, §3.1, §3.10, §3.11): `undo`/`redo` by tag,
//! `kill_process`, `let` scopes, `sleep`, `stall`.

use serde_json::json;

use super::{Flow, plain};
use crate::support::participants::Behaviour;

#[tokio::test]
async fn undo_cancels_the_tagged_expression_and_the_flow_goes_on() {
    let f = Flow::new().await;
    f.p.on("alpha", Behaviour::hold());
    let (id, wf) = f
        .go(
            "define\n  concurrence\n    sequence tag: slow\n      alpha\n    sequence\n      bravo\n      undo ref: slow\n  charly\n",
            json!({}),
        )
        .await;
    let mut first = f.names_in(&id);
    let last = first.pop();
    first.sort();
    assert_eq!(
        (first, last.as_deref()),
        (vec!["alpha".to_owned(), "bravo".to_owned()], Some("charly"))
    );
    assert_eq!(f.p.with_status("cancel").len(), 1);
    assert_eq!(f.p.with_status("cancel")[0].participant, "alpha");
    assert_eq!(wf["status"], "completed", "{wf:#}");
}

#[tokio::test]
async fn redo_applies_the_tagged_expression_again_with_its_original_workitem() {
    let f = Flow::new().await;
    f.p.on(
        "alpha",
        Behaviour::reply(|_, visit| (visit > 1).then(|| json!({"a": visit}))),
    );
    f.p.on("bravo", Behaviour::set(json!({"b": 1})));
    let (id, wf) = f
        .go(
            "define\n  concurrence merge_type: mix\n    sequence tag: work\n      alpha\n    sequence\n      bravo\n      redo ref: work\n  charly\n",
            json!({"start": 0}),
        )
        .await;
    let names = f.names_in(&id);
    assert_eq!(names[2..], ["alpha", "charly"], "{names:?}");
    assert_eq!(f.p.with_status("cancel")[0].participant, "alpha");
    assert_eq!(wf["status"], "completed", "{wf:#}");
    for (k, v) in [("start", 0), ("a", 2), ("b", 1)] {
        assert_eq!(wf["fields"][k], v, "{wf:#}");
    }
    let left = wf["fields"].get("__tags__").cloned().unwrap_or(json!([]));
    assert_eq!(left, json!([]), "every tag entered was left: {wf:#}");
    let alphas = f.p.of("alpha");
    assert_eq!(
        plain(&alphas[1]),
        plain(&alphas[0]),
        "the same workitem as the first time"
    );
    assert_eq!(plain(&alphas[0])["start"], 0);
}

#[tokio::test]
async fn kill_process_skips_on_cancel_handlers() {
    let f = Flow::new().await;
    f.p.on("alpha", Behaviour::hold());
    let (id, wf) = f
        .go(
            "define\n  sequence on_cancel: cleaner\n    concurrence\n      alpha\n      sequence\n        bravo\n        kill_process\n",
            json!({}),
        )
        .await;
    assert_eq!(wf["status"], "cancelled", "{wf:#}");
    assert!(!f.names_in(&id).contains(&"cleaner".to_owned()));
}

#[tokio::test]
async fn let_opens_a_variable_scope() {
    let f = Flow::holding().await;
    f.p.otherwise(Behaviour::proceed());
    f.p.on("watcher", Behaviour::hold());
    let id = f
        .launch(
            "define\n  set 'v:x': outer\n  let\n    set 'v:x': inner\n    participant '${v:x}'\n  participant '${v:x}'\n  watcher\n",
            json!({}),
        )
        .await;
    f.run().await;
    assert_eq!(f.p.names(), ["inner", "outer", "watcher"]);
    assert_eq!(f.get(&id).await["variables"], json!({"x": "outer"}));
}

#[tokio::test]
async fn sleep_waits_like_wait_and_stall_never_replies() {
    let f = Flow::new().await;
    let (id, wf) = f
        .go(
            "define\n  alpha\n  sleep 0.2s\n  concurrence count: 1\n    stall\n    bravo\n  charly\n",
            json!({}),
        )
        .await;
    assert_eq!(f.names_in(&id), ["alpha", "bravo", "charly"]);
    let gap = f.p.last("bravo").at - f.p.last("alpha").at;
    assert!(gap >= std::time::Duration::from_millis(200), "{gap:?}");
    assert_eq!(wf["status"], "completed");
    let (id, _) = f.go("define\n  stall\n  delta\n", json!({})).await;
    assert_eq!(f.app.workflows().status(&id).await, "running");
    assert!(f.names_in(&id).is_empty());
}
