//! The outbox's owner hooks: a family hears what became of its callbacks
//! without knowing the deliveries family, and a gone owner's callbacks are
//! cancelled instead of sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use switchyard_shared::WorkKind;
use switchyard_shared::families::deliveries::DeliveryStore;
use switchyard_shared::platform::errors::StoreError;
use switchyard_shared::platform::outbox::{BoxFuture, NewDelivery, OwnerHooks, Owners};
use switchyard_worker::Worker;
use switchyard_worker::families::deliveries::DeliveryHandler;
use switchyard_worker::owners::{Announce, OwnerHandler};

use crate::support::{Receiver, TestApp, spawn_app, worker_opts};

/// A family that records what its hooks are told.
struct Probe {
    exists: bool,
    told: Mutex<Vec<String>>,
}

impl Probe {
    fn new(exists: bool) -> Arc<Self> {
        Arc::new(Self {
            exists,
            told: Mutex::default(),
        })
    }

    fn told(&self) -> Vec<String> {
        self.told.lock().unwrap().clone()
    }
}

impl OwnerHooks for Probe {
    fn exists<'a>(&'a self, _id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { Ok(self.exists) })
    }

    fn failed<'a>(
        &'a self,
        id: &'a str,
        delivery: &'a str,
        _reason: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.told
            .lock()
            .unwrap()
            .push(format!("failed {id} {delivery}"));
        Box::pin(async { Ok(()) })
    }

    fn wants_succeeded(&self) -> bool {
        true
    }

    fn succeeded<'a>(
        &'a self,
        id: &'a str,
        delivery: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.told
            .lock()
            .unwrap()
            .push(format!("succeeded {id} {delivery}"));
        Box::pin(async { Ok(()) })
    }
}

/// A worker whose only owner family is the probe, registered as `probe`.
fn worker_for(app: &TestApp, probe: Arc<Probe>) -> Arc<Worker> {
    let owners = Owners::default().register("probe", probe);
    let mut opts = worker_opts("owners");
    opts.worker_block = Duration::from_millis(10);
    let cfg = app.worker_config(opts.clone());
    let sender =
        DeliveryHandler::new(app.redis.clone(), app.keys.clone(), &cfg, owners.clone()).unwrap();
    let announce = |announce| {
        Arc::new(OwnerHandler {
            owners: owners.clone(),
            announce,
        })
    };
    Arc::new(
        Worker::new(app.redis.clone(), app.keys.clone(), opts)
            .with_handler(WorkKind::Delivery, Arc::new(sender))
            .with_handler(WorkKind::OwnerSucceeded, announce(Announce::Succeeded))
            .with_handler(WorkKind::OwnerFailed, announce(Announce::Failed)),
    )
}

/// Queue a callback owned by `probe:42`; returns its delivery id.
async fn callback_of_probe(app: &TestApp, url: &str) -> String {
    let store = DeliveryStore::new(app.redis.clone(), app.keys.clone(), Duration::from_secs(60));
    let (id, _) = store
        .enqueue(&NewDelivery {
            url: url.to_owned(),
            method: "POST".into(),
            headers: BTreeMap::new(),
            body: "{}".into(),
            policy: "fast".into(),
            idempotency_key: None,
            destination: "127.0.0.1".into(),
            owner: Some("probe:42".into()),
        })
        .await
        .unwrap();
    id
}

/// Step the worker until nothing is left to read.
async fn step_until_idle(app: &TestApp, worker: &Arc<Worker>) {
    worker.ensure_groups().await.unwrap();
    let mut conn = app.redis.dedicated(Duration::from_secs(5)).await.unwrap();
    for _ in 0..20 {
        if worker.step(&mut conn).await.unwrap() == 0 {
            return;
        }
    }
    panic!("the worker kept finding work");
}

#[tokio::test]
async fn a_delivered_callback_tells_its_owner() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let probe = Probe::new(true);
    let worker = worker_for(&app, probe.clone());
    let id = callback_of_probe(&app, &rx.url).await;
    step_until_idle(&app, &worker).await;
    assert_eq!(rx.count(), 1);
    assert_eq!(probe.told(), vec![format!("succeeded 42 {id}")]);
}

#[tokio::test]
async fn a_callback_that_finally_fails_tells_its_owner() {
    let app = spawn_app().await;
    let rx = Receiver::start(
        Duration::ZERO,
        Arc::new(|_, _| (StatusCode::BAD_REQUEST, vec![])),
    )
    .await;
    let probe = Probe::new(true);
    let worker = worker_for(&app, probe.clone());
    let id = callback_of_probe(&app, &rx.url).await;
    step_until_idle(&app, &worker).await;
    assert_eq!(rx.count(), 1, "a 400 is permanent: one attempt");
    assert_eq!(probe.told(), vec![format!("failed 42 {id}")]);
}

#[tokio::test]
async fn a_gone_owners_callback_is_cancelled_not_sent() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let probe = Probe::new(false);
    let worker = worker_for(&app, probe.clone());
    let id = callback_of_probe(&app, &rx.url).await;
    step_until_idle(&app, &worker).await;
    assert_eq!(rx.count(), 0);
    assert!(probe.told().is_empty());
    let (_, d) = app.get(&format!("/v1/deliveries/{id}")).await;
    assert_eq!(d["state"], "cancelled", "{d}");
}
