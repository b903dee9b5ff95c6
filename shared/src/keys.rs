//! Key layout. Every key starts with the deployment prefix and carries its
//! shard as a Redis hash tag (`sy:{07}:…`), so all keys of one entity hash to
//! one Cluster slot and every script runs unchanged on Redis Cluster.
//! Nothing outside this module formats key strings.

use std::sync::Arc;

/// Prefix and shard count of one deployment.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: Arc<str>,
    shards: u16,
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
            shards: shards.max(1),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// The shard of an entity id.
    pub fn shard_of(&self, id: &str) -> u16 {
        (fnv1a(id) % u64::from(self.shards)) as u16
    }

    fn shard_base(&self, shard: u16) -> String {
        format!("{}:{{{:02}}}", self.prefix, shard)
    }

    /// Keys of one gate namespace. All gates of a namespace share a shard so
    /// a multi-gate test-and-set is one script call.
    pub fn gates(&self, namespace: &str) -> GateKeys {
        let shard = self.shard_of(&format!("gates:{namespace}"));
        GateKeys {
            base: format!("{}:gates:{namespace}", self.shard_base(shard)),
        }
    }

    /// The per-shard work stream (used by the worker).
    pub fn work_stream(&self, shard: u16) -> String {
        format!("{}:work", self.shard_base(shard))
    }

    /// The per-shard dead-letter stream.
    pub fn dead_letters(&self, shard: u16) -> String {
        format!("{}:dead", self.shard_base(shard))
    }

    /// Keys of one delivery; its shard is part of its id.
    pub fn delivery(&self, shard: u16, id: &str) -> DeliveryKeys {
        let base = self.shard_base(shard);
        DeliveryKeys {
            record: format!("{base}:dlv:{id}"),
            log: format!("{base}:dlv:{id}:log"),
            stream: self.work_stream(shard),
            timers: self.timers(shard),
            index: self.delivery_index(shard),
            dead: self.delivery_dead(shard),
        }
    }

    /// ZSET delivery id → created (ms), per shard: the listing index.
    pub fn delivery_index(&self, shard: u16) -> String {
        format!("{}:dlv-index", self.shard_base(shard))
    }

    /// ZSET delivery id → died at (ms), per shard.
    pub fn delivery_dead(&self, shard: u16) -> String {
        format!("{}:dlv-dead", self.shard_base(shard))
    }

    /// STRING idempotency key → delivery id (the key picks the shard).
    pub fn delivery_idempotency(&self, shard: u16, key: &str) -> String {
        format!("{}:dlv-idem:{key}", self.shard_base(shard))
    }

    /// Keys of one net (all on the net's shard).
    pub fn net(&self, id: &str) -> NetKeys {
        let shard = self.shard_of(&format!("net:{id}"));
        let base = format!("{}:net:{id}", self.shard_base(shard));
        NetKeys {
            meta: format!("{base}:meta"),
            marking: format!("{base}:marking"),
            groups: format!("{base}:groups"),
            fired: format!("{base}:fired"),
            seen: format!("{base}:seen"),
            agenda: format!("{base}:agenda"),
            begins: format!("{base}:begins"),
            stream: self.work_stream(shard),
            index: self.net_index(shard),
            shard,
        }
    }

    /// Keys of one state machine (all on its shard).
    pub fn machine(&self, id: &str) -> MachineKeys {
        let shard = self.shard_of(&format!("sm:{id}"));
        MachineKeys {
            base: format!("{}:sm:{id}", self.shard_base(shard)),
            index: format!("{}:sm-index", self.shard_base(shard)),
            shard,
        }
    }

    /// ZSET machine id → created, per shard.
    pub fn machine_index(&self, shard: u16) -> String {
        format!("{}:sm-index", self.shard_base(shard))
    }

    /// ZSET net id → created (ms), per shard.
    pub fn net_index(&self, shard: u16) -> String {
        format!("{}:net-index", self.shard_base(shard))
    }

    /// The per-shard timer set (used by the scheduler).
    pub fn timers(&self, shard: u16) -> String {
        format!("{}:timers", self.shard_base(shard))
    }
}

