//! Gatekeeper scenarios, through HTTP.

use std::time::Duration;

use chrono::{Datelike, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use switchyard_shared::families::gates::BuildWindows;

use crate::support::{TestApp, eventually, spawn_app};

fn queue_len(v: &Value, env: &str) -> usize {
    v["environments"][env]["queue"].as_array().unwrap().len()
}

fn tid(v: &Value) -> String {
    v["ticket"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn created_service_has_every_environment_open() {
    let app = spawn_app().await;
    let (s, b) = app
        .post(
            "/api/services/awesome",
            json!({"group": "team12", "environments": ["testing", "live"]}),
        )
        .await;
    assert_eq!((s, b), (StatusCode::OK, json!({"status": "ok"})));
    let (s, b) = app.get("/api/services/awesome").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["name"], "awesome");
    assert_eq!(b["group"], "team12");
    for env in ["testing", "live"] {
        let g = &b["environments"][env];
        assert_eq!(g["state"], "open");
        assert_eq!(g["message"], "");
        assert_eq!(g["message_timestamp"], "");
        assert!(
            g["state_timestamp"].as_str().unwrap().ends_with('Z'),
            "ISO 8601 UTC: {g}"
        );
        assert_eq!(g["queue"], json!([]));
    }
    let (s, b) = app.get("/api/services/awesome/live").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["state"], "open");
}

#[tokio::test]
async fn duplicate_service_name_is_refused() {
    let app = spawn_app().await;
    app.gates().create("awesome", "team12", &["live"]).await;
    let (s, b) = app
        .post(
            "/api/services/awesome",
            json!({"group": "other", "environments": ["dev"]}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["status"], "error");
    assert_eq!(b["reason"], "Gate with this name already exists");
    let (_, b) = app.get("/api/services/awesome").await;
    assert_eq!(b["group"], "team12", "the first service is untouched");
}

#[tokio::test]
async fn unknown_service_and_environment_are_404() {
    let app = spawn_app().await;
    app.gates().create("awesome", "team12", &["live"]).await;
    let (s, b) = app.get("/api/services/nope").await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (StatusCode::NOT_FOUND, Some("Gate not found"))
    );
    let (s, b) = app.get("/api/services/awesome/nope").await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (StatusCode::NOT_FOUND, Some("Environment not found"))
    );
    let (s, b) = app
        .put("/api/services/awesome/nope", json!({"state": "closed"}))
        .await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (StatusCode::NOT_FOUND, Some("Environment not found"))
    );
    let (s, _) = app
        .put("/api/services/nope/live", json!({"state": "closed"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.delete("/api/services/nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleted_service_is_gone() {
    let app = spawn_app().await;
    app.gates()
        .create("awesome", "team12", &["live", "dev"])
        .await;
    let (s, b) = app.delete("/api/services/awesome").await;
    assert_eq!((s, b), (StatusCode::OK, json!({"status": "ok"})));
    let (s, _) = app.get("/api/services/awesome").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        app.snapshot().iter().all(|(k, _)| !k.contains("awesome")),
        "no key of the service is left"
    );
}

#[tokio::test]
async fn a_gate_is_opened_and_closed_with_a_message() {
    let app = spawn_app().await;
    app.gates()
        .create("awesome", "team12", &["live", "develop"])
        .await;
    let (s, b) = app
        .put(
            "/api/services/awesome/live",
            json!({"state": "closed", "message": "testing -Jens"}),
        )
        .await;
    assert_eq!((s, b), (StatusCode::OK, json!({"status": "ok"})));
    let (_, b) = app.get("/api/services/awesome").await;
    let live = &b["environments"]["live"];
    assert_eq!(live["state"], "closed");
    assert_eq!(live["closed_by"], json!(["manual"]));
    assert_eq!(live["message"], "testing -Jens");
    assert!(live["message_timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        b["environments"]["develop"]["state"], "open",
        "other gate unchanged"
    );
    assert_eq!(b["environments"]["develop"]["message"], "");

    let (s, _) = app
        .put(
            "/api/services/awesome/live",
            json!({"state": "open", "message": ""}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, b) = app.get("/api/services/awesome/live").await;
    assert_eq!(b["state"], "open");
    assert_eq!(b["message"], "", "an empty message clears it");
    assert_eq!(b["message_timestamp"], "");

    let (s, b) = app
        .put("/api/services/awesome/live", json!({"state": "half-open"}))
        .await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("state must be open or closed")
        )
    );
    assert_eq!(b["where"], "body.state");
}

#[tokio::test]
async fn test_and_set_grants_queues_and_closes_the_gate() {
    let app = spawn_app().await;
    app.gates()
        .create("awesome", "team12", &["live", "develop"])
        .await;
    let (s, b) = app
        .put("/api/services", json!({"services": {"awesome": ["live"]}}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["status"], "ok");
    let t1 = tid(&b);
    assert_eq!(b["ticket"]["status"], "granted");
    assert!(b["ticket"]["expiration_date"].as_f64().unwrap() > 0.0);
    assert_eq!(b["position"], 0);
    let fence1 = b["ticket"]["fence"].as_u64().unwrap();

    let (_, g) = app.get("/api/services/awesome").await;
    assert_eq!(
        g["environments"]["live"]["state"], "closed",
        "a held gate reads closed"
    );
    assert_eq!(g["environments"]["live"]["closed_by"], json!(["queue"]));
    assert_eq!(g["environments"]["live"]["queue"][0]["id"], t1.as_str());
    assert_eq!(g["environments"]["develop"]["state"], "open");
    assert_eq!(queue_len(&g, "develop"), 0);

    // Re-sending the ticket keeps it (same id, same fence).
    let (_, b) = app
        .put(
            "/api/services",
            json!({"services": {"awesome": ["live"]}, "ticket": t1}),
        )
        .await;
    assert_eq!(b["status"], "ok");
    assert_eq!(tid(&b), t1);
    assert_eq!(b["ticket"]["fence"].as_u64().unwrap(), fence1);

    // Without queue=true a second caller is denied and nothing is linked.
    let before = app.snapshot();
    let (s, b) = app
        .put("/api/services", json!({"services": {"awesome": "live"}}))
        .await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("denied")));
    assert!(b.get("ticket").is_none());
    assert_eq!(app.snapshot(), before, "a denied call writes nothing");

    // With queue=true it is queued behind the holder.
    let (_, b) = app
        .put(
            "/api/services?queue=true",
            json!({"services": {"awesome": ["live"]}}),
        )
        .await;
    assert_eq!(b["status"], "queued");
    assert_eq!(b["position"], 1);
    let t2 = tid(&b);
    let (_, g) = app.get("/api/services/awesome").await;
    assert_eq!(queue_len(&g, "live"), 2);

    // The holder re-validates: still ok, queue length stays 2; t2 stays queued.
    let (_, b) = app
        .put(
            "/api/services?queue=true",
            json!({"services": {"awesome": ["live"]}, "ticket": t1}),
        )
        .await;
    assert_eq!(b["status"], "ok");
    let (_, b) = app
        .put(
            "/api/services?queue=true",
            json!({"services": {"awesome": ["live"]}, "ticket": t2}),
        )
        .await;
    assert_eq!(b["status"], "queued");
    let (_, g) = app.get("/api/services/awesome").await;
    assert_eq!(queue_len(&g, "live"), 2);

    // A plain call is denied even after the holder leaves, because t2 is first in line.
    let (s, b) = app.delete(&format!("/api/tickets/{t1}")).await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (_, b) = app
        .put("/api/services", json!({"services": {"awesome": ["live"]}}))
        .await;
    assert_eq!(b["status"], "denied");
    let (_, b) = app
        .put(
            "/api/services?queue=true",
            json!({"services": {"awesome": ["live"]}, "ticket": t2}),
        )
        .await;
    assert_eq!(b["status"], "ok");
    assert!(
        b["ticket"]["fence"].as_u64().unwrap() > fence1,
        "fencing token increases"
    );

    // A released ticket is gone.
    let (s, b) = app
        .put(
            "/api/services",
            json!({"services": {"awesome": ["live"]}, "ticket": t1}),
        )
        .await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (StatusCode::NOT_FOUND, Some("Ticket does not exist"))
    );
    let (s, _) = app.get(&format!("/api/tickets/{t1}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = app.get(&format!("/api/tickets/{t2}")).await;
    assert_eq!(
        (s, b["ticket"]["status"].as_str()),
        (StatusCode::OK, Some("granted"))
    );
}

#[tokio::test]
async fn multi_gate_test_and_set_is_all_or_nothing() {
    let app = spawn_app().await;
    app.gates()
        .create("service12", "team12", &["myservicename", "live"])
        .await;
    app.gates().create("pipeline", "ops", &["meta"]).await;
    let (_, b) = app
        .put(
            "/api/services",
            json!({"services": {"service12": ["myservicename", "live"], "pipeline": ["meta"]}}),
        )
        .await;
    assert_eq!(b["status"], "ok");
    let t = tid(&b);
    let mut gates: Vec<String> = serde_json::from_value(b["ticket"]["gates"].clone()).unwrap();
    gates.sort();
    assert_eq!(
        gates,
        ["pipeline/meta", "service12/live", "service12/myservicename"]
    );
    for (svc, env) in [
        ("service12", "myservicename"),
        ("service12", "live"),
        ("pipeline", "meta"),
    ] {
        let (_, g) = app.get(&format!("/api/services/{svc}/{env}")).await;
        assert_eq!(g["queue"][0]["id"], t.as_str(), "{svc}/{env}");
    }
    app.delete(&format!("/api/tickets/{t}")).await;

    // One closed gate: denied, and no queue is touched.
    app.put("/api/services/pipeline/meta", json!({"state": "closed"}))
        .await;
    let before = app.snapshot();
    let (_, b) = app
        .put(
            "/api/services",
            json!({"services": {"service12": ["live"], "pipeline": ["meta"]}}),
        )
        .await;
    assert_eq!(b["status"], "denied");
    assert_eq!(b["closed"], true);
    assert_eq!(app.snapshot(), before);
    let (_, g) = app.get("/api/services/service12/live").await;
    assert_eq!(g["queue"], json!([]));
    assert_eq!(g["state"], "open");

    // With queue=true a closed gate queues (the seed's behaviour) and grants once opened.
    let (_, b) = app
        .put(
            "/api/services?queue=true",
            json!({"services": {"service12": ["live"], "pipeline": ["meta"]}}),
        )
        .await;
    assert_eq!(b["status"], "queued");
    let t = tid(&b);
    app.put("/api/services/pipeline/meta", json!({"state": "open"}))
        .await;
    let (_, b) = app
        .put(
            "/api/services?queue=true",
            json!({"services": {"service12": ["live"], "pipeline": ["meta"]}, "ticket": t}),
        )
        .await;
    assert_eq!(b["status"], "ok");

    // A ticket re-sent for other gates is a conflict, not a silent grant.
    let (s, b) = app
        .put(
            "/api/services",
            json!({"services": {"service12": ["live"]}, "ticket": t}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    // Unknown gates in a request: 404, nothing written.
    let before = app.snapshot();
    let (s, b) = app
        .put(
            "/api/services?queue=true",
            json!({"services": {"service12": ["live"], "nope": ["x"]}}),
        )
        .await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (StatusCode::NOT_FOUND, Some("Gate not found"))
    );
    let (s, b) = app
        .put(
            "/api/services?queue=true",
            json!({"services": {"service12": ["nope"]}}),
        )
        .await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (StatusCode::NOT_FOUND, Some("Environment not found"))
    );
    assert_eq!(app.snapshot(), before);
}

#[tokio::test]
async fn releasing_unknown_tickets_is_fine_and_tickets_survive_gate_deletion() {
    let app = spawn_app().await;
    let (s, b) = app.delete("/api/tickets/does-not-exist").await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ok")));
    app.gates().create("a", "g", &["live"]).await;
    app.gates().create("b", "g", &["live"]).await;
    let (_, r) = app
        .put(
            "/api/services",
            json!({"services": {"a": "live", "b": "live"}}),
        )
        .await;
    let t = tid(&r);
    app.delete("/api/services/a").await;
    let (_, tk) = app.get(&format!("/api/tickets/{t}")).await;
    assert_eq!(
        tk["ticket"]["gates"],
        json!(["b/live"]),
        "the ticket lost only the deleted gate"
    );
    app.gates().create("a", "g", &["live"]).await;
    let (_, g) = app.get("/api/services/a/live").await;
    assert_eq!(g["queue"], json!([]), "a recreated gate starts empty");
    let (s, _) = app.delete(&format!("/api/tickets/{t}")).await;
    assert_eq!(s, StatusCode::OK);
    let (_, g) = app.get("/api/services/b/live").await;
    assert_eq!(g["queue"], json!([]));
    assert_eq!(g["state"], "open");
}

#[tokio::test]
async fn granted_lifetime_zero_never_expires() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.families.gates.gate_grant_ttl = Duration::ZERO;
        })
        .spawn()
        .await;
    app.gates().create("a", "g", &["live"]).await;
    let (_, b) = app
        .put("/api/services", json!({"services": {"a": ["live"]}}))
        .await;
    assert_eq!(b["ticket"]["expiration_date"], 0.0);
    assert!(b["ticket"].get("expires_at").is_none());
}

