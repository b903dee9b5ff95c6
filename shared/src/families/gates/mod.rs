//! Deployment gates.
//!
//! A gate is (service, environment) with a manual state (open/closed), a
//! message, a FIFO queue of tickets and a bounded history. Services belong to
//! a group and have unique names. All gates of a namespace share one shard,
//! so every operation — including test-and-set over any set of gates — is a
//! single Lua call (`lua/gates/*.lua`) and therefore atomic.
//!
//! Operations whose keys depend on stored data (a service's environments, a
//! ticket's gates) read that data first and pass it to the script, which
//! checks it is still true and answers `stale` otherwise; the call is then
//! repeated. Nothing is written unless the whole operation applies.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use redis::AsyncCommands;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

pub mod config;
pub mod keys;
pub mod scripts;
pub mod windows;

pub use config::GateOpts;
pub use keys::GateKeys;
pub use windows::{BuildWindows, WindowRule};

use crate::platform::keys::Keys;
use crate::platform::redis::{PoolError, Redis as RedisPool};
use crate::platform::time::{iso_ms, today};

/// Longest service, group or environment name.
pub const NAME_MAX: usize = 100;
/// Most gates in one test-and-set request.
pub const TAS_MAX_GATES: usize = 64;
/// Most environments of one service.
pub const ENVS_MAX: usize = 64;
/// Most holidays in one replace-all request.
pub const HOLIDAYS_MAX: usize = 1000;
/// How often an operation is repeated when its inputs changed under it.
const STALE_RETRIES: usize = 16;

/// Why a name is refused, if it is.
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() || name.contains('.') {
        return Some("Gate name not valid. Should not empty or contains dots".into());
    }
    if name.len() > NAME_MAX {
        return Some(format!("name is longer than {NAME_MAX} characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Some(format!(
            "name {name:?} may only contain letters, digits, '-' and '_'"
        ));
    }
    None
}

// ---------------------------------------------------------------------------
// Settings, errors, views

#[derive(Clone, Debug)]
pub struct GateSettings {
    pub namespace: String,
    pub queue_ttl: Duration,
    pub grant_ttl: Duration,
    pub history_len: u32,
    pub windows: BuildWindows,
}

impl From<&GateOpts> for GateSettings {
    fn from(o: &GateOpts) -> Self {
        Self {
            namespace: o.gate_namespace.clone(),
            queue_ttl: o.gate_queue_ttl,
            grant_ttl: o.gate_grant_ttl,
            history_len: o.gate_history_len,
            windows: o.gate_windows.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("Gate not found")]
    ServiceNotFound { service: String },
    #[error("Environment not found")]
    EnvironmentNotFound {
        service: String,
        environment: String,
    },
    #[error("Gate with this name already exists")]
    AlreadyExists { service: String },
    #[error("Ticket does not exist")]
    TicketNotFound,
    #[error("Ticket was issued for other gates")]
    TicketMismatch { gates: Vec<String> },
    #[error("the gates changed concurrently too often; try again")]
    Contended,
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis pool: {0}")]
    Pool(#[from] PoolError),
    #[error("unexpected script reply: {0}")]
    Reply(String),
}

/// cjson encodes an empty Lua table as `{}`; read that as an empty list.
fn lenient_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v = Value::deserialize(d)?;
    match v {
        Value::Object(m) if m.is_empty() => Ok(Vec::new()),
        Value::Null => Ok(Vec::new()),
        other => serde_json::from_value(other).map_err(serde::de::Error::custom),
    }
}

#[derive(Deserialize, Debug, Clone)]
struct ServiceRec {
    group: String,
    #[serde(deserialize_with = "lenient_vec")]
    environments: Vec<String>,
    #[serde(default)]
    created: f64,
}

#[derive(Deserialize, Debug, Clone)]
struct TicketRec {
    id: String,
    #[serde(deserialize_with = "lenient_vec", default)]
    gates: Vec<String>,
    status: String,
    created: f64,
    updated: f64,
    expires: f64,
    #[serde(default)]
    fence: Option<f64>,
    #[serde(default)]
    link: Option<String>,
}

/// A ticket as the API shows it.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct TicketView {
    pub id: String,
    /// `queued` or `granted`.
    pub status: String,
    /// Expiry as seconds since the epoch; 0 = never (gatekeeper compatible).
    pub expiration_date: f64,
    /// Expiry as ISO 8601 UTC, absent when the ticket never expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub updated: String,
    pub created: String,
    pub link: Option<String>,
    /// Fencing token of the grant; strictly increasing over all grants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fence: Option<u64>,
    /// The gates this ticket is for, as `service/environment`.
    pub gates: Vec<String>,
}

impl From<TicketRec> for TicketView {
    fn from(t: TicketRec) -> Self {
        let expires = t.expires as i64;
        Self {
            id: t.id,
            status: t.status,
            expiration_date: if expires == 0 {
                0.0
            } else {
                expires as f64 / 1000.0
            },
            expires_at: (expires != 0).then(|| iso_ms(expires)),
            updated: iso_ms(t.updated as i64),
            created: iso_ms(t.created as i64),
            link: t.link,
            fence: t.fence.map(|f| f as u64),
            gates: t.gates,
        }
    }
}

