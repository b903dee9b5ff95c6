//! A machine's definition: [`MachineSpec`] as posted, and the
//! [`Definition`] that [`validate`] makes of it — as stored, as the
//! transition script reads it and as the API shows it.

use serde::{Deserialize, Serialize};

pub const STATES_MAX: usize = 100;
pub const THRESHOLDS_MAX: usize = 100;
/// The longest machine or state `name`, in characters.
pub const NAME_MAX: usize = 200;
/// The longest threshold action `url`, in bytes.
pub const ACTION_URL_MAX: usize = crate::platform::ids::URL_MAX;
/// The longest `age_seconds` or `cooldown_seconds`: ten years.
const SECONDS_MAX: u64 = 10 * 365 * 86_400;

pub fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// An entity id: a [`valid_id`] other than `.` and `..` (which clients
/// that normalise dot-segments could not address). Control characters are
/// refused by [`valid_id`] already.
pub fn valid_entity_id(s: &str) -> bool {
    valid_id(s) && s != "." && s != ".."
}

/// The longest event id, in bytes.
pub const EVENT_ID_MAX: usize = 200;

/// An event id: 1–[`EVENT_ID_MAX`] bytes without control characters
/// (U+0000–U+001F, U+007F–U+009F) or bidirectional overrides and isolates
/// (U+202A–U+202E, U+2066–U+2069).
pub fn valid_event_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= EVENT_ID_MAX
        && !s.chars().any(|c| {
            c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        })
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateSpec {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// The states an entity may move to from this one; none: terminal.
    #[serde(default)]
    pub next: Vec<String>,
    #[serde(default)]
    pub initial: bool,
}

/// What a threshold watches.
#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdKind {
    /// More than `value` entities in the state.
    CountAbove,
    /// The oldest entity has been in the state longer than `age_seconds`.
    OldestAgeAbove,
    /// More than `value` entities in the state for longer than `age_seconds`.
    OlderThan,
    /// More than `value` entries into the state within `window`.
    EntryRateAbove,
    /// Any other name. Parsed rather than refused by serde so that
    /// [`validate`] refuses it with its place (`body.thresholds[i].kind`);
    /// never in a [`Definition`], so never serialised.
    #[serde(other, skip_serializing)]
    Unknown,
}

impl ThresholdKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CountAbove => "count_above",
            Self::OldestAgeAbove => "oldest_age_above",
            Self::OlderThan => "older_than",
            Self::EntryRateAbove => "entry_rate_above",
            Self::Unknown => "unknown",
        }
    }

    /// Kinds that compare against `value`.
    fn needs_value(self) -> bool {
        matches!(
            self,
            Self::CountAbove | Self::OlderThan | Self::EntryRateAbove
        )
    }

    /// Kinds that take `age_seconds`.
    fn needs_age(self) -> bool {
        matches!(self, Self::OldestAgeAbove | Self::OlderThan)
    }
}

impl std::fmt::Display for ThresholdKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad a firing threshold is (Nagios: WARNING or CRITICAL).
#[derive(Deserialize, Serialize, Debug, Clone, Copy, PartialEq, Eq, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    #[default]
    Warning,
    Critical,
    /// Any other name, refused by [`validate`] (see [`ThresholdKind::Unknown`]).
    #[serde(other, skip_serializing)]
    Unknown,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSpec {
    /// Defaults to `<state>-<kind>-<index>`.
    #[serde(default)]
    pub id: Option<String>,
    pub state: String,
    pub kind: ThresholdKind,
    /// N (count_above, older_than, entry_rate_above).
    #[serde(default)]
    pub value: Option<f64>,
    /// T in seconds (oldest_age_above, older_than).
    #[serde(default)]
    pub age_seconds: Option<u64>,
    /// 1m | 5m | 1h (entry_rate_above).
    #[serde(default)]
    pub window: Option<String>,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default)]
    pub action: Option<ActionSpec>,
    #[serde(default)]
    pub cooldown_seconds: u64,
    #[serde(default = "yes")]
    pub recovery: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    /// webhook
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
}

/// A state machine as posted.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
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
#[derive(Serialize, Deserialize, Debug, Clone, utoipa::ToSchema)]
pub struct Definition {
    pub id: String,
    pub name: String,
    pub states: Vec<StateSpec>,
    pub states_ids: Vec<String>,
    pub initial: Vec<String>,
    /// Every threshold with its `id` set.
    pub thresholds: Vec<ThresholdSpec>,
}

/// The first problem of a spec: where (`body.states[2].next[0]`) and what.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct SpecError {
    pub location: String,
    pub message: String,
}

fn problem(location: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError {
        location: location.into(),
        message: message.into(),
    }
}

/// Check a posted machine and complete it into its [`Definition`];
/// threshold webhooks to forbidden addresses (link-local, metadata) are
/// refused.
pub fn validate(spec: MachineSpec) -> Result<Definition, SpecError> {
    validate_with(spec, false)
}

