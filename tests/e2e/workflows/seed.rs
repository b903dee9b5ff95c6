//! The seed's example end to end, and what the API answers around it:
//! the callback's exact body, proceed and cancel texts, GET, history,
//! tree, the listing and the retention.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Flow, app_with, assert_cancels_follow_dispatches, assert_completed, plain};
use crate::deliveries::verify;
use crate::support::api::workflows::Body;
use crate::support::participants::{Behaviour, Participants};
use crate::support::{TEST_SECRET, eventually};

const SEED: &str =
    r#"<process-definition name="aaa"><participant ref="alpha" /></process-definition>"#;

/// Whether `id` has the shape of a workflow id (`YYYYMMDD-HHMM-<8>-<8>`).
fn wfid_shaped(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    let alnum = |s: &str| {
        s.len() == 8
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    parts.len() == 4
        && parts[0].len() == 8
        && parts[1].len() == 4
        && parts[..2]
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_digit()))
        && alnum(parts[2])
        && alnum(parts[3])
}

#[tokio::test]
async fn the_seeds_example_runs_end_to_end() {
    let f = Flow::holding().await;
    let wf = f.app.workflows();
    let alpha_url = f.p.url_for("alpha");
    let (s, b) = wf
        .launch_form(&[
            ("workflow", SEED),
            ("callbacks[alpha]", &alpha_url),
            ("fields[status]", "pending"),
        ])
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id = b["id"].as_str().unwrap().to_owned();
    assert_eq!(b, json!({ "id": id }), "the body is only the id");
    assert!(wfid_shaped(&id), "{id}");

    f.run().await;
    let got = f.p.all();
    assert_eq!(got.len(), 1, "one callback: {:?}", f.p.trace());
    let cb = &got[0];
    assert_eq!(cb.path, "/cb/alpha", "the participant's own URL");
    assert_eq!(cb.headers["content-type"], "application/json");
    assert!(
        verify(TEST_SECRET, &cb.headers, &cb.raw),
        "signed: {:?}",
        cb.headers
    );
    // The body: Scriptoria's six keys, in its order, and nothing else.
    let keys = [
        "workflow_id",
        "workitem_id",
        "participant",
        "status",
        "fields",
        "proceed_url",
    ];
    let at: Vec<usize> = keys
        .iter()
        .map(|k| cb.raw.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "key order: {}", cb.raw);
    assert_eq!(cb.body.as_object().unwrap().len(), 6, "{}", cb.raw);
    let wi = cb.workitem_id.clone();
    let parts: Vec<&str> = wi.split('!').collect();
    assert_eq!(parts.len(), 3, "{wi}");
    assert_eq!(parts[0], "0_0", "the participant's expid");
    assert!(
        parts[1].len() == 32 && parts[1].bytes().all(|b| b.is_ascii_hexdigit()),
        "{wi}"
    );
    assert_eq!(parts[2], id);
    assert_eq!(
        cb.body,
        json!({
            "workflow_id": id,
            "workitem_id": wi,
            "participant": "alpha",
            "status": "active",
            "fields": {"params": {"ref": "alpha"}, "status": "pending"},
            "proceed_url": format!("{}/v1/workflows/{id}/workitems/{wi}/proceed", f.app.base),
        }),
        "callback URLs are never in the fields"
    );

    // While alpha works: GET shows the workitem; the tree shows where.
    let running = f.get(&id).await;
    assert_eq!(running["id"], id.as_str());
    assert_eq!(running["status"], "running");
    assert_eq!(running["fields"], json!({"status": "pending"}));
    assert_eq!(
        running["workitems"],
        json!([{
            "workitem_id": wi, "participant": "alpha", "status": "active",
            "fields": {"params": {"ref": "alpha"}, "status": "pending"},
            "proceed_url": cb.proceed_url,
        }]),
        "{running:#}"
    );
    assert_eq!(running["errors"], json!([]));
    let tree = wf.tree(&id).await;
    assert_eq!(tree["positions"], json!(["0_0"]), "{tree:#}");
    assert_eq!(tree["tree"]["expid"], "0");

    // Proceed as the seed does (form-encoded), then a second time.
    let (s, b) = wf
        .send(
            &cb.proceed_url,
            Some(Body::Form(&[("fields[status]", "successful")])),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = wf
        .send(
            &cb.proceed_url,
            Some(Body::Form(&[("fields[status]", "again")])),
            &[],
        )
        .await;
    assert_eq!(
        (s, b),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "workitem_id not found"})
        )
    );
    f.run().await;
    let done = f.get(&id).await;
    assert_completed(&done, json!({"status": "successful"}));
    assert!(done["ended_at"].is_string(), "{done:#}");
    assert_eq!(f.p.all().len(), 1, "no other callback");

    let events = wf.history(&id).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["launched", "dispatched", "proceeded", "completed"],
        "{events:#?}"
    );
    assert_eq!(events[1]["participant"], "alpha");
    assert_eq!(events[1]["workitem_id"], wi.as_str());
    assert_eq!(events[2]["workitem_id"], wi.as_str());
    let ats: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(ats.windows(2).all(|w| w[0] <= w[1]), "in order: {ats:?}");

    // A finished workflow cannot be cancelled.
    assert_eq!(
        wf.cancel(&id).await,
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "workflow_id not found"})
        )
    );
}

