//! A worker process is SIGKILLed in the middle of 200 workflows of five
//! steps; a second one finishes: every workflow completes, every step is
//! dispatched once with one workitem id, and a callback sent again keeps
//! its delivery id (webhook-id).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{FAST, app};
use crate::support::participants::{Behaviour, Participants};
use crate::support::{WorkerProcess, eventually};

const WORKFLOWS: usize = 200;
const STEPS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_worker_loses_no_workflow_and_forks_no_workitem() {
    let app = app().await;
    // A slow receiver (callbacks are in flight when the worker dies) that
    // proceeds after the worker visibility (1 s), so an attempt the killed
    // worker did not finish is sent again before its workitem is proceeded.
    let p = Participants::with_default(
        &app,
        Behaviour::proceed()
            .answering_after(Duration::from_millis(50))
            .proceeding_after(Duration::from_millis(1200)),
    )
    .await;
    let def = "define\n  s1\n  s2\n  s3\n  s4\n  s5\n";
    let mut ids = Vec::new();
    let wf = app.workflows();
    for chunk in 0..WORKFLOWS / 50 {
        let launches = (0..50).map(|i| wf.launch(def, &p.url, json!({"n": chunk * 50 + i})));
        ids.extend(futures::future::join_all(launches).await);
    }
    let stop = CancellationToken::new();
    tokio::spawn(app.scheduler().run(stop.clone()));
    let spawn = |name: &str| {
        WorkerProcess::spawn(
            &app,
            name,
            &[
                "--workflow-callback-policy",
                FAST,
                "--worker-block",
                "100ms",
            ],
        )
    };
    let mut first = spawn("first");
    let start = Instant::now();
    while p.accepted().len() < WORKFLOWS * STEPS / 4 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the first worker made no progress: {} callbacks",
            p.accepted().len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill(); // SIGKILL, mid-flight
    let killed_at = p.accepted().len();
    let mut second = spawn("second");
    eventually(Duration::from_secs(60), || async {
        let (_, page) = app.workflows().list("?status=completed&limit=500").await;
        page["workflows"].as_array().map_or(0, Vec::len) == WORKFLOWS
    })
    .await;
    second.kill();
    stop.cancel();

    // Each step of each workflow: one workitem id, one delivery id.
    let mut workitems: HashMap<(String, String), HashSet<String>> = HashMap::new();
    let mut deliveries: HashMap<String, HashSet<String>> = HashMap::new();
    for c in p.all().into_iter().filter(|c| c.status == "active") {
        workitems
            .entry((c.workflow_id.clone(), c.participant.clone()))
            .or_default()
            .insert(c.workitem_id.clone());
        deliveries
            .entry(c.workitem_id.clone())
            .or_default()
            .insert(c.webhook_id().to_owned());
    }
    assert_eq!(workitems.len(), WORKFLOWS * STEPS);
    for (step, wis) in &workitems {
        assert_eq!(wis.len(), 1, "{step:?} dispatched as {wis:?}");
    }
    for (wi, hooks) in &deliveries {
        assert_eq!(hooks.len(), 1, "{wi} sent as {hooks:?}");
    }
    // Every proceed was applied once; a second one (for a callback sent
    // again) is refused cleanly.
    let proceeds = p.proceeds();
    let mut applied: HashMap<&str, usize> = HashMap::new();
    for pr in &proceeds {
        match pr.status {
            201 => *applied.entry(pr.workitem_id.as_str()).or_default() += 1,
            400 => assert!(pr.answer.contains("workitem_id not found"), "{pr:?}"),
            _ => panic!("{pr:?}"),
        }
    }
    assert_eq!(applied.len(), WORKFLOWS * STEPS);
    assert!(applied.values().all(|&n| n == 1));
    for id in &ids {
        let history = app.workflows().history(id).await;
        let count = |t: &str| history.iter().filter(|e| e["type"] == t).count();
        assert_eq!(
            (count("dispatched"), count("proceeded"), count("completed")),
            (STEPS, STEPS, 1),
            "{id}: {history:#?}"
        );
    }
    eprintln!(
        "workflow crash test: killed after {killed_at} callbacks; {} requests for {} steps, {} proceeds refused",
        p.all().len(),
        WORKFLOWS * STEPS,
        proceeds.iter().filter(|pr| pr.status == 400).count(),
    );
}
