//! Engine tests: a small simulator plays the store's part (open
//! workitems, timers, callbacks) so each test reads as a run.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::super::reference::{self, ReplyOrder};
use super::super::tree::{self, Node};
use super::*;

struct Sim {
    p: Process,
    ids: CountingIds,
    now: u64,
    callbacks: Vec<Callback>,
    open: BTreeMap<String, Workitem>,
    timers: BTreeMap<String, u64>,
    history: Vec<Event>,
}

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

impl Sim {
    fn launch(def: &str, f: Value) -> Sim {
        let node = tree::read(def).expect("definition reads");
        Self::launch_node(node, f)
    }

    fn launch_node(node: Node, f: Value) -> Sim {
        let p = Process::new(
            "wf1",
            node,
            json!("http://127.0.0.1:9/cb"),
            fields(f),
            1_000,
        );
        let mut s = Sim {
            p,
            ids: CountingIds::default(),
            now: 1_000,
            callbacks: Vec::new(),
            open: BTreeMap::new(),
            timers: BTreeMap::new(),
            history: Vec::new(),
        };
        s.step(vec![Input::Launch]);
        s
    }

    fn step(&mut self, inputs: Vec<Input>) -> Outcome {
        // The stored state round-trips through JSON, as in Redis.
        let text = serde_json::to_string(&self.p).expect("serializes");
        self.p = serde_json::from_str(&text).expect("deserializes");
        let out = advance(
            &mut self.p,
            inputs,
            self.now,
            &mut self.ids,
            &Config::default(),
        );
        for id in &out.closed {
            self.open.remove(id);
        }
        for w in &out.opened {
            self.open.insert(w.workitem_id.clone(), w.clone());
        }
        for id in &out.timers_cleared {
            self.timers.remove(id);
        }
        for (id, at) in &out.timers_set {
            self.timers.insert(id.clone(), *at);
        }
        self.callbacks.extend(out.callbacks.iter().cloned());
        self.history.extend(out.history.iter().cloned());
        out
    }

    /// The open workitems of `participant`, oldest first.
    fn wi(&self, participant: &str) -> Vec<Workitem> {
        let mut v: Vec<Workitem> = self
            .open
            .values()
            .filter(|w| w.participant == participant)
            .cloned()
            .collect();
        v.sort_by_key(|w| w.dispatched_at);
        v
    }

    fn proceed(&mut self, participant: &str, f: Value) -> Outcome {
        let w = self.wi(participant).into_iter().next().unwrap_or_else(|| {
            panic!("no open workitem for {participant}: {:?}", self.open.keys())
        });
        self.open.remove(&w.workitem_id);
        self.step(vec![Input::Proceed {
            workitem_id: w.workitem_id,
            fields: Some(fields(f)),
        }])
    }

    fn participants(&self) -> Vec<String> {
        self.open.values().map(|w| w.participant.clone()).collect()
    }

    /// Moves time on by `ms` and fires the due timers.
    fn tick(&mut self, ms: u64) {
        self.now += ms;
        let due: Vec<String> = self
            .timers
            .iter()
            .filter(|(_, at)| **at <= self.now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.timers.remove(&id);
            self.step(vec![Input::Timer { timer_id: id }]);
        }
    }

    fn active(&self) -> Vec<String> {
        self.callbacks
            .iter()
            .filter(|c| c.status == CallbackStatus::Active)
            .map(|c| c.participant.clone())
            .collect()
    }

    fn statuses(&self, participant: &str) -> Vec<&'static str> {
        self.callbacks
            .iter()
            .filter(|c| c.participant == participant)
            .map(|c| c.status.as_str())
            .collect()
    }
}

#[test]
fn a_sequence_dispatches_one_participant_at_a_time_and_completes() {
    let mut s = Sim::launch(
        r#"["define", {}, [["alpha", {}, []], ["participant", {"ref": "bravo", "x": "${f:a}"}, []]]]"#,
        json!({"a": 1}),
    );
    assert_eq!(s.p.status, Status::Running);
    assert_eq!(s.participants(), vec!["alpha"]);
    let w = &s.wi("alpha")[0];
    assert!(w.workitem_id.starts_with("0_0!"), "{}", w.workitem_id);
    assert!(w.workitem_id.ends_with("!wf1"));
    assert_eq!(w.fields["params"], json!({"ref": "alpha"}));
    s.proceed("alpha", json!({"b": 2}));
    assert_eq!(s.participants(), vec!["bravo"]);
    assert_eq!(
        s.wi("bravo")[0].fields["params"],
        json!({"ref": "bravo", "x": "1"})
    );
    s.proceed("bravo", json!({}));
    assert_eq!(s.p.status, Status::Completed);
    assert_eq!(s.p.fields, fields(json!({"a": 1, "b": 2})));
    assert!(s.p.exprs.is_empty());
    let kinds: Vec<&str> = s.history.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "launched",
            "dispatched",
            "proceeded",
            "dispatched",
            "proceeded",
            "completed"
        ]
    );
}

