//! A machine's figures, read from the counters the transition script keeps:
//! per state its count, oldest age, time-in-state percentiles and
//! entries/exits over 1 min / 5 min / 1 h; per edge its moves over the same
//! windows; and the rejected transitions.

use std::collections::{BTreeMap, HashMap};

use redis::AsyncCommands;
use serde::Serialize;

use super::spec::{Definition, StateSpec};
use super::store::{MachineError, MachineStore, minute};
use crate::platform::errors::StoreError;
use crate::platform::time::{iso_ms, now_ms};

/// The minutes of counters kept (the longest window).
const MINUTES: i64 = 60;

#[derive(Serialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
pub struct MachineMetrics {
    pub machine: String,
    /// When they were read (ISO 8601).
    pub at: String,
    /// By state id.
    pub states: BTreeMap<String, StateMetrics>,
    /// By edge, `<from>><to>`.
    pub edges: BTreeMap<String, Windows>,
    pub rejected: Windows,
}

#[derive(Serialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
pub struct StateMetrics {
    pub name: String,
    pub terminal: bool,
    /// Entities in the state; `null` for terminal states (not kept).
    pub count: Option<i64>,
    pub oldest_age_seconds: Option<f64>,
    pub time_in_state_seconds: Percentiles,
    pub entries: Windows,
    pub exits: Windows,
}

/// Ages of the entities now in a state, in seconds.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Default, utoipa::ToSchema)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

/// A counter summed over the last minute, five minutes and hour.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
pub struct Windows {
    #[serde(rename = "1m")]
    pub one_minute: i64,
    #[serde(rename = "5m")]
    pub five_minutes: i64,
    #[serde(rename = "1h")]
    pub one_hour: i64,
}

impl Windows {
    /// The window named `1m`, `5m` or `1h` (others: 1m).
    pub fn get(&self, window: &str) -> i64 {
        match window {
            "5m" => self.five_minutes,
            "1h" => self.one_hour,
            _ => self.one_minute,
        }
    }
}

/// The per-minute counter hashes, newest first.
struct Buckets(Vec<HashMap<String, i64>>);

impl Buckets {
    fn sum(&self, field: &str, minutes: usize) -> i64 {
        self.0
            .iter()
            .take(minutes)
            .map(|b| b.get(field).copied().unwrap_or(0))
            .sum()
    }

    fn windows(&self, field: &str) -> Windows {
        Windows {
            one_minute: self.sum(field, 1),
            five_minutes: self.sum(field, 5),
            one_hour: self.sum(field, 60),
        }
    }
}

impl MachineMetrics {
    /// Publish the per-state figures as Prometheus gauges.
    pub fn export(&self) {
        for (id, st) in self.states.iter().filter(|(_, st)| !st.terminal) {
            set_gauges(
                &self.machine,
                id,
                st.count.unwrap_or(0),
                st.oldest_age_seconds.unwrap_or(0.0),
                st.entries.five_minutes,
            );
        }
    }
}

/// The gauges of one non-terminal state.
fn set_gauges(machine: &str, state: &str, count: i64, oldest_age_seconds: f64, entries_5m: i64) {
    let labels = [("machine", machine.to_owned()), ("state", state.to_owned())];
    metrics::gauge!("switchyard_sm_entities", &labels).set(count as f64);
    metrics::gauge!("switchyard_sm_oldest_age_seconds", &labels).set(oldest_age_seconds);
    metrics::gauge!("switchyard_sm_entries_5m", &labels).set(entries_5m as f64);
}

fn parse<T: redis::FromRedisValue>(v: Option<redis::Value>) -> Result<T, MachineError> {
    let v = v.ok_or_else(|| StoreError::Reply("a pipeline answered too few replies".into()))?;
    Ok(redis::from_redis_value(v).map_err(|e| StoreError::Reply(e.to_string()))?)
}

