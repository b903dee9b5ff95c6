//! The Robbyson ingestion API (`/v1/transactions`, `/v1/{resource}`,
//! `/v1/schemas/{resource}`): the seed's routes, bodies and answers. Every
//! call names its tenant with the `token` header. Batches are checked
//! against the resource's JSON Schema before anything is stored; the first
//! invalid item is the seed's tv4 400 body, byte for byte.
//!
//! Refusals keep Robbyson's (ono's) shape, `{"status", "name": "Error",
//! "message"}`, not the platform's `code`/`reason` body. Refusals made
//! before a request reaches these handlers (a bearer token configured with
//! `--api-token`, an unknown route, the request deadline) keep the platform's.
//! The console's pages (every tenant's transactions, for operators) are in [`ui`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use sha2::{Digest, Sha256};

use switchyard_shared::families::transactions::model::{Op, Status, Window, valid_date};
use switchyard_shared::families::transactions::schema::{self, Resource};
use switchyard_shared::families::transactions::views::{ErrorPage, TxPage, TxView};
use switchyard_shared::families::transactions::{TransactionStore, TxError, ids, rawjson};
use switchyard_shared::platform::errors::StoreError;
use switchyard_shared::platform::ids::CallbackUrl;
use switchyard_shared::platform::paging::parse_cursor;

use crate::families::Family;
use crate::state::Ctx;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod ui;

/// The longest `Idempotency-Key`.
pub const IDEMPOTENCY_KEY_MAX: usize = 200;
/// Default and largest page of the listings.
pub const LIST_DEFAULT: usize = 50;
pub const LIST_MAX: usize = 500;
/// `Retry-After` (seconds) when the pipeline is behind.
pub const RETRY_AFTER_SECS: u32 = 5;

/// What the transactions endpoints share.
#[derive(Clone)]
pub struct TransactionsApi {
    pub store: TransactionStore,
    /// token → contractor id.
    pub tenants: Arc<HashMap<String, String>>,
    pub body_limit: usize,
    /// `--allow-link-local`: callback URLs may name link-local addresses.
    pub allow_link_local: bool,
}

/// The transactions endpoints.
pub fn family(ctx: &Ctx) -> anyhow::Result<Family> {
    let opts = &ctx.config.families.transactions;
    anyhow::ensure!(
        ctx.policies
            .get(&opts.transactions_callback_policy)
            .is_some(),
        "--transactions-callback-policy {:?} is not a defined retry policy",
        opts.transactions_callback_policy
    );
    opts.sink(ctx.config.outbox.allow_link_local)?;
    let state = TransactionsApi {
        store: TransactionStore::new(ctx.redis.clone(), ctx.keys.clone(), opts),
        tenants: Arc::new(opts.tenants()?),
        body_limit: opts.transactions_max_body_bytes,
        allow_link_local: ctx.config.outbox.allow_link_local,
    };
    Ok(Family {
        name: "transactions",
        routes: OpenApiRouter::new()
            .routes(routes!(list, create))
            .route("/v1/transactions/", post(create))
            .routes(routes!(show, commit, abort))
            .routes(routes!(errors))
            .routes(routes!(schema_of))
            .routes(routes!(list_records, stage_post, stage_put))
            .route("/v1/{resource}/", post(stage_post).put(stage_put))
            .routes(routes!(records))
            .layer(DefaultBodyLimit::max(state.body_limit))
            .with_state(state.clone()),
        on_scrape: None,
        ui: Some(ui::section(&state)),
    })
}

/// A refusal: Robbyson's `{"status", "name", "message"}` or a whole body.
#[derive(Debug)]
pub struct TxHttpError {
    pub status: StatusCode,
    pub body: String,
    pub retry_after: Option<u32>,
}

type TxResult<T> = Result<T, TxHttpError>;

