//! The Nagios plugin output of a machine:
//! `OK|WARNING|CRITICAL - <summary> | '<state>'=<count>;<warn>;<crit>;0; …`.

use super::metrics::MachineMetrics;
use super::spec::{Definition, Severity, ThresholdKind};
use super::thresholds::Evaluated;

/// A plugin's exit status word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warning,
    Critical,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Warning => "WARNING",
            Self::Critical => "CRITICAL",
        }
    }
}

/// The plugin's status and its line of text.
pub fn check(
    def: &Definition,
    metrics: &MachineMetrics,
    evaluated: &[Evaluated],
) -> (Status, String) {
    let firing: Vec<&Evaluated> = evaluated.iter().filter(|e| e.firing).collect();
    let status = if firing
        .iter()
        .any(|e| e.threshold.severity == Severity::Critical)
    {
        Status::Critical
    } else if firing.is_empty() {
        Status::Ok
    } else {
        Status::Warning
    };
    let summary = if firing.is_empty() {
        let total: i64 = metrics.states.values().filter_map(|s| s.count).sum();
        format!(
            "{}: {total} entities in {} states",
            def.id,
            def.states.len()
        )
    } else {
        firing
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let status_word = status.as_str();
    let perf = perfdata(def, metrics);
    (status, format!("{status_word} - {summary} | {perf}"))
}

/// Per non-terminal state: its count and its count_above limits.
fn perfdata(def: &Definition, metrics: &MachineMetrics) -> String {
    let limit = |state: &str, severity: Severity| {
        def.thresholds
            .iter()
            .find(|t| {
                t.state == state && t.kind == ThresholdKind::CountAbove && t.severity == severity
            })
            .and_then(|t| t.value)
            .map(|v| v.to_string())
            .unwrap_or_default()
    };
    def.states
        .iter()
        .filter(|s| !s.next.is_empty())
        .map(|s| {
            let count = metrics.states.get(&s.id).and_then(|m| m.count).unwrap_or(0);
            format!(
                "'{}'={count};{};{};0;",
                s.id,
                limit(&s.id, Severity::Warning),
                limit(&s.id, Severity::Critical)
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}