#[tokio::test]
async fn a_json_launch_with_a_catch_all_callback_keeps_json_types() {
    let f = Flow::holding().await;
    let id = f
        .app
        .workflows()
        .create(json!({
            "workflow": ["define", {}, [["participant", {"ref": "alpha", "n": 3}, []]]],
            "callback": f.p.url,
            "fields": {"n": 1, "ok": true, "list": [1, "a"], "obj": {"k": null}},
        }))
        .await;
    f.run().await;
    let cb = f.held("alpha");
    assert_eq!(cb.path, "/cb", "the catch-all URL");
    assert_eq!(
        cb.fields,
        json!({"params": {"ref": "alpha", "n": 3}, "n": 1, "ok": true, "list": [1, "a"], "obj": {"k": null}})
    );
    assert_eq!(cb.workflow_id, id);
}

#[tokio::test]
async fn form_fields_nest_as_rack_parses_them_and_stay_strings() {
    let f = Flow::holding().await;
    let (s, b) = f
        .app
        .workflows()
        .launch_form(&[
            ("workflow", "define\n  alpha\n"),
            ("callback", &f.p.url),
            ("fields[acl][uid:j.smith]", "assignee"),
            ("fields[list][]", "a"),
            ("fields[list][]", "b"),
            ("fields[flag]", "true"),
        ])
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    f.run().await;
    assert_eq!(
        plain(&f.held("alpha")),
        json!({"acl": {"uid:j.smith": "assignee"}, "list": ["a", "b"], "flag": "true"})
    );
    let (s, b) = f
        .app
        .workflows()
        .send(
            &f.held("alpha").proceed_url,
            Some(Body::Form(&[
                ("fields[acl][uid:x]", "reviewer"),
                ("fields[n]", "1"),
            ])),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    f.run().await;
    let wf = f.get(&f.held("alpha").workflow_id).await;
    assert_completed(
        &wf,
        json!({"acl": {"uid:x": "reviewer"}, "list": ["a", "b"], "flag": "true", "n": "1"}),
    );
}

#[tokio::test]
async fn a_proceed_names_its_own_workflow_or_is_mismatched() {
    let f = Flow::holding().await;
    let a = f.launch(SEED, json!({})).await;
    let b = f.launch(SEED, json!({})).await;
    f.run().await;
    let wi_a =
        f.p.active()
            .into_iter()
            .find(|c| c.workflow_id == a)
            .unwrap()
            .workitem_id;
    let (s, body) = f.app.workflows().proceed(&b, &wi_a, None).await;
    assert_eq!(
        (s, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "workflow_id is mismatched"})
        )
    );
    // The refused proceed changed nothing: a's workitem is still there.
    let (s, body) = f.app.workflows().proceed(&a, &wi_a, None).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    f.run().await;
    assert_eq!(f.app.workflows().status(&a).await, "completed");
    assert_eq!(f.app.workflows().status(&b).await, "running");
}

