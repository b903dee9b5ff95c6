//! `switchyard bench nets`: Petri net firing — action-less chains over a
//! split, a notify chain answered through the HTTP API, and the firing
//! script under `redis-benchmark`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};
use switchyard_shared::Redis;
use switchyard_shared::config::WorkerConfig;
use switchyard_shared::families::nets::scripts::NET;
use switchyard_shared::families::nets::{Compiled, NetKeys, NetStore, compile};
use tokio_util::sync::CancellationToken;

use super::common::{Deployment, ScriptArgs, serve_loopback, unix_socket, with_redis};

#[derive(Args)]
pub struct NetsBench {
    /// Colours of the split.
    #[arg(long, default_value_t = 1000)]
    colors: usize,
    /// Length of the action-less chain.
    #[arg(long, default_value_t = 100)]
    chain: usize,
    /// Colours sent through the notify chain (each answers 3 callbacks).
    #[arg(long, default_value_t = 200)]
    notify_colors: usize,
    #[command(flatten)]
    redis: ScriptArgs,
}

/// Callbacks per colour in the notify chain.
const NOTIFY_STEPS: usize = 3;

/// The colours of the redis-benchmark net: the largest colour group allowed.
const RB_KEYSPACE: u64 = 100_000;

/// A callback URL nothing listens on (the chains have no actions).
const NOWHERE: &str = "http://127.0.0.1:9";

pub fn run(n: NetsBench) -> anyhow::Result<()> {
    with_redis(&n, None, &n.redis.server, "nets", None, bench)
}

async fn bench(n: &NetsBench, url: &str) -> anyhow::Result<()> {
    let d = Deployment::connect(url).await?;
    let (pool, keys, stop) = (&d.pool, &d.keys, &d.stop);
    let nets = NetStore::new(pool.clone(), keys.clone(), 256, Duration::from_secs(3600));
    // One in-process worker runs continuations and callbacks.
    let mut wcfg = WorkerConfig::default();
    wcfg.worker.worker_block = Duration::from_millis(20);
    wcfg.families.deliveries.delivery_per_destination = 64;
    let worker = Arc::new(switchyard_worker::build(pool.clone(), keys.clone(), &wcfg)?);
    tokio::spawn(worker.clone().run(stop.clone()));

    let chain_rate = chain_phase(n, pool, &nets).await?;
    let api_base = d.start_api().await?;
    notify_phase(n, &nets, &api_base, stop).await?;
    stop.cancel();
    let firings_per_s = script_phase(n, pool, &nets, url).await?;
    println!();
    println!(
        "ratio (a) ÷ (c) firings/s: {:.2}  (chains fire up to 256 transitions per call, so one call does more work than a put)",
        chain_rate / firings_per_s
    );
    Ok(())
}

/// (a) a chain of action-less transitions over a split. Answers firings/s.
async fn chain_phase(n: &NetsBench, pool: &Redis, nets: &NetStore) -> anyhow::Result<f64> {
    let mut ts = split_into("c0");
    for i in 0..n.chain {
        ts.push(json!({"inputs": [format!("c{i}")], "outputs": [format!("c{}", i + 1)]}));
    }
    create_net(nets, "chain", ts, NOWHERE).await?;
    let total = 2 + (n.chain * n.colors) as u64;
    let (c0, e0) = commands_processed(pool).await?;
    let secs = fire_all(nets, "chain", n.colors, total).await?;
    let (c1, e1) = commands_processed(pool).await?;
    let chain_rate = total as f64 / secs;
    println!(
        "(a) chain of {} action-less transitions over a split of {} colours: {total} firings in {secs:.2} s = {chain_rate:.0} firings/s",
        n.chain, n.colors
    );
    println!(
        "    Redis calls per firing (EVALSHA + XREADGROUP + XAUTOCLAIM): {:.3} (EVALSHA alone: {:.3}; bound 256 firings per call)",
        (c1 - c0) as f64 / total as f64,
        (e1 - e0) as f64 / total as f64
    );
    Ok(chain_rate)
}

