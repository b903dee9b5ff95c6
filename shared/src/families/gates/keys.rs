//! Key layout of the gates family. All gates of a namespace share a shard
//! (`prefix:{tag}:gates:<namespace>:…`) so a multi-gate test-and-set is one
//! script call.

use crate::platform::keys::Keys;

impl Keys {
    /// Keys of one gate namespace.
    pub fn gates(&self, namespace: &str) -> GateKeys {
        GateKeys {
            base: self.entity("gates", namespace).1,
        }
    }
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
    /// ZSET ticket id → when it was released or expired (ms): ids that may
    /// not be reused for a while, so a late retry cannot re-grant them.
    pub fn gone(&self) -> String {
        format!("{}:gone", self.base)
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
}
