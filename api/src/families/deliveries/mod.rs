//! `/v1/deliveries`: enqueue an HTTP request to be delivered reliably, list
//! (filtered by state, destination, URL, owner and time), inspect (with the
//! attempt log), replay and cancel. The console's pages are in [`ui`].

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

use switchyard_shared::families::deliveries::{
    DeliveryError, DeliveryFilter, DeliveryStore, DeliveryView, NewDelivery, STATES,
};
use switchyard_shared::platform::ids::CallbackUrl;
use switchyard_shared::platform::outbox::Policies;

use crate::error::{AppError, AppResult, Code};
use crate::extract::JsonBody;
use crate::families::Family;
use crate::state::Ctx;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod ui;

pub const HEADERS_MAX: usize = 32;
pub const HEADER_VALUE_MAX: usize = 4096;
pub const IDEMPOTENCY_KEY_MAX: usize = 200;
pub const PAGE_MAX: usize = 500;
/// Headers the engine sets itself.
const RESERVED: [&str; 7] = [
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-length",
    "content-type",
    "host",
    "transfer-encoding",
];

/// What the deliveries endpoints share.
#[derive(Clone)]
pub struct DeliveriesApi {
    pub deliveries: DeliveryStore,
    pub policies: Arc<Policies>,
    pub allow_link_local: bool,
}

/// The deliveries endpoints.
pub fn family(ctx: &Ctx) -> anyhow::Result<Family> {
    let state = DeliveriesApi::new(ctx)?;
    Ok(Family {
        name: "deliveries",
        routes: OpenApiRouter::new()
            .routes(routes!(list, create))
            .routes(routes!(show, cancel))
            .routes(routes!(retry))
            .with_state(state.clone()),
        on_scrape: None,
        ui: Some(ui::section(&state, ctx.redis.clone())),
    })
}

impl DeliveriesApi {
    fn new(ctx: &Ctx) -> anyhow::Result<Self> {
        Ok(Self {
            deliveries: DeliveryStore::new(
                ctx.redis.clone(),
                ctx.keys.clone(),
                ctx.config.families.deliveries.delivery_retention,
            ),
            policies: ctx.policies.clone(),
            allow_link_local: ctx.config.outbox.allow_link_local,
        })
    }
}

