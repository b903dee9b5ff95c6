//! Live updates: `GET /ui/events?topics=a,b` is a Server-Sent Events
//! stream sending an event named after a topic whenever what the topic
//! shows has changed; a page's live regions refetch their fragment on it
//! (`hx-trigger="sse:<topic>"` with htmx's SSE extension).
//!
//! Each replica learns of changes from Redis by a cheap poll: **one poller
//! per topic per replica**, started by the first subscriber and stopped
//! when the last one leaves, computes the section's fingerprint of the
//! topic every `--ui-live-interval` and broadcasts the topic's name when it
//! changes. So the Redis cost is one small read per watched topic per
//! interval per replica, whatever the number of viewers. At most
//! `--ui-live-clients` streams per replica (503 beyond). A reconnecting
//! client (it sends `Last-Event-ID`, or `replay=1` when a hidden tab comes
//! back) gets every topic once at once, since it may have missed changes
//! while away.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{LiveHook, UiError};
use crate::state::AppState;

/// The server's shutdown signal (put in every request by `serve`): live
/// streams end when it fires, so they do not hold a graceful shutdown up.
#[derive(Clone)]
pub struct Closing(pub CancellationToken);

/// Most topics one stream may watch.
pub const TOPICS_MAX: usize = 16;

/// Longest topic name.
pub const TOPIC_LEN_MAX: usize = 120;

struct Poller {
    subscribers: usize,
    stop: CancellationToken,
}

