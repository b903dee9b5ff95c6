//! Safe retries of the gate endpoints: a test-and-set under a client-chosen
//! ticket id, re-sent because its answer was lost, finds the same ticket (same
//! fence, same grant), and a released or expired id is never granted again
//! while a grant could live; a service create re-sent answers that it exists.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::api::gates::{queue_len, ticket_id};
use crate::support::{TestApp, spawn_app};

#[tokio::test]
async fn a_test_and_set_under_a_client_ticket_id_is_granted_once_when_retried() {
    let app = spawn_app().await;
    app.gates().create("svc", "g", &["live"]).await;
    let req = json!({"services": {"svc": ["live"]}, "ticket": "deploy-42_a"});
    let (s, first) = app.gates().test_and_set(req.clone()).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    assert_eq!(first["status"], "ok", "{first}");
    assert_eq!(ticket_id(&first), "deploy-42_a");
    assert_eq!(first["ticket"]["status"], "granted");
    let fence = first["ticket"]["fence"].as_u64().unwrap();

    // The answer was lost; the client re-sends the very same request.
    let (s, again) = app.gates().test_and_set(req).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["status"], "ok", "the retry is not denied: {again}");
    assert_eq!(ticket_id(&again), "deploy-42_a");
    assert_eq!(again["ticket"]["status"], "granted");
    assert_eq!(again["ticket"]["fence"].as_u64(), Some(fence), "same fence");

    let (_, g) = app.get("/api/services/svc").await;
    assert_eq!(queue_len(&g, "live"), 1, "one holder, one queue entry: {g}");
    assert_eq!(g["environments"]["live"]["queue"][0]["id"], "deploy-42_a");
    let (_, h) = app.get("/api/services/svc/live/history").await;
    let grants = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "granted")
        .count();
    assert_eq!(grants, 1, "no second grant: {h}");
}

#[tokio::test]
async fn another_client_ticket_id_for_a_held_gate_is_denied_or_queued() {
    let app = spawn_app().await;
    app.gates().create("svc", "g", &["live"]).await;
    let (_, b) = app
        .gates()
        .test_and_set(json!({"services": {"svc": "live"}, "ticket": "holder"}))
        .await;
    assert_eq!(b["status"], "ok", "{b}");

    let before = app.snapshot();
    let (s, b) = app
        .gates()
        .test_and_set(json!({"services": {"svc": "live"}, "ticket": "other"}))
        .await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("denied")));
    assert!(b.get("ticket").is_none(), "{b}");
    assert_eq!(app.snapshot(), before, "a denied call writes nothing");
    let (s, _) = app.get("/api/tickets/other").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (_, b) = app
        .put(
            "/api/services?queue=true",
            json!({"services": {"svc": "live"}, "ticket": "other"}),
        )
        .await;
    assert_eq!(b["status"], "queued", "{b}");
    assert_eq!(ticket_id(&b), "other");
    assert_eq!(b["position"], 1);
    // Its retry stays queued in the same place.
    let (_, b) = app
        .put(
            "/api/services?queue=true",
            json!({"services": {"svc": "live"}, "ticket": "other"}),
        )
        .await;
    assert_eq!(
        (b["status"].as_str(), &b["position"]),
        (Some("queued"), &json!(1))
    );
    let (_, g) = app.get("/api/services/svc").await;
    assert_eq!(queue_len(&g, "live"), 2, "{g}");
}