#[tokio::test]
async fn expired_tickets_stop_blocking_without_anyone_polling() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.families.gates.gate_queue_ttl = Duration::from_millis(300);
            c.families.gates.gate_grant_ttl = Duration::from_millis(300);
        })
        .spawn()
        .await;
    app.gates().create("a", "g", &["live"]).await;
    let (_, b) = app
        .put(
            "/api/services?queue=true",
            json!({"services": {"a": ["live"]}}),
        )
        .await;
    let t1 = tid(&b);
    let (_, b) = app
        .put(
            "/api/services?queue=true",
            json!({"services": {"a": ["live"]}}),
        )
        .await;
    assert_eq!(b["status"], "queued");
    let t2 = tid(&b);

    // The scheduler runs on its own; nobody touches the tickets.
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(app.scheduler().run(shutdown.clone()));
    let mut conn = app.server.conn();
    let queue_key = app.keys.gates("default").queue("a", "live");
    eventually(Duration::from_secs(5), || {
        let len: usize = redis::cmd("LLEN").arg(&queue_key).query(&mut conn).unwrap();
        async move { len == 0 }
    })
    .await;
    shutdown.cancel();
    let (s, b) = app
        .put(
            "/api/services",
            json!({"services": {"a": ["live"]}, "ticket": t1}),
        )
        .await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (StatusCode::NOT_FOUND, Some("Ticket does not exist"))
    );
    let (s, _) = app
        .put(
            "/api/services",
            json!({"services": {"a": ["live"]}, "ticket": t2}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, b) = app
        .put("/api/services", json!({"services": {"a": ["live"]}}))
        .await;
    assert_eq!(b["status"], "ok", "the gate is free again");
    let (_, h) = app.get("/api/services/a/live/history").await;
    let expired = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "expired")
        .count();
    assert_eq!(expired, 2, "{h}");
}

