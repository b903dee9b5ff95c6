//! `switchyard bench transactions`: the Robbyson ingestion API — (1) items/s
//! accepted through HTTP in batches of 500, (2) items/s through the whole
//! pipeline (Import → Validate → Consolidate) to Done, (3) Redis memory per
//! staged and per consolidated item, and (4) the consolidate step
//! (`lua/transactions/step.lua` with a page of 500 upserts) under
//! `redis-benchmark`, with the ratio of (2) to (4).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};
use switchyard_shared::Redis;
use switchyard_shared::config::WorkerConfig;
use switchyard_shared::families::transactions::keys::TenantKeys;
use switchyard_shared::families::transactions::scripts::TX_STEP;
use switchyard_shared::platform::outbox;

use super::common::{
    Deployment, ScriptArgs, ServerArgs, bench_config, each_client, unix_socket, with_redis,
};

#[derive(Args)]
pub struct TransactionsBench {
    /// Concurrent clients, each a tenant of its own with one transaction
    /// (one tenant's transactions consolidate one at a time, in commit order).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Batches of 500 collaborators each client sends.
    #[arg(long, default_value_t = 10)]
    batches: usize,
    #[command(flatten)]
    server: ServerArgs,
    /// The redis-benchmark executable.
    #[arg(long, default_value = "redis-benchmark")]
    redis_benchmark: PathBuf,
    /// Calls of the consolidate script under redis-benchmark (each upserts 500 items).
    #[arg(long, default_value_t = 2000)]
    requests: u64,
}

/// Items per batch (the API's limit) and per consolidate step.
const BATCH: usize = 500;

pub fn run(b: TransactionsBench) -> anyhow::Result<()> {
    with_redis(&b, None, &b.server, "transactions", None, bench)
}

async fn bench(b: &TransactionsBench, url: &str) -> anyhow::Result<()> {
    let d = Deployment::connect(url).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let mut config = bench_config(&base);
    config.families.transactions.transactions_tenants =
        (0..b.clients).map(|c| format!("token{c}=c{c}")).collect();
    let app = switchyard_api::build(d.pool.clone(), d.keys.clone(), config.clone())?;
    tokio::spawn(switchyard_api::serve(
        listener,
        app,
        d.stop.clone(),
        Duration::from_secs(5),
    ));

    // (1) Staging through HTTP, no worker running.
    let mem0 = used_memory(&d.pool).await?;
    let items = (b.clients * b.batches * BATCH) as u64;
    let started = Instant::now();
    let batches = b.batches;
    let ids = each_client(b.clients, |c| {
        let base = base.clone();
        async move { stage_all(&base, c, batches).await }
    })
    .await?;
    let http_secs = started.elapsed().as_secs_f64();
    let mem1 = used_memory(&d.pool).await?;
    println!(
        "(1) HTTP: {} clients × {} batches of {BATCH} collaborators: {items} items accepted in {http_secs:.2} s = {:.0} items/s",
        b.clients,
        b.batches,
        items as f64 / http_secs
    );

    // (2) The pipeline, with one in-process worker.
    let mut wcfg = WorkerConfig::default();
    wcfg.worker.worker_block = Duration::from_millis(20);
    wcfg.families = config.families.clone();
    wcfg.outbox = config.outbox.clone();
    let worker = std::sync::Arc::new(switchyard_worker::build(
        d.pool.clone(),
        d.keys.clone(),
        &wcfg,
    )?);
    tokio::spawn(worker.run(d.stop.clone()));
    let http = reqwest::Client::new();
    let committing = Instant::now();
    for (c, id) in ids.iter().enumerate() {
        let r = http
            .post(format!("{base}/v1/transactions/{id}"))
            .header("token", format!("token{c}"))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "commit: {}", r.text().await?);
    }
    let tenants: Vec<TenantKeys> = (0..b.clients)
        .map(|c| d.keys.tenant(&format!("c{c}")))
        .collect();
    wait_done(&d.pool, &tenants, &ids).await?;
    let pipe_secs = committing.elapsed().as_secs_f64();
    let pipeline_rate = items as f64 / pipe_secs;
    println!(
        "(2) pipeline: commit → all {} transactions Done (Import, Validate, Consolidate; one worker, concurrency 64): {pipe_secs:.2} s = {pipeline_rate:.0} items/s \
         (from the first batch: {:.0} items/s)",
        ids.len(),
        items as f64 / (http_secs + pipe_secs)
    );

    // (3) Memory.
    let own: u64 = {
        let mut total = 0;
        for (t, id) in tenants.iter().zip(&ids) {
            let k = t.tx(id);
            for key in k.own() {
                total += memory_usage(&d.pool, key).await?;
            }
        }
        total
    };
    let mut consolidated = 0u64;
    let mut store_bytes = 0u64;
    for t in &tenants {
        consolidated += redis::cmd("HLEN")
            .arg(&t.store[0])
            .query_async::<u64>(&mut d.pool.conn())
            .await?;
        store_bytes += memory_usage(&d.pool, &t.store[0]).await?
            + memory_usage(&d.pool, &t.store_index[0]).await?;
    }
    anyhow::ensure!(
        consolidated == items,
        "{consolidated} consolidated of {items}"
    );
    println!(
        "(3) Redis memory per staged item: {:.0} B as accepted (INFO used_memory delta over staging: the batches as sent), \
         {:.0} B after the pipeline (MEMORY USAGE of each transaction's own keys: batches, staged entries, order, valid list; expire with --transaction-retention); \
         per consolidated item: {:.0} B (MEMORY USAGE of the store hashes and their key indexes; never expire)",
        mem1.saturating_sub(mem0) as f64 / items as f64,
        own as f64 / items as f64,
        store_bytes as f64 / consolidated as f64
    );
    d.stop.cancel();

    // (4) The consolidate step under redis-benchmark.
    let script_items = script_phase(b, &d, url).await?;
    println!();
    println!(
        "ratio (2) ÷ (4) items/s: {:.3}  (the pipeline also stages, imports and validates each item, reads before it writes, and runs 3 steps per page)",
        pipeline_rate / script_items
    );
    Ok(())
}

