//! Random nets against a sequential reference model, with tokens put
//! concurrently by many tasks while two worker processes run; and the same
//! with one worker SIGKILLed mid-run.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::Receiver;
use crate::support::{Rng, TestApp, WorkerProcess, eventually};

/// A random marked graph: every place has at most one producer and at most
/// one consumer, so the result does not depend on the order tokens arrive.
struct Model {
    sources: Vec<String>,
    /// (inputs, outputs, notify)
    transitions: Vec<(Vec<String>, Vec<String>, bool)>,
}

fn random_model(rng: &mut Rng) -> Model {
    let mut next = 0;
    let mut fresh = || {
        next += 1;
        format!("p{next}")
    };
    let sources: Vec<String> = (0..2 + rng.below(2)).map(|_| fresh()).collect();
    let mut open: Vec<String> = sources.clone();
    let mut transitions = vec![];
    for _ in 0..6 + rng.below(6) {
        if open.is_empty() {
            break;
        }
        let k = (1 + rng.below(2)).min(open.len());
        let mut inputs = vec![];
        for _ in 0..k {
            inputs.push(open.remove(rng.below(open.len())));
        }
        let outputs: Vec<String> = (0..rng.below(3)).map(|_| fresh()).collect();
        open.extend(outputs.iter().cloned());
        transitions.push((inputs, outputs, rng.below(2) == 0));
    }
    Model {
        sources,
        transitions,
    }
}

impl Model {
    /// Sequential firing for one colour: (final marking, fired transitions).
    fn run(&self) -> (BTreeSet<String>, Vec<usize>) {
        let mut marking: BTreeSet<String> = self.sources.iter().cloned().collect();
        let mut fired = vec![];
        while let Some(t) = (0..self.transitions.len()).find(|&t| {
            !fired.contains(&t) && self.transitions[t].0.iter().all(|p| marking.contains(p))
        }) {
            for p in &self.transitions[t].0 {
                marking.remove(p);
            }
            marking.extend(self.transitions[t].1.iter().cloned());
            fired.push(t);
        }
        (marking, fired)
    }

    fn spec(&self, url: &str) -> Value {
        // A prefix makes colours 1..=n: create a group from the seed token and split it.
        let mut ts = vec![
            json!({"inputs": ["seed"], "outputs": ["grouped"], "action": {"type": "create-color-group"}}),
            json!({"inputs": ["grouped"], "outputs": ["colors"], "action": {"type": "split"}}),
        ];
        for (ins, outs, notify) in &self.transitions {
            let mut t = json!({"inputs": ins, "outputs": outs});
            if *notify {
                t["action"] = json!({"type": "notify", "url": url});
            }
            ts.push(t);
        }
        json!({"transitions": ts})
    }
}

/// A worker process, killed when dropped (also when a test fails).
fn spawn_worker(app: &TestApp, name: &str) -> WorkerProcess {
    WorkerProcess::spawn(
        app,
        name,
        &[
            "--worker-block",
            "50ms",
            "--net-fire-bound",
            "3",
            "--net-callback-policy",
            "fast",
        ],
    )
}

