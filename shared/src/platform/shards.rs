//! Shard hash tags that spread evenly over the masters of a Redis Cluster.
//!
//! # Why
//!
//! Every Switchyard key carries its shard as a Redis Cluster hash tag
//! (`sy:{<tag>}:…`), so all keys of one shard live in one hash slot: the slot
//! is `CRC16(tag) % 16384`, where only the text between the braces is hashed.
//! A shard is therefore exactly one slot, and it can never be split across
//! masters.
//!
//! Redis Cluster gives each master a *contiguous* range of slots, and the
//! usual tools split the 16384 slots into roughly equal ranges
//! (`redis-cli --cluster create` and `rebalance`, and the managed services).
//! Where a shard lands is thus decided by *where its slot falls in 0..16384*.
//! The old tags `{00}`..`{15}` (format `{:02}`) hash to slots that CRC16
//! scatters without regard to those ranges: 16 shards put 8/4/4 shards on
//! 3 masters, and leave some masters of 6 or 8 with no shard at all (see the
//! `old_tags_are_unbalanced` test).
//!
//! [`shard_tags`] instead picks, for shard `i` of `n`, a short tag whose slot
//! lies in the `i`-th of `n` equal slot ranges (`slot * n / 16384 == i`),
//! as near to the middle of that range as possible. The shards' slots are then
//! evenly spaced over 0..16384, so any split of the slots into equal
//! contiguous ranges, for any number of masters, gets `n / masters` shards
//! per master, within ±1.
//!
//! # Deterministic, and fixed at deploy time
//!
//! The tags are a pure function of `n`: candidate strings are searched in a
//! fixed order (base36 `[0-9a-z]` strings, shortest first, then
//! lexicographic) and each slot gets the first candidate that hashes to it.
//! Every slot is reached by a tag of at most 4 characters, so every tag is
//! 1 to 4 characters and contains no `{`, `}` or `:`.
//!
//! The tags are part of every stored key. **Changing the shard count, the
//! candidate alphabet or order, or the choice rule changes the tags, and is a
//! data migration**, never a config tweak: keys written under the old tags
//! are not found under the new ones. The `golden_tags` test pins the output so
//! that such a change cannot slip in unnoticed.
//!
//! The balance holds for *even* splits. After a manual reshard or an uneven
//! split, balance is whatever the operator made it; because each shard is one
//! slot, an operator can still move exactly one shard by moving its slot.
//! `n` should be several times the largest expected number of masters
//! (granularity is `1/n`), and at most 16384 (one slot per shard).
//!
//! Cost: the first call builds a 16384-entry table (slot → first tag) once per
//! process, a single pass over at most ~1.7M candidates with an incremental
//! CRC; after that, `shard_tags(n)` is `O(n)`.

use std::sync::OnceLock;

/// Number of hash slots in Redis Cluster.
pub const SLOTS: u16 = 16384;

/// Longest tag the search tries. Every slot is reached at length 4.
const MAX_TAG_LEN: usize = 4;

/// Candidate characters, in search order.
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// CRC16 table for polynomial 0x1021 (CCITT), built at compile time.
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

#[inline]
fn crc16_step(crc: u16, byte: u8) -> u16 {
    (crc << 8) ^ CRC16_TABLE[(((crc >> 8) as u8) ^ byte) as usize]
}

/// CRC16 as Redis Cluster uses it: CRC-16/XMODEM (poly 0x1021, init 0, no
/// reflection, no final xor). `crc16(b"123456789") == 0x31C3`.
pub fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0, |crc, &b| crc16_step(crc, b))
}

/// Hash slot of a hash tag's content (the text between `{` and `}`):
/// `crc16(tag) % 16384`.
pub fn slot(tag: &str) -> u16 {
    crc16(tag.as_bytes()) % SLOTS
}

/// Hash slot of a whole key, with Redis Cluster's hash-tag rule: if the key
/// has a `{` followed later by a `}` with at least one character between the
/// first `{` and the first `}` after it, only that substring is hashed;
/// otherwise the whole key is. Matches `CLUSTER KEYSLOT`.
pub fn key_slot(key: &str) -> u16 {
    let b = key.as_bytes();
    if let Some(open) = b.iter().position(|&c| c == b'{')
        && let Some(len) = b[open + 1..].iter().position(|&c| c == b'}')
        && len > 0
    {
        return crc16(&b[open + 1..open + 1 + len]) % SLOTS;
    }
    crc16(b) % SLOTS
}

