//! [`MachineStore`]: definitions, transitions and entities. Every state
//! change is one script call (`lua/machines/*.lua`); metrics and thresholds
//! are read by [`super::metrics`] and [`super::thresholds`].

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncCommands;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::keys::MachineKeys;
use super::scripts;
use super::spec::Definition;
use crate::platform::errors::StoreError;
use crate::platform::keys::Keys;
use crate::platform::redis::{Conn, Redis as RedisPool};
use crate::platform::reply::{self, Refused};
use crate::platform::time::{iso_ms, ms, now_ms};

pub const BATCH_MAX: usize = 1000;
pub const HISTORY_CAP: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error("state machine not found")]
    NotFound,
    #[error("a state machine with this id exists")]
    Exists,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<redis::RedisError> for MachineError {
    fn from(e: redis::RedisError) -> Self {
        Self::Store(e.into())
    }
}

impl From<Refused> for MachineError {
    /// The refusals the machines scripts answer.
    fn from(r: Refused) -> Self {
        match r.code.as_str() {
            "machine_not_found" => Self::NotFound,
            _ => Self::Store(StoreError::Reply(format!("unknown refusal: {}", r.reply))),
        }
    }
}

/// One transition to apply.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The entity (batch only; the single-entity path names it).
    #[serde(default)]
    pub entity: String,
    pub to: String,
    /// Milliseconds since the epoch (parsed at the edge from ISO 8601 or a number).
    #[serde(skip)]
    pub at_ms: Option<i64>,
    /// When the move happened: ISO 8601 or epoch milliseconds (default: now).
    #[serde(default)]
    pub at: Option<Value>,
    /// An object kept in the entity's history.
    #[serde(default)]
    pub data: Option<Value>,
    /// An id applied once per entity (a repeat for the same entity answers
    /// `duplicate`; another entity may use the same id). Remembered for the
    /// retention.
    #[serde(default)]
    pub event_id: Option<String>,
}

/// A machine in the list.
#[derive(Serialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
pub struct MachineSummary {
    pub id: String,
    pub name: String,
    /// How many states it has.
    pub states: usize,
}

/// The outcome of one event, as the transition script answers it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TransitionResult {
    Applied {
        /// `null` when the entity is new.
        from: Option<String>,
        to: String,
        /// The entity entered a terminal state.
        closed: bool,
    },
    /// The event id was applied before.
    Duplicate,
    Rejected {
        reason: RejectReason,
        /// The entity's state (closed, not_allowed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<String>,
        /// The states it may move to.
        allowed: Vec<String>,
    },
}

/// Why a transition was refused.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    UnknownState,
    NotInitial,
    Closed,
    NotAllowed,
}

/// An entity's state and history.
#[derive(Serialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
pub struct EntityView {
    pub entity: String,
    pub state: Option<String>,
    /// When it entered its state (ISO 8601).
    pub entered: String,
    pub closed: bool,
    /// Newest first.
    pub history: Vec<HistoryEntry>,
}

/// One applied move, as the transition script records it (`at` in epoch
/// milliseconds) and as the API shows it (`at` in ISO 8601).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub from: Option<String>,
    pub to: String,
    #[serde(deserialize_with = "iso_from_ms")]
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

fn iso_from_ms<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    i64::deserialize(d).map(iso_ms)
}

#[derive(Clone)]
pub struct MachineStore {
    pub(super) pool: RedisPool,
    pub(super) keys: Keys,
    retention: Duration,
}

/// Where a walk over every machine's id stands: a shard and an offset in
/// its index ([`MachineStore::ids_page`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdCursor {
    pub shard: u16,
    pub offset: usize,
}

/// The current epoch minute (the counters' bucket).
pub(super) fn minute(now_ms: i64) -> i64 {
    now_ms / 60_000
}

impl MachineStore {
    pub fn new(pool: RedisPool, keys: Keys, retention: Duration) -> Self {
        Self {
            pool,
            keys,
            retention,
        }
    }

    pub fn keys(&self, id: &str) -> MachineKeys {
        self.keys.machine(id)
    }

    pub(super) fn conn(&self) -> Conn {
        self.pool.conn()
    }

