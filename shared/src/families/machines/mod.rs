//! State machines with monitoring (the wigo seed, finished).
//!
//! A machine is a set of states with their allowed `next` states. Initial
//! states are the ones marked `"initial": true`, or — when none is marked —
//! the first state listed. States with no `next` are terminal: entering one
//! closes the entity. Entities move by transitions, validated and applied in
//! one Lua call (`lua/sm_transition.lua`) that also keeps per-state counts,
//! time-in-state sets and per-minute counters (entries, exits, edges,
//! rejections) from which the metrics are read.
//!
//! Thresholds per state (count above N, oldest age above T, more than N
//! entities older than T, entry rate above R per window) are evaluated by the
//! scheduler; an alert and its webhook are one call (`lua/sm_alert.lua`).

use std::collections::HashMap;
use std::time::Duration;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub mod config;
pub mod keys;
pub mod scripts;

pub use config::MachineOpts;
pub use keys::MachineKeys;

use crate::platform::keys::Keys;
use crate::platform::redis::{PoolError, Redis as RedisPool};
use crate::platform::time::iso_ms;

pub const STATES_MAX: usize = 100;
pub const BATCH_MAX: usize = 1000;
pub const HISTORY_CAP: u32 = 100;
pub const THRESHOLDS_MAX: usize = 100;

pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StateSpec {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub next: Vec<String>,
    #[serde(default)]
    pub initial: bool,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSpec {
    #[serde(default)]
    pub id: Option<String>,
    pub state: String,
    /// count_above | oldest_age_above | older_than | entry_rate_above
    pub kind: String,
    /// N (count_above, older_than, entry_rate_above).
    #[serde(default)]
    pub value: Option<f64>,
    /// T in seconds (oldest_age_above, older_than).
    #[serde(default)]
    pub age_seconds: Option<u64>,
    /// 1m | 5m | 1h (entry_rate_above).
    #[serde(default)]
    pub window: Option<String>,
    #[serde(default = "warning")]
    pub severity: String,
    #[serde(default)]
    pub action: Option<ActionSpec>,
    #[serde(default)]
    pub cooldown_seconds: u64,
    #[serde(default = "yes")]
    pub recovery: bool,
}

fn warning() -> String {
    "warning".into()
}
fn yes() -> bool {
    true
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// webhook
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MachineSpec {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub states: Vec<StateSpec>,
    #[serde(default)]
    pub thresholds: Vec<ThresholdSpec>,
}

/// The stored definition, as the transition script reads it.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Definition {
    pub id: String,
    pub name: String,
    pub states: Vec<StateSpec>,
    pub states_ids: Vec<String>,
    pub initial: Vec<String>,
    pub thresholds: Vec<ThresholdSpec>,
}

/// (location, message) of the first problem.
pub fn validate(spec: MachineSpec) -> Result<Definition, (String, String)> {
    let e = |at: &str, m: &str| Err((at.to_owned(), m.to_owned()));
    if !valid_id(&spec.id) {
        return e("body.id", "ids are 1–100 letters, digits, '-', '_' or '.'");
    }
    if spec.states.is_empty() {
        return e("body.states", "a state machine needs at least one state");
    }
    if spec.states.len() > STATES_MAX {
        return e("body.states", &format!("at most {STATES_MAX} states"));
    }
    let mut ids = Vec::new();
    for (i, s) in spec.states.iter().enumerate() {
        if !valid_id(&s.id) {
            return e(
                &format!("body.states[{i}].id"),
                "state ids are 1–100 letters, digits, '-', '_' or '.'",
            );
        }
        if ids.contains(&s.id) {
            return e(
                &format!("body.states[{i}].id"),
                &format!("duplicate state id {:?}", s.id),
            );
        }
        ids.push(s.id.clone());
    }
    for (i, s) in spec.states.iter().enumerate() {
        for (j, n) in s.next.iter().enumerate() {
            if !ids.contains(n) {
                return e(
                    &format!("body.states[{i}].next[{j}]"),
                    &format!("unknown state {n:?}"),
                );
            }
        }
    }
    let mut initial: Vec<String> = spec
        .states
        .iter()
        .filter(|s| s.initial)
        .map(|s| s.id.clone())
        .collect();
    if initial.is_empty() {
        initial.push(spec.states[0].id.clone());
    }
    if spec.thresholds.len() > THRESHOLDS_MAX {
        return e(
            "body.thresholds",
            &format!("at most {THRESHOLDS_MAX} thresholds"),
        );
    }
    let mut thresholds = spec.thresholds.clone();
    let mut seen_ids: Vec<String> = vec![];
    for (i, t) in thresholds.iter_mut().enumerate() {
        let at = format!("body.thresholds[{i}]");
        if !ids.contains(&t.state) {
            return e(
                &format!("{at}.state"),
                &format!("unknown state {:?}", t.state),
            );
        }
        let needs_value = matches!(
            t.kind.as_str(),
            "count_above" | "older_than" | "entry_rate_above"
        );
        let needs_age = matches!(t.kind.as_str(), "oldest_age_above" | "older_than");
        if !matches!(
            t.kind.as_str(),
            "count_above" | "oldest_age_above" | "older_than" | "entry_rate_above"
        ) {
            return e(
                &format!("{at}.kind"),
                "kind must be count_above, oldest_age_above, older_than or entry_rate_above",
            );
        }
        if needs_value && t.value.is_none_or(|v| v < 0.0) {
            return e(
                &format!("{at}.value"),
                "a non-negative number is required for this kind",
            );
        }
        if needs_age && t.age_seconds.is_none() {
            return e(&format!("{at}.age_seconds"), "required for this kind");
        }
        if t.kind == "entry_rate_above" && !matches!(t.window.as_deref(), Some("1m" | "5m" | "1h"))
        {
            return e(&format!("{at}.window"), "window must be 1m, 5m or 1h");
        }
        if !matches!(t.severity.as_str(), "warning" | "critical") {
            return e(
                &format!("{at}.severity"),
                "severity must be warning or critical",
            );
        }
        if let Some(a) = &t.action {
            if a.kind != "webhook" {
                return e(&format!("{at}.action.type"), "action type must be webhook");
            }
            let ok = url::Url::parse(&a.url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return e(&format!("{at}.action.url"), "must be an http(s) URL");
            }
        }
        if t.age_seconds.is_some_and(|a| a > 10 * 365 * 86_400)
            || t.cooldown_seconds > 10 * 365 * 86_400
        {
            return e(&at, "age_seconds and cooldown_seconds are at most 10 years");
        }
        if spec
            .states
            .iter()
            .any(|s| s.id == t.state && s.next.is_empty())
            && t.kind != "entry_rate_above"
        {
            return e(
                &format!("{at}.state"),
                "terminal states have no occupancy; only entry_rate_above applies",
            );
        }
        let id =
            t.id.clone()
                .unwrap_or_else(|| format!("{}-{}-{i}", t.state, t.kind));
        if !valid_id(&id) || seen_ids.contains(&id) {
            return e(
                &format!("{at}.id"),
                "threshold ids are unique, 1–100 letters, digits, '-', '_' or '.'",
            );
        }
        seen_ids.push(id.clone());
        t.id = Some(id);
    }
    Ok(Definition {
        id: spec.id,
        name: spec.name,
        states_ids: ids,
        states: spec.states,
        initial,
        thresholds,
    })
}

// ---------------------------------------------------------------------------

#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error("state machine not found")]
    NotFound,
    #[error("a state machine with this id exists")]
    Exists,
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis pool: {0}")]
    Pool(#[from] PoolError),
    #[error("unexpected reply: {0}")]
    Reply(String),
}

/// One transition to apply.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    #[serde(default)]
    pub entity: String,
    pub to: String,
    /// Milliseconds since the epoch (parsed at the edge from ISO 8601 or a number).
    #[serde(skip)]
    pub at_ms: Option<i64>,
    #[serde(default)]
    pub at: Option<Value>,
    #[serde(default)]
    pub data: Option<Value>,
    #[serde(default)]
    pub event_id: Option<String>,
}