/// A tag of at most `MAX_TAG_LEN` bytes, stored inline.
#[derive(Clone, Copy)]
struct Tag {
    len: u8,
    bytes: [u8; MAX_TAG_LEN],
}

impl Tag {
    const NONE: Tag = Tag {
        len: 0,
        bytes: [0; MAX_TAG_LEN],
    };

    fn as_str(&self) -> &str {
        // Only ASCII from ALPHABET is ever stored.
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("ascii tag")
    }
}

/// For every slot, the first candidate (shortest first, then lexicographic
/// over `ALPHABET`) that hashes to it.
fn slot_table() -> &'static [Tag] {
    static TABLE: OnceLock<Box<[Tag]>> = OnceLock::new();
    TABLE.get_or_init(build_slot_table)
}

fn build_slot_table() -> Box<[Tag]> {
    let mut table = vec![Tag::NONE; SLOTS as usize].into_boxed_slice();
    let mut missing = SLOTS as usize;
    let mut buf = [0u8; MAX_TAG_LEN];
    for len in 1..=MAX_TAG_LEN {
        fill(&mut table, &mut missing, &mut buf, 0, len, 0);
        if missing == 0 {
            return table;
        }
    }
    panic!("{missing} slots not reached by tags of up to {MAX_TAG_LEN} characters");
}

/// Depth-first walk over all strings of exactly `len` characters in
/// lexicographic order, carrying the CRC of the prefix (so each candidate
/// costs one table step).
fn fill(
    table: &mut [Tag],
    missing: &mut usize,
    buf: &mut [u8; MAX_TAG_LEN],
    depth: usize,
    len: usize,
    crc: u16,
) {
    for &c in ALPHABET {
        if *missing == 0 {
            return;
        }
        buf[depth] = c;
        let crc = crc16_step(crc, c);
        if depth + 1 < len {
            fill(table, missing, buf, depth + 1, len, crc);
        } else {
            let entry = &mut table[(crc % SLOTS) as usize];
            if entry.len == 0 {
                *entry = Tag {
                    len: len as u8,
                    bytes: *buf,
                };
                *missing -= 1;
            }
        }
    }
}

/// The slot chosen for shard `i` of `shards`: the slot of range
/// `[ceil(i*16384/n), ceil((i+1)*16384/n))` whose middle is nearest the
/// middle of the range (lower slot on a tie).
fn target_slot(i: u32, shards: u32) -> u16 {
    let (s, n) = (SLOTS as u64, shards as u64);
    let i = i as u64;
    let lo = (i * s).div_ceil(n);
    let hi = ((i + 1) * s).div_ceil(n); // exclusive; > lo because n <= s
    // Compare twice the distances, scaled by n, in integers:
    // |(2*slot + 1) * n - (2*i + 1) * s|.
    let centre = (2 * i + 1) * s;
    let dist = |slot: u64| ((2 * slot + 1) * n).abs_diff(centre);
    // The distance is convex in slot, so the best slot is the floor or the
    // ceiling of the exact centre, clamped to the range.
    let guess = (centre / n).saturating_sub(1) / 2; // floor((centre/n - 1) / 2)
    let mut best = lo;
    for cand in [guess, guess + 1] {
        let cand = cand.clamp(lo, hi - 1);
        if dist(cand) < dist(best) || (dist(cand) == dist(best) && cand < best) {
            best = cand;
        }
    }
    best as u16
}

