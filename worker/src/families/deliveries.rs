//! The HTTP delivery handler: one attempt per work entry.
//!
//! begin (lease) → sign → send (timeouts, response cap, address guard,
//! per-destination limit) → classify → finish (record + ack in one script).
//! A destination already at its limit is not waited for: the entry goes back
//! as a short timer, so one slow receiver cannot hold the worker's slots.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchyard_shared::config::WorkerConfig;
use switchyard_shared::families::deliveries::{
    Begin, BeginAttempt, DeadEntry, DeliveryStore, Finish, Policies, Verdict, classify,
    parse_retry_after, timer_member,
};
use switchyard_shared::platform::outbox::Owners;
use switchyard_shared::platform::scripts;
use switchyard_shared::{Keys, Redis as RedisPool};
use tokio::sync::Semaphore;

use switchyard_shared::WorkKind;

use crate::families::Ctx;
use crate::{GROUP, Handler, Outcome, WorkEntry, Worker};

/// How long an entry waits when its destination is at its limit.
const BUSY_DELAY: Duration = Duration::from_millis(200);

pub use switchyard_shared::families::deliveries::address_forbidden as forbidden;

/// DNS resolution that drops forbidden addresses.
struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !forbidden(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!(
                    "{host} resolves to no allowed address (link-local/metadata are refused)"
                )
                .into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Standard Webhooks signature: `v1,` + base64(HMAC-SHA256(key, "id.timestamp.body")).
/// A `whsec_` secret is base64 after the prefix; any other is used as bytes.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| {
        // HMAC accepts keys of any length; this branch cannot be taken.
        <Hmac<Sha256> as Mac>::new_from_slice(b"x").expect("hmac key")
    });
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

