//! `iterator` and `concurrent_iterator` (research/workflows.md §3.5, §3.6):
//! `on_val`/`on_field`, `to_field`/`to_var`, the variables `i` and `ii`,
//! commands, and the concurrent form's branches and merge.

use serde_json::json;

use super::{Flow, assert_completed, plain};
use crate::support::participants::Behaviour;

#[tokio::test]
async fn an_iterator_on_a_value_runs_its_body_once_per_item_with_i_and_ii() {
    let f = Flow::holding().await;
    f.p.otherwise(Behaviour::proceed());
    f.p.on("end", Behaviour::hold());
    let id = f
        .launch(
            "define\n  iterator on_val: 'alice, bob, carol'\n    participant '${v:i}', idx: '${v:ii}'\n  end\n",
            json!({}),
        )
        .await;
    f.run().await;
    assert_eq!(f.p.names(), ["alice", "bob", "carol", "end"]);
    let idx: Vec<serde_json::Value> = f.p.active()[..3]
        .iter()
        .map(|c| c.params()["idx"].clone())
        .collect();
    assert_eq!(idx, [json!("0"), json!("1"), json!("2")]);
    assert_eq!(
        f.p.last("bob").params()["bob"],
        json!(null),
        "the substituted name is a text attribute: {:?}",
        f.p.last("bob").params()
    );
    // No scope of its own: i and ii stay visible afterwards.
    let wf = f.get(&id).await;
    assert_eq!(wf["variables"]["i"], "carol", "{wf:#}");
    assert_eq!(wf["variables"]["ii"], 2, "{wf:#}");
}

#[tokio::test]
async fn an_iterator_on_a_field_writes_each_item_to_a_field_or_a_variable() {
    let f = Flow::new().await;
    let (_, wf) = f
        .go(
            "define\n  iterator on_field: customers, to_field: customer\n    participant '${f:customer}'\n  iterator on_val: [x, y], to_var: v\n    agent item: '${v:v}'\n",
            json!({"customers": ["ann", "ben"]}),
        )
        .await;
    assert_eq!(f.p.names(), ["ann", "ben", "agent", "agent"]);
    assert_eq!(
        plain(&f.p.last("ben")),
        json!({"customers": ["ann", "ben"], "customer": "ben"})
    );
    let items: Vec<_> =
        f.p.of("agent")
            .iter()
            .map(|c| c.params()["item"].clone())
            .collect();
    assert_eq!(items, [json!("x"), json!("y")]);
    assert_completed(&wf, json!({"customers": ["ann", "ben"], "customer": "ben"}));
}

#[tokio::test]
async fn an_iterator_on_a_variable_or_a_number_of_times() {
    let f = Flow::new().await;
    let (id, wf) = f
        .go(
            "define\n  set 'v:list': [p, q]\n  iterator on_var: list, to: seen\n    participant '${f:seen}'\n  iterator times: 2\n    r idx: '${v:i}'\n",
            json!({}),
        )
        .await;
    assert_eq!(f.names_in(&id), ["p", "q", "r", "r"]);
    let idx: Vec<_> =
        f.p.of("r")
            .iter()
            .map(|c| c.params()["idx"].clone())
            .collect();
    assert_eq!(idx, [json!("0"), json!("1")]);
    assert_completed(&wf, json!({"seen": "q"}));
}