#[test]
fn a_concurrence_merges_the_first_reply_and_cancels_the_rest_with_count() {
    let mut s = Sim::launch(
        r#"["sequence", {}, [["concurrence", {"count": 1}, [["alpha", {}, []], ["bravo", {}, []]]], ["charly", {}, []]]]"#,
        json!({}),
    );
    assert_eq!(s.active(), vec!["alpha", "bravo"]);
    s.proceed("bravo", json!({"seen": "b"}));
    assert_eq!(s.statuses("alpha"), vec!["active", "cancel"]);
    assert_eq!(s.participants(), vec!["charly"]);
    assert_eq!(s.wi("charly")[0].fields["seen"], json!("b"));
}

#[test]
fn concurrence_merge_types() {
    for (attrs, expect) in [
        (json!({}), json!({"seen": "0"})),
        (json!({"merge": "last"}), json!({"seen": "1"})),
        (
            json!({"merge_type": "isolate"}),
            json!({"0": {"seen": "0"}, "1": {"seen": "1"}}),
        ),
    ] {
        let def = json!(["concurrence", attrs, [["alpha", {}, []], ["bravo", {}, []]]]).to_string();
        let mut s = Sim::launch(&def, json!({}));
        s.proceed("alpha", json!({"seen": "0"}));
        s.proceed("bravo", json!({"seen": "1"}));
        assert_eq!(s.p.status, Status::Completed, "{attrs}");
        let mut got = s.p.fields.clone();
        got.remove("params");
        assert_eq!(Value::Object(got), expect, "{attrs}");
    }
}

#[test]
fn a_participant_timeout_sends_a_timeout_callback_and_continues_with_the_applied_fields() {
    let mut s = Sim::launch(
        r#"["sequence", {}, [["alpha", {"timeout": "2s"}, []], ["bravo", {}, []]]]"#,
        json!({"x": 1}),
    );
    assert_eq!(s.timers.len(), 1);
    s.tick(2_500);
    assert_eq!(s.statuses("alpha"), vec!["active", "timeout"]);
    let b = &s.wi("bravo")[0];
    assert_eq!(b.fields["x"], json!(1));
    assert!(b.fields.contains_key("__timed_out__"));
    assert!(s.timers.is_empty());
}

#[test]
fn a_proceed_clears_the_timeout_timer() {
    let mut s = Sim::launch(
        r#"["sequence", {}, [["alpha", {"timeout": "2s"}, []], ["bravo", {}, []]]]"#,
        json!({}),
    );
    s.proceed("alpha", json!({}));
    assert!(s.timers.is_empty());
    s.tick(5_000);
    assert_eq!(s.statuses("alpha"), vec!["active"]);
}

#[test]
fn on_timeout_names_a_participant_that_replaces_the_expression() {
    let mut s = Sim::launch(
        r#"["sequence", {}, [["alpha", {"timeout": "1s", "on_timeout": "boss"}, []], ["bravo", {}, []]]]"#,
        json!({}),
    );
    s.tick(1_000);
    assert_eq!(s.participants(), vec!["boss"]);
    let boss = &s.wi("boss")[0];
    let alpha = s
        .callbacks
        .iter()
        .find(|c| c.participant == "alpha")
        .expect("alpha was called");
    assert_eq!(boss.workitem_id, alpha.workitem_id, "same fei");
    s.proceed("boss", json!({}));
    assert_eq!(s.participants(), vec!["bravo"]);
}