/// The replica's live-update hub: pollers by topic and one broadcast of
/// changed topic names.
pub struct Hub {
    hooks: Vec<(&'static str, LiveHook)>,
    interval: Duration,
    max_clients: usize,
    clients: AtomicUsize,
    tx: broadcast::Sender<Arc<str>>,
    pollers: Mutex<HashMap<String, Poller>>,
}

/// Why a stream could not start.
#[derive(Debug)]
pub enum SubscribeError {
    /// `--ui-live-clients` streams are open already.
    Full,
    /// No section has this topic.
    Unknown(String),
}

impl Hub {
    pub fn new(
        hooks: Vec<(&'static str, LiveHook)>,
        interval: Duration,
        max_clients: usize,
    ) -> Self {
        let (tx, _) = broadcast::channel(256);
        Self {
            hooks,
            interval,
            max_clients,
            clients: AtomicUsize::new(0),
            tx,
            pollers: Mutex::new(HashMap::new()),
        }
    }

    fn pollers(&self) -> MutexGuard<'_, HashMap<String, Poller>> {
        // A panic while holding this lock leaves the map consistent.
        self.pollers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many topics are polled right now (for tests and metrics).
    pub fn polled_topics(&self) -> usize {
        self.pollers().len()
    }

    /// The hook answering `topic`: its section's, if it knows the topic.
    fn hook(&self, topic: &str) -> Option<LiveHook> {
        let valid = !topic.is_empty()
            && topic.len() <= TOPIC_LEN_MAX
            && topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid {
            return None;
        }
        self.hooks
            .iter()
            .find(|(seg, _)| {
                topic == *seg
                    || topic
                        .strip_prefix(seg)
                        .is_some_and(|rest| rest.starts_with('-'))
            })
            .map(|(_, h)| h.clone())
            // Futures are lazy: asking for one does no work.
            .filter(|h| h(topic).is_some())
    }

    /// Watch `topics`; the pollers run while the subscription lives. A
    /// topic nobody watched yet gets its first fingerprint read here, before
    /// the stream starts, so any change after the answer is seen.
    pub async fn subscribe(
        self: &Arc<Self>,
        topics: Vec<String>,
    ) -> Result<Subscription, SubscribeError> {
        let mut hooks = Vec::with_capacity(topics.len());
        for t in &topics {
            hooks.push(
                self.hook(t)
                    .ok_or_else(|| SubscribeError::Unknown(t.clone()))?,
            );
        }
        if self.clients.fetch_add(1, Ordering::SeqCst) >= self.max_clients {
            self.clients.fetch_sub(1, Ordering::SeqCst);
            return Err(SubscribeError::Full);
        }
        // From here on the subscription owns the client slot (its drop frees it).
        let mut sub = Subscription {
            hub: self.clone(),
            topics: Vec::new(),
            rx: self.tx.subscribe(),
        };
        let mut baselines = Vec::with_capacity(topics.len());
        for (topic, hook) in topics.iter().zip(&hooks) {
            let polled = self.pollers().contains_key(topic);
            baselines.push(match hook(topic) {
                Some(fut) if !polled => fut.await.ok(),
                _ => None,
            });
        }
        let mut pollers = self.pollers();
        for ((topic, hook), first) in topics.into_iter().zip(hooks).zip(baselines) {
            match pollers.get_mut(&topic) {
                Some(p) => p.subscribers += 1,
                None => {
                    let stop = CancellationToken::new();
                    tokio::spawn(poll(
                        topic.clone(),
                        hook,
                        first,
                        self.interval,
                        stop.clone(),
                        self.tx.clone(),
                    ));
                    pollers.insert(
                        topic.clone(),
                        Poller {
                            subscribers: 1,
                            stop,
                        },
                    );
                }
            }
            sub.topics.push(topic);
        }
        drop(pollers);
        Ok(sub)
    }
}

/// Poll one topic's fingerprint every `interval` until stopped; broadcast
/// its name when the fingerprint changes (`first` is the baseline; without
/// one, the first read is).
async fn poll(
    topic: String,
    hook: LiveHook,
    first: Option<u64>,
    interval: Duration,
    stop: CancellationToken,
    tx: broadcast::Sender<Arc<str>>,
) {
    let name: Arc<str> = topic.as_str().into();
    let mut last = first;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let Some(fut) = hook(&topic) else { return };
        match fut.await {
            Ok(fp) => {
                if last.is_some_and(|l| l != fp) {
                    // No receiver left means the poller is about to stop.
                    let _ = tx.send(name.clone());
                }
                last = Some(fp);
            }
            Err(e) => tracing::warn!(topic, error = %e, "live-update poll failed"),
        }
    }
}

/// A stream's hold on its topics: dropping it (the client went away)
/// stops the pollers nobody else watches.
pub struct Subscription {
    hub: Arc<Hub>,
    topics: Vec<String>,
    rx: broadcast::Receiver<Arc<str>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut pollers = self.hub.pollers();
        for t in &self.topics {
            if let Some(p) = pollers.get_mut(t) {
                p.subscribers -= 1;
                if p.subscribers == 0 {
                    p.stop.cancel();
                    pollers.remove(t);
                }
            }
        }
        drop(pollers);
        self.hub.clients.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Subscription {
    /// The SSE events: one per change of a watched topic; every topic at
    /// once when `replay` (a reconnect) or after falling behind.
    pub fn events(self, replay: bool) -> impl Stream<Item = Result<Event, Infallible>> + Send {
        let pending: Vec<String> = if replay {
            self.topics.clone()
        } else {
            Vec::new()
        };
        futures::stream::unfold(
            (self, pending, 0u64),
            |(mut sub, mut pending, mut id)| async move {
                loop {
                    if let Some(t) = pending.pop() {
                        id += 1;
                        let ev = Event::default()
                            .event(&t)
                            .id(id.to_string())
                            .data("changed");
                        return Some((Ok(ev), (sub, pending, id)));
                    }
                    match sub.rx.recv().await {
                        Ok(t) => {
                            if sub.topics.iter().any(|x| **x == *t) {
                                pending.push(t.to_string());
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            pending = sub.topics.clone();
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        )
    }
}

#[derive(Deserialize)]
pub struct EventsQuery {
    topics: String,
    /// `1`: send every topic once at once (a page resuming after a pause).
    #[serde(default)]
    replay: Option<String>,
}

/// `GET /ui/events?topics=gates,nets-abc[&replay=1]`: the live-update stream.
pub async fn events(
    State(state): State<AppState>,
    closing: Option<Extension<Closing>>,
    headers: HeaderMap,
    Query(q): Query<EventsQuery>,
) -> Response {
    let mut topics: Vec<String> = q
        .topics
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    topics.sort();
    topics.dedup();
    if topics.is_empty() || topics.len() > TOPICS_MAX {
        return UiError::bad_request(format!("give 1 to {TOPICS_MAX} topics")).into_response();
    }
    let sub = match state.console.live.subscribe(topics).await {
        Ok(s) => s,
        Err(SubscribeError::Full) => {
            let mut resp = UiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many live-update clients on this replica; retry later",
            )
            .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return resp;
        }
        Err(SubscribeError::Unknown(t)) => {
            return UiError::not_found(format!("no live topic {t:?}")).into_response();
        }
    };
    let replay =
        headers.contains_key("last-event-id") || matches!(q.replay.as_deref(), Some("1" | "true"));
    let closing = closing.map_or_else(CancellationToken::new, |Extension(c)| c.0);
    let events = sub.events(replay).take_until(closing.cancelled_owned());
    let mut resp = Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response();
    // Proxies (nginx) must not buffer the stream.
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::AtomicU64;

    use super::*;

    /// A hub with one section `s` whose topic `s` has the fingerprint
    /// `state`; `polls` counts the reads.
    fn hub(state: Arc<AtomicU64>, polls: Arc<AtomicUsize>, max: usize) -> Arc<Hub> {
        let hook: LiveHook = Arc::new(move |topic| {
            let (state, polls) = (state.clone(), polls.clone());
            (topic == "s").then(|| {
                Box::pin(async move {
                    polls.fetch_add(1, Ordering::SeqCst);
                    Ok(state.load(Ordering::SeqCst))
                }) as super::super::BoxFuture<_>
            })
        });
        Arc::new(Hub::new(vec![("s", hook)], Duration::from_millis(10), max))
    }

    #[tokio::test]
    async fn one_poller_per_topic_serves_every_subscriber_and_stops_with_the_last() {
        let state = Arc::new(AtomicU64::new(1));
        let polls = Arc::new(AtomicUsize::new(0));
        let hub = hub(state.clone(), polls.clone(), 8);
        let a = hub.subscribe(vec!["s".into()]).await.unwrap();
        let b = hub.subscribe(vec!["s".into()]).await.unwrap();
        assert_eq!(hub.polled_topics(), 1);
        state.store(2, Ordering::SeqCst);
        let mut events = Box::pin(a.events(false));
        let first = tokio::time::timeout(Duration::from_secs(5), events.next()).await;
        assert!(matches!(first, Ok(Some(Ok(_)))), "no event after a change");
        drop(events);
        assert_eq!(hub.polled_topics(), 1, "b still watches");
        drop(b);
        assert_eq!(hub.polled_topics(), 0);
        assert_eq!(hub.clients.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn unknown_topics_and_clients_beyond_the_cap_are_refused() {
        let hub = hub(Arc::default(), Arc::default(), 1);
        for t in ["x", "s x", "", "t-s"] {
            assert!(matches!(
                hub.subscribe(vec![t.into()]).await,
                Err(SubscribeError::Unknown(_))
            ));
        }
        let held = hub.subscribe(vec!["s".into()]).await.unwrap();
        assert!(matches!(
            hub.subscribe(vec!["s".into()]).await,
            Err(SubscribeError::Full)
        ));
        drop(held);
        assert!(hub.subscribe(vec!["s".into()]).await.is_ok());
    }
}
