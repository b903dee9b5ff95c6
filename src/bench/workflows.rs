//! `switchyard bench workflows`: sequences of participants launched through
//! the HTTP API (`POST /v1/workflows`), dispatched by the in-process worker
//! and proceeded by a local receiver; the Redis commands each step costs
//! (INFO commandstats); and the step commit script
//! (`lua/workflows/commit.lua`) under `redis-benchmark`, in one run on one
//! Redis, with the ratio.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};
use switchyard_shared::Redis;
use switchyard_shared::config::{SchedulerConfig, WorkerConfig};
use switchyard_shared::families::workflows::engine::{self, CallbackStatus, Input, Process};
use switchyard_shared::families::workflows::ids::{ShardIds, new_wfid};
use switchyard_shared::families::workflows::keys::WorkflowKeys;
use switchyard_shared::families::workflows::scripts::WF_COMMIT;
use switchyard_shared::families::workflows::store::ONCE_POLICY;
use switchyard_shared::families::workflows::views::{CallbackBody, proceed_url};
use switchyard_shared::families::workflows::{OWNER, WorkflowOpts, launch};
use switchyard_shared::platform::ids::destination_of;
use switchyard_shared::platform::outbox::Owner;
use switchyard_shared::time::{now_ms, utc_now};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::common::{
    Deployment, ScriptArgs, each_client, p50_p99_ms, serve_loopback, unix_socket, with_redis,
};

#[derive(Args)]
pub struct WorkflowsBench {
    /// Workflows launched through the API.
    #[arg(long, default_value_t = 500)]
    workflows: usize,
    /// Workflows in flight at once: each client launches one, waits until
    /// its last participant is proceeded, and launches the next.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Participants of the sequence (one step each).
    #[arg(long, default_value_t = 10)]
    participants: usize,
    #[command(flatten)]
    redis: ScriptArgs,
}

/// Workflow records seeded for the redis-benchmark phase, per request: a
/// call commits only into a record no earlier call committed to (the
/// version fence), so with ten records per call about 95% of calls commit.
const RB_RECORDS_PER_REQUEST: u64 = 10;
/// At most this many seeded records (a large `--requests` commits less often).
const RB_RECORDS_MAX: u64 = 2_000_000;
/// Longest wait for one workflow (launch to its last proceed), and for all
/// to complete: a stuck run fails instead of hanging.
const STUCK: Duration = Duration::from_secs(60);

pub fn run(w: WorkflowsBench) -> anyhow::Result<()> {
    anyhow::ensure!(
        w.workflows > 0 && w.concurrency > 0 && w.participants > 0,
        "--workflows, --concurrency and --participants must be at least 1"
    );
    with_redis(&w, None, &w.redis.server, "wf", None, bench)
}

async fn bench(w: &WorkflowsBench, url: &str) -> anyhow::Result<()> {
    let d = Deployment::connect(url).await?;
    // The roles in process: one worker (steps and callbacks), one scheduler.
    let mut wcfg = WorkerConfig::default();
    // Every callback goes to the one receiver: let the worker's whole
    // concurrency reach it (the default is 16 per destination).
    wcfg.families.deliveries.delivery_per_destination = wcfg.worker.worker_concurrency;
    let worker = Arc::new(switchyard_worker::build(
        d.pool.clone(),
        d.keys.clone(),
        &wcfg,
    )?);
    let worker_task = tokio::spawn(worker.run(d.stop.clone()));
    let scheduler = switchyard_scheduler::Scheduler::new(
        d.pool.clone(),
        d.keys.clone(),
        SchedulerConfig::default(),
    )?;
    let scheduler_task = tokio::spawn(scheduler.run(d.stop.clone()));
    let api = d.start_api().await?;
    let receiver = Receiver::new(w.participants);
    let hook = receiver.start(&d.stop).await?;

    println!(
        "workflows: {} sequences of {} participants (JSON tree) launched by POST /v1/workflows, {} in flight; \
         1 worker + 1 scheduler in process; a receiver on loopback answers 200 to each active callback and POSTs its proceed_url",
        w.workflows, w.participants, w.concurrency
    );
    let steps_per_s = http_phase(w, &d, &api, &hook, &receiver).await?;
    d.stop.cancel();
    worker_task.await.context("worker task")??;
    scheduler_task.await.context("scheduler task")?;

    let (calls, commits) = script_phase(w, &d, &api, &hook, url).await?;
    println!();
    println!(
        "ratio (1) steps/s ÷ (3) commits/s: {steps_per_s:.0} ÷ {commits:.0} = {:.3}  (÷ (3) calls/s: {:.3})",
        steps_per_s / commits,
        steps_per_s / calls
    );
    println!(
        "    each step through HTTP is one such commit plus the proceed script, the callback's outbox scripts, \
         stream reads and acks, the engine run in the worker and two HTTP requests; (3) is the ceiling of \
         committed steps on this Redis, so the ratio is the share of it the whole path reaches"
    );
    Ok(())
}

