//! Redis Cluster operations under load, on a cluster of the test's own
//! (3 masters, a replica each): a master killed (`kill -9`) and failed
//! over, a slot moved to another master. Only with
//! `SWITCHYARD_TEST_REDIS=cluster`; elsewhere each test returns early.
//!
//! [`Load`] drives gates (test-and-set / release), deliveries to a
//! loopback receiver and machine transitions from several clients, and
//! records what the clients saw, so a test can check afterwards that
//! nothing was lost, no gate had two holders and the machine counts match.

mod failover;
mod resharding;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::machines::provisioning;
use crate::support::TestApp;
use crate::support::redis::cluster_mode;

/// Clients of each kind.
const CLIENTS: usize = 4;
/// Upper bound of calls per client (the load stops earlier when told).
const MAX_CALLS: usize = 20_000;
/// A machine entity's walk, repeated: 1 → 2 → 4 → 5 → 6 → 4 → 5 → 6 …
const WALK: [&str; 3] = ["4", "5", "6"];

/// True (after printing why) when the test must not run here.
pub fn skip(test: &str) -> bool {
    if cluster_mode() {
        return false;
    }
    println!("{test}: skipped, it needs SWITCHYARD_TEST_REDIS=cluster");
    true
}

/// With `SWITCHYARD_TEST_LOG=<file>`, the app's logs (the roles run in
/// the test's process) go to that file: what a failed run needs to be
/// understood. Run one test at a time with it.
pub fn log_to_file() {
    let Ok(path) = std::env::var("SWITCHYARD_TEST_LOG") else {
        return;
    };
    let file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "info,redis=debug,switchyard_shared=debug,switchyard_worker=debug",
        ))
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .try_init();
}

/// What the clients saw.
#[derive(Default)]
pub struct Seen {
    /// Deliveries created (201).
    pub created: Mutex<HashSet<String>>,
    /// Every 503, with when it came.
    pub unavailable: Mutex<Vec<(Instant, String)>>,
    /// Answers that are neither the expected one nor a 503.
    pub unexpected: Mutex<Vec<String>>,
    /// Gate → the holder's ticket, while held.
    pub holders: Mutex<HashMap<String, String>>,
    /// Two holders at once.
    pub violations: Mutex<Vec<String>>,
    /// Grants and releases seen.
    pub grants: Mutex<usize>,
    /// Machine entity → its state, as the client last saw it applied.
    pub states: Mutex<HashMap<String, String>>,
    /// Transitions applied.
    pub transitions: Mutex<usize>,
}

/// Clients running against the app until [`Load::stop`].
pub struct Load {
    pub seen: Arc<Seen>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Create the gates and the machine, then start the clients;
    /// deliveries go to `receiver`.
    pub async fn start(app: &Arc<TestApp>, receiver: &str) -> Self {
        for svc in ["alpha", "beta"] {
            app.gates().create(svc, "g", &["live"]).await;
        }
        app.machines().create(provisioning()).await;
        let seen = Arc::new(Seen::default());
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let (a, s, st) = (app.clone(), seen.clone(), stop.clone());
            tasks.push(tokio::spawn(gate_client(a, s, st, c)));
            let (a, s, st) = (app.clone(), seen.clone(), stop.clone());
            let url = receiver.to_owned();
            tasks.push(tokio::spawn(delivery_client(a, s, st, url)));
            let (a, s, st) = (app.clone(), seen.clone(), stop.clone());
            tasks.push(tokio::spawn(machine_client(a, s, st, c)));
        }
        Self { seen, stop, tasks }
    }

    /// Stop the clients and wait for them.
    pub async fn stop(self) -> Arc<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        self.seen
    }
}

impl Seen {
    /// Sort an answer: the expected status passes, a 503 is recorded with
    /// its time, anything else is unexpected. True when it was expected.
    fn check(&self, what: &str, status: StatusCode, want: StatusCode, body: &Value) -> bool {
        if status == want {
            return true;
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            self.unavailable
                .lock()
                .unwrap()
                .push((Instant::now(), format!("{what}: {body}")));
        } else {
            self.unexpected
                .lock()
                .unwrap()
                .push(format!("{what}: {status} {body}"));
        }
        false
    }

    /// Calls that succeeded so far: deliveries created, gate grants and
    /// transitions applied.
    pub fn progress(&self) -> usize {
        self.created.lock().unwrap().len()
            + *self.grants.lock().unwrap()
            + *self.transitions.lock().unwrap()
    }