impl TxHttpError {
    /// `{"status": <code>, "name": "Error", "message": <text>}`.
    pub fn ono(status: StatusCode, message: impl Into<String>) -> Self {
        let body = format!(
            r#"{{"status":{},"name":"Error","message":{}}}"#,
            status.as_u16(),
            Value::String(message.into())
        );
        Self {
            status,
            body,
            retry_after: None,
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::ono(StatusCode::BAD_REQUEST, message)
    }
}

impl From<TxError> for TxHttpError {
    fn from(e: TxError) -> Self {
        let text = e.to_string();
        match e {
            TxError::NotFound => Self::ono(StatusCode::NOT_FOUND, text),
            TxError::Committed(_) | TxError::IdempotencyMismatch => {
                Self::ono(StatusCode::CONFLICT, text)
            }
            TxError::TooManyItems { .. } => Self::ono(StatusCode::PAYLOAD_TOO_LARGE, text),
            TxError::TooManyOpen(_) => Self::ono(StatusCode::TOO_MANY_REQUESTS, text),
            TxError::Backlog(_) => Self {
                retry_after: Some(RETRY_AFTER_SECS),
                ..Self::ono(StatusCode::TOO_MANY_REQUESTS, text)
            },
            TxError::Store(e) => {
                tracing::error!(cause = %e, "transactions request failed");
                match e {
                    StoreError::Redis(_) => Self::ono(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "service unavailable, try again",
                    ),
                    _ => Self::ono(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
                }
            }
        }
    }
}

/// A JSON answer from its text.
fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

impl IntoResponse for TxHttpError {
    fn into_response(self) -> Response {
        let mut resp = json(self.status, self.body);
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

fn to_json<T: serde::Serialize>(status: StatusCode, v: &T) -> TxResult<Response> {
    let body = serde_json::to_string(v)
        .map_err(|e| TxHttpError::from(TxError::Store(StoreError::Encode(e.to_string()))))?;
    Ok(json(status, body))
}

impl TransactionsApi {
    /// The tenant the `token` header names; 401 without one or for an unknown one.
    fn tenant(&self, headers: &HeaderMap) -> TxResult<String> {
        let token = headers
            .get("token")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .unwrap_or_default();
        if token.is_empty() {
            return Err(TxHttpError::ono(
                StatusCode::UNAUTHORIZED,
                "Missing required header parameter \"token\"",
            ));
        }
        self.tenants
            .get(token)
            .cloned()
            .ok_or_else(|| TxHttpError::ono(StatusCode::UNAUTHORIZED, "Invalid token"))
    }
}

/// The query string as name → value (the last of a repeated name wins).
fn query_map(query: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn transaction_id(id: &str) -> TxResult<&str> {
    if ids::valid_id(id) {
        Ok(id)
    } else {
        Err(TxHttpError::ono(
            StatusCode::NOT_FOUND,
            TxError::NotFound.to_string(),
        ))
    }
}

fn limit_of(q: &HashMap<String, String>) -> TxResult<usize> {
    match q.get("limit") {
        None => Ok(LIST_DEFAULT),
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=LIST_MAX).contains(n))
            .ok_or_else(|| TxHttpError::bad(format!("limit is 1..={LIST_MAX}"))),
    }
}

fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> TxResult<Bytes> {
    body.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            TxHttpError::ono(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request entity too large (at most {limit} bytes)"),
            )
        } else {
            TxHttpError::bad(rej.body_text())
        }
    })
}

/// An `Idempotency-Key` header: 1–200 letters, digits, `.`, `_`, `:`, `-`.
fn idempotency_key(headers: &HeaderMap) -> TxResult<Option<String>> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .filter(|k| {
            !k.is_empty()
                && k.len() <= IDEMPOTENCY_KEY_MAX
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        })
        .map(|k| Some(k.to_owned()))
        .ok_or_else(|| {
            TxHttpError::bad(format!(
                "Idempotency-Key: 1–{IDEMPOTENCY_KEY_MAX} characters of letters, digits, '.', '_', ':', '-'"
            ))
        })
}

/// Open a transaction. Optional JSON body `{"callback_url": "https://…"}`:
/// a signed webhook `{_id, status, descStatus, counts}` on every status
/// change. The URL is checked as every callback URL is (http(s), absolute,
/// a host, at most 2048 bytes, no link-local or metadata address unless
/// `--allow-link-local`); a refused one is 400 saying why.
#[utoipa::path(post, path = "/v1/transactions", tag = "transactions",
    params(("token" = String, Header, description = "the tenant's token")),
    request_body(content = Object, description = r#"optional: {"callback_url": "https://example.com/hook"}"#),
    responses((status = 200, description = r#"{"data":{"_id","apiIntegrationScope":[],"status":1,"descStatus":"Created","date"},"statusLog":[{"type":3}]}"#, body = TxView),
              (status = 400, description = r#"{"status":400,"name":"Error","message":"callback_url: <what is wrong>"}"#),
              (status = 401, description = "Missing or unknown token"),
              (status = 429, description = "Too many open transactions, or the pipeline is behind (Retry-After)")))]
pub(crate) async fn create(
    State(st): State<TransactionsApi>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> TxResult<Response> {
    let contractor = st.tenant(&headers)?;
    let body = body_bytes(body, st.body_limit)?;
    let callback = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let v: Value =
            serde_json::from_slice(&body).map_err(|e| TxHttpError::bad(e.to_string()))?;
        match v.get("callback_url") {
            None | Some(Value::Null) => None,
            Some(Value::String(u)) => Some(
                CallbackUrl::parse(u, st.allow_link_local)
                    .map(|_| u.clone())
                    .map_err(|e| TxHttpError::bad(format!("callback_url: {e}")))?,
            ),
            Some(_) => {
                return Err(TxHttpError::bad(
                    "callback_url: must be a string (an http(s) URL)",
                ));
            }
        }
    };
    let view = st.store.create(&contractor, callback.as_deref()).await?;
    to_json(StatusCode::OK, &view)
}

/// The tenant's transactions, newest first, paged; `status` (1–11) filters.
#[utoipa::path(get, path = "/v1/transactions", tag = "transactions",
    params(("token" = String, Header),
           ("status" = Option<u8>, Query, description = "1..=11"),
           ("limit" = Option<usize>, Query, description = "1..=500, default 50"),
           ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, description = "A page of transactions", body = TxPage)))]
