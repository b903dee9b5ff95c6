//! Named retry policies of outbox deliveries: `svix`, `scriptoria`, `once`
//! (a single attempt), and configurable `exponential` and `schedule` — pure
//! functions of the attempt count and age, so the durable retry delay is
//! stored as a timer.

use std::collections::HashMap;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub enum RetryPolicy {
    /// Fixed delays: after attempt n (1-based) wait `delays[n-1]`; gives up
    /// after `delays.len() + 1` attempts.
    Schedule {
        delays: Vec<Duration>,
        retry_4xx: bool,
    },
    /// Scriptoria's: wait n^5 + 30 s after attempt n+1, n = 0..10: 12 attempts, ~61 h.
    Scriptoria,
    /// `base * factor^(n-1)`, capped, for at most `max_attempts` attempts and
    /// `max_age` since creation; with full jitter the delay is uniform in [0, d].
    Exponential {
        base: Duration,
        factor: f64,
        cap: Duration,
        max_attempts: u32,
        max_age: Option<Duration>,
        jitter: bool,
        retry_4xx: bool,
    },
}

impl RetryPolicy {
    pub fn svix() -> Self {
        let h = 3600;
        RetryPolicy::Schedule {
            delays: [5, 300, 1800, 2 * h, 5 * h, 10 * h, 10 * h]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            retry_4xx: false,
        }
    }

    /// One attempt, never retried (notifications whose loss is acceptable,
    /// e.g. a workflow's `cancel`/`timeout`/`error` participant callbacks).
    pub fn once() -> Self {
        RetryPolicy::Schedule {
            delays: Vec::new(),
            retry_4xx: false,
        }
    }

    pub fn max_attempts(&self) -> u32 {
        match self {
            RetryPolicy::Schedule { delays, .. } => delays.len() as u32 + 1,
            RetryPolicy::Scriptoria => 12,
            RetryPolicy::Exponential { max_attempts, .. } => *max_attempts,
        }
    }

    pub fn retry_4xx(&self) -> bool {
        match self {
            RetryPolicy::Schedule { retry_4xx, .. }
            | RetryPolicy::Exponential { retry_4xx, .. } => *retry_4xx,
            RetryPolicy::Scriptoria => false,
        }
    }

    /// The wait before the next attempt after `done` attempts failed, the
    /// delivery being `age` old; `None` = give up. `unit` in [0, 1) drives jitter.
    pub fn delay(&self, done: u32, age: Duration, unit: f64) -> Option<Duration> {
        if done == 0 {
            return Some(Duration::ZERO);
        }
        if done >= self.max_attempts() {
            return None;
        }
        let d = match self {
            RetryPolicy::Schedule { delays, .. } => delays[(done - 1) as usize],
            RetryPolicy::Scriptoria => Duration::from_secs(u64::from(done - 1).pow(5) + 30),
            RetryPolicy::Exponential {
                base,
                factor,
                cap,
                max_age,
                jitter,
                ..
            } => {
                let raw = base.as_secs_f64() * factor.powi(done as i32 - 1);
                let mut d = Duration::from_secs_f64(raw.min(cap.as_secs_f64()).max(0.0));
                if *jitter {
                    d = Duration::from_secs_f64(d.as_secs_f64() * unit.clamp(0.0, 1.0));
                }
                if let Some(max) = max_age
                    && age + d > *max
                {
                    return None;
                }
                d
            }
        };
        Some(d)
    }

    /// Parse `svix`, `scriptoria`, `schedule:5s,1m[,retry_4xx]` or
    /// `exponential:base=1s,factor=2,cap=1h,max_attempts=10[,max_age=1d][,jitter=full|none][,retry_4xx=true]`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (kind, rest) = spec.split_once(':').unwrap_or((spec, ""));
        let dur = |v: &str| humantime::parse_duration(v).map_err(|e| format!("{v:?}: {e}"));
        match kind {
            "svix" => Ok(Self::svix()),
            "scriptoria" => Ok(RetryPolicy::Scriptoria),
            "schedule" => {
                let mut delays = Vec::new();
                let mut retry_4xx = false;
                for part in rest.split(',').filter(|p| !p.is_empty()) {
                    if part == "retry_4xx" {
                        retry_4xx = true;
                    } else {
                        delays.push(dur(part)?);
                    }
                }
                if delays.is_empty() {
                    return Err("schedule needs at least one delay".into());
                }
                Ok(RetryPolicy::Schedule { delays, retry_4xx })
            }
            "exponential" => {
                let mut p = (
                    Duration::from_secs(1),
                    2.0,
                    Duration::from_secs(3600),
                    10u32,
                    None,
                    true,
                    false,
                );
                for part in rest.split(',').filter(|p| !p.is_empty()) {
                    let (k, v) = part
                        .split_once('=')
                        .ok_or_else(|| format!("expected key=value, got {part:?}"))?;
                    match k {
                        "base" => p.0 = dur(v)?,
                        "factor" => {
                            p.1 = v
                                .parse()
                                .map_err(|_| format!("factor {v:?} is not a number"))?
                        }
                        "cap" => p.2 = dur(v)?,
                        "max_attempts" => {
                            p.3 = v
                                .parse()
                                .map_err(|_| format!("max_attempts {v:?} is not a count"))?
                        }
                        "max_age" => p.4 = Some(dur(v)?),
                        "jitter" => p.5 = matches!(v, "full" | "true"),
                        "retry_4xx" => p.6 = v == "true",
                        other => return Err(format!("unknown exponential option {other:?}")),
                    }
                }
                if p.1 < 1.0 || p.3 == 0 {
                    return Err("factor must be >= 1 and max_attempts >= 1".into());
                }
                Ok(RetryPolicy::Exponential {
                    base: p.0,
                    factor: p.1,
                    cap: p.2,
                    max_attempts: p.3,
                    max_age: p.4,
                    jitter: p.5,
                    retry_4xx: p.6,
                })
            }
            other => Err(format!("unknown retry policy kind {other:?}")),
        }
    }
}

