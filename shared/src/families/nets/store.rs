use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use redis::AsyncCommands;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::Digest;

use super::keys::NetKeys;
use super::scripts;
use super::{Action, Compiled};
use crate::platform::keys::Keys;
use crate::platform::redis::{PoolError, Redis as RedisPool};
use crate::platform::time::iso_ms;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("net not found")]
    NotFound,
    #[error("place not found")]
    PlaceNotFound,
    #[error("no token colour {0} in this net")]
    ColorNotFound(i64),
    #[error("colour belongs to colour group {0}")]
    GroupMismatch(i64),
    #[error("a net with this key exists with another definition")]
    ExistsDifferent,
    #[error("the net has failed: {0}")]
    Failed(String),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis pool: {0}")]
    Pool(#[from] PoolError),
    #[error("unexpected script reply: {0}")]
    Reply(String),
}

/// What a token put did.
#[derive(Debug, Clone, Serialize)]
pub struct PutOutcome {
    pub color: i64,
    pub color_group: i64,
    pub duplicate: bool,
    /// A token of this colour was already in the place; it was kept.
    pub already_present: bool,
    pub fired: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NetSummary {
    pub id: String,
    pub status: String,
    pub active: bool,
    pub created: String,
}

#[derive(Clone)]
pub struct NetStore {
    pool: RedisPool,
    keys: Keys,
    bound: u32,
    retention: Duration,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A net id (server- or client-chosen): 1–100 letters, digits, '-', '_'.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl NetStore {
    pub fn new(pool: RedisPool, keys: Keys, bound: u32, retention: Duration) -> Self {
        Self {
            pool,
            keys,
            bound,
            retention,
        }
    }

    pub fn keys(&self, id: &str) -> NetKeys {
        self.keys.net(id)
    }

    fn invoke<'a>(&self, k: &NetKeys, mode: &str, id: &str) -> redis::ScriptInvocation<'a> {
        let mut inv = scripts::NET.prepare_invoke();
        inv.key(&k.meta)
            .key(&k.marking)
            .key(&k.groups)
            .key(&k.fired)
            .key(&k.seen)
            .key(&k.agenda)
            .key(&k.stream)
            .key(&k.index)
            .key(&k.begins)
            .arg(mode)
            .arg(id)
            .arg(self.bound)
            .arg(ms(self.retention));
        inv
    }

    /// Firings and failures of one call, for /metrics.
    fn count(v: &Value) {
        let fired = v["fired"].as_u64().unwrap_or(0);
        if fired > 0 {
            metrics::counter!("switchyard_net_transitions_fired_total").increment(fired);
        }
        if v["status"].as_str() == Some("failed") {
            metrics::counter!("switchyard_nets_failed_total").increment(1);
        }
    }

    async fn run(&self, inv: &redis::ScriptInvocation<'_>) -> Result<Value, NetError> {
        let mut conn = self.pool.get().await?;
        let raw: String = inv.invoke_async(&mut conn).await?;
        let v: Value =
            serde_json::from_str(&raw).map_err(|e| NetError::Reply(format!("{e}: {raw}")))?;
        match v.get("err").and_then(Value::as_str) {
            None => Ok(v),
            Some("net_not_found") => Err(NetError::NotFound),
            Some("place_not_found") => Err(NetError::PlaceNotFound),
            Some("color_not_found") => Err(NetError::ColorNotFound(-1)),
            Some("color_group_mismatch") => {
                Err(NetError::GroupMismatch(v["group"].as_i64().unwrap_or(-1)))
            }
            Some("exists_different") => Err(NetError::ExistsDifferent),
            Some("net_failed") => Err(NetError::Failed("no tokens are accepted".into())),
            Some(other) => Err(NetError::Reply(other.to_owned())),
        }
    }

    /// Store a validated net and fire its initial marking. Returns false
    /// when the same net already existed under this id.
    pub async fn create(
        &self,
        id: &str,
        compiled: &Compiled,
        public_url: &str,
        active: bool,
        policy: &str,
    ) -> Result<bool, NetError> {
        let def = serde_json::to_string(compiled).map_err(|e| NetError::Reply(e.to_string()))?;
        let hash = format!("{:x}", sha2::Sha256::digest(def.as_bytes()));
        let k = self.keys(id);
        let mut inv = self.invoke(&k, "create", id);
        inv.arg(def)
            .arg(public_url.trim_end_matches('/'))
            .arg(if active { "1" } else { "0" })
            .arg(hash)
            .arg(policy);
        let v = self.run(&inv).await?;
        Self::count(&v);
        Ok(v.get("exists").and_then(Value::as_bool) != Some(true))
    }

    fn put_outcome(v: &Value) -> PutOutcome {
        Self::count(v);
        PutOutcome {
            color: v["color"].as_i64().unwrap_or(0),
            color_group: v["color_group"].as_i64().unwrap_or(0),
            duplicate: v["duplicate"].as_bool().unwrap_or(false),
            already_present: v["present"].as_bool().unwrap_or(false),
            fired: v["fired"].as_u64().unwrap_or(0),
            status: v["status"].as_str().map(str::to_owned),
        }
    }

    /// Put a token of `color` (optionally checking its group) into `place`.
    pub async fn put(
        &self,
        id: &str,
        place: usize,
        color: i64,
        group: Option<i64>,
        data: &str,
    ) -> Result<PutOutcome, NetError> {
        let k = self.keys(id);
        let mut inv = self.invoke(&k, "put", id);
        inv.arg(place)
            .arg(color)
            .arg(group.map(|g| g.to_string()).unwrap_or_default())
            .arg(data);
        match self.run(&inv).await {
            Err(NetError::ColorNotFound(_)) => Err(NetError::ColorNotFound(color)),
            r => r.map(|v| Self::put_outcome(&v)),
        }
    }

    /// Put a token of a new colour in a new root group of size 1.
    pub async fn post(&self, id: &str, place: usize, data: &str) -> Result<PutOutcome, NetError> {
        let k = self.keys(id);
        let mut inv = self.invoke(&k, "post", id);
        inv.arg(place).arg(data);
        self.run(&inv).await.map(|v| Self::put_outcome(&v))
    }

    /// Fire what is enabled (a chain continued as stream work).
    pub async fn cont(&self, id: &str) -> Result<u64, NetError> {
        let k = self.keys(id);
        let inv = self.invoke(&k, "continue", id);
        self.run(&inv)
            .await
            .map(|v| v["fired"].as_u64().unwrap_or(0))
    }

    pub async fn set_active(&self, id: &str, active: bool) -> Result<(), NetError> {
        let k = self.keys(id);
        if active {
            let inv = self.invoke(&k, "resume", id);
            return self.run(&inv).await.map(|v| Self::count(&v));
        }
        let mut conn = self.pool.get().await?;
        let n: i64 = scripts::NET_PAUSE
            .key(&k.meta)
            .invoke_async(&mut conn)
            .await?;
        if n == 0 {
            return Err(NetError::NotFound);
        }
        Ok(())
    }

    pub async fn delete(&self, id: &str) -> Result<(), NetError> {
        let k = self.keys(id);
        let mut conn = self.pool.get().await?;
        let n: i64 = scripts::NET_DELETE
            .key(&k.meta)
            .key(&k.marking)
            .key(&k.groups)
            .key(&k.fired)
            .key(&k.seen)
            .key(&k.agenda)
            .key(&k.index)
            .key(&k.begins)
            .arg(id)
            .invoke_async(&mut conn)
            .await?;
        if n == 0 {
            return Err(NetError::NotFound);
        }
        Ok(())
    }

    pub async fn fail(&self, id: &str, reason: &str) -> Result<bool, NetError> {
        let k = self.keys(id);
        let mut conn = self.pool.get().await?;
        let n: i64 = scripts::NET_FAIL
            .key(&k.meta)
            .arg(reason)
            .invoke_async(&mut conn)
            .await?;
        if n == 1 {
            metrics::counter!("switchyard_nets_failed_total").increment(1);
        }
        Ok(n == 1)
    }

    pub async fn exists(&self, id: &str) -> Result<bool, NetError> {
        let mut conn = self.pool.get().await?;
        Ok(conn.exists(self.keys(id).meta).await?)
    }

    /// Meta fields and the compiled definition.
    pub async fn load(&self, id: &str) -> Result<(HashMap<String, String>, Compiled), NetError> {
        let mut conn = self.pool.get().await?;
        let mut meta: HashMap<String, String> = conn.hgetall(self.keys(id).meta).await?;
        let def = meta.remove("def").ok_or(NetError::NotFound)?;
        let compiled: Compiled =
            serde_json::from_str(&def).map_err(|e| NetError::Reply(e.to_string()))?;
        Ok((meta, compiled))
    }

    /// The marking: place index → colour → token data; and the groups.
    pub async fn marking(
        &self,
        id: &str,
    ) -> Result<(BTreeMap<usize, BTreeMap<i64, Value>>, BTreeMap<i64, Value>), NetError> {
        let k = self.keys(id);
        let mut conn = self.pool.get().await?;
        let (m, g): (HashMap<String, String>, HashMap<String, String>) = redis::pipe()
            .atomic()
            .hgetall(&k.marking)
            .hgetall(&k.groups)
            .query_async(&mut conn)
            .await?;
        let mut out: BTreeMap<usize, BTreeMap<i64, Value>> = BTreeMap::new();
        for (f, data) in m {
            if let Some((p, c)) = f.split_once(':')
                && let (Ok(p), Ok(c)) = (p.parse(), c.parse())
            {
                out.entry(p)
                    .or_default()
                    .insert(c, serde_json::from_str(&data).unwrap_or(Value::Null));
            }
        }
        let groups = g
            .into_iter()
            .filter_map(|(k, v)| Some((k.parse().ok()?, serde_json::from_str(&v).ok()?)))
            .collect();
        Ok((out, groups))
    }

    /// The net: status, counters, places (with token counts) and transitions.
    pub async fn view(&self, id: &str) -> Result<Value, NetError> {
        let (meta, c) = self.load(id).await?;
        let (marking, groups) = self.marking(id).await?;
        let n = |k: &str| meta.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let places: Vec<Value> = c
            .places
            .iter()
            .enumerate()
            .map(|(i, name)| json!({"index": i, "name": name, "tokens": marking.get(&i).map_or(0, BTreeMap::len)}))
            .collect();
        let transitions: Vec<Value> = c
            .transitions
            .iter()
            .enumerate()
            .map(|(i, t)| {
                json!({"index": i, "name": t.name, "type": if t.barrier { "barrier" } else { "basic" },
                       "inputs": t.inputs.iter().map(|&p| &c.places[p]).collect::<Vec<_>>(),
                       "outputs": t.outputs.iter().map(|&p| &c.places[p]).collect::<Vec<_>>(),
                       "action": t.action})
            })
            .collect();
        Ok(json!({
            "id": id,
            "net_key": id,
            "status": meta.get("status"),
            "active": meta.get("active").map(String::as_str) == Some("1"),
            "failure": meta.get("failure"),
            "created": iso_ms(n("created")),
            "updated": iso_ms(n("updated")),
            "fired": n("fired"),
            "notifications": n("notifications"),
            "expires_at": meta.get("expires_at").and_then(|v| v.parse().ok()).map(iso_ms),
            "places": places,
            "transitions": transitions,
            "color_groups": groups.len(),
        }))
    }

    /// Which transitions are enabled, and what the waiting ones wait for.
    pub async fn explain(&self, id: &str) -> Result<Value, NetError> {
        let (meta, c) = self.load(id).await?;
        let (marking, groups) = self.marking(id).await?;
        let mut out = Vec::new();
        for (ti, t) in c.transitions.iter().enumerate() {
            let mut colors: Vec<i64> = t
                .inputs
                .iter()
                .flat_map(|p| marking.get(p).into_iter().flat_map(|m| m.keys().copied()))
                .collect();
            colors.sort_unstable();
            colors.dedup();
            let mut enabled = vec![];
            let mut waiting = vec![];
            for col in colors {
                let missing: Vec<&str> = t
                    .inputs
                    .iter()
                    .filter(|p| !marking.get(p).is_some_and(|m| m.contains_key(&col)))
                    .map(|&p| c.places[p].as_str())
                    .collect();
                if missing.is_empty() {
                    enabled.push(json!({"color": col}));
                } else {
                    waiting.push(json!({"color": col, "missing": missing}));
                }
            }
            let mut entry = json!({"transition": ti, "name": t.name, "action": t.action.name()});
            if t.barrier {
                // Per group: how many colours are complete in every input.
                let mut per_group: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
                for (&g, gv) in &groups {
                    let (b, e) = (
                        gv["begin"].as_i64().unwrap_or(0),
                        gv["end"].as_i64().unwrap_or(0),
                    );
                    let complete = (b..e)
                        .filter(|col| {
                            t.inputs
                                .iter()
                                .all(|p| marking.get(p).is_some_and(|m| m.contains_key(col)))
                        })
                        .count() as i64;
                    if complete > 0 {
                        per_group.insert(g, (complete, e - b));
                    }
                }
                entry["groups"] = json!(per_group
                    .iter()
                    .map(|(g, (have, need))| json!({"group": g, "complete_colors": have, "group_size": need}))
                    .collect::<Vec<_>>());
            } else {
                entry["enabled"] = Value::Array(enabled);
                entry["waiting"] = Value::Array(waiting);
            }
            out.push(entry);
        }
        let mut stuck = vec![];
        if meta.get("active").map(String::as_str) != Some("1") {
            stuck.push("the net is paused (PATCH {\"active\": true} resumes it)".to_owned());
        }
        if meta.get("status").map(String::as_str) == Some("failed") {
            stuck.push(format!(
                "the net failed: {}",
                meta.get("failure").cloned().unwrap_or_default()
            ));
        }
        Ok(json!({"id": id, "status": meta.get("status"), "notes": stuck, "transitions": out}))
    }

    /// Graphviz DOT with the current marking.
    pub async fn dot(&self, id: &str) -> Result<String, NetError> {
        let (_, c) = self.load(id).await?;
        let (marking, _) = self.marking(id).await?;
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut s = format!("digraph \"{}\" {{\n  rankdir=LR;\n", esc(id));
        for (i, p) in c.places.iter().enumerate() {
            let n = marking.get(&i).map_or(0, BTreeMap::len);
            let label = if n > 0 {
                format!("{}\\n● {n}", esc(p))
            } else {
                esc(p)
            };
            s.push_str(&format!("  p{i} [shape=circle, label=\"{label}\"];\n"));
        }
        for (i, t) in c.transitions.iter().enumerate() {
            let name = t.name.clone().unwrap_or_else(|| format!("t{i}"));
            let shape = if t.barrier { "box, style=bold" } else { "box" };
            s.push_str(&format!(
                "  t{i} [shape={shape}, label=\"{}\\n{}\"];\n",
                esc(&name),
                t.action.name()
            ));
            for p in &t.inputs {
                s.push_str(&format!("  p{p} -> t{i};\n"));
            }
            for p in &t.outputs {
                s.push_str(&format!("  t{i} -> p{p};\n"));
            }
            if let Action::Notify {
                response_places, ..
            }
            | Action::CreateColorGroup {
                response_places, ..
            } = &t.action
            {
                for (name, p) in response_places {
                    s.push_str(&format!(
                        "  t{i} -> p{p} [style=dashed, label=\"{}\"];\n",
                        esc(name)
                    ));
                }
            }
        }
        s.push_str("}\n");
        Ok(s)
    }

    /// Nets, newest first, `limit` per page from `cursor` ("ms:id").
    pub async fn list(
        &self,
        limit: usize,
        cursor: Option<(i64, String)>,
    ) -> Result<(Vec<NetSummary>, Option<String>), NetError> {
        let mut conn = self.pool.get().await?;
        let indexes = (0..self.keys.shards()).map(|s| (s, self.keys.net_index(s)));
        let cands =
            crate::paging::newest_first(&mut conn, indexes, limit + 1, cursor.as_ref()).await?;
        let mut out = vec![];
        let mut next = None;
        for (created, id, _) in cands {
            if out.len() == limit {
                next = Some(crate::paging::cursor(created, &id));
                break;
            }
            let k = self.keys(&id);
            let f: (Option<String>, Option<String>) = redis::cmd("HMGET")
                .arg(&k.meta)
                .arg("status")
                .arg("active")
                .query_async(&mut conn)
                .await?;
            match f {
                (Some(status), active) => out.push(NetSummary {
                    id,
                    status,
                    active: active.as_deref() == Some("1"),
                    created: iso_ms(created),
                }),
                (None, _) => {
                    let _: i64 = conn.zrem(&k.index, &id).await?;
                }
            }
        }
        Ok((out, next))
    }
}
