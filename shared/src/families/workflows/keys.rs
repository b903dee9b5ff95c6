//! Key layout of the workflows family: every key of a workflow is on the
//! workflow's shard (`prefix:{tag}:wf:<id>:…`), beside that shard's work
//! stream, timer set, delivery index and the workflow indexes, so each
//! state change (and the callbacks it creates) is one script call.

use crate::platform::keys::Keys;

/// The statuses with an index of their own (`GET /v1/workflows?status=`).
pub const STATUSES: [&str; 4] = ["running", "completed", "cancelled", "error"];

impl Keys {
    /// Keys of one workflow (all on the workflow's shard).
    pub fn workflow(&self, id: &str) -> WorkflowKeys {
        let (shard, base) = self.entity("wf", id);
        WorkflowKeys {
            record: format!("{base}:rec"),
            inbox: format!("{base}:inbox"),
            workitems: format!("{base}:wi"),
            history: format!("{base}:hist"),
            stream: self.work_stream(shard),
            timers: self.timers(shard),
            index: self.workflow_index(shard),
            by_status: self.workflow_status_indexes(shard),
            deliveries: self.delivery_index(shard),
            shard,
        }
    }

    /// ZSET workflow id → launched (ms), per shard: every workflow.
    pub fn workflow_index(&self, shard: u16) -> String {
        self.index(shard, "wf")
    }

    /// ZSET workflow id → launched (ms) of one status, per shard.
    pub fn workflow_status_index(&self, shard: u16, status: &str) -> String {
        self.index(shard, &format!("wf-{status}"))
    }

    /// The status indexes of a shard, in [`STATUSES`] order.
    pub fn workflow_status_indexes(&self, shard: u16) -> [String; 4] {
        STATUSES.map(|s| self.workflow_status_index(shard, s))
    }

    /// The shard of an idempotency key of `POST /v1/workflows` (a launch
    /// with a key picks a workflow id on this shard, so the key and the
    /// workflow are written in one call).
    pub fn workflow_idempotency_shard(&self, key: &str) -> u16 {
        self.shard_of(&format!("wf-idem:{key}"))
    }

    /// STRING idempotency key → workflow id.
    pub fn workflow_idempotency(&self, key: &str) -> String {
        let shard = self.workflow_idempotency_shard(key);
        format!("{}:wf-idem:{key}", self.shard_base(shard))
    }
}

/// Keys of one workflow and of its shard's queues.
#[derive(Clone, Debug)]
pub struct WorkflowKeys {
    /// HASH: `state` (the engine's process, JSON), `version`, `status`,
    /// `created`, `updated` (ms), `cancel` (`1` once a cancel was asked),
    /// `public_url` (the base of its proceed URLs, fixed at launch).
    pub record: String,
    /// LIST of engine inputs (JSON) not yet applied, oldest first.
    pub inbox: String,
    /// HASH workitem id → workitem JSON: the proceedable workitems.
    pub workitems: String,
    /// LIST of history events (JSON), oldest first, capped.
    pub history: String,
    pub stream: String,
    pub timers: String,
    /// ZSET id → launched ms: every workflow of the shard.
    pub index: String,
    /// ZSET id → launched ms per status ([`STATUSES`] order).
    pub by_status: [String; 4],
    /// The shard's delivery index (callbacks are outbox deliveries).
    pub deliveries: String,
    pub shard: u16,
}

impl WorkflowKeys {
    /// The keys that expire with a finished workflow.
    pub fn own(&self) -> [&str; 4] {
        [&self.record, &self.inbox, &self.workitems, &self.history]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_a_workflow_is_on_its_shard() {
        let keys = Keys::new("sy", 64);
        let k = keys.workflow("20151005-1247-kogadeso-gekunute");
        let tag = keys.shard_base(k.shard);
        let all = [
            &k.record,
            &k.inbox,
            &k.workitems,
            &k.history,
            &k.stream,
            &k.timers,
            &k.index,
            &k.deliveries,
        ];
        for key in all.into_iter().chain(k.by_status.iter()) {
            assert!(key.starts_with(&tag), "{key} not under {tag}");
        }
        assert!(
            k.record
                .ends_with(":wf:20151005-1247-kogadeso-gekunute:rec")
        );
        assert_eq!(
            k.by_status[1],
            keys.workflow_status_index(k.shard, "completed")
        );
        let mut distinct: Vec<&String> = all.into_iter().chain(k.by_status.iter()).collect();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 12);
    }

    #[test]
    fn an_idempotency_key_names_its_shard() {
        let keys = Keys::new("sy", 64);
        let shard = keys.workflow_idempotency_shard("order-42");
        assert!(
            keys.workflow_idempotency("order-42")
                .starts_with(&keys.shard_base(shard))
        );
    }
}