#[derive(Clone)]
pub struct MachineStore {
    pool: RedisPool,
    keys: Keys,
    retention: Duration,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Current epoch minute and the windows we keep.
fn minute(now_ms: i64) -> i64 {
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

    pub async fn create(&self, def: &Definition) -> Result<(), MachineError> {
        let k = self.keys(&def.id);
        let json = serde_json::to_string(def).map_err(|e| MachineError::Reply(e.to_string()))?;
        let mut conn = self.pool.get().await?;
        let n: i64 = scripts::SM_CREATE
            .key(k.meta())
            .key(&k.index)
            .arg(&def.id)
            .arg(json)
            .invoke_async(&mut conn)
            .await?;
        if n == 0 {
            return Err(MachineError::Exists);
        }
        Ok(())
    }

    pub async fn definition(&self, id: &str) -> Result<Definition, MachineError> {
        let mut conn = self.pool.get().await?;
        let raw: Option<String> = conn.hget(self.keys(id).meta(), "def").await?;
        let raw = raw.ok_or(MachineError::NotFound)?;
        serde_json::from_str(&raw).map_err(|e| MachineError::Reply(e.to_string()))
    }

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
        let mut conn = self.pool.get().await?;
        let n: i64 = inv.invoke_async(&mut conn).await?;
        if n == 0 {
            return Err(MachineError::NotFound);
        }
        Ok(())
    }

    pub async fn list(&self) -> Result<Vec<Value>, MachineError> {
        let mut conn = self.pool.get().await?;
        let mut out = vec![];
        for shard in 0..self.keys.shards() {
            let ids: Vec<String> = conn.zrange(self.keys.machine_index(shard), 0, -1).await?;
            for id in ids {
                let raw: Option<String> = conn.hget(self.keys(&id).meta(), "def").await?;
                if let Some(d) = raw.and_then(|r| serde_json::from_str::<Definition>(&r).ok()) {
                    out.push(json!({"id": d.id, "name": d.name, "states": d.states.len()}));
                }
            }
        }
        out.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        Ok(out)
    }

    /// Apply events (one call); one result per event, in order.
    pub async fn transition(
        &self,
        def: &Definition,
        events: &[Event],
    ) -> Result<Vec<Value>, MachineError> {
        let k = self.keys(&def.id);
        let now = crate::platform::time::now_ms();
        let mut inv = scripts::SM_TRANSITION.key(k.meta());
        inv.key(k.counts())
            .key(k.events())
            .key(k.bucket(minute(now)));
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
        let mut conn = self.pool.get().await?;
        let raw: String = inv.invoke_async(&mut conn).await?;
        let v: Value =
            serde_json::from_str(&raw).map_err(|e| MachineError::Reply(format!("{e}: {raw}")))?;
        if v.get("err").is_some() {
            return Err(MachineError::NotFound);
        }
        let out = v.as_array().cloned().unwrap_or_default();
        let applied = out.iter().filter(|r| r["status"] == "applied").count() as u64;
        let rejected = out.iter().filter(|r| r["status"] == "rejected").count() as u64;
        metrics::counter!("switchyard_sm_transitions_total", "machine" => def.id.clone(), "outcome" => "applied").increment(applied);
        metrics::counter!("switchyard_sm_transitions_total", "machine" => def.id.clone(), "outcome" => "rejected").increment(rejected);
        Ok(out)
    }

