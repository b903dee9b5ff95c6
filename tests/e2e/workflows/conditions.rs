//! `if`, `given`/`that`/`of`, `equals`, the common `if`/`unless`
//! attributes, condition typing and dollar substitution
//! (research/workflows.md §3.7, §4, §5).

use serde_json::json;

use super::{Flow, assert_completed};

#[tokio::test]
async fn if_runs_the_then_or_the_else_branch_after_substitution() {
    let f = Flow::new().await;
    let def = "define\n  if '${f:n} > 3'\n    big\n    small\n";
    for (n, expected) in [
        (json!(10), "big"),
        (json!(2), "small"),
        (json!("10"), "big"),
    ] {
        let (id, wf) = f.go(def, json!({ "n": n })).await;
        assert_eq!(f.names_in(&id), [expected], "n = {n}");
        assert_completed(&wf, json!({ "n": n }));
    }
    // test: attribute, no else: nothing runs.
    let (id, _) = f
        .go(
            "define\n  if test: '${f:x} == yes'\n    then\n  after\n",
            json!({"x": "no"}),
        )
        .await;
    assert_eq!(f.names_in(&id), ["after"]);
}

#[tokio::test]
async fn if_without_a_test_branches_on_its_first_childs_result() {
    let f = Flow::new().await;
    let def = "define\n  if\n    equals field_value: status, other_value: ok\n    yes_branch\n    no_branch\n";
    let (a, wf) = f.go(def, json!({"status": "ok"})).await;
    assert_eq!(f.names_in(&a), ["yes_branch"]);
    assert_eq!(wf["status"], "completed");
    let (b, _) = f.go(def, json!({"status": "ko"})).await;
    assert_eq!(f.names_in(&b), ["no_branch"]);
    // __result__ never reaches a participant.
    for cb in f.p.active() {
        assert!(cb.fields.get("__result__").is_none(), "{:?}", cb.body);
    }
}

#[tokio::test]
async fn given_runs_the_first_matching_of_or_the_default() {
    let f = Flow::new().await;
    let def = "define\n  given '${f:status}'\n    of ready\n      alpha\n    of '/^dead/'\n      bravo\n    charly\n  after\n";
    for (status, expected) in [
        ("ready", ["alpha", "after"]),
        ("deadbeef", ["bravo", "after"]),
        ("other", ["charly", "after"]),
    ] {
        let (id, wf) = f.go(def, json!({ "status": status })).await;
        assert_eq!(f.names_in(&id), expected, "{status}");
        assert_completed(&wf, json!({ "status": status }));
    }
    let def = "define\n  given\n    that '${f:n} > 5'\n      big\n    small\n";
    let (a, _) = f.go(def, json!({"n": 9})).await;
    assert_eq!(f.names_in(&a), ["big"]);
    let (b, _) = f.go(def, json!({"n": 1})).await;
    assert_eq!(f.names_in(&b), ["small"]);
}

#[tokio::test]
async fn conditions_keep_rubys_typing() {
    let f = Flow::new().await;
    let def = r#"
define
  t01 if: '${f:n} == 2000'
  t02 if: '${f:s} == 2000'
  f03 if: "${f:n} == '2000'"
  t04 if: '${f:zero}'
  f05 if: '${f:missing} == ready'
  f06 if: '${f:missing} is set'
  t07 if: '${f:s} is set'
  t08 if: "${'f:b} == 'bra vo'"
  t09 unless: '${f:n} < 100'
  f10 unless: '${f:n} > 100'
  t11 if: 'b > a'
  f12 if: 'false'
  t13 if: true
  f14 if: '${f:flag} == false'
  t15 if: '${f:n} > 900 and ${f:s} != 1'
  t16 if: "${'f:empty} empty"
  t17 if: '${f:n} in [1, 2000]'
  t18 if: '${f:list} != []'
  f19 if: ''
  t20 if: true, unless: true
"#;
    let (id, wf) = f
        .go(
            def,
            json!({"n": 2000, "s": "2000", "zero": 0, "b": "bra vo", "flag": true,
                   "list": ["x"], "empty": ""}),
        )
        .await;
    let ran = f.names_in(&id);
    let expected: Vec<&str> = [
        "t01", "t02", "t04", "t07", "t08", "t09", "t11", "t13", "t15", "t16", "t17", "t18", "t20",
    ]
    .to_vec();
    assert_eq!(ran, expected);
    assert_eq!(wf["status"], "completed");
}

#[tokio::test]
async fn if_and_unless_skip_any_expression_without_a_trace() {
    let f = Flow::new().await;
    let (id, wf) = f
        .go(
            "define\n  sequence if: '${f:go} == no'\n    alpha\n  set field: x, value: 1, unless: true\n  echo skipped, if: false\n  bravo\n",
            json!({"go": "yes"}),
        )
        .await;
    assert_eq!(f.names_in(&id), ["bravo"]);
    assert_eq!(f.app.workflows().echoes(&id).await, Vec::<String>::new());
    assert_completed(&wf, json!({"go": "yes"}));
}

#[tokio::test]
async fn dollar_substitution_gives_strings_and_whole_dollar_references_raw_values() {
    let f = Flow::new().await;
    let def = r#"
define
  set 'v:x': hello
  set field: copy, value: '$f:list'
  set field: text, value: '${f:list}'
  set field: hash, value: '${f:obj}'
  set field: num, value: '${f:n}'
  set field: nothing, value: '${f:missing}'
  set field: raw_nothing, value: '$f:missing'
  set field: var, value: '${v:x}'
  set field: nested, value: '${v:${f:which}}'
  set field: dot, value: '${f:obj.k}'
  set field: spaced, value: ' $f:list'
  set field: fei, value: '${wfid}'
  set 'f_${f:which}': 1
  done
"#;
    let (id, wf) = f
        .go(
            def,
            json!({"list": ["a", "b"], "obj": {"k": 1}, "n": 2.5, "which": "x"}),
        )
        .await;
    assert_completed(
        &wf,
        json!({
            "list": ["a", "b"], "obj": {"k": 1}, "n": 2.5, "which": "x",
            "copy": ["a", "b"],
            "text": "[\"a\", \"b\"]",
            "hash": "{\"k\"=>1}",
            "num": "2.5",
            "nothing": "",
            "raw_nothing": null,
            "var": "hello",
            "nested": "hello",
            "dot": "1",
            "spaced": " $f:list",
            "fei": id,
            "f_x": 1,
        }),
    );
}