#[test]
fn a_cursor_obeys_commands_from_participants() {
    let mut s = Sim::launch(
        r#"["cursor", {}, [["alpha", {}, []], ["bravo", {}, []], ["charly", {}, []]]]"#,
        json!({}),
    );
    s.proceed("alpha", json!({"__command__": ["jump", "charly"]}));
    assert_eq!(s.participants(), vec!["charly"]);
    s.proceed("charly", json!({"__command__": "rewind"}));
    assert_eq!(s.participants(), vec!["alpha"]);
    s.proceed("alpha", json!({"__command__": ["skip", 1]}));
    assert_eq!(s.participants(), vec!["charly"]);
    s.proceed("charly", json!({"__command__": "break"}));
    assert_eq!(s.p.status, Status::Completed);
}

#[test]
fn a_loop_with_break_if_ends() {
    let mut s = Sim::launch(
        r#"["loop", {"break_if": "${f:n} > 1"}, [["alpha", {}, []]]]"#,
        json!({"n": 0}),
    );
    s.proceed("alpha", json!({"n": 1}));
    assert_eq!(s.participants(), vec!["alpha"]);
    s.proceed("alpha", json!({"n": 2}));
    assert_eq!(s.p.status, Status::Completed);
}

#[test]
fn command_expressions_steer_the_enclosing_cursor() {
    let mut s = Sim::launch(
        r#"["cursor", {}, [["alpha", {}, []], ["skip", {"1": null}, []], ["bravo", {}, []], ["charly", {}, []]]]"#,
        json!({}),
    );
    s.proceed("alpha", json!({}));
    assert_eq!(s.participants(), vec!["charly"]);
}

#[test]
fn an_iterator_runs_once_per_item_with_i_and_ii() {
    let mut s = Sim::launch(
        r#"["iterator", {"on_val": "a, b", "to_var": "v"}, [["p_${v:v}", {"at": "${v:ii}"}, []]]]"#,
        json!({}),
    );
    assert_eq!(s.participants(), vec!["p_a"]);
    assert_eq!(s.wi("p_a")[0].fields["params"]["at"], json!("0"));
    s.proceed("p_a", json!({}));
    assert_eq!(s.participants(), vec!["p_b"]);
    s.proceed("p_b", json!({}));
    assert_eq!(s.p.status, Status::Completed);
}

#[test]
fn a_concurrent_iterator_runs_every_item_at_once() {
    let mut s = Sim::launch(
        r#"["concurrent_iterator", {"on_field": "list", "to_field": "who", "merge_type": "union"}, [["alpha", {}, []]]]"#,
        json!({"list": ["x", "y", "z"]}),
    );
    let whos: Vec<Value> = s
        .wi("alpha")
        .iter()
        .map(|w| w.fields["who"].clone())
        .collect();
    assert_eq!(whos.len(), 3);
    for _ in 0..3 {
        s.proceed("alpha", json!({}));
    }
    assert_eq!(s.p.status, Status::Completed);
}

#[test]
fn if_given_that_of_and_equals() {
    let mut s = Sim::launch(
        r#"["sequence", {}, [
            ["if", {"test": "${f:x} > 3"}, [["big", {}, []], ["small", {}, []]]],
            ["given", {"t": "${f:colour}"}, [["of", {"red": null}, [["red", {}, []]]], ["of", {"blue": null}, [["blue", {}, []]]], ["other", {}, []]]],
            ["equals", {"field_value": "x", "other_value": 5}, []],
            ["if", {}, [["equals", {"field_value": "x", "other_value": 5}, []], ["five", {}, []], ["notfive", {}, []]]]
        ]]"#,
        json!({"x": 5, "colour": "blue"}),
    );
    assert_eq!(s.participants(), vec!["big"]);
    s.proceed("big", json!({}));
    assert_eq!(s.participants(), vec!["blue"]);
    s.proceed("blue", json!({}));
    assert_eq!(s.participants(), vec!["five"]);
}

#[test]
fn set_and_unset_fields_and_variables() {
    let s = Sim::launch(
        r#"["define", {}, [
            ["set", {"f:a": "${f:x}"}, []],
            ["set", {"v:b": "$f:list"}, []],
            ["set", {"field": "c", "value": true}, []],
            ["unset", {"field": "x"}, []],
            ["alpha", {"b": "${v:b}"}, []]
        ]]"#,
        json!({"x": "1", "list": [1, 2]}),
    );
    let w = &s.wi("alpha")[0];
    assert_eq!(w.fields["a"], json!("1"));
    assert_eq!(w.fields["c"], json!(true));
    assert!(!w.fields.contains_key("x"));
    assert_eq!(w.fields["params"]["b"], json!("[1, 2]"));
    assert_eq!(s.p.variables()["b"], json!([1, 2]));
}

