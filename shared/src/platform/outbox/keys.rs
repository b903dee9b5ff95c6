//! Keys of outbox delivery records: a delivery lives on the shard its id names.

use crate::platform::keys::Keys;

impl Keys {
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
