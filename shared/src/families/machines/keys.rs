//! Key layout of the state-machines family: every key of a machine, its
//! entities included, is on the machine's shard (`prefix:{tag}:sm:<id>:…`).

use crate::platform::keys::Keys;

impl Keys {
    /// Keys of one state machine (all on its shard).
    pub fn machine(&self, id: &str) -> MachineKeys {
        let (shard, base) = self.entity("sm", id);
        MachineKeys {
            base,
            index: self.machine_index(shard),
            shard,
        }
    }

    /// ZSET machine id → created, per shard.
    pub fn machine_index(&self, shard: u16) -> String {
        self.index(shard, "sm")
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