/// One client: open a transaction and send its batches; answers its id.
async fn stage_all(base: &str, c: usize, batches: usize) -> anyhow::Result<String> {
    let http = reqwest::Client::new();
    let token = format!("token{c}");
    let r = http
        .post(format!("{base}/v1/transactions/"))
        .header("token", &token)
        .send()
        .await?;
    let v: Value = r.json().await?;
    let id = v["data"]["_id"].as_str().context("no _id")?.to_owned();
    for b in 0..batches {
        let items: Vec<Value> = (0..BATCH)
            .map(|i| {
                json!({"name": format!("Collaborator {c}-{b}-{i}"), "identification": format!("{c}-{b}-{i}"),
                       "genre": "F", "active": true, "birthDate": "1990-01-01", "email": "someone@example.com"})
            })
            .collect();
        let r = http
            .post(format!("{base}/v1/collaborators/?transaction_id={id}"))
            .header("token", &token)
            .header("content-type", "application/json")
            .body(Value::Array(items).to_string())
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "batch: {}", r.text().await?);
    }
    Ok(id)
}

/// Poll the records until every transaction is Done (7).
async fn wait_done(pool: &Redis, tenants: &[TenantKeys], ids: &[String]) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let mut pipe = redis::pipe();
        for (t, id) in tenants.iter().zip(ids) {
            pipe.cmd("HGET").arg(t.tx(id).record).arg("status");
        }
        let statuses: Vec<Option<u8>> = pipe.query_async(&mut pool.conn()).await?;
        if statuses.iter().all(|s| *s == Some(7)) {
            return Ok(());
        }
        anyhow::ensure!(
            statuses.iter().all(|s| matches!(s, Some(1..=7))),
            "a transaction did not reach Done: {statuses:?}"
        );
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(600),
            "pipeline too slow"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn used_memory(pool: &Redis) -> anyhow::Result<u64> {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut pool.conn())
        .await?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|n| n.trim().parse().ok())
        .context("INFO memory has no used_memory")
}

/// `MEMORY USAGE key SAMPLES 0` (every element counted); 0 for no key.
async fn memory_usage(pool: &Redis, key: &str) -> anyhow::Result<u64> {
    let n: Option<u64> = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .arg("SAMPLES")
        .arg(0)
        .query_async(&mut pool.conn())
        .await?;
    Ok(n.unwrap_or(0))
}