#[tokio::test]
async fn an_expired_head_stops_blocking_even_before_the_sweep() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.families.gates.gate_queue_ttl = Duration::from_millis(200);
        })
        .spawn()
        .await;
    app.gates().create("a", "g", &["live"]).await;
    app.put("/api/services/a/live", json!({"state": "closed"}))
        .await;
    let (_, b) = app
        .put(
            "/api/services?queue=true",
            json!({"services": {"a": ["live"]}}),
        )
        .await;
    assert_eq!(b["status"], "queued");
    app.put("/api/services/a/live", json!({"state": "open"}))
        .await;
    // No scheduler runs. Once the first ticket's time is up, a newcomer is granted.
    eventually(Duration::from_secs(5), || async {
        let (_, b) = app
            .put("/api/services", json!({"services": {"a": ["live"]}}))
            .await;
        b["status"] == "ok"
    })
    .await;
}

#[tokio::test]
async fn two_schedulers_expire_each_ticket_once() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.families.gates.gate_queue_ttl = Duration::from_millis(100);
        })
        .spawn()
        .await;
    app.gates().create("a", "g", &["live"]).await;
    app.put("/api/services/a/live", json!({"state": "closed"}))
        .await;
    for _ in 0..40 {
        let (_, b) = app
            .put(
                "/api/services?queue=true",
                json!({"services": {"a": ["live"]}}),
            )
            .await;
        assert_eq!(b["status"], "queued");
    }
    tokio::time::sleep(Duration::from_millis(150)).await; // let the 100 ms TTL pass
    let (s1, s2) = (app.scheduler(), app.scheduler());
    let (a, b) = tokio::join!(s1.step("gates.sweep"), s2.step("gates.sweep"));
    assert_eq!(
        a.unwrap() + b.unwrap(),
        40,
        "each ticket expired by exactly one scheduler"
    );
    let (_, h) = app.get("/api/services/a/live/history").await;
    let expired = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "expired")
        .count();
    assert_eq!(expired, 40);
}

