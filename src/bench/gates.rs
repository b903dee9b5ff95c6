//! `switchyard bench gates`: test-and-set + release through HTTP, and the
//! same Lua script driven by `redis-benchmark`, with the ratio.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use switchyard_shared::families::gates::scripts;
use switchyard_shared::families::gates::{GateKeys, GateSettings, GateStore};
use switchyard_shared::{Keys, Redis};

use super::common::{
    Deployment, ScriptArgs, bench_config, each_client, p50_p99_ms, parse_duration, unix_socket,
    with_redis,
};

#[derive(Args)]
pub struct GatesBench {
    /// Use this Redis (default: a private redis-server in a temp dir).
    #[arg(long, env = "SWITCHYARD_REDIS_URL")]
    redis_url: Option<String>,
    /// Concurrent HTTP clients, each on its own gate.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// How long the HTTP phase runs.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Gates pre-created for the redis-benchmark phase (random pick per call,
    /// so most calls take the grant path).
    #[arg(long, default_value_t = 500_000)]
    keyspace: u64,
    #[command(flatten)]
    redis: ScriptArgs,
}

pub fn run(g: GatesBench) -> anyhow::Result<()> {
    let url = g.redis_url.clone();
    with_redis(&g, url, &g.redis.server, "gates", None, bench)
}

async fn bench(g: &GatesBench, url: &str) -> anyhow::Result<()> {
    let d = Deployment::connect(url).await?;
    let base = d.start_api().await?;
    let http_rate = http_phase(g.clients, g.duration, &d.pool, &d.keys, &base)
        .await?
        .per_sec;
    d.stop.cancel();
    let rps = lua_phase(g, &d.pool, &d.keys.gates("bench"), url).await?;
    report(http_rate, rps);
    Ok(())
}

/// What the HTTP phase did: iterations (test-and-set + release) and their rate.
pub struct HttpRun {
    pub iterations: usize,
    pub per_sec: f64,
}

/// Phase 1: HTTP through the API at `base`, `clients` clients for
/// `duration`, each on its own gate: test-and-set, then release. Prints
/// rates and latencies (also used by `bench cluster`).
pub async fn http_phase(
    clients: usize,
    duration: Duration,
    pool: &Redis,
    keys: &Keys,
    base: &str,
) -> anyhow::Result<HttpRun> {
    let gates = GateStore::new(
        pool.clone(),
        keys,
        GateSettings::from(&bench_config(base).families.gates),
    );
    for i in 0..clients {
        gates
            .create_service(&format!("svc{i}"), "bench", &["live".to_owned()], "bench")
            .await?;
    }
    println!("HTTP phase: {clients} clients, {duration:?}, test-and-set + release per iteration");
    let start = Instant::now();
    let http = reqwest::Client::new();
    let per_client = each_client(clients, |i| {
        http_client(http.clone(), base.to_owned(), i, start, duration)
    })
    .await?;
    let (mut tas_lat, mut rel_lat): (Vec<_>, Vec<_>) = per_client.into_iter().flatten().unzip();
    let elapsed = start.elapsed().as_secs_f64();
    let pairs = tas_lat.len() as f64;
    println!(
        "  iterations (test-and-set + release): {:.0}/s",
        pairs / elapsed
    );
    println!(
        "  HTTP requests:                       {:.0}/s",
        2.0 * pairs / elapsed
    );
    let (tas50, tas99) = p50_p99_ms(&mut tas_lat);
    let (rel50, rel99) = p50_p99_ms(&mut rel_lat);
    println!(
        "  test-and-set latency p50 {tas50:.2} ms, p99 {tas99:.2} ms; release p50 {rel50:.2} ms, p99 {rel99:.2} ms"
    );
    Ok(HttpRun {
        iterations: tas_lat.len(),
        per_sec: pairs / elapsed,
    })
}

/// One HTTP client on gate `svc{i}` until `start + dur`: answers the
/// latencies of each (test-and-set, release) pair.
async fn http_client(
    http: reqwest::Client,
    base: String,
    i: usize,
    start: Instant,
    dur: Duration,
) -> anyhow::Result<Vec<(Duration, Duration)>> {
    let body = format!(r#"{{"services": {{"svc{i}": ["live"]}}}}"#);
    let mut lat = Vec::new();
    while start.elapsed() < dur {
        let t0 = Instant::now();
        let r = http
            .put(format!("{base}/api/services"))
            .body(body.clone())
            .send()
            .await?;
        let v: serde_json::Value = r.json().await?;
        let t1 = Instant::now();
        let id = v["ticket"]["id"]
            .as_str()
            .context("no ticket: not granted")?
            .to_owned();
        let r = http
            .delete(format!("{base}/api/tickets/{id}"))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "release failed: {}", r.status());
        let t2 = Instant::now();
        lat.push((t1 - t0, t2 - t1));
    }
    Ok(lat)
}

