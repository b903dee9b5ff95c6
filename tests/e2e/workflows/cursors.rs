//! `cursor`, `repeat`/`loop` and their commands (research/workflows.md
//! §3.4): `rewind`, `skip`, `jump`, `break`/`stop`, `reset`, the
//! `rewind_if`/`break_if` attributes, and `__command__` returned by a
//! participant.

use serde_json::json;

use super::{Flow, assert_completed, plain};
use crate::support::participants::Behaviour;

#[tokio::test]
async fn rewind_if_restarts_the_cursor_with_the_current_fields() {
    let f = Flow::new().await;
    f.p.on("alpha", Behaviour::set(json!({"again": "no"})));
    f.p.on(
        "bravo",
        Behaviour::reply(|_, visit| {
            Some(json!({"again": if visit == 1 { "yes" } else { "no" }, "b": visit}))
        }),
    );
    let (_, wf) = f
        .go(
            "define\n  cursor rewind_if: '${f:again} == yes'\n    alpha\n    bravo\n  charly\n",
            json!({}),
        )
        .await;
    assert_eq!(f.p.names(), ["alpha", "bravo", "alpha", "bravo", "charly"]);
    assert_eq!(
        plain(&f.p.of("alpha")[1]),
        json!({"again": "yes", "b": 1}),
        "rewind keeps the changes"
    );
    assert_completed(&wf, json!({"again": "no", "b": 2}));
}

#[tokio::test]
async fn a_rewind_expression_with_a_condition_loops_until_it_is_false() {
    let f = Flow::new().await;
    f.p.on(
        "alpha",
        Behaviour::reply(|_, visit| Some(json!({"n": visit}))),
    );
    let (_, wf) = f
        .go(
            "define\n  cursor\n    alpha\n    rewind if: '${f:n} < 3'\n    bravo\n",
            json!({}),
        )
        .await;
    assert_eq!(f.p.names(), ["alpha", "alpha", "alpha", "bravo"]);
    assert_completed(&wf, json!({"n": 3}));
}

#[tokio::test]
async fn skip_and_jump_move_the_cursor() {
    let f = Flow::new().await;
    let (_, wf) = f
        .go(
            "define\n  cursor\n    alpha\n    skip 1\n    bravo\n    charly\n    jump to: foxtrot\n    delta\n    foxtrot\n  golf\n",
            json!({}),
        )
        .await;
    assert_eq!(f.p.names(), ["alpha", "charly", "foxtrot", "golf"]);
    assert_completed(&wf, json!({}));
    // A jump to a tag, or to an index.
    let (id, _) = f
        .go(
            "define\n  cursor\n    alpha\n    jump to: finish\n    bravo\n    participant ref: charly, tag: finish\n    jump 6\n    delta\n    echo\n",
            json!({}),
        )
        .await;
    assert_eq!(f.names_in(&id), ["alpha", "charly"]);
}

#[tokio::test]
async fn break_if_and_a_break_expression_leave_the_cursor() {
    let f = Flow::new().await;
    f.p.on("alpha", Behaviour::set(json!({"stop": true})));
    let (a, _) = f
        .go(
            "define\n  cursor break_if: '${f:stop}'\n    alpha\n    bravo\n  charly\n",
            json!({}),
        )
        .await;
    assert_eq!(f.names_in(&a), ["alpha", "charly"]);
    let (b, _) = f
        .go(
            "define\n  cursor\n    delta\n    break\n    bravo\n  charly\n",
            json!({}),
        )
        .await;
    assert_eq!(f.names_in(&b), ["delta", "charly"]);
    let (c, wf) = f
        .go(
            "define\n  cursor break_if: true\n    bravo\n  charly\n",
            json!({}),
        )
        .await;
    assert_eq!(f.names_in(&c), ["charly"], "checked on entry: nothing runs");
    assert_completed(&wf, json!({}));
}

#[tokio::test]
async fn a_participant_steers_the_cursor_with_a_command_field() {
    let f = Flow::new().await;
    f.p.on(
        "bravo",
        Behaviour::reply(|_, visit| {
            Some(if visit == 1 {
                json!({"__command__": ["jump", "delta"]})
            } else {
                json!({"b": visit})
            })
        }),
    );
    f.p.on(
        "delta",
        Behaviour::reply(|_, visit| {
            Some(if visit == 1 {
                json!({"__command__": "rewind"})
            } else {
                json!({})
            })
        }),
    );
    f.p.on(
        "charly",
        Behaviour::reply(|_, _| Some(json!({"__command__": ["skip", 1]}))),
    );
    let (id, wf) = f
        .go(
            "define\n  cursor\n    alpha\n    bravo\n    charly\n    echo skipped\n    delta\n",
            json!({}),
        )
        .await;
    assert_eq!(
        f.p.names(),
        [
            "alpha", "bravo", "delta", "alpha", "bravo", "charly", "delta"
        ]
    );
    assert_completed(&wf, json!({"b": 2}));
    assert_eq!(
        f.app.workflows().echoes(&id).await,
        Vec::<String>::new(),
        "skipped"
    );
    for cb in f.p.active() {
        assert!(
            cb.fields.get("__command__").is_none(),
            "consumed: {:?}",
            cb.body
        );
    }
}

#[tokio::test]
async fn reset_restarts_with_the_applied_fields_and_rewind_keeps_the_changes() {
    for (command, second_alpha) in [
        ("reset", json!({"start": 1})),
        ("rewind", json!({"start": 1, "a": 1, "b": 1})),
    ] {
        let f = Flow::new().await;
        f.p.on(
            "alpha",
            Behaviour::reply(|_, visit| Some(json!({"a": visit}))),
        );
        f.p.on(
            "bravo",
            Behaviour::reply(move |_, visit| {
                Some(if visit == 1 {
                    json!({"b": 1, "__command__": [command]})
                } else {
                    json!({"b": visit})
                })
            }),
        );
        let (_, wf) = f
            .go(
                "define\n  cursor\n    alpha\n    bravo\n",
                json!({"start": 1}),
            )
            .await;
        assert_eq!(
            f.p.names(),
            ["alpha", "bravo", "alpha", "bravo"],
            "{command}"
        );
        assert_eq!(plain(&f.p.of("alpha")[1]), second_alpha, "{command}");
        assert_completed(&wf, json!({"start": 1, "a": 2, "b": 2}));
    }
}

#[tokio::test]
async fn a_loop_repeats_until_a_break() {
    for name in ["loop", "repeat"] {
        let f = Flow::new().await;
        f.p.on(
            "alpha",
            Behaviour::reply(|_, visit| Some(json!({"n": visit}))),
        );
        let (_, wf) = f
            .go(
                format!("define\n  {name}\n    alpha\n    stop if: '${{f:n}} >= 3'\n    bravo\n  charly\n"),
                json!({}),
            )
            .await;
        assert_eq!(
            f.p.names(),
            ["alpha", "bravo", "alpha", "bravo", "alpha", "charly"],
            "{name}"
        );
        assert_completed(&wf, json!({"n": 3}));
    }
}