#[tokio::test]
async fn holidays_close_the_listed_environments_today_only() {
    let app = spawn_app().await;
    app.gates().create("a", "g", &["live", "develop"]).await;
    let today = Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();
    let yesterday = today.pred_opt().unwrap();
    let (s, b) = app
        .post(
            "/api/holidays",
            json!({"holidays": [
                {"date": today.to_string(), "reason": "today", "environments": ["live"]},
                {"date": tomorrow.to_string(), "reason": "tomorrow", "environments": ["develop"]},
                {"date": yesterday.to_string(), "reason": "past", "environments": ["develop"]},
            ]}),
        )
        .await;
    assert_eq!((s, b), (StatusCode::OK, json!({"status": "ok"})));
    let (_, g) = app.get("/api/services/a").await;
    assert_eq!(g["environments"]["live"]["state"], "closed");
    assert_eq!(g["environments"]["live"]["closed_by"], json!(["holiday"]));
    assert_eq!(g["environments"]["develop"]["state"], "open");
    let (_, b) = app
        .put("/api/services", json!({"services": {"a": ["live"]}}))
        .await;
    assert_eq!(b["status"], "denied");
    let (_, b) = app
        .put("/api/services", json!({"services": {"a": ["develop"]}}))
        .await;
    assert_eq!(b["status"], "ok");
    let (_, h) = app.get("/api/holidays/").await;
    let dates: Vec<&str> = h["holidays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        [today.to_string(), tomorrow.to_string()],
        "upcoming only, by date"
    );
    // Replace-all: an empty list removes them.
    app.post("/api/holidays", json!({"holidays": []})).await;
    let (_, g) = app.get("/api/services/a/live").await;
    assert_eq!(g["state"], "open");
}