pub(crate) async fn list(
    State(st): State<TransactionsApi>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> TxResult<Response> {
    let contractor = st.tenant(&headers)?;
    let q = query_map(query.as_deref());
    let status = match q.get("status") {
        None => None,
        Some(s) => Some(
            s.parse::<u8>()
                .ok()
                .filter(|c| Status::from_code(*c).is_some())
                .ok_or_else(|| TxHttpError::bad("status is 1..=11"))?,
        ),
    };
    let cursor = match q.get("cursor") {
        None => None,
        Some(c) => Some(parse_cursor(c).ok_or_else(|| TxHttpError::bad("cursor is invalid"))?),
    };
    let page = st
        .store
        .list(&contractor, status, cursor, limit_of(&q)?)
        .await?;
    to_json(StatusCode::OK, &page)
}

/// The transaction: the seed's shape plus `counts`, `progress` (the running
/// stage's done/total), the commit's window and its first per-item `errors`.
#[utoipa::path(get, path = "/v1/transactions/{id}", tag = "transactions",
    params(("token" = String, Header), ("id" = String, Path)),
    responses((status = 200, description = "The transaction", body = TxView),
              (status = 404, description = "Transaction not found")))]
pub(crate) async fn show(
    State(st): State<TransactionsApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> TxResult<Response> {
    let contractor = st.tenant(&headers)?;
    let view = st.store.get(&contractor, transaction_id(&id)?).await?;
    to_json(StatusCode::OK, &view)
}

/// Commit: the pipeline starts (2 Importing). Optional `startDate` and
/// `endDate` (`YYYY-MM-DD`) limit which dated items are processed; the
/// others are `skipped`. A second commit answers `nModified: 0`.
#[utoipa::path(post, path = "/v1/transactions/{id}", tag = "transactions",
    params(("token" = String, Header), ("id" = String, Path),
           ("startDate" = Option<String>, Query), ("endDate" = Option<String>, Query)),
    responses((status = 200, description = r#"{"data":{"n":1,"nModified":1,"ok":1},"statusLog":[{"type":3}]}"#),
              (status = 404, description = "Transaction not found"),
              (status = 429, description = "The pipeline is behind (Retry-After)")))]
pub(crate) async fn commit(
    State(st): State<TransactionsApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> TxResult<Response> {
    let contractor = st.tenant(&headers)?;
    let q = query_map(query.as_deref());
    let date = |name: &str| -> TxResult<Option<String>> {
        match q.get(name) {
            None => Ok(None),
            Some(d) if valid_date(d) => Ok(Some(d.clone())),
            Some(d) => Err(TxHttpError::bad(format!(
                "{name} {d:?} is not a date (YYYY-MM-DD)"
            ))),
        }
    };
    let window = Window {
        start: date("startDate")?,
        end: date("endDate")?,
    };
    if let (Some(s), Some(e)) = (&window.start, &window.end)
        && s > e
    {
        return Err(TxHttpError::bad("endDate is before startDate"));
    }
    let modified = st
        .store
        .commit(&contractor, transaction_id(&id)?, &window)
        .await?;
    Ok(json(
        StatusCode::OK,
        format!(
            r#"{{"data":{{"n":1,"nModified":{},"ok":1}},"statusLog":[{{"type":3}}]}}"#,
            u8::from(modified)
        ),
    ))
}

/// Abort an uncommitted transaction: it and its batches are deleted.
#[utoipa::path(delete, path = "/v1/transactions/{id}", tag = "transactions",
    params(("token" = String, Header), ("id" = String, Path)),
    responses((status = 200, description = r#"{"data":{"n":1,"ok":1},"statusLog":[{"type":3}]}"#),
              (status = 404, description = "Transaction not found"),
              (status = 409, description = "Transaction is already committed")))]
