//! Request ids and OpenTelemetry traces: the API answers every request's
//! `X-Request-Id` (the client's when valid, else a new one), and the
//! callbacks that request causes — a delivery, a net's notification, a
//! workflow participant's callback — carry the id and a `traceparent` in
//! the request's trace, which a loopback OTLP/HTTP collector receives from
//! the API and the worker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use switchyard_shared::platform::config::LogOpts;
use switchyard_shared::platform::trace::{TraceParent, valid_request_id};
use switchyard_shared::telemetry;
use tokio_util::sync::CancellationToken;

use crate::support::{Receiver, TestApp, eventually, spawn_app};

/// One span as the collector received it (ids in hex).
#[derive(Clone, Debug)]
struct Exported {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: HashMap<String, String>,
}

/// A loopback OTLP/HTTP collector: `POST /v1/traces` with protobuf bodies.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<Exported>>>,
    stop: CancellationToken,
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn text(v: Option<&Any>) -> String {
    match v {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

async fn traces(State(spans): State<Arc<Mutex<Vec<Exported>>>>, body: Bytes) -> StatusCode {
    let Ok(req) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut out = spans.lock().unwrap();
    for rs in req.resource_spans {
        let service = rs
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| text(kv.value.as_ref().and_then(|v| v.value.as_ref())))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                out.push(Exported {
                    service: service.clone(),
                    name: s.name,
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: hex(&s.parent_span_id),
                    attributes: s
                        .attributes
                        .iter()
                        .map(|kv| {
                            (
                                kv.key.clone(),
                                text(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                            )
                        })
                        .collect(),
                });
            }
        }
    }
    StatusCode::OK
}

impl Collector {
    async fn start() -> Self {
        let spans: Arc<Mutex<Vec<Exported>>> = Arc::default();
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(traces))
            .with_state(spans.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let s2 = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { s2.cancelled().await })
                .await
                .ok();
        });
        Self { url, spans, stop }
    }

    /// The span named `name` whose `request_id` attribute is `id`, if received.
    fn find(&self, name_prefix: &str, id: &str) -> Option<Exported> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .find(|s| {
                s.name.starts_with(name_prefix)
                    && s.attributes.get("request_id").map(String::as_str) == Some(id)
            })
            .cloned()
    }
}