/// [`validate`], with threshold webhook URLs checked by the platform's
/// [`CallbackUrl`](crate::platform::ids::CallbackUrl), which allows
/// forbidden addresses only with `allow_link_local` (`--allow-link-local`).
pub fn validate_with(spec: MachineSpec, allow_link_local: bool) -> Result<Definition, SpecError> {
    if !valid_id(&spec.id) {
        return Err(problem(
            "body.id",
            "ids are 1–100 letters, digits, '-', '_' or '.'",
        ));
    }
    check_name("body.name", &spec.name)?;
    let states_ids = check_states(&spec.states)?;
    let thresholds = check_thresholds(&spec.states, &spec.thresholds, allow_link_local)?;
    Ok(Definition {
        initial: initial_states(&spec.states),
        id: spec.id,
        name: spec.name,
        states_ids,
        states: spec.states,
        thresholds,
    })
}

/// The states' ids, once each valid and unique and every `next` known.
fn check_states(states: &[StateSpec]) -> Result<Vec<String>, SpecError> {
    if states.is_empty() {
        return Err(problem(
            "body.states",
            "a state machine needs at least one state",
        ));
    }
    if states.len() > STATES_MAX {
        return Err(problem(
            "body.states",
            format!("at most {STATES_MAX} states"),
        ));
    }
    let mut ids: Vec<String> = Vec::new();
    for (i, s) in states.iter().enumerate() {
        let at = format!("body.states[{i}].id");
        if !valid_id(&s.id) {
            return Err(problem(
                at,
                "state ids are 1–100 letters, digits, '-', '_' or '.'",
            ));
        }
        if ids.contains(&s.id) {
            return Err(problem(at, format!("duplicate state id {:?}", s.id)));
        }
        check_name(&format!("body.states[{i}].name"), &s.name)?;
        ids.push(s.id.clone());
    }
    for (i, s) in states.iter().enumerate() {
        if let Some((j, n)) = s.next.iter().enumerate().find(|(_, n)| !ids.contains(n)) {
            return Err(problem(
                format!("body.states[{i}].next[{j}]"),
                format!("unknown state {n:?}"),
            ));
        }
    }
    Ok(ids)
}

/// A display name: at most [`NAME_MAX`] characters.
fn check_name(at: &str, name: &str) -> Result<(), SpecError> {
    if name.chars().count() > NAME_MAX {
        return Err(problem(
            at,
            format!("names are at most {NAME_MAX} characters"),
        ));
    }
    Ok(())
}

/// The states marked initial, else the first.
fn initial_states(states: &[StateSpec]) -> Vec<String> {
    let marked: Vec<String> = states
        .iter()
        .filter(|s| s.initial)
        .map(|s| s.id.clone())
        .collect();
    if marked.is_empty() {
        states.iter().take(1).map(|s| s.id.clone()).collect()
    } else {
        marked
    }
}

/// Every threshold checked, with its id set (given or `<state>-<kind>-<i>`).
fn check_thresholds(
    states: &[StateSpec],
    thresholds: &[ThresholdSpec],
    allow_link_local: bool,
) -> Result<Vec<ThresholdSpec>, SpecError> {
    if thresholds.len() > THRESHOLDS_MAX {
        return Err(problem(
            "body.thresholds",
            format!("at most {THRESHOLDS_MAX} thresholds"),
        ));
    }
    let mut out: Vec<ThresholdSpec> = Vec::with_capacity(thresholds.len());
    for (i, t) in thresholds.iter().enumerate() {
        let at = format!("body.thresholds[{i}]");
        check_threshold(&at, t, states, allow_link_local)?;
        let id =
            t.id.clone()
                .unwrap_or_else(|| format!("{}-{}-{i}", t.state, t.kind));
        if !valid_id(&id) || out.iter().any(|o| o.id.as_ref() == Some(&id)) {
            return Err(problem(
                format!("{at}.id"),
                "threshold ids are unique, 1–100 letters, digits, '-', '_' or '.'",
            ));
        }
        out.push(ThresholdSpec {
            id: Some(id),
            ..t.clone()
        });
    }
    Ok(out)
}

/// One threshold's fields, in the order their problems are reported.
fn check_threshold(
    at: &str,
    t: &ThresholdSpec,
    states: &[StateSpec],
    allow_link_local: bool,
) -> Result<(), SpecError> {
    let Some(state) = states.iter().find(|s| s.id == t.state) else {
        return Err(problem(
            format!("{at}.state"),
            format!("unknown state {:?}", t.state),
        ));
    };
    check_measure(at, t)?;
    if t.severity == Severity::Unknown {
        return Err(problem(
            format!("{at}.severity"),
            "severity must be warning or critical",
        ));
    }
    if let Some(a) = &t.action {
        check_action(at, a, allow_link_local)?;
    }
    if t.age_seconds.is_some_and(|a| a > SECONDS_MAX) || t.cooldown_seconds > SECONDS_MAX {
        return Err(problem(
            at,
            "age_seconds and cooldown_seconds are at most 10 years",
        ));
    }
    if state.next.is_empty() && t.kind != ThresholdKind::EntryRateAbove {
        return Err(problem(
            format!("{at}.state"),
            "terminal states have no occupancy; only entry_rate_above applies",
        ));
    }
    Ok(())
}

