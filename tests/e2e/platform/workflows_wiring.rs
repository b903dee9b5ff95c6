//! Workflows wiring (smoke): the family's routes, scripts, worker step,
//! owner hook and index pruning are registered and answer Scriptoria's
//! texts — nothing here needs the engine to advance a process (the
//! behaviours of the expressions are in `tests/e2e/workflows/`). Where a
//! dispatched workitem is needed, it is written as a dispatch stores it.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_shared::families::workflows::launch::{CALLBACKS_EXCLUSIVE, CALLBACKS_MISSING};
use switchyard_shared::families::workflows::{OWNER, ids};

use crate::support::{TestApp, spawn_app};

const SEED_DEF: &str =
    r#"<process-definition name="aaa"><participant ref="alpha" /></process-definition>"#;
const ALPHA: &str = "http://127.0.0.1:9/callbacks/alpha";
const SUBID: &str = "023abf5d398319b1c8fcbfaf70e7c780";

/// POST `body` with `content_type` (none when `None`) and extra headers.
async fn send(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, Value) {
    let mut req = app.client.post(format!("{}{path}", app.base));
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.body(body.to_owned()).send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{status}: body is not JSON: {text:?}"));
    (status, v)
}

async fn form(app: &TestApp, path: &str, body: &str) -> (StatusCode, Value) {
    send(
        app,
        path,
        Some("application/x-www-form-urlencoded"),
        &[],
        body,
    )
    .await
}

fn seed_form() -> String {
    format!(
        "workflow={}&callbacks[alpha]={ALPHA}&fields[k]=v",
        urlencode(SEED_DEF)
    )
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Launch the seed's workflow; its id.
async fn launch(app: &TestApp) -> String {
    let (status, body) = form(app, "/v1/workflows", &seed_form()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert!(ids::valid_id(&id), "{id}");
    id
}

/// Store a proceedable workitem of `wfid` as a dispatch does; its id.
fn plant_workitem(app: &TestApp, wfid: &str, delivery_id: &str) -> String {
    let wi = format!("0_0!{SUBID}!{wfid}");
    let item = json!({
        "workitem_id": wi, "participant": "alpha", "fields": {"params": {"ref": "alpha"}},
        "delivery_id": delivery_id, "dispatched_at": 1,
    });
    let _: i64 = redis::cmd("HSET")
        .arg(app.keys.workflow(wfid).workitems)
        .arg(&wi)
        .arg(item.to_string())
        .query(&mut app.server.conn())
        .unwrap();
    wi
}

fn zcard(app: &TestApp, key: &str) -> usize {
    redis::cmd("ZCARD")
        .arg(key)
        .query(&mut app.server.conn())
        .unwrap()
}

/// Entries of every workflow index of every shard.
fn index_entries(app: &TestApp) -> usize {
    (0..app.keys.shards())
        .map(|s| {
            zcard(app, &app.keys.workflow_index(s))
                + app
                    .keys
                    .workflow_status_indexes(s)
                    .iter()
                    .map(|k| zcard(app, k))
                    .sum::<usize>()
        })
        .sum()
}

#[tokio::test]
async fn ping_answers_pong() {
    let app = spawn_app().await;
    let (status, body) = app.get("/v1/ping").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"ping": "pong"}));
}