#[tokio::test]
async fn a_proceed_cannot_redirect_callbacks_and_reserved_fields_are_refused() {
    let f = Flow::new().await;
    let names = ["alpha", "bravo"];
    f.p.on(
        "alpha",
        Behaviour::set(json!({"callbacks": {"bravo": "http://127.0.0.1:9/evil"}})),
    );
    let id = f
        .app
        .workflows()
        .create(json!({
            "workflow": "define\n  alpha\n  bravo\n",
            "callbacks": f.p.callbacks(&names),
        }))
        .await;
    f.run().await;
    let bravo = f.p.last("bravo");
    assert_eq!(bravo.path, "/cb/bravo", "callbacks are not fields");
    assert_eq!(
        plain(&bravo),
        json!({"callbacks": {"bravo": "http://127.0.0.1:9/evil"}}),
        "a field named callbacks is only data"
    );
    assert_eq!(f.app.workflows().status(&id).await, "completed");

    let g = Flow::holding().await;
    let id = g.launch(SEED, json!({})).await;
    g.run().await;
    let cb = g.held("alpha");
    for reserved in ["__error__", "__timed_out__"] {
        let (s, b) = g
            .app
            .workflows()
            .proceed_at(&cb.proceed_url, Some(json!({ reserved: 1 })))
            .await;
        assert_eq!(
            (s, &b["error"]),
            (StatusCode::BAD_REQUEST, &json!("fields is invalid"))
        );
    }
    assert_eq!(g.app.workflows().status(&id).await, "running");
}

#[tokio::test]
async fn a_participant_without_a_callback_url_puts_the_workflow_in_error() {
    let f = Flow::new().await;
    let id = f
        .app
        .workflows()
        .create(json!({
            "workflow": "define\n  alpha\n  bravo\n",
            "callbacks": f.p.callbacks(&["alpha"]),
        }))
        .await;
    f.run().await;
    assert_eq!(f.p.names(), ["alpha"]);
    let wf = f.get(&id).await;
    assert_eq!(wf["status"], "error", "{wf:#}");
    let errors = wf["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{wf:#}");
    assert_eq!(errors[0]["expid"], "0_1");
    assert!(
        errors[0]["message"].as_str().unwrap().contains("bravo"),
        "{wf:#}"
    );
    let types = f.app.workflows().history_types(&id).await;
    assert_eq!(types.last().map(String::as_str), Some("error"), "{types:?}");
}

#[tokio::test]
async fn cancel_calls_every_active_participant_back_with_cancel() {
    let f = Flow::holding().await;
    let id = f
        .launch(
            "define\n  concurrence\n    alpha\n    bravo\n  charly\n",
            json!({"k": 1}),
        )
        .await;
    f.run().await;
    let (alpha, bravo) = (f.held("alpha"), f.held("bravo"));
    let (s, b) = f.app.workflows().cancel(&id).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    f.run().await;
    let mut cancels: Vec<(String, String)> =
        f.p.with_status("cancel")
            .into_iter()
            .map(|c| (c.participant, c.workitem_id))
            .collect();
    cancels.sort();
    assert_eq!(
        cancels,
        [
            ("alpha".to_owned(), alpha.workitem_id.clone()),
            ("bravo".to_owned(), bravo.workitem_id.clone())
        ]
    );
    let cancel_cb = &f.p.with_status("cancel")[0];
    assert_eq!(cancel_cb.fields["k"], 1, "{:?}", cancel_cb.body);
    assert!(cancel_cb.proceed_url.ends_with("/proceed"));
    let mut names = f.p.names();
    names.sort();
    assert_eq!(names, ["alpha", "bravo"], "charly is never reached");
    let wf = f.get(&id).await;
    assert_eq!(wf["status"], "cancelled", "{wf:#}");
    assert_eq!(wf["workitems"], json!([]));
    assert_eq!(
        f.app
            .workflows()
            .history_types(&id)
            .await
            .last()
            .map(String::as_str),
        Some("cancelled")
    );
    let not_found = (
        StatusCode::BAD_REQUEST,
        json!({"error": "workitem_id not found"}),
    );
    assert_eq!(
        f.app.workflows().proceed_at(&alpha.proceed_url, None).await,
        not_found
    );
    assert_eq!(
        f.app.workflows().cancel(&id).await,
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "workflow_id not found"})
        )
    );
}