/// Named retry policies: the built-ins plus configured ones.
#[derive(Clone, Debug)]
pub struct Policies {
    map: HashMap<String, RetryPolicy>,
    default: String,
}

impl Policies {
    /// `specs` are `name=spec` (see [`RetryPolicy::parse`]).
    pub fn new(specs: &[String], default: &str) -> Result<Self, String> {
        let mut map = HashMap::new();
        map.insert("svix".to_owned(), RetryPolicy::svix());
        map.insert("scriptoria".to_owned(), RetryPolicy::Scriptoria);
        map.insert("once".to_owned(), RetryPolicy::once());
        map.insert(
            "exponential".to_owned(),
            RetryPolicy::parse("exponential:")?,
        );
        for s in specs {
            let (name, spec) = s
                .split_once('=')
                .ok_or_else(|| format!("retry policy {s:?}: expected name=spec"))?;
            let p = RetryPolicy::parse(spec).map_err(|e| format!("retry policy {name}: {e}"))?;
            map.insert(name.to_owned(), p);
        }
        if !map.contains_key(default) {
            return Err(format!("default retry policy {default:?} is not defined"));
        }
        Ok(Self {
            map,
            default: default.to_owned(),
        })
    }

    pub fn get(&self, name: &str) -> Option<&RetryPolicy> {
        self.map.get(name)
    }

    pub fn default_name(&self) -> &str {
        &self.default
    }

    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.map.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn scriptoria_waits_n5_plus_30_for_12_attempts_about_61_hours() {
        let p = RetryPolicy::Scriptoria;
        let delays: Vec<u64> = (1..12)
            .map(|d| p.delay(d, Duration::ZERO, 0.5).unwrap().as_secs())
            .collect();
        assert_eq!(&delays[..5], &[30, 31, 62, 273, 1054]);
        assert_eq!(delays[10], 100_030);
        assert_eq!(p.delay(12, Duration::ZERO, 0.5), None);
        let total: u64 = delays.iter().sum();
        assert!((60 * 3600..62 * 3600).contains(&total), "{total}");
    }

    #[test]
    fn svix_schedule() {
        let p = RetryPolicy::svix();
        let d: Vec<u64> = (1..8)
            .map(|n| p.delay(n, Duration::ZERO, 0.0).unwrap().as_secs())
            .collect();
        assert_eq!(d, [5, 300, 1800, 7200, 18000, 36000, 36000]);
        assert_eq!(p.delay(8, Duration::ZERO, 0.0), None);
    }

    #[test]
    fn exponential_caps_jitters_and_gives_up_on_age() {
        let p = RetryPolicy::parse(
            "exponential:base=1s,factor=2,cap=5s,max_attempts=6,max_age=20s,jitter=none",
        )
        .unwrap();
        let d: Vec<u64> = (1..6)
            .map(|n| p.delay(n, Duration::ZERO, 0.3).unwrap().as_secs())
            .collect();
        assert_eq!(d, [1, 2, 4, 5, 5]);
        assert_eq!(p.delay(6, Duration::ZERO, 0.3), None);
        assert_eq!(p.delay(3, Duration::from_secs(18), 0.3), None, "max age");
        let j =
            RetryPolicy::parse("exponential:base=10s,factor=1,max_attempts=3,jitter=full").unwrap();
        assert_eq!(
            j.delay(1, Duration::ZERO, 0.5),
            Some(Duration::from_secs(5))
        );
        assert!(RetryPolicy::parse("exponential:bogus=1").is_err());
        assert!(RetryPolicy::parse("weird").is_err());
        let s = RetryPolicy::parse("schedule:50ms,100ms").unwrap();
        assert_eq!(s.max_attempts(), 3);
    }

    #[test]
    fn once_makes_one_attempt_and_never_retries() {
        let p = Policies::new(&[], "svix").unwrap();
        let once = p.get("once").unwrap();
        assert_eq!(once.max_attempts(), 1);
        assert_eq!(once.delay(0, Duration::ZERO, 0.5), Some(Duration::ZERO));
        assert_eq!(once.delay(1, Duration::ZERO, 0.5), None);
        assert!(!once.retry_4xx());
    }

    #[test]
    fn policies_registry() {
        let p = Policies::new(&["fast=schedule:10ms,10ms".into()], "svix").unwrap();
        assert!(
            p.get("fast").is_some() && p.get("svix").is_some() && p.get("scriptoria").is_some()
        );
        assert!(Policies::new(&[], "nope").is_err());
        assert!(Policies::new(&["broken".into()], "svix").is_err());
    }
}