pub fn secret_bytes(secret: &str) -> anyhow::Result<Vec<u8>> {
    match secret.strip_prefix("whsec_") {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .context("--webhook-secret: the part after whsec_ must be base64"),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

pub struct DeliveryHandler {
    pool: RedisPool,
    keys: Keys,
    store: DeliveryStore,
    policies: Policies,
    client: reqwest::Client,
    secret: Option<Vec<u8>>,
    max_response: usize,
    per_destination: usize,
    allow_link_local: bool,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    owners: Owners,
}

impl DeliveryHandler {
    pub fn new(
        pool: RedisPool,
        keys: Keys,
        cfg: &WorkerConfig,
        owners: Owners,
    ) -> anyhow::Result<Self> {
        let opts = &cfg.families.deliveries;
        switchyard_shared::init_tls();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(opts.delivery_connect_timeout)
            .timeout(opts.delivery_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(opts.delivery_per_destination.max(1));
        if !cfg.outbox.allow_link_local {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        let client = builder.build().context("building the HTTP client")?;
        let policies = cfg.outbox.policies()?;
        Ok(Self {
            store: DeliveryStore::new(pool.clone(), keys.clone(), opts.delivery_retention),
            pool,
            keys,
            policies,
            client,
            secret: opts
                .webhook_secret
                .as_deref()
                .map(secret_bytes)
                .transpose()?,
            max_response: opts.delivery_max_response_bytes,
            per_destination: opts.delivery_per_destination.max(1),
            allow_link_local: cfg.outbox.allow_link_local,
            limits: Mutex::new(HashMap::new()),
            owners,
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

    async fn try_attempt(&self, e: &WorkEntry) -> anyhow::Result<Outcome> {
        let id = e.payload.as_str();
        let a = match self.store.begin(id, &e.id).await {
            Ok(Begin::Go(a)) => a,
            Ok(Begin::Skip(state)) => {
                tracing::debug!(id, state, "delivery needs no attempt");
                return Ok(Outcome::Done);
            }
            Err(switchyard_shared::families::deliveries::DeliveryError::NotFound) => {
                return Ok(Outcome::Done);
            }
            Err(err) => return Err(err.into()),
        };
        // Callbacks of an owner that is gone (a deleted net, say) are
        // cancelled instead of sent; the owner's family says (outbox hooks).
        if !a.owner.is_empty() && !self.owners.exists(&a.owner).await? {
            self.store.cancel(id).await.ok();
            return Ok(Outcome::Done);
        }
        let url = match reqwest::Url::parse(&a.url) {
            Ok(u) => u,
            Err(err) => {
                return self
                    .give_up(e, id, &a, &format!("url cannot be parsed: {err}"))
                    .await;
            }
        };
        if !self.allow_link_local
            && let Some(ip) = literal_ip(&url)
            && forbidden(ip)
        {
            return self
                .give_up(
                    e,
                    id,
                    &a,
                    &format!("address {ip} is not allowed (link-local/metadata)"),
                )
                .await;
        }
        let destination = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(0)
        );
        let Ok(_permit) = self.limit(&destination).try_acquire_owned() else {
            self.defer(e, id, a.lease).await?;
            metrics::counter!("switchyard_deliveries_deferred_total").increment(1);
            return Ok(Outcome::Handled);
        };
        let started_ms = switchyard_shared::time::now_ms();
        let t0 = Instant::now();
        let (status, retry_after, error) = self.send(id, &a, &url).await;
        let latency = t0.elapsed();
        metrics::histogram!("switchyard_delivery_attempt_seconds").record(latency.as_secs_f64());
        let policy = self.policies.get(&a.policy).unwrap_or_else(|| {
            self.policies
                .get(self.policies.default_name())
                .unwrap_or(&switchyard_shared::families::deliveries::RetryPolicy::Scriptoria)
        });
        let done = a.attempts + 1;
        let age = Duration::from_millis((started_ms - a.created_ms).max(0) as u64);
        let (outcome, next_at, reason) = match classify(status, retry_after, policy.retry_4xx()) {
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
        let state = self
            .store
            .finish(&Finish {
                id,
                lease: a.lease,
                outcome,
                status,
                error: error.as_deref(),
                latency_ms: latency.as_millis() as u64,
                next_at_ms: next_at,
                started_ms,
                entry_id: &e.id,
                group: GROUP,
            })
            .await?;
        let label = match &state {
            None => "stale",
            Some(_) => outcome,
        };
        metrics::counter!("switchyard_deliveries_total", "outcome" => label).increment(1);
        if state.is_none() {
            tracing::info!(
                id,
                "attempt finished on a stale lease; another worker owns the delivery"
            );
        }
        Ok(Outcome::Handled)
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
            })
            .await?;
        metrics::counter!("switchyard_deliveries_total", "outcome" => "dead").increment(1);
        Ok(Outcome::Handled)
    }

    async fn defer(&self, e: &WorkEntry, id: &str, lease: i64) -> anyhow::Result<()> {
        let shard = switchyard_shared::families::deliveries::shard_of_id(id, self.keys.shards())
            .context("delivery id")?;
        let k = self.keys.delivery(shard, id);
        let mut conn = self.pool.get().await?;
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

    /// One HTTP attempt: (status, Retry-After, error text).
    async fn send(
        &self,
        id: &str,
        a: &BeginAttempt,
        url: &reqwest::Url,
    ) -> (Option<u16>, Option<Duration>, Option<String>) {
        if !self.allow_link_local
            && let Some(host) = url.host_str()
            && let Ok(ip) = host
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<IpAddr>()
            && forbidden(ip)
        {
            return (
                None,
                None,
                Some(format!("address {ip} is not allowed (link-local/metadata)")),
            );
        }
        let method =
            reqwest::Method::from_bytes(a.method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let ts = chrono_ts();
        let mut req = self
            .client
            .request(method, url.clone())
            .header("content-type", "application/json");
        for (k, v) in &a.headers {
            req = req.header(k, v);
        }
        req = req
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string());
        if let Some(secret) = &self.secret {
            req = req.header("webhook-signature", sign(secret, id, ts, &a.body));
        }
        let resp = match req.body(a.body.clone()).send().await {
            Ok(r) => r,
            Err(err) => {
                let kind = if err.is_timeout() {
                    "timeout"
                } else if err.is_connect() {
                    "connect error"
                } else {
                    "request error"
                };
                return (None, None, Some(format!("{kind}: {}", error_chain(&err))));
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        // Read at most the configured number of bytes; keep a snippet for errors.
        let mut resp = resp;
        let mut snippet = Vec::new();
        let mut read = 0usize;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    read += chunk.len();
                    if snippet.len() < 200 {
                        snippet.extend_from_slice(&chunk[..chunk.len().min(200 - snippet.len())]);
                    }
                    if read >= self.max_response {
                        break;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    if (200..300).contains(&status) {
                        break; // the status is what counts
                    }
                    return (
                        Some(status),
                        retry_after,
                        Some(format!("reading response: {err}")),
                    );
                }
            }
        }
        let error = (!(200..300).contains(&status)).then(|| {
            let text = String::from_utf8_lossy(&snippet);
            format!("HTTP {status}: {}", text.trim())
        });
        (Some(status), retry_after, error)
    }
}

/// The IP of a URL whose host is an address literal.
fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

fn chrono_ts() -> i64 {
    switchyard_shared::time::now_ms() / 1000
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
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
                Err(switchyard_shared::families::deliveries::DeliveryError::NotFound) => {
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn link_local_and_metadata_are_forbidden() {
        for bad in [
            "169.254.169.254",
            "169.254.1.1",
            "fe80::1",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
        ] {
            assert!(forbidden(bad.parse().unwrap()), "{bad}");
        }
        for ok in [
            "127.0.0.1",
            "10.0.0.1",
            "8.8.8.8",
            "::1",
            "2001:db8::1",
            "fd00::1",
        ] {
            assert!(!forbidden(ok.parse().unwrap()), "{ok}");
        }
    }

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // Example from the Standard Webhooks specification.
        let secret = secret_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
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
