//! Services and their gates: create, read, open and close, rename, delete.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::api::gates::ticket_id;
use crate::support::spawn_app;

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
    let holder = ticket_id(&b);
    let (_, b) = app
        .put(
            "/api/services?queue=true",
            json!({"services": {"old": ["dev", "qa"]}}),
        )
        .await;
    let waiter = ticket_id(&b);

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
        .gates()
        .test_and_set(json!({"services": {"new": ["dev"]}, "ticket": holder}))
        .await;
    assert_eq!(b["status"], "ok");
    let (_, t) = app.get(&format!("/api/tickets/{waiter}")).await;
    assert_eq!(t["ticket"]["gates"], json!(["new/dev"]));
    app.delete(&format!("/api/tickets/{holder}")).await;
    let (_, b) = app
        .gates()
        .test_and_set(json!({"services": {"new": ["dev"]}, "ticket": waiter}))
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
                    ids.push(ticket_id(&b));
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