/// (1) and (2): `w.workflows` workflows through the API, `w.concurrency`
/// at a time, timed from the first launch until every one is completed;
/// the Redis commands of the whole phase per step. Answers steps/s.
async fn http_phase(
    w: &WorkflowsBench,
    d: &Deployment,
    api: &str,
    hook: &str,
    receiver: &Receiver,
) -> anyhow::Result<f64> {
    let definition = sequence(w.participants).to_string();
    let body = Arc::new(json!({"workflow": definition, "callback": hook}));
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let launch_url = Arc::new(format!("{api}/v1/workflows"));
    let before = command_calls(&d.pool).await?;
    let start = Instant::now();
    let per_client = each_client(w.concurrency, |_| {
        let (http, body, next, launch_url) =
            (http.clone(), body.clone(), next.clone(), launch_url.clone());
        let (board, total) = (receiver.board.clone(), w.workflows);
        async move {
            let mut lat = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let t0 = Instant::now();
                let id = launch_one(&http, &launch_url, &body).await?;
                let done = board.wait(&id);
                tokio::time::timeout(STUCK, done)
                    .await
                    .with_context(|| {
                        format!(
                            "workflow {id}: its last participant was not proceeded within {STUCK:?}"
                        )
                    })?
                    .context("the receiver stopped")?;
                lat.push(t0.elapsed());
            }
            anyhow::Ok(lat)
        }
    })
    .await?;
    let polls = wait_completed(d, w.workflows).await?;
    let secs = start.elapsed().as_secs_f64();
    let after = command_calls(&d.pool).await?;

    let steps = (w.workflows * w.participants) as f64;
    let steps_per_s = steps / secs;
    let mut lat: Vec<_> = per_client.into_iter().flatten().collect();
    let (p50, p99) = p50_p99_ms(&mut lat);
    let c = receiver.counts();
    println!(
        "(1) {} workflows, {steps:.0} steps in {secs:.2} s = {:.1} workflows/s, {steps_per_s:.0} steps/s \
         (a step: a participant's active callback delivered and its proceed accepted)",
        w.workflows,
        w.workflows as f64 / secs,
    );
    println!(
        "    per workflow, launch to last proceed accepted: p50 {p50:.1} ms, p99 {p99:.1} ms; \
         {} active callbacks, {} proceeds accepted, {} refused, {} failed",
        c.callbacks, c.proceeded, c.refused, c.failed
    );

    // Our own commands are not the system's: the INFO snapshots and the
    // completion polls.
    let mut delta = command_delta(&before, &after);
    delta.remove("info");
    if let Some(z) = delta.get_mut("zcard") {
        *z = z.saturating_sub(polls);
    }
    let total: u64 = delta.values().sum();
    let scripts: u64 = [
        "evalsha",
        "evalsha_ro",
        "eval",
        "eval_ro",
        "fcall",
        "fcall_ro",
    ]
    .iter()
    .filter_map(|n| delta.get(*n))
    .sum();
    let per = |n: u64| n as f64 / steps;
    println!(
        "(2) Redis commands per step (INFO commandstats over the whole run, launches and completions included; \
         commands run inside scripts count under their own names): {:.1} in all, {:.2} script calls (EVALSHA/FCALL), \
         {:.2} XREADGROUP",
        per(total),
        per(scripts),
        per(delta.get("xreadgroup").copied().unwrap_or(0))
    );
    let mut top: Vec<_> = delta.iter().filter(|(_, n)| **n > 0).collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = top
        .iter()
        .take(10)
        .map(|(name, n)| format!("{name} {:.2}", per(**n)))
        .collect();
    println!("    most called, per step: {}", top.join(", "));
    Ok(steps_per_s)
}

