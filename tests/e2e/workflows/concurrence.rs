//! `concurrence` (research/workflows.md §3.2): every branch at once with a
//! copy of the fields; `count` and `remaining` (cancel callbacks, forget);
//! the merge winners (`first`, `last`, `highest`, `lowest`, an `over_if`
//! winner) and merge types (`override`, `mix`, `isolate`, `stack`,
//! `union`, `concat`).

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Flow, assert_completed, plain};
use crate::support::participants::Behaviour;

fn branch(name: &str) -> Value {
    json!({"seen": name, format!("own_{name}"): true, "a": [name, "x"]})
}

/// The fields a concurrence with `attrs` over alpha, bravo, charly ends
/// with when they reply in the order charly, alpha, bravo, each setting
/// [`branch`] fields.
async fn merged(attrs: &str) -> Value {
    let f = Flow::holding().await;
    let head = format!("concurrence {attrs}");
    let def = format!(
        "define\n  {}\n    alpha\n    bravo\n    charly\n",
        head.trim_end()
    );
    let id = f.launch(def, json!({"base": 0})).await;
    f.run().await;
    let mut names = f.p.names();
    names.sort();
    assert_eq!(names, ["alpha", "bravo", "charly"], "{attrs}: all at once");
    for name in ["charly", "alpha", "bravo"] {
        let cb = f.held(name);
        assert_eq!(plain(&cb), json!({"base": 0}), "{attrs}: a copy each");
        f.proceed(&cb, branch(name)).await;
        f.run().await;
    }
    let wf = f.get(&id).await;
    assert_eq!(wf["status"], "completed", "{attrs}: {wf:#}");
    wf["fields"].clone()
}

fn with_base(name: &str) -> Value {
    let mut v = branch(name);
    v["base"] = json!(0);
    v
}

#[tokio::test]
async fn the_merge_winner_is_the_first_or_last_reply_or_the_highest_or_lowest_branch() {
    assert_eq!(
        merged("").await,
        with_base("charly"),
        "default: first reply"
    );
    assert_eq!(merged("merge: first").await, with_base("charly"));
    assert_eq!(merged("merge: last").await, with_base("bravo"));
    assert_eq!(merged("merge: highest").await, with_base("alpha"));
    assert_eq!(merged("merge: lowest").await, with_base("charly"));
}

#[tokio::test]
async fn merge_type_mix_merges_every_reply_and_the_winner_prevails() {
    let all = json!({"base": 0, "own_alpha": true, "own_bravo": true, "own_charly": true});
    let mut first = all.clone();
    first["seen"] = json!("charly");
    first["a"] = json!(["charly", "x"]);
    assert_eq!(merged("merge_type: mix").await, first);
    let mut highest = all.clone();
    highest["seen"] = json!("alpha");
    highest["a"] = json!(["alpha", "x"]);
    assert_eq!(merged("merge_type: mix, merge: highest").await, highest);
    assert_eq!(
        merged("merge_type: override, merge: last").await,
        with_base("bravo")
    );
}

#[tokio::test]
async fn merge_type_isolate_keys_each_branch_by_its_index() {
    assert_eq!(
        merged("merge_type: isolate").await,
        json!({"0": with_base("alpha"), "1": with_base("bravo"), "2": with_base("charly")})
    );
}

#[tokio::test]
async fn merge_type_stack_lists_the_replies_with_the_attributes() {
    assert_eq!(
        merged("merge_type: stack").await,
        json!({"stack": [with_base("charly"), with_base("alpha"), with_base("bravo")],
               "stack_attributes": {"merge_type": "stack"}})
    );
}

#[tokio::test]
async fn merge_types_union_and_concat_combine_arrays_in_reply_order() {
    let owns = json!({"base": 0, "own_alpha": true, "own_bravo": true, "own_charly": true});
    let mut union = owns.clone();
    union["seen"] = json!("bravo");
    union["a"] = json!(["charly", "x", "alpha", "bravo"]);
    assert_eq!(
        merged("merge_type: union").await,
        union,
        "scalars: the last reply wins even with merge first"
    );
    let mut concat = owns;
    concat["seen"] = json!("bravo");
    concat["a"] = json!(["charly", "x", "alpha", "x", "bravo", "x"]);
    assert_eq!(merged("merge_type: concat").await, concat);
}

