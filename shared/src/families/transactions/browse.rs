//! Reads across tenants, for operators (the web console): every tenant's
//! transactions merged newest first, finding a transaction by id alone,
//! tallies for the overview, and cheap fingerprints for live updates. The
//! JSON API stays per tenant (its `token` header); these reads take the
//! configured contractors instead and never change anything.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use redis::AsyncCommands;

use super::keys::TenantKeys;
use super::model::Status;
use super::store::{LIST_BUDGET, TransactionStore, TxError};
use super::views::{TxData, TxView};
use crate::platform::paging::{NewestFirst, Page};

/// The newest transactions per tenant whose changes a listing's
/// fingerprint sees (besides every new, aborted or queued one).
pub const WATCHED: usize = 10;

/// A transaction with the tenant (contractor id) it belongs to.
#[derive(Debug, Clone)]
pub struct TenantTx {
    pub contractor: String,
    pub data: TxData,
}

/// A page of transactions of several tenants, newest first.
#[derive(Debug, Clone)]
pub struct BrowsePage {
    pub items: Vec<TenantTx>,
    /// The first entry of the next page (`ms:id`), `None` at the end.
    pub next_cursor: Option<String>,
}

/// Statuses of the newest transactions, counted for the overview.
#[derive(Debug, Clone, Default)]
pub struct Tallies {
    /// Transactions kept (every tenant's index).
    pub total: u64,
    /// Open (uncommitted) transactions.
    pub open: u64,
    /// Committed and waiting for or in the pipeline.
    pub running: u64,
    /// Among the newest `scanned`: how many have each status code.
    pub by_status: HashMap<u8, u64>,
    pub scanned: usize,
    /// The newest invalidated (8) or failed (11) ones first, then those
    /// done with errors (10): (contractor, id, status), at most `failing_max`.
    pub failing: Vec<(String, String, u8)>,
}

impl TransactionStore {
    fn tenants_of(&self, contractors: &[String]) -> Vec<TenantKeys> {
        contractors.iter().map(|c| self.keys.tenant(c)).collect()
    }

