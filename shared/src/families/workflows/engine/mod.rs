//! The process engine: Ruote's execution model over a serializable
//! [`Process`] (research/workflows.md §2–§3).
//!
//! The engine is pure: [`advance`] takes the stored process and a batch of
//! [`Input`]s (a launch, a proceed, a timer, a failed callback, a cancel,
//! a replay), runs Ruote's message loop until nothing is left to do, and
//! returns an [`Outcome`]: the callbacks to send, the workitems opened and
//! closed, the timers to set and clear, the history events and the new
//! status. The store commits the new process and the outcome in one Lua
//! call fenced by the process version, so a step computed twice (two
//! workers, a retried stream entry) is applied once.
//!
//! Ids: a workitem id is `expid!subid!wfid` as in Ruote; subids, timer ids
//! and delivery ids come from an [`Ids`] source so the store can name
//! delivery records on the workflow's shard and tests can be deterministic.

mod run;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::tree::Node;

pub use run::advance;

/// Most messages one [`advance`] may process (a runaway loop is an error
/// of the process, not a hang of the worker).
pub const MAX_MESSAGES: usize = 20_000;

/// The status of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Launched, not yet applied by a worker.
    #[default]
    Launched,
    Running,
    Completed,
    Cancelled,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Launched => "running",
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
            Status::Error => "error",
        }
    }

    /// Whether nothing more can happen.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Cancelled)
    }
}

/// What happens to a workflow; the store turns API calls, timers and
/// callback outcomes into these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Input {
    /// Apply the root (once, right after the launch was stored).
    Launch,
    /// A participant's workitem came back (`fields` merged shallowly over
    /// the dispatched fields; `None` = unchanged).
    Proceed {
        workitem_id: String,
        fields: Option<Map<String, Value>>,
    },
    /// `POST …/cancel`: cancel every root of the process.
    Cancel,
    /// A durable timer fired (timeouts, `wait`, handler schedules).
    Timer { timer_id: String },
    /// An `active` callback finally failed (retries exhausted).
    DispatchFailed {
        workitem_id: String,
        delivery_id: String,
        reason: String,
    },
    /// `POST …/replay`: retry the failed expressions of a process in error.
    Replay,
}

/// The `status` of a participant callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackStatus {
    Active,
    Cancel,
    Timeout,
    Error,
}

impl CallbackStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackStatus::Active => "active",
            CallbackStatus::Cancel => "cancel",
            CallbackStatus::Timeout => "timeout",
            CallbackStatus::Error => "error",
        }
    }
}

/// A participant callback to send through the outbox. `active` ones are
/// retried with the workflow callback policy and owned by the workitem
/// (cancelled when it is proceeded or cancelled); the others are sent once.
#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    pub delivery_id: String,
    pub url: String,
    pub workitem_id: String,
    pub participant: String,
    pub status: CallbackStatus,
    /// The workitem fields as the receiver sees them.
    pub fields: Map<String, Value>,
}

/// A workitem that can be proceeded (`GET` lists them; the proceed script
/// checks them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workitem {
    pub workitem_id: String,
    pub participant: String,
    pub fields: Map<String, Value>,
    /// The `active` callback's delivery (a retry of an older dispatch of
    /// the same workitem id is not this one).
    pub delivery_id: String,
    pub dispatched_at: u64,
}

/// One history entry (`GET …/history`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: u64,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workitem_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A process error (status `error` while one is unhandled).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessError {
    pub at: u64,
    /// The expression that failed (`expid`) and its name.
    pub expid: String,
    pub expression: String,
    pub message: String,
    /// The failed expression's key, for replay.
    #[serde(default)]
    pub key: String,
    /// How a replay retries it.
    pub retry: run::Retry,
}

/// What one [`advance`] did, for the store to commit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub callbacks: Vec<Callback>,
    pub opened: Vec<Workitem>,
    /// Workitem ids no longer proceedable.
    pub closed: Vec<String>,
    /// Timer id → due (ms since the epoch).
    pub timers_set: Vec<(String, u64)>,
    pub timers_cleared: Vec<String>,
    pub history: Vec<Event>,
    /// Inputs that named something that no longer exists (a stale timer,
    /// a callback failure of an older dispatch): ignored, counted.
    pub ignored: usize,
}

/// Where new ids come from.
pub trait Ids {
    /// A new subid (32 hex characters in production).
    fn subid(&mut self) -> String;
    /// A new delivery id for a callback (on the workflow's shard).
    fn delivery_id(&mut self) -> String;
}

