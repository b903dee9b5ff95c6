//! Thresholds: evaluated against a machine's metrics, and alerts moved and
//! sent (one `lua/machines/alert.lua` call per threshold, through the
//! outbox). The scheduler checks every machine on its period; the API
//! checks one right after its transitions.

use std::time::Duration;

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::keys::MachineKeys;
use super::metrics::MachineMetrics;
use super::scripts;
use super::spec::{Definition, Severity, ThresholdKind, ThresholdSpec};
use super::store::{MachineError, MachineStore};
use crate::platform::errors::StoreError;
use crate::platform::time::{iso_ms, ms, now_ms};
use crate::platform::{ids, outbox, reply};

/// One threshold, evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    pub threshold: ThresholdSpec,
    pub firing: bool,
    pub message: String,
}

/// A threshold's state, as the metrics endpoint shows it.
#[derive(Serialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
pub struct ThresholdStatus {
    pub id: Option<String>,
    pub state: String,
    pub kind: ThresholdKind,
    pub severity: Severity,
    pub firing: bool,
    pub message: String,
}

impl From<&Evaluated> for ThresholdStatus {
    fn from(e: &Evaluated) -> Self {
        let t = &e.threshold;
        Self {
            id: t.id.clone(),
            state: t.state.clone(),
            kind: t.kind,
            severity: t.severity,
            firing: e.firing,
            message: e.message.clone(),
        }
    }
}

/// A machine's metrics with its thresholds' states.
#[derive(Serialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
pub struct MetricsReport {
    #[serde(flatten)]
    pub metrics: MachineMetrics,
    pub thresholds: Vec<ThresholdStatus>,
}

impl MetricsReport {
    pub fn new(metrics: MachineMetrics, evaluated: &[Evaluated]) -> Self {
        Self {
            metrics,
            thresholds: evaluated.iter().map(ThresholdStatus::from).collect(),
        }
    }
}

/// The webhook body of an alert or a recovery.
#[derive(Serialize)]
struct AlertBody<'a> {
    machine: &'a str,
    threshold: &'a str,
    state: &'a str,
    kind: ThresholdKind,
    severity: Severity,
    status: &'a str,
    message: &'a str,
    at: String,
}

/// The alert script's answer.
#[derive(Deserialize)]
struct AlertReply {
    /// "" | "alert" | "recovery"
    sent: String,
}

impl MachineStore {
    /// Evaluate every threshold of `def` against `metrics`.
    #[tracing::instrument(skip_all, fields(machine_id = %def.id), err(level = "debug"))]
    pub async fn evaluate(
        &self,
        def: &Definition,
        metrics: &MachineMetrics,
    ) -> Result<Vec<Evaluated>, MachineError> {
        let mut out = vec![];
        for t in &def.thresholds {
            let (firing, message) = self.measure(def, metrics, t).await?;
            out.push(Evaluated {
                threshold: t.clone(),
                firing,
                message,
            });
        }
        Ok(out)
    }

    /// Whether one threshold fires, and the sentence saying why.
    async fn measure(
        &self,
        def: &Definition,
        metrics: &MachineMetrics,
        t: &ThresholdSpec,
    ) -> Result<(bool, String), MachineError> {
        let st = metrics.states.get(&t.state);
        let v = t.value.unwrap_or(0.0);
        let age = t.age_seconds.unwrap_or(0);
        Ok(match t.kind {
            ThresholdKind::CountAbove => {
                let c = st.and_then(|s| s.count).unwrap_or(0) as f64;
                (c > v, format!("{}: {c} entities (threshold {v})", t.state))
            }
            ThresholdKind::OldestAgeAbove => {
                let oldest = st.and_then(|s| s.oldest_age_seconds).unwrap_or(0.0);
                let limit = age as f64;
                (
                    oldest > limit,
                    format!(
                        "{}: oldest entity {oldest:.0}s (threshold {limit}s)",
                        t.state
                    ),
                )
            }
            ThresholdKind::OlderThan => {
                let n = self
                    .older_than(def, &t.state, Duration::from_secs(age))
                    .await? as f64;
                (
                    n > v,
                    format!(
                        "{}: {n} entities older than {age}s (threshold {v})",
                        t.state
                    ),
                )
            }
            ThresholdKind::EntryRateAbove => {
                let w = t.window.as_deref().unwrap_or("1m");
                let n = st.map_or(0, |s| s.entries.get(w)) as f64;
                (
                    n > v,
                    format!("{}: {n} entries in {w} (threshold {v})", t.state),
                )
            }
            // validate refuses it, so a stored definition never has one.
            ThresholdKind::Unknown => (false, format!("{}: unknown threshold kind", t.state)),
        })
    }