pub(crate) async fn abort(
    State(st): State<TransactionsApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> TxResult<Response> {
    let contractor = st.tenant(&headers)?;
    st.store.abort(&contractor, transaction_id(&id)?).await?;
    Ok(json(
        StatusCode::OK,
        r#"{"data":{"n":1,"ok":1},"statusLog":[{"type":3}]}"#.into(),
    ))
}

/// The transaction's per-item errors, in item order, paged by `offset`.
#[utoipa::path(get, path = "/v1/transactions/{id}/errors", tag = "transactions",
    params(("token" = String, Header), ("id" = String, Path),
           ("offset" = Option<usize>, Query), ("limit" = Option<usize>, Query, description = "1..=500, default 50")),
    responses((status = 200, description = "A page of errors", body = ErrorPage),
              (status = 404, description = "Transaction not found")))]
pub(crate) async fn errors(
    State(st): State<TransactionsApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> TxResult<Response> {
    let contractor = st.tenant(&headers)?;
    let q = query_map(query.as_deref());
    let offset = match q.get("offset") {
        None => 0,
        Some(o) => o
            .parse::<usize>()
            .map_err(|_| TxHttpError::bad("offset is a number"))?,
    };
    let page = st
        .store
        .errors(&contractor, transaction_id(&id)?, offset, limit_of(&q)?)
        .await?;
    to_json(StatusCode::OK, &page)
}

fn resource_of(name: &str) -> TxResult<Resource> {
    Resource::parse(name).ok_or_else(|| {
        TxHttpError::ono(StatusCode::NOT_FOUND, format!("Unknown resource {name:?}"))
    })
}

/// The JSON Schema a batch of `resource` is checked against.
#[utoipa::path(get, path = "/v1/schemas/{resource}", tag = "transactions",
    params(("resource" = String, Path, description = "collaborators | indicators | attributes | hierarchies | results")),
    responses((status = 200, description = "The schema (draft 4)"),
              (status = 404, description = "Unknown resource")))]
pub(crate) async fn schema_of(Path(resource): Path<String>) -> TxResult<Response> {
    Ok(json(
        StatusCode::OK,
        resource_of(&resource)?.schema_text().to_owned(),
    ))
}

async fn stage(
    st: TransactionsApi,
    op: Op,
    headers: HeaderMap,
    resource: String,
    query: Option<String>,
    body: Result<Bytes, BytesRejection>,
) -> TxResult<Response> {
    let contractor = st.tenant(&headers)?;
    let resource = resource_of(&resource)?;
    let body = body_bytes(body, st.body_limit)?;
    let q = query_map(query.as_deref());
    let Some(id) = q.get("transaction_id").filter(|t| !t.is_empty()) else {
        return Err(TxHttpError::bad(
            "Missing required query parameter \"transaction_id\"",
        ));
    };
    let id = transaction_id(id)?;
    let key = idempotency_key(&headers)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(TxHttpError::bad(format!(
            "Missing required body parameter \"{}\"",
            resource.name()
        )));
    }
    let text = std::str::from_utf8(&body).map_err(|e| TxHttpError::bad(e.to_string()))?;
    let value: Value = serde_json::from_str(text).map_err(|e| TxHttpError {
        body: format!(
            r#"{{"status":400,"name":"SyntaxError","message":{}}}"#,
            Value::String(e.to_string())
        ),
        status: StatusCode::BAD_REQUEST,
        retry_after: None,
    })?;
    let compact = rawjson::compact(text);
    let items = schema::check_batch(resource, &compact, &value).map_err(|e| TxHttpError {
        status: StatusCode::BAD_REQUEST,
        body: e.body(),
        retry_after: None,
    })?;
    let sha = key.as_ref().map(|_| {
        Sha256::digest(format!("{}\t{}\t{compact}", resource.name(), op.as_str()))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    });
    let idem = key.as_deref().zip(sha.as_deref());
    let staged = st
        .store
        .stage(&contractor, id, resource, op, &items, idem)
        .await?;
    Ok(json(StatusCode::OK, staged.answer))
}