#[tokio::test]
async fn a_client_ticket_id_retried_with_other_gates_is_a_mismatch() {
    let app = spawn_app().await;
    app.gates().create("svc", "g", &["live", "dev"]).await;
    let (_, b) = app
        .gates()
        .test_and_set(json!({"services": {"svc": "live"}, "ticket": "t1"}))
        .await;
    assert_eq!(b["status"], "ok", "{b}");
    let before = app.snapshot();
    let (s, b) = app
        .gates()
        .test_and_set(json!({"services": {"svc": ["live", "dev"]}, "ticket": "t1"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(b["code"], "ticket_mismatch");
    assert_eq!(app.snapshot(), before, "nothing re-granted");
}

#[tokio::test]
async fn the_group_qualified_test_and_set_takes_a_client_ticket_id_too() {
    let app = spawn_app().await;
    app.gates().create("svc", "g", &["live"]).await;
    let req = json!({"gates": {"g": {"svc": ["live"]}}, "ticket": "grouped-1"});
    let (_, a) = app.put("/api/gates", req.clone()).await;
    let (_, b) = app.put("/api/gates", req).await;
    assert_eq!(
        (a["status"].as_str(), b["status"].as_str()),
        (Some("ok"), Some("ok"))
    );
    assert_eq!(ticket_id(&a), "grouped-1");
    assert_eq!(a["ticket"]["fence"], b["ticket"]["fence"]);
}

#[tokio::test]
async fn malformed_client_ticket_ids_are_refused() {
    let app = spawn_app().await;
    app.gates().create("svc", "g", &["live"]).await;
    let before = app.snapshot();
    for bad in [
        String::new(),
        "t".repeat(101),
        "a/b".into(),
        "a.b".into(),
        "é".into(),
    ] {
        let (s, b) = app
            .gates()
            .test_and_set(json!({"services": {"svc": ["live"]}, "ticket": bad}))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad:?}: {b}");
        assert_eq!(b["where"], "body.ticket", "{bad:?}: {b}");
    }
    assert_eq!(app.snapshot(), before);
    // 100 characters is the limit, not beyond it.
    let (_, b) = app
        .gates()
        .test_and_set(json!({"services": {"svc": ["live"]}, "ticket": "t".repeat(100)}))
        .await;
    assert_eq!(b["status"], "ok", "{b}");
}

#[tokio::test]
async fn an_empty_queue_flag_is_refused_like_any_bad_value() {
    let app = spawn_app().await;
    app.gates().create("svc", "g", &["live"]).await;
    let before = app.snapshot();
    for path in [
        "/api/services?queue=",
        "/api/services?queue",
        "/api/gates?queue=",
    ] {
        let body = if path.starts_with("/api/gates") {
            json!({"gates": {"g": {"svc": ["live"]}}})
        } else {
            json!({"services": {"svc": ["live"]}})
        };
        let (s, b) = app.put(path, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {b}");
        assert_eq!(b["code"], "query_invalid", "{path}: {b}");
        assert_eq!(b["where"], "query.queue", "{path}: {b}");
    }
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn a_service_create_retried_answers_that_it_exists_and_changes_nothing() {
    // gatekeeper's contract: creating an existing service is 400 gate_exists,
    // so the retry of a lost answer is safe (GET shows the service).
    let app = spawn_app().await;
    let def = json!({"group": "team12", "environments": ["testing", "live"]});
    let (s, b) = app.post("/api/services/svc", def.clone()).await;
    assert_eq!((s, &b), (StatusCode::OK, &json!({"status": "ok"})));
    app.put("/api/services/svc/live", json!({"state": "closed"}))
        .await;
    let before = app.snapshot();
    let (s, b) = app.post("/api/services/svc", def).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("gate_exists")),
        "{b}"
    );
    assert_eq!(app.snapshot(), before, "the retry changes nothing");
    let (s, b) = app.get("/api/services/svc").await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

#[tokio::test]
async fn a_released_client_ticket_id_cannot_be_granted_again() {
    let app = spawn_app().await;
    app.gates().create("svc", "g", &["live"]).await;
    let req = json!({"services": {"svc": ["live"]}, "ticket": "once"});
    let (_, a) = app.gates().test_and_set(req.clone()).await;
    assert_eq!(a["status"], "ok", "{a}");
    let (s, r) = app.delete("/api/tickets/once").await;
    assert_eq!((s, &r["released"]), (StatusCode::OK, &json!(true)));
    // A late retry of the first request must not take the gate again.
    let (s, b) = app.gates().test_and_set(req).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("ticket_not_found")),
        "{b}"
    );
    // The gate is free for everyone else.
    let (_, c) = app
        .gates()
        .test_and_set(json!({"services": {"svc": ["live"]}}))
        .await;
    assert_eq!(c["status"], "ok", "{c}");
}

#[tokio::test]
async fn a_gone_ticket_id_is_remembered_for_the_gone_window() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.families.gates.gate_gone_window = Duration::from_millis(300);
        })
        .spawn()
        .await;
    app.gates().create("svc", "g", &["live"]).await;
    let req = json!({"services": {"svc": ["live"]}, "ticket": "short"});
    app.gates().test_and_set(req.clone()).await;
    app.delete("/api/tickets/short").await;
    let gone = app.keys.gates("default").gone();
    let mut conn = app.server.conn();
    let ttl: i64 = redis::cmd("PTTL").arg(&gone).query(&mut conn).unwrap();
    assert!(ttl > 0 && ttl <= 300, "the set expires when idle: {ttl}");
    // An entry older than the window is pruned by the next release.
    let _: i64 = redis::cmd("ZADD")
        .arg(&gone)
        .arg(1)
        .arg("ancient")
        .query(&mut conn)
        .unwrap();
    app.gates()
        .test_and_set(json!({"services": {"svc": ["live"]}, "ticket": "other"}))
        .await;
    app.delete("/api/tickets/other").await;
    let mut members: Vec<String> = redis::cmd("ZRANGE")
        .arg(&gone)
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .unwrap();
    members.sort();
    assert_eq!(members, ["other", "short"], "the old entry was pruned");
    let (s, _) = app.gates().test_and_set(req.clone()).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "still inside the window");
    tokio::time::sleep(Duration::from_millis(350)).await;
    // Past the window the id is a new ticket again.
    let (_, b) = app.gates().test_and_set(req).await;
    assert_eq!(b["status"], "ok", "{b}");
}

#[tokio::test]
async fn an_expired_client_ticket_id_cannot_be_granted_again() {
    let app = TestApp::builder()
        .with_config(|c| c.families.gates.gate_queue_ttl = Duration::from_millis(100))
        .spawn()
        .await;
    app.gates().create("svc", "g", &["live"]).await;
    // Held by one ticket, so the client's is queued, then forgotten.
    app.gates()
        .test_and_set(json!({"services": {"svc": ["live"]}}))
        .await;
    let req = json!({"services": {"svc": ["live"]}, "ticket": "waiting"});
    let (_, q) = app.put("/api/services?queue=true", req.clone()).await;
    assert_eq!(q["status"], "queued", "{q}");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(app.scheduler().step("gates.sweep").await.unwrap(), 1);
    let (s, b) = app.gates().test_and_set(req).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("ticket_not_found")),
        "{b}"
    );
}

#[tokio::test]
async fn a_ticket_dropped_with_its_service_cannot_be_granted_again() {
    let app = spawn_app().await;
    app.gates().create("svc", "g", &["live"]).await;
    let req = json!({"services": {"svc": ["live"]}, "ticket": "doomed"});
    let (_, a) = app.gates().test_and_set(req.clone()).await;
    assert_eq!(a["status"], "ok", "{a}");
    let (s, _) = app.delete("/api/services/svc").await;
    assert_eq!(s, StatusCode::OK);
    app.gates().create("svc", "g", &["live"]).await;
    // The ticket went with the service; a late retry must not re-grant it.
    let (s, b) = app.gates().test_and_set(req).await;
    assert_eq!(
        (s, b["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("ticket_not_found")),
        "{b}"
    );
}
