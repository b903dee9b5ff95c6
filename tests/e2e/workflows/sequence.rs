//! `sequence` and participants (research/workflows.md §3.1, §3.3): one
//! after another with the fields so far, params from attributes, bare
//! names, `${}` in names and attributes, shallow field merges.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::json;

use super::{Flow, assert_completed, plain};
use crate::support::participants::Behaviour;

#[tokio::test]
async fn a_sequence_dispatches_one_participant_at_a_time_with_the_fields_so_far() {
    let f = Flow::holding().await;
    let id = f
        .launch(
            "define\n  sequence\n    alpha\n    bravo\n    charly\n",
            json!({"start": 0}),
        )
        .await;
    f.run().await;
    assert_eq!(f.p.names(), ["alpha"], "only the first");
    f.proceed(&f.held("alpha"), json!({"a": 1})).await;
    f.run().await;
    assert_eq!(f.p.names(), ["alpha", "bravo"]);
    let bravo = f.held("bravo");
    assert_eq!(
        bravo.fields,
        json!({"params": {"ref": "bravo"}, "start": 0, "a": 1})
    );
    f.proceed(&bravo, json!({"b": 2, "start": "changed"})).await;
    f.run().await;
    let charly = f.held("charly");
    assert_eq!(plain(&charly), json!({"start": "changed", "a": 1, "b": 2}));
    f.proceed(&charly, json!({})).await;
    f.run().await;
    assert_completed(
        &f.get(&id).await,
        json!({"start": "changed", "a": 1, "b": 2}),
    );
    let expids: Vec<String> = f.p.active().iter().map(|c| c.expid().to_owned()).collect();
    assert_eq!(expids, ["0_0_0", "0_0_1", "0_0_2"]);
    let ids: HashSet<String> = f.p.active().into_iter().map(|c| c.workitem_id).collect();
    assert_eq!(ids.len(), 3, "a workitem id per dispatch");
}

#[tokio::test]
async fn an_empty_sequence_and_a_definition_without_participants_complete_at_once() {
    let f = Flow::new().await;
    let (id, wf) = f
        .go("define\n  sequence\n  noop\n", json!({"k": "v"}))
        .await;
    assert_completed(&wf, json!({"k": "v"}));
    assert_eq!(f.p.all().len(), 0);
    assert_eq!(
        f.app.workflows().history_types(&id).await,
        ["launched", "completed"]
    );
}

#[tokio::test]
async fn participant_attributes_become_params_and_bare_names_are_participants() {
    let f = Flow::new().await;
    let (_, wf) = f
        .go(
            "define\n  participant ref: alpha, task: review, n: 3\n  participant bravo\n  charly 'nemo', action: nada\n  participant 'delta'\n",
            json!({}),
        )
        .await;
    assert_eq!(f.p.names(), ["alpha", "bravo", "charly", "delta"]);
    assert_eq!(
        *f.p.last("alpha").params(),
        json!({"ref": "alpha", "task": "review", "n": 3})
    );
    assert_eq!(*f.p.last("bravo").params(), json!({"bravo": null}));
    assert_eq!(
        *f.p.last("charly").params(),
        json!({"nemo": null, "action": "nada", "ref": "charly"})
    );
    assert_eq!(*f.p.last("delta").params(), json!({"delta": null}));
    assert_completed(&wf, json!({}));
}

#[tokio::test]
async fn names_and_params_are_substituted_strings_or_raw_values() {
    let f = Flow::new().await;
    let def = json!(["define", {}, [
        ["participant", {"${f:who}": null, "task": "call ${f:who}", "list": "$f:items",
                         "n": "${f:n}", "missing": "${f:nothing}", "raw_missing": "$f:nothing"}, []],
        ["participant", {"ref": "user_${f:n}"}, []],
        ["${f:who}", {"k_${f:n}": "v"}, []]]]);
    let (_, wf) = f
        .go(def, json!({"who": "bravo", "n": 2, "items": ["a", "b"]}))
        .await;
    assert_eq!(f.p.names(), ["bravo", "user_2", "bravo"]);
    let first = &f.p.of("bravo")[0];
    assert_eq!(
        *first.params(),
        json!({"bravo": null, "task": "call bravo", "list": ["a", "b"], "n": "2",
               "missing": "", "raw_missing": null})
    );
    assert_eq!(*f.p.last("user_2").params(), json!({"ref": "user_2"}));
    assert_eq!(
        *f.p.last("bravo").params(),
        json!({"ref": "bravo", "k_2": "v"})
    );
    assert_completed(&wf, json!({"who": "bravo", "n": 2, "items": ["a", "b"]}));
}

#[tokio::test]
async fn a_proceed_merges_fields_shallowly_and_without_fields_changes_nothing() {
    let f = Flow::holding().await;
    let id = f
        .launch(
            "define\n  alpha\n  bravo\n  charly\n",
            json!({"keep": 1, "nested": {"a": 1, "b": 2}}),
        )
        .await;
    f.run().await;
    f.proceed(&f.held("alpha"), json!({"nested": {"a": 9}, "new": [1]}))
        .await;
    f.run().await;
    let bravo = f.held("bravo");
    assert_eq!(
        plain(&bravo),
        json!({"keep": 1, "nested": {"a": 9}, "new": [1]}),
        "top-level keys replaced whole"
    );
    // No body at all, then JSON with "fields": null: nothing changes.
    let (s, b) = f.app.workflows().proceed_at(&bravo.proceed_url, None).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    f.run().await;
    let charly = f.held("charly");
    assert_eq!(plain(&charly), plain(&bravo));
    f.proceed(&charly, serde_json::Value::Null).await;
    f.run().await;
    assert_completed(
        &f.get(&id).await,
        json!({"keep": 1, "nested": {"a": 9}, "new": [1]}),
    );
}

#[tokio::test]
async fn params_are_dropped_on_reply_even_if_a_participant_sends_them_back() {
    let f = Flow::new().await;
    f.p.on(
        "alpha",
        Behaviour::reply(|cb, _| Some(json!({"params": cb.params().clone(), "x": 1}))),
    );
    let (_, wf) = f.go("define\n  alpha task: a\n  bravo\n", json!({})).await;
    assert_eq!(
        f.p.last("bravo").fields,
        json!({"params": {"ref": "bravo"}, "x": 1})
    );
    assert_completed(&wf, json!({"x": 1}));
}