async fn run_case(seed: u64, colors: usize, kill_one: bool) {
    let mut rng = Rng(seed);
    let model = random_model(&mut rng);
    let app = Arc::new(
        TestApp::builder()
            // chains continue as stream work
            .with_config(|c| c.families.nets.net_fire_bound = 3)
            .spawn()
            .await,
    );
    let rx = Receiver::start(
        Duration::from_millis(2),
        Arc::new(|_, _| (StatusCode::OK, vec![])),
    )
    .await;
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(app.scheduler().run(stop.clone()));
    let mut workers = vec![spawn_worker(&app, "a"), spawn_worker(&app, "b")];

    let (s, b) = app.post("/v1/nets", model.spec(&rx.url)).await;
    assert_eq!(s, StatusCode::CREATED, "seed {seed}: {b}");
    let id = b["net_key"].as_str().unwrap().to_owned();
    let (s, seedtok) = app
        .post(
            &format!("/v1/nets/{id}/places/seed/tokens"),
            json!({"color_group_size": colors}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{seedtok}");
    let root = seedtok["color"].as_i64().unwrap();
    // The split made colours root+1 ..= root+colors (allocated after the root).
    eventually(Duration::from_secs(20), || async {
        let (_, p) = app.get(&format!("/v1/nets/{id}/places")).await;
        p["places"]["colors"]["tokens"]
            .as_object()
            .is_some_and(|m| m.len() == colors)
    })
    .await;
    let (_, p) = app.get(&format!("/v1/nets/{id}/places")).await;
    let mut all_colors: Vec<i64> = p["places"]["colors"]["tokens"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.parse().unwrap())
        .collect();
    all_colors.sort();
    assert!(all_colors.iter().all(|&c| c > root));

    // Every (source, colour) token, shuffled, put by 8 concurrent tasks.
    let mut puts: Vec<(String, i64)> = model
        .sources
        .iter()
        .flat_map(|s| all_colors.iter().map(move |&c| (s.clone(), c)))
        .collect();
    for i in (1..puts.len()).rev() {
        puts.swap(i, rng.below(i + 1));
    }
    let chunks: Vec<Vec<(String, i64)>> = puts
        .chunks(puts.len().div_ceil(8))
        .map(<[_]>::to_vec)
        .collect();
    let mut tasks = vec![];
    for chunk in chunks {
        let (app, id) = (app.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            for (place, color) in chunk {
                let (s, b) = app
                    .put(
                        &format!("/v1/nets/{id}/places/{place}/tokens?color={color}"),
                        json!({}),
                    )
                    .await;
                assert_eq!(s, StatusCode::CREATED, "{place}/{color}: {b}");
            }
        }));
    }
    if kill_one {
        // Kill worker a once callbacks are flowing.
        eventually(Duration::from_secs(30), || async { rx.count() >= 5 }).await;
        workers[0].kill();
        workers.push(spawn_worker(&app, "c"));
    }
    for t in tasks {
        t.await.unwrap();
    }

    let (final_marking, fired) = model.run();
    let notify_per_color = fired.iter().filter(|&&t| model.transitions[t].2).count();
    let expected_callbacks = notify_per_color * colors;
    eprintln!(
        "seed {seed:#x}: {} transitions, {} fire per colour ({notify_per_color} notify), {colors} colours",
        model.transitions.len(),
        fired.len()
    );
    eventually(Duration::from_secs(60), || async {
        let mut ids: Vec<String> = rx.received().iter().map(|r| r.id().to_owned()).collect();
        ids.sort();
        ids.dedup();
        ids.len() >= expected_callbacks && net_idle(&app, &id).await
    })
    .await;
    stop.cancel();
    drop(workers);

    // Webhooks: exactly one distinct callback per (notify transition, colour).
    let mut per: HashMap<(i64, i64), HashSet<String>> = HashMap::new();
    for r in rx.received() {
        let b: Value = serde_json::from_str(&r.body).unwrap();
        per.entry((
            b["transition"].as_i64().unwrap(),
            b["color"].as_i64().unwrap(),
        ))
        .or_default()
        .insert(r.id().to_owned());
    }
    assert_eq!(
        per.len(),
        expected_callbacks,
        "seed {seed}: callbacks per (transition, colour)"
    );
    assert!(
        per.values().all(|ids| ids.len() == 1),
        "seed {seed}: a retried callback kept its webhook-id"
    );

    // Final marking: the model's, for every colour.
    let (_, p) = app.get(&format!("/v1/nets/{id}/places")).await;
    let mut got: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for (name, place) in p["places"].as_object().unwrap() {
        if ["seed", "grouped", "colors"].contains(&name.as_str()) {
            continue;
        }
        for c in place["tokens"].as_object().unwrap().keys() {
            got.entry(name.clone())
                .or_default()
                .insert(c.parse().unwrap());
        }
    }
    let want: BTreeMap<String, BTreeSet<i64>> = final_marking
        .iter()
        .map(|p| (p.clone(), all_colors.iter().copied().collect()))
        .collect();
    assert_eq!(got, want, "seed {seed}: final marking");
    let n = app.get(&format!("/v1/nets/{id}")).await.1;
    assert_eq!(
        n["fired"].as_u64().unwrap() as usize,
        2 + fired.len() * colors,
        "seed {seed}: every transition fired exactly once per colour"
    );
}

/// No pending continuation and the marking no longer changes.
async fn net_idle(app: &TestApp, id: &str) -> bool {
    let a = app.get(&format!("/v1/nets/{id}")).await.1["fired"].clone();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let b = app.get(&format!("/v1/nets/{id}")).await.1["fired"].clone();
    a == b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_nets_match_the_sequential_model() {
    for seed in [0x5EED_0001, 0x5EED_0002, 0x5EED_0003] {
        run_case(seed, 12, false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_worker_does_not_change_what_fires() {
    run_case(0xC0FF_EE01, 60, true).await;
}
