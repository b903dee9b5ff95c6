//! Key layout of the transactions family: every key of a tenant (its
//! transactions, their staged items, its consolidation queue and its
//! consolidated store) is on the tenant's shard (`prefix:{tag}:tx:<contractor>:…`),
//! beside that shard's work stream and delivery index, so each pipeline
//! step — status, checkpoint, staged items, store upserts, webhooks and the
//! next step — is one script call.

use super::schema::{RESOURCES, Resource};
use crate::platform::keys::Keys;

impl Keys {
    /// Keys of one tenant (contractor id).
    pub fn tenant(&self, contractor: &str) -> TenantKeys {
        let (shard, base) = self.entity("tx", contractor);
        TenantKeys {
            txs: format!("{base}:txs"),
            open: format!("{base}:open"),
            queue: format!("{base}:queue"),
            store: RESOURCES.map(|r| format!("{base}:c:{}", r.name())),
            store_index: RESOURCES.map(|r| format!("{base}:c:{}:idx", r.name())),
            stream: self.work_stream(shard),
            deliveries: self.delivery_index(shard),
            base,
            shard,
        }
    }
}

/// Keys of one tenant and of its shard's queues.
#[derive(Clone, Debug)]
pub struct TenantKeys {
    /// ZSET transaction id → created (ms): every transaction of the tenant.
    pub txs: String,
    /// SET of open (uncommitted) transaction ids.
    pub open: String,
    /// LIST of committed, unfinished transaction ids in commit order; the
    /// head is the one the pipeline works on.
    pub queue: String,
    /// HASH per resource ([`RESOURCES`] order): store key → record JSON.
    pub store: [String; 5],
    /// ZSET per resource (score 0, ordered by member): the store keys, for
    /// listing and prefix lookups.
    pub store_index: [String; 5],
    pub stream: String,
    pub deliveries: String,
    base: String,
    pub shard: u16,
}

impl TenantKeys {
    /// Keys of one transaction of this tenant.
    pub fn tx(&self, id: &str) -> TxKeys {
        let b = format!("{}:t:{id}", self.base);
        TxKeys {
            record: format!("{b}:rec"),
            chunks: format!("{b}:chunks"),
            idem: format!("{b}:idem"),
            staged: format!("{b}:staged"),
            order: format!("{b}:order"),
            valid: format!("{b}:valid"),
            errors: format!("{b}:errors"),
        }
    }

    /// The consolidated store of `resource`.
    pub fn store_of(&self, resource: Resource) -> (&str, &str) {
        let i = resource as usize;
        (&self.store[i], &self.store_index[i])
    }
}

/// Keys of one transaction.
#[derive(Clone, Debug)]
pub struct TxKeys {
    /// HASH: status, dates, window, counts, stage, checkpoint, progress.
    pub record: String,
    /// LIST of accepted batches: `resource\top\t[items as compact JSON]`.
    pub chunks: String,
    /// HASH `Idempotency-Key` → `sha256 of the body\tanswer`.
    pub idem: String,
    /// HASH natural key → staged entry (`resource\top\tbatch\tindex\titem`), after import.
    pub staged: String,
    /// ZSET natural key → first position: the staged keys in arrival order.
    pub order: String,
    /// LIST of the natural keys that passed validation, in order.
    pub valid: String,
    /// LIST of per-item errors (JSON), in order.
    pub errors: String,
}

impl TxKeys {
    /// The keys that expire with a finished transaction.
    pub fn own(&self) -> [&str; 7] {
        [
            &self.record,
            &self.chunks,
            &self.idem,
            &self.staged,
            &self.order,
            &self.valid,
            &self.errors,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_tenant_is_on_its_shard() {
        let keys = Keys::new("sy", 64);
        let t = keys.tenant("8");
        let tag = keys.shard_base(t.shard);
        let tx = t.tx("8201903116563853");
        let mut all: Vec<&str> = vec![&t.txs, &t.open, &t.queue, &t.stream, &t.deliveries];
        all.extend(t.store.iter().map(String::as_str));
        all.extend(t.store_index.iter().map(String::as_str));
        all.extend(tx.own());
        for k in &all {
            assert!(k.starts_with(&tag), "{k} not under {tag}");
        }
        let mut distinct = all.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), all.len());
        assert_eq!(t.store_of(Resource::Results).0, t.store[4]);
    }
}
