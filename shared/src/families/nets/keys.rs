//! Key layout of the Petri-nets family: every key of a net is on the net's
//! shard (`prefix:{tag}:net:<id>:…`).

use crate::platform::keys::Keys;

impl Keys {
    /// Keys of one net (all on the net's shard).
    pub fn net(&self, id: &str) -> NetKeys {
        let (shard, base) = self.entity("net", id);
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

    /// ZSET net id → created (ms), per shard.
    pub fn net_index(&self, shard: u16) -> String {
        self.index(shard, "net")
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
