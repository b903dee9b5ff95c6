//! The nets store: every state change is one call of the firing script
//! (`lua/nets/fire.lua`) or of a small script beside it; reads assemble the
//! typed views of [`super::views`].

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;

use super::keys::NetKeys;
use super::scripts;
use super::views::{ColorGroup, ExplainView, Marking, NetSummary, NetView, PlacesView};
use super::{Action, Compiled};
use crate::platform::errors::StoreError;
use crate::platform::keys::Keys;
use crate::platform::redis::Redis as RedisPool;
use crate::platform::reply::{self, Refused};
use crate::platform::time::{iso_ms, ms};
use crate::platform::trace;

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
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<redis::RedisError> for NetError {
    fn from(e: redis::RedisError) -> Self {
        Self::Store(e.into())
    }
}

impl From<Refused> for NetError {
    fn from(r: Refused) -> Self {
        match r.code.as_str() {
            "net_not_found" => Self::NotFound,
            "place_not_found" => Self::PlaceNotFound,
            "color_not_found" => Self::ColorNotFound(-1),
            "color_group_mismatch" => Self::GroupMismatch(r.reply["group"].as_i64().unwrap_or(-1)),
            "exists_different" => Self::ExistsDifferent,
            "net_failed" => Self::Failed("no tokens are accepted".into()),
            other => Self::Store(StoreError::Reply(other.to_owned())),
        }
    }
}

/// What the firing script answers (see its `Returns:`); absent fields are
/// zero or false.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FireReply {
    fired: u64,
    status: Option<String>,
    exists: bool,
    color: i64,
    color_group: i64,
    duplicate: bool,
    present: bool,
}

impl FireReply {
    /// Firings and failures of one call, for /metrics.
    fn count(&self) {
        if self.fired > 0 {
            metrics::counter!("switchyard_net_transitions_fired_total").increment(self.fired);
        }
        if self.status.as_deref() == Some("failed") {
            metrics::counter!("switchyard_nets_failed_total").increment(1);
        }
    }
}

/// What a token put did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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

impl From<FireReply> for PutOutcome {
    fn from(r: FireReply) -> Self {
        r.count();
        Self {
            color: r.color,
            color_group: r.color_group,
            duplicate: r.duplicate,
            already_present: r.present,
            fired: r.fired,
            status: r.status,
        }
    }
}

/// Most index entries one `GET /v1/nets` examines (live or stale).
pub const LIST_BUDGET: usize = 1000;

/// A net's meta fields (status, active, counters, times).
pub type Meta = HashMap<String, String>;

#[derive(Clone)]
pub struct NetStore {
    pool: RedisPool,
    keys: Keys,
    bound: u32,
    retention: Duration,
}