/// One gate as the API shows it. `state` is what a deployer must obey:
/// closed when closed manually, outside its build window, on a holiday, or
/// while its queue holds a ticket. `manual_state` is the stored switch.
#[derive(Serialize, Debug, Clone)]
pub struct GateView {
    pub state: String,
    pub manual_state: String,
    pub closed_by: Vec<&'static str>,
    pub message: String,
    pub message_timestamp: String,
    pub state_timestamp: String,
    pub queue: Vec<TicketView>,
}

#[derive(Serialize, Debug, Clone)]
pub struct ServiceView {
    pub name: String,
    pub group: String,
    pub created: String,
    pub environments: BTreeMap<String, GateView>,
}

#[derive(Serialize, Debug, Clone)]
pub struct ServiceSummary {
    pub name: String,
    pub group: String,
    pub environments: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TasStatus {
    Ok,
    Queued,
    Denied,
}

#[derive(Debug, Clone)]
pub struct TasOutcome {
    pub status: TasStatus,
    pub ticket: Option<TicketView>,
    /// Live tickets ahead of this one in the longest of its queues.
    pub position: u64,
    /// True when a requested gate was closed (manually, window or holiday).
    pub closed: bool,
}

/// One gate of a test-and-set request; `group`, when given, must match.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GateRef {
    pub group: Option<String>,
    pub service: String,
    pub env: String,
}

#[derive(Debug, Clone, Default)]
pub struct TasRequest {
    pub gates: Vec<GateRef>,
    pub ticket: Option<String>,
    pub queue: bool,
    pub link: Option<String>,
}

