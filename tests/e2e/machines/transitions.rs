//! State machines: the seed's provisioning machine, validation, duplicates,
//! thresholds with cooldown and recovery, and a 10,000-entity race.

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::provisioning;
use crate::support::spawn_app;

#[tokio::test]
async fn the_seed_machine_follows_both_of_its_timelines() {
    let app = spawn_app().await;
    let (s, b) = app.machines().post(provisioning()).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(
        b["initial"],
        json!(["1"]),
        "the first state is initial when none is marked"
    );
    let (s, _) = app.get("/api/statemachines/PROVISIONING").await;
    assert_eq!(s, StatusCode::OK);

    // Example 1: Waiting Payment → Cancelled.
    for to in ["1", "3"] {
        let (s, b) = app.machines().transition("PROVISIONING", "p1", to).await;
        assert_eq!(
            (s, b["status"].as_str()),
            (StatusCode::OK, Some("applied")),
            "{b}"
        );
    }
    // Example 2: the long life.
    for to in ["1", "2", "4", "5", "6", "4", "5", "6", "7", "3"] {
        let (s, b) = app.machines().transition("PROVISIONING", "p2", to).await;
        assert_eq!(s, StatusCode::OK, "to {to}: {b}");
    }
    let (_, e) = app.get("/api/statemachines/PROVISIONING/entities/p2").await;
    assert_eq!(e["state"], "3");
    assert_eq!(e["closed"], true);
    let path: Vec<&str> = e["history"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|h| h["to"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["1", "2", "4", "5", "6", "4", "5", "6", "7", "3"]);
    assert!(e["history"][0]["at"].as_str().unwrap().ends_with('Z'));

    let (_, m) = app.get("/api/statemachines/PROVISIONING/metrics").await;
    for s in ["1", "2", "4", "5", "6", "7"] {
        assert_eq!(m["states"][s]["count"], 0, "state {s}: {m}");
    }
    assert_eq!(m["states"]["4"]["entries"]["1m"], 2);
    assert_eq!(
        m["states"]["3"]["entries"]["5m"], 2,
        "both entities ended cancelled"
    );
    assert_eq!(m["edges"]["6>4"]["1h"], 1);
    assert_eq!(m["edges"]["1>3"]["1m"], 1);
}

#[tokio::test]
async fn moves_the_machine_does_not_allow_are_refused() {
    let app = spawn_app().await;
    app.machines().create(provisioning()).await;
    let (s, b) = app.machines().transition("PROVISIONING", "x", "2").await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert_eq!(
        b["allowed"],
        json!(["1"]),
        "a new entity must enter an initial state"
    );
    app.machines().transition("PROVISIONING", "x", "1").await;
    let (s, b) = app.machines().transition("PROVISIONING", "x", "5").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(b["allowed"], json!(["2", "3"]));
    assert_eq!(b["code"], "transition_not_allowed");
    app.machines().transition("PROVISIONING", "x", "3").await;
    let (s, b) = app.machines().transition("PROVISIONING", "x", "1").await;
    assert_eq!(s, StatusCode::CONFLICT, "closed: {b}");
    let (s, b) = app.machines().transition("PROVISIONING", "y", "9").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "unknown state: {b}");
    let (_, m) = app.get("/api/statemachines/PROVISIONING/metrics").await;
    assert!(m["rejected"]["1m"].as_i64().unwrap() >= 3, "{m}");
}

#[tokio::test]
async fn the_same_event_id_twice_is_applied_once() {
    let app = spawn_app().await;
    app.machines().create(provisioning()).await;
    let ev =
        json!({"to": "1", "event_id": "evt-1", "at": "2026-11-23T10:00:00Z", "data": {"order": 7}});
    let (_, a) = app
        .post(
            "/api/statemachines/PROVISIONING/entities/z/transitions",
            ev.clone(),
        )
        .await;
    let (_, b) = app
        .post("/api/statemachines/PROVISIONING/entities/z/transitions", ev)
        .await;
    assert_eq!(
        (a["status"].as_str(), b["status"].as_str()),
        (Some("applied"), Some("duplicate"))
    );
    let (_, e) = app.get("/api/statemachines/PROVISIONING/entities/z").await;
    assert_eq!(e["history"].as_array().unwrap().len(), 1);
    assert_eq!(e["history"][0]["data"]["order"], 7);
    assert_eq!(e["entered"], "2026-11-23T10:00:00.000Z");
}

