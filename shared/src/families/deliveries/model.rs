//! The deliveries family's model: states, the record as the API shows it,
//! and what a worker passes to the store around one attempt.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use crate::platform::outbox::KIND;
use crate::platform::time::iso_ms;

/// Attempt log entries kept per delivery.
pub const ATTEMPT_LOG_CAP: u32 = 100;
/// The states a delivery goes through.
pub const STATES: [&str; 6] = [
    "pending",
    "in_flight",
    "succeeded",
    "failed_retrying",
    "dead",
    "cancelled",
];

/// What a listing keeps: every given condition must hold. Time bounds
/// are on the creation time (the index's order), so they also bound the
/// work a listing does; the other conditions are checked per record.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// One of [`STATES`].
    pub state: Option<String>,
    /// `host:port`, exactly.
    pub destination: Option<String>,
    /// A part of the URL (case-insensitive).
    pub url: Option<String>,
    /// The owner (`net:<id>`), exactly; or a family's callbacks with a
    /// trailing `:` (`net:`).
    pub owner: Option<String>,
    /// Created at or after (ms).
    pub since_ms: Option<i64>,
    /// Created before (ms).
    pub until_ms: Option<i64>,
}

impl DeliveryFilter {
    /// Does `v` pass the conditions checked per record?
    pub fn keeps(&self, v: &DeliveryView) -> bool {
        let url_ok = self.url.as_deref().is_none_or(|part| {
            v.url
                .to_ascii_lowercase()
                .contains(&part.to_ascii_lowercase())
        });
        let owner_ok = self.owner.as_deref().is_none_or(|o| {
            let own = v.owner.as_deref().unwrap_or("");
            if o.ends_with(':') {
                own.starts_with(o)
            } else {
                own == o
            }
        });
        self.state.as_deref().is_none_or(|s| s == v.state)
            && self
                .destination
                .as_deref()
                .is_none_or(|d| d == v.destination)
            && url_ok
            && owner_ok
    }
}

/// The timer member of a delivery's next attempt.
pub fn timer_member(id: &str) -> String {
    crate::platform::work::timer_member(KIND, id)
}

/// One attempt of a delivery, as the attempt log shows it.
#[derive(Serialize, Debug, Clone, utoipa::ToSchema)]
pub struct Attempt {
    pub at: String,
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_ms: u64,
}

/// A delivery as the API shows it.
#[derive(Serialize, Debug, Clone, utoipa::ToSchema)]
pub struct DeliveryView {
    pub id: String,
    pub state: String,
    pub url: String,
    pub method: String,
    pub destination: String,
    pub headers: Value,
    pub body: Value,
    pub policy: String,
    pub attempts: u32,
    pub created: String,
    pub updated: String,
    pub next_attempt_at: Option<String>,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    /// The `X-Request-Id` of the request that created it (sent with every
    /// attempt), when it came from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The entity whose callback this is (`net:<id>`, …), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<Attempt>>,
}

/// What a worker gets when it starts an attempt.
#[derive(Debug, Clone)]
pub enum Begin {
    Skip(String),
    Go(BeginAttempt),
}

#[derive(Debug, Clone)]
pub struct BeginAttempt {
    pub lease: i64,
    pub url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub policy: String,
    pub attempts: u32,
    pub created_ms: i64,
    pub owner: String,
    /// Where the delivery came from (request id, trace), sent with the attempt.
    pub origin: Option<crate::platform::trace::Origin>,
}

/// A work entry being dead-lettered, for [`DeliveryStore::kill`].
#[derive(Debug, Clone)]
pub struct DeadEntry<'a> {
    pub reason: &'a str,
    pub group: &'a str,
    pub entry_id: &'a str,
    pub deliveries: u64,
    pub dead_letters_max: u64,
}

/// The outcome of one attempt, for [`DeliveryStore::finish`].
#[derive(Debug, Clone)]
pub struct Finish<'a> {
    pub id: &'a str,
    pub lease: i64,
    /// `succeeded`, `retry` or `dead`.
    pub outcome: &'a str,
    pub status: Option<u16>,
    pub error: Option<&'a str>,
    pub latency_ms: u64,
    pub next_at_ms: i64,
    pub started_ms: i64,
    pub entry_id: &'a str,
    pub group: &'a str,
    /// Queue an `owner.succeeded` notice on success (the owner's family
    /// asked for them; see `OwnerHooks::wants_succeeded`).
    pub tell_owner_success: bool,
}