/// (b) a notify chain answered by a local receiver through the HTTP API.
async fn notify_phase(
    n: &NetsBench,
    nets: &NetStore,
    api_base: &str,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let answered = Arc::new(AtomicUsize::new(0));
    let hook = start_answerer(answered.clone(), stop).await?;
    let mut ts = split_into("p0");
    for i in 0..NOTIFY_STEPS {
        ts.push(json!({"inputs": [format!("p{i}")], "outputs": [format!("w{i}")],
            "action": {"type": "notify", "url": hook, "response_places": {"done": format!("r{i}")}}}));
        ts.push(json!({"inputs": [format!("w{i}"), format!("r{i}")], "outputs": [format!("p{}", i + 1)]}));
    }
    create_net(nets, "notify", ts, api_base).await?;
    let total = 2 + (2 * NOTIFY_STEPS * n.notify_colors) as u64;
    let secs = fire_all(nets, "notify", n.notify_colors, total).await?;
    println!(
        "(b) notify chain ({NOTIFY_STEPS} callbacks per colour, each answered by PUT to its response link), {} colours: {total} firings, {} callbacks in {secs:.2} s = {:.0} firings/s, {:.0} callbacks/s",
        n.notify_colors,
        answered.load(Ordering::Relaxed),
        total as f64 / secs,
        (NOTIFY_STEPS * n.notify_colors) as f64 / secs
    );
    Ok(())
}