/// POST `body` to `path` with extra `headers`: status, response headers, body.
async fn post(
    app: &TestApp,
    path: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    let mut req = app
        .client
        .post(format!("{}{path}", app.base))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = &app.token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let (status, h) = (resp.status(), resp.headers().clone());
    let text = resp.text().await.unwrap();
    (
        status,
        h,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn request_id(h: &HeaderMap) -> String {
    h.get("x-request-id")
        .expect("x-request-id on the response")
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_delivery_carries_its_request_id_and_trace_to_the_callback_and_the_collector() {
    let collector = Collector::start().await;
    let t = telemetry::init(
        &LogOpts {
            otlp_endpoint: Some(collector.url.clone()),
            otlp_export_interval: Duration::from_millis(50),
            ..LogOpts::default()
        },
        "test",
    );
    if !t.tracing() {
        eprintln!("skipped: another test of this process installed the subscriber (use nextest)");
        return;
    }
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let _roles = app.run_worker_and_scheduler("tracing");

    let (s, h, b) = post(
        &app,
        "/v1/deliveries",
        json!({"url": rx.url}),
        &[("x-request-id", "abc-123")],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(request_id(&h), "abc-123");
    let (_, view) = app
        .get(&format!("/v1/deliveries/{}", b["id"].as_str().unwrap()))
        .await;
    assert_eq!(view["request_id"], "abc-123", "{view}");

    eventually(Duration::from_secs(10), || async { rx.count() >= 1 }).await;
    let got = &rx.received()[0];
    assert_eq!(got.headers["x-request-id"], "abc-123");
    let tp = TraceParent::parse(&got.headers["traceparent"]).expect("a W3C traceparent");

    // The work entry's span ends after the attempt's: wait for all three.
    let (mut http, mut work, mut callback) = (None, None, None);
    eventually(Duration::from_secs(10), || {
        http = collector.find("POST /v1/deliveries", "abc-123");
        work = collector.find("work delivery", "abc-123");
        callback = collector.find("callback", "abc-123");
        let done = http.is_some() && work.is_some() && callback.is_some();
        async move { done }
    })
    .await;
    let (http, work, callback) = (http.unwrap(), work.unwrap(), callback.unwrap());
    assert_eq!(http.trace_id, tp.trace_id_hex(), "the request's trace");
    assert_eq!(callback.trace_id, tp.trace_id_hex(), "the callback's trace");
    assert_eq!(
        callback.span_id,
        hex(&tp.span_id),
        "the receiver's parent is the attempt's span"
    );
    assert_eq!(http.attributes["http.route"], "/v1/deliveries");
    assert_eq!(http.attributes["http.response.status_code"], "201");
    assert_eq!(callback.attributes["http.response.status_code"], "204");
    assert_eq!(callback.attributes["delivery.attempt"], "1");
    assert_eq!(callback.attributes["url.host"], "127.0.0.1");
    assert_eq!(http.service, "switchyard-test");
    // The work entry's span sits between the request and the attempt.
    assert_eq!(work.trace_id, http.trace_id);
    assert_eq!(work.parent_span_id, http.span_id);
    assert_eq!(callback.parent_span_id, work.span_id);
    // Blocking: the collector must go on answering meanwhile.
    tokio::task::spawn_blocking(move || t.shutdown())
        .await
        .unwrap();
}

#[tokio::test]
async fn stopping_the_telemetry_exports_the_spans_still_queued() {
    let collector = Collector::start().await;
    let t = telemetry::init(
        &LogOpts {
            otlp_endpoint: Some(collector.url.clone()),
            // Nothing would be sent before the shutdown.
            otlp_export_interval: Duration::from_secs(3600),
            ..LogOpts::default()
        },
        "test",
    );
    if !t.tracing() {
        eprintln!("skipped: another test of this process installed the subscriber (use nextest)");
        return;
    }
    let app = spawn_app().await;
    let (s, _, _) = post(
        &app,
        "/v1/deliveries",
        json!({"url": "http://127.0.0.1:9/x"}),
        &[("x-request-id", "flush-1")],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(collector.find("POST", "flush-1").is_none());
    tokio::task::spawn_blocking(move || t.shutdown())
        .await
        .unwrap();
    let http = collector
        .find("POST /v1/deliveries", "flush-1")
        .expect("exported on shutdown");
    assert_eq!(http.service, "switchyard-test");
}

#[tokio::test]
async fn a_request_without_a_valid_id_gets_a_new_one_on_every_response() {
    let app = spawn_app().await;
    let rx = Receiver::ok().await;
    let (s, h, _) = post(&app, "/v1/deliveries", json!({"url": rx.url}), &[]).await;
    assert_eq!(s, StatusCode::CREATED);
    let generated = request_id(&h);
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");

    for bad in ["has space", &"x".repeat(129), "tab\tid"] {
        let (s, h, _) = post(
            &app,
            "/v1/deliveries",
            json!({"url": rx.url}),
            &[("x-request-id", bad)],
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        let id = request_id(&h);
        assert_ne!(id, bad);
        assert!(valid_request_id(&id) && uuid::Uuid::parse_str(&id).is_ok());
    }
    let longest = "y".repeat(128);
    let (_, h, _) = post(
        &app,
        "/v1/deliveries",
        json!({"url": rx.url}),
        &[("x-request-id", &longest)],
    )
    .await;
    assert_eq!(request_id(&h), longest);

    // Errors answer it too: a refused body, an unknown route.
    let (s, h, _) = post(
        &app,
        "/v1/deliveries",
        json!({"url": 5}),
        &[("x-request-id", "bad-body-1")],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(request_id(&h), "bad-body-1");
    let (s, h, _) = post(&app, "/v1/no-such-thing", json!({}), &[]).await;
    assert!(s.is_client_error(), "{s}");
    assert!(valid_request_id(&request_id(&h)));

    // Without tracing, callbacks still carry the id and a traceparent: the
    // client's when it sends one.
    app.settle().await;
    let got = rx.received();
    assert_eq!(got.len(), 5);
    assert!(got.iter().any(|r| r.headers["x-request-id"] == generated));
    assert!(got.iter().any(|r| r.headers["x-request-id"] == longest));
    for r in &got {
        assert!(TraceParent::parse(&r.headers["traceparent"]).is_some());
    }
    let client_tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    post(
        &app,
        "/v1/deliveries",
        json!({"url": rx.url}),
        &[("x-request-id", "with-tp"), ("traceparent", client_tp)],
    )
    .await;
    app.settle().await;
    let r = rx
        .received()
        .into_iter()
        .find(|r| r.headers["x-request-id"] == "with-tp")
        .unwrap();
    assert_eq!(r.headers["traceparent"], client_tp);

    // A retry (moved back from the timers) carries them too.
    let flaky = Receiver::start(
        Duration::ZERO,
        Arc::new(|_, seen| match seen {
            1 => (StatusCode::INTERNAL_SERVER_ERROR, vec![]),
            _ => (StatusCode::NO_CONTENT, vec![]),
        }),
    )
    .await;
    post(
        &app,
        "/v1/deliveries",
        json!({"url": flaky.url}),
        &[("x-request-id", "retry-1")],
    )
    .await;
    app.settle().await;
    let got = flaky.received();
    assert_eq!(got.len(), 2, "one failed attempt, one retry");
    for r in &got {
        assert_eq!(r.headers["x-request-id"], "retry-1");
    }
    assert_eq!(got[0].headers["traceparent"], got[1].headers["traceparent"]);
}

#[tokio::test]
async fn net_and_workflow_callbacks_carry_the_id_of_the_request_that_caused_them() {
    let app = spawn_app().await;
    let (net_rx, wf_rx) = (Receiver::ok().await, Receiver::ok().await);
    let (s, h, b) = post(
        &app,
        "/v1/nets",
        json!({"initialMarking": ["start"], "transitions": [
            {"inputs": ["start"], "outputs": ["mid"], "action": {"type": "notify", "url": net_rx.url}},
            {"inputs": ["mid"], "outputs": ["end"], "action": {"type": "notify", "url": net_rx.url}}
        ]}),
        &[("x-request-id", "net-req-1")],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(request_id(&h), "net-req-1");
    let (s, _, b) = post(
        &app,
        "/v1/workflows",
        json!({
            "workflow": r#"<process-definition name="t"><participant ref="alpha" /></process-definition>"#,
            "callback": wf_rx.url,
        }),
        &[("x-request-id", "wf-req-1")],
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    app.settle().await;
    let net = net_rx.received();
    assert_eq!(net.len(), 2);
    for r in &net {
        assert_eq!(r.headers["x-request-id"], "net-req-1");
    }
    let wf = wf_rx.received();
    assert_eq!(wf.len(), 1, "the participant's callback");
    assert_eq!(wf[0].headers["x-request-id"], "wf-req-1");
    assert!(TraceParent::parse(&wf[0].headers["traceparent"]).is_some());
}

#[tokio::test]
async fn a_transactions_webhooks_and_sink_carry_the_id_of_its_commit() {
    use crate::support::api::transactions::SEED_TOKEN;
    use reqwest::Method;
    let (hooks, sink) = (Receiver::ok().await, Receiver::ok().await);
    let app = TestApp::builder()
        .with_config(|c| {
            let t = &mut c.families.transactions;
            t.transactions_tenants = vec![format!("{SEED_TOKEN}=8")];
            t.transactions_callback_policy = "fast".into();
            t.transactions_sink_url = Some(sink.url.clone());
        })
        .spawn()
        .await;
    let tx = app.transactions(SEED_TOKEN);
    let (s, _, b) = tx
        .raw(
            Method::POST,
            "/v1/transactions",
            Some(&json!({"callback_url": hooks.url}).to_string()),
            &[("x-request-id", "tx-open-1")],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let id = serde_json::from_str::<Value>(&b).unwrap()["data"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    tx.post(
        "collaborators",
        &id,
        json!([{"name": "C1", "identification": "1", "genre": "F", "active": true, "birthDate": "1990-01-01"}]),
    )
    .await;
    let (s, _, b) = tx
        .raw(
            Method::POST,
            &format!("/v1/transactions/{id}"),
            None,
            &[("x-request-id", "tx-commit-1")],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    app.settle().await;
    let got = hooks.received();
    assert_eq!(got.len(), 6, "one webhook per status, 2 to 7");
    for r in got.iter().chain(&sink.received()) {
        assert_eq!(r.headers["x-request-id"], "tx-commit-1");
        assert_eq!(r.headers["traceparent"], got[0].headers["traceparent"]);
    }
    assert_eq!(sink.count(), 1);
}