impl From<DeliveryError> for AppError {
    fn from(e: DeliveryError) -> Self {
        match e {
            DeliveryError::NotFound => AppError::new(Code::DeliveryNotFound, "delivery not found"),
            DeliveryError::Conflict(state) => AppError::new(
                Code::DeliveryStateConflict,
                format!("delivery is {state}; not possible in this state"),
            ),
            DeliveryError::Store(e) => AppError::store(&e),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    url: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

impl CreateBody {
    /// Check every field (each error says where) and build the delivery.
    fn into_delivery(self, st: &DeliveriesApi) -> AppResult<NewDelivery> {
        let destination = check_url(&self.url, st.allow_link_local)?;
        let method = check_method(self.method)?;
        let headers = check_headers(self.headers)?;
        let policy = self
            .policy
            .unwrap_or_else(|| st.policies.default_name().to_owned());
        if st.policies.get(&policy).is_none() {
            return Err(AppError::new(
                Code::PolicyUnknown,
                format!(
                    "unknown retry policy {policy:?}; known: {}",
                    st.policies.names().join(", ")
                ),
            )
            .at("body.policy"));
        }
        if let Some(k) = &self.idempotency_key {
            check_idempotency_key(k)?;
        }
        let body =
            serde_json::to_string(&self.body.unwrap_or(Value::Null)).map_err(AppError::internal)?;
        Ok(NewDelivery {
            url: self.url,
            method,
            headers,
            body,
            policy,
            idempotency_key: self.idempotency_key,
            destination,
            owner: None,
        })
    }
}

fn check_method(method: Option<String>) -> AppResult<String> {
    let method = method.unwrap_or_else(|| "POST".into()).to_ascii_uppercase();
    if !["POST", "PUT", "PATCH", "DELETE", "GET"].contains(&method.as_str()) {
        return Err(AppError::new(
            Code::MethodInvalid,
            "method must be POST, PUT, PATCH, DELETE or GET",
        )
        .at("body.method"));
    }
    Ok(method)
}

/// Header names lower-cased; reserved and malformed ones refused.
fn check_headers(given: BTreeMap<String, String>) -> AppResult<BTreeMap<String, String>> {
    if given.len() > HEADERS_MAX {
        return Err(AppError::new(
            Code::HeadersInvalid,
            format!("at most {HEADERS_MAX} headers"),
        )
        .at("body.headers"));
    }
    let mut headers = BTreeMap::new();
    for (k, v) in given {
        let at = format!("body.headers.{k}");
        let name = k.to_ascii_lowercase();
        if axum::http::HeaderName::from_bytes(name.as_bytes()).is_err()
            || RESERVED.contains(&name.as_str())
        {
            return Err(AppError::new(
                Code::HeadersInvalid,
                format!("header {k:?} is invalid or set by Switchyard"),
            )
            .at(at));
        }
        if v.len() > HEADER_VALUE_MAX || HeaderValue::from_str(&v).is_err() {
            return Err(
                AppError::new(Code::HeadersInvalid, "header value is invalid or too long").at(at),
            );
        }
        headers.insert(name, v);
    }
    Ok(headers)
}

fn check_idempotency_key(k: &str) -> AppResult<()> {
    if k.is_empty()
        || k.len() > IDEMPOTENCY_KEY_MAX
        || !k
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._:-".contains(&c))
    {
        return Err(AppError::new(
            Code::IdempotencyKeyInvalid,
            format!(
                "idempotency_key: 1–{IDEMPOTENCY_KEY_MAX} characters of letters, digits, '.', '_', ':', '-'"
            ),
        )
        .at("body.idempotency_key"));
    }
    Ok(())
}

/// Check a destination URL with the platform's one validator
/// ([`CallbackUrl`]); answers `host:port`.
pub fn check_url(raw: &str, allow_link_local: bool) -> AppResult<String> {
    CallbackUrl::parse(raw, allow_link_local)
        .map(|u| u.destination().to_owned())
        .map_err(|e| AppError::new(Code::UrlInvalid, e.to_string()).at("body.url"))
}

fn location(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("/v1/deliveries/{id}"))
        .unwrap_or(HeaderValue::from_static("/v1/deliveries"))
}

/// Enqueue a delivery: `{"url", "method"?, "headers"?, "body"?, "policy"?, "idempotency_key"?}`.
/// 201 with `Location`; the same idempotency key again answers 200 with the first delivery.
#[utoipa::path(post, path = "/v1/deliveries", tag = "deliveries",
    request_body(content = Object, description = r#"{"url": "https://example.com/hook", "method": "POST", "headers": {"x-team": "a"}, "body": {"event": "x"}, "policy": "svix", "idempotency_key": "order-42"}"#),
    responses((status = 201, description = "Created; Location header", body = DeliveryView), (status = 200, description = "Existing delivery of this idempotency key", body = DeliveryView),
              (status = 400, description = "Invalid url, method, header, policy or key")))]
pub(crate) async fn create(
    State(st): State<DeliveriesApi>,
    JsonBody(b): JsonBody<CreateBody>,
) -> AppResult<Response> {
    let new = b.into_delivery(&st)?;
    let (id, created) = st.deliveries.enqueue(&new).await?;
    metrics::counter!("switchyard_deliveries_enqueued_total").increment(u64::from(created));
    let view = st.deliveries.get(&id, false).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::LOCATION, location(&id));
    Ok((status, headers, Json(view)).into_response())
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[serde(default)]
    pub(crate) state: Option<String>,
    #[serde(default)]
    pub(crate) destination: Option<String>,
    #[serde(default)]
    pub(crate) url: Option<String>,
    #[serde(default)]
    pub(crate) owner: Option<String>,
    #[serde(default)]
    pub(crate) since: Option<String>,
    #[serde(default)]
    pub(crate) until: Option<String>,
    #[serde(default)]
    pub(crate) limit: Option<usize>,
    #[serde(default)]
    pub(crate) cursor: Option<String>,
}

/// Longest `url` part or `owner` a listing takes.
pub const FILTER_MAX: usize = 2048;

