//! The workflows store: every state change is one script call. The API's
//! calls (launch, proceed, cancel, replay) only record an input in the
//! workflow's inbox and queue a `workflows.step`; the worker's [`WorkflowStore::step`]
//! runs the engine over the inbox and commits the result with one call of
//! `lua/workflows/commit.lua`, fenced by the workflow's version.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::config::WorkflowOpts;
use super::engine::{self, CallbackStatus, Event, Input, Outcome, Process, Workitem};
use super::ids::{ShardIds, WorkitemId, new_wfid, valid_id};
use super::keys::{STATUSES, WorkflowKeys};
use super::launch::Launch;
use super::scripts;
use super::views::{
    CallbackBody, EventView, HistoryView, TreeView, WorkflowPage, WorkflowSummary, WorkflowView,
    proceed_url,
};
use crate::platform::errors::StoreError;
use crate::platform::ids::destination_of;
use crate::platform::keys::Keys;
use crate::platform::outbox::{Owner, shard_of_id};
use crate::platform::redis::Redis as RedisPool;
use crate::platform::reply::{self, Refused};
use crate::platform::time::{iso_ms, ms, now_ms, utc_now};
use crate::platform::trace;

/// The owner prefix of `active` callbacks: `workflow:<workitem id>#<delivery id>`.
pub const OWNER: &str = "workflow";
/// Retry policy of `cancel`, `timeout` and `error` callbacks (sent once).
pub const ONCE_POLICY: &str = "once";
/// Inbox entries one step applies at most (the rest make another step).
pub const STEP_BATCH: usize = 64;
/// Times a step is recomputed after losing the version race, before the
/// stream entry is left to be retried.
pub const STEP_ATTEMPTS: usize = 8;
/// Most index entries one `GET /v1/workflows` examines (live or stale).
pub const LIST_BUDGET: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// No such workflow (unknown, malformed, expired; for cancel also
    /// finished or already cancelling, as Scriptoria answers).
    #[error("workflow_id not found")]
    NotFound,
    /// The workitem is not proceedable (never was, proceeded, cancelled).
    #[error("workitem_id not found")]
    WorkitemNotFound,
    /// The workitem belongs to another workflow than the path's.
    #[error("workflow_id is mismatched")]
    Mismatched,
    /// Replay of a workflow that is not in `error`.
    #[error("workflow is not in error (status: {0})")]
    NotInError(String),
    /// A step kept losing the version race.
    #[error("the workflow kept changing under the step; retry")]
    Contended,
    /// The stored state cannot be read by this version.
    #[error("workflow {wfid}: stored state unreadable: {reason}")]
    Corrupt { wfid: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<redis::RedisError> for WorkflowError {
    fn from(e: redis::RedisError) -> Self {
        Self::Store(e.into())
    }
}

impl From<Refused> for WorkflowError {
    fn from(r: Refused) -> Self {
        match r.code.as_str() {
            "workflow_not_found" => Self::NotFound,
            "workitem_not_found" => Self::WorkitemNotFound,
            "workflow_mismatched" => Self::Mismatched,
            "not_in_error" => Self::NotInError(r.field("status").unwrap_or("?").to_owned()),
            other => Self::Store(StoreError::Reply(other.to_owned())),
        }
    }
}

/// What a launch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    pub id: String,
    /// The idempotency key named a workflow launched before; nothing was stored.
    pub existing: bool,
}

/// What one [`WorkflowStore::step`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Inputs applied (inbox entries and the extra one).
    pub inputs: usize,
    /// Callbacks created.
    pub callbacks: usize,
    /// The status after the step (`None`: nothing to do, nothing written).
    pub status: Option<String>,
    /// Times the step was recomputed after a version conflict.
    pub conflicts: usize,
}

#[derive(Debug, Deserialize)]
struct OkReply {
    #[allow(dead_code)]
    ok: bool,
}

#[derive(Debug, Deserialize)]
struct LaunchReply {
    id: String,
    existing: bool,
}

#[derive(Debug, Deserialize)]
struct CommitReply {
    status: String,
}