#[tokio::test]
async fn a_concurrence_waits_for_every_branch_before_the_next_step() {
    let f = Flow::holding().await;
    let id = f
        .launch(
            "define\n  concurrence\n    alpha\n    bravo\n    charly\n  delta\n",
            json!({}),
        )
        .await;
    f.run().await;
    let expids: Vec<String> = {
        let mut v: Vec<String> = f.p.active().iter().map(|c| c.expid().to_owned()).collect();
        v.sort();
        v
    };
    assert_eq!(expids, ["0_0_0", "0_0_1", "0_0_2"]);
    for name in ["alpha", "bravo"] {
        f.proceed(&f.held(name), json!({})).await;
        f.run().await;
        assert!(!f.p.names().contains(&"delta".to_owned()), "after {name}");
    }
    f.proceed(&f.held("charly"), json!({})).await;
    f.run().await;
    assert_eq!(f.p.names().last().map(String::as_str), Some("delta"));
    f.proceed(&f.held("delta"), json!({})).await;
    f.run().await;
    assert_eq!(f.app.workflows().status(&id).await, "completed");
    assert!(f.p.with_status("cancel").is_empty());
}

#[tokio::test]
async fn count_ends_the_concurrence_and_the_remaining_branches_get_cancel_callbacks() {
    let f = Flow::holding().await;
    let id = f
        .launch(
            "define\n  concurrence count: 1\n    alpha\n    bravo\n    charly\n  delta\n",
            json!({}),
        )
        .await;
    f.run().await;
    let (bravo, charly) = (f.held("bravo"), f.held("charly"));
    f.proceed(&f.held("alpha"), json!({"seen": "alpha"})).await;
    f.run().await;
    let delta = f.held("delta");
    assert_eq!(plain(&delta), json!({"seen": "alpha"}));
    let mut cancelled: Vec<(String, String)> =
        f.p.with_status("cancel")
            .into_iter()
            .map(|c| (c.participant, c.workitem_id))
            .collect();
    cancelled.sort();
    assert_eq!(
        cancelled,
        [
            ("bravo".to_owned(), bravo.workitem_id.clone()),
            ("charly".to_owned(), charly.workitem_id.clone())
        ]
    );
    let (s, b) = f
        .app
        .workflows()
        .proceed_at(&bravo.proceed_url, Some(json!({})))
        .await;
    assert_eq!(
        (s, b),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "workitem_id not found"})
        )
    );
    f.proceed(&delta, json!({})).await;
    f.run().await;
    assert_completed(&f.get(&id).await, json!({"seen": "alpha"}));
}

#[tokio::test]
async fn a_negative_count_waits_for_all_but_that_many() {
    let f = Flow::holding().await;
    f.launch(
        "define\n  concurrence count: -1\n    alpha\n    bravo\n    charly\n  delta\n",
        json!({}),
    )
    .await;
    f.run().await;
    f.proceed(&f.held("charly"), json!({})).await;
    f.run().await;
    assert!(!f.p.names().contains(&"delta".to_owned()));
    f.proceed(&f.held("alpha"), json!({})).await;
    f.run().await;
    assert!(
        f.p.names().contains(&"delta".to_owned()),
        "{:?}",
        f.p.trace()
    );
    let cancelled: Vec<String> =
        f.p.with_status("cancel")
            .into_iter()
            .map(|c| c.participant)
            .collect();
    assert_eq!(cancelled, ["bravo"]);
}

#[tokio::test]
async fn remaining_forget_lets_the_other_branches_run_on() {
    let f = Flow::holding().await;
    let id = f
        .launch(
            "define\n  concurrence count: 1, remaining: forget\n    alpha\n    bravo\n  delta\n",
            json!({}),
        )
        .await;
    f.run().await;
    let bravo = f.held("bravo");
    f.proceed(&f.held("alpha"), json!({"seen": "alpha"})).await;
    f.run().await;
    assert_eq!(plain(&f.held("delta")), json!({"seen": "alpha"}));
    assert!(f.p.with_status("cancel").is_empty(), "{:?}", f.p.trace());
    f.proceed(&bravo, json!({"late": true})).await;
    f.run().await;
    f.proceed(&f.held("delta"), json!({})).await;
    f.run().await;
    let wf = f.get(&id).await;
    assert_eq!(wf["status"], "completed", "{wf:#}");
    assert_eq!(wf["fields"]["seen"], "alpha", "{wf:#}");
}

