//! The gates family's model: limits and names, settings, what the API
//! shows (views), what callers ask for, and the records the scripts store.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::config::GateOpts;
use super::windows::BuildWindows;
use crate::platform::time::iso_ms;

/// Longest service, group or environment name.
pub const NAME_MAX: usize = 100;
/// Most gates in one test-and-set request.
pub const TAS_MAX_GATES: usize = 64;
/// Most environments of one service.
pub const ENVS_MAX: usize = 64;
/// Most holidays in one replace-all request.
pub const HOLIDAYS_MAX: usize = 1000;
/// How often an operation is repeated when its inputs changed under it.
pub(crate) const STALE_RETRIES: usize = 16;

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

#[derive(Clone, Debug)]
pub struct GateSettings {
    pub namespace: String,
    pub queue_ttl: Duration,
    pub grant_ttl: Duration,
    pub history_len: u32,
    pub windows: BuildWindows,
    /// How long a released or expired ticket id stays refused.
    pub gone_window: Duration,
}

impl From<&GateOpts> for GateSettings {
    fn from(o: &GateOpts) -> Self {
        Self {
            namespace: o.gate_namespace.clone(),
            queue_ttl: o.gate_queue_ttl,
            grant_ttl: o.gate_grant_ttl,
            history_len: o.gate_history_len,
            windows: o.gate_windows.clone(),
            gone_window: o.gate_gone_window,
        }
    }
}

/// cjson encodes an empty Lua table as `{}`; read that as an empty list.
pub(crate) fn lenient_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
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
pub(crate) struct ServiceRec {
    pub(crate) group: String,
    #[serde(deserialize_with = "lenient_vec")]
    pub(crate) environments: Vec<String>,
    #[serde(default)]
    pub(crate) created: f64,
}

#[derive(Deserialize, Debug, Clone)]
pub(crate) struct TicketRec {
    pub(crate) id: String,
    #[serde(deserialize_with = "lenient_vec", default)]
    pub(crate) gates: Vec<String>,
    pub(crate) status: String,
    pub(crate) created: f64,
    pub(crate) updated: f64,
    pub(crate) expires: f64,
    #[serde(default)]
    pub(crate) fence: Option<f64>,
    #[serde(default)]
    pub(crate) link: Option<String>,
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
    /// The ticket to re-send, or the id under which to create a new one
    /// (client-chosen, so a retry of a lost answer finds the same ticket);
    /// `None`: a new ticket with a server-chosen id.
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
pub(crate) struct HolidayDay {
    pub(crate) environments: Vec<String>,
    pub(crate) entries: Vec<Holiday>,
}