    #[tracing::instrument(skip_all, fields(machine_id = %def.id), err(level = "debug"))]
    pub async fn create(&self, def: &Definition) -> Result<(), MachineError> {
        let k = self.keys(&def.id);
        let json = serde_json::to_string(def).map_err(|e| StoreError::Encode(e.to_string()))?;
        let n: i64 = scripts::SM_CREATE
            .key(k.meta())
            .key(&k.index)
            .arg(&def.id)
            .arg(json)
            .invoke_async(&mut self.conn())
            .await?;
        if n == 0 {
            return Err(MachineError::Exists);
        }
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(machine_id = %id), err(level = "debug"))]
    pub async fn definition(&self, id: &str) -> Result<Definition, MachineError> {
        let raw: Option<String> = self.conn().hget(self.keys(id).meta(), "def").await?;
        let raw = raw.ok_or(MachineError::NotFound)?;
        Ok(serde_json::from_str(&raw).map_err(|e| StoreError::Reply(e.to_string()))?)
    }

    #[tracing::instrument(skip_all, fields(machine_id = %id), err(level = "debug"))]
    pub async fn delete(&self, id: &str) -> Result<(), MachineError> {
        let def = self.definition(id).await?;
        let k = self.keys(id);
        let mut inv = scripts::SM_DELETE.key(k.meta());
        inv.key(&k.index)
            .key(k.counts())
            .key(k.events())
            .key(k.alerts());
        for s in &def.states_ids {
            inv.key(k.state(s));
        }
        inv.arg(id);
        let n: i64 = inv.invoke_async(&mut self.conn()).await?;
        if n == 0 {
            return Err(MachineError::NotFound);
        }
        Ok(())
    }

    /// Every machine, by id.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn list(&self) -> Result<Vec<MachineSummary>, MachineError> {
        let mut conn = self.conn();
        let mut out = vec![];
        for id in self.ids().await? {
            let raw: Option<String> = conn.hget(self.keys(&id).meta(), "def").await?;
            if let Some(d) = raw.and_then(|r| serde_json::from_str::<Definition>(&r).ok()) {
                out.push(MachineSummary {
                    states: d.states.len(),
                    id: d.id,
                    name: d.name,
                });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Up to `limit` machine ids from `from` on, walking the shards' indexes
    /// in order and wrapping around after the last shard; each shard is read
    /// at most once (at most `shards` `ZRANGE`s). Returns the ids and where
    /// the next page starts, so that successive pages visit every machine
    /// in turn (round-robin).
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn ids_page(
        &self,
        from: IdCursor,
        limit: usize,
    ) -> Result<(Vec<String>, IdCursor), MachineError> {
        let shards = self.keys.shards();
        let mut at = IdCursor {
            shard: from.shard % shards.max(1),
            offset: from.offset,
        };
        let mut out = Vec::new();
        let mut conn = self.conn();
        for _ in 0..shards {
            let want = limit - out.len();
            if want == 0 {
                break;
            }
            let ids: Vec<String> = conn
                .zrange(
                    self.keys.machine_index(at.shard),
                    at.offset as isize,
                    (at.offset + want - 1) as isize,
                )
                .await?;
            let got = ids.len();
            out.extend(ids);
            if got == want {
                at.offset += got;
            } else {
                at = IdCursor {
                    shard: (at.shard + 1) % shards,
                    offset: 0,
                };
            }
        }
        Ok((out, at))
    }

    /// Ids of every machine.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn ids(&self) -> Result<Vec<String>, MachineError> {
        let mut conn = self.conn();
        let mut out = vec![];
        for shard in 0..self.keys.shards() {
            let ids: Vec<String> = conn.zrange(self.keys.machine_index(shard), 0, -1).await?;
            out.extend(ids);
        }
        Ok(out)
    }

    /// Apply events (one call); one result per event, in order.
    #[tracing::instrument(skip_all, fields(machine_id = %def.id), err(level = "debug"))]
    pub async fn transition(
        &self,
        def: &Definition,
        events: &[Event],
    ) -> Result<Vec<TransitionResult>, MachineError> {
        let k = self.keys(&def.id);
        let mut inv = scripts::SM_TRANSITION.key(k.meta());
        inv.key(k.counts())
            .key(k.events())
            .key(k.bucket(minute(now_ms())));
        for s in &def.states_ids {
            inv.key(k.state(s));
        }
        for e in events {
            inv.key(k.entity(&e.entity)).key(k.history(&e.entity));
        }
        inv.arg(HISTORY_CAP)
            .arg(ms(self.retention))
            .arg(events.len());
        for e in events {
            inv.arg(&e.entity)
                .arg(&e.to)
                .arg(e.at_ms.map(|v| v.to_string()).unwrap_or_default())
                .arg(e.data.as_ref().map(Value::to_string).unwrap_or_default())
                .arg(e.event_id.as_deref().unwrap_or(""));
        }
        let raw: String = inv.invoke_async(&mut self.conn()).await?;
        let out: Vec<TransitionResult> = reply::parse(&raw)??;
        count_outcomes(&def.id, &out);
        Ok(out)
    }

    /// An entity's state and history (newest first).
    #[tracing::instrument(skip_all, fields(machine_id = %id), err(level = "debug"))]
    pub async fn entity(&self, id: &str, entity: &str) -> Result<Option<EntityView>, MachineError> {
        let k = self.keys(id);
        let (h, hist): (HashMap<String, String>, Vec<String>) = redis::pipe()
            .atomic()
            .hgetall(k.entity(entity))
            .lrange(k.history(entity), 0, -1)
            .query_async(&mut self.conn())
            .await?;
        if h.is_empty() {
            return Ok(None);
        }
        let entered = h.get("entered").and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(Some(EntityView {
            entity: entity.to_owned(),
            state: h.get("state").cloned(),
            entered: iso_ms(entered),
            closed: h.get("closed").map(String::as_str) == Some("1"),
            history: hist
                .iter()
                .filter_map(|e| serde_json::from_str(e).ok())
                .collect(),
        }))
    }
}

