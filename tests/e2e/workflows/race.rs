//! Concurrent proceeds on one concurrence, with two workers running in the
//! background: every proceed is applied exactly once, a double proceed
//! is a clean 400 for the loser (never a 500), and the workflow completes
//! once with every branch's fields.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use super::Flow;
use crate::support::{eventually, worker_opts};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_concurrent_proceeds_on_one_concurrence_each_apply_once() {
    let f = Flow::holding().await;
    let branches: String = (0..16).map(|i| format!("    p{i:02}\n")).collect();
    let id = f
        .launch(
            format!("define\n  concurrence merge_type: mix\n{branches}  after\n"),
            json!({"base": true}),
        )
        .await;
    f.run().await;
    let held = f.p.held();
    assert_eq!(held.len(), 16, "{:?}", f.p.trace());

    let _a = f.app.run_worker_with(worker_opts("race-a"));
    let _b = f.app.run_worker_only("race-b");
    // Sixteen proceeds, plus a second one of the first workitem, at once.
    let wf = f.app.workflows();
    let calls = held
        .iter()
        .chain(std::iter::once(&held[0]))
        .enumerate()
        .map(|(n, cb)| {
            let wf = &wf;
            let name = cb.participant.clone();
            async move {
                let fields = json!({ format!("f_{name}"): n, "last": name });
                wf.proceed_at(&cb.proceed_url, Some(fields)).await
            }
        });
    let answers = futures::future::join_all(calls).await;
    for (s, b) in &answers {
        assert!(!s.is_server_error(), "{s} {b}");
    }
    let created = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 16, "{answers:?}");
    let refused: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s != StatusCode::CREATED)
        .collect();
    assert_eq!(
        refused,
        [&(
            StatusCode::BAD_REQUEST,
            json!({"error": "workitem_id not found"})
        )]
    );

    eventually(Duration::from_secs(20), || async {
        !f.p.of("after").is_empty()
    })
    .await;
    let after = f.p.last("after");
    let fields = after.fields.as_object().unwrap();
    for cb in &held {
        let key = format!("f_{}", cb.participant);
        assert!(fields.contains_key(&key), "{key} merged: {:?}", after.body);
    }
    assert_eq!(fields["base"], true);
    let (s, b) = wf.proceed_at(&after.proceed_url, Some(json!({}))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    eventually(Duration::from_secs(20), || async {
        wf.status(&id).await == "completed"
    })
    .await;

    let history = wf.history(&id).await;
    let count = |t: &str| history.iter().filter(|e| e["type"] == t).count();
    assert_eq!(count("proceeded"), 17, "16 branches and after");
    assert_eq!(count("dispatched"), 17);
    assert_eq!(count("completed"), 1);
    assert_eq!(f.p.of("after").len(), 1, "the join dispatched once");
    let done = wf.get(&id).await;
    let final_fields: &Map<String, Value> = done["fields"].as_object().unwrap();
    assert_eq!(final_fields.len(), 16 + 2, "{done:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_cancels_and_proceeds_answer_cleanly_and_the_workflow_ends_cancelled() {
    let f = Flow::holding().await;
    let id = f
        .launch(
            "define\n  concurrence\n    alpha\n    bravo\n  charly\n",
            json!({}),
        )
        .await;
    f.run().await;
    let (alpha, bravo) = (f.held("alpha"), f.held("bravo"));
    let _w = f.app.run_worker_with(worker_opts("race"));
    let wf = f.app.workflows();
    let cancels = futures::future::join_all((0..8).map(|_| wf.cancel(&id)));
    let proceeds = futures::future::join_all(
        [&alpha, &bravo].map(|cb| wf.proceed_at(&cb.proceed_url, Some(json!({})))),
    );
    let (cancels, proceeds) = tokio::join!(cancels, proceeds);
    let created = cancels
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{cancels:?}");
    for (s, b) in &cancels {
        if *s != StatusCode::CREATED {
            assert_eq!(
                (*s, b),
                (
                    StatusCode::BAD_REQUEST,
                    &json!({"error": "workflow_id not found"})
                )
            );
        }
    }
    for (s, b) in &proceeds {
        assert!(
            *s == StatusCode::CREATED
                || (*s == StatusCode::BAD_REQUEST
                    && *b == json!({"error": "workitem_id not found"})),
            "{s} {b}"
        );
    }
    eventually(Duration::from_secs(20), || async {
        wf.status(&id).await == "cancelled"
    })
    .await;
    let history = wf.history(&id).await;
    assert_eq!(
        history
            .iter()
            .filter(|e| e["type"] == "cancelled" && e.get("participant").is_none())
            .count(),
        1,
        "{history:#?}"
    );
    assert_eq!(
        history.iter().filter(|e| e["type"] == "completed").count(),
        0
    );
}
