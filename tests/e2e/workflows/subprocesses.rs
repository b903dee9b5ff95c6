//! `subprocess` and nested `define` (research/workflows.md §3.1, §3.9):
//! by ref or bare name, attributes as variables (or fields with `f:`),
//! recursion, variable scopes, unknown names.

use serde_json::json;

use super::{Flow, assert_completed, plain};
use crate::support::participants::Behaviour;

#[tokio::test]
async fn a_subprocess_runs_a_nested_define_with_its_attributes_as_variables() {
    let f = Flow::new().await;
    let (_, wf) = f
        .go(
            "define\n  subprocess ref: review, who: alice\n  review who: bob\n  subprocess review, who: carol\n  define review\n    participant '${v:who}', stage: review\n",
            json!({"doc": 1}),
        )
        .await;
    assert_eq!(f.p.names(), ["alice", "bob", "carol"]);
    assert_eq!(
        *f.p.last("alice").params(),
        json!({"alice": null, "stage": "review"})
    );
    assert_completed(&wf, json!({"doc": 1}));
}

#[tokio::test]
async fn field_prefixed_attributes_are_written_into_the_workitem() {
    let f = Flow::new().await;
    let (_, wf) = f
        .go(
            json!(["define", {}, [
                ["subprocess", {"ref": "paint", "f:color": "red", "shade": "dark"}, []],
                ["define", {"paint": null}, [
                    ["painter", {"shade": "${v:shade}"}, []]]]]]),
            json!({}),
        )
        .await;
    let painter = f.p.last("painter");
    assert_eq!(plain(&painter), json!({"color": "red"}));
    assert_eq!(painter.params()["shade"], "dark");
    assert_completed(&wf, json!({"color": "red"}));
}

#[tokio::test]
async fn a_subprocess_can_call_itself() {
    let f = Flow::new().await;
    f.p.on(
        "step",
        Behaviour::reply(|_, visit| Some(json!({"n": visit}))),
    );
    // Through the root's own name.
    let (a, wf) = f
        .go(
            "define name: countdown\n  step\n  subprocess ref: countdown, if: '${f:n} < 3'\n",
            json!({}),
        )
        .await;
    assert_eq!(f.names_in(&a), ["step", "step", "step"]);
    assert_completed(&wf, json!({"n": 3}));
    // Through a nested define calling itself by bare name.
    let g = Flow::new().await;
    g.p.on(
        "step",
        Behaviour::reply(|_, visit| Some(json!({"n": visit}))),
    );
    let (b, wf) = g
        .go(
            "define\n  again\n  done\n  define again\n    step\n    again if: '${f:n} < 4'\n",
            json!({}),
        )
        .await;
    assert_eq!(g.names_in(&b), ["step", "step", "step", "step", "done"]);
    assert_completed(&wf, json!({"n": 4}));
}

#[tokio::test]
async fn a_subprocess_reads_outer_variables_and_writes_its_own() {
    let f = Flow::holding().await;
    f.p.otherwise(Behaviour::proceed());
    f.p.on("watcher", Behaviour::hold());
    let id = f
        .launch(
            "define\n  set 'v:x': outer\n  inner\n  watcher\n  define inner\n    set 'v:x': inside\n    set 'v:only_inner': 1\n    participant '${v:x}', outer_seen: '${v:x}'\n",
            json!({}),
        )
        .await;
    f.run().await;
    assert_eq!(f.p.names(), ["inside", "watcher"]);
    let wf = f.get(&id).await;
    assert_eq!(wf["variables"]["x"], "outer", "writes stay local: {wf:#}");
    assert!(wf["variables"].get("only_inner").is_none(), "{wf:#}");
}

#[tokio::test]
async fn an_outer_variable_is_readable_inside_a_subprocess() {
    let f = Flow::new().await;
    let (id, _) = f
        .go(
            "define\n  set 'v:who': zed\n  sub\n  define sub\n    participant '${v:who}'\n",
            json!({}),
        )
        .await;
    assert_eq!(f.names_in(&id), ["zed"]);
}

#[tokio::test]
async fn an_unknown_subprocess_is_an_error() {
    let f = Flow::new().await;
    let (id, wf) = f
        .go("define\n  subprocess ref: nothere\n  alpha\n", json!({}))
        .await;
    assert_eq!(wf["status"], "error", "{wf:#}");
    assert!(
        wf["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nothere"),
        "{wf:#}"
    );
    assert!(f.names_in(&id).is_empty());
}