#[tokio::test]
async fn an_over_if_reply_ends_the_concurrence_and_wins_the_merge() {
    let f = Flow::holding().await;
    let id = f
        .launch(
            "define\n  concurrence over_if: '${f:done} == true'\n    alpha\n    bravo\n    charly\n  delta\n",
            json!({}),
        )
        .await;
    f.run().await;
    f.proceed(&f.held("alpha"), json!({"seen": "alpha"})).await;
    f.run().await;
    assert!(
        !f.p.names().contains(&"delta".to_owned()),
        "alpha is not over"
    );
    f.proceed(&f.held("bravo"), json!({"seen": "bravo", "done": true}))
        .await;
    f.run().await;
    let delta = f.held("delta");
    assert_eq!(
        plain(&delta),
        json!({"seen": "bravo", "done": true}),
        "the over_if reply wins over the first reply"
    );
    let cancelled: Vec<String> =
        f.p.with_status("cancel")
            .into_iter()
            .map(|c| c.participant)
            .collect();
    assert_eq!(cancelled, ["charly"]);
    f.proceed(&delta, json!({})).await;
    f.run().await;
    assert_eq!(f.app.workflows().status(&id).await, "completed");
}

#[tokio::test]
async fn an_empty_concurrence_or_one_whose_branches_are_skipped_replies_at_once() {
    let f = Flow::new().await;
    let (_, wf) = f
        .go(
            "define\n  concurrence\n  concurrence\n    alpha if: false\n    bravo unless: true\n  charly\n",
            json!({"k": 1}),
        )
        .await;
    assert_eq!(f.p.names(), ["charly"]);
    assert_completed(&wf, json!({"k": 1}));
}

#[tokio::test]
async fn highest_and_lowest_compare_branch_indexes_as_numbers() {
    // Ruote sorts expids as strings (`0_0_10` < `0_0_2`); Switchyard does not.
    for (merge, winner) in [("lowest", "p10"), ("highest", "p0")] {
        let f = Flow::new().await;
        f.p.otherwise(Behaviour::reply(|cb, _| {
            Some(json!({"seen": cb.participant}))
        }));
        let branches: String = (0..11).map(|i| format!("    p{i}\n")).collect();
        let (_, wf) = f
            .go(
                format!("define\n  concurrence merge: {merge}\n{branches}"),
                json!({}),
            )
            .await;
        assert_completed(&wf, json!({"seen": winner}));
    }
}

#[tokio::test]
async fn a_workflow_is_not_over_while_a_forgotten_branch_runs() {
    let f = Flow::holding().await;
    let id = f
        .launch(
            "define\n  concurrence count: 1, remaining: forget\n    alpha\n    bravo\n  delta\n",
            json!({}),
        )
        .await;
    f.run().await;
    let bravo = f.held("bravo");
    f.proceed(&f.held("alpha"), json!({"seen": "alpha"})).await;
    f.run().await;
    f.proceed(&f.held("delta"), json!({})).await;
    f.run().await;
    let wf = f.get(&id).await;
    assert_eq!(wf["status"], "running", "bravo still works: {wf:#}");
    assert_eq!(
        wf["workitems"][0]["workitem_id"],
        bravo.workitem_id.as_str()
    );
    f.proceed(&bravo, json!({"late": true})).await;
    f.run().await;
    assert_completed(&f.get(&id).await, json!({"seen": "alpha"}));
}

#[tokio::test]
async fn wait_for_a_tag_ends_the_concurrence_when_that_branch_leaves() {
    let f = Flow::holding().await;
    let id = f
        .launch(
            "define\n  concurrence wait_for: b\n    sequence tag: a\n      alpha\n    sequence tag: b\n      bravo\n  charly\n",
            json!({}),
        )
        .await;
    f.run().await;
    f.proceed(&f.held("bravo"), json!({"seen": "bravo"})).await;
    f.run().await;
    assert_eq!(plain(&f.held("charly"))["seen"], "bravo");
    let cancelled: Vec<String> =
        f.p.with_status("cancel")
            .into_iter()
            .map(|c| c.participant)
            .collect();
    assert_eq!(cancelled, ["alpha"]);
    f.proceed(&f.held("charly"), json!({})).await;
    f.run().await;
    assert_eq!(f.app.workflows().status(&id).await, "completed");
}
