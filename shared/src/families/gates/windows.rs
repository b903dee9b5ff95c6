//! Build windows: per environment, the days and hours (UTC) in which a gate
//! is open unless closed by hand (gatekeeper's `days_range` × `hours_range`).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Deserialize;

/// One rule: days `[first, last]` (0 = Monday) × hours `[start, end)`, UTC.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WindowRule {
    pub days_range: [u8; 2],
    pub hours_range: [u8; 2],
}

impl WindowRule {
    fn matches(&self, now: DateTime<Utc>) -> bool {
        let day = now.weekday().num_days_from_monday() as u8;
        let hour = now.hour() as u8;
        (self.days_range[0]..=self.days_range[1]).contains(&day)
            && (self.hours_range[0]..self.hours_range[1]).contains(&hour)
    }
}

/// Build windows per environment. An environment with rules is open only
/// while one of its rules matches; one without rules is never closed by time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildWindows {
    rules: BTreeMap<String, Vec<WindowRule>>,
}

impl BuildWindows {
    /// Parse `{"env": {"rule name": {"days_range": [0,4], "hours_range": [8,18]}}}`,
    /// inline or from `@file`.
    pub fn parse_arg(arg: &str) -> Result<Self, String> {
        let text = match arg.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read build windows file {path}: {e}"))?,
            None => arg.to_owned(),
        };
        let raw: BTreeMap<String, BTreeMap<String, WindowRule>> =
            serde_json::from_str(&text).map_err(|e| format!("build windows are not valid: {e}"))?;
        let mut rules = BTreeMap::new();
        for (env, named) in raw {
            for (name, r) in &named {
                let [d0, d1] = r.days_range;
                let [h0, h1] = r.hours_range;
                if d0 > d1 || d1 > 6 {
                    return Err(format!(
                        "{env}.{name}.days_range must be [first, last] with 0 <= first <= last <= 6"
                    ));
                }
                if h0 >= h1 || h1 > 24 {
                    return Err(format!(
                        "{env}.{name}.hours_range must be [start, end) with 0 <= start < end <= 24"
                    ));
                }
            }
            rules.insert(env, named.into_values().collect());
        }
        Ok(Self { rules })
    }

    /// Every environment with rules, by name, and its rules (for display).
    pub fn rules(&self) -> impl Iterator<Item = (&str, &[WindowRule])> {
        self.rules
            .iter()
            .map(|(env, r)| (env.as_str(), r.as_slice()))
    }

    /// True when `env` is outside all of its windows at `now`.
    pub fn closed(&self, env: &str, now: DateTime<Utc>) -> bool {
        match self.rules.get(env) {
            None => false,
            Some(rules) => !rules.iter().any(|r| r.matches(now)),
        }
    }
}
