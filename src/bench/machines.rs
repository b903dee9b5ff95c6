//! `switchyard bench machines`: state-machine transitions through HTTP
//! (single and batch), and the transition script under `redis-benchmark`.

use std::time::{Duration, Instant};

use clap::Args;
use switchyard_shared::Redis;
use switchyard_shared::families::machines::MachineKeys;
use switchyard_shared::families::machines::scripts::SM_TRANSITION;

use super::common::{
    Deployment, ScriptArgs, each_client, p50_p99_ms, parse_duration, unix_socket, with_redis,
};

#[derive(Args)]
pub struct MachinesBench {
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// How long each HTTP phase runs.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Events per batch call.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    #[command(flatten)]
    redis: ScriptArgs,
}

/// The states of machine BENCH, each with its next states.
const STATES: [(&str, &[&str]); 7] = [
    ("1", &["2", "3"]),
    ("2", &["4"]),
    ("3", &[]),
    ("4", &["5"]),
    ("5", &["6"]),
    ("6", &["4", "7"]),
    ("7", &["3"]),
];

/// `__rand_int__` range of the redis-benchmark phase: every call a new entity.
const RB_KEYSPACE: u64 = 1_000_000_000;

pub fn run(m: MachinesBench) -> anyhow::Result<()> {
    with_redis(&m, None, &m.redis.server, "sm", None, bench)
}

async fn bench(m: &MachinesBench, url: &str) -> anyhow::Result<()> {
    let d = Deployment::connect(url).await?;
    let base = d.start_api().await?;
    let http = reqwest::Client::new();
    create_machine(&http, &base).await?;
    let single = http_phase(m, &http, &base, 1).await?;
    let batch = http_phase(m, &http, &base, m.batch).await?;
    d.stop.cancel();
    let rps = script_phase(m, &d.pool, &d.keys.machine("BENCH"), url).await?;
    println!();
    println!(
        "ratio: HTTP single {single:.0}/s ÷ script {rps:.0}/s = {:.3}",
        single / rps
    );
    println!(
        "ratio: HTTP batch of {} {batch:.0}/s ÷ script {rps:.0}/s = {:.3}",
        m.batch,
        batch / rps
    );
    Ok(())
}

async fn create_machine(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let states: Vec<_> = STATES
        .iter()
        .map(|(id, next)| serde_json::json!({"id": id, "next": next}))
        .collect();
    let def = serde_json::json!({"id": "BENCH", "states": states});
    let r = http
        .post(format!("{base}/api/statemachines"))
        .body(def.to_string())
        .send()
        .await?;
    anyhow::ensure!(
        r.status().is_success(),
        "creating the machine: {}",
        r.status()
    );
    Ok(())
}

/// `m.clients` HTTP clients sending `batch` event(s) per call for
/// `m.duration`. Answers transitions/s.
async fn http_phase(
    m: &MachinesBench,
    http: &reqwest::Client,
    base: &str,
    batch: usize,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let per_client = each_client(m.clients, |c| {
        http_client(http.clone(), base.to_owned(), c, batch, start, m.duration)
    })
    .await?;
    let total: usize = per_client.iter().map(|(d, _)| d).sum();
    let mut lat: Vec<_> = per_client.into_iter().flat_map(|(_, l)| l).collect();
    let rate = total as f64 / start.elapsed().as_secs_f64();
    let (p50, p99) = p50_p99_ms(&mut lat);
    println!(
        "HTTP, {batch} event(s) per call, {} clients: {rate:.0} transitions/s (call p50 {p50:.2} ms, p99 {p99:.2} ms)",
        m.clients
    );
    Ok(rate)
}

/// Each entity walks 1 → 2 → 4 → 5 → 6 → 4 → 5 → 6 …
fn walk(i: usize) -> &'static str {
    match i {
        0 => "1",
        1 => "2",
        _ => ["4", "5", "6"][(i - 2) % 3],
    }
}

/// One HTTP client (number `c`) until `start + dur`: single transitions of
/// its entity, or batches of `batch` entities. Answers the transitions done
/// and each call's latency.
async fn http_client(
    http: reqwest::Client,
    base: String,
    c: usize,
    batch: usize,
    start: Instant,
    dur: Duration,
) -> anyhow::Result<(usize, Vec<Duration>)> {
    let mut lat = Vec::new();
    let mut done = 0usize;
    let mut step = 0usize;
    while start.elapsed() < dur {
        let t0 = Instant::now();
        let (path, body) = if batch == 1 {
            (
                format!("/api/statemachines/BENCH/entities/c{c}/transitions"),
                format!(r#"{{"to": "{}"}}"#, walk(step)),
            )
        } else {
            let events: Vec<serde_json::Value> = (0..batch)
                .map(|e| serde_json::json!({"entity": format!("b{c}-{e}"), "to": walk(step)}))
                .collect();
            (
                "/api/statemachines/BENCH/transitions".to_owned(),
                serde_json::json!({"events": events}).to_string(),
            )
        };
        let r = http.post(format!("{base}{path}")).body(body).send().await?;
        let what = if batch == 1 { "transition" } else { "batch" };
        anyhow::ensure!(r.status().is_success(), "{what} failed: {}", r.status());
        lat.push(t0.elapsed());
        done += batch;
        step += 1;
    }
    Ok((done, lat))
}

/// The transition script under redis-benchmark: one new entity entering
/// state 1 per call. Answers calls/s.
async fn script_phase(
    m: &MachinesBench,
    pool: &Redis,
    k: &MachineKeys,
    url: &str,
) -> anyhow::Result<f64> {
    let socket = unix_socket(url)?;
    let (rps, _) = m
        .redis
        .redis_benchmark(socket, RB_KEYSPACE, &enter_command(k))?;
    let mut conn = pool.conn();
    let entered: i64 = redis::cmd("HGET")
        .arg(k.counts())
        .arg("1")
        .query_async(&mut conn)
        .await
        .unwrap_or(0);
    println!(
        "redis-benchmark, EVALSHA lua/machines/transition.lua (one new entity per call): {rps:.0} calls/s ({entered} entities now in state 1)"
    );
    Ok(rps)
}

/// `EVALSHA lua/machines/transition.lua …`: a new entity enters state 1.
///
/// redis-benchmark draws a new number for every `__rand_int__` in a command,
/// so the command holds exactly one: the entity's hash key, which is new on
/// every call (the script finds no state there, so the entity enters). Its
/// history key and its id (the member of state 1's ZSET) are fixed.
fn enter_command(k: &MachineKeys) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "EVALSHA".into(),
        SM_TRANSITION.get_hash().into(),
        (4 + STATES.len() + 2).to_string(),
    ];
    args.extend([
        k.meta(),
        k.counts(),
        k.events(),
        k.bucket(switchyard_shared::time::now_ms() / 60_000),
    ]);
    args.extend(STATES.iter().map(|(s, _)| k.state(s)));
    args.push(k.entity("rb__rand_int__"));
    args.push(k.history("rb"));
    args.extend([
        "100".into(),
        "3600000".into(),
        "1".into(),
        "rb".into(),
        "1".into(),
    ]);
    // at, data, event id: none.
    args.extend(["".into(), "".into(), "".into()]);
    args
}