/// A time bound of a listing: RFC 3339 (`2026-11-23T10:00:00Z`), or a
/// UTC date-time without zone (`2026-11-23T10:00`, as a browser's
/// date-time field sends it), or a date (its midnight, UTC).
pub(crate) fn parse_time(raw: &str, at: &str) -> AppResult<i64> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime};
    let t = raw.trim();
    let ms = DateTime::parse_from_rfc3339(t)
        .map(|d| d.timestamp_millis())
        .ok()
        .or_else(|| {
            ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
                .map(|d| d.and_utc().timestamp_millis())
        })
        .or_else(|| {
            NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc().timestamp_millis())
        });
    ms.ok_or_else(|| {
        AppError::new(
            Code::QueryInvalid,
            "a time is RFC 3339 (2026-11-23T10:00:00Z), a UTC date-time (2026-11-23T10:00) or a date",
        )
        .at(at)
    })
}

/// A checked listing: the filter, the page size and the cursor.
pub(crate) type Search = (DeliveryFilter, usize, Option<(i64, String)>);

impl ListQuery {
    /// Empty fields (as an HTML form sends them) are absent.
    fn given(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty())
    }

    /// The checked filter, page size and cursor.
    pub(crate) fn search(&self) -> AppResult<Search> {
        let state = Self::given(&self.state);
        if let Some(s) = state
            && !STATES.contains(&s)
        {
            return Err(AppError::new(
                Code::QueryInvalid,
                format!("state must be one of {}", STATES.join(", ")),
            )
            .at("query.state"));
        }
        for (v, at) in [
            (&self.url, "query.url"),
            (&self.owner, "query.owner"),
            (&self.destination, "query.destination"),
        ] {
            if Self::given(v).is_some_and(|s| s.len() > FILTER_MAX) {
                return Err(AppError::new(
                    Code::QueryInvalid,
                    format!("at most {FILTER_MAX} characters"),
                )
                .at(at));
            }
        }
        let since_ms = Self::given(&self.since)
            .map(|t| parse_time(t, "query.since"))
            .transpose()?;
        let until_ms = Self::given(&self.until)
            .map(|t| parse_time(t, "query.until"))
            .transpose()?;
        let limit = self.limit.unwrap_or(50);
        if limit == 0 || limit > PAGE_MAX {
            return Err(
                AppError::new(Code::QueryInvalid, format!("limit must be 1..={PAGE_MAX}"))
                    .at("query.limit"),
            );
        }
        let cursor = match Self::given(&self.cursor) {
            None => None,
            Some(c) => Some(
                switchyard_shared::platform::paging::parse_cursor(c).ok_or_else(|| {
                    AppError::new(Code::QueryInvalid, "cursor is not one this API gave")
                        .at("query.cursor")
                })?,
            ),
        };
        let filter = DeliveryFilter {
            state: state.map(str::to_owned),
            destination: Self::given(&self.destination).map(str::to_owned),
            url: Self::given(&self.url).map(str::to_owned),
            owner: Self::given(&self.owner).map(str::to_owned),
            since_ms,
            until_ms,
        };
        Ok((filter, limit, cursor))
    }
}

/// Deliveries, newest first: `?state=&destination=host:port&url=&owner=&since=&until=&limit=&cursor=`.
#[utoipa::path(get, path = "/v1/deliveries", tag = "deliveries",
    params(("state" = Option<String>, Query), ("destination" = Option<String>, Query, description = "host:port"),
           ("url" = Option<String>, Query, description = "a part of the URL (case-insensitive)"),
           ("owner" = Option<String>, Query, description = "the owner, e.g. net:<key>; net: for every net's callbacks"),
           ("since" = Option<String>, Query, description = "created at or after (RFC 3339, or UTC 2026-11-23T10:00)"),
           ("until" = Option<String>, Query, description = "created before (same forms)"),
           ("limit" = Option<usize>, Query, description = "1..=500, default 50"), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = r#"{"deliveries": [...], "next_cursor": "…" | null}"#)))]
pub(crate) async fn list(
    State(st): State<DeliveriesApi>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Json<Value>> {
    let Query(q) = q.map_err(|e| AppError::new(Code::QueryInvalid, e.body_text()).at("query"))?;
    let (filter, limit, cursor) = q.search()?;
    let (items, next) = st.deliveries.search(&filter, limit, cursor).await?;
    Ok(Json(json!({"deliveries": items, "next_cursor": next})))
}

/// One delivery with its attempt log (newest first).
#[utoipa::path(get, path = "/v1/deliveries/{id}", tag = "deliveries",
    params(("id" = String, Path)),
    responses((status = 200, description = "The delivery, with its attempt log", body = DeliveryView), (status = 404, description = "delivery not found")))]