    /// The transactions of `contractors`, merged newest first, from
    /// `cursor` on; `status` filters. At most [`LIST_BUDGET`] index entries
    /// are examined per page (a filter may skip many): the cursor then
    /// names the next unexamined one, so paging goes on to the end.
    pub async fn browse(
        &self,
        contractors: &[String],
        status: Option<u8>,
        cursor: Option<&(i64, String)>,
        limit: usize,
    ) -> Result<BrowsePage, TxError> {
        let tenants = self.tenants_of(contractors);
        let indexes = tenants
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((u16::try_from(i).ok()?, t.txs.clone())));
        let mut it = NewestFirst::new(indexes, limit + 1, cursor);
        let mut page = Page::new(limit, LIST_BUDGET);
        let mut conn = self.pool.conn();
        let next = loop {
            let (_, id, i) = match page.next(&mut it, &mut conn).await? {
                Ok(entry) => entry,
                Err(next) => break next,
            };
            let i = usize::from(i);
            let rec: HashMap<String, String> = conn.hgetall(&tenants[i].tx(&id).record).await?;
            if rec.is_empty() {
                // Expired; the JSON API's listing drops it from the index.
                continue;
            }
            let view = TxView::from_record(&id, &rec, vec![]);
            if status.is_none_or(|s| s == view.data.status) {
                page.items.push(TenantTx {
                    contractor: contractors[i].clone(),
                    data: view.data,
                });
            }
        };
        Ok(BrowsePage {
            items: page.items,
            next_cursor: next,
        })
    }

    /// The tenant among `contractors` holding transaction `id` (ids begin
    /// with their contractor's id, so few are asked), with the transaction.
    pub async fn find(
        &self,
        contractors: &[String],
        id: &str,
    ) -> Result<Option<(String, TxView)>, TxError> {
        for c in contractors.iter().filter(|c| id.starts_with(c.as_str())) {
            match self.get(c, id).await {
                Ok(view) => return Ok(Some((c.clone(), view))),
                Err(TxError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Counts for the overview: totals from the tenants' indexes and
    /// queues, statuses of the newest `scan` transactions (one pipelined
    /// read), and up to `failing_max` of those that need a look.
    pub async fn tallies(
        &self,
        contractors: &[String],
        scan: usize,
        failing_max: usize,
    ) -> Result<Tallies, TxError> {
        let tenants = self.tenants_of(contractors);
        let mut conn = self.pool.conn();
        let mut tallies = Tallies::default();
        if tenants.is_empty() {
            return Ok(tallies);
        }
        let mut pipe = redis::pipe();
        for t in &tenants {
            pipe.zcard(&t.txs).scard(&t.open).llen(&t.queue);
        }
        let n: Vec<u64> = pipe.query_async(&mut conn).await?;
        for c in n.chunks(3) {
            tallies.total += c[0];
            tallies.open += c[1];
            tallies.running += c[2];
        }
        let indexes = tenants
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((u16::try_from(i).ok()?, t.txs.clone())));
        let mut it = NewestFirst::new(indexes, scan.min(512), None);
        let mut newest = Vec::new();
        while newest.len() < scan {
            match it.next(&mut conn).await? {
                Some((_, id, i)) => newest.push((usize::from(i), id)),
                None => break,
            }
        }
        let mut pipe = redis::pipe();
        for (i, id) in &newest {
            pipe.hget(&tenants[*i].tx(id).record, "status");
        }
        let statuses: Vec<Option<u8>> = pipe.query_async(&mut conn).await?;
        let mut failing = Vec::new();
        let mut with_errors = Vec::new();
        for ((i, id), s) in newest.iter().zip(statuses) {
            let Some(s) = s else { continue };
            tallies.scanned += 1;
            *tallies.by_status.entry(s).or_default() += 1;
            let entry = (contractors[*i].clone(), id.clone(), s);
            match Status::from_code(s) {
                Some(Status::Invalidated | Status::ImportError) => failing.push(entry),
                Some(Status::DoneWithErrors) => with_errors.push(entry),
                _ => {}
            }
        }
        failing.extend(with_errors);
        failing.truncate(failing_max);
        tallies.failing = failing;
        Ok(tallies)
    }

    /// A cheap digest of what a listing of `contractors` shows: per tenant
    /// its index size, open set size and queue, then the status, stage,
    /// progress and received count of its [`WATCHED`] newest transactions
    /// and of its queue's head (two pipelined round trips).
    pub async fn list_fingerprint(&self, contractors: &[String]) -> Result<u64, TxError> {
        let tenants = self.tenants_of(contractors);
        let mut h = DefaultHasher::new();
        if tenants.is_empty() {
            return Ok(h.finish());
        }
        let mut conn = self.pool.conn();
        let mut pipe = redis::pipe();
        for t in &tenants {
            pipe.zcard(&t.txs)
                .scard(&t.open)
                .lrange(&t.queue, 0, -1)
                .zrevrange(&t.txs, 0, WATCHED as isize - 1);
        }
        let first: Vec<(u64, u64, Vec<String>, Vec<String>)> = pipe.query_async(&mut conn).await?;
        first.hash(&mut h);
        let mut pipe = redis::pipe();
        let mut asked = 0;
        for (t, (_, _, queue, newest)) in tenants.iter().zip(&first) {
            for id in queue.first().into_iter().chain(newest) {
                pipe.hmget(&t.tx(id).record, &["status", "stage", "pos", "received"]);
                asked += 1;
            }
        }
        if asked > 0 {
            let fields: Vec<Vec<Option<String>>> = pipe.query_async(&mut conn).await?;
            fields.hash(&mut h);
        }
        Ok(h.finish())
    }

    /// A cheap digest of what a transaction's page shows: its record and
    /// the number of its errors (for each tenant whose id it could be).
    pub async fn tx_fingerprint(&self, contractors: &[String], id: &str) -> Result<u64, TxError> {
        let mut pipe = redis::pipe();
        let mut h = DefaultHasher::new();
        let mut asked = false;
        for c in contractors.iter().filter(|c| id.starts_with(c.as_str())) {
            let k = self.keys.tenant(c).tx(id);
            pipe.hgetall(&k.record).llen(&k.errors);
            asked = true;
        }
        if !asked {
            return Ok(h.finish());
        }
        let raw: Vec<redis::Value> = pipe.query_async(&mut self.pool.conn()).await?;
        format!("{raw:?}").hash(&mut h);
        Ok(h.finish())
    }
}
