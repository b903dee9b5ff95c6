//! The gate store: every state change is one script call; operations whose
//! keys depend on stored data are repeated while the script answers `stale`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use redis::AsyncCommands;
use serde::Deserialize;
use serde_json::Value;

use super::error::GateError;
use super::keys::GateKeys;
use super::model::*;
use super::scripts;
use crate::platform::keys::Keys;
use crate::platform::redis::Redis;
use crate::platform::time::{iso_ms, ms, today};

#[derive(Clone)]
pub struct GateStore {
    pool: Redis,
    keys: GateKeys,
    settings: GateSettings,
}

impl GateStore {
    pub fn new(pool: Redis, keys: &Keys, settings: GateSettings) -> Self {
        Self {
            pool,
            keys: keys.gates(&settings.namespace),
            settings,
        }
    }

    pub fn settings(&self) -> &GateSettings {
        &self.settings
    }

    pub fn keys(&self) -> &GateKeys {
        &self.keys
    }

    fn cap(&self) -> u32 {
        self.settings.history_len
    }

    async fn run(&self, inv: &redis::ScriptInvocation<'_>) -> Result<Value, GateError> {
        let mut conn = self.pool.conn();
        let raw: String = inv.invoke_async(&mut conn).await?;
        let v: Value =
            serde_json::from_str(&raw).map_err(|e| GateError::reply(format!("{e}: {raw}")))?;
        if let Some(err) = v.get("err").and_then(Value::as_str) {
            let s = |k: &str| {
                v.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            return Err(match err {
                "service_not_found" => GateError::ServiceNotFound {
                    service: s("service"),
                },
                "environment_not_found" => GateError::EnvironmentNotFound {
                    service: s("service"),
                    environment: s("environment"),
                },
                "exists" => GateError::AlreadyExists {
                    service: s("service"),
                },
                "ticket_not_found" => GateError::TicketNotFound,
                "ticket_mismatch" => GateError::TicketMismatch {
                    gates: serde_json::from_value(v.get("gates").cloned().unwrap_or_default())
                        .unwrap_or_default(),
                },
                other => GateError::reply(format!("unknown error {other}")),
            });
        }
        Ok(v)
    }

    /// Repeat `attempt` while the script answers that its inputs changed
    /// under it (`None`), at most [`STALE_RETRIES`] times.
    async fn until_fresh<T, F, Fut>(&self, mut attempt: F) -> Result<T, GateError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, GateError>>,
    {
        for _ in 0..STALE_RETRIES {
            if let Some(done) = attempt().await? {
                return Ok(done);
            }
        }
        Err(GateError::Contended)
    }

    /// How long a released or expired ticket id stays refused
    /// (`--gate-gone-window`; at least a millisecond, as PEXPIRE needs).
    fn gone_window(&self) -> std::time::Duration {
        self.settings
            .gone_window
            .max(std::time::Duration::from_millis(1))
    }

    /// The stored service, or 404.
    async fn service(&self, name: &str) -> Result<ServiceRec, GateError> {
        self.service_rec(name)
            .await?
            .ok_or_else(|| GateError::ServiceNotFound {
                service: name.into(),
            })
    }

    async fn service_rec(&self, name: &str) -> Result<Option<ServiceRec>, GateError> {
        let mut conn = self.pool.conn();
        let raw: Option<String> = conn.hget(self.keys.services(), name).await?;
        raw.map(|r| serde_json::from_str(&r).map_err(|e| GateError::reply(e.to_string())))
            .transpose()
    }

    /// Create a service with one open gate per environment.
    pub async fn create_service(
        &self,
        name: &str,
        group: &str,
        envs: &[String],
        actor: &str,
    ) -> Result<(), GateError> {
        let s = &*scripts::GATES_SERVICE_CREATE;
        let mut inv = s.key(self.keys.services());
        for e in envs {
            inv.key(self.keys.state(name, e))
                .key(self.keys.history(name, e));
        }
        inv.arg(name)
            .arg(group)
            .arg(self.cap())
            .arg(actor)
            .arg(envs.len());
        for e in envs {
            inv.arg(e);
        }
        self.run(&inv).await.map(drop)
    }

    /// One service with every gate, as one consistent snapshot.
    pub async fn get_service(
        &self,
        name: &str,
        group: Option<&str>,
    ) -> Result<ServiceView, GateError> {
        let now = Utc::now();
        self.until_fresh(move || async move {
            let rec = self.service(name).await?;
            let s = &*scripts::GATES_SERVICE_GET;
            let mut inv = s.key(self.keys.services());
            inv.key(self.keys.tickets()).key(self.keys.holidays());
            for e in &rec.environments {
                inv.key(self.keys.state(name, e))
                    .key(self.keys.queue(name, e));
            }
            inv.arg(name)
                .arg(group.unwrap_or(""))
                .arg(today(now))
                .arg(rec.environments.len());
            for e in &rec.environments {
                inv.arg(e);
            }
            let Some(v) = fresh(self.run(&inv).await?) else {
                return Ok(None);
            };
            self.service_view(name, v, now).map(Some)
        })
        .await
    }

    fn service_view(
        &self,
        name: &str,
        v: Value,
        now: DateTime<Utc>,
    ) -> Result<ServiceView, GateError> {
        #[derive(Deserialize)]
        struct RawGate {
            name: String,
            #[serde(default)]
            state: String,
            #[serde(default)]
            state_ts: String,
            #[serde(default)]
            message: String,
            #[serde(default)]
            message_ts: String,
            #[serde(deserialize_with = "lenient_vec", default)]
            queue: Vec<TicketRec>,
        }
        #[derive(Deserialize)]
        struct Raw {
            service: ServiceRec,
            #[serde(deserialize_with = "lenient_vec")]
            gates: Vec<RawGate>,
            #[serde(deserialize_with = "lenient_vec", default)]
            holiday: Vec<String>,
        }
        let raw: Raw = serde_json::from_value(v).map_err(|e| GateError::reply(e.to_string()))?;
        let ts = |s: &str| s.parse::<i64>().map(iso_ms).unwrap_or_default();
        let mut environments = BTreeMap::new();
        for g in raw.gates {
            let mut closed_by = Vec::new();
            if g.state == "closed" {
                closed_by.push("manual");
            }
            if self.settings.windows.closed(&g.name, now) {
                closed_by.push("window");
            }
            if raw.holiday.iter().any(|e| e == &g.name) {
                closed_by.push("holiday");
            }
            if !g.queue.is_empty() {
                closed_by.push("queue");
            }
            environments.insert(
                g.name,
                GateView {
                    state: if closed_by.is_empty() {
                        "open"
                    } else {
                        "closed"
                    }
                    .into(),
                    manual_state: g.state,
                    closed_by,
                    message: g.message,
                    message_timestamp: ts(&g.message_ts),
                    state_timestamp: ts(&g.state_ts),
                    queue: g.queue.into_iter().map(TicketView::from).collect(),
                },
            );
        }
        Ok(ServiceView {
            name: name.into(),
            group: raw.service.group,
            created: iso_ms(raw.service.created as i64),
            environments,
        })
    }

    /// Every service, sorted by name.
    pub async fn list_services(&self) -> Result<Vec<ServiceSummary>, GateError> {
        let mut conn = self.pool.conn();
        let all: BTreeMap<String, String> = conn.hgetall(self.keys.services()).await?;
        all.into_iter()
            .map(|(name, raw)| {
                let rec: ServiceRec =
                    serde_json::from_str(&raw).map_err(|e| GateError::reply(e.to_string()))?;
                Ok(ServiceSummary {
                    name,
                    group: rec.group,
                    environments: rec.environments,
                })
            })
            .collect()
    }

    /// Set the manual state and/or the message of one gate.
    pub async fn set_state(
        &self,
        name: &str,
        group: Option<&str>,
        env: &str,
        state: Option<&str>,
        message: Option<&str>,
        actor: &str,
    ) -> Result<(), GateError> {
        let s = &*scripts::GATES_SET_STATE;
        let mut inv = s.key(self.keys.services());
        inv.key(self.keys.state(name, env))
            .key(self.keys.history(name, env))
            .arg(name)
            .arg(env)
            .arg(group.unwrap_or(""))
            .arg(state.unwrap_or(""))
            .arg(if message.is_some() { "1" } else { "0" })
            .arg(message.unwrap_or(""))
            .arg(self.cap())
            .arg(actor);
        self.run(&inv).await.map(drop)
    }

    /// Rename, regroup, replace environments and/or set states, in one step.
    /// Returns the service's (possibly new) name.
    pub async fn update_service(
        &self,
        name: &str,
        group: Option<&str>,
        upd: &ServiceUpdate,
        actor: &str,
    ) -> Result<String, GateError> {
        let new_name = upd.name.as_deref().unwrap_or(name);
        self.until_fresh(move || async move {
            let rec = self.service(name).await?;
            let new_envs = upd
                .environments
                .clone()
                .unwrap_or_else(|| rec.environments.clone());
            if let Some(missing) = upd.changes.keys().find(|e| !new_envs.contains(e)) {
                return Err(GateError::EnvironmentNotFound {
                    service: new_name.into(),
                    environment: missing.clone(),
                });
            }
            let s = &*scripts::GATES_SERVICE_UPDATE;
            let mut inv = s.key(self.keys.services());
            inv.key(self.keys.tickets()).key(self.keys.expiry());
            for e in &rec.environments {
                inv.key(self.keys.state(name, e))
                    .key(self.keys.queue(name, e))
                    .key(self.keys.history(name, e));
            }
            for e in &new_envs {
                inv.key(self.keys.state(new_name, e))
                    .key(self.keys.queue(new_name, e))
                    .key(self.keys.history(new_name, e));
            }
            inv.arg(name)
                .arg(group.unwrap_or(""))
                .arg(new_name)
                .arg(upd.group.as_deref().unwrap_or(&rec.group))
                .arg(self.cap())
                .arg(actor)
                .arg(rec.environments.len());
            for e in &rec.environments {
                inv.arg(e);
            }
            inv.arg(new_envs.len());
            for e in &new_envs {
                let (st, msg) = upd.changes.get(e).cloned().unwrap_or_default();
                inv.arg(e)
                    .arg(st.unwrap_or_default())
                    .arg(if msg.is_some() { "1" } else { "0" })
                    .arg(msg.unwrap_or_default());
            }
            inv.key(self.keys.gone()).arg(ms(self.gone_window()));
            let Some(_v) = fresh(self.run(&inv).await?) else {
                return Ok(None);
            };
            Ok(Some(new_name.to_owned()))
        })
        .await
    }

    /// Delete a service and its gates; tickets lose those gates.
    pub async fn delete_service(&self, name: &str, group: Option<&str>) -> Result<(), GateError> {
        self.until_fresh(move || async move {
            let rec = self.service(name).await?;
            let s = &*scripts::GATES_SERVICE_DELETE;
            let mut inv = s.key(self.keys.services());
            inv.key(self.keys.tickets()).key(self.keys.expiry());
            for e in &rec.environments {
                inv.key(self.keys.state(name, e))
                    .key(self.keys.queue(name, e))
                    .key(self.keys.history(name, e));
            }
            inv.arg(name)
                .arg(group.unwrap_or(""))
                .arg(rec.environments.len());
            for e in &rec.environments {
                inv.arg(e);
            }
            inv.key(self.keys.gone()).arg(ms(self.gone_window()));
            let Some(_v) = fresh(self.run(&inv).await?) else {
                return Ok(None);
            };
            Ok(Some(()))
        })
        .await
    }

    /// Test-and-set: grant, queue or deny a ticket for a set of gates, atomically.
    pub async fn test_and_set(
        &self,
        req: &TasRequest,
        actor: &str,
    ) -> Result<TasOutcome, GateError> {
        let now = Utc::now();
        let mut seen = BTreeSet::new();
        let gates: Vec<&GateRef> = req
            .gates
            .iter()
            .filter(|g| seen.insert((&g.service, &g.env)))
            .collect();
        let id = req
            .ticket
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let s = &*scripts::GATES_TAS;
        let mut inv = s.key(self.keys.services());
        inv.key(self.keys.tickets())
            .key(self.keys.expiry())
            .key(self.keys.fence())
            .key(self.keys.holidays());
        for g in &gates {
            inv.key(self.keys.state(&g.service, &g.env))
                .key(self.keys.queue(&g.service, &g.env))
                .key(self.keys.history(&g.service, &g.env));
        }
        inv.arg(&id)
            .arg(if req.ticket.is_some() { "1" } else { "0" })
            .arg(if req.queue { "1" } else { "0" })
            .arg(ms(self.settings.queue_ttl))
            .arg(ms(self.settings.grant_ttl))
            .arg(self.cap())
            .arg(today(now))
            .arg(req.link.as_deref().unwrap_or(""))
            .arg(actor)
            .arg(gates.len());
        for g in &gates {
            let win = self.settings.windows.closed(&g.env, now);
            inv.arg(&g.service)
                .arg(&g.env)
                .arg(if win { "1" } else { "0" })
                .arg(g.group.as_deref().unwrap_or(""));
        }
        inv.key(self.keys.gone()).arg(ms(self.gone_window()));
        let v = self.run(&inv).await?;
        let status = match v.get("status").and_then(Value::as_str) {
            Some("ok") => TasStatus::Ok,
            Some("queued") => TasStatus::Queued,
            Some("denied") => TasStatus::Denied,
            other => return Err(GateError::reply(format!("status {other:?}"))),
        };
        let ticket = match v.get("ticket") {
            Some(t) => Some(TicketView::from(
                serde_json::from_value::<TicketRec>(t.clone())
                    .map_err(|e| GateError::reply(e.to_string()))?,
            )),
            None => None,
        };
        Ok(TasOutcome {
            status,
            ticket,
            position: v.get("position").and_then(Value::as_f64).unwrap_or(0.0) as u64,
            closed: v.get("closed").and_then(Value::as_bool).unwrap_or(false),
        })
    }

    /// One live ticket.
    pub async fn get_ticket(&self, id: &str) -> Result<TicketView, GateError> {
        let mut conn = self.pool.conn();
        let raw: Option<String> = conn.hget(self.keys.tickets(), id).await?;
        let t: TicketRec = match raw {
            Some(r) => serde_json::from_str(&r).map_err(|e| GateError::reply(e.to_string()))?,
            None => return Err(GateError::TicketNotFound),
        };
        if t.expires != 0.0 && (t.expires as i64) <= crate::time::now_ms() {
            return Err(GateError::TicketNotFound);
        }
        Ok(t.into())
    }

    /// Release a ticket (reason `released`) or expire it (reason `expired`;
    /// only if its expiry has really passed). True when something was removed.
    pub async fn release(&self, id: &str, reason: &str, actor: &str) -> Result<bool, GateError> {
        self.until_fresh(move || async move {
            let raw: Option<String> = {
                let mut conn = self.pool.conn();
                conn.hget(self.keys.tickets(), id).await?
            };
            let gates: Vec<String> = match raw {
                Some(r) => {
                    serde_json::from_str::<TicketRec>(&r)
                        .map_err(|e| GateError::reply(e.to_string()))?
                        .gates
                }
                None => Vec::new(),
            };
            let s = &*scripts::GATES_RELEASE;
            let mut inv = s.key(self.keys.tickets());
            inv.key(self.keys.expiry());
            for g in &gates {
                let (svc, env) = g.split_once('/').unwrap_or((g, ""));
                inv.key(self.keys.queue(svc, env))
                    .key(self.keys.history(svc, env));
            }
            inv.arg(id)
                .arg(reason)
                .arg(self.cap())
                .arg(actor)
                .arg(gates.len());
            for g in &gates {
                inv.arg(g);
            }
            inv.key(self.keys.gone()).arg(ms(self.gone_window()));
            let Some(v) = fresh(self.run(&inv).await?) else {
                return Ok(None);
            };
            Ok(Some(
                v.get("released").and_then(Value::as_bool) == Some(true),
            ))
        })
        .await
    }

    /// Expire every ticket whose time has passed, at most `batch` per round.
    /// Returns how many tickets were removed.
    pub async fn sweep_expired(&self, batch: usize) -> Result<usize, GateError> {
        let mut removed = 0;
        loop {
            let due: Vec<String> = {
                let mut conn = self.pool.conn();
                redis::cmd("ZRANGEBYSCORE")
                    .arg(self.keys.expiry())
                    .arg("-inf")
                    .arg(crate::time::now_ms())
                    .arg("LIMIT")
                    .arg(0)
                    .arg(batch.max(1))
                    .query_async(&mut conn)
                    .await?
            };
            let mut this_round = 0;
            for id in &due {
                if self.release(id, "expired", "scheduler").await? {
                    this_round += 1;
                }
            }
            removed += this_round;
            // Fewer than a batch, or none removable (Redis's clock, which
            // decides, is behind ours): done until the next tick.
            if due.len() < batch.max(1) || this_round == 0 {
                return Ok(removed);
            }
        }
    }

    /// The history of one gate, newest first.
    pub async fn history(
        &self,
        name: &str,
        group: Option<&str>,
        env: &str,
        limit: usize,
    ) -> Result<Vec<Value>, GateError> {
        let mut conn = self.pool.conn();
        let (rec, exists, entries): (Option<String>, bool, Vec<String>) = redis::pipe()
            .atomic()
            .hget(self.keys.services(), name)
            .exists(self.keys.state(name, env))
            .lrange(self.keys.history(name, env), 0, limit.max(1) as isize - 1)
            .query_async(&mut conn)
            .await?;
        let rec: ServiceRec = match rec {
            Some(r) => serde_json::from_str(&r).map_err(|e| GateError::reply(e.to_string()))?,
            None => {
                return Err(GateError::ServiceNotFound {
                    service: name.into(),
                });
            }
        };
        if group.is_some_and(|g| g != rec.group) {
            return Err(GateError::ServiceNotFound {
                service: name.into(),
            });
        }
        if !exists {
            return Err(GateError::EnvironmentNotFound {
                service: name.into(),
                environment: env.into(),
            });
        }
        Ok(entries
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e).ok())
            .map(|mut e| {
                if let Some(at) = e.get("at").and_then(Value::as_f64) {
                    e["at"] = Value::String(iso_ms(at as i64));
                }
                e
            })
            .collect())
    }

    /// Replace every holiday.
    pub async fn set_holidays(&self, holidays: &[Holiday]) -> Result<(), GateError> {
        let mut days: BTreeMap<&str, HolidayDay> = BTreeMap::new();
        for h in holidays {
            let day = days.entry(h.date.as_str()).or_default();
            for e in &h.environments {
                if !day.environments.contains(e) {
                    day.environments.push(e.clone());
                }
            }
            day.entries.push(h.clone());
        }
        let s = &*scripts::GATES_HOLIDAYS_SET;
        let mut inv = s.key(self.keys.holidays());
        for (date, day) in &days {
            let json = serde_json::to_string(day).map_err(|e| GateError::reply(e.to_string()))?;
            inv.arg(*date).arg(json);
        }
        self.run(&inv).await.map(drop)
    }

    /// Holidays from `from` on, sorted by date.
    pub async fn list_holidays(&self, from: NaiveDate) -> Result<Vec<Holiday>, GateError> {
        let mut conn = self.pool.conn();
        let all: BTreeMap<String, String> = conn.hgetall(self.keys.holidays()).await?;
        let from = from.format("%Y-%m-%d").to_string();
        let mut out = Vec::new();
        for (date, raw) in all.range(from..) {
            let day: HolidayDay =
                serde_json::from_str(raw).map_err(|e| GateError::reply(e.to_string()))?;
            debug_assert!(day.entries.iter().all(|h| &h.date == date));
            out.extend(day.entries);
        }
        Ok(out)
    }
}

/// A script reply, unless it says its inputs changed under it (`stale`).
fn fresh(v: Value) -> Option<Value> {
    (v.get("stale").and_then(Value::as_bool) != Some(true)).then_some(v)
}