#[tokio::test]
async fn launch_errors_have_scriptorias_texts() {
    let app = spawn_app().await;
    let (s, b) = form(&app, "/v1/workflows", &format!("callback={ALPHA}")).await;
    assert_eq!(
        (s, b),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "workflow is missing"})
        )
    );

    let (s, b) = form(
        &app,
        "/v1/workflows",
        &format!(
            "workflow={}&callback={ALPHA}",
            urlencode("<process-definition><bogus")
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"], "workflow is invalid");
    assert!(!b["details"].as_str().unwrap().is_empty(), "{b}");

    let (s, b) = form(
        &app,
        "/v1/workflows",
        &format!("workflow={}", urlencode(SEED_DEF)),
    )
    .await;
    assert_eq!(
        (s, b),
        (StatusCode::BAD_REQUEST, json!({"error": CALLBACKS_MISSING}))
    );
    let (s, b) = form(
        &app,
        "/v1/workflows",
        &format!("{}&callback={ALPHA}", seed_form()),
    )
    .await;
    assert_eq!(
        (s, b),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": CALLBACKS_EXCLUSIVE})
        )
    );

    let (s, b) = send(&app, "/v1/workflows", Some("text/plain"), &[], "hello").await;
    assert_eq!(
        (s, b),
        (
            StatusCode::NOT_ACCEPTABLE,
            json!({"error": "The requested content-type 'text/plain' is not supported."})
        )
    );
    let (s, b) = send(
        &app,
        "/v1/workflows",
        Some("application/json"),
        &[],
        "{\"workflow\":",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b["error"].as_str().unwrap().contains("line 1"), "{b}");

    // JSON keeps its types; a JSON tree may be sent as a value.
    let (s, b) = send(
        &app,
        "/v1/workflows",
        Some("application/json"),
        &[],
        &json!({"workflow": ["define", {}, [["alpha", {}, []]]], "callback": ALPHA, "fields": {"n": 1}})
            .to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let id = b["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v1/workflows/{id}")).await.1["fields"],
        json!({"n": 1})
    );
    // Nothing was stored by the refused launches.
    assert_eq!(index_entries(&app), 2);
}

