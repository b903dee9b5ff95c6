//! Key layout. Every key starts with the deployment prefix and carries its
//! shard as a Redis hash tag (`sy:{<tag>}:…`, tags from [`super::shards`]),
//! so all keys of one entity hash to one Cluster slot and every script runs
//! unchanged on Redis Cluster.
//!
//! This module formats the platform's keys (work streams, timers, dead
//! letters) and gives families their bases ([`Keys::entity`],
//! [`Keys::index`]); each family's `keys.rs` formats the rest of its own keys
//! from those, and nothing else formats key strings.

use std::sync::Arc;

/// Prefix and shard count of one deployment.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: Arc<str>,
    /// The hash tag of each shard ([`super::shards::shard_tags`]).
    tags: Arc<[String]>,
}

/// FNV-1a, 64 bit: stable across versions and platforms, so every replica
/// maps an id to the same shard without a lookup.
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Keys {
    pub fn new(prefix: &str, shards: u16) -> Self {
        Self {
            prefix: prefix.into(),
            tags: super::shards::shard_tags(shards.max(1)).into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn shards(&self) -> u16 {
        self.tags.len() as u16
    }

    /// The shard of an entity id.
    pub fn shard_of(&self, id: &str) -> u16 {
        (fnv1a(id) % u64::from(self.shards())) as u16
    }

    /// `prefix:{tag}`: the start of every key on `shard`.
    pub fn shard_base(&self, shard: u16) -> String {
        // A shard past the end would get the empty tag `{}`, which Redis
        // Cluster treats as no tag at all: a bug, never a key to write.
        debug_assert!(shard < self.shards(), "shard {shard} out of range");
        let tag = self.tags.get(usize::from(shard)).map_or("", String::as_str);
        format!("{}:{{{tag}}}", self.prefix)
    }

    /// The shard and key base (`prefix:{tag}:<family>:<id>`) of one entity
    /// of a family: every key of the entity starts with it, so all of them
    /// share the shard's hash tag.
    pub fn entity(&self, family: &str, id: &str) -> (u16, String) {
        let shard = self.shard_of(&format!("{family}:{id}"));
        (shard, format!("{}:{family}:{id}", self.shard_base(shard)))
    }

    /// A per-shard index of a family (`prefix:{tag}:<name>-index`), e.g. a
    /// ZSET id → created (ms) for listing and pruning.
    pub fn index(&self, shard: u16, name: &str) -> String {
        format!("{}:{name}-index", self.shard_base(shard))
    }

    /// The per-shard work stream (used by the worker).
    pub fn work_stream(&self, shard: u16) -> String {
        format!("{}:work", self.shard_base(shard))
    }

    /// The per-shard dead-letter stream.
    pub fn dead_letters(&self, shard: u16) -> String {
        format!("{}:dead", self.shard_base(shard))
    }

    /// The per-shard timer set (used by the scheduler).
    pub fn timers(&self, shard: u16) -> String {
        format!("{}:timers", self.shard_base(shard))
    }

    /// The schedulers' heartbeat (one per deployment, on shard 0 so it has
    /// a hash tag like every key).
    pub fn scheduler_heartbeat(&self) -> String {
        format!("{}:scheduler:heartbeat", self.shard_base(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_is_stable_and_in_range() {
        let keys = Keys::new("sy", 16);
        assert_eq!(keys.shard_of("net-1"), keys.shard_of("net-1"));
        for i in 0..1000 {
            assert!(keys.shard_of(&format!("id{i}")) < 16);
        }
        // Known value guards against accidental changes of the hash.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
    }
}