/// Keys of one state machine. State and entity ids are validated at the
/// edge (no `:`), so they separate unambiguously.
#[derive(Clone, Debug)]
pub struct MachineKeys {
    base: String,
    pub index: String,
    pub shard: u16,
}

impl MachineKeys {
    pub fn meta(&self) -> String {
        format!("{}:meta", self.base)
    }
    pub fn counts(&self) -> String {
        format!("{}:counts", self.base)
    }
    pub fn events(&self) -> String {
        format!("{}:events", self.base)
    }
    pub fn alerts(&self) -> String {
        format!("{}:alerts", self.base)
    }
    /// HASH of counters for one minute (epoch minutes).
    pub fn bucket(&self, minute: i64) -> String {
        format!("{}:bucket:{minute}", self.base)
    }
    /// ZSET entity → entered at, of one state.
    pub fn state(&self, state: &str) -> String {
        format!("{}:in:{state}", self.base)
    }
    pub fn entity(&self, entity: &str) -> String {
        format!("{}:entity:{entity}", self.base)
    }
    pub fn history(&self, entity: &str) -> String {
        format!("{}:history:{entity}", self.base)
    }
}

/// Keys of one net and of its shard's queues.
#[derive(Clone, Debug)]
pub struct NetKeys {
    pub meta: String,
    pub marking: String,
    pub groups: String,
    pub fired: String,
    pub seen: String,
    pub agenda: String,
    pub begins: String,
    pub stream: String,
    pub index: String,
    pub shard: u16,
}

/// Keys of one delivery and of its shard's queues.
#[derive(Clone, Debug)]
pub struct DeliveryKeys {
    /// HASH: the delivery record.
    pub record: String,
    /// LIST: attempt log, newest first.
    pub log: String,
    pub stream: String,
    pub timers: String,
    pub index: String,
    pub dead: String,
}

/// Keys of one gate namespace. Service and environment names are validated
/// at the edge to `[A-Za-z0-9_-]`, so `:` separates them unambiguously.
#[derive(Clone, Debug)]
pub struct GateKeys {
    base: String,
}

impl GateKeys {
    /// HASH service name → JSON {group, environments, created}.
    pub fn services(&self) -> String {
        format!("{}:services", self.base)
    }
    /// HASH ticket id → JSON ticket.
    pub fn tickets(&self) -> String {
        format!("{}:tickets", self.base)
    }
    /// ZSET ticket id → expiry (ms).
    pub fn expiry(&self) -> String {
        format!("{}:expiry", self.base)
    }
    /// STRING fencing counter, incremented on every grant.
    pub fn fence(&self) -> String {
        format!("{}:fence", self.base)
    }
    /// HASH date → JSON {environments, reasons}.
    pub fn holidays(&self) -> String {
        format!("{}:holidays", self.base)
    }
    /// HASH state, state_ts, message, message_ts of one gate.
    pub fn state(&self, service: &str, env: &str) -> String {
        format!("{}:gate:{service}:{env}", self.base)
    }
    /// LIST of ticket ids, FIFO (head = index 0).
    pub fn queue(&self, service: &str, env: &str) -> String {
        format!("{}:queue:{service}:{env}", self.base)
    }
    /// LIST of JSON history entries, newest first, bounded.
    pub fn history(&self, service: &str, env: &str) -> String {
        format!("{}:history:{service}:{env}", self.base)
    }
    /// Pattern matching every key of this namespace (for tests and tooling).
    pub fn pattern(&self) -> String {
        format!("{}:*", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(key: &str) -> &str {
        let open = key.find('{').expect("tag open");
        let close = key[open..].find('}').expect("tag close") + open;
        &key[open..=close]
    }

    #[test]
    fn every_gate_key_of_a_namespace_shares_one_hash_tag() {
        let keys = Keys::new("sy", 16);
        let g = keys.gates("default");
        let all = [
            g.services(),
            g.tickets(),
            g.expiry(),
            g.fence(),
            g.holidays(),
            g.state("a", "b"),
            g.queue("a", "b"),
            g.history("a", "b"),
        ];
        for k in &all {
            assert!(k.starts_with("sy:{"), "{k}");
            assert_eq!(tag(k), tag(&all[0]), "{k}");
        }
    }

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