#[tokio::test]
async fn build_windows_close_gates_outside_their_hours() {
    let today = Utc::now().weekday().num_days_from_monday();
    let other = (today + 3) % 7;
    let windows = BuildWindows::parse_arg(&format!(
        r#"{{"live": {{"elsewhen": {{"days_range": [{other}, {other}], "hours_range": [0, 24]}}}},
            "develop": {{"always": {{"days_range": [0, 6], "hours_range": [0, 24]}}}}}}"#
    ))
    .unwrap();
    let app = TestApp::builder()
        .with_config(|c| {
            c.families.gates.gate_windows = windows;
        })
        .spawn()
        .await;
    app.gates()
        .create("a", "g", &["live", "develop", "staging"])
        .await;
    let (_, g) = app.get("/api/services/a").await;
    assert_eq!(g["environments"]["live"]["closed_by"], json!(["window"]));
    assert_eq!(g["environments"]["develop"]["state"], "open");
    assert_eq!(
        g["environments"]["staging"]["state"], "open",
        "no rules: never closed by time"
    );
    let (_, b) = app
        .put("/api/services", json!({"services": {"a": ["live"]}}))
        .await;
    assert_eq!(b["status"], "denied");
    let (_, b) = app
        .put(
            "/api/services",
            json!({"services": {"a": ["develop", "staging"]}}),
        )
        .await;
    assert_eq!(b["status"], "ok");
}