/// Send a batch of at most 500 items of a resource to an open transaction.
/// Answers the stored items (`__v`, the item's fields in the order sent,
/// `stackId`, `contractorId`). The first invalid item refuses the whole
/// batch with tv4's 400 body; nothing of it is stored. An `Idempotency-Key`
/// makes a re-sent batch a no-op that answers the same.
#[utoipa::path(post, path = "/v1/{resource}", tag = "transactions",
    params(("token" = String, Header),
           ("resource" = String, Path, description = "collaborators | indicators | attributes | hierarchies | results"),
           ("transaction_id" = String, Query),
           ("Idempotency-Key" = Option<String>, Header)),
    request_body(content = Vec<Object>, description = "the items (see GET /v1/schemas/{resource})"),
    responses((status = 200, description = "The stored items"),
              (status = 400, description = r#"{"params","code","dataPath","schemaPath","subErrors","status":400,"name":"Error","message"}"#),
              (status = 404, description = "Transaction not found"),
              (status = 409, description = "Transaction is already committed")))]
pub(crate) async fn stage_post(
    State(st): State<TransactionsApi>,
    headers: HeaderMap,
    Path(resource): Path<String>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> TxResult<Response> {
    stage(st, Op::Post, headers, resource, query, body).await
}

/// Send a batch of updates: as POST, but an item merges into the item (of
/// this transaction or the store) with the same natural key.
#[utoipa::path(put, path = "/v1/{resource}", tag = "transactions",
    params(("token" = String, Header), ("resource" = String, Path), ("transaction_id" = String, Query),
           ("Idempotency-Key" = Option<String>, Header)),
    request_body(content = Vec<Object>, description = "the items"),
    responses((status = 200, description = "The stored items"),
              (status = 400, description = "tv4's body, as for POST")))]
pub(crate) async fn stage_put(
    State(st): State<TransactionsApi>,
    headers: HeaderMap,
    Path(resource): Path<String>,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> TxResult<Response> {
    stage(st, Op::Put, headers, resource, query, body).await
}

/// Consolidated records of a resource, in key order, paged by `after`
/// (the `next` of the previous page).
#[utoipa::path(get, path = "/v1/{resource}", tag = "transactions",
    params(("token" = String, Header), ("resource" = String, Path),
           ("after" = Option<String>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = r#"{"data": [records], "next": "<after>" | null}"#)))]
pub(crate) async fn list_records(
    State(st): State<TransactionsApi>,
    headers: HeaderMap,
    Path(resource): Path<String>,
    RawQuery(query): RawQuery,
) -> TxResult<Response> {
    let contractor = st.tenant(&headers)?;
    let resource = resource_of(&resource)?;
    let q = query_map(query.as_deref());
    let (records, next) = st
        .store
        .list_records(
            &contractor,
            resource,
            q.get("after").map(String::as_str),
            limit_of(&q)?,
        )
        .await?;
    Ok(json(
        StatusCode::OK,
        format!(
            r#"{{"data":[{}],"next":{}}}"#,
            records.join(","),
            next.map_or(Value::Null, Value::String)
        ),
    ))
}

/// The consolidated record of a collaborator or indicator, or the records
/// (attributes, hierarchies, results) about a collaborator. Attributes and
/// hierarchies are date intervals (`validFrom`..=`validTo`); `?date=`
/// answers those in effect that day (results: dated that day).
#[utoipa::path(get, path = "/v1/{resource}/{identification}", tag = "transactions",
    params(("token" = String, Header), ("resource" = String, Path), ("identification" = String, Path),
           ("date" = Option<String>, Query, description = "YYYY-MM-DD: only the records in effect that day")),
    responses((status = 200, description = r#"{"data": record} (collaborators, indicators) | {"data": [records]}"#),
              (status = 404, description = "Not found")))]
pub(crate) async fn records(
    State(st): State<TransactionsApi>,
    headers: HeaderMap,
    Path((resource, identification)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> TxResult<Response> {
    let contractor = st.tenant(&headers)?;
    let resource = resource_of(&resource)?;
    let q = query_map(query.as_deref());
    let day = match q.get("date") {
        None => None,
        Some(d) if valid_date(d) => Some(d.as_str()),
        Some(d) => {
            return Err(TxHttpError::bad(format!(
                "date {d:?} is not a date (YYYY-MM-DD)"
            )));
        }
    };
    let found = st
        .store
        .records(&contractor, resource, &identification, day)
        .await?;
    if found.is_empty() {
        return Err(TxHttpError::ono(
            StatusCode::NOT_FOUND,
            format!("No {} for {identification:?}", resource.name()),
        ));
    }
    let data = match resource {
        Resource::Collaborators | Resource::Indicators => found.join(","),
        _ => format!("[{}]", found.join(",")),
    };
    Ok(json(StatusCode::OK, format!(r#"{{"data":{data}}}"#)))
}