/// The kind and the fields it needs: `value`, `age_seconds`, `window`.
fn check_measure(at: &str, t: &ThresholdSpec) -> Result<(), SpecError> {
    if t.kind == ThresholdKind::Unknown {
        return Err(problem(
            format!("{at}.kind"),
            "kind must be count_above, oldest_age_above, older_than or entry_rate_above",
        ));
    }
    if t.kind.needs_value() && t.value.is_none_or(|v| v < 0.0) {
        return Err(problem(
            format!("{at}.value"),
            "a non-negative number is required for this kind",
        ));
    }
    if t.kind.needs_age() && t.age_seconds.is_none() {
        return Err(problem(
            format!("{at}.age_seconds"),
            "required for this kind",
        ));
    }
    if t.kind == ThresholdKind::EntryRateAbove
        && !matches!(t.window.as_deref(), Some("1m" | "5m" | "1h"))
    {
        return Err(problem(
            format!("{at}.window"),
            "window must be 1m, 5m or 1h",
        ));
    }
    Ok(())
}

fn check_action(at: &str, a: &ActionSpec, allow_link_local: bool) -> Result<(), SpecError> {
    if a.kind != "webhook" {
        return Err(problem(
            format!("{at}.action.type"),
            "action type must be webhook",
        ));
    }
    crate::platform::ids::CallbackUrl::parse(&a.url, allow_link_local)
        .map(|_| ())
        .map_err(|e| problem(format!("{at}.action.url"), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(thresholds: serde_json::Value) -> MachineSpec {
        serde_json::from_value(serde_json::json!({
            "id": "M",
            "states": [{"id": "a", "next": ["b"]}, {"id": "b"}],
            "thresholds": thresholds,
        }))
        .expect("a spec")
    }

    #[test]
    fn entity_and_event_ids_refuse_dot_segments_controls_and_bidi_overrides() {
        assert!(valid_entity_id("a.b") && valid_entity_id("..."));
        for bad in [".", "..", "a\u{0}", "a\nb", "a\u{7f}", "a\u{202e}b", ""] {
            assert!(!valid_entity_id(bad), "{bad:?}");
        }
        assert!(valid_event_id("E-1 / ok é"));
        for bad in [
            "",
            "a\u{0}",
            "a\r\nb",
            "\t",
            "a\u{7f}",
            "a\u{85}",
            "a\u{202a}",
            "a\u{202e}",
            "a\u{2066}",
            "a\u{2069}",
        ] {
            assert!(!valid_event_id(bad), "{bad:?}");
        }
        assert!(valid_event_id(&"x".repeat(EVENT_ID_MAX)));
        assert!(!valid_event_id(&"x".repeat(EVENT_ID_MAX + 1)));
    }

    #[test]
    fn names_and_action_urls_have_a_maximum_length() {
        let mut s = spec(serde_json::json!([]));
        s.name = "n".repeat(NAME_MAX);
        s.states[1].name = "é".repeat(NAME_MAX);
        assert!(validate(s.clone()).is_ok(), "the limit is in characters");
        let mut long = s.clone();
        long.name.push('n');
        assert_eq!(validate(long).expect_err("long").location, "body.name");
        let mut long = s.clone();
        long.states[1].name.push('n');
        assert_eq!(
            validate(long).expect_err("long").location,
            "body.states[1].name"
        );
        let url = format!("http://h/{}", "u".repeat(ACTION_URL_MAX));
        let e = validate(spec(
            serde_json::json!([{"state": "a", "kind": "count_above", "value": 1,
            "action": {"type": "webhook", "url": url}}]),
        ))
        .expect_err("long url");
        assert_eq!(e.location, "body.thresholds[0].action.url");
    }

    #[test]
    fn an_unknown_kind_or_severity_is_refused_where_it_is() {
        let e = validate(spec(
            serde_json::json!([{"state": "a", "kind": "bogus", "value": 1}]),
        ))
        .expect_err("unknown kind");
        assert_eq!(e.location, "body.thresholds[0].kind");
        let e = validate(spec(serde_json::json!([
            {"state": "a", "kind": "count_above", "value": 1, "severity": "meh"}
        ])))
        .expect_err("unknown severity");
        assert_eq!(e.location, "body.thresholds[0].severity");
    }

    #[test]
    fn thresholds_get_default_ids_and_kinds_keep_their_names() {
        let def = validate(spec(serde_json::json!([
            {"state": "b", "kind": "entry_rate_above", "value": 1, "window": "5m"}
        ])))
        .expect("valid");
        assert_eq!(def.initial, ["a"]);
        assert_eq!(
            def.thresholds[0].id.as_deref(),
            Some("b-entry_rate_above-0")
        );
        let json = serde_json::to_value(&def).expect("serialises");
        assert_eq!(json["thresholds"][0]["kind"], "entry_rate_above");
        assert_eq!(json["thresholds"][0]["severity"], "warning");
    }
}