/// The bench definition: `define > sequence > participant p1 … pN`, as a JSON tree.
fn sequence(participants: usize) -> Value {
    let steps: Vec<Value> = (1..=participants)
        .map(|i| json!(["participant", {"ref": format!("p{i}")}, []]))
        .collect();
    json!(["define", {"name": "bench"}, [["sequence", {}, steps]]])
}

/// `POST /v1/workflows`; answers the new workflow's id.
async fn launch_one(http: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<String> {
    let r = http.post(url).json(body).send().await?;
    let status = r.status();
    let answer: Value = r.json().await.context("launch answer")?;
    anyhow::ensure!(
        status == reqwest::StatusCode::CREATED,
        "launch: {status} {answer}"
    );
    answer["id"]
        .as_str()
        .map(str::to_owned)
        .context("launch answer without id")
}

/// Wait until `n` workflows are completed (the completed index of every
/// shard; the bench's Redis holds no other workflow). Answers the ZCARD
/// commands it sent.
async fn wait_completed(d: &Deployment, n: usize) -> anyhow::Result<u64> {
    let indexes: Vec<String> = (0..d.keys.shards())
        .map(|s| d.keys.workflow_status_index(s, "completed"))
        .collect();
    let deadline = Instant::now() + STUCK;
    let mut sent = 0u64;
    loop {
        let mut p = redis::pipe();
        for i in &indexes {
            p.zcard(i);
        }
        let counts: Vec<u64> = p.query_async(&mut d.pool.conn()).await?;
        sent += indexes.len() as u64;
        let done: u64 = counts.iter().sum();
        if done >= n as u64 {
            return Ok(sent);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {done} of {n} workflows completed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The auto-proceeding participant receiver and what it saw.
#[derive(Clone)]
struct Receiver {
    http: reqwest::Client,
    /// The participant whose proceed finishes a workflow.
    last: Arc<str>,
    board: Board,
    callbacks: Arc<AtomicUsize>,
    proceeded: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
}

/// The receiver's counters.
struct Counts {
    callbacks: usize,
    proceeded: usize,
    refused: usize,
    failed: usize,
}

impl Receiver {
    fn new(participants: usize) -> Self {
        Self {
            http: reqwest::Client::new(),
            last: format!("p{participants}").into(),
            board: Board::default(),
            callbacks: Arc::default(),
            proceeded: Arc::default(),
            refused: Arc::default(),
            failed: Arc::default(),
        }
    }

    /// Serve on loopback until `stop`; answers the callback URL.
    async fn start(&self, stop: &CancellationToken) -> anyhow::Result<String> {
        let me = self.clone();
        let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
            let me = me.clone();
            async move {
                me.callback(&body);
                axum::http::StatusCode::OK
            }
        });
        Ok(format!("{}/participants", serve_loopback(app, stop).await?))
    }

    /// A participant callback `{workflow_id, workitem_id, participant,
    /// status, fields, proceed_url}`: an `active` one is proceeded (after
    /// the answer, in its own task) with the participant's mark in `fields`.
    fn callback(&self, body: &[u8]) {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            self.failed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if v["status"] != "active" {
            return;
        }
        self.callbacks.fetch_add(1, Ordering::Relaxed);
        let (Some(url), Some(participant), Some(wfid)) = (
            v["proceed_url"].as_str(),
            v["participant"].as_str(),
            v["workflow_id"].as_str(),
        ) else {
            self.failed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let (me, url, participant, wfid) = (
            self.clone(),
            url.to_owned(),
            participant.to_owned(),
            wfid.to_owned(),
        );
        tokio::spawn(async move {
            let body = proceed_body(&participant);
            match me.http.post(url).json(&body).send().await {
                Ok(r) if r.status() == reqwest::StatusCode::CREATED => {
                    me.proceeded.fetch_add(1, Ordering::Relaxed);
                    if participant == *me.last {
                        me.board.finish(&wfid);
                    }
                }
                // A callback sent again after its workitem was proceeded.
                Ok(_) => {
                    me.refused.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    me.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }

    fn counts(&self) -> Counts {
        Counts {
            callbacks: self.callbacks.load(Ordering::Relaxed),
            proceeded: self.proceeded.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// What the receiver proceeds a workitem of `participant` with.
fn proceed_body(participant: &str) -> Value {
    json!({"fields": {participant: "done"}})
}

/// Which workflows had their last participant proceeded, and who waits for which.
#[derive(Clone, Default)]
struct Board(Arc<Mutex<BoardInner>>);

#[derive(Default)]
struct BoardInner {
    waiting: HashMap<String, oneshot::Sender<()>>,
    /// Finished before their launcher started waiting.
    early: HashSet<String>,
}

impl Board {
    fn finish(&self, wfid: &str) {
        let mut b = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match b.waiting.remove(wfid) {
            Some(tx) => {
                let _ = tx.send(());
            }
            None => {
                b.early.insert(wfid.to_owned());
            }
        }
    }

    /// Resolves once workflow `wfid` is finished (at once if it already is).
    fn wait(&self, wfid: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut b = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if b.early.remove(wfid) {
            let _ = tx.send(());
        } else {
            b.waiting.insert(wfid.to_owned(), tx);
        }
        rx
    }
}

/// INFO commandstats: calls per command name.
async fn command_calls(pool: &Redis) -> anyhow::Result<BTreeMap<String, u64>> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut pool.conn())
        .await?;
    Ok(info
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').next()?.strip_prefix("calls=")?;
            Some((name.to_owned(), calls.trim().parse().ok()?))
        })
        .collect())
}

/// Calls per command between two [`command_calls`] snapshots.
fn command_delta(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(name, n)| {
            let was = before.get(name).copied().unwrap_or(0);
            (name.clone(), n.saturating_sub(was))
        })
        .collect()
}

/// (3) `lua/workflows/commit.lua` under redis-benchmark: the commit of a
/// mid-run step of the bench sequence (a participant proceeded, the next
/// one dispatched), built with the engine as the worker builds it, into a
/// fresh workflow record per call (`__rand_int__`), each seeded at the
/// version the step read. Answers (calls/s, commits/s).
async fn script_phase(
    w: &WorkflowsBench,
    d: &Deployment,
    api: &str,
    hook: &str,
    url: &str,
) -> anyhow::Result<(f64, f64)> {
    let wfid = new_wfid(utc_now());
    let k = d.keys.workflow(&format!("{wfid}-__rand_int__"));
    let step = mid_run_step(w.participants, api, hook, wfid, k.shard)?;
    let records = (w.redis.requests * RB_RECORDS_PER_REQUEST).clamp(1, RB_RECORDS_MAX);
    let seeding = Instant::now();
    seed_records(&d.pool, &k.record, records, &step.version).await?;
    let seed_secs = seeding.elapsed().as_secs_f64();
    let cmd = commit_command(d, &k, &step)?;
    let key_count: usize = cmd[2].parse()?;

    // One call by hand first: the command must commit.
    let sample: Vec<String> = cmd
        .iter()
        .map(|a| a.replace("__rand_int__", &rand_int(0)))
        .collect();
    let reply: String = redis::cmd("EVALSHA")
        .arg(&sample[1..])
        .query_async(&mut d.pool.conn())
        .await
        .context("one commit by hand")?;
    anyhow::ensure!(reply.contains(r#""ok":true"#), "commit by hand: {reply}");

    let before = command_calls(&d.pool).await?;
    let (rps, text) = w.redis.redis_benchmark(unix_socket(url)?, records, &cmd)?;
    let after = command_calls(&d.pool).await?;
    let delta = command_delta(&before, &after);
    // Only a commit that passed the version fence bumps the version.
    let committed = delta.get("hincrby").copied().unwrap_or(0);
    let calls = delta.get("evalsha").copied().unwrap_or(0);
    anyhow::ensure!(calls > 0, "redis-benchmark made no call: {text}");
    let share = committed as f64 / calls as f64;
    let commits_per_s = rps * share;
    println!(
        "(3) redis-benchmark, EVALSHA lua/workflows/commit.lua: the commit of {}'s proceed ({} KEYS, {} bytes of ARGV, \
         {} bytes of process state; workitems: {} removed (the proceeded one, and each opened one before it is written), {} written; {} history events; {} callback(s) as outbox deliveries)",
        step.proceeded,
        key_count,
        cmd[3 + key_count..].iter().map(String::len).sum::<usize>(),
        step.state_bytes,
        step.closed,
        step.opened,
        step.history,
        step.callbacks
    );
    println!(
        "    into a fresh record per call (__rand_int__ over {records} records seeded at version {} in {seed_secs:.1} s): \
         {rps:.0} calls/s, {:.1}% committed (the rest drew a record already committed and stopped at the version fence) \
         = {commits_per_s:.0} commits/s",
        step.version,
        share * 100.0
    );
    Ok((rps, commits_per_s))
}

/// redis-benchmark's replacement of `__rand_int__` for `n` (12 digits).
fn rand_int(n: u64) -> String {
    format!("{n:012}")
}

/// `records` workflow records (`record_tpl` with `__rand_int__` replaced by
/// 0 … records-1), running, at `version`: what the commit's fence reads.
async fn seed_records(
    pool: &Redis,
    record_tpl: &str,
    records: u64,
    version: &str,
) -> anyhow::Result<()> {
    let created = now_ms();
    let mut conn = pool.conn();
    let mut i = 0;
    while i < records {
        let end = (i + 5000).min(records);
        let mut p = redis::pipe();
        for n in i..end {
            p.cmd("HSET")
                .arg(record_tpl.replace("__rand_int__", &rand_int(n)))
                .arg("version")
                .arg(version)
                .arg("status")
                .arg("running")
                .arg("created")
                .arg(created)
                .ignore();
        }
        let () = p.query_async(&mut conn).await?;
        i = end;
    }
    Ok(())
}

/// A step of the bench sequence in the middle of its run, as the worker
/// computes it: the engine's new process and outcome, and the version the
/// step read.
struct Step {
    wfid: String,
    /// The base of its proceed URLs (the API's public URL).
    public_url: String,
    /// The participant whose proceed the step applies.
    proceeded: String,
    version: String,
    process: Process,
    outcome: engine::Outcome,
    /// The proceed input the step consumed from the inbox.
    consumed: usize,
    state_bytes: usize,
    closed: usize,
    opened: usize,
    history: usize,
    callbacks: usize,
}

/// Launch the bench sequence as workflow `wfid` in the engine (checked as
/// the API checks a launch, callbacks to `hook`, delivery ids on `shard`)
/// and proceed its participants up to the middle one; answers the step
/// that proceeds it.
fn mid_run_step(
    participants: usize,
    api: &str,
    hook: &str,
    wfid: String,
    shard: u16,
) -> anyhow::Result<Step> {
    let params = json!({"workflow": sequence(participants).to_string(), "callback": hook});
    let l = launch::launch_from(&params, false)
        .map_err(|e| anyhow::anyhow!("the bench definition: {e:?}"))?;
    let now = u64::try_from(now_ms()).unwrap_or(0);
    let mut p = Process::new(&wfid, l.definition, l.callbacks.to_json(), l.fields, now);
    let mut ids = ShardIds { shard };
    let cfg = engine::Config::default();
    // Version 0 at launch; the launch step commits version 1, each proceed one more.
    let mut outcome = engine::advance(&mut p, vec![Input::Launch], now, &mut ids, &cfg);
    let middle = participants.div_ceil(2);
    let mut proceeded = String::new();
    for _ in 0..middle {
        let wi = outcome
            .opened
            .first()
            .with_context(|| format!("the engine opened no workitem: {outcome:?}"))?;
        proceeded = wi.participant.clone();
        let input = Input::Proceed {
            workitem_id: wi.workitem_id.clone(),
            fields: proceed_body(&wi.participant)["fields"].as_object().cloned(),
        };
        outcome = engine::advance(&mut p, vec![input], now, &mut ids, &cfg);
    }
    let state_bytes = serde_json::to_string(&p)?.len();
    Ok(Step {
        wfid,
        public_url: api.trim_end_matches('/').to_owned(),
        proceeded,
        version: middle.to_string(),
        consumed: 1,
        state_bytes,
        closed: outcome.closed.len(),
        opened: outcome.opened.len(),
        history: outcome.history.len(),
        callbacks: outcome.callbacks.len(),
        process: p,
        outcome,
    })
}

/// `EVALSHA <commit> …` for redis-benchmark, as `WorkflowStore::commit`
/// lays it out: the workflow's keys under `k` (its id carries
/// `__rand_int__`), each callback a new delivery (its id's last 12 hex
/// digits are `__rand_int__`).
fn commit_command(d: &Deployment, k: &WorkflowKeys, s: &Step) -> anyhow::Result<Vec<String>> {
    let opts = WorkflowOpts::default();
    let mut keys: Vec<String> = vec![
        k.record.clone(),
        k.inbox.clone(),
        k.workitems.clone(),
        k.history.clone(),
        k.stream.clone(),
        k.timers.clone(),
        k.index.clone(),
    ];
    keys.extend(k.by_status.iter().cloned());
    keys.push(k.deliveries.clone());
    let mut callbacks = Vec::with_capacity(s.outcome.callbacks.len());
    for cb in &s.outcome.callbacks {
        let cut = cb.delivery_id.len().saturating_sub(12);
        let delivery_id = format!("{}__rand_int__", &cb.delivery_id[..cut]);
        keys.push(d.keys.delivery(k.shard, &delivery_id).record);
        let body = CallbackBody {
            workflow_id: &s.wfid,
            workitem_id: &cb.workitem_id,
            participant: &cb.participant,
            status: cb.status.as_str(),
            fields: &cb.fields,
            proceed_url: proceed_url(&s.public_url, &s.wfid, &cb.workitem_id),
        };
        let (policy, owner) = if cb.status == CallbackStatus::Active {
            (
                opts.workflow_callback_policy.as_str(),
                Owner::format(OWNER, &format!("{}#{delivery_id}", cb.workitem_id)),
            )
        } else {
            (ONCE_POLICY, String::new())
        };
        callbacks.push(json!([
            delivery_id,
            cb.url,
            serde_json::to_string(&body)?,
            policy,
            destination_of(&cb.url),
            owner,
        ]));
    }
    let opened = s
        .outcome
        .opened
        .iter()
        .map(|wi| Ok(json!([wi.workitem_id, serde_json::to_string(wi)?])))
        .collect::<Result<Vec<Value>, serde_json::Error>>()?;
    let timers_set: Vec<Value> = s
        .outcome
        .timers_set
        .iter()
        .map(|(id, due)| json!([id, due.to_string()]))
        .collect();
    let history = s
        .outcome
        .history
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<String>, _>>()?;
    let mut cmd = vec![
        "EVALSHA".to_owned(),
        WF_COMMIT.get_hash().to_owned(),
        keys.len().to_string(),
    ];
    cmd.extend(keys);
    cmd.extend([
        s.wfid.clone(),
        s.version.clone(),
        s.consumed.to_string(),
        serde_json::to_string(&s.process)?,
        s.process.status.as_str().to_owned(),
        opts.workflow_retention.as_millis().to_string(),
        opts.workflow_history_len.to_string(),
        json!(opened).to_string(),
        json!(s.outcome.closed).to_string(),
        json!(timers_set).to_string(),
        json!(s.outcome.timers_cleared).to_string(),
        json!(history).to_string(),
        json!(callbacks).to_string(),
    ]);
    Ok(cmd)
}
