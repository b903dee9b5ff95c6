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

pub mod config;
pub mod error;
pub mod keys;
pub mod model;
pub mod scripts;
pub mod store;
pub mod windows;

pub use config::GateOpts;
pub use error::GateError;
pub use keys::GateKeys;
pub use model::*;
pub use store::GateStore;
pub use windows::{BuildWindows, WindowRule};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::{TimeZone, Utc};

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