/// The workflows store.
#[derive(Clone)]
pub struct WorkflowStore {
    pool: RedisPool,
    keys: Keys,
    retention: Duration,
    history_len: u32,
    idempotency_ttl: Duration,
    callback_policy: String,
    public_url: String,
    engine: engine::Config,
}

fn decode<T: serde::de::DeserializeOwned>(
    wfid: &str,
    what: &str,
    raw: &str,
) -> Result<T, WorkflowError> {
    serde_json::from_str(raw).map_err(|e| WorkflowError::Corrupt {
        wfid: wfid.to_owned(),
        reason: format!("{what}: {e}"),
    })
}

fn encode<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Encode(e.to_string()))
}

impl WorkflowStore {
    /// `public_url` (`--public-url`) is the base of the proceed URLs of the
    /// workflows this store launches; it is kept with each workflow, so
    /// steps and reads use the one it was launched with.
    pub fn new(pool: RedisPool, keys: Keys, opts: &WorkflowOpts, public_url: &str) -> Self {
        Self {
            pool,
            keys,
            retention: opts.workflow_retention,
            history_len: opts.workflow_history_len,
            idempotency_ttl: opts.workflow_idempotency_ttl,
            callback_policy: opts.workflow_callback_policy.clone(),
            public_url: public_url.trim_end_matches('/').to_owned(),
            engine: engine::Config::default(),
        }
    }

    pub fn keys(&self, wfid: &str) -> WorkflowKeys {
        self.keys.workflow(wfid)
    }