/// A receiver that answers every callback by PUTting to its response link,
/// counting the answers; answers its hook URL.
async fn start_answerer(
    answered: Arc<AtomicUsize>,
    stop: &CancellationToken,
) -> anyhow::Result<String> {
    let http = reqwest::Client::new();
    let rx = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let (http, answered) = (http.clone(), answered.clone());
        async move {
            if let Ok(v) = serde_json::from_slice::<Value>(&body)
                && let Some(link) = v["response_links"]["done"].as_str()
            {
                let link = link.to_owned();
                tokio::spawn(async move {
                    if http.put(link).body("{}").send().await.is_ok() {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            axum::http::StatusCode::NO_CONTENT
        }
    });
    Ok(format!("{}/hook", serve_loopback(rx, stop).await?))
}

/// (c) the firing script itself under redis-benchmark: each call records a
/// token and fires one transition. Answers firings/s.
async fn script_phase(
    n: &NetsBench,
    pool: &Redis,
    nets: &NetStore,
    url: &str,
) -> anyhow::Result<f64> {
    let ts = vec![color_group(), json!({"inputs": ["a"], "outputs": ["b"]})];
    let compiled = create_net(nets, "rb", ts, NOWHERE).await?;
    seed(nets, "rb", RB_KEYSPACE as usize).await?;
    let k = nets.keys("rb");
    let place_a = compiled.place_index("a").context("place a")?.to_string();
    let socket = unix_socket(url)?;
    let fired0 = fired(nets, "rb").await?;
    let mut cmd = vec!["EVALSHA", NET.get_hash(), "9"];
    cmd.extend(net_keys(&k));
    cmd.extend(put_args(&place_a, "__rand_int__"));
    let (rps, text) = n.redis.redis_benchmark(socket, RB_KEYSPACE, &cmd)?;
    if std::env::var("BENCH_DEBUG").is_ok() {
        debug_one_call(pool, &k, &place_a, &text).await?;
    }
    let fired1 = fired(nets, "rb").await?;
    let firing_share = (fired1 - fired0) as f64 / n.redis.requests as f64;
    println!(
        "(c) redis-benchmark, EVALSHA lua/nets/fire.lua put+fire: {rps:.0} calls/s ({:.0} firings/s; {:.1}% of calls fired, the rest repeated a colour)",
        rps * firing_share,
        firing_share * 100.0
    );
    Ok(rps * firing_share)
}

/// `BENCH_DEBUG`: one put by hand, and the tail of redis-benchmark's output.
async fn debug_one_call(pool: &Redis, k: &NetKeys, place: &str, text: &str) -> anyhow::Result<()> {
    let mut conn = pool.conn();
    let r: redis::RedisResult<String> = redis::cmd("EVALSHA")
        .arg(NET.get_hash())
        .arg(9)
        .arg(&net_keys(k))
        .arg(&put_args(place, "000000012345"))
        .query_async(&mut conn)
        .await;
    eprintln!("one call: {r:?}");
    let tail: Vec<char> = text.chars().rev().take(600).collect();
    eprintln!("{}", tail.into_iter().rev().collect::<String>());
    Ok(())
}

/// The keys of lua/nets/fire.lua, in order.
fn net_keys(k: &NetKeys) -> [&str; 9] {
    [
        &k.meta, &k.marking, &k.groups, &k.fired, &k.seen, &k.agenda, &k.stream, &k.index,
        &k.begins,
    ]
}

/// The arguments of lua/nets/fire.lua's `put` of colour `color` into place `place` of net `rb`.
fn put_args<'a>(place: &'a str, color: &'a str) -> [&'a str; 8] {
    ["put", "rb", "256", "3600000", place, color, "-", "{}"]
}

/// The first transition of every bench net: the seed token creates a
/// colour group in place `g`.
fn color_group() -> Value {
    json!({"inputs": ["seed"], "outputs": ["g"], "action": {"type": "create-color-group"}})
}

/// The first two transitions of the chains: a colour group, split into `first`.
fn split_into(first: &str) -> Vec<Value> {
    vec![
        color_group(),
        json!({"inputs": ["g"], "outputs": [first], "action": {"type": "split"}}),
    ]
}

/// Compile and store net `id` with these transitions, active.
async fn create_net(
    nets: &NetStore,
    id: &str,
    transitions: Vec<Value>,
    public_url: &str,
) -> anyhow::Result<Compiled> {
    let compiled = compile(&json!({"transitions": transitions}))
        .map_err(|e| anyhow::anyhow!("{}: {}", e.location, e.message))?;
    nets.create(id, &compiled, public_url, true, "svix").await?;
    Ok(compiled)
}

/// Put the seed token (a colour group of `colors`) into net `id`.
async fn seed(nets: &NetStore, id: &str, colors: usize) -> anyhow::Result<()> {
    let data = format!(r#"{{"color_group_size": {colors}}}"#);
    nets.post(id, 0, &data).await?;
    Ok(())
}

/// Seed net `id` with `colors` colours and wait for `total` firings;
/// answers the seconds it took.
async fn fire_all(nets: &NetStore, id: &str, colors: usize, total: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    seed(nets, id, colors).await?;
    wait_fired(nets, id, total).await?;
    Ok(start.elapsed().as_secs_f64())
}

/// Net `id`'s firing count.
async fn fired(nets: &NetStore, id: &str) -> anyhow::Result<u64> {
    let (meta, _) = nets.load(id).await?;
    Ok(meta.get("fired").and_then(|v| v.parse().ok()).unwrap_or(0))
}

async fn wait_fired(nets: &NetStore, id: &str, total: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done = fired(nets, id).await?;
        if done >= total {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "net {id} stuck at {done}/{total} firings"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// (client round trips, EVALSHA calls) so far.
async fn commands_processed(pool: &Redis) -> anyhow::Result<(u64, u64)> {
    let mut conn = pool.conn();
    let info: String = redis::cmd("INFO").arg("all").query_async(&mut conn).await?;
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split([',', '\r']).next())
            .and_then(|v| v.trim_start_matches("calls=").parse().ok())
            .unwrap_or(0)
    };
    // Client round trips of the engine: script calls plus stream reads/claims
    // (commands run inside scripts are counted by Redis under their own
    // names, so total_commands_processed would overcount).
    let trips =
        field("cmdstat_evalsha:") + field("cmdstat_xreadgroup:") + field("cmdstat_xautoclaim:");
    Ok((trips, field("cmdstat_evalsha:")))
}