#[tokio::test]
async fn bad_machine_requests_are_refused_where_they_are_wrong() {
    let app = spawn_app().await;
    app.machines().create(provisioning()).await;
    for (path, body, status, at) in [
        (
            "/api/statemachines/NOPE/entities/a/transitions",
            json!({"to": "1"}),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            "/api/statemachines/PROVISIONING/entities/a/transitions",
            json!({}),
            StatusCode::BAD_REQUEST,
            Some("body"),
        ),
        (
            "/api/statemachines/PROVISIONING/entities/a/transitions",
            json!({"to": 1}),
            StatusCode::BAD_REQUEST,
            Some("body.to"),
        ),
        (
            "/api/statemachines/PROVISIONING/entities/a/transitions",
            json!({"to": "1", "at": "yesterday"}),
            StatusCode::BAD_REQUEST,
            Some("body.at"),
        ),
        (
            "/api/statemachines/PROVISIONING/entities/a/transitions",
            json!({"to": "1", "data": [1]}),
            StatusCode::BAD_REQUEST,
            Some("body.data"),
        ),
        (
            "/api/statemachines/PROVISIONING/entities/a:b/transitions",
            json!({"to": "1"}),
            StatusCode::BAD_REQUEST,
            Some("path.entity"),
        ),
        (
            "/api/statemachines/PROVISIONING/transitions",
            json!({"events": []}),
            StatusCode::BAD_REQUEST,
            Some("body.events"),
        ),
        (
            "/api/statemachines/PROVISIONING/transitions",
            json!({"events": [{"entity": "a", "to": "1"}, {"entity": "", "to": "1"}]}),
            StatusCode::BAD_REQUEST,
            Some("body.events[1].entity"),
        ),
        (
            "/api/statemachines",
            json!({"id": "A", "states": []}),
            StatusCode::BAD_REQUEST,
            Some("body.states"),
        ),
        (
            "/api/statemachines",
            json!({"id": "A", "states": [{"id": "1"}, {"id": "1"}]}),
            StatusCode::BAD_REQUEST,
            Some("body.states[1].id"),
        ),
        (
            "/api/statemachines",
            json!({"id": "A", "states": [{"id": "1", "next": ["2"]}]}),
            StatusCode::BAD_REQUEST,
            Some("body.states[0].next[0]"),
        ),
        (
            "/api/statemachines",
            {
                // The same id with another definition (the same one again is a retry).
                let mut other = provisioning();
                other["name"] = json!("Another");
                other
            },
            StatusCode::CONFLICT,
            Some("body.id"),
        ),
    ] {
        let (s, b) = app.post(path, body.clone()).await;
        assert_eq!(s, status, "{path} {body}: {b}");
        if let Some(at) = at {
            assert_eq!(b["where"], at, "{path} {body}: {b}");
        }
    }
    assert_eq!(
        app.get("/api/statemachines/PROVISIONING/entities/ghost")
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/statemachines/NOPE/metrics").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_batch_reports_each_events_outcome() {
    let app = spawn_app().await;
    app.machines().create(provisioning()).await;
    let (s, r) = app
        .post("/api/statemachines/PROVISIONING/transitions", json!({"events": [
            {"entity": "b1", "to": "1"}, {"entity": "b1", "to": "2"}, {"entity": "b1", "to": "7"}, {"entity": "b2", "to": "4"}
        ]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let st: Vec<&str> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["status"].as_str().unwrap())
        .collect();
    assert_eq!(st, ["applied", "applied", "rejected", "rejected"]);
    assert_eq!(r["results"][2]["allowed"], json!(["4"]));
    let (_, m) = app.get("/api/statemachines/PROVISIONING/metrics").await;
    assert!(m["rejected"]["1m"].as_i64().unwrap() >= 2, "{m}");
}

#[tokio::test]
async fn a_deleted_machine_is_gone() {
    let app = spawn_app().await;
    app.machines().create(provisioning()).await;
    assert_eq!(
        app.delete("/api/statemachines/PROVISIONING").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/api/statemachines/PROVISIONING").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_entities_moved_concurrently_match_a_reference_tally() {
    let app = Arc::new(spawn_app().await);
    app.post("/api/statemachines", provisioning()).await;
    let next: HashMap<&str, Vec<&str>> = [
        ("1", vec!["2", "3"]),
        ("2", vec!["4"]),
        ("4", vec!["5"]),
        ("5", vec!["6"]),
        ("6", vec!["4", "7"]),
        ("7", vec!["3"]),
        ("3", vec![]),
    ]
    .into_iter()
    .collect();
    let next = Arc::new(next);
    let mut tasks = vec![];
    for t in 0..20u64 {
        let (app, next) = (app.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = t * 7919 + 1;
            let mut step = || {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng
            };
            // 500 entities per task; each walks a random number of steps.
            let mut state: HashMap<String, &str> = HashMap::new();
            for round in 0..6 {
                let mut events = vec![];
                for i in 0..500 {
                    let e = format!("t{t}-e{i}");
                    let to = match state.get(&e) {
                        None => "1",
                        Some(cur) => {
                            let opts = &next[cur];
                            if opts.is_empty() || step() % 3 == 0 {
                                continue;
                            }
                            opts[(step() % opts.len() as u64) as usize]
                        }
                    };
                    events.push((e, to));
                }
                if round % 2 == 0 {
                    // Batches of 250.
                    for chunk in events.chunks(250) {
                        let body = json!({"events": chunk.iter().map(|(e, to)| json!({"entity": e, "to": to})).collect::<Vec<_>>()});
                        let (s, r) = app.post("/api/statemachines/PROVISIONING/transitions", body).await;
                        assert_eq!(s, StatusCode::OK, "{r}");
                        for (x, (e, to)) in r["results"].as_array().unwrap().iter().zip(chunk) {
                            assert_eq!(x["status"], "applied", "{e} → {to}: {x}");
                            state.insert(e.clone(), to);
                        }
                    }
                } else {
                    for (e, to) in events.iter().take(100) {
                        let (s, r) = app.post(&format!("/api/statemachines/PROVISIONING/entities/{e}/transitions"), json!({"to": to})).await;
                        assert_eq!(s, StatusCode::OK, "{r}");
                        state.insert(e.clone(), to);
                    }
                }
            }
            state
        }));
    }
    let mut tally: HashMap<&str, i64> = HashMap::new();
    let mut total = 0;
    for t in tasks {
        for (_, s) in t.await.unwrap() {
            *tally.entry(s).or_default() += 1;
            total += 1;
        }
    }
    assert_eq!(total, 10_000);
    let (_, m) = app.get("/api/statemachines/PROVISIONING/metrics").await;
    for s in ["1", "2", "4", "5", "6", "7"] {
        assert_eq!(
            m["states"][s]["count"].as_i64().unwrap(),
            tally.get(s).copied().unwrap_or(0),
            "state {s}"
        );
    }
    eprintln!("tally: {tally:?}");
}

#[tokio::test]
async fn a_recreated_machine_starts_its_entities_afresh() {
    let app = spawn_app().await;
    app.post("/api/statemachines", provisioning()).await;
    app.machines().transition("PROVISIONING", "e", "1").await;
    app.machines().transition("PROVISIONING", "e", "2").await;
    app.delete("/api/statemachines/PROVISIONING").await;
    let (s, b) = app
        .post("/api/statemachines", json!({"id": "PROVISIONING", "states": [{"id": "new", "next": ["done"]}, {"id": "done"}]}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app.machines().transition("PROVISIONING", "e", "new").await;
    assert_eq!(
        (s, b["status"].as_str(), b["from"].clone()),
        (StatusCode::OK, Some("applied"), Value::Null),
        "{b}"
    );
    let (_, m) = app.get("/api/statemachines/PROVISIONING/metrics").await;
    assert_eq!(m["states"]["new"]["count"], 1);
}