/// A change of a service, applied in one step.
#[derive(Debug, Clone, Default)]
pub struct ServiceUpdate {
    pub name: Option<String>,
    pub group: Option<String>,
    /// The new environment list (kept gates keep their state and queue).
    pub environments: Option<Vec<String>>,
    /// Per environment: new state and/or message.
    pub changes: BTreeMap<String, (Option<String>, Option<String>)>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    pub date: String,
    #[serde(default)]
    pub reason: String,
    pub environments: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
struct HolidayDay {
    environments: Vec<String>,
    entries: Vec<Holiday>,
}

// ---------------------------------------------------------------------------
// The store

#[derive(Clone)]
pub struct GateStore {
    pool: RedisPool,
    keys: GateKeys,
    settings: GateSettings,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl GateStore {
    pub fn new(pool: RedisPool, keys: &Keys, settings: GateSettings) -> Self {
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
        let mut conn = self.pool.get().await?;
        let raw: String = inv.invoke_async(&mut conn).await?;
        let v: Value =
            serde_json::from_str(&raw).map_err(|e| GateError::Reply(format!("{e}: {raw}")))?;
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
                other => GateError::Reply(format!("unknown error {other}")),
            });
        }
        Ok(v)
    }

    fn is_stale(v: &Value) -> bool {
        v.get("stale").and_then(Value::as_bool) == Some(true)
    }

    async fn service_rec(&self, name: &str) -> Result<Option<ServiceRec>, GateError> {
        let mut conn = self.pool.get().await?;
        let raw: Option<String> = conn.hget(self.keys.services(), name).await?;
        raw.map(|r| serde_json::from_str(&r).map_err(|e| GateError::Reply(e.to_string())))
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
        for _ in 0..STALE_RETRIES {
            let Some(rec) = self.service_rec(name).await? else {
                return Err(GateError::ServiceNotFound {
                    service: name.into(),
                });
            };
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
            let v = self.run(&inv).await?;
            if Self::is_stale(&v) {
                continue;
            }
            return self.service_view(name, v, now);
        }
        Err(GateError::Contended)
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
        let raw: Raw = serde_json::from_value(v).map_err(|e| GateError::Reply(e.to_string()))?;
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
        let mut conn = self.pool.get().await?;
        let all: BTreeMap<String, String> = conn.hgetall(self.keys.services()).await?;
        all.into_iter()
            .map(|(name, raw)| {
                let rec: ServiceRec =
                    serde_json::from_str(&raw).map_err(|e| GateError::Reply(e.to_string()))?;
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
        for _ in 0..STALE_RETRIES {
            let Some(rec) = self.service_rec(name).await? else {
                return Err(GateError::ServiceNotFound {
                    service: name.into(),
                });
            };
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
            let v = self.run(&inv).await?;
            if Self::is_stale(&v) {
                continue;
            }
            return Ok(new_name.to_owned());
        }
        Err(GateError::Contended)
    }

    /// Delete a service and its gates; tickets lose those gates.
    pub async fn delete_service(&self, name: &str, group: Option<&str>) -> Result<(), GateError> {
        for _ in 0..STALE_RETRIES {
            let Some(rec) = self.service_rec(name).await? else {
                return Err(GateError::ServiceNotFound {
                    service: name.into(),
                });
            };
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
            let v = self.run(&inv).await?;
            if !Self::is_stale(&v) {
                return Ok(());
            }
        }
        Err(GateError::Contended)
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
        let v = self.run(&inv).await?;
        let status = match v.get("status").and_then(Value::as_str) {
            Some("ok") => TasStatus::Ok,
            Some("queued") => TasStatus::Queued,
            Some("denied") => TasStatus::Denied,
            other => return Err(GateError::Reply(format!("status {other:?}"))),
        };
        let ticket = match v.get("ticket") {
            Some(t) => Some(TicketView::from(
                serde_json::from_value::<TicketRec>(t.clone())
                    .map_err(|e| GateError::Reply(e.to_string()))?,
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
        let mut conn = self.pool.get().await?;
        let raw: Option<String> = conn.hget(self.keys.tickets(), id).await?;
        let t: TicketRec = match raw {
            Some(r) => serde_json::from_str(&r).map_err(|e| GateError::Reply(e.to_string()))?,
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
        for _ in 0..STALE_RETRIES {
            let raw: Option<String> = {
                let mut conn = self.pool.get().await?;
                conn.hget(self.keys.tickets(), id).await?
            };
            let gates: Vec<String> = match raw {
                Some(r) => {
                    serde_json::from_str::<TicketRec>(&r)
                        .map_err(|e| GateError::Reply(e.to_string()))?
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
            let v = self.run(&inv).await?;
            if Self::is_stale(&v) {
                continue;
            }
            return Ok(v.get("released").and_then(Value::as_bool) == Some(true));
        }
        Err(GateError::Contended)
    }

    /// Expire every ticket whose time has passed, at most `batch` per round.
    /// Returns how many tickets were removed.
    pub async fn sweep_expired(&self, batch: usize) -> Result<usize, GateError> {
        let mut removed = 0;
        loop {
            let due: Vec<String> = {
                let mut conn = self.pool.get().await?;
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
        let mut conn = self.pool.get().await?;
        let (rec, exists, entries): (Option<String>, bool, Vec<String>) = redis::pipe()
            .atomic()
            .hget(self.keys.services(), name)
            .exists(self.keys.state(name, env))
            .lrange(self.keys.history(name, env), 0, limit.max(1) as isize - 1)
            .query_async(&mut conn)
            .await?;
        let rec: ServiceRec = match rec {
            Some(r) => serde_json::from_str(&r).map_err(|e| GateError::Reply(e.to_string()))?,
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
            let json = serde_json::to_string(day).map_err(|e| GateError::Reply(e.to_string()))?;
            inv.arg(*date).arg(json);
        }
        self.run(&inv).await.map(drop)
    }

    /// Holidays from `from` on, sorted by date.
    pub async fn list_holidays(&self, from: NaiveDate) -> Result<Vec<Holiday>, GateError> {
        let mut conn = self.pool.get().await?;
        let all: BTreeMap<String, String> = conn.hgetall(self.keys.holidays()).await?;
        let from = from.format("%Y-%m-%d").to_string();
        let mut out = Vec::new();
        for (date, raw) in all.range(from..) {
            let day: HolidayDay =
                serde_json::from_str(raw).map_err(|e| GateError::Reply(e.to_string()))?;
            debug_assert!(day.entries.iter().all(|h| &h.date == date));
            out.extend(day.entries);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_are_checked() {
        assert!(name_problem("svc_1-a").is_none());
        assert!(name_problem("").is_some());
        assert!(name_problem("a.b").unwrap().contains("dots"));
        assert!(name_problem("a/b").is_some());
        assert!(name_problem(&"x".repeat(NAME_MAX + 1)).is_some());
    }

    #[test]
    fn windows_open_only_inside_a_rule() {
        let w = BuildWindows::parse_arg(
            r#"{"live": {"week": {"days_range": [0, 3], "hours_range": [8, 16]},
                         "fri": {"days_range": [4, 4], "hours_range": [8, 14]}}}"#,
        )
        .unwrap();
        // 2026-11-23 is a Monday.
        let at = |d, h| Utc.with_ymd_and_hms(2026, 11, d, h, 30, 0).unwrap();
        assert!(!w.closed("live", at(23, 8)));
        assert!(w.closed("live", at(23, 7)));
        assert!(w.closed("live", at(23, 16)));
        assert!(!w.closed("live", at(27, 13)));
        assert!(w.closed("live", at(27, 14)));
        assert!(w.closed("live", at(28, 10)), "saturday");
        assert!(!w.closed("develop", at(28, 3)), "no rules: never closed");
    }

    #[test]
    fn windows_reject_bad_ranges() {
        for bad in [
            r#"{"live": {"x": {"days_range": [3, 1], "hours_range": [8, 16]}}}"#,
            r#"{"live": {"x": {"days_range": [0, 7], "hours_range": [8, 16]}}}"#,
            r#"{"live": {"x": {"days_range": [0, 1], "hours_range": [16, 8]}}}"#,
            r#"{"live": {"x": {"days_range": [0, 1], "hours_range": [0, 25]}}}"#,
            r#"{"live": {"x": {"days": [0, 1]}}}"#,
            "not json",
        ] {
            assert!(BuildWindows::parse_arg(bad).is_err(), "{bad}");
        }
    }
}
