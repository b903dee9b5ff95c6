//! The three definition formats — JSON (as text or as a tree value), XML
//! and Radial — give the same run: the same callbacks, the same final
//! fields, the same history.

use serde_json::{Value, json};

use super::Flow;
use crate::support::participants::Behaviour;

const RADIAL: &str = r#"
define name: review
  set field: stage, value: draft
  author task: write
  concurrence merge_type: mix
    reviewer1
    participant ref: reviewer2, role: second
  if test: '${f:approved} == yes'
    publisher
    author task: rework
  echo 'done ${f:stage}'
"#;

const XML: &str = r#"<?xml version="1.0"?>
<process-definition name="review">
  <set field="stage" value="draft"/>
  <participant ref="author" task="write"/>
  <concurrence merge-type="mix">
    <participant ref="reviewer1"/>
    <participant ref="reviewer2" role="second"/>
  </concurrence>
  <if test="${f:approved} == yes">
    <participant ref="publisher"/>
    <participant ref="author" task="rework"/>
  </if>
  <echo>done ${f:stage}</echo>
</process-definition>"#;

fn tree() -> Value {
    json!(["define", {"name": "review"}, [
        ["set", {"field": "stage", "value": "draft"}, []],
        ["author", {"task": "write"}, []],
        ["concurrence", {"merge_type": "mix"}, [
            ["reviewer1", {}, []],
            ["participant", {"ref": "reviewer2", "role": "second"}, []]]],
        ["if", {"test": "${f:approved} == yes"}, [
            ["publisher", {}, []],
            ["author", {"task": "rework"}, []]]],
        ["echo", {"done ${f:stage}": null}, []]]])
}

/// One run: the callbacks as (expid, participant, status, fields) in
/// arrival order (the concurrence's two branches sorted, their order
/// being the network's), the final workflow, the echoes and the history's
/// types.
async fn run(workflow: Value) -> (Vec<Value>, Value, Vec<String>, Vec<String>) {
    let f = Flow::new().await;
    f.p.on("reviewer1", Behaviour::set(json!({"approved": "yes"})));
    f.p.on("reviewer2", Behaviour::set(json!({"note": "ok"})));
    f.p.on("publisher", Behaviour::set(json!({"published": true})));
    let (id, wf) = f.go(workflow, json!({"doc": 7})).await;
    let mut calls: Vec<Value> =
        f.p.accepted()
            .iter()
            .map(|c| {
                assert_eq!(c.workflow_id, id);
                json!([c.expid(), c.participant, c.status, c.fields])
            })
            .collect();
    calls[1..3].sort_by_key(|c| c[0].as_str().unwrap().to_owned());
    let wfs = f.app.workflows();
    let mut types = wfs.history_types(&id).await;
    types.sort();
    (calls, wf, wfs.echoes(&id).await, types)
}

#[tokio::test]
async fn json_xml_and_radial_definitions_give_the_same_run() {
    let radial = run(Value::String(RADIAL.into())).await;
    let (calls, wf, echoes, _) = &radial;
    assert_eq!(
        *calls,
        vec![
            json!(["0_1", "author", "active", {"params": {"ref": "author", "task": "write"}, "doc": 7, "stage": "draft"}]),
            json!(["0_2_0", "reviewer1", "active", {"params": {"ref": "reviewer1"}, "doc": 7, "stage": "draft"}]),
            json!(["0_2_1", "reviewer2", "active", {"params": {"ref": "reviewer2", "role": "second"}, "doc": 7, "stage": "draft"}]),
            json!(["0_3_0", "publisher", "active", {"params": {"ref": "publisher"}, "doc": 7, "stage": "draft", "approved": "yes", "note": "ok"}]),
        ]
    );
    assert_eq!(wf["status"], "completed", "{wf:#}");
    assert_eq!(
        wf["fields"],
        json!({"doc": 7, "stage": "draft", "approved": "yes", "note": "ok", "published": true})
    );
    assert_eq!(*echoes, ["done draft"]);

    let xml = run(Value::String(XML.into())).await;
    let json_text = run(Value::String(tree().to_string())).await;
    let json_tree = run(tree()).await;
    for (name, other) in [
        ("XML", xml),
        ("JSON text", json_text),
        ("JSON tree", json_tree),
    ] {
        assert_eq!(other.0, radial.0, "{name}: callbacks");
        assert_eq!(other.1["status"], radial.1["status"], "{name}: status");
        assert_eq!(other.1["fields"], radial.1["fields"], "{name}: fields");
        assert_eq!(other.2, radial.2, "{name}: echoes");
        assert_eq!(other.3, radial.3, "{name}: history");
    }
}

#[tokio::test]
async fn xml_attribute_values_are_strings_and_radial_keeps_numbers() {
    let f = Flow::holding().await;
    f.launch(
        r#"<define><participant ref="alpha" n="3" ok="true"/></define>"#,
        json!({}),
    )
    .await;
    f.launch(
        "define\n  bravo n: 3, ok: true, f: 1.5, s: '3'\n",
        json!({}),
    )
    .await;
    f.run().await;
    assert_eq!(
        *f.held("alpha").params(),
        json!({"ref": "alpha", "n": "3", "ok": "true"})
    );
    assert_eq!(
        *f.held("bravo").params(),
        json!({"ref": "bravo", "n": 3, "ok": true, "f": 1.5, "s": "3"})
    );
}
