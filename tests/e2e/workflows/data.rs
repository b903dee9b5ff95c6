//! `set`/`unset` of fields and variables (visible in GET's `variables`),
//! `echo` (history) and `noop` (research/workflows.md §3.8, §3.11).

use serde_json::json;

use super::{Flow, assert_completed, plain};

#[tokio::test]
async fn set_and_unset_change_fields_and_variables() {
    let f = Flow::holding().await;
    let def = r#"
define
  set field: a, value: 1
  set 'f:b': two
  set b2: three
  set 'v:x': alpha
  set variable: y, value: [1, 2]
  set 'v:z': { k: v }
  set 'obj.k': 1
  set 'no.parent': literal
  set field: copy, field_value: a
  set field: from_var, variable_value: x
  set field: empty
  unset field: b
  unset variable: y
  watcher
"#;
    let id = f.launch(def, json!({"obj": {}})).await;
    f.run().await;
    let watcher = f.held("watcher");
    assert_eq!(
        plain(&watcher),
        json!({"obj": {"k": 1}, "a": 1, "b2": "three", "no.parent": "literal",
               "copy": 1, "from_var": "alpha", "empty": null}),
        "unset removed b; no __result__ reaches a participant"
    );
    let wf = f.get(&id).await;
    assert_eq!(wf["status"], "running");
    assert_eq!(
        wf["variables"],
        json!({"x": "alpha", "z": {"k": "v"}}),
        "{wf:#}"
    );
    f.proceed(&watcher, json!({})).await;
    f.run().await;
    assert_eq!(f.app.workflows().status(&id).await, "completed");
}

#[tokio::test]
async fn echo_writes_its_text_to_the_history_and_noop_does_nothing() {
    let f = Flow::new().await;
    let (id, wf) = f
        .go(
            "define\n  echo 'hello ${f:who}'\n  noop\n  alpha\n  echo text: second\n  noop\n",
            json!({"who": "world"}),
        )
        .await;
    assert_completed(&wf, json!({"who": "world"}));
    let events = f.app.workflows().history(&id).await;
    let seq: Vec<String> = events
        .iter()
        .map(|e| match e["type"].as_str().unwrap() {
            "echo" => format!("echo:{}", e["text"].as_str().unwrap()),
            t => t.to_owned(),
        })
        .collect();
    assert_eq!(
        seq,
        [
            "launched",
            "echo:hello world",
            "dispatched",
            "proceeded",
            "echo:second",
            "completed"
        ]
    );
    assert_eq!(f.p.names(), ["alpha"]);
}
