//! Newest-first paging over per-shard index ZSETs (score = creation time in
//! ms). A cursor `ms:id` names the first item of the next page.

use redis::aio::ConnectionLike;

/// Parse a cursor this API gave out.
pub fn parse_cursor(s: &str) -> Option<(i64, String)> {
    let (ms, id) = s.split_once(':')?;
    Some((ms.parse().ok()?, id.to_owned()))
}

pub fn cursor(ms: i64, id: &str) -> String {
    format!("{ms}:{id}")
}

/// Candidates from every shard's index, newest first, from `cursor` on,
/// at most `per_shard` from each: (created ms, id, shard).
pub async fn newest_first<C: ConnectionLike + Send>(
    conn: &mut C,
    indexes: impl IntoIterator<Item = (u16, String)>,
    per_shard: usize,
    from: Option<&(i64, String)>,
) -> redis::RedisResult<Vec<(i64, String, u16)>> {
    let max = from.map_or("+inf".to_owned(), |(ms, _)| ms.to_string());
    let mut cands = Vec::new();
    for (shard, index) in indexes {
        let rows: Vec<(String, f64)> = redis::cmd("ZREVRANGEBYSCORE")
            .arg(index)
            .arg(&max)
            .arg("-inf")
            .arg("WITHSCORES")
            .arg("LIMIT")
            .arg(0)
            .arg(per_shard)
            .query_async(conn)
            .await?;
        cands.extend(rows.into_iter().map(|(id, s)| (s as i64, id, shard)));
    }
    if let Some((cms, cid)) = from {
        cands.retain(|(ms, id, _)| ms < cms || (ms == cms && id <= cid));
    }
    cands.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
    Ok(cands)
}