pub(crate) async fn show(
    State(st): State<DeliveriesApi>,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let v = st.deliveries.get(&id, true).await?;
    Ok(Json(serde_json::to_value(v).map_err(AppError::internal)?))
}

/// Replay a dead, failed or cancelled delivery now (a new round of attempts).
#[utoipa::path(post, path = "/v1/deliveries/{id}/retry", tag = "deliveries",
    params(("id" = String, Path)),
    responses((status = 202, description = "Queued again"), (status = 404, description = "delivery not found"),
              (status = 409, description = "pending, in flight or succeeded")))]
pub(crate) async fn retry(
    State(st): State<DeliveriesApi>,
    Path(id): Path<String>,
) -> AppResult<Response> {
    st.deliveries.retry(&id).await?;
    let v = st.deliveries.get(&id, false).await?;
    Ok((StatusCode::ACCEPTED, Json(v)).into_response())
}

/// Cancel a delivery that has not finished.
#[utoipa::path(delete, path = "/v1/deliveries/{id}", tag = "deliveries",
    params(("id" = String, Path)),
    responses((status = 200, description = "Cancelled"), (status = 404, description = "delivery not found"),
              (status = 409, description = "already finished")))]
pub(crate) async fn cancel(
    State(st): State<DeliveriesApi>,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    st.deliveries.cancel(&id).await?;
    let v = st.deliveries.get(&id, false).await?;
    Ok(Json(serde_json::to_value(v).map_err(AppError::internal)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            check_url("http://127.0.0.1:8080/hook", false).unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(
            check_url("https://Example.com/x?y=1", false).unwrap(),
            "example.com:443"
        );
        assert_eq!(check_url("http://u:p@[::1]:9/x", false).unwrap(), "[::1]:9");
        for bad in [
            "ftp://x/y",
            "http://",
            "not a url",
            "http://169.254.169.254/latest",
            "http://[fe80::1]/",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("http://169.254.169.254/latest", true).is_ok());
    }

    #[test]
    fn listing_times_take_rfc3339_a_utc_date_time_or_a_date() {
        let at = 1_763_892_000_000; // 2025-11-23T10:00:00Z
        for t in [
            "2025-11-23T10:00:00Z",
            "2025-11-23T11:00:00+01:00",
            "2025-11-23T10:00",
            "2025-11-23T10:00:00",
            " 2025-11-23 10:00 ",
        ] {
            assert_eq!(parse_time(t, "query.since").unwrap(), at, "{t}");
        }
        assert_eq!(
            parse_time("2025-11-23", "query.since").unwrap(),
            at - 10 * 3_600_000
        );
        for bad in ["", "yesterday", "2025-13-01", "10:00"] {
            let e = parse_time(bad, "query.until").unwrap_err();
            assert_eq!(e.location.as_deref(), Some("query.until"), "{bad}");
        }
    }

    #[test]
    fn empty_form_fields_are_absent_and_bad_ones_say_where() {
        let q = ListQuery {
            state: Some(String::new()),
            url: Some(" ".into()),
            owner: Some("net:".into()),
            ..ListQuery::default()
        };
        let (f, limit, cursor) = q.search().unwrap();
        assert_eq!((f.state, f.url, limit, cursor), (None, None, 50, None));
        assert_eq!(f.owner.as_deref(), Some("net:"));
        let bad = ListQuery {
            state: Some("lost".into()),
            ..ListQuery::default()
        };
        assert_eq!(
            bad.search().unwrap_err().location.as_deref(),
            Some("query.state")
        );
    }
}