    async fn reply<T: serde::de::DeserializeOwned>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
    ) -> Result<T, WorkflowError> {
        let raw: String = inv.invoke_async(&mut self.pool.conn()).await?;
        Ok(reply::parse::<T>(&raw)??)
    }

    /// Store a checked launch and queue its first step. With an
    /// idempotency key, the id is drawn on the key's shard and the key is
    /// written in the same call; a key seen before answers the workflow it
    /// named (`existing`) and stores nothing.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn launch(
        &self,
        launch: Launch,
        idempotency_key: Option<&str>,
    ) -> Result<Launched, WorkflowError> {
        let at = utc_now();
        let launched = u64::try_from(at.timestamp_millis()).unwrap_or(0);
        let target = idempotency_key.map(|k| self.keys.workflow_idempotency_shard(k));
        let callbacks = launch.callbacks.to_json();
        for _ in 0..5 {
            let wfid = self.draw_id(at, target);
            let process = Process::new(
                &wfid,
                launch.definition.clone(),
                callbacks.clone(),
                launch.fields.clone(),
                launched,
            );
            let k = self.keys(&wfid);
            let mut inv = scripts::WF_LAUNCH.prepare_invoke();
            inv.key(&k.record)
                .key(&k.inbox)
                .key(&k.stream)
                .key(&k.index)
                .key(&k.by_status[0]);
            if let Some(key) = idempotency_key {
                inv.key(self.keys.workflow_idempotency(key));
            }
            inv.arg(&wfid)
                .arg(encode(&process)?)
                .arg(launched)
                .arg(ms(self.idempotency_ttl))
                .arg(&self.public_url)
                .arg(trace::current_text());
            match self.reply::<LaunchReply>(&inv).await {
                Ok(r) => {
                    if !r.existing {
                        metrics::counter!("switchyard_workflows_launched_total").increment(1);
                    }
                    return Ok(Launched {
                        id: r.id,
                        existing: r.existing,
                    });
                }
                // The id is taken (one chance in 36^16 per minute): draw another.
                Err(WorkflowError::Store(StoreError::Reply(code))) if code == "exists" => {}
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Reply("no free workflow id after 5 draws".into()).into())
    }

    /// A new workflow id, on `shard` when given.
    fn draw_id(&self, at: chrono::DateTime<chrono::Utc>, shard: Option<u16>) -> String {
        loop {
            let id = new_wfid(at);
            if shard.is_none_or(|s| self.keys.workflow(&id).shard == s) {
                return id;
            }
        }
    }

    /// Proceed a workitem with `fields` merged shallowly over its own
    /// (`None`: unchanged). `wfid` is the path's workflow id; the workitem is
    /// looked up under the workflow its own id names.
    #[tracing::instrument(skip_all, fields(workitem_id = %workitem_id), err(level = "debug"))]
    pub async fn proceed(
        &self,
        wfid: &str,
        workitem_id: &str,
        fields: Option<Map<String, Value>>,
    ) -> Result<(), WorkflowError> {
        let wi = WorkitemId::parse(workitem_id).ok_or(WorkflowError::WorkitemNotFound)?;
        let k = self.keys(wi.wfid);
        let input = Input::Proceed {
            workitem_id: workitem_id.to_owned(),
            fields,
        };
        let mut inv = scripts::WF_PROCEED.prepare_invoke();
        inv.key(&k.record)
            .key(&k.inbox)
            .key(&k.workitems)
            .key(&k.stream)
            .arg(wfid)
            .arg(workitem_id)
            .arg(wi.wfid)
            .arg(encode(&input)?)
            .arg(trace::current_text());
        self.reply::<OkReply>(&inv).await.map(drop)
    }

    /// Ask for the cancellation of a workflow (`NotFound` when unknown,
    /// finished or already cancelling).
    #[tracing::instrument(skip_all, fields(workflow_id = %wfid), err(level = "debug"))]
    pub async fn cancel(&self, wfid: &str) -> Result<(), WorkflowError> {
        self.signal(&scripts::WF_CANCEL, wfid).await
    }

    /// Retry the failed expressions of a workflow in `error`.
    #[tracing::instrument(skip_all, fields(workflow_id = %wfid), err(level = "debug"))]
    pub async fn replay(&self, wfid: &str) -> Result<(), WorkflowError> {
        self.signal(&scripts::WF_REPLAY, wfid).await
    }

    async fn signal(&self, script: &redis::Script, wfid: &str) -> Result<(), WorkflowError> {
        if !valid_id(wfid) {
            return Err(WorkflowError::NotFound);
        }
        let k = self.keys(wfid);
        let mut inv = script.prepare_invoke();
        inv.key(&k.record)
            .key(&k.inbox)
            .key(&k.stream)
            .arg(wfid)
            .arg(trace::current_text());
        self.reply::<OkReply>(&inv).await.map(drop)
    }

    /// The stored process of a workflow.
    async fn load(&self, wfid: &str) -> Result<Process, WorkflowError> {
        if !valid_id(wfid) {
            return Err(WorkflowError::NotFound);
        }
        let mut conn = self.pool.conn();
        let raw: Option<String> = redis::cmd("HGET")
            .arg(self.keys(wfid).record)
            .arg("state")
            .query_async(&mut conn)
            .await?;
        decode(wfid, "state", &raw.ok_or(WorkflowError::NotFound)?)
    }

    /// Whether the workflow exists.
    pub async fn exists(&self, wfid: &str) -> Result<bool, WorkflowError> {
        if !valid_id(wfid) {
            return Ok(false);
        }
        let mut conn = self.pool.conn();
        let n: i64 = redis::cmd("EXISTS")
            .arg(self.keys(wfid).record)
            .query_async(&mut conn)
            .await?;
        Ok(n == 1)
    }

    /// The workflow: status, fields, proceedable workitems, variables, errors.
    #[tracing::instrument(skip_all, fields(workflow_id = %wfid), err(level = "debug"))]
    pub async fn get(&self, wfid: &str) -> Result<WorkflowView, WorkflowError> {
        if !valid_id(wfid) {
            return Err(WorkflowError::NotFound);
        }
        let k = self.keys(wfid);
        let mut conn = self.pool.conn();
        let ((state, public_url), items): (
            (Option<String>, Option<String>),
            HashMap<String, String>,
        ) = redis::pipe()
            .atomic()
            .hmget(&k.record, &["state", "public_url"])
            .hgetall(&k.workitems)
            .query_async(&mut conn)
            .await?;
        let p: Process = decode(wfid, "state", &state.ok_or(WorkflowError::NotFound)?)?;
        let workitems = items
            .values()
            .map(|raw| decode::<Workitem>(wfid, "workitem", raw))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(WorkflowView::new(
            &p,
            workitems,
            public_url.as_deref().unwrap_or_default(),
        ))
    }

    /// The history, oldest first.
    #[tracing::instrument(skip_all, fields(workflow_id = %wfid), err(level = "debug"))]
    pub async fn history(&self, wfid: &str) -> Result<HistoryView, WorkflowError> {
        if !valid_id(wfid) {
            return Err(WorkflowError::NotFound);
        }
        let k = self.keys(wfid);
        let mut conn = self.pool.conn();
        let (exists, raw): (bool, Vec<String>) = redis::pipe()
            .atomic()
            .exists(&k.record)
            .lrange(&k.history, 0, -1)
            .query_async(&mut conn)
            .await?;
        if !exists {
            return Err(WorkflowError::NotFound);
        }
        let events = raw
            .iter()
            .map(|r| decode::<Event>(wfid, "history event", r).map(EventView::from))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(HistoryView { events })
    }

    /// The definition as a tree, with the current positions.
    #[tracing::instrument(skip_all, fields(workflow_id = %wfid), err(level = "debug"))]
    pub async fn tree(&self, wfid: &str) -> Result<TreeView, WorkflowError> {
        let p = self.load(wfid).await?;
        Ok(TreeView {
            tree: engine::annotated_tree(&p),
            positions: p.positions(),
        })
    }

    /// Workflows newest first, of one status or all, `limit` per page from
    /// `cursor` (`ms:id`). Entries of expired workflows are skipped (and
    /// dropped from the index); at most [`LIST_BUDGET`] entries are examined
    /// per call, and the next cursor is returned whenever more may exist.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn list(
        &self,
        status: Option<&str>,
        cursor: Option<(i64, String)>,
        limit: usize,
    ) -> Result<WorkflowPage, WorkflowError> {
        let pos = status.map(|s| STATUSES.iter().position(|x| *x == s));
        let index = |shard: u16| match pos {
            Some(Some(i)) => self.keys.workflow_status_indexes(shard)[i].clone(),
            _ => self.keys.workflow_index(shard),
        };
        if pos == Some(None) {
            return Ok(WorkflowPage {
                workflows: vec![],
                next_cursor: None,
            });
        }
        let mut conn = self.pool.conn();
        let indexes = (0..self.keys.shards()).map(|s| (s, index(s)));
        let mut it = crate::paging::NewestFirst::new(indexes, limit + 1, cursor.as_ref());
        let mut page = crate::paging::Page::new(limit, LIST_BUDGET);
        let next = loop {
            let (launched, id, shard) = match page.next(&mut it, &mut conn).await? {
                Ok(entry) => entry,
                Err(next) => break next,
            };
            let k = self.keys(&id);
            let current: Option<String> = redis::cmd("HGET")
                .arg(&k.record)
                .arg("status")
                .query_async(&mut conn)
                .await?;
            match current {
                Some(s) if status.is_none_or(|want| want == s) => {
                    page.items.push(WorkflowSummary {
                        id,
                        status: s,
                        launched_at: iso_ms(launched),
                    });
                }
                // Moved to another status since the index was read.
                Some(_) => {}
                None => {
                    crate::platform::indexes::drop_gone(
                        &self.pool,
                        &index(shard),
                        &[(id.clone(), k.record.clone(), launched.to_string())],
                    )
                    .await?;
                }
            }
        };
        Ok(WorkflowPage {
            workflows: page.items,
            next_cursor: next,
        })
    }

    /// The listing indexes of a shard: every workflow, then one per status.
    pub fn shard_indexes(&self, shard: u16) -> Vec<String> {
        let mut v = vec![self.keys.workflow_index(shard)];
        v.extend(self.keys.workflow_status_indexes(shard));
        v
    }

    /// Whether the `active` callback `delivery_id` of `workitem_id` is still
    /// wanted: the workitem is proceedable and was dispatched by that
    /// delivery (not proceeded, cancelled or re-dispatched since).
    pub async fn callback_wanted(
        &self,
        workitem_id: &str,
        delivery_id: &str,
    ) -> Result<bool, WorkflowError> {
        let Some(wi) = WorkitemId::parse(workitem_id) else {
            return Ok(false);
        };
        let mut conn = self.pool.conn();
        let raw: Option<String> = redis::cmd("HGET")
            .arg(self.keys(wi.wfid).workitems)
            .arg(workitem_id)
            .query_async(&mut conn)
            .await?;
        Ok(raw
            .and_then(|r| serde_json::from_str::<Value>(&r).ok())
            .is_some_and(|v| v.get("delivery_id").and_then(Value::as_str) == Some(delivery_id)))
    }

    /// Apply the workflow's pending inputs (up to [`STEP_BATCH`] inbox
    /// entries, then `extra` — a fired timer, a failed callback) with the
    /// engine and commit the outcome in one call fenced by the version; on
    /// a conflict the step is recomputed from fresh state, at most
    /// [`STEP_ATTEMPTS`] times ([`WorkflowError::Contended`] then). A step
    /// with nothing to apply writes nothing.
    #[tracing::instrument(skip_all, fields(workflow_id = %wfid), err(level = "debug"))]
    pub async fn step(
        &self,
        wfid: &str,
        extra: Option<Input>,
    ) -> Result<StepReport, WorkflowError> {
        if !valid_id(wfid) {
            return Err(WorkflowError::NotFound);
        }
        let k = self.keys(wfid);
        for conflicts in 0..STEP_ATTEMPTS {
            let mut conn = self.pool.conn();
            type Read = (
                (Option<String>, Option<String>, Option<String>),
                Vec<String>,
            );
            let ((state, version, public_url), inbox): Read = redis::pipe()
                .atomic()
                .hmget(&k.record, &["state", "version", "public_url"])
                .lrange(&k.inbox, 0, STEP_BATCH as isize - 1)
                .query_async(&mut conn)
                .await?;
            let (Some(state), Some(version)) = (state, version) else {
                return Err(WorkflowError::NotFound);
            };
            if inbox.is_empty() && extra.is_none() {
                return Ok(StepReport {
                    conflicts,
                    ..StepReport::default()
                });
            }
            let mut process: Process = decode(wfid, "state", &state)?;
            let now = u64::try_from(now_ms()).unwrap_or(0);
            let mut unreadable = Vec::new();
            let mut inputs: Vec<Input> = Vec::with_capacity(inbox.len() + 1);
            for raw in &inbox {
                match serde_json::from_str::<Input>(raw) {
                    Ok(i) => inputs.push(i),
                    Err(e) => {
                        tracing::error!(workflow_id = %wfid, error = %e, "unreadable workflow input skipped");
                        unreadable.push(Event {
                            at: now,
                            kind: "error".into(),
                            participant: None,
                            workitem_id: None,
                            text: Some(format!("unreadable input skipped: {e}")),
                        });
                    }
                }
            }
            inputs.extend(extra.clone());
            let applied = inputs.len();
            let mut ids = ShardIds { shard: k.shard };
            let mut outcome = engine::advance(&mut process, inputs, now, &mut ids, &self.engine);
            outcome.history.splice(0..0, unreadable);
            let callbacks = outcome.callbacks.len();
            match self
                .commit(
                    &k,
                    Commit {
                        wfid,
                        version: &version,
                        consumed: inbox.len(),
                        public_url: public_url.as_deref().unwrap_or_default(),
                    },
                    &process,
                    &outcome,
                )
                .await
            {
                Ok(status) => {
                    metrics::counter!("switchyard_workflow_steps_total").increment(1);
                    return Ok(StepReport {
                        inputs: applied,
                        callbacks,
                        status: Some(status),
                        conflicts,
                    });
                }
                Err(Conflict::Lost) => {
                    metrics::counter!("switchyard_workflow_step_conflicts_total").increment(1);
                }
                Err(Conflict::Failed(e)) => return Err(e),
            }
        }
        Err(WorkflowError::Contended)
    }

    /// The commit call of one step.
    async fn commit(
        &self,
        k: &WorkflowKeys,
        c: Commit<'_>,
        p: &Process,
        o: &Outcome,
    ) -> Result<String, Conflict> {
        let Commit {
            wfid,
            version,
            consumed,
            public_url,
        } = c;
        let mut inv = scripts::WF_COMMIT.prepare_invoke();
        inv.key(&k.record)
            .key(&k.inbox)
            .key(&k.workitems)
            .key(&k.history)
            .key(&k.stream)
            .key(&k.timers)
            .key(&k.index);
        for idx in &k.by_status {
            inv.key(idx);
        }
        inv.key(&k.deliveries);
        let mut callbacks = Vec::with_capacity(o.callbacks.len());
        for cb in &o.callbacks {
            if shard_of_id(&cb.delivery_id, self.keys.shards()) != Some(k.shard) {
                return Err(Conflict::Failed(
                    StoreError::Encode(format!(
                        "callback delivery id {:?} is not on the workflow's shard {}",
                        cb.delivery_id, k.shard
                    ))
                    .into(),
                ));
            }
            inv.key(self.keys.delivery(k.shard, &cb.delivery_id).record);
            let body = CallbackBody {
                workflow_id: wfid,
                workitem_id: &cb.workitem_id,
                participant: &cb.participant,
                status: cb.status.as_str(),
                fields: &cb.fields,
                proceed_url: proceed_url(public_url, wfid, &cb.workitem_id),
            };
            let (policy, owner) = if cb.status == CallbackStatus::Active {
                (
                    self.callback_policy.as_str(),
                    Owner::format(OWNER, &format!("{}#{}", cb.workitem_id, cb.delivery_id)),
                )
            } else {
                (ONCE_POLICY, String::new())
            };
            callbacks.push(json!([
                cb.delivery_id,
                cb.url,
                encode(&body).map_err(|e| Conflict::Failed(e.into()))?,
                policy,
                destination_of(&cb.url),
                owner,
            ]));
        }
        let opened = o
            .opened
            .iter()
            .map(|w| Ok(json!([w.workitem_id, encode(w)?])))
            .collect::<Result<Vec<Value>, StoreError>>()
            .map_err(|e| Conflict::Failed(e.into()))?;
        let timers_set: Vec<Value> = o
            .timers_set
            .iter()
            .map(|(id, due)| json!([id, due.to_string()]))
            .collect();
        let history = o
            .history
            .iter()
            .map(encode)
            .collect::<Result<Vec<String>, StoreError>>()
            .map_err(|e| Conflict::Failed(e.into()))?;
        let state = encode(p).map_err(|e| Conflict::Failed(e.into()))?;
        inv.arg(wfid)
            .arg(version)
            .arg(consumed)
            .arg(state)
            .arg(p.status.as_str())
            .arg(ms(self.retention))
            .arg(self.history_len)
            .arg(json!(opened).to_string())
            .arg(json!(o.closed).to_string())
            .arg(json!(timers_set).to_string())
            .arg(json!(o.timers_cleared).to_string())
            .arg(json!(history).to_string())
            .arg(json!(callbacks).to_string())
            .arg(trace::current_text());
        match self.reply::<CommitReply>(&inv).await {
            Ok(r) => Ok(r.status),
            Err(WorkflowError::Store(StoreError::Reply(code))) if code == "conflict" => {
                Err(Conflict::Lost)
            }
            Err(e) => Err(Conflict::Failed(e)),
        }
    }
}

/// What a commit applies to: the state read at `version`, with `consumed`
/// inbox entries.
struct Commit<'a> {
    wfid: &'a str,
    version: &'a str,
    consumed: usize,
    public_url: &'a str,
}

/// Why a commit did not apply.
enum Conflict {
    /// Another commit moved the version first: recompute.
    Lost,
    Failed(WorkflowError),
}
