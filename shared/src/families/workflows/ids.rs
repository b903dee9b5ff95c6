//! Workflow and workitem ids, made and checked before any Redis call.
//!
//! * A workflow id is `YYYYMMDD-HHMM-<8>-<8>`: the UTC minute of the launch
//!   and two runs of 8 lowercase letters or digits (random), e.g.
//!   `20151005-1247-kogadeso-gekunute` — Scriptoria's shape (its two words
//!   were mnemonic syllables; any lowercase alphanumerics are accepted).
//! * A workitem id is `expid!subid!wfid` as in Ruote: the expression's place
//!   in the tree (`0`, `0_1`, `0_1_3`, …), 32 lowercase hex digits (with a
//!   `k<n>` suffix per concurrent-iterator branch) and the workflow id.
//!
//! Anything else is refused by [`valid_id`] / [`WorkitemId::parse`], so a
//! quote, a slash or a megabyte of text in a path never reaches a key.

use chrono::{DateTime, NaiveDateTime, Utc};
use rand::Rng;

use super::engine;

/// Length of a workflow id.
pub const WFID_LEN: usize = 31;
/// Longest expid accepted (a tree is at most `tree::MAX_DEPTH` deep).
pub const EXPID_MAX: usize = 400;
/// Longest subid accepted (32 hex digits plus branch suffixes).
pub const SUBID_MAX: usize = 128;

const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A new workflow id for a launch at `at`.
pub fn new_wfid(at: DateTime<Utc>) -> String {
    let mut rng = rand::rng();
    let mut word = || -> String {
        (0..8)
            .map(|_| char::from(ALNUM[rng.random_range(0..ALNUM.len())]))
            .collect()
    };
    let (a, b) = (word(), word());
    format!("{}-{a}-{b}", at.format("%Y%m%d-%H%M"))
}

/// Whether `id` is a workflow id this service could have made.
pub fn valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    if b.len() != WFID_LEN || b[8] != b'-' || b[13] != b'-' || b[22] != b'-' {
        return false;
    }
    let word = |s: &[u8]| {
        s.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    b[..8].iter().all(u8::is_ascii_digit)
        && b[9..13].iter().all(u8::is_ascii_digit)
        && word(&b[14..22])
        && word(&b[23..31])
        && NaiveDateTime::parse_from_str(&id[..13], "%Y%m%d-%H%M").is_ok()
}

/// The parts of a workitem id `expid!subid!wfid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkitemId<'a> {
    pub expid: &'a str,
    pub subid: &'a str,
    pub wfid: &'a str,
}

impl<'a> WorkitemId<'a> {
    /// The parts of a well-formed workitem id, else `None`.
    pub fn parse(id: &'a str) -> Option<Self> {
        let mut parts = id.split('!');
        let (expid, subid, wfid) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        (valid_expid(expid) && valid_subid(subid) && valid_id(wfid)).then_some(Self {
            expid,
            subid,
            wfid,
        })
    }
}

/// `0(_\d+)*`, at most [`EXPID_MAX`] characters.
pub fn valid_expid(expid: &str) -> bool {
    if expid.len() > EXPID_MAX {
        return false;
    }
    let mut parts = expid.split('_');
    parts.next() == Some("0")
        && parts.all(|p| !p.is_empty() && p.len() <= 9 && p.bytes().all(|c| c.is_ascii_digit()))
}

/// 32 lowercase hex digits, then any number of `k\d+` branch suffixes.
pub fn valid_subid(subid: &str) -> bool {
    if subid.len() < 32 || subid.len() > SUBID_MAX {
        return false;
    }
    let (hex, rest) = subid.split_at(32);
    if !hex
        .bytes()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        return false;
    }
    if rest.is_empty() {
        return true;
    }
    let Some(rest) = rest.strip_prefix('k') else {
        return false;
    };
    rest.split('k')
        .all(|n| !n.is_empty() && n.len() <= 9 && n.bytes().all(|c| c.is_ascii_digit()))
}