#[test]
fn wait_replies_when_its_timer_fires() {
    let mut s = Sim::launch(
        r#"["sequence", {}, [["wait", {"for": "3s"}, []], ["alpha", {}, []]]]"#,
        json!({}),
    );
    assert!(s.participants().is_empty());
    s.tick(1_000);
    assert!(s.participants().is_empty());
    s.tick(2_000);
    assert_eq!(s.participants(), vec!["alpha"]);
}

#[test]
fn a_subprocess_gets_its_attributes_as_variables_and_can_recurse() {
    let mut s = Sim::launch(
        r#"["define", {"name": "main"}, [
            ["define", {"name": "sub"}, [["p_${v:who}", {}, []]]],
            ["subprocess", {"ref": "sub", "who": "alice"}, []],
            ["sub", {"who": "bob"}, []]
        ]]"#,
        json!({}),
    );
    assert_eq!(s.participants(), vec!["p_alice"]);
    s.proceed("p_alice", json!({}));
    assert_eq!(s.participants(), vec!["p_bob"]);
    s.proceed("p_bob", json!({}));
    assert_eq!(s.p.status, Status::Completed);
}

#[test]
fn an_error_expression_puts_the_process_in_error_and_replay_resumes_past_it() {
    let mut s = Sim::launch(
        r#"["sequence", {}, [["error", {"boom": null}, []], ["alpha", {}, []]]]"#,
        json!({}),
    );
    assert_eq!(s.p.status, Status::Error);
    assert_eq!(s.p.errors.len(), 1);
    assert!(s.p.errors[0].message.contains("boom"), "{:?}", s.p.errors);
    s.step(vec![Input::Replay]);
    assert_eq!(s.p.status, Status::Running);
    assert_eq!(s.participants(), vec!["alpha"]);
}

#[test]
fn on_error_with_a_participant_handler_continues_after_the_failing_expression() {
    let mut s = Sim::launch(
        r#"["sequence", {}, [["sequence", {"on_error": "fixer"}, [["error", {"bad": null}, []]]], ["alpha", {}, []]]]"#,
        json!({}),
    );
    assert_eq!(s.participants(), vec!["fixer"]);
    assert_eq!(
        s.wi("fixer")[0].fields["__error__"]["message"],
        json!("bad")
    );
    s.proceed("fixer", json!({}));
    assert_eq!(s.participants(), vec!["alpha"]);
}

#[test]
fn on_error_redo_retries_and_pass_skips() {
    let s = Sim::launch(
        r#"["sequence", {}, [["error", {"on_error": "pass"}, []], ["alpha", {}, []]]]"#,
        json!({}),
    );
    assert_eq!(s.participants(), vec!["alpha"]);
    let mut s = Sim::launch(
        r#"["sequence", {"on_error": "1s: retry * 2, pass"}, [["error", {}, []]]]"#,
        json!({}),
    );
    assert_eq!(s.p.status, Status::Running);
    s.tick(1_000);
    s.tick(1_000);
    assert_eq!(s.p.status, Status::Completed);
}

#[test]
fn a_failed_callback_raises_an_error_handled_by_on_error() {
    let mut s = Sim::launch(
        r#"["sequence", {}, [["alpha", {"on_error": "bravo"}, []]]]"#,
        json!({}),
    );
    let w = s.wi("alpha")[0].clone();
    s.step(vec![Input::DispatchFailed {
        workitem_id: w.workitem_id.clone(),
        delivery_id: "other".into(),
        reason: "x".into(),
    }]);
    assert_eq!(
        s.participants(),
        vec!["alpha"],
        "an older delivery is ignored"
    );
    s.step(vec![Input::DispatchFailed {
        workitem_id: w.workitem_id,
        delivery_id: w.delivery_id,
        reason: "HTTP 500".into(),
    }]);
    assert_eq!(s.participants(), vec!["bravo"]);
}