/// Phase 2: the same test-and-set script under redis-benchmark, over
/// pre-created gates. Answers calls/s.
async fn lua_phase(g: &GatesBench, pool: &Redis, gk: &GateKeys, url: &str) -> anyhow::Result<f64> {
    let socket = unix_socket(url)?;
    let prefix = gk.state("rb", "");
    let made = fill_keyspace(pool, &prefix, g.keyspace).await?;
    println!(
        "redis-benchmark phase: {} EVALSHA lua/gates/tas.lua calls over {} pre-created gates ({made} made), 50 clients",
        g.redis.requests, g.keyspace
    );
    // Every grant increments the namespace's fence: count them.
    let fence = || async {
        let n: Option<u64> = redis::cmd("GET")
            .arg(gk.fence())
            .query_async(&mut pool.conn())
            .await?;
        anyhow::Ok(n.unwrap_or(0))
    };
    let before = fence().await?;
    let (rps, _) = g
        .redis
        .redis_benchmark(socket, g.keyspace, &tas_command(gk, &prefix))?;
    let granted = fence().await? - before;
    println!(
        "  Lua test-and-set: {rps:.0} calls/s ({granted} of {} calls granted)",
        g.redis.requests
    );
    Ok(rps)
}

/// Pre-create the gates redis-benchmark picks from: keys named like its
/// 12-digit __rand_int__ placeholders. In chunks, so no call runs long.
/// Answers how many were made.
async fn fill_keyspace(pool: &Redis, prefix: &str, keyspace: u64) -> anyhow::Result<u64> {
    let mut conn = pool.conn();
    let fill = redis::Script::new(
        "for i = tonumber(ARGV[2]), tonumber(ARGV[3]) - 1 do \
           redis.call('HSET', ARGV[1] .. string.format('%012d', i), 'state', 'open', 'state_ts', 0, 'message', '', 'message_ts', '') \
         end return 1",
    );
    let mut made = 0;
    while made < keyspace {
        let end = (made + 20_000).min(keyspace);
        let _: i64 = fill
            .arg(prefix)
            .arg(made)
            .arg(end)
            .invoke_async(&mut conn)
            .await?;
        made = end;
    }
    Ok(made)
}

/// `EVALSHA lua/gates/tas.lua …`: one test-and-set of environment `live` on a
/// random pre-created gate, as `GateStore::tas` sends it.
///
/// redis-benchmark draws a new number for every `__rand_int__` in a command,
/// so the command holds exactly one: the gate's state key, which picks the
/// pre-created gate. Its queue and history are those of one fixed gate, and
/// the ticket id is fixed too: the queue's head is then always our own id,
/// so every call takes the grant path (the same reads and writes as a grant
/// on an empty queue; the fixed queue grows by one entry per call).
fn tas_command(gk: &GateKeys, prefix: &str) -> Vec<String> {
    let today = switchyard_shared::time::today(switchyard_shared::time::utc_now());
    vec![
        "EVALSHA".into(),
        scripts::GATES_TAS.get_hash().to_owned(),
        "9".into(),
        gk.services(),
        gk.tickets(),
        gk.expiry(),
        gk.fence(),
        gk.holidays(),
        format!("{prefix}__rand_int__"),
        gk.queue("rb", "live"),
        gk.history("rb", "live"),
        gk.gone(),
        "rb-ticket".into(),
        "0".into(),
        "0".into(),
        "120000".into(),
        "3600000".into(),
        "100".into(),
        today,
        String::new(),
        "bench".into(),
        "1".into(),
        "rb".into(),
        "live".into(),
        "0".into(),
        String::new(),
        "600000".into(),
    ]
}

fn report(http_rate: f64, rps: f64) {
    println!();
    println!(
        "ratio: HTTP test-and-set (each followed by a release) {http_rate:.0}/s ÷ raw Lua test-and-set {rps:.0}/s = {:.3}",
        http_rate / rps
    );
    println!(
        "       HTTP requests {:.0}/s ÷ raw Lua calls {rps:.0}/s = {:.3}  (API, load generator and Redis share this machine's cores)",
        2.0 * http_rate,
        2.0 * http_rate / rps
    );
}