#[tokio::test]
async fn an_iterator_obeys_skip_break_and_rewind_commands() {
    // skip 1 at item b: c is skipped.
    let f = Flow::new().await;
    f.p.on(
        "worker",
        Behaviour::reply(|cb, _| {
            Some(match cb.params()["item"].as_str() {
                Some("b") => json!({"__command__": ["skip", 1]}),
                _ => json!({}),
            })
        }),
    );
    let (id, _) = f
        .go(
            "define\n  iterator on_val: [a, b, c, d], to_var: x\n    worker item: '${v:x}'\n",
            json!({}),
        )
        .await;
    let items: Vec<_> =
        f.p.of("worker")
            .iter()
            .map(|c| c.params()["item"].clone())
            .collect();
    assert_eq!(items, [json!("a"), json!("b"), json!("d")]);
    assert_eq!(f.app.workflows().status(&id).await, "completed");

    // break at b; then a rewind from b once.
    for (command, expected) in [
        ("break", vec!["a", "b"]),
        ("rewind", vec!["a", "b", "a", "b", "c"]),
    ] {
        let f = Flow::new().await;
        f.p.on(
            "worker",
            Behaviour::reply(move |cb, visit| {
                Some(if cb.params()["item"] == "b" && visit == 2 {
                    json!({"__command__": [command]})
                } else {
                    json!({})
                })
            }),
        );
        let (id, _) = f
            .go(
                "define\n  iterator on_val: [a, b, c], to_var: x\n    worker item: '${v:x}'\n",
                json!({}),
            )
            .await;
        let items: Vec<_> =
            f.p.of("worker")
                .iter()
                .map(|c| c.params()["item"].clone())
                .collect();
        assert_eq!(items, expected, "{command}");
        assert_eq!(f.app.workflows().status(&id).await, "completed");
    }
}

#[tokio::test]
async fn break_if_on_an_iterator_stops_it() {
    let f = Flow::new().await;
    f.p.on(
        "worker",
        Behaviour::reply(|cb, _| Some(json!({"last": cb.params()["item"].clone()}))),
    );
    let (_, wf) = f
        .go(
            "define\n  iterator on_val: [a, b, c], to_var: x, break_if: '${f:last} == b'\n    worker item: '${v:x}'\n",
            json!({}),
        )
        .await;
    assert_eq!(f.p.names(), ["worker", "worker"]);
    assert_completed(&wf, json!({"last": "b"}));
}

#[tokio::test]
async fn a_concurrent_iterator_runs_every_item_at_once_and_merges_the_branches() {
    let f = Flow::holding().await;
    let id = f
        .launch(
            "define\n  concurrent_iterator on_val: [a, b, c], to_field: item, merge_type: mix\n    participant 'p_${f:item}', idx: '${v:ii}'\n  after\n",
            json!({"base": 0}),
        )
        .await;
    f.run().await;
    let mut names = f.p.names();
    names.sort();
    assert_eq!(names, ["p_a", "p_b", "p_c"], "all at once");
    for (name, item, idx) in [("p_a", "a", "0"), ("p_b", "b", "1"), ("p_c", "c", "2")] {
        let cb = f.held(name);
        assert_eq!(plain(&cb), json!({"base": 0, "item": item}), "{name}");
        assert_eq!(cb.params()["idx"], idx, "{name}");
    }
    for name in ["p_c", "p_a", "p_b"] {
        let cb = f.held(name);
        f.proceed(&cb, json!({ format!("got_{}", &name[2..]): true }))
            .await;
        f.run().await;
    }
    let after = f.held("after");
    assert_eq!(
        plain(&after),
        json!({"base": 0, "item": "c", "got_a": true, "got_b": true, "got_c": true}),
        "mix, the first reply (c) winning"
    );
    f.proceed(&after, json!({})).await;
    f.run().await;
    assert_eq!(f.app.workflows().status(&id).await, "completed");
}

#[tokio::test]
async fn a_concurrent_iterator_with_count_cancels_the_rest() {
    let f = Flow::holding().await;
    f.launch(
        "define\n  concurrent_iterator on_val: [a, b, c], to_var: v, count: 1\n    worker item: '${v:v}'\n  after\n",
        json!({}),
    )
    .await;
    f.run().await;
    let b =
        f.p.held()
            .into_iter()
            .find(|c| c.params()["item"] == "b")
            .unwrap();
    f.proceed(&b, json!({"won": "b"})).await;
    f.run().await;
    assert_eq!(plain(&f.held("after")), json!({"won": "b"}));
    let mut cancelled: Vec<String> =
        f.p.with_status("cancel")
            .iter()
            .map(|c| c.params()["item"].as_str().unwrap().to_owned())
            .collect();
    cancelled.sort();
    assert_eq!(cancelled, ["a", "c"]);
}