#[tokio::test]
async fn group_qualified_routes_work_and_check_the_group() {
    let app = spawn_app().await;
    let (s, b) = app
        .post(
            "/api/gates/team12/awesome",
            json!({"environments": ["live", "dev"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["name"], "awesome");
    assert_eq!(b["environments"]["live"]["state"], "open");
    let (s, _) = app.get("/api/gates/other/awesome").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "wrong group");
    let (s, b) = app
        .put(
            "/api/gates/team12/awesome/live",
            json!({"state": "closed", "message": "m"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b["environments"]["live"]["manual_state"], "closed",
        "answers the whole service"
    );
    let (_, b) = app.get("/api/gates/team12/awesome/live").await;
    assert_eq!(b["message"], "m");
    app.put("/api/gates/team12/awesome/live", json!({"state": "open"}))
        .await;

    let (_, b) = app
        .put(
            "/api/gates",
            json!({"gates": {"team12": {"awesome": ["live"]}}}),
        )
        .await;
    assert_eq!(b["status"], "ok");
    let (s, _) = app
        .put(
            "/api/gates",
            json!({"gates": {"other": {"awesome": ["dev"]}}}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "test-and-set checks the group too"
    );

    let (_, l) = app.get("/api/gates").await;
    assert_eq!(l["groups"]["team12"][0]["name"], "awesome");
    let (_, l) = app.get("/api/services").await;
    assert_eq!(l["services"][0]["environments"], json!(["live", "dev"]));
    let (s, _) = app.delete("/api/gates/other/awesome").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.delete("/api/gates/team12/awesome").await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn rename_and_environment_replacement_keep_queues_and_tickets() {
    let app = spawn_app().await;
    app.gates().create("old", "g", &["live", "dev", "qa"]).await;
    app.put(
        "/api/services/old/live",
        json!({"state": "closed", "message": "keep me"}),
    )
    .await;
    let (_, b) = app
        .put(
            "/api/services?queue=true",
            json!({"services": {"old": ["dev"]}}),
        )
        .await;
    let holder = tid(&b);
    let (_, b) = app
        .put(
            "/api/services?queue=true",
            json!({"services": {"old": ["dev", "qa"]}}),
        )
        .await;
    let waiter = tid(&b);

    let (s, b) = app
        .put(
            "/api/services/old",
            json!({"name": "new", "environments": ["live", "dev", "prod"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["name"], "new");
    assert_eq!(b["environments"]["live"]["message"], "keep me");
    assert_eq!(b["environments"]["live"]["manual_state"], "closed");
    let q: Vec<&str> = b["environments"]["dev"]["queue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        q,
        [holder.as_str(), waiter.as_str()],
        "the queue moved with the rename"
    );
    assert_eq!(b["environments"]["prod"]["state"], "open");
    assert!(b["environments"].get("qa").is_none());
    let (s, _) = app.get("/api/services/old").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Tickets follow: the holder re-sends for the new name; the waiter lost qa.
    let (_, b) = app
        .put(
            "/api/services",
            json!({"services": {"new": ["dev"]}, "ticket": holder}),
        )
        .await;
    assert_eq!(b["status"], "ok");
    let (_, t) = app.get(&format!("/api/tickets/{waiter}")).await;
    assert_eq!(t["ticket"]["gates"], json!(["new/dev"]));
    app.delete(&format!("/api/tickets/{holder}")).await;
    let (_, b) = app
        .put(
            "/api/services",
            json!({"services": {"new": ["dev"]}, "ticket": waiter}),
        )
        .await;
    assert_eq!(b["status"], "ok");

    // Per-environment changes in one call; unknown environment: 404, nothing changed.
    let (s, b) = app
        .put(
            "/api/services/new",
            json!({"environments": {"live": {"state": "open", "message": "go"}}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["environments"]["live"]["message"], "go");
    let before = app.snapshot();
    let (s, _) = app
        .put(
            "/api/services/new",
            json!({"environments": {"live": {"message": "x"}, "nope": {"state": "open"}}}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(app.snapshot(), before);
    // Renaming onto an existing name is refused.
    app.gates().create("taken", "g", &["live"]).await;
    let (s, b) = app.put("/api/services/new", json!({"name": "taken"})).await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("Gate with this name already exists")
        )
    );
}

#[tokio::test]
async fn renames_racing_with_test_and_set_lose_no_queue_update() {
    let app = spawn_app().await;
    app.gates().create("svc0", "g", &["live", "dev"]).await;
    app.put("/api/services/svc0/live", json!({"state": "closed"}))
        .await;
    let app = std::sync::Arc::new(app);
    // 8 clients queue tickets on whatever the service is called right now,
    // while another renames it 30 times.
    let renamer = {
        let app = app.clone();
        tokio::spawn(async move {
            for i in 0..30 {
                let (s, b) = app
                    .put(
                        &format!("/api/services/svc{i}"),
                        json!({"name": format!("svc{}", i + 1)}),
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{b}");
            }
        })
    };
    let mut clients = Vec::new();
    for _ in 0..8 {
        let app = app.clone();
        clients.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            while ids.len() < 10 {
                let (_, l) = app.get("/api/services").await;
                let name = l["services"][0]["name"].as_str().unwrap().to_owned();
                let (s, b) = app
                    .put(
                        "/api/services?queue=true",
                        json!({"services": {name: ["live"]}}),
                    )
                    .await;
                if s == StatusCode::OK {
                    assert_eq!(b["status"], "queued");
                    ids.push(tid(&b));
                } else {
                    assert_eq!(s, StatusCode::NOT_FOUND, "renamed under us: {b}");
                }
            }
            ids
        }));
    }
    renamer.await.unwrap();
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await.unwrap());
    }
    let (_, g) = app.get("/api/services/svc30/live").await;
    let mut queued: Vec<String> = g["queue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    queued.sort();
    all.sort();
    assert_eq!(
        queued, all,
        "every queued ticket is in the renamed gate's queue"
    );
    for t in &all {
        let (_, v) = app.get(&format!("/api/tickets/{t}")).await;
        assert_eq!(v["ticket"]["gates"], json!(["svc30/live"]));
    }
}

#[tokio::test]
async fn history_records_who_did_what_and_when() {
    let app = spawn_app().await;
    app.gates().create("a", "g", &["live"]).await;
    let resp = app
        .client
        .put(format!("{}/api/services/a/live", app.base))
        .header("x-actor", "jens")
        .body(json!({"state": "closed", "message": "testing"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    app.put("/api/services/a/live", json!({"state": "open"}))
        .await;
    let (_, b) = app
        .put("/api/services", json!({"services": {"a": ["live"]}}))
        .await;
    app.delete(&format!("/api/tickets/{}", tid(&b))).await;
    let (s, h) = app.get("/api/services/a/live/history").await;
    assert_eq!(s, StatusCode::OK);
    let events: Vec<&str> = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["released", "granted", "update", "update", "created"]
    );
    assert_eq!(h["history"][3]["actor"], "jens");
    assert_eq!(h["history"][3]["state"], "closed");
    assert_eq!(h["history"][3]["message"], "testing");
    assert!(h["history"][0]["at"].as_str().unwrap().ends_with('Z'));
    let (_, h) = app.get("/api/gates/g/a/live/history?limit=2").await;
    assert_eq!(h["history"].as_array().unwrap().len(), 2);
    let (s, _) = app.get("/api/services/a/live/history?limit=0").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = app.get("/api/services/a/nope/history").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn history_is_bounded() {
    let app = TestApp::builder()
        .with_config(|c| {
            c.families.gates.gate_history_len = 5;
        })
        .spawn()
        .await;
    app.gates().create("a", "g", &["live"]).await;
    for i in 0..20 {
        app.put("/api/services/a/live", json!({"message": format!("m{i}")}))
            .await;
    }
    let mut conn = app.server.conn();
    let len: usize = redis::cmd("LLEN")
        .arg(app.keys.gates("default").history("a", "live"))
        .query(&mut conn)
        .unwrap();
    assert_eq!(len, 5);
    let (_, h) = app.get("/api/services/a/live/history").await;
    assert_eq!(h["history"][0]["message"], "m19");
}
