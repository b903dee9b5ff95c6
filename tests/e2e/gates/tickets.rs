//! Gatekeeper scenarios, through HTTP.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::api::gates::{queue_len, ticket_id};
use crate::support::{TestApp, eventually, spawn_app};

#[tokio::test]
async fn test_and_set_grants_queues_and_closes_the_gate() {
    let app = spawn_app().await;
    app.gates()
        .create("awesome", "team12", &["live", "develop"])
        .await;
    let (s, b) = app
        .gates()
        .test_and_set(json!({"services": {"awesome": ["live"]}}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["status"], "ok");
    let t1 = ticket_id(&b);
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
        .gates()
        .test_and_set(json!({"services": {"awesome": ["live"]}, "ticket": t1}))
        .await;
    assert_eq!(b["status"], "ok");
    assert_eq!(ticket_id(&b), t1);
    assert_eq!(b["ticket"]["fence"].as_u64().unwrap(), fence1);

    // Without queue=true a second caller is denied and nothing is linked.
    let before = app.snapshot();
    let (s, b) = app
        .gates()
        .test_and_set(json!({"services": {"awesome": "live"}}))
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
    let t2 = ticket_id(&b);
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
        .gates()
        .test_and_set(json!({"services": {"awesome": ["live"]}}))
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
        .gates()
        .test_and_set(json!({"services": {"awesome": ["live"]}, "ticket": t1}))
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
        .gates()
        .test_and_set(
            json!({"services": {"service12": ["myservicename", "live"], "pipeline": ["meta"]}}),
        )
        .await;
    assert_eq!(b["status"], "ok");
    let t = ticket_id(&b);
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
        .gates()
        .test_and_set(json!({"services": {"service12": ["live"], "pipeline": ["meta"]}}))
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
    let t = ticket_id(&b);
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
        .gates()
        .test_and_set(json!({"services": {"service12": ["live"]}, "ticket": t}))
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
async fn releasing_an_unknown_ticket_is_fine() {
    let app = spawn_app().await;
    let (s, b) = app.delete("/api/tickets/does-not-exist").await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ok")));
}

#[tokio::test]
async fn a_ticket_survives_the_deletion_of_one_of_its_gates() {
    let app = spawn_app().await;
    app.gates().create("a", "g", &["live"]).await;
    app.gates().create("b", "g", &["live"]).await;
    let (_, r) = app
        .gates()
        .test_and_set(json!({"services": {"a": "live", "b": "live"}}))
        .await;
    let t = ticket_id(&r);
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
        .gates()
        .test_and_set(json!({"services": {"a": ["live"]}}))
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
    let t1 = ticket_id(&b);
    let (_, b) = app
        .put(
            "/api/services?queue=true",
            json!({"services": {"a": ["live"]}}),
        )
        .await;
    assert_eq!(b["status"], "queued");
    let t2 = ticket_id(&b);

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
        .gates()
        .test_and_set(json!({"services": {"a": ["live"]}, "ticket": t1}))
        .await;
    assert_eq!(
        (s, b["reason"].as_str()),
        (StatusCode::NOT_FOUND, Some("Ticket does not exist"))
    );
    let (s, _) = app
        .gates()
        .test_and_set(json!({"services": {"a": ["live"]}, "ticket": t2}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, b) = app
        .gates()
        .test_and_set(json!({"services": {"a": ["live"]}}))
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
            .gates()
            .test_and_set(json!({"services": {"a": ["live"]}}))
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
