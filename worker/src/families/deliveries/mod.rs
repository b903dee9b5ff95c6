//! The HTTP delivery handler: one attempt per work entry.
//!
//! begin (lease) → guard (address) → per-destination limit → send
//! ([`http`]: sign, timeouts, response cap) → decide (classify, retry
//! policy) → record (finish + ack in one script).
//! A destination already at its limit is not waited for: the entry goes back
//! as a short timer, so one slow receiver cannot hold the worker's slots.

mod http;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use switchyard_shared::config::WorkerConfig;
use switchyard_shared::families::deliveries::{
    Begin, BeginAttempt, DeadEntry, DeliveryError, DeliveryStore, Finish, Policies, RetryPolicy,
    Verdict, classify, timer_member,
};
use switchyard_shared::platform::heartbeat::SchedulerWatch;
use switchyard_shared::platform::ids::address_forbidden as forbidden;
use switchyard_shared::platform::outbox::Owners;
use switchyard_shared::platform::scripts;
use switchyard_shared::telemetry;
use switchyard_shared::{Keys, Redis as RedisPool, WorkKind};
use tokio::sync::Semaphore;
use tracing::Instrument;

use http::{Carried, Sender, literal_ip};
pub use http::{secret_bytes, sign};

use crate::families::Ctx;
use crate::{GROUP, Handler, Outcome, WorkEntry, Worker};

/// How long an entry waits when its destination is at its limit.
const BUSY_DELAY: Duration = Duration::from_millis(200);
/// How often deferring work checks that a scheduler runs (and warns if not).
const SCHEDULER_CHECK_EVERY: Duration = Duration::from_secs(30);

/// What an attempt's outcome means for the delivery.
struct Decision {
    /// `succeeded`, `retry` or `dead`.
    outcome: &'static str,
    next_at_ms: i64,
    error: Option<String>,
}

pub struct DeliveryHandler {
    pool: RedisPool,
    keys: Keys,
    store: DeliveryStore,
    policies: Policies,
    sender: Sender,
    per_destination: usize,
    allow_link_local: bool,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    owners: Owners,
    /// Says when work is deferred and no scheduler runs to move it back.
    scheduler_watch: SchedulerWatch,
}

impl DeliveryHandler {
    pub fn new(
        pool: RedisPool,
        keys: Keys,
        cfg: &WorkerConfig,
        owners: Owners,
    ) -> anyhow::Result<Self> {
        let opts = &cfg.families.deliveries;
        Ok(Self {
            store: DeliveryStore::new(pool.clone(), keys.clone(), opts.delivery_retention),
            pool,
            keys,
            policies: cfg.outbox.policies()?,
            sender: Sender::new(opts, cfg.outbox.allow_link_local)?,
            per_destination: opts.delivery_per_destination.max(1),
            allow_link_local: cfg.outbox.allow_link_local,
            limits: Mutex::new(HashMap::new()),
            owners,
            scheduler_watch: SchedulerWatch::new(SCHEDULER_CHECK_EVERY),
        })
    }