#[test]
fn a_failed_callback_without_handler_is_an_error_and_replay_dispatches_again() {
    let mut s = Sim::launch(r#"["alpha", {}, []]"#, json!({}));
    let w = s.wi("alpha")[0].clone();
    s.step(vec![Input::DispatchFailed {
        workitem_id: w.workitem_id.clone(),
        delivery_id: w.delivery_id,
        reason: "HTTP 500".into(),
    }]);
    assert_eq!(s.p.status, Status::Error);
    s.step(vec![Input::Replay]);
    assert_eq!(s.p.status, Status::Running);
    assert_eq!(s.active(), vec!["alpha", "alpha"]);
    assert_eq!(
        s.wi("alpha")[0].workitem_id,
        w.workitem_id,
        "same workitem id"
    );
}

#[test]
fn cancel_sends_cancel_callbacks_to_every_active_participant() {
    let mut s = Sim::launch(
        r#"["concurrence", {}, [["alpha", {}, []], ["bravo", {"on_cancel": "cleaner"}, []]]]"#,
        json!({}),
    );
    s.step(vec![Input::Cancel]);
    assert_eq!(s.statuses("alpha"), vec!["active", "cancel"]);
    assert_eq!(s.statuses("bravo"), vec!["active", "cancel"]);
    assert_eq!(s.participants(), vec!["cleaner"]);
    assert_eq!(s.p.status, Status::Running);
    s.proceed("cleaner", json!({}));
    assert_eq!(s.p.status, Status::Cancelled);
    assert!(s.open.is_empty());
}

#[test]
fn cancel_process_in_the_definition_ends_the_process() {
    let mut s = Sim::launch(
        r#"["concurrence", {}, [["alpha", {}, []], ["sequence", {}, [["wait", {"1s": null}, []], ["terminate", {}, []]]]]]"#,
        json!({}),
    );
    assert_eq!(s.statuses("alpha"), vec!["active"]);
    s.tick(1_000);
    assert_eq!(s.p.status, Status::Cancelled);
    assert_eq!(s.statuses("alpha"), vec!["active", "cancel"]);
}

#[test]
fn a_participant_dispatched_and_cancelled_in_one_step_is_never_called() {
    let s = Sim::launch(
        r#"["concurrence", {}, [["alpha", {}, []], ["sequence", {}, [["terminate", {}, []]]]]]"#,
        json!({}),
    );
    assert_eq!(s.p.status, Status::Cancelled);
    assert!(s.callbacks.is_empty(), "{:?}", s.callbacks);
    assert!(s.open.is_empty());
}

#[test]
fn forget_and_lose() {
    let mut s = Sim::launch(
        r#"["sequence", {}, [["alpha", {"forget": true}, []], ["bravo", {}, []]]]"#,
        json!({}),
    );
    assert_eq!(s.participants().len(), 2);
    s.proceed("bravo", json!({"b": 1}));
    assert_eq!(s.p.status, Status::Running, "the forgotten branch runs on");
    s.proceed("alpha", json!({"a": 1}));
    assert_eq!(s.p.status, Status::Completed);
    assert_eq!(s.p.fields.get("b"), Some(&json!(1)));
    assert_eq!(s.p.fields.get("a"), None);

    let mut s = Sim::launch(
        r#"["concurrence", {"count": 1}, [["lose", {}, [["alpha", {}, []]]], ["bravo", {}, []]]]"#,
        json!({}),
    );
    s.proceed("alpha", json!({}));
    assert_eq!(s.participants(), vec!["bravo"]);
    s.proceed("bravo", json!({}));
    assert_eq!(s.p.status, Status::Completed);
}

#[test]
fn echo_writes_history_and_if_skips() {
    let s = Sim::launch(
        r#"["sequence", {}, [["echo", {"hello ${f:x}": null}, []], ["alpha", {"if": "${f:x} == 2"}, []], ["noop", {}, []]]]"#,
        json!({"x": 1}),
    );
    assert_eq!(s.p.status, Status::Completed);
    assert!(
        s.history
            .iter()
            .any(|e| e.kind == "echo" && e.text.as_deref() == Some("hello 1"))
    );
}

#[test]
fn undo_and_redo_by_tag() {
    let mut s = Sim::launch(
        r#"["concurrence", {}, [["alpha", {"tag": "t"}, []], ["sequence", {}, [["bravo", {}, []], ["redo", {"t": null}, []]]]]]"#,
        json!({}),
    );
    let first = s.wi("alpha")[0].workitem_id.clone();
    s.proceed("bravo", json!({}));
    assert_eq!(s.statuses("alpha"), vec!["active", "cancel", "active"]);
    assert_eq!(s.wi("alpha")[0].workitem_id, first);
    s.proceed("alpha", json!({}));
    assert_eq!(s.p.status, Status::Completed);
}

#[test]
fn a_missing_callback_url_is_an_error() {
    let node = tree::read(r#"["sequence", {}, [["alpha", {}, []]]]"#).expect("definition reads");
    let mut p = Process::new("wf1", node, json!({"bravo": "http://x/"}), Map::new(), 0);
    advance(
        &mut p,
        vec![Input::Launch],
        0,
        &mut CountingIds::default(),
        &Config::default(),
    );
    assert_eq!(p.status, Status::Error);
    assert!(p.errors[0].message.contains("alpha"), "{:?}", p.errors);
}

#[test]
fn a_runaway_loop_stops_with_an_error() {
    let node = tree::read(r#"["loop", {}, [["noop", {}, []]]]"#).expect("definition reads");
    let mut p = Process::new("wf1", node, json!("http://x/"), Map::new(), 0);
    let cfg = Config { max_messages: 500 };
    advance(
        &mut p,
        vec![Input::Launch],
        0,
        &mut CountingIds::default(),
        &cfg,
    );
    assert_eq!(p.status, Status::Error);
    assert!(!p.pending.is_empty());
    let mut ids = CountingIds::default();
    advance(&mut p, vec![Input::Replay], 0, &mut ids, &cfg);
    assert_eq!(p.status, Status::Error, "still running away");
    assert_eq!(p.errors.len(), 1);
    advance(&mut p, vec![Input::Cancel], 0, &mut ids, &cfg);
    assert_eq!(p.status, Status::Cancelled);
    assert!(p.pending.is_empty());
}

/// The engine against the sequential reference interpreter on random
/// trees of sequence/concurrence/participant/if/cursor: the same
/// dispatches (as a multiset) and the same final fields, when the
/// participants reply in index order.
#[test]
fn the_engine_agrees_with_the_reference_interpreter_on_random_trees() {
    let mut compared = 0;
    for seed in 0..300u64 {
        let t = reference::random_tree(seed, 4);
        let Ok(expected) = reference::run(
            &t,
            fields(json!({"n": 0})),
            ReplyOrder::InOrder,
            2_000,
            reference::simulated_participant,
        ) else {
            continue;
        };
        let mut s = Sim::launch_node(t.clone(), json!({"n": 0}));
        let mut dispatched: Vec<String> = Vec::new();
        let mut rounds = 0;
        while s.p.status == Status::Running {
            rounds += 1;
            assert!(rounds < 5_000, "seed {seed}: runaway");
            // Reply to the oldest open workitem (index order within a
            // concurrence: the lowest expid first).
            let Some(w) = s
                .open
                .values()
                .min_by(|a, b| {
                    a.dispatched_at
                        .cmp(&b.dispatched_at)
                        .then(expid_order(&a.workitem_id, &b.workitem_id))
                })
                .cloned()
            else {
                panic!(
                    "seed {seed}: running with nothing open: {:?}",
                    s.p.exprs.keys()
                );
            };
            dispatched.push(w.participant.clone());
            let reply = reference::simulated_participant(&w.participant, &w.fields);
            s.open.remove(&w.workitem_id);
            s.step(vec![Input::Proceed {
                workitem_id: w.workitem_id,
                fields: Some(reply),
            }]);
        }
        assert_eq!(
            s.p.status,
            Status::Completed,
            "seed {seed}: {:?}",
            s.p.errors
        );
        let mut want: Vec<String> = expected.dispatches.iter().map(|d| d.0.clone()).collect();
        let mut got = dispatched.clone();
        want.sort();
        got.sort();
        if expected.dispatches.len() == dispatched.len() {
            assert_eq!(got, want, "seed {seed}: {}", t.to_json());
            let mut f = s.p.fields.clone();
            f.remove("params");
            let mut e = expected.final_fields.clone();
            e.remove("params");
            assert_eq!(f, e, "seed {seed}: {}", t.to_json());
            compared += 1;
        }
    }
    assert!(compared > 150, "only {compared} trees compared");
}

fn expid_order(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |s: &str| -> Vec<u64> {
        s.split('!')
            .next()
            .unwrap_or("")
            .split('_')
            .filter_map(|x| x.parse().ok())
            .collect()
    };
    parse(a).cmp(&parse(b))
}