impl MachineStore {
    /// Publish the gauges ([`MachineMetrics::export`]'s figures: count,
    /// oldest age, entries over 5 minutes, per non-terminal state) of the
    /// machines `ids`, read in two round trips whatever their number: their
    /// definitions, then per machine its counts, five minute buckets and one
    /// `ZRANGE 0 0` per non-terminal state. Ids without a definition are
    /// skipped. Returns how many machines were published.
    #[tracing::instrument(skip_all, fields(machines = ids.len()), err(level = "debug"))]
    pub async fn export_gauges(&self, ids: &[String]) -> Result<usize, MachineError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut conn = self.conn();
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hget(self.keys(id).meta(), "def");
        }
        let raws: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
        let defs: Vec<Definition> = raws
            .into_iter()
            .flatten()
            .filter_map(|r| serde_json::from_str(&r).ok())
            .collect();
        if defs.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let mut pipe = redis::pipe();
        for def in &defs {
            let k = self.keys(&def.id);
            pipe.hgetall(k.counts());
            for i in 0..5 {
                pipe.hgetall(k.bucket(minute(now) - i));
            }
            for s in def.states.iter().filter(|s| !s.next.is_empty()) {
                pipe.zrange_withscores(k.state(&s.id), 0, 0);
            }
        }
        let values: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
        let mut values = values.into_iter();
        for def in &defs {
            let counts: HashMap<String, i64> = parse(values.next())?;
            let buckets = Buckets(
                (0..5)
                    .map(|_| parse(values.next()))
                    .collect::<Result<_, _>>()?,
            );
            for s in def.states.iter().filter(|s| !s.next.is_empty()) {
                let oldest: Vec<(String, f64)> = parse(values.next())?;
                let age = oldest
                    .first()
                    .map_or(0.0, |(_, at)| (now as f64 - at).max(0.0) / 1000.0);
                set_gauges(
                    &def.id,
                    &s.id,
                    counts.get(&s.id).copied().unwrap_or(0),
                    age,
                    buckets.sum(&format!("in:{}", s.id), 5),
                );
            }
        }
        Ok(defs.len())
    }

    /// Read a machine's figures now.
    #[tracing::instrument(skip_all, fields(machine_id = %def.id), err(level = "debug"))]
    pub async fn metrics(&self, def: &Definition) -> Result<MachineMetrics, MachineError> {
        let k = self.keys(&def.id);
        let now = now_ms();
        let mut conn = self.conn();
        let counts: HashMap<String, i64> = conn.hgetall(k.counts()).await?;
        let mut pipe = redis::pipe();
        for i in 0..MINUTES {
            pipe.hgetall(k.bucket(minute(now) - i));
        }
        let buckets = Buckets(pipe.query_async(&mut conn).await?);
        let mut states = BTreeMap::new();
        for s in &def.states {
            let count = (!s.next.is_empty()).then(|| counts.get(&s.id).copied().unwrap_or(0));
            let st = self.state_metrics(def, s, count, &buckets, now).await?;
            states.insert(s.id.clone(), st);
        }
        let edges = def
            .states
            .iter()
            .flat_map(|s| s.next.iter().map(move |n| format!("{}>{}", s.id, n)))
            .map(|edge| {
                let w = buckets.windows(&format!("edge:{edge}"));
                (edge, w)
            })
            .collect();
        Ok(MachineMetrics {
            machine: def.id.clone(),
            at: iso_ms(now),
            states,
            edges,
            rejected: buckets.windows("rej"),
        })
    }

    async fn state_metrics(
        &self,
        def: &Definition,
        s: &StateSpec,
        count: Option<i64>,
        buckets: &Buckets,
        now: i64,
    ) -> Result<StateMetrics, MachineError> {
        let key = self.keys(&def.id).state(&s.id);
        let n: i64 = self.conn().zcard(&key).await?;
        let (oldest, time_in_state) = if n > 0 {
            let pct = |q: f64| ((1.0 - q) * (n - 1) as f64).round() as i64;
            let p = Percentiles {
                p50: self.age_at(&key, pct(0.5), now).await?,
                p90: self.age_at(&key, pct(0.9), now).await?,
                p99: self.age_at(&key, pct(0.99), now).await?,
            };
            (self.age_at(&key, 0, now).await?, p)
        } else {
            (None, Percentiles::default())
        };
        Ok(StateMetrics {
            name: s.name.clone(),
            terminal: s.next.is_empty(),
            count,
            oldest_age_seconds: oldest,
            time_in_state_seconds: time_in_state,
            entries: buckets.windows(&format!("in:{}", s.id)),
            exits: buckets.windows(&format!("out:{}", s.id)),
        })
    }

    /// Seconds in the state of the entity at `rank` (0: the oldest).
    async fn age_at(&self, key: &str, rank: i64, now: i64) -> Result<Option<f64>, MachineError> {
        let rank = rank as isize;
        let r: Vec<(String, f64)> = self.conn().zrange_withscores(key, rank, rank).await?;
        Ok(r.first().map(|(_, at)| (now as f64 - at).max(0.0) / 1000.0))
    }
}
