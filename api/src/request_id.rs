//! The outermost middleware: the request id and the request's span.
//!
//! A client's `X-Request-Id` is kept when it is 1..=128 visible ASCII
//! characters; otherwise (or without one) the request gets a new UUID v7.
//! Every response answers it in `X-Request-Id` (errors, timeouts and
//! unknown routes too). The request runs inside the span `http` (method,
//! route, status, request id), a child of the client's `traceparent` when
//! it sends one, and with its [`Origin`] as the
//! [current](switchyard_shared::platform::trace::current) one: the work
//! and deliveries it creates carry the request id and trace to the
//! callbacks the workers send for it.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use switchyard_shared::platform::trace::{
    self, Origin, REQUEST_ID_HEADER, TRACEPARENT_HEADER, TraceParent,
};
use switchyard_shared::telemetry;
use tracing::Instrument;

/// The request id to use: the client's when valid, else a new one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| trace::valid_request_id(s))
        .map_or_else(trace::new_request_id, str::to_owned)
}

pub async fn request_id_and_span(req: Request, next: Next) -> Response {
    let id = request_id(&req);
    let incoming = req
        .headers()
        .get(TRACEPARENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse);
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = req.method().clone();
    let span = tracing::info_span!(
        "http",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        request_id = %id,
        http.response.status_code = tracing::field::Empty,
    );
    if let Some(tp) = &incoming {
        telemetry::set_parent(&span, tp);
    }
    // The trace the request's work joins: this span when spans are
    // exported, else the client's, else a new one (so callbacks always
    // carry a traceparent).
    let traceparent = telemetry::traceparent(&span)
        .or(incoming)
        .unwrap_or_else(TraceParent::random);
    let origin = Origin {
        request_id: id.clone(),
        traceparent: Some(traceparent),
    };
    let mut resp = trace::scope(Some(origin), next.run(req))
        .instrument(span.clone())
        .await;
    span.record("http.response.status_code", resp.status().as_u16());
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    resp
}
