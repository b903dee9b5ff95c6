//! Workflow participants on loopback: a real HTTP receiver that records
//! every participant callback (`{workflow_id, workitem_id, participant,
//! status, fields, proceed_url}`) and, per participant name, answers and
//! proceeds as scripted — proceed with field changes, hold, fail the first
//! N attempts of a delivery, wait before proceeding.
//!
//! A proceed is sent after the callback was answered (as the seed asks of
//! applications: queue the work, answer, proceed later), by POSTing
//! `{"fields": …}` to the callback's `proceed_url`. [`Participants::run`]
//! steps the app (`settle`) and waits for those proceeds in turn until
//! neither has anything left, so a test driven by it stays deterministic.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::TestApp;

/// One participant callback as it arrived.
#[derive(Clone, Debug)]
pub struct Callback {
    /// Arrival order among every request of this receiver (0-based).
    pub seq: usize,
    pub at: Instant,
    /// The request path (`/cb` or `/cb/<name>`).
    pub path: String,
    pub headers: HashMap<String, String>,
    /// The body as sent.
    pub raw: String,
    /// The body parsed (`Value::Null` if it is not JSON).
    pub body: Value,
    pub participant: String,
    pub status: String,
    pub workflow_id: String,
    pub workitem_id: String,
    pub proceed_url: String,
    pub fields: Value,
    /// 1-based attempt of this delivery (requests with the same webhook-id).
    pub attempt: usize,
    /// The status code the receiver answered.
    pub answered: u16,
}

impl Callback {
    /// The Standard Webhooks id: the delivery id, stable across retries.
    pub fn webhook_id(&self) -> &str {
        self.headers
            .get("webhook-id")
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// `fields.params`: the participant expression's attributes.
    pub fn params(&self) -> &Value {
        &self.fields["params"]
    }

    /// The expid part of the workitem id (`0_1` of `0_1!subid!wfid`).
    pub fn expid(&self) -> &str {
        self.workitem_id.split('!').next().unwrap_or_default()
    }

    /// Whether the callback was answered with a 2xx.
    pub fn accepted(&self) -> bool {
        (200..300).contains(&self.answered)
    }
}

/// Decides a proceed: given the callback and the how-many-th `active`
/// callback of this participant it is (1-based, accepted ones only), the
/// fields to proceed with (`Some(json!({}))` = unchanged), or `None` to hold
/// the workitem.
pub type Decide = Arc<dyn Fn(&Callback, usize) -> Option<Value> + Send + Sync>;

/// How one participant answers and proceeds.
#[derive(Clone)]
pub struct Behaviour {
    /// Answer 500 to the first `fail` attempts of each `active` delivery.
    fail: usize,
    /// Wait this long before answering a callback (it is recorded on arrival).
    answer_delay: Duration,
    /// Wait this long between answering and proceeding.
    proceed_delay: Duration,
    decide: Decide,
}

impl Behaviour {
    /// Proceed every workitem unchanged.
    pub fn proceed() -> Self {
        Self::reply(|_, _| Some(json!({})))
    }

    /// Never proceed (the test proceeds, cancels or times out).
    pub fn hold() -> Self {
        Self::reply(|_, _| None)
    }

    /// Proceed with these fields (merged shallowly by the engine).
    pub fn set(fields: Value) -> Self {
        Self::reply(move |_, _| Some(fields.clone()))
    }

    /// Proceed as `decide` says (see [`Decide`]).
    pub fn reply(
        decide: impl Fn(&Callback, usize) -> Option<Value> + Send + Sync + 'static,
    ) -> Self {
        Behaviour {
            fail: 0,
            answer_delay: Duration::ZERO,
            proceed_delay: Duration::ZERO,
            decide: Arc::new(decide),
        }
    }

    /// Answer 500 to the first `n` attempts of each `active` callback.
    pub fn failing(mut self, n: usize) -> Self {
        self.fail = n;
        self
    }

    /// Answer every callback `d` after it arrived (a slow receiver).
    pub fn answering_after(mut self, d: Duration) -> Self {
        self.answer_delay = d;
        self
    }