pub(crate) fn view(rec: HashMap<String, String>, log: Option<Vec<String>>) -> DeliveryView {
    let s = |k: &str| rec.get(k).cloned().unwrap_or_default();
    let n = |k: &str| rec.get(k).and_then(|v| v.parse::<i64>().ok());
    let state = s("state");
    DeliveryView {
        id: s("id"),
        url: s("url"),
        method: s("method"),
        destination: s("destination"),
        headers: serde_json::from_str(&s("headers")).unwrap_or(Value::Null),
        body: serde_json::from_str(&s("body")).unwrap_or(Value::Null),
        policy: s("policy"),
        attempts: n("attempts").unwrap_or(0) as u32,
        created: iso_ms(n("created").unwrap_or(0)),
        updated: iso_ms(n("updated").unwrap_or(0)),
        next_attempt_at: match state.as_str() {
            "pending" | "failed_retrying" => n("next_at").map(iso_ms),
            _ => None,
        },
        last_status: rec.get("last_status").and_then(|v| v.parse().ok()),
        last_error: rec.get("last_error").filter(|e| !e.is_empty()).cloned(),
        request_id: rec
            .get("trace")
            .and_then(|t| crate::platform::trace::Origin::decode(t))
            .map(|o| o.request_id),
        owner: rec.get("owner").filter(|o| !o.is_empty()).cloned(),
        state,
        attempt_log: log.map(|entries| {
            entries
                .iter()
                .filter_map(|e| serde_json::from_str::<Value>(e).ok())
                .map(|e| Attempt {
                    at: iso_ms(e.get("at").and_then(Value::as_f64).unwrap_or(0.0) as i64),
                    outcome: e
                        .get("outcome")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    status: e.get("status").and_then(Value::as_u64).map(|s| s as u16),
                    error: e.get("error").and_then(Value::as_str).map(str::to_owned),
                    latency_ms: e.get("latency_ms").and_then(Value::as_f64).unwrap_or(0.0) as u64,
                })
                .collect()
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn delivery(url: &str, owner: Option<&str>, state: &str) -> DeliveryView {
        let mut rec = HashMap::new();
        rec.insert("url".to_owned(), url.to_owned());
        rec.insert("state".to_owned(), state.to_owned());
        rec.insert("destination".to_owned(), "example.com:443".to_owned());
        if let Some(o) = owner {
            rec.insert("owner".to_owned(), o.to_owned());
        }
        view(rec, None)
    }

    #[test]
    fn a_filter_keeps_what_matches_every_condition() {
        let d = delivery("https://Example.com/Hooks/Orders", Some("net:n1"), "dead");
        let keeps = |f: DeliveryFilter| f.keeps(&d);
        assert!(keeps(DeliveryFilter::default()));
        assert!(keeps(DeliveryFilter {
            url: Some("hooks/orders".into()),
            state: Some("dead".into()),
            destination: Some("example.com:443".into()),
            ..Default::default()
        }));
        assert!(keeps(DeliveryFilter {
            owner: Some("net:".into()),
            ..Default::default()
        }));
        assert!(keeps(DeliveryFilter {
            owner: Some("net:n1".into()),
            ..Default::default()
        }));
        for f in [
            DeliveryFilter {
                owner: Some("net:n".into()),
                ..Default::default()
            },
            DeliveryFilter {
                owner: Some("workflow:".into()),
                ..Default::default()
            },
            DeliveryFilter {
                url: Some("invoices".into()),
                ..Default::default()
            },
            DeliveryFilter {
                state: Some("succeeded".into()),
                ..Default::default()
            },
        ] {
            assert!(!keeps(f.clone()), "{f:?}");
        }
        // No owner: only a filter without one keeps it.
        let free = delivery("https://example.com/x", None, "pending");
        assert!(
            !DeliveryFilter {
                owner: Some("net:".into()),
                ..Default::default()
            }
            .keeps(&free)
        );
        assert_eq!(free.owner, None);
    }
}