    /// An entity's state and history (newest first).
    pub async fn entity(&self, id: &str, entity: &str) -> Result<Option<Value>, MachineError> {
        let k = self.keys(id);
        let mut conn = self.pool.get().await?;
        let (h, hist): (HashMap<String, String>, Vec<String>) = redis::pipe()
            .atomic()
            .hgetall(k.entity(entity))
            .lrange(k.history(entity), 0, -1)
            .query_async(&mut conn)
            .await?;
        if h.is_empty() {
            return Ok(None);
        }
        let entered = h.get("entered").and_then(|v| v.parse().ok()).unwrap_or(0);
        let history: Vec<Value> = hist
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e).ok())
            .map(|mut e| {
                if let Some(at) = e["at"].as_i64() {
                    e["at"] = json!(iso_ms(at));
                }
                e
            })
            .collect();
        Ok(Some(json!({
            "entity": entity,
            "state": h.get("state"),
            "entered": iso_ms(entered),
            "closed": h.get("closed").map(String::as_str) == Some("1"),
            "history": history,
        })))
    }

    /// Per state: count, oldest age, time-in-state percentiles, entries/exits
    /// over 1 min / 5 min / 1 h; per edge: counts over the same windows;
    /// rejected transitions.
    pub async fn metrics(&self, def: &Definition) -> Result<Value, MachineError> {
        let k = self.keys(&def.id);
        let now = crate::platform::time::now_ms();
        let mut conn = self.pool.get().await?;
        let counts: HashMap<String, i64> = conn.hgetall(k.counts()).await?;
        let m = minute(now);
        let mut pipe = redis::pipe();
        for i in 0..60 {
            pipe.hgetall(k.bucket(m - i));
        }
        let buckets: Vec<HashMap<String, i64>> = pipe.query_async(&mut conn).await?;
        let window = |field: &str, minutes: usize| -> i64 {
            buckets
                .iter()
                .take(minutes)
                .map(|b| b.get(field).copied().unwrap_or(0))
                .sum()
        };
        let windows = |field: &str| json!({"1m": window(field, 1), "5m": window(field, 5), "1h": window(field, 60)});
        let mut states = serde_json::Map::new();
        for s in &def.states {
            let key = k.state(&s.id);
            let n: i64 = conn.zcard(&key).await?;
            let age_at = |rank: i64| {
                let key = key.clone();
                async move {
                    let mut c = self.pool.get().await?;
                    let r: Vec<(String, f64)> = c
                        .zrange_withscores(&key, rank as isize, rank as isize)
                        .await?;
                    Ok::<Option<f64>, MachineError>(
                        r.first().map(|(_, at)| (now as f64 - at).max(0.0) / 1000.0),
                    )
                }
            };
            let oldest = if n > 0 { age_at(0).await? } else { None };
            let pct = |q: f64| ((1.0 - q) * (n - 1).max(0) as f64).round() as i64;
            let (p50, p90, p99) = if n > 0 {
                (
                    age_at(pct(0.5)).await?,
                    age_at(pct(0.9)).await?,
                    age_at(pct(0.99)).await?,
                )
            } else {
                (None, None, None)
            };
            let terminal = s.next.is_empty();
            states.insert(
                s.id.clone(),
                json!({
                    "name": s.name,
                    "terminal": terminal,
                    "count": if terminal { Value::Null } else { json!(counts.get(&s.id).copied().unwrap_or(0)) },
                    "oldest_age_seconds": oldest,
                    "time_in_state_seconds": {"p50": p50, "p90": p90, "p99": p99},
                    "entries": windows(&format!("in:{}", s.id)),
                    "exits": windows(&format!("out:{}", s.id)),
                }),
            );
        }
        let mut edges = serde_json::Map::new();
        for s in &def.states {
            for n in &s.next {
                edges.insert(
                    format!("{}>{}", s.id, n),
                    windows(&format!("edge:{}>{}", s.id, n)),
                );
            }
        }
        Ok(
            json!({"machine": def.id, "at": iso_ms(now), "states": states, "edges": edges, "rejected": windows("rej")}),
        )
    }

    /// Count of entities in `state` older than `age`.
    async fn older_than(
        &self,
        def: &Definition,
        state: &str,
        age: Duration,
    ) -> Result<i64, MachineError> {
        let cutoff = crate::platform::time::now_ms() - ms(age) as i64;
        let mut conn = self.pool.get().await?;
        Ok(conn
            .zcount(self.keys(&def.id).state(state), "-inf", cutoff)
            .await?)
    }

    /// Evaluate every threshold: (threshold, firing, message).
    pub async fn evaluate(
        &self,
        def: &Definition,
        metrics: &Value,
    ) -> Result<Vec<(ThresholdSpec, bool, String)>, MachineError> {
        let mut out = vec![];
        for t in &def.thresholds {
            let st = &metrics["states"][&t.state];
            let v = t.value.unwrap_or(0.0);
            let (firing, msg) = match t.kind.as_str() {
                "count_above" => {
                    let c = st["count"].as_f64().unwrap_or(0.0);
                    (c > v, format!("{}: {c} entities (threshold {v})", t.state))
                }
                "oldest_age_above" => {
                    let age = st["oldest_age_seconds"].as_f64().unwrap_or(0.0);
                    let limit = t.age_seconds.unwrap_or(0) as f64;
                    (
                        age > limit,
                        format!("{}: oldest entity {age:.0}s (threshold {limit}s)", t.state),
                    )
                }
                "older_than" => {
                    let n = self
                        .older_than(
                            def,
                            &t.state,
                            Duration::from_secs(t.age_seconds.unwrap_or(0)),
                        )
                        .await? as f64;
                    (
                        n > v,
                        format!(
                            "{}: {n} entities older than {}s (threshold {v})",
                            t.state,
                            t.age_seconds.unwrap_or(0)
                        ),
                    )
                }
                _ => {
                    let w = t.window.as_deref().unwrap_or("1m");
                    let n = st["entries"][w].as_f64().unwrap_or(0.0);
                    (
                        n > v,
                        format!("{}: {n} entries in {w} (threshold {v})", t.state),
                    )
                }
            };
            out.push((t.clone(), firing, msg));
        }
        Ok(out)
    }

    /// Move alert states and send notifications; returns (threshold id, sent) for each sent.
    pub async fn alert(
        &self,
        def: &Definition,
        evaluated: &[(ThresholdSpec, bool, String)],
        policy: &str,
    ) -> Result<Vec<(String, String)>, MachineError> {
        let k = self.keys(&def.id);
        let mut sent = vec![];
        for (t, firing, msg) in evaluated {
            let tid = t.id.clone().unwrap_or_default();
            let id = crate::platform::outbox::new_id(k.shard);
            let dk = self.keys.delivery(k.shard, &id);
            let url = t.action.as_ref().map(|a| a.url.clone()).unwrap_or_default();
            let destination = crate::platform::ids::destination_of(&url);
            let body = |status: &str| {
                json!({"machine": def.id, "threshold": tid, "state": t.state, "kind": t.kind, "severity": t.severity,
                       "status": status, "message": msg, "at": iso_ms(crate::platform::time::now_ms())})
                .to_string()
            };
            let mut conn = self.pool.get().await?;
            let raw: String = scripts::SM_ALERT
                .key(k.alerts())
                .key(&dk.record)
                .key(&dk.stream)
                .key(&dk.index)
                .arg(&tid)
                .arg(if *firing { "1" } else { "0" })
                .arg(t.cooldown_seconds * 1000)
                .arg(if t.recovery { "1" } else { "0" })
                .arg(&id)
                .arg(&url)
                .arg(body("firing"))
                .arg(body("recovered"))
                .arg(destination)
                .arg(policy)
                .invoke_async(&mut conn)
                .await?;
            let v: Value =
                serde_json::from_str(&raw).map_err(|e| MachineError::Reply(e.to_string()))?;
            if let Some(s) = v["sent"].as_str().filter(|s| !s.is_empty()) {
                metrics::counter!("switchyard_sm_alerts_total", "machine" => def.id.clone(), "kind" => s.to_owned()).increment(1);
                sent.push((tid, s.to_owned()));
            }
        }
        Ok(sent)
    }

    /// Evaluate every machine's thresholds and notify; returns notifications sent.
    pub async fn check_all(&self, policy: &str) -> Result<usize, MachineError> {
        let mut sent = 0;
        for id in self.ids().await? {
            let def = match self.definition(&id).await {
                Ok(d) => d,
                Err(MachineError::NotFound) => continue,
                Err(e) => return Err(e),
            };
            let m = self.metrics(&def).await?;
            self.export(&def, &m);
            if def.thresholds.is_empty() {
                continue;
            }
            let evaluated = self.evaluate(&def, &m).await?;
            sent += self.alert(&def, &evaluated, policy).await?.len();
        }
        Ok(sent)
    }

    /// Publish a machine's per-state figures as Prometheus gauges.
    pub fn export(&self, def: &Definition, m: &Value) {
        for s in &def.states {
            if s.next.is_empty() {
                continue;
            }
            let st = &m["states"][&s.id];
            let labels = [("machine", def.id.clone()), ("state", s.id.clone())];
            metrics::gauge!("switchyard_sm_entities", &labels)
                .set(st["count"].as_f64().unwrap_or(0.0));
            metrics::gauge!("switchyard_sm_oldest_age_seconds", &labels)
                .set(st["oldest_age_seconds"].as_f64().unwrap_or(0.0));
            metrics::gauge!("switchyard_sm_entries_5m", &labels)
                .set(st["entries"]["5m"].as_f64().unwrap_or(0.0));
        }
    }

    /// Ids of every machine.
    pub async fn ids(&self) -> Result<Vec<String>, MachineError> {
        let mut conn = self.pool.get().await?;
        let mut out = vec![];
        for shard in 0..self.keys.shards() {
            let ids: Vec<String> = conn.zrange(self.keys.machine_index(shard), 0, -1).await?;
            out.extend(ids);
        }
        Ok(out)
    }

    /// Nagios plugin output: (exit status word, text).
    pub fn nagios(
        def: &Definition,
        metrics: &Value,
        evaluated: &[(ThresholdSpec, bool, String)],
    ) -> (&'static str, String) {
        let firing: Vec<&(ThresholdSpec, bool, String)> =
            evaluated.iter().filter(|e| e.1).collect();
        let status = if firing.iter().any(|e| e.0.severity == "critical") {
            "CRITICAL"
        } else if firing.is_empty() {
            "OK"
        } else {
            "WARNING"
        };
        let summary = if firing.is_empty() {
            let total: i64 = metrics["states"]
                .as_object()
                .map_or(0, |m| m.values().filter_map(|s| s["count"].as_i64()).sum());
            format!(
                "{}: {total} entities in {} states",
                def.id,
                def.states.len()
            )
        } else {
            firing
                .iter()
                .map(|e| e.2.clone())
                .collect::<Vec<_>>()
                .join("; ")
        };
        let mut perf = vec![];
        for s in &def.states {
            if s.next.is_empty() {
                continue;
            }
            let count = metrics["states"][&s.id]["count"].as_i64().unwrap_or(0);
            let limit = |sev: &str| {
                def.thresholds
                    .iter()
                    .find(|t| t.state == s.id && t.kind == "count_above" && t.severity == sev)
                    .and_then(|t| t.value)
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            };
            perf.push(format!(
                "'{}'={count};{};{};0;",
                s.id,
                limit("warning"),
                limit("critical")
            ));
        }
        (status, format!("{status} - {summary} | {}", perf.join(" ")))
    }
}