    /// Wait until `more` calls succeeded beyond what succeeded so far
    /// (bounded: 60 s).
    pub async fn progressed(&self, more: usize, what: &str) {
        let until = self.progress() + more;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.progress() < until {
            assert!(Instant::now() < deadline, "no progress {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The span from the first to the last 503, and the last one's time.
    pub fn error_window(&self) -> Option<(Duration, Instant)> {
        let u = self.unavailable.lock().unwrap();
        let first = u.iter().map(|(t, _)| *t).min()?;
        let last = u.iter().map(|(t, _)| *t).max()?;
        Some((last - first, last))
    }
}

/// Test-and-set one of two gates, note the holder, release (retrying a
/// 503 until the release is confirmed).
async fn gate_client(app: Arc<TestApp>, seen: Arc<Seen>, stop: Arc<AtomicBool>, c: usize) {
    let svc = ["alpha", "beta"][c % 2];
    for _ in 0..MAX_CALLS {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let (s, b) = app
            .put("/api/services", json!({"services": {svc: ["live"]}}))
            .await;
        if !seen.check("test-and-set", s, StatusCode::OK, &b) || b["status"] != "ok" {
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        }
        let ticket = b["ticket"]["id"].as_str().unwrap().to_owned();
        if let Some(other) = seen
            .holders
            .lock()
            .unwrap()
            .insert(svc.to_owned(), ticket.clone())
        {
            seen.violations
                .lock()
                .unwrap()
                .push(format!("{svc} held by {other} and {ticket}"));
        }
        *seen.grants.lock().unwrap() += 1;
        tokio::task::yield_now().await;
        // Released client-side first: the next grant can only follow the DELETE.
        seen.holders.lock().unwrap().remove(svc);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (s, b) = app.delete(&format!("/api/tickets/{ticket}")).await;
            if seen.check("release", s, StatusCode::OK, &b) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "ticket {ticket} never released, last answer {s}: {b}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Create deliveries to the receiver, noting each created id.
async fn delivery_client(app: Arc<TestApp>, seen: Arc<Seen>, stop: Arc<AtomicBool>, url: String) {
    for _ in 0..MAX_CALLS {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let (s, b) = app.deliveries().post(json!({"url": url})).await;
        if seen.check("delivery", s, StatusCode::CREATED, &b) {
            let id = b["id"].as_str().unwrap().to_owned();
            seen.created.lock().unwrap().insert(id);
        } else {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Walk entities of the provisioning machine, one after another, noting
/// each entity's state once a move is confirmed. Each move carries an
/// `event_id`, so a move retried after a 503 that had in fact been applied
/// answers `duplicate` — as a client is told to retry.
async fn machine_client(app: Arc<TestApp>, seen: Arc<Seen>, stop: Arc<AtomicBool>, c: usize) {
    let mut calls = 0;
    for e in 0.. {
        let entity = format!("c{c}-e{e}");
        let walk = ["1", "2"].into_iter().chain(WALK.into_iter().cycle());
        for (step, to) in walk.take(2 + (e % 7)).enumerate() {
            let event = json!({"to": to, "event_id": format!("{entity}-{step}")});
            let path = format!("/api/statemachines/PROVISIONING/entities/{entity}/transitions");
            // Whether the last answer left the move's outcome unknown (503).
            let mut unsure = false;
            loop {
                calls += 1;
                if stop.load(Ordering::Relaxed) || calls > MAX_CALLS {
                    if unsure {
                        settle(&app, &seen, &entity).await;
                    }
                    return;
                }
                let (s, b) = app.post(&path, event.clone()).await;
                let applied = match b["status"].as_str() {
                    Some("applied") => {
                        *seen.transitions.lock().unwrap() += 1;
                        true
                    }
                    Some("duplicate") => unsure,
                    _ => false,
                };
                if applied {
                    seen.states
                        .lock()
                        .unwrap()
                        .insert(entity.clone(), to.into());
                    break;
                }
                if seen.check("transition", s, StatusCode::OK, &b) {
                    seen.unexpected
                        .lock()
                        .unwrap()
                        .push(format!("transition {entity} → {to}: {b}"));
                    break;
                }
                unsure = true;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }
}

/// A move answered 503 may have been applied: when the load stops on
/// one, the entity's state is read back (retrying 503s) and tallied as
/// the server has it.
async fn settle(app: &TestApp, seen: &Seen, entity: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (s, b) = app
            .get(&format!(
                "/api/statemachines/PROVISIONING/entities/{entity}"
            ))
            .await;
        match s {
            StatusCode::OK => {
                let mut states = seen.states.lock().unwrap();
                match b["state"].as_str() {
                    Some(state) => states.insert(entity.to_owned(), state.to_owned()),
                    None => states.remove(entity),
                };
                return;
            }
            StatusCode::NOT_FOUND => {
                seen.states.lock().unwrap().remove(entity);
                return;
            }
            _ => {
                assert!(
                    Instant::now() < deadline,
                    "entity {entity} unreadable: {s} {b}"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

/// After the load: every created delivery delivered, no two gate holders,
/// the machine's state counts equal to the clients' tally.
pub async fn check_nothing_lost(app: &TestApp, seen: &Seen, receiver: &crate::support::Receiver) {
    let created = seen.created.lock().unwrap().clone();
    let start = Instant::now();
    loop {
        let got: HashSet<String> = receiver
            .received()
            .iter()
            .map(|r| r.id().to_owned())
            .collect();
        let missing: Vec<&String> = created.iter().filter(|id| !got.contains(*id)).collect();
        if missing.is_empty() {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let mut views = Vec::new();
            for id in missing.iter().take(5) {
                views.push(app.get(&format!("/v1/deliveries/{id}")).await);
            }
            panic!(
                "{} of {} deliveries not delivered within 60 s; the first: {views:?}",
                missing.len(),
                created.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let violations = seen.violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "two gate holders: {violations:?}");
    let mut tally: HashMap<String, u64> = HashMap::new();
    for state in seen.states.lock().unwrap().values() {
        *tally.entry(state.clone()).or_default() += 1;
    }
    let (s, m) = app.get("/api/statemachines/PROVISIONING/metrics").await;
    assert_eq!(s, StatusCode::OK, "{m}");
    for state in ["1", "2", "3", "4", "5", "6", "7"] {
        assert_eq!(
            m["states"][state]["count"].as_u64().unwrap_or(0),
            tally.get(state).copied().unwrap_or(0),
            "state {state}: {m}"
        );
    }
    println!(
        "deliveries created and delivered: {}, gate grants: {}, transitions applied: {}, entities: {}",
        created.len(),
        seen.grants.lock().unwrap(),
        seen.transitions.lock().unwrap(),
        seen.states.lock().unwrap().len()
    );
}