    /// Count of entities in `state` older than `age`.
    async fn older_than(
        &self,
        def: &Definition,
        state: &str,
        age: Duration,
    ) -> Result<i64, MachineError> {
        let cutoff = now_ms() - ms(age) as i64;
        Ok(self
            .conn()
            .zcount(self.keys(&def.id).state(state), "-inf", cutoff)
            .await?)
    }

    /// Move alert states and send notifications; returns (threshold id,
    /// "alert" | "recovery") for each sent.
    #[tracing::instrument(skip_all, fields(machine_id = %def.id), err(level = "debug"))]
    pub async fn alert(
        &self,
        def: &Definition,
        evaluated: &[Evaluated],
        policy: &str,
    ) -> Result<Vec<(String, String)>, MachineError> {
        let k = self.keys(&def.id);
        let mut sent = vec![];
        for e in evaluated {
            if let Some(s) = self.alert_one(def, &k, e, policy).await? {
                metrics::counter!("switchyard_sm_alerts_total", "machine" => def.id.clone(), "kind" => s.clone()).increment(1);
                sent.push((e.threshold.id.clone().unwrap_or_default(), s));
            }
        }
        Ok(sent)
    }

    /// One threshold's alert call; what it sent, if anything.
    async fn alert_one(
        &self,
        def: &Definition,
        k: &MachineKeys,
        e: &Evaluated,
        policy: &str,
    ) -> Result<Option<String>, MachineError> {
        let t = &e.threshold;
        let tid = t.id.as_deref().unwrap_or_default();
        let id = outbox::new_id(k.shard);
        let dk = self.keys.delivery(k.shard, &id);
        let url = t
            .action
            .as_ref()
            .map(|a| a.url.as_str())
            .unwrap_or_default();
        let body = |status: &str| {
            serde_json::to_string(&AlertBody {
                machine: &def.id,
                threshold: tid,
                state: &t.state,
                kind: t.kind,
                severity: t.severity,
                status,
                message: &e.message,
                at: iso_ms(now_ms()),
            })
            .map_err(|e| StoreError::Encode(e.to_string()))
        };
        let raw: String = scripts::SM_ALERT
            .key(k.alerts())
            .key(&dk.record)
            .key(&dk.stream)
            .key(&dk.index)
            .arg(tid)
            .arg(if e.firing { "1" } else { "0" })
            .arg(t.cooldown_seconds * 1000)
            .arg(if t.recovery { "1" } else { "0" })
            .arg(&id)
            .arg(url)
            .arg(body("firing")?)
            .arg(body("recovered")?)
            .arg(ids::destination_of(url))
            .arg(policy)
            .invoke_async(&mut self.conn())
            .await?;
        let reply: AlertReply = reply::parse(&raw)??;
        Ok(Some(reply.sent).filter(|s| !s.is_empty()))
    }

    /// Read a machine's metrics, publish its gauges, evaluate its
    /// thresholds and notify; returns notifications sent.
    pub async fn check(&self, def: &Definition, policy: &str) -> Result<usize, MachineError> {
        let m = self.metrics(def).await?;
        m.export();
        if def.thresholds.is_empty() {
            return Ok(0);
        }
        let evaluated = self.evaluate(def, &m).await?;
        Ok(self.alert(def, &evaluated, policy).await?.len())
    }

    /// [`check`](Self::check) every machine; returns notifications sent.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn check_all(&self, policy: &str) -> Result<usize, MachineError> {
        let mut sent = 0;
        for id in self.ids().await? {
            let def = match self.definition(&id).await {
                Ok(d) => d,
                Err(MachineError::NotFound) => continue,
                Err(e) => return Err(e),
            };
            sent += self.check(&def, policy).await?;
        }
        Ok(sent)
    }
}
