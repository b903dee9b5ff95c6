//! Time helpers. The API speaks one time zone: ISO 8601 in UTC with
//! millisecond precision. Redis stores milliseconds since the epoch.

use chrono::{DateTime, SecondsFormat, Utc};

/// Milliseconds since the epoch as ISO 8601 UTC, e.g. `2026-11-23T05:39:39.123Z`.
pub fn iso_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A duration in whole milliseconds, as scripts take it (saturating).
pub fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Now, as milliseconds since the epoch.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub type DateTimeUtc = DateTime<Utc>;

/// Now, in UTC.
pub fn utc_now() -> DateTimeUtc {
    Utc::now()
}

/// Today's date (UTC) as `YYYY-MM-DD`.
pub fn today(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_is_utc_with_millis() {
        assert_eq!(iso_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