#[tokio::test]
async fn a_cancel_right_after_the_launch_ends_the_workflow_and_cancels_nothing_unannounced() {
    let f = Flow::holding().await;
    let id = f.launch("define\n  alpha\n", json!({})).await;
    let (s, b) = f.app.workflows().cancel(&id).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    f.run().await;
    assert_eq!(f.app.workflows().status(&id).await, "cancelled");
    assert_cancels_follow_dispatches(&f.p);
}

#[tokio::test]
async fn a_cancel_reaches_forgotten_branches_too() {
    let f = Flow::holding().await;
    let id = f
        .launch("define\n  forget\n    alpha\n  bravo\n", json!({}))
        .await;
    f.run().await;
    assert_eq!(f.app.workflows().cancel(&id).await.0, StatusCode::CREATED);
    f.run().await;
    let mut cancelled: Vec<String> =
        f.p.with_status("cancel")
            .into_iter()
            .map(|c| c.participant)
            .collect();
    cancelled.sort();
    assert_eq!(cancelled, ["alpha", "bravo"], "every root is cancelled");
    let wf = f.get(&id).await;
    assert_eq!(wf["status"], "cancelled", "{wf:#}");
    assert_eq!(wf["workitems"], json!([]));
}

#[tokio::test]
async fn the_list_filters_by_status() {
    let f = Flow::holding().await;
    f.p.on("done", Behaviour::proceed());
    let completed = f.launch("done", json!({})).await;
    let running = f.launch("held", json!({})).await;
    let cancelled = f.launch("held", json!({})).await;
    let failed = f.launch("define\n  error boom\n", json!({})).await;
    f.run().await;
    assert_eq!(
        f.app.workflows().cancel(&cancelled).await.0,
        StatusCode::CREATED
    );
    f.run().await;
    for (status, id) in [
        ("completed", &completed),
        ("running", &running),
        ("cancelled", &cancelled),
        ("error", &failed),
    ] {
        let (s, page) = f.app.workflows().list(&format!("?status={status}")).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let ids: Vec<&str> = page["workflows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [id.as_str()], "{status}: {page:#}");
        assert_eq!(page["workflows"][0]["status"], status);
    }
    let (_, all) = f.app.workflows().list("").await;
    assert_eq!(all["workflows"].as_array().unwrap().len(), 4, "{all:#}");
}

#[tokio::test]
async fn a_finished_workflow_expires_after_the_retention() {
    let app = app_with(|c| {
        c.families.workflows.workflow_retention = Duration::from_millis(300);
    })
    .await;
    let p = Participants::with_default(&app, Behaviour::hold()).await;
    p.on("done", Behaviour::proceed());
    let finished = app.workflows().launch("done", &p.url, json!({})).await;
    let running = app.workflows().launch("held", &p.url, json!({})).await;
    p.run(&app).await;
    assert_eq!(app.workflows().status(&finished).await, "completed");
    eventually(Duration::from_secs(5), || async {
        app.workflows().fetch(&finished).await.0 == StatusCode::NOT_FOUND
    })
    .await;
    assert_eq!(
        app.workflows().fetch(&finished).await,
        (
            StatusCode::NOT_FOUND,
            json!({"error": "workflow_id not found"})
        )
    );
    assert_eq!(
        app.workflows().status(&running).await,
        "running",
        "a running workflow does not expire"
    );
    let held: Vec<Value> = app.workflows().get(&running).await["workitems"]
        .as_array()
        .cloned()
        .unwrap();
    assert_eq!(held.len(), 1);
}