    /// Proceed `d` after answering.
    pub fn proceeding_after(mut self, d: Duration) -> Self {
        self.proceed_delay = d;
        self
    }
}

/// A proceed the receiver sent, with the API's answer.
#[derive(Clone, Debug)]
pub struct Proceeded {
    pub workitem_id: String,
    pub status: u16,
    pub answer: String,
}

#[derive(Default)]
struct Book {
    got: Vec<Callback>,
    proceeds: Vec<Proceeded>,
    behaviours: HashMap<String, Behaviour>,
    /// Accepted `active` callbacks per participant.
    visits: HashMap<String, usize>,
    /// Attempts per webhook id.
    attempts: HashMap<String, usize>,
    /// Arrival numbers of the dispatches the receiver did not proceed.
    held: Vec<usize>,
}

#[derive(Clone)]
struct Shared {
    book: Arc<Mutex<Book>>,
    default: Arc<Mutex<Behaviour>>,
    /// Proceeds started and not yet answered.
    in_flight: Arc<AtomicUsize>,
    /// Proceeds started in all.
    started: Arc<AtomicUsize>,
    idle: Arc<Notify>,
    client: reqwest::Client,
    token: Option<String>,
}

/// The participants' receiver. Callback URLs: [`url`](Self::url) for a
/// catch-all `callback`, [`url_for`](Self::url_for) per participant.
pub struct Participants {
    /// The catch-all callback URL.
    pub url: String,
    shared: Shared,
    stop: CancellationToken,
}

impl Drop for Participants {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn hook(State(s): State<Shared>, uri: Uri, headers: HeaderMap, raw: Bytes) -> Response {
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let body: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
    let text = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let participant = text("participant");
    let status = text("status");
    let webhook_id = headers.get("webhook-id").cloned().unwrap_or_default();
    let behaviour = {
        let book = s.book.lock().unwrap();
        book.behaviours
            .get(&participant)
            .cloned()
            .unwrap_or_else(|| s.default.lock().unwrap().clone())
    };
    let (cb, visit) = {
        let mut book = s.book.lock().unwrap();
        let attempt = {
            let n = book.attempts.entry(webhook_id).or_default();
            *n += 1;
            *n
        };
        let fail = status == "active" && attempt <= behaviour.fail;
        let answered = if fail { 500 } else { 204 };
        let visit = if status == "active" && !fail {
            let v = book.visits.entry(participant.clone()).or_default();
            *v += 1;
            Some(*v)
        } else {
            None
        };
        let cb = Callback {
            seq: book.got.len(),
            at: Instant::now(),
            path: uri.path().to_owned(),
            headers,
            fields: body["fields"].clone(),
            workflow_id: text("workflow_id"),
            workitem_id: text("workitem_id"),
            proceed_url: text("proceed_url"),
            participant,
            status,
            raw,
            body,
            attempt,
            answered,
        };
        book.got.push(cb.clone());
        (cb, visit)
    };
    let decided = visit.map(|v| (behaviour.decide)(&cb, v));
    if let Some(None) = decided {
        s.book.lock().unwrap().held.push(cb.seq);
    }
    if let Some(Some(fields)) = decided {
        s.in_flight.fetch_add(1, Ordering::SeqCst);
        s.started.fetch_add(1, Ordering::SeqCst);
        let s = s.clone();
        let delay = behaviour.answer_delay + behaviour.proceed_delay;
        tokio::spawn(async move {
            // Answer first: the proceed goes out after the response.
            tokio::time::sleep(delay.max(Duration::from_millis(1))).await;
            let mut req = s
                .client
                .post(&cb.proceed_url)
                .header("content-type", "application/json")
                .body(json!({ "fields": fields }).to_string());
            if let Some(t) = &s.token {
                req = req.bearer_auth(t);
            }
            let (status, answer) = match req.send().await {
                Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                Err(e) => (0, e.to_string()),
            };
            s.book.lock().unwrap().proceeds.push(Proceeded {
                workitem_id: cb.workitem_id.clone(),
                status,
                answer,
            });
            s.in_flight.fetch_sub(1, Ordering::SeqCst);
            s.idle.notify_waiters();
        });
    }
    if !behaviour.answer_delay.is_zero() {
        tokio::time::sleep(behaviour.answer_delay).await;
    }
    let code = StatusCode::from_u16(cb.answered).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, "participant says hi").into_response()
}

impl Participants {
    /// A receiver whose participants proceed every workitem unchanged,
    /// proceeding with `app`'s bearer token (if any).
    pub async fn start(app: &TestApp) -> Self {
        Self::with_default(app, Behaviour::proceed()).await
    }