    fn limit(&self, destination: &str) -> Arc<Semaphore> {
        let mut map = self
            .limits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(destination.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_destination)))
            .clone()
    }

    async fn attempt(&self, e: &WorkEntry) -> Outcome {
        match self.try_attempt(e).await {
            Ok(o) => o,
            Err(err) => Outcome::Retry(format!("{err:#}")),
        }
    }

    /// One attempt: begin → guard → send → decide → record.
    async fn try_attempt(&self, e: &WorkEntry) -> anyhow::Result<Outcome> {
        let id = e.payload.as_str();
        let Some(a) = self.begin(id, e).await? else {
            return Ok(Outcome::Done);
        };
        // Callbacks of an owner that is gone (a deleted net, say) are
        // cancelled instead of sent; the owner's family says (outbox hooks).
        if !a.owner.is_empty() && !self.owners.exists(&a.owner).await? {
            self.store.cancel(id).await.ok();
            return Ok(Outcome::Done);
        }
        let url = match self.guard(&a.url) {
            Ok(url) => url,
            Err(why) => return self.give_up(e, id, &a, &why).await,
        };
        let destination = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(0)
        );
        let Ok(_permit) = self.limit(&destination).try_acquire_owned() else {
            self.defer(e, id, a.lease).await?;
            metrics::counter!("switchyard_deliveries_deferred_total").increment(1);
            self.scheduler_watch.deferred(&self.pool, &self.keys).await;
            return Ok(Outcome::Handled);
        };
        let started_ms = switchyard_shared::time::now_ms();
        let span = callback_span(e, id, &a, &url);
        let carried = Carried {
            request_id: a.origin.as_ref().map(|o| o.request_id.clone()),
            traceparent: telemetry::traceparent(&span)
                .or_else(|| a.origin.as_ref().and_then(|o| o.traceparent))
                .map(|tp| tp.to_string()),
        };
        let t0 = Instant::now();
        let (status, retry_after, error) = self
            .sender
            .send(id, &a, &url, &carried)
            .instrument(span.clone())
            .await;
        let latency = t0.elapsed();
        if let Some(s) = status {
            span.record("http.response.status_code", s);
        }
        if let Some(err) = &error {
            span.record("error", err.as_str());
        }
        drop(span);
        metrics::histogram!("switchyard_delivery_attempt_seconds").record(latency.as_secs_f64());
        let decision = self.decide(&a, started_ms, status, retry_after, error);
        self.record(e, &a, &decision, status, latency, started_ms)
            .await?;
        Ok(Outcome::Handled)
    }

    /// Lease the delivery for this entry; `None` when it needs no attempt.
    async fn begin(&self, id: &str, e: &WorkEntry) -> anyhow::Result<Option<BeginAttempt>> {
        match self.store.begin(id, &e.id).await {
            Ok(Begin::Go(a)) => Ok(Some(a)),
            Ok(Begin::Skip(state)) => {
                tracing::debug!(id, state, "delivery needs no attempt");
                Ok(None)
            }
            Err(DeliveryError::NotFound) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// The URL to send to, or why it must not be sent (a permanent failure).
    fn guard(&self, raw: &str) -> Result<reqwest::Url, String> {
        let url = reqwest::Url::parse(raw).map_err(|err| format!("url cannot be parsed: {err}"))?;
        if !self.allow_link_local
            && let Some(ip) = literal_ip(&url)
            && forbidden(ip)
        {
            return Err(format!("address {ip} is not allowed (link-local/metadata)"));
        }
        Ok(url)
    }

    /// What the outcome means under the delivery's retry policy.
    fn decide(
        &self,
        a: &BeginAttempt,
        started_ms: i64,
        status: Option<u16>,
        retry_after: Option<Duration>,
        error: Option<String>,
    ) -> Decision {
        let policy = self.policies.get(&a.policy).unwrap_or_else(|| {
            self.policies
                .get(self.policies.default_name())
                .unwrap_or(&RetryPolicy::Scriptoria)
        });
        let done = a.attempts + 1;
        let age = Duration::from_millis((started_ms - a.created_ms).max(0) as u64);
        let (outcome, next_at_ms, reason) = match classify(status, retry_after, policy.retry_4xx())
        {
            Verdict::Success => ("succeeded", 0, None),
            Verdict::Permanent(why) => ("dead", 0, Some(why)),
            Verdict::Retry { after } => match policy.delay(done, age, rand::random::<f64>()) {
                None => ("dead", 0, Some(format!("gave up after {done} attempts"))),
                Some(d) => {
                    let d = after.map_or(d, |ra| ra.min(Duration::from_secs(24 * 3600)));
                    (
                        "retry",
                        switchyard_shared::time::now_ms() + d.as_millis() as i64,
                        None,
                    )
                }
            },
        };
        let error = match (error, reason) {
            (Some(e), Some(r)) => Some(format!("{e}; {r}")),
            (e, r) => e.or(r),
        };
        Decision {
            outcome,
            next_at_ms,
            error,
        }
    }

    /// Record the attempt and acknowledge the entry, in one script call.
    async fn record(
        &self,
        e: &WorkEntry,
        a: &BeginAttempt,
        d: &Decision,
        status: Option<u16>,
        latency: Duration,
        started_ms: i64,
    ) -> anyhow::Result<()> {
        let id = e.payload.as_str();
        let state = self
            .store
            .finish(&Finish {
                id,
                lease: a.lease,
                outcome: d.outcome,
                status,
                error: d.error.as_deref(),
                latency_ms: latency.as_millis() as u64,
                next_at_ms: d.next_at_ms,
                started_ms,
                entry_id: &e.id,
                group: GROUP,
                tell_owner_success: self.owners.wants_succeeded(&a.owner),
            })
            .await?;
        let label = match &state {
            None => "stale",
            Some(_) => d.outcome,
        };
        metrics::counter!("switchyard_deliveries_total", "outcome" => label).increment(1);
        if state.is_none() {
            tracing::info!(
                id,
                "attempt finished on a stale lease; another worker owns the delivery"
            );
        }
        Ok(())
    }

    /// Record a permanent failure without sending.
    async fn give_up(
        &self,
        e: &WorkEntry,
        id: &str,
        a: &BeginAttempt,
        why: &str,
    ) -> anyhow::Result<Outcome> {
        let now = switchyard_shared::time::now_ms();
        self.store
            .finish(&Finish {
                id,
                lease: a.lease,
                outcome: "dead",
                status: None,
                error: Some(why),
                latency_ms: 0,
                next_at_ms: 0,
                started_ms: now,
                entry_id: &e.id,
                group: GROUP,
                tell_owner_success: false,
            })
            .await?;
        metrics::counter!("switchyard_deliveries_total", "outcome" => "dead").increment(1);
        Ok(Outcome::Handled)
    }

    async fn defer(&self, e: &WorkEntry, id: &str, lease: i64) -> anyhow::Result<()> {
        let shard = switchyard_shared::families::deliveries::shard_of_id(id, self.keys.shards())
            .ok_or_else(|| anyhow::anyhow!("delivery id {id:?} names no shard"))?;
        let k = self.keys.delivery(shard, id);
        let mut conn = self.pool.conn();
        let _: i64 = scripts::WORK_DEFER
            .key(&e.stream)
            .key(&k.timers)
            .key(&k.record)
            .arg(GROUP)
            .arg(&e.id)
            .arg(timer_member(id))
            .arg(BUSY_DELAY.as_millis() as u64)
            .arg(lease)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }
}

impl Handler for DeliveryHandler {
    fn handle<'a>(&'a self, entry: &'a WorkEntry) -> BoxFuture<'a, Outcome> {
        Box::pin(self.attempt(entry))
    }

    fn dead_letter<'a>(
        &'a self,
        entry: &'a WorkEntry,
        reason: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async move {
            let why = format!("work entry dead-lettered: {reason}");
            let dead = DeadEntry {
                reason: &why,
                group: GROUP,
                entry_id: &entry.id,
                deliveries: entry.deliveries,
                dead_letters_max: crate::DEAD_LETTERS_MAX,
            };
            match self.store.kill(&entry.payload, &dead).await {
                Ok(true) => metrics::counter!("switchyard_deliveries_total", "outcome" => "dead")
                    .increment(1),
                Ok(false) => {}
                Err(DeliveryError::NotFound) => {
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
            Ok(true)
        })
    }
}

/// The span of one callback attempt: host, attempt number, delivery and
/// request id, and (once answered) the status. A child of the work entry's
/// span; an entry without an origin (a retry moved back from the timers)
/// is linked to the request that created the delivery instead.
fn callback_span(e: &WorkEntry, id: &str, a: &BeginAttempt, url: &reqwest::Url) -> tracing::Span {
    let span = tracing::info_span!(
        "callback",
        otel.name = format!("callback {}", a.method),
        otel.kind = "client",
        http.request.method = %a.method,
        url.host = url.host_str().unwrap_or_default(),
        delivery.id = id,
        delivery.attempt = a.attempts + 1,
        request_id = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        error = tracing::field::Empty,
    );
    if let Some(o) = &a.origin {
        span.record("request_id", o.request_id.as_str());
        if e.origin.is_none()
            && let Some(tp) = &o.traceparent
        {
            telemetry::set_parent(&span, tp);
        }
    }
    span
}

/// Register the delivery attempt handler.
pub fn register(w: Worker, ctx: &Ctx) -> anyhow::Result<Worker> {
    let opts = &ctx.config.families.deliveries;
    let visibility = ctx.config.worker.worker_visibility;
    anyhow::ensure!(
        opts.delivery_timeout < visibility,
        "--delivery-timeout ({:?}) must be below --worker-visibility ({visibility:?}), or slow attempts are reclaimed and sent twice",
        opts.delivery_timeout,
    );
    let handler = DeliveryHandler::new(
        ctx.redis.clone(),
        ctx.keys.clone(),
        &ctx.config,
        ctx.owners.clone(),
    )?;
    Ok(w.with_handler(WorkKind::Delivery, Arc::new(handler)))
}