/// Counting ids, for tests.
#[derive(Debug, Default, Clone)]
pub struct CountingIds {
    pub n: u64,
}

impl Ids for CountingIds {
    fn subid(&mut self) -> String {
        self.n += 1;
        format!("{:032x}", self.n)
    }
    fn delivery_id(&mut self) -> String {
        self.n += 1;
        format!("d0-{:032x}", self.n)
    }
}

/// The engine's configuration (fixed per deployment).
#[derive(Debug, Clone)]
pub struct Config {
    /// Most messages one [`advance`] processes before the process is
    /// stopped as a runaway loop ([`MAX_MESSAGES`] by default).
    pub max_messages: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_messages: MAX_MESSAGES,
        }
    }
}

/// The whole stored state of one workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    pub wfid: String,
    pub status: Status,
    #[serde(with = "node_json")]
    pub definition: Node,
    /// Where callbacks go: a URL string (every participant) or an object
    /// participant → URL. Never part of the fields.
    pub callbacks: Value,
    /// The launch fields; the final fields once the root replied.
    pub fields: Map<String, Value>,
    pub launched_at: u64,
    #[serde(default)]
    pub ended_at: Option<u64>,
    /// Live expressions by key (`expid!subid`).
    #[serde(default)]
    pub exprs: BTreeMap<String, run::Expr>,
    /// Unhandled errors (status `error` while any).
    #[serde(default)]
    pub errors: Vec<ProcessError>,
    /// Live timers: id → (expression key, what).
    #[serde(default)]
    pub timers: BTreeMap<String, run::TimerRef>,
    #[serde(default)]
    pub next_timer: u64,
    /// Whether a cancel of the whole process was asked for.
    #[serde(default)]
    pub cancelling: bool,
    /// The launched root's key.
    #[serde(default)]
    pub root: Option<String>,
    /// Messages left by an advance that hit its step bound (a runaway
    /// loop); a replay goes on with them.
    #[serde(default)]
    pub pending: Vec<run::Msg>,
}

impl Process {
    /// A launched process, not yet applied ([`Input::Launch`] applies it).
    pub fn new(
        wfid: &str,
        definition: Node,
        callbacks: Value,
        fields: Map<String, Value>,
        now: u64,
    ) -> Self {
        Process {
            wfid: wfid.to_owned(),
            status: Status::Launched,
            definition,
            callbacks,
            fields,
            launched_at: now,
            ended_at: None,
            exprs: BTreeMap::new(),
            errors: Vec::new(),
            timers: BTreeMap::new(),
            next_timer: 0,
            cancelling: false,
            root: None,
            pending: Vec::new(),
        }
    }

    /// The process's root variables (the launched root's scope).
    pub fn variables(&self) -> Map<String, Value> {
        self.root
            .as_ref()
            .and_then(|r| self.exprs.get(r))
            .and_then(|e| e.vars.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, v)| !run::is_internal_var(v))
            .collect()
    }

    /// The expids of the live expressions that are waiting on the outside
    /// (participants, waits) — the "current position" in the tree.
    pub fn positions(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .exprs
            .values()
            .filter(|e| e.children.is_empty())
            .map(|e| e.fei.expid.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// A node stored as its JSON tree.
mod node_json {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    use crate::families::workflows::tree::Node;

    pub fn serialize<S: Serializer>(n: &Node, s: S) -> Result<S::Ok, S::Error> {
        n.to_json().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        let v = Value::deserialize(d)?;
        Node::from_json(&v).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// A tree annotated with the expids of the current positions, for
/// `GET …/tree`: `[name, attrs, children, expid, active]`-style objects.
pub fn annotated_tree(p: &Process) -> Value {
    fn walk(n: &Node, expid: &str, live: &std::collections::BTreeSet<String>) -> Value {
        let children: Vec<Value> = n
            .children
            .iter()
            .enumerate()
            .map(|(i, c)| walk(c, &format!("{expid}_{i}"), live))
            .collect();
        serde_json::json!({
            "expid": expid,
            "name": n.name,
            "attributes": Value::Object(n.attrs_json()),
            "active": live.contains(expid),
            "children": children,
        })
    }
    let live: std::collections::BTreeSet<String> = p.positions().into_iter().collect();
    walk(&p.definition, "0", &live)
}