/// (4) `lua/transactions/step.lua` applying one consolidate page of 500
/// collaborator upserts, as the worker computes it, into a fresh
/// transaction record per call. redis-benchmark replaces each
/// `__rand_int__` with a different number, so it appears once in the keys
/// (the record, the checkpoint fence) and once per upserted store field
/// (500 distinct items per call); the transaction's other keys, untouched
/// by a consolidate step short of the last, are fixed. Answers items/s.
async fn script_phase(b: &TransactionsBench, d: &Deployment, url: &str) -> anyhow::Result<f64> {
    let t = d.keys.tenant("rb");
    let fixed = t.tx("rb");
    let record_tpl = t.tx("rb-__rand_int__").record;
    let records = (b.requests * 4).max(1);
    seed_records(&d.pool, &record_tpl, records).await?;
    let rec = r#"{"__v":0,"name":"Collaborator","identification":"x","genre":"F","active":true,"birthDate":"1990-01-01","email":"someone@example.com","stackId":"rb","contractorId":"rb"}"#;
    let store: Vec<Value> = (0..BATCH)
        .map(|i| json!([1, format!("{i}-__rand_int__"), rec]))
        .collect();
    let results = json!({"staged": [], "order": [], "skipped": 0, "superseded": 0, "valid": [],
        "errors": [], "unstore": [], "store": store, "consolidated": BATCH})
    .to_string();
    let deliveries: Vec<(String, String)> = (0..3)
        .map(|_| {
            let id = outbox::new_id(t.shard);
            let rec = d.keys.delivery(t.shard, &id).record;
            (id, rec)
        })
        .collect();
    let mut keys: Vec<String> = vec![
        record_tpl,
        fixed.staged.clone(),
        fixed.order.clone(),
        fixed.valid.clone(),
        fixed.errors.clone(),
        t.queue.clone(),
        t.stream.clone(),
        t.deliveries.clone(),
    ];
    keys.extend(t.store.iter().cloned());
    keys.extend(t.store_index.iter().cloned());
    keys.extend([fixed.chunks.clone(), fixed.idem.clone()]);
    keys.extend(deliveries.iter().map(|(_, r)| r.clone()));
    let mut cmd: Vec<String> = vec![
        "EVALSHA".into(),
        TX_STEP.get_hash().into(),
        keys.len().to_string(),
    ];
    cmd.extend(keys);
    cmd.extend(
        [
            "rb",
            "rb",
            "0",
            "consolidate",
            "500",
            &results,
            "3600000",
            "svix",
            "",
            "",
            "",
        ]
        .map(str::to_owned),
    );
    cmd.extend(deliveries.into_iter().map(|(id, _)| id));

    // One call by hand: it must apply.
    let sample: Vec<String> = cmd
        .iter()
        .map(|a| a.replace("__rand_int__", &format!("{:012}", records - 1)))
        .collect();
    let reply: String = redis::cmd("EVALSHA")
        .arg(&sample[1..])
        .query_async(&mut d.pool.conn())
        .await
        .context("one consolidate step by hand")?;
    anyhow::ensure!(reply.contains(r#""ok":true"#), "step by hand: {reply}");
    let applied0 = applied(&d.pool, &t, records).await?;

    let args = ScriptArgs {
        server: b.server.clone(),
        redis_benchmark: b.redis_benchmark.clone(),
        requests: b.requests,
    };
    let (rps, text) = args.redis_benchmark(unix_socket(url)?, records, &cmd)?;
    let share = (applied(&d.pool, &t, records).await? - applied0) as f64 / b.requests as f64;
    anyhow::ensure!(share > 0.0, "no call applied: {text}");
    let items_per_s = rps * share * BATCH as f64;
    println!(
        "(4) redis-benchmark, EVALSHA lua/transactions/step.lua: one consolidate page ({BATCH} upserts into the store hash and its index, {} bytes of ARGV) \
         into a fresh record per call (__rand_int__ over {records} records): {rps:.0} calls/s, {:.1}% applied (the rest drew a record already \
         consolidated and stopped at the checkpoint fence) = {items_per_s:.0} items/s",
        results.len(),
        share * 100.0
    );
    Ok(items_per_s)
}

/// `records` transaction records (`record_tpl` with `__rand_int__` as
/// redis-benchmark writes it, 0 … records-1), Consolidating at checkpoint 0.
async fn seed_records(pool: &Redis, record_tpl: &str, records: u64) -> anyhow::Result<()> {
    let mut conn = pool.conn();
    let mut i = 0;
    while i < records {
        let end = (i + 5000).min(records);
        let mut p = redis::pipe();
        for n in i..end {
            p.cmd("HSET")
                .arg(record_tpl.replace("__rand_int__", &format!("{n:012}")))
                .arg(&[
                    ("id", "rb"),
                    ("status", "6"),
                    ("stage", "consolidate"),
                    ("ckpt", "0"),
                    ("pos", "0"),
                    ("total", "1000000000"),
                    ("invalid", "0"),
                    ("consolidated", "0"),
                    ("callback", ""),
                ])
                .ignore();
        }
        p.query_async::<()>(&mut conn).await?;
        i = end;
    }
    Ok(())
}

/// How many of the seeded records a step was applied to (checkpoint moved).
async fn applied(pool: &Redis, t: &TenantKeys, records: u64) -> anyhow::Result<u64> {
    let mut pipe = redis::pipe();
    for n in 0..records {
        pipe.cmd("HGET")
            .arg(t.tx(&format!("rb-{n:012}")).record)
            .arg("ckpt");
    }
    let ckpts: Vec<Option<u64>> = pipe.query_async(&mut pool.conn()).await?;
    Ok(ckpts.iter().filter(|c| c.unwrap_or(0) > 0).count() as u64)
}