#[tokio::test]
async fn a_launched_workflow_reads_back_and_its_steps_commit() {
    let app = spawn_app().await;
    let id = launch(&app).await;
    let (s, wf) = app.get(&format!("/v1/workflows/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{wf}");
    assert_eq!(wf["id"], id.as_str());
    assert_eq!(wf["status"], "running");
    assert_eq!(wf["fields"], json!({"k": "v"}), "callbacks are not fields");
    assert!(wf["launched_at"].as_str().unwrap().ends_with('Z'), "{wf}");
    assert!(
        wf["workitems"].is_array() && wf["errors"].is_array(),
        "{wf}"
    );
    let (s, h) = app.get(&format!("/v1/workflows/{id}/history")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["events"].is_array(), "{h}");
    let (s, t) = app.get(&format!("/v1/workflows/{id}/tree")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(t["tree"]["expid"], "0", "{t}");
    assert!(t["positions"].is_array(), "{t}");

    // The worker's step consumes the inbox and commits a new version.
    let k = app.keys.workflow(&id);
    let version = |app: &TestApp| -> i64 {
        redis::cmd("HGET")
            .arg(&k.record)
            .arg("version")
            .query(&mut app.server.conn())
            .unwrap()
    };
    assert_eq!(version(&app), 0);
    assert!(app.drain().await >= 1);
    let inbox: usize = redis::cmd("LLEN")
        .arg(&k.inbox)
        .query(&mut app.server.conn())
        .unwrap();
    assert_eq!(inbox, 0);
    assert_eq!(version(&app), 1);
    assert_eq!(
        app.get(&format!("/v1/workflows/{id}")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn proceed_refuses_unknown_and_mismatched_workitems_and_one_of_racing_proceeds_wins() {
    let app = spawn_app().await;
    let (a, b) = (launch(&app).await, launch(&app).await);
    let proceed = |wfid: &str, wi: &str| format!("/v1/workflows/{wfid}/workitems/{wi}/proceed");
    let not_found = json!({"error": "workitem_id not found"});

    let unknown = format!("0_0!{SUBID}!{a}");
    for wi in [unknown.as_str(), "nope", "0!x!y", "%27%20OR%201%3D1"] {
        let (s, body) = form(&app, &proceed(&a, wi), "fields[x]=1").await;
        assert_eq!(
            (s, body),
            (StatusCode::BAD_REQUEST, not_found.clone()),
            "{wi}"
        );
    }

    let delivery = "d0-0190f0b1c2d37e8f9a0b1c2d3e4f5a6b";
    let wi = plant_workitem(&app, &a, delivery);
    let owners = switchyard_shared::families::owners(&app.redis, &app.keys, &app.config.families);
    let owner = format!("{OWNER}:{wi}#{delivery}");
    assert!(
        owners.exists(&owner).await.unwrap(),
        "the dispatch's retries are wanted"
    );
    assert!(
        !owners
            .exists(&format!("{OWNER}:{wi}#d0-other"))
            .await
            .unwrap()
    );

    let (s, body) = form(&app, &proceed(&b, &wi), "").await;
    assert_eq!(
        (s, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "workflow_id is mismatched"})
        )
    );
    let (s, body) = form(&app, &proceed(&a, &wi), "fields[__error__]=x").await;
    assert_eq!(
        (s, &body["error"]),
        (StatusCode::BAD_REQUEST, &json!("fields is invalid"))
    );

    // 16 concurrent proceeds: one 201, fifteen 400s, never a 500.
    let calls = (0..16).map(|i| {
        let app = &app;
        let path = proceed(&a, &wi);
        async move {
            send(
                app,
                &path,
                Some("application/json"),
                &[],
                &json!({"fields": {"i": i}}).to_string(),
            )
            .await
        }
    });
    let answers = futures::future::join_all(calls).await;
    let won: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    assert_eq!(won[0].1, json!({"ok": true}));
    for (s, body) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!((*s, body), (StatusCode::BAD_REQUEST, &not_found));
    }
    assert!(
        !owners.exists(&owner).await.unwrap(),
        "retries of a proceeded workitem are cancelled"
    );
    let (s, body) = form(&app, &proceed(&a, &wi), "").await;
    assert_eq!((s, body), (StatusCode::BAD_REQUEST, not_found));
}

#[tokio::test]
async fn cancel_twice_is_refused_the_second_time_and_replay_needs_an_error() {
    let app = spawn_app().await;
    let id = launch(&app).await;
    let (s, body) = app
        .call(
            reqwest::Method::POST,
            &format!("/v1/workflows/{id}/replay"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body,
        json!({"error": "workflow is not in error (status: running)"})
    );
    let cancel = format!("/v1/workflows/{id}/cancel");
    let (s, body) = app.call(reqwest::Method::POST, &cancel, None).await;
    assert_eq!((s, body), (StatusCode::CREATED, json!({"ok": true})));
    let (s, body) = app.call(reqwest::Method::POST, &cancel, None).await;
    assert_eq!(
        (s, body),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "workflow_id not found"})
        )
    );
}

#[tokio::test]
async fn unknown_ids_of_every_shape_are_4xx_json_never_5xx() {
    let app = spawn_app().await;
    let huge = "a".repeat(6000);
    let shapes = [
        "20151005-1247-kogadeso-gekunute",
        "x",
        "%27",
        "%22%3B%20DROP",
        "a%2Fb",
        huge.as_str(),
        "%E2%9C%93",
    ];
    let not_found = json!({"error": "workflow_id not found"});
    for id in shapes {
        for suffix in ["", "/history", "/tree"] {
            let (s, body) = app.get(&format!("/v1/workflows/{id}{suffix}")).await;
            assert_eq!(
                (s, &body),
                (StatusCode::NOT_FOUND, &not_found),
                "GET {id}{suffix}"
            );
        }
        for action in ["cancel", "replay"] {
            let (s, body) = app
                .call(
                    reqwest::Method::POST,
                    &format!("/v1/workflows/{id}/{action}"),
                    None,
                )
                .await;
            assert_eq!(
                (s, &body),
                (StatusCode::BAD_REQUEST, &not_found),
                "{action} {id}"
            );
        }
        let (s, body) = form(
            &app,
            &format!("/v1/workflows/{id}/workitems/{id}/proceed"),
            "",
        )
        .await;
        assert_eq!(
            (s, body),
            (
                StatusCode::BAD_REQUEST,
                json!({"error": "workitem_id not found"})
            ),
            "proceed {id}"
        );
    }
    // A raw slash makes another path: no route, still JSON.
    let (s, body) = app.get("/v1/workflows/a/b/c/d").await;
    assert!(s.is_client_error(), "{s}");
    assert!(body.is_object(), "{body}");
}

