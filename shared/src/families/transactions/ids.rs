//! Transaction ids, made as Robbyson makes them: the contractor id, then
//! the UTC year, **zero-based** month, day, hour, minute, second and
//! millisecond of the creation, concatenated without padding
//! (`8` + `2019|0|31|16|56|3|853` = `8201903116563853`). Clients keep them
//! as opaque strings; a collision within a millisecond is resolved by the
//! create script (the next millisecond is tried).

use chrono::{DateTime, Datelike, Timelike};

/// The id of a transaction of `contractor` created at `ms`.
pub fn transaction_id(contractor: &str, ms: i64) -> String {
    let t = DateTime::from_timestamp_millis(ms).unwrap_or_default();
    format!(
        "{contractor}{}{}{}{}{}{}{}",
        t.year(),
        t.month0(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.timestamp_subsec_millis()
    )
}

/// A transaction id as this API makes them: 1–100 ASCII letters, digits, `_`, `-`.
pub fn valid_id(id: &str) -> bool {
    (1..=100).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_robbysons() {
        let ms = chrono::DateTime::parse_from_rfc3339("2019-01-31T16:56:03.853Z")
            .map(|d| d.timestamp_millis())
            .unwrap_or_default();
        assert_eq!(transaction_id("8", ms), "8201903116563853");
        assert!(valid_id("8201903116563853"));
        assert!(!valid_id("a b") && !valid_id(""));
    }
}
