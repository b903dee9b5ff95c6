//! Workflows end to end: the Scriptoria API over the Ruote-compatible
//! engine, through HTTP, with real participants on loopback that proceed
//! (`support/participants.rs`).
//!
//! * `seed` — the seed's example, the API's answers, GET/history/tree,
//!   listing and retention;
//! * `formats` — JSON, XML and Radial give the same run;
//! * one file per group of expressions (research/workflows.md §3–§5):
//!   `sequence`, `concurrence`, `cursors`, `iterators`, `conditions`,
//!   `data`, `timers`, `subprocesses`, `errors`, `tags`;
//! * `retries` — the `active` callback retry schedule, cancel and proceed
//!   during retries;
//! * `race` — concurrent proceeds; `crash` — a SIGKILLed worker process.
//!
//! Tests step the worker and scheduler with `Participants::run` (settle,
//! then wait for the participants' proceeds, until quiet); only `race` and
//! `crash` run roles in the background.

mod concurrence;
mod conditions;
mod crash;
mod cursors;
mod data;
mod errors;
mod formats;
mod iterators;
mod race;
mod retries;
mod seed;
mod sequence;
mod subprocesses;
mod tags;
mod timers;

use serde_json::Value;
use switchyard_shared::config::ApiConfig;

use crate::support::TestApp;
use crate::support::participants::{Behaviour, Callback, Participants};

/// The retry policy of `active` callbacks in these tests (`fast`: 50 ms ×3).
pub const FAST: &str = "fast";

/// The app with the test config and fast workflow callback retries.
pub async fn app() -> TestApp {
    app_with(|_| {}).await
}

/// [`app`], then `f` on the config.
pub async fn app_with(f: impl FnOnce(&mut ApiConfig)) -> TestApp {
    TestApp::builder()
        .with_config(|c| {
            c.families.workflows.workflow_callback_policy = FAST.into();
            f(c);
        })
        .spawn()
        .await
}

/// An app and its participants (one receiver, the catch-all `callback`).
pub struct Flow {
    pub app: TestApp,
    pub p: Participants,
}

impl Flow {
    /// Participants that proceed every workitem unchanged.
    pub async fn new() -> Self {
        Self::with(Behaviour::proceed()).await
    }

    /// Participants that hold every workitem unless told otherwise.
    pub async fn holding() -> Self {
        Self::with(Behaviour::hold()).await
    }

    /// Participants answering as `default` unless told otherwise.
    pub async fn with(default: Behaviour) -> Self {
        let app = app().await;
        let p = Participants::with_default(&app, default).await;
        Flow { app, p }
    }

    /// Launch `def` (text or JSON tree) with `fields`, every participant
    /// called back at the receiver; the workflow id.
    pub async fn launch(&self, def: impl Into<Value>, fields: Value) -> String {
        self.app.workflows().launch(def, &self.p.url, fields).await
    }

    /// Step everything until quiet.
    pub async fn run(&self) {
        self.p.run(&self.app).await;
    }

    /// Step what is due now (no waiting for timers), and the proceeds it causes.
    pub async fn run_without_timers(&self) {
        for _ in 0..100 {
            let before = self.p.proceeds().len();
            self.app.drain().await;
            self.p.idle().await;
            if self.p.proceeds().len() == before {
                return;
            }
        }
        panic!("still proceeding after 100 rounds");
    }

    /// Launch, run until quiet; the id and the workflow as GET shows it.
    pub async fn go(&self, def: impl Into<Value>, fields: Value) -> (String, Value) {
        let id = self.launch(def, fields).await;
        self.run().await;
        let wf = self.app.workflows().get(&id).await;
        (id, wf)
    }

    /// The workflow as GET shows it.
    pub async fn get(&self, id: &str) -> Value {
        self.app.workflows().get(id).await
    }

    /// Proceed a callback's workitem with `fields`, asserting 201.
    pub async fn proceed(&self, cb: &Callback, fields: Value) {
        let (s, b) = self
            .app
            .workflows()
            .proceed_at(&cb.proceed_url, Some(fields))
            .await;
        assert_eq!(s, reqwest::StatusCode::CREATED, "{} {b}", cb.participant);
    }

    /// The held dispatch of participant `name` (the last one).
    pub fn held(&self, name: &str) -> Callback {
        self.p
            .held()
            .into_iter()
            .rfind(|c| c.participant == name)
            .unwrap_or_else(|| panic!("{name} holds nothing; got {:?}", self.p.trace()))
    }

    /// The participant names dispatched for workflow `id`, in arrival order.
    pub fn names_in(&self, id: &str) -> Vec<String> {
        self.p
            .active()
            .into_iter()
            .filter(|c| c.workflow_id == id)
            .map(|c| c.participant)
            .collect()
    }
}

/// The workitem fields of a callback without `params`.
pub fn plain(cb: &Callback) -> Value {
    let mut f = cb.fields.clone();
    if let Some(m) = f.as_object_mut() {
        m.remove("params");
    }
    f
}

/// Assert that every `cancel`/`timeout`/`error` callback is about a
/// workitem whose `active` callback arrived before it: a participant is
/// never told to stop work it was never given (both callbacks, as Ruote
/// sends them, or neither).
#[track_caller]
pub fn assert_cancels_follow_dispatches(p: &Participants) {
    let got = p.accepted();
    for c in got.iter().filter(|c| c.status != "active") {
        assert!(
            got.iter()
                .any(|a| a.status == "active" && a.workitem_id == c.workitem_id && a.seq < c.seq),
            "{} callback for {} ({}) without its active callback: {:?}",
            c.status,
            c.participant,
            c.workitem_id,
            p.trace()
        );
    }
}

/// Assert the workflow completed with exactly `fields`.
#[track_caller]
pub fn assert_completed(wf: &Value, fields: Value) {
    assert_eq!(wf["status"], "completed", "{wf:#}");
    assert_eq!(wf["fields"], fields, "{wf:#}");
    assert_eq!(wf["workitems"], serde_json::json!([]), "{wf:#}");
}
