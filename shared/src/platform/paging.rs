//! Newest-first paging over per-shard index ZSETs (score = creation time in
//! ms). A cursor `ms:id` names the first item of the next page.
//!
//! [`NewestFirst`] merges the shards' indexes in one order (created
//! descending, then id descending) and reads each index lazily, a batch at
//! a time, so a list can skip any number of stale entries (items expired
//! after their retention) without ending its page early. [`Page`] is the
//! loop every list runs over it: it stops when the page is full, when the
//! indexes are exhausted (no cursor), or when it has examined its budget of
//! entries (then the cursor names the next unexamined entry, so paging
//! never answers `next_cursor: null` while more may exist).

use std::collections::VecDeque;

use redis::aio::ConnectionLike;

/// Parse a cursor this API gave out.
pub fn parse_cursor(s: &str) -> Option<(i64, String)> {
    let (ms, id) = s.split_once(':')?;
    Some((ms.parse().ok()?, id.to_owned()))
}

pub fn cursor(ms: i64, id: &str) -> String {
    format!("{ms}:{id}")
}

/// Largest batch read from one index at once.
const MAX_BATCH: usize = 512;

/// One shard's index, read a batch at a time.
struct ShardReader {
    shard: u16,
    index: String,
    buf: VecDeque<(i64, String)>,
    /// Where the next read starts: entries ordered after (ms, id) — or at
    /// it, when `inclusive` (the client's cursor).
    from: Option<(i64, String, bool)>,
    /// Entries the next read asks for (doubles per read, up to [`MAX_BATCH`]).
    batch: usize,
    done: bool,
}

/// Is `(ms, id)` at or after the bound in newest-first order?
fn after(ms: i64, id: &str, from: &Option<(i64, String, bool)>) -> bool {
    match from {
        None => true,
        Some((fms, fid, inclusive)) => {
            ms < *fms || (ms == *fms && (id < fid.as_str() || (*inclusive && id == fid)))
        }
    }
}

impl ShardReader {
    /// Read the next batch. Entries of one ms that were already read are
    /// skipped by value (not by offset), so entries removed meanwhile (by
    /// a list or the pruner) never make a read skip a live one.
    async fn fill<C: ConnectionLike + Send>(&mut self, conn: &mut C) -> redis::RedisResult<usize> {
        let batch = self.batch;
        self.batch = (batch * 2).min(MAX_BATCH);
        let max = self
            .from
            .as_ref()
            .map_or("+inf".to_owned(), |(ms, _, _)| ms.to_string());
        // Entries at the bound's ms come first; read past those already seen.
        let mut want = batch;
        let mut read = 0;
        loop {
            let rows: Vec<(String, f64)> = redis::cmd("ZREVRANGEBYSCORE")
                .arg(&self.index)
                .arg(&max)
                .arg("-inf")
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(want)
                .query_async(conn)
                .await?;
            read += rows.len();
            let full = rows.len() == want;
            self.buf.extend(
                rows.into_iter()
                    .map(|(id, s)| (s as i64, id))
                    .filter(|(ms, id)| after(*ms, id, &self.from)),
            );
            if !full {
                self.done = true;
                return Ok(read);
            }
            if let Some((ms, id)) = self.buf.back() {
                self.from = Some((*ms, id.clone(), false));
                return Ok(read);
            }
            // A whole batch of one ms, all seen already: read further.
            want += batch;
        }
    }
}

/// Every shard's index merged newest first, from a cursor on.
pub struct NewestFirst {
    shards: Vec<ShardReader>,
}

impl NewestFirst {
    /// `batch`: entries read from one index at first (doubled on each
    /// further read of that index, up to 512).
    pub fn new(
        indexes: impl IntoIterator<Item = (u16, String)>,
        batch: usize,
        from: Option<&(i64, String)>,
    ) -> Self {
        let from = from.map(|(ms, id)| (*ms, id.clone(), true));
        let batch = batch.clamp(1, MAX_BATCH);
        Self {
            shards: indexes
                .into_iter()
                .map(|(shard, index)| ShardReader {
                    shard,
                    index,
                    buf: VecDeque::new(),
                    from: from.clone(),
                    batch,
                    done: false,
                })
                .collect(),
        }
    }

    /// The next entry, (created ms, id, shard), or `None` when every index
    /// is exhausted.
    pub async fn next<C: ConnectionLike + Send>(
        &mut self,
        conn: &mut C,
    ) -> redis::RedisResult<Option<(i64, String, u16)>> {
        for s in &mut self.shards {
            if s.buf.is_empty() && !s.done {
                s.fill(conn).await?;
            }
        }
        let best = self
            .shards
            .iter_mut()
            .filter(|s| !s.buf.is_empty())
            .max_by(|a, b| {
                let (x, y) = (&a.buf[0], &b.buf[0]);
                (x.0, &x.1).cmp(&(y.0, &y.1))
            });
        Ok(best.map(|s| {
            let (ms, id) = s.buf.pop_front().expect("non-empty");
            (ms, id, s.shard)
        }))
    }
}

/// One page being assembled from a [`NewestFirst`]: at most `limit` items,
/// at most `budget` entries examined.
pub struct Page<T> {
    pub items: Vec<T>,
    limit: usize,
    budget: usize,
    examined: usize,
}

impl<T> Page<T> {
    pub fn new(limit: usize, budget: usize) -> Self {
        Self {
            items: Vec::new(),
            limit,
            budget: budget.max(1),
            examined: 0,
        }
    }

    /// The next entry to examine, or the page's end: `Err(next_cursor)`
    /// when the page is full or the budget spent (the cursor names the
    /// entry not examined; `None` when no entry is left).
    pub async fn next<C: ConnectionLike + Send>(
        &mut self,
        it: &mut NewestFirst,
        conn: &mut C,
    ) -> redis::RedisResult<Result<(i64, String, u16), Option<String>>> {
        let Some((ms, id, shard)) = it.next(conn).await? else {
            return Ok(Err(None));
        };
        if self.items.len() >= self.limit || self.examined >= self.budget {
            return Ok(Err(Some(cursor(ms, &id))));
        }
        self.examined += 1;
        Ok(Ok((ms, id, shard)))
    }
}