/// Hash tags for shards `0..shards`: tag `i` hashes to a slot in the `i`-th
/// of `shards` equal slot ranges, near its middle, so the shards are spread
/// evenly over any even contiguous split of the slots among masters.
///
/// Tags are 1 to 4 characters of `[0-9a-z]`, unique, and a pure function of
/// `shards`. Use them as `{tag}` in keys. Changing `shards` changes the tags
/// (a data migration). Returns an empty list for 0.
///
/// # Panics
/// If `shards > 16384` (a shard is one slot).
pub fn shard_tags(shards: u16) -> Vec<String> {
    assert!(
        shards <= SLOTS,
        "at most {SLOTS} shards (one slot each), got {shards}"
    );
    if shards == 0 {
        return Vec::new();
    }
    let table = slot_table();
    (0..shards as u32)
        .map(|i| {
            table[target_slot(i, shards as u32) as usize]
                .as_str()
                .to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashSet;

    /// Master owning `slot` when `masters` split the slots evenly as
    /// `[m*16384/masters, (m+1)*16384/masters)`.
    fn master_even(slot: u16, masters: u32) -> usize {
        // Largest m with m*16384/masters <= slot.
        (0..masters)
            .rev()
            .find(|&m| m * SLOTS as u32 / masters <= slot as u32)
            .unwrap() as usize
    }

    /// Master owning `slot` with redis-cli's own split (`--cluster create`):
    /// last slot of master i = lround(i*16384/masters + 16384/masters - 1).
    fn master_redis_cli(slot: u16, masters: u32) -> usize {
        let per = SLOTS as f32 / masters as f32;
        let mut cursor = 0.0f32;
        let mut first = 0i64;
        for m in 0..masters {
            let mut last = (cursor + per - 1.0).round() as i64;
            if last > SLOTS as i64 || m == masters - 1 {
                last = SLOTS as i64 - 1;
            }
            if last < first {
                last = first;
            }
            if (first..=last).contains(&(slot as i64)) {
                return m as usize;
            }
            first = last + 1;
            cursor += per;
        }
        unreachable!()
    }

    fn counts(tags: &[String], masters: u32, owner: fn(u16, u32) -> usize) -> Vec<usize> {
        let mut c = vec![0; masters as usize];
        for t in tags {
            c[owner(slot(t), masters)] += 1;
        }
        c
    }

    fn spread(c: &[usize]) -> usize {
        c.iter().max().unwrap() - c.iter().min().unwrap()
    }

    fn old_tags(shards: u16) -> Vec<String> {
        (0..shards).map(|i| format!("{:02}", i)).collect()
    }

    #[test]
    fn crc16_check_value() {
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn slots_match_redis() {
        // Redis Cluster spec / CLUSTER KEYSLOT.
        assert_eq!(slot("foo"), 12182);
        assert_eq!(key_slot("foo"), 12182);
        assert_eq!(key_slot("somekey"), 11058);
        assert_eq!(key_slot("foo{hash_tag}"), 2515);
        assert_eq!(slot("user1000"), 3443);
        assert_eq!(key_slot("{user1000}.following"), 3443);
        assert_eq!(key_slot("{user1000}.followers"), 3443);
        // Hash-tag edge cases from the spec.
        assert_eq!(key_slot("foo{}{bar}"), slot("foo{}{bar}"));
        assert_eq!(key_slot("foo{{bar}}zap"), slot("{bar"));
        assert_eq!(key_slot("foo{bar}{zap}"), slot("bar"));
        // Today's tags, as measured with CLUSTER KEYSLOT on 7.0.15.
        assert_eq!(key_slot("sy:{07}:work"), 801);
        assert_eq!(slot("00"), 13254);
        assert_eq!(slot("15"), 4178);
    }

    #[test]
    fn every_slot_has_a_short_tag() {
        let table = slot_table();
        for (s, t) in table.iter().enumerate() {
            assert!((1..=MAX_TAG_LEN).contains(&(t.len as usize)));
            assert_eq!(slot(t.as_str()) as usize, s);
        }
    }

    #[test]
    fn tags_unique_in_range_and_well_formed() {
        for n in [1u16, 2, 3, 5, 16, 64, 100, 256, 1000, 4096, 16383, 16384] {
            let tags = shard_tags(n);
            assert_eq!(tags.len(), n as usize);
            let set: HashSet<&String> = tags.iter().collect();
            assert_eq!(set.len(), tags.len(), "duplicate tag for n={n}");
            for (i, t) in tags.iter().enumerate() {
                assert!((1..=4).contains(&t.len()), "{t:?}");
                assert!(
                    t.bytes()
                        .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()),
                    "{t:?}"
                );
                let s = slot(t) as u32;
                assert_eq!(
                    s * n as u32 / SLOTS as u32,
                    i as u32,
                    "n={n} i={i} tag={t} slot={s}"
                );
            }
        }
        assert!(shard_tags(0).is_empty());
    }

    #[test]
    fn deterministic() {
        assert_eq!(shard_tags(64), shard_tags(64));
        assert_eq!(shard_tags(16384), shard_tags(16384));
    }

    #[test]
    fn one_shard_per_slot_at_16384() {
        let tags = shard_tags(16384);
        for (i, t) in tags.iter().enumerate() {
            assert_eq!(slot(t) as usize, i);
        }
    }

    #[test]
    #[should_panic(expected = "at most 16384 shards")]
    fn too_many_shards() {
        shard_tags(16385);
    }

    #[test]
    fn balanced_on_even_splits() {
        for masters in [3u32, 6, 8] {
            let c = counts(&shard_tags(64), masters, master_even);
            assert!(spread(&c) <= 1, "64 shards on {masters} masters: {c:?}");
        }
        // Wider: any shard count, any master count up to the shard count, and
        // both the m*16384/M split and redis-cli's exact split.
        for n in [4u16, 16, 32, 64, 100, 128, 256, 1024] {
            let tags = shard_tags(n);
            for masters in 1..=(n as u32).min(64) {
                for owner in [master_even as fn(u16, u32) -> usize, master_redis_cli] {
                    let c = counts(&tags, masters, owner);
                    assert!(spread(&c) <= 1, "{n} shards on {masters} masters: {c:?}");
                }
            }
        }
    }

    /// Documents the defect of the `{:02}` tags that `shard_tags` fixes.
    #[test]
    fn old_tags_are_unbalanced() {
        let c = counts(&old_tags(16), 3, master_even);
        assert_eq!(c, vec![8, 4, 4]);
        assert_eq!(counts(&old_tags(16), 3, master_redis_cli), vec![8, 4, 4]);
        // On 6 and 8 masters some masters get no shard at all.
        assert!(counts(&old_tags(16), 6, master_even).contains(&0));
        assert!(counts(&old_tags(16), 8, master_even).contains(&0));
        // 64 old tags are uneven too.
        for masters in [3u32, 6, 8] {
            assert!(spread(&counts(&old_tags(64), masters, master_even)) > 1);
        }
    }

    /// Pins the output: if this fails, the tags changed, which is a data
    /// migration for every deployment.
    #[test]
    fn golden_tags() {
        assert_eq!(shard_tags(1), ["7ho"]);
        let t16 = shard_tags(16);
        assert_eq!(t16.join(","), GOLDEN_16);
        let t64 = shard_tags(64);
        assert_eq!(t64[..8].join(","), GOLDEN_64_HEAD);
        // The whole slot -> tag table, as an FNV-1a hash of the 16384 tags.
        let all = shard_tags(16384).join(",");
        let fnv = all.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        println!(
            "fnv(shard_tags(16384)) = {fnv:#018x}, longest tag {}",
            shard_tags(16384).iter().map(|t| t.len()).max().unwrap()
        );
        assert_eq!(fnv, GOLDEN_16384_FNV);
    }

    const GOLDEN_16: &str = "18,5x,kld,6kl,d2,22k,c0v,6zn,0ag,eow,4mj,acz,04m,895,a20,a6p";
    const GOLDEN_16384_FNV: u64 = 0x06fb_c7bc_2cfe_3f7b;
    const GOLDEN_64_HEAD: &str = "41y,k1g,5gp,bnv,459,66o,5c0,bj6";

    /// Prints the per-master counts (run with `--nocapture`).
    #[test]
    fn report_balance() {
        for n in [16u16, 64] {
            for masters in [3u32, 6, 8] {
                println!(
                    "n={n:<3} masters={masters}: old {:?} new {:?}",
                    counts(&old_tags(n), masters, master_even),
                    counts(&shard_tags(n), masters, master_even)
                );
            }
        }
        println!("shard_tags(16) = {:?}", shard_tags(16));
        println!("shard_tags(64)[..8] = {:?}", &shard_tags(64)[..8]);
    }

    /// Times a fresh table build plus the 16384-shard list.
    #[test]
    fn fast_enough() {
        let start = std::time::Instant::now();
        let table = build_slot_table();
        let tags: Vec<&str> = (0..SLOTS as u32)
            .map(|i| table[target_slot(i, SLOTS as u32) as usize].as_str())
            .collect();
        let elapsed = start.elapsed();
        println!(
            "fresh table + 16384 tags: {elapsed:?} ({} tags)",
            tags.len()
        );
        // Loose bound so a loaded machine does not make this flaky.
        assert!(elapsed.as_millis() < 1000, "{elapsed:?}");
    }
}