    /// A receiver answering every participant without a behaviour of its own as `default`.
    pub async fn with_default(app: &TestApp, default: Behaviour) -> Self {
        let shared = Shared {
            book: Arc::default(),
            default: Arc::new(Mutex::new(default)),
            in_flight: Arc::default(),
            started: Arc::default(),
            idle: Arc::default(),
            client: reqwest::Client::new(),
            token: app.token.clone(),
        };
        let router = axum::Router::new()
            .fallback(hook)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let s2 = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { s2.cancelled().await })
                .await
                .ok();
        });
        Participants {
            url: format!("{base}/cb"),
            shared,
            stop,
        }
    }

    /// The callback URL of one participant (for `callbacks[name]`).
    pub fn url_for(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    /// `{name: url_for(name)}` for each name, for a `callbacks` parameter.
    pub fn callbacks(&self, names: &[&str]) -> Value {
        Value::Object(
            names
                .iter()
                .map(|n| ((*n).to_owned(), Value::String(self.url_for(n))))
                .collect::<Map<_, _>>(),
        )
    }

    /// How participant `name` answers from now on.
    pub fn on(&self, name: &str, behaviour: Behaviour) -> &Self {
        self.shared
            .book
            .lock()
            .unwrap()
            .behaviours
            .insert(name.to_owned(), behaviour);
        self
    }

    /// How participants without a behaviour of their own answer from now on.
    pub fn otherwise(&self, behaviour: Behaviour) -> &Self {
        *self.shared.default.lock().unwrap() = behaviour;
        self
    }

    /// Wait until every proceed started so far has been answered.
    pub async fn idle(&self) {
        loop {
            let notified = self.shared.idle.notified();
            if self.shared.in_flight.load(Ordering::SeqCst) == 0 {
                return;
            }
            tokio::time::timeout(Duration::from_millis(50), notified)
                .await
                .ok();
        }
    }

    /// Drive `app` until nothing is left to do: settle (work, due timers
    /// within the settle horizon), wait for the proceeds that started, and
    /// again while a round started new proceeds. Bounded: panics after 1,000 rounds.
    pub async fn run(&self, app: &TestApp) {
        for _ in 0..1000 {
            let before = self.shared.started.load(Ordering::SeqCst);
            app.settle().await;
            self.idle().await;
            if self.shared.started.load(Ordering::SeqCst) == before {
                return;
            }
        }
        panic!("the workflow kept proceeding for 1,000 rounds");
    }

    /// Every callback request, in arrival order (retries included).
    pub fn all(&self) -> Vec<Callback> {
        self.shared.book.lock().unwrap().got.clone()
    }

    /// Callbacks answered 2xx, in arrival order: each delivery once.
    pub fn accepted(&self) -> Vec<Callback> {
        self.all().into_iter().filter(Callback::accepted).collect()
    }

    /// Accepted callbacks with `status` (`active`, `cancel`, `timeout`, `error`).
    pub fn with_status(&self, status: &str) -> Vec<Callback> {
        self.accepted()
            .into_iter()
            .filter(|c| c.status == status)
            .collect()
    }

    /// Accepted `active` callbacks: the dispatches, in arrival order.
    pub fn active(&self) -> Vec<Callback> {
        self.with_status("active")
    }

    /// The participant names of the dispatches, in arrival order.
    pub fn names(&self) -> Vec<String> {
        self.active().into_iter().map(|c| c.participant).collect()
    }

    /// `participant:status` of every accepted callback, in arrival order.
    pub fn trace(&self) -> Vec<String> {
        self.accepted()
            .into_iter()
            .map(|c| format!("{}:{}", c.participant, c.status))
            .collect()
    }

    /// The dispatches of participant `name`.
    pub fn of(&self, name: &str) -> Vec<Callback> {
        self.active()
            .into_iter()
            .filter(|c| c.participant == name)
            .collect()
    }

    /// The last dispatch of participant `name`.
    pub fn last(&self, name: &str) -> Callback {
        self.of(name)
            .pop()
            .unwrap_or_else(|| panic!("{name} was never called; got {:?}", self.trace()))
    }

    /// Dispatches this receiver held (did not proceed), in arrival order.
    pub fn held(&self) -> Vec<Callback> {
        let book = self.shared.book.lock().unwrap();
        book.held.iter().map(|&i| book.got[i].clone()).collect()
    }

    /// The proceeds this receiver sent, with the API's answers.
    pub fn proceeds(&self) -> Vec<Proceeded> {
        self.shared.book.lock().unwrap().proceeds.clone()
    }
}
