//! What an HTTP outcome means: success, retry (honouring `Retry-After`),
//! or permanent failure.

use std::time::Duration;

/// What an attempt's outcome means.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Success,
    /// Try again; `after` overrides the policy's delay (Retry-After).
    Retry {
        after: Option<Duration>,
    },
    /// Never retry.
    Permanent(String),
}

/// Classify an attempt: `status` is the HTTP status, `None` for a timeout or
/// connection error.
pub fn classify(status: Option<u16>, retry_after: Option<Duration>, retry_4xx: bool) -> Verdict {
    match status {
        None => Verdict::Retry { after: None },
        Some(s) if (200..300).contains(&s) => Verdict::Success,
        Some(429) | Some(503) => Verdict::Retry { after: retry_after },
        Some(410) => Verdict::Permanent("410 Gone: the receiver asked us to stop".into()),
        Some(s) if (400..500).contains(&s) && !retry_4xx => {
            Verdict::Permanent(format!("{s} is a permanent client error"))
        }
        Some(s) if (300..400).contains(&s) => {
            Verdict::Permanent(format!("{s}: redirects are not followed"))
        }
        Some(_) => Verdict::Retry { after: None },
    }
}

/// Parse a Retry-After header: delta seconds or an HTTP date.
pub fn parse_retry_after(v: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (at.with_timezone(&chrono::Utc) - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn classification() {
        assert_eq!(classify(Some(204), None, false), Verdict::Success);
        assert_eq!(classify(None, None, false), Verdict::Retry { after: None });
        assert_eq!(
            classify(Some(500), None, false),
            Verdict::Retry { after: None }
        );
        let ra = Some(Duration::from_secs(7));
        assert_eq!(classify(Some(429), ra, false), Verdict::Retry { after: ra });
        assert_eq!(classify(Some(503), ra, false), Verdict::Retry { after: ra });
        assert!(matches!(
            classify(Some(410), None, true),
            Verdict::Permanent(_)
        ));
        assert!(matches!(
            classify(Some(400), None, false),
            Verdict::Permanent(_)
        ));
        assert_eq!(
            classify(Some(404), None, true),
            Verdict::Retry { after: None }
        );
        let now = chrono::Utc::now();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        let later = (now + chrono::Duration::seconds(60)).to_rfc2822();
        let d = parse_retry_after(&later, now).unwrap();
        assert!((59..=60).contains(&d.as_secs()), "{d:?}");
    }
}
