//! A real race: 64 clients test-and-set overlapping gate sets for a bounded
//! time. Checked afterwards: no gate ever had two holders, fencing tokens
//! strictly increase, and every queued client was granted (no deadlock).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::Rng;
use crate::support::TestApp;

const CLIENTS: usize = 64;
const GATES: [(&str, &str); 6] = [
    ("api", "live"),
    ("api", "staging"),
    ("web", "live"),
    ("web", "staging"),
    ("db", "live"),
    ("pipeline", "meta"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_clients_never_share_a_gate_and_all_get_their_turn() {
    let app = Arc::new(
        TestApp::builder()
            .with_config(|c| c.families.gates.gate_history_len = 10_000)
            .spawn()
            .await,
    );
    for (svc, envs) in [
        ("api", vec!["live", "staging"]),
        ("web", vec!["live", "staging"]),
        ("db", vec!["live"]),
        ("pipeline", vec!["meta"]),
    ] {
        app.gates().create(svc, "g", &envs).await;
    }
    // gate -> current holder's fence, as observed by clients.
    let holders: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    // every grant: (fence, gates)
    let grants: Arc<Mutex<Vec<(u64, Vec<String>)>>> = Arc::default();
    let violations: Arc<Mutex<Vec<String>>> = Arc::default();
    let run_for = Duration::from_secs(3);
    let start = Instant::now();

    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (app, holders, grants, violations) = (
            app.clone(),
            holders.clone(),
            grants.clone(),
            violations.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1));
            let mut granted = 0u32;
            while start.elapsed() < run_for {
                // 1–3 distinct gates.
                let mut set: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
                let n = 1 + (rng.next() % 3) as usize;
                let mut names = Vec::new();
                while names.len() < n {
                    let (s, e) = GATES[(rng.next() % GATES.len() as u64) as usize];
                    let name = format!("{s}/{e}");
                    if !names.contains(&name) {
                        names.push(name);
                        set.entry(s).or_default().push(e);
                    }
                }
                let mut body = json!({"services": set});
                let deadline = Instant::now() + Duration::from_secs(30);
                let ticket: Value = loop {
                    let (s, b) = app.put("/api/services?queue=true", body.clone()).await;
                    assert_eq!(s, StatusCode::OK, "{b}");
                    match b["status"].as_str() {
                        Some("ok") => break b["ticket"].clone(),
                        Some("queued") => {
                            body["ticket"] = b["ticket"]["id"].clone();
                            assert!(
                                Instant::now() < deadline,
                                "client {c} never granted: deadlock?"
                            );
                            tokio::time::sleep(Duration::from_millis(2)).await;
                        }
                        other => panic!("unexpected {other:?}: {b}"),
                    }
                };
                let fence = ticket["fence"].as_u64().unwrap();
                {
                    let mut h = holders.lock().unwrap();
                    for g in &names {
                        if let Some(other) = h.insert(g.clone(), fence) {
                            violations
                                .lock()
                                .unwrap()
                                .push(format!("{g} held by {other} and {fence}"));
                        }
                    }
                }
                grants.lock().unwrap().push((fence, names.clone()));
                tokio::task::yield_now().await;
                {
                    let mut h = holders.lock().unwrap();
                    for g in &names {
                        h.remove(g);
                    }
                }
                let (s, _) = app
                    .delete(&format!("/api/tickets/{}", ticket["id"].as_str().unwrap()))
                    .await;
                assert_eq!(s, StatusCode::OK);
                granted += 1;
            }
            granted
        }));
    }
    let mut total = 0;
    for t in tasks {
        let granted = t.await.unwrap();
        assert!(granted > 0, "every client got at least one grant");
        total += granted;
    }
    {
        let violations = violations.lock().unwrap();
        assert!(violations.is_empty(), "two holders at once: {violations:?}");
        let grants = grants.lock().unwrap();
        assert_eq!(grants.len(), total as usize);
        let mut fences: Vec<u64> = grants.iter().map(|g| g.0).collect();
        fences.sort_unstable();
        fences.dedup();
        assert_eq!(fences.len(), grants.len(), "fencing tokens are unique");
    }

    // Redis's own record, per gate: grants and releases alternate, and the
    // fencing tokens of successive grants strictly increase.
    for (svc, env) in GATES {
        let (_, h) = app.get(&format!("/api/services/{svc}/{env}/history")).await;
        let mut events: Vec<Value> = h["history"].as_array().unwrap().clone();
        events.reverse();
        let mut held: Option<String> = None;
        let mut last_fence = 0;
        for e in events.iter().filter(|e| e["event"] != "queued") {
            match e["event"].as_str().unwrap() {
                "granted" => {
                    assert!(held.is_none(), "{svc}/{env}: granted while held: {e}");
                    let f = e["fence"].as_u64().unwrap();
                    assert!(f > last_fence, "{svc}/{env}: fence {f} after {last_fence}");
                    last_fence = f;
                    held = Some(e["ticket"].as_str().unwrap().to_owned());
                }
                "released" | "expired" => {
                    let t = e["ticket"].as_str().unwrap();
                    if held.as_deref() == Some(t) {
                        held = None;
                    }
                }
                _ => {}
            }
        }
        assert!(held.is_none(), "{svc}/{env} still held at the end");
    }
    eprintln!(
        "race: {CLIENTS} clients, {total} grants in {:?}",
        start.elapsed()
    );
}