fn count_outcomes(machine: &str, results: &[TransitionResult]) {
    let (mut applied, mut rejected) = (0u64, 0u64);
    for r in results {
        match r {
            TransitionResult::Applied { .. } => applied += 1,
            TransitionResult::Rejected { .. } => rejected += 1,
            TransitionResult::Duplicate => {}
        }
    }
    for (outcome, n) in [("applied", applied), ("rejected", rejected)] {
        metrics::counter!("switchyard_sm_transitions_total", "machine" => machine.to_owned(), "outcome" => outcome)
            .increment(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_results_keep_their_shape() {
        let raw = r#"[{"status":"applied","from":null,"to":"1","closed":false},{"status":"duplicate"},
            {"status":"rejected","reason":"not_allowed","state":"1","allowed":["2"]},
            {"status":"rejected","reason":"unknown_state","allowed":["1","2"]}]"#;
        let parsed: Vec<TransitionResult> = reply::parse(raw).expect("parses").expect("ok");
        let back: Value = serde_json::to_value(&parsed).expect("serialises");
        let want: Value = serde_json::from_str(raw).expect("json");
        assert_eq!(back, want);
    }

    #[test]
    fn only_a_missing_machine_is_not_found() {
        let refused = |raw: &str| match reply::parse::<Vec<TransitionResult>>(raw) {
            Ok(Err(r)) => MachineError::from(r),
            other => panic!("not a refusal: {other:?}"),
        };
        assert!(matches!(
            refused(r#"{"err":"machine_not_found"}"#),
            MachineError::NotFound
        ));
        assert!(matches!(
            refused(r#"{"err":"something_else"}"#),
            MachineError::Store(StoreError::Reply(_))
        ));
    }

    #[test]
    fn history_shows_iso_times_and_omits_what_was_not_given() {
        let e: HistoryEntry =
            serde_json::from_str(r#"{"from":null,"to":"1","at":0}"#).expect("entry");
        assert_eq!(
            serde_json::to_value(&e).expect("json"),
            serde_json::json!({"from": null, "to": "1", "at": "1970-01-01T00:00:00.000Z"})
        );
    }
}