#[tokio::test]
async fn an_idempotency_key_makes_a_launch_safe_to_retry() {
    let app = spawn_app().await;
    let post = |key: &'static str| {
        let app = &app;
        async move {
            send(
                app,
                "/v1/workflows",
                Some("application/x-www-form-urlencoded"),
                &[("idempotency-key", key)],
                &seed_form(),
            )
            .await
        }
    };
    let (s1, first) = post("order-42").await;
    let (s2, again) = post("order-42").await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(first["id"], again["id"]);
    let (_, other) = post("order-43").await;
    assert_ne!(first["id"], other["id"]);
    let (s, body) = post("bad key!").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "Idempotency-Key is invalid");
    assert_eq!(index_entries(&app), 4, "two workflows, each in two indexes");
}

#[tokio::test]
async fn the_list_pages_to_its_end_and_filters_by_status() {
    let app = spawn_app().await;
    let mut launched = BTreeSet::new();
    for _ in 0..7 {
        launched.insert(launch(&app).await);
    }
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            None => "/v1/workflows?limit=3".to_owned(),
            Some(c) => format!("/v1/workflows?limit=3&cursor={}", urlencode(c)),
        };
        let (s, page) = app.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for w in page["workflows"].as_array().unwrap() {
            assert_eq!(w["status"], "running");
            assert!(
                seen.insert(w["id"].as_str().unwrap().to_owned()),
                "twice: {w}"
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, launched);
    let (_, running) = app.get("/v1/workflows?status=running&limit=500").await;
    assert_eq!(running["workflows"].as_array().unwrap().len(), 7);
    let (_, done) = app.get("/v1/workflows?status=completed").await;
    assert_eq!(done, json!({"workflows": [], "next_cursor": null}));
    for bad in ["status=nope", "limit=0", "cursor=zz"] {
        let (s, body) = app.get(&format!("/v1/workflows?{bad}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(
            body["error"].as_str().unwrap().ends_with("is invalid"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn indexes_shrink_when_workflows_expire() {
    let retention = Duration::from_millis(200);
    let app = TestApp::builder()
        .with_config(|c| c.families.workflows.workflow_retention = retention)
        .spawn()
        .await;
    let ids = [launch(&app).await, launch(&app).await, launch(&app).await];
    assert_eq!(index_entries(&app), 6);
    // Two finish: their keys carry the retention as a TTL, as the commit
    // of a completed or cancelled workflow sets it.
    for id in &ids[..2] {
        for key in app.keys.workflow(id).own() {
            let _: i64 = redis::cmd("PEXPIRE")
                .arg(key)
                .arg(1)
                .query(&mut app.server.conn())
                .unwrap();
        }
    }
    // Past the retention (the pruner only looks at entries older than it).
    tokio::time::sleep(retention + Duration::from_millis(50)).await;
    let scheduler = app.scheduler();
    assert_eq!(scheduler.step("workflows.prune").await.unwrap(), 4);
    assert_eq!(index_entries(&app), 2);
    assert_eq!(scheduler.step("workflows.prune").await.unwrap(), 0);
    let (_, page) = app.get("/v1/workflows").await;
    let listed: Vec<&str> = page["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[2].as_str()]);
    assert_eq!(
        app.get(&format!("/v1/workflows/{}", ids[0])).await.0,
        StatusCode::NOT_FOUND
    );
}