/// A small script's answer: 1 done, 0 no such net.
fn found(n: i64) -> Result<(), NetError> {
    if n == 0 {
        return Err(NetError::NotFound);
    }
    Ok(())
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

    /// Call the engine with the mode's arguments in `inv`; the
    /// [current](trace::current) origin goes last, carried by the
    /// notifications the call queues.
    async fn run(&self, mut inv: redis::ScriptInvocation<'_>) -> Result<FireReply, NetError> {
        inv.arg(trace::current_text());
        let mut conn = self.pool.conn();
        let raw: String = inv.invoke_async(&mut conn).await?;
        Ok(reply::parse::<FireReply>(&raw)??)
    }

    /// Store a validated net and fire its initial marking. Returns false
    /// when the same net already existed under this id.
    #[tracing::instrument(skip_all, fields(net_id = %id), err(level = "debug"))]
    pub async fn create(
        &self,
        id: &str,
        compiled: &Compiled,
        public_url: &str,
        active: bool,
        policy: &str,
    ) -> Result<bool, NetError> {
        let def = serde_json::to_string(compiled).map_err(|e| StoreError::Encode(e.to_string()))?;
        let hash = format!("{:x}", sha2::Sha256::digest(def.as_bytes()));
        let k = self.keys(id);
        let mut inv = self.invoke(&k, "create", id);
        inv.arg(def)
            .arg(public_url.trim_end_matches('/'))
            .arg(if active { "1" } else { "0" })
            .arg(hash)
            .arg(policy);
        let r = self.run(inv).await?;
        r.count();
        Ok(!r.exists)
    }

    /// Put a token of `color` (optionally checking its group) into `place`.
    #[tracing::instrument(skip_all, fields(net_id = %id), err(level = "debug"))]
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
        match self.run(inv).await {
            Err(NetError::ColorNotFound(_)) => Err(NetError::ColorNotFound(color)),
            r => r.map(PutOutcome::from),
        }
    }

    /// Put a token of a new colour in a new root group of size 1.
    #[tracing::instrument(skip_all, fields(net_id = %id), err(level = "debug"))]
    pub async fn post(&self, id: &str, place: usize, data: &str) -> Result<PutOutcome, NetError> {
        let k = self.keys(id);
        let mut inv = self.invoke(&k, "post", id);
        inv.arg(place).arg(data);
        self.run(inv).await.map(PutOutcome::from)
    }

    /// Fire what is enabled (a chain continued as stream work).
    #[tracing::instrument(skip_all, fields(net_id = %id), err(level = "debug"))]
    pub async fn cont(&self, id: &str) -> Result<u64, NetError> {
        let k = self.keys(id);
        let inv = self.invoke(&k, "continue", id);
        self.run(inv).await.map(|r| r.fired)
    }

    /// Pause, or resume (firing what is enabled).
    #[tracing::instrument(skip_all, fields(net_id = %id), err(level = "debug"))]
    pub async fn set_active(&self, id: &str, active: bool) -> Result<(), NetError> {
        let k = self.keys(id);
        if active {
            let inv = self.invoke(&k, "resume", id);
            return self.run(inv).await.map(|r| r.count());
        }
        let mut conn = self.pool.conn();
        let n: i64 = scripts::NET_PAUSE
            .key(&k.meta)
            .invoke_async(&mut conn)
            .await?;
        found(n)
    }

    /// Delete the net and every key of it.
    #[tracing::instrument(skip_all, fields(net_id = %id), err(level = "debug"))]
    pub async fn delete(&self, id: &str) -> Result<(), NetError> {
        let k = self.keys(id);
        let mut conn = self.pool.conn();
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
        found(n)
    }

    /// Mark the net failed; false when there is no such net or it had failed already.
    #[tracing::instrument(skip_all, fields(net_id = %id), err(level = "debug"))]
    pub async fn fail(&self, id: &str, reason: &str) -> Result<bool, NetError> {
        let k = self.keys(id);
        let mut conn = self.pool.conn();
        let n: i64 = scripts::NET_FAIL
            .key(&k.meta)
            .key(&k.marking)
            .key(&k.groups)
            .key(&k.fired)
            .key(&k.seen)
            .key(&k.agenda)
            .key(&k.begins)
            .arg(reason)
            .arg(ms(self.retention))
            .invoke_async(&mut conn)
            .await?;
        if n == 1 {
            metrics::counter!("switchyard_nets_failed_total").increment(1);
        }
        Ok(n == 1)
    }

    #[tracing::instrument(skip_all, fields(net_id = %id), err(level = "debug"))]
    pub async fn exists(&self, id: &str) -> Result<bool, NetError> {
        let mut conn = self.pool.conn();
        Ok(conn.exists(self.keys(id).meta).await?)
    }

    /// Meta fields and the compiled definition.
    #[tracing::instrument(skip_all, fields(net_id = %id), err(level = "debug"))]
    pub async fn load(&self, id: &str) -> Result<(Meta, Compiled), NetError> {
        let mut conn = self.pool.conn();
        let mut meta: Meta = conn.hgetall(self.keys(id).meta).await?;
        let def = meta.remove("def").ok_or(NetError::NotFound)?;
        let compiled: Compiled =
            serde_json::from_str(&def).map_err(|e| StoreError::Reply(e.to_string()))?;
        Ok((meta, compiled))
    }

    /// The marking: place index → colour → token data; and the groups.
    #[tracing::instrument(skip_all, fields(net_id = %id), err(level = "debug"))]
    pub async fn marking(&self, id: &str) -> Result<Marking, NetError> {
        let k = self.keys(id);
        let mut conn = self.pool.conn();
        let (m, g): (HashMap<String, String>, HashMap<String, String>) = redis::pipe()
            .atomic()
            .hgetall(&k.marking)
            .hgetall(&k.groups)
            .query_async(&mut conn)
            .await?;
        let mut tokens: BTreeMap<usize, BTreeMap<i64, Value>> = BTreeMap::new();
        for (f, data) in m {
            if let Some((p, c)) = f.split_once(':')
                && let (Ok(p), Ok(c)) = (p.parse(), c.parse())
            {
                tokens
                    .entry(p)
                    .or_default()
                    .insert(c, serde_json::from_str(&data).unwrap_or(Value::Null));
            }
        }
        let groups = g
            .into_iter()
            .filter_map(|(k, v)| {
                Some((
                    k.parse().ok()?,
                    serde_json::from_str::<ColorGroup>(&v).ok()?,
                ))
            })
            .collect();
        Ok(Marking { tokens, groups })
    }

    /// Meta, definition and marking: what every view is made of.
    async fn snapshot(&self, id: &str) -> Result<(Meta, Compiled, Marking), NetError> {
        let (meta, c) = self.load(id).await?;
        Ok((meta, c, self.marking(id).await?))
    }

    /// The net: status, counters, places (with token counts) and transitions.
    #[tracing::instrument(skip_all, fields(net_id = %id), err(level = "debug"))]
    pub async fn view(&self, id: &str) -> Result<NetView, NetError> {
        let (meta, c, marking) = self.snapshot(id).await?;
        let mut view = NetView::new(id, &meta, &c, &marking);
        if view.expires_at.is_none() {
            // A finished net carries its retention as a TTL on its keys.
            let mut conn = self.pool.conn();
            let ttl: i64 = conn.pttl(self.keys(id).meta).await?;
            if ttl > 0 {
                view.expires_at = Some(iso_ms(crate::platform::time::now_ms() + ttl));
            }
        }
        Ok(view)
    }

    /// The tokens of every place, with their data, and the colour groups.
    #[tracing::instrument(skip_all, fields(net_id = %id), err(level = "debug"))]
    pub async fn places(&self, id: &str) -> Result<PlacesView, NetError> {
        let (_, c, marking) = self.snapshot(id).await?;
        Ok(PlacesView::new(&c, marking))
    }

    /// Which transitions are enabled, and what the waiting ones wait for.
    #[tracing::instrument(skip_all, fields(net_id = %id), err(level = "debug"))]
    pub async fn explain(&self, id: &str) -> Result<ExplainView, NetError> {
        let (meta, c, marking) = self.snapshot(id).await?;
        Ok(ExplainView::new(id, &meta, &c, &marking))
    }

    /// Graphviz DOT with the current marking: places are circles labelled
    /// with their token count (class `place marked` when they hold
    /// tokens), transitions boxes (bold for barriers), response places
    /// dashed edges named by the response.
    #[tracing::instrument(skip_all, fields(net_id = %id), err(level = "debug"))]
    pub async fn dot(&self, id: &str) -> Result<String, NetError> {
        let (_, c, marking) = self.snapshot(id).await?;
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut s = format!("digraph \"{}\" {{\n  rankdir=LR;\n", esc(id));
        for (i, p) in c.places.iter().enumerate() {
            let n = marking.tokens.get(&i).map_or(0, BTreeMap::len);
            // `class` names the SVG group (a console restyles it).
            let (label, class) = if n > 0 {
                (format!("{}\\n● {n}", esc(p)), "place marked")
            } else {
                (esc(p), "place")
            };
            s.push_str(&format!(
                "  p{i} [shape=circle, label=\"{label}\", class=\"{class}\"];\n"
            ));
        }
        for (i, t) in c.transitions.iter().enumerate() {
            let name = t.name.clone().unwrap_or_else(|| format!("t{i}"));
            let shape = if t.barrier { "box, style=bold" } else { "box" };
            let class = if t.barrier {
                "transition barrier"
            } else {
                "transition"
            };
            s.push_str(&format!(
                "  t{i} [shape={shape}, label=\"{}\\n{}\", class=\"{class}\"];\n",
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

    /// Nets, newest first, `limit` per page from `cursor` ("ms:id"). Entries
    /// of expired nets are skipped (and dropped from the index) however many
    /// there are; at most [`LIST_BUDGET`] entries are examined per call, and
    /// the next cursor is returned whenever more may exist.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn list(
        &self,
        limit: usize,
        cursor: Option<(i64, String)>,
    ) -> Result<(Vec<NetSummary>, Option<String>), NetError> {
        let mut conn = self.pool.conn();
        let indexes = (0..self.keys.shards()).map(|s| (s, self.keys.net_index(s)));
        let mut it = crate::paging::NewestFirst::new(indexes, limit + 1, cursor.as_ref());
        let mut page = crate::paging::Page::new(limit, LIST_BUDGET);
        let next = loop {
            let (created, id, _) = match page.next(&mut it, &mut conn).await? {
                Ok(entry) => entry,
                Err(next) => break next,
            };
            let k = self.keys(&id);
            let f: (Option<String>, Option<String>) = redis::cmd("HMGET")
                .arg(&k.meta)
                .arg("status")
                .arg("active")
                .query_async(&mut conn)
                .await?;
            match f {
                (Some(status), active) => page.items.push(NetSummary {
                    id,
                    status,
                    active: active.as_deref() == Some("1"),
                    created: iso_ms(created),
                }),
                (None, _) => {
                    // Gone: drop its entry, unless it was created again.
                    crate::platform::indexes::drop_gone(
                        &self.pool,
                        &k.index,
                        &[(id.clone(), k.meta.clone(), created.to_string())],
                    )
                    .await?;
                }
            }
        };
        Ok((page.items, next))
    }
}