/// Production ids: subids from random (v4) uuids; delivery ids on the
/// workflow's shard, so a callback's record lives beside its workflow and
/// is written in the same script call.
#[derive(Debug, Clone)]
pub struct ShardIds {
    pub shard: u16,
}

impl engine::Ids for ShardIds {
    fn subid(&mut self) -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    fn delivery_id(&mut self) -> String {
        crate::platform::outbox::new_id(self.shard)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::families::workflows::engine::Ids;

    const SEED_WFID: &str = "20151005-1247-kogadeso-gekunute";

    #[test]
    fn new_ids_are_valid_and_carry_the_launch_minute() {
        let at = DateTime::parse_from_rfc3339("2015-10-05T12:47:59Z")
            .unwrap()
            .with_timezone(&Utc);
        for _ in 0..200 {
            let id = new_wfid(at);
            assert!(valid_id(&id), "{id}");
            assert!(id.starts_with("20151005-1247-"), "{id}");
        }
        assert_ne!(new_wfid(at), new_wfid(at));
    }

    #[test]
    fn workflow_ids_are_checked_strictly() {
        assert!(valid_id(SEED_WFID));
        for bad in [
            "",
            "x",
            "20151005-1247-kogadeso-gekunutex",
            "20151005-1247-kogadeso-gekunut",
            "20151005-1247-Kogadeso-gekunute",
            "20151305-1247-kogadeso-gekunute",
            "20151005-2561-kogadeso-gekunute",
            "20151005_1247-kogadeso-gekunute",
            "20151005-1247-koga'eso-gekunute",
            "20151005-1247-koga/eso-gekunute",
            "20151005-1247-kogadeso-gekunu\u{e9}",
            "2015100a-1247-kogadeso-gekunute",
        ] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn workitem_ids_are_checked_strictly() {
        let ok = format!("0_0!023abf5d398319b1c8fcbfaf70e7c780!{SEED_WFID}");
        let wi = WorkitemId::parse(&ok).unwrap();
        assert_eq!(wi.expid, "0_0");
        assert_eq!(wi.subid, "023abf5d398319b1c8fcbfaf70e7c780");
        assert_eq!(wi.wfid, SEED_WFID);
        for good in [
            format!("0!023abf5d398319b1c8fcbfaf70e7c780!{SEED_WFID}"),
            format!("0_1_12!023abf5d398319b1c8fcbfaf70e7c780k0!{SEED_WFID}"),
            format!("0_1!023abf5d398319b1c8fcbfaf70e7c780k3k12!{SEED_WFID}"),
        ] {
            assert!(WorkitemId::parse(&good).is_some(), "{good}");
        }
        for bad in [
            String::new(),
            "!!".into(),
            format!("1_0!023abf5d398319b1c8fcbfaf70e7c780!{SEED_WFID}"),
            format!("0_!023abf5d398319b1c8fcbfaf70e7c780!{SEED_WFID}"),
            format!("0_a!023abf5d398319b1c8fcbfaf70e7c780!{SEED_WFID}"),
            format!("0!023ABF5D398319B1C8FCBFAF70E7C780!{SEED_WFID}"),
            format!("0!023abf5d398319b1c8fcbfaf70e7c78!{SEED_WFID}"),
            format!("0!023abf5d398319b1c8fcbfaf70e7c780k!{SEED_WFID}"),
            format!("0!023abf5d398319b1c8fcbfaf70e7c780x1!{SEED_WFID}"),
            format!("0!023abf5d398319b1c8fcbfaf70e7c780!{SEED_WFID}!x"),
            format!("0!023abf5d398319b1c8fcbfaf70e7c780!{SEED_WFID}'"),
            format!(
                "0{}!023abf5d398319b1c8fcbfaf70e7c780!{SEED_WFID}",
                "_1".repeat(300)
            ),
        ] {
            assert!(WorkitemId::parse(&bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn production_ids_have_the_expected_shape() {
        let mut ids = ShardIds { shard: 5 };
        let s = ids.subid();
        assert!(valid_subid(&s), "{s}");
        let d = ids.delivery_id();
        assert_eq!(crate::platform::outbox::shard_of_id(&d, 64), Some(5));
    }
}
