//! `/v1/workflows`: the Scriptoria Core API (the seed's routes, payloads and
//! texts) over the workflow engine. Launch, proceed, cancel and replay each
//! record an input with one script call and queue a `workflows.step`; the
//! worker runs the engine and commits (see `WorkflowStore`).
//!
//! Errors keep Scriptoria's shape, `{"error": "<text>"}` (plus `details`
//! where a launch says what and where), not the platform's `code`/`reason`
//! body: Scriptoria clients match on these texts. Refusals made before a
//! request reaches these handlers (auth, a path that is not UTF-8, an
//! unknown route, the request deadline) keep the platform's shape.
//!
//! The console's pages are in [`ui`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};

use switchyard_shared::families::workflows::launch::{
    self, LaunchError, MAX_FIELDS_BYTES, RESERVED_FIELD_PREFIX,
};
use switchyard_shared::families::workflows::views::{
    HistoryView, TreeView, WorkflowPage, WorkflowView,
};
use switchyard_shared::families::workflows::{WorkflowError, WorkflowStore};
use switchyard_shared::platform::errors::StoreError;
use switchyard_shared::platform::paging::parse_cursor;

use crate::families::Family;
use crate::state::Ctx;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod ui;

/// The longest `Idempotency-Key`.
pub const IDEMPOTENCY_KEY_MAX: usize = 200;
/// The one engine field a proceed may set: a participant's cursor command
/// (`["jump", "step"]`, `"rewind"`, …), as Ruote participants reply with it.
pub const PROCEED_COMMAND_FIELD: &str = "__command__";
/// Default and largest page of `GET /v1/workflows`.
pub const LIST_DEFAULT: usize = 50;
pub const LIST_MAX: usize = 500;

/// What the workflow endpoints share.
#[derive(Clone)]
pub struct WorkflowsApi {
    pub store: WorkflowStore,
    /// `--allow-link-local`: callback URLs may name forbidden addresses.
    pub allow_link_local: bool,
    /// The body limit of these endpoints (bytes).
    pub body_limit: usize,
}

/// The workflow endpoints.
pub fn family(ctx: &Ctx) -> anyhow::Result<Family> {
    let opts = &ctx.config.families.workflows;
    anyhow::ensure!(
        ctx.policies.get(&opts.workflow_callback_policy).is_some(),
        "--workflow-callback-policy {:?} is not a defined retry policy",
        opts.workflow_callback_policy
    );
    // A launch body is at most launch::MAX_FORM_BYTES, and never more than
    // --max-body-bytes allows.
    let body_limit = ctx.config.api.max_body_bytes.min(launch::MAX_FORM_BYTES);
    let state = WorkflowsApi {
        store: WorkflowStore::new(
            ctx.redis.clone(),
            ctx.keys.clone(),
            opts,
            &ctx.config.outbox.public_url,
        ),
        allow_link_local: ctx.config.outbox.allow_link_local,
        body_limit,
    };
    Ok(Family {
        name: "workflows",
        routes: OpenApiRouter::new()
            .routes(routes!(ping))
            .routes(routes!(list, launch))
            .routes(routes!(show))
            .routes(routes!(history))
            .routes(routes!(tree))
            .routes(routes!(proceed))
            .routes(routes!(cancel))
            .routes(routes!(replay))
            .layer(DefaultBodyLimit::max(body_limit))
            .with_state(state.clone()),
        on_scrape: None,
        ui: Some(ui::section(&state, ctx.keys.clone(), ctx.redis.clone())),
    })
}

/// A refusal in Scriptoria's shape: `{"error": "<text>", "details"?: "…"}`.
#[derive(Debug)]
pub struct WfError {
    pub status: StatusCode,
    pub error: String,
    pub details: Option<String>,
}

type WfResult<T> = Result<T, WfError>;

impl WfError {
    fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            details: None,
        }
    }

    fn bad(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error)
    }

    fn details(mut self, d: impl Into<String>) -> Self {
        self.details = Some(d.into());
        self
    }

    fn store(e: &StoreError) -> Self {
        match e {
            StoreError::Redis(_) => Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }

    /// A store refusal; an unknown workflow is `not_found` (400 for the
    /// seed's POSTs, 404 for reads).
    fn from_store(e: WorkflowError, not_found: StatusCode) -> Self {
        let text = e.to_string();
        match e {
            WorkflowError::NotFound => Self::new(not_found, text),
            WorkflowError::WorkitemNotFound | WorkflowError::Mismatched => Self::bad(text),
            WorkflowError::NotInError(_) => Self::new(StatusCode::CONFLICT, text),
            WorkflowError::Contended => Self::new(StatusCode::SERVICE_UNAVAILABLE, text),
            WorkflowError::Corrupt { .. } => Self::new(StatusCode::INTERNAL_SERVER_ERROR, text),
            WorkflowError::Store(e) => Self::store(&e),
        }
    }
}

impl From<LaunchError> for WfError {
    fn from(e: LaunchError) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: e.error,
            details: e.details,
        }
    }
}

impl IntoResponse for WfError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, cause = %self.error, "workflow request failed");
            let error = match self.status {
                StatusCode::SERVICE_UNAVAILABLE => "service unavailable, try again",
                _ => "internal error",
            };
            return (self.status, Json(json!({ "error": error }))).into_response();
        }
        let mut body = json!({ "error": self.error });
        if let Some(d) = self.details {
            body["details"] = d.into();
        }
        (self.status, Json(body)).into_response()
    }
}

/// `{"ok": true}`, the body of a successful proceed, cancel or replay.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub ok: bool,
}

/// `{"id": "<workflow id>"}`, the body of a launch.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LaunchedBody {
    pub id: String,
}

fn accepted() -> Response {
    (StatusCode::CREATED, Json(Accepted { ok: true })).into_response()
}

/// The body, or a refusal: 413 past the limit.
fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> WfResult<Bytes> {
    body.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            WfError::new(StatusCode::PAYLOAD_TOO_LARGE, "body is too large")
                .details(format!("the body may be at most {limit} bytes"))
        } else {
            WfError::bad(launch::BODY_INVALID).details(rej.body_text())
        }
    })
}

/// How a body is read.
enum Format {
    Form,
    Json,
}

/// The request's parameters, as Grape merges them: the query string, then
/// the body over it. Bodies are form-encoded (Rack's nested brackets) or
/// JSON; without a `Content-Type` a body starting with `{` or `[` is JSON,
/// anything else a form. Another content type with a body is 406.
fn params(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> WfResult<Value> {
    let mut params = match query.filter(|q| !q.is_empty()) {
        Some(q) => launch::parse_form(q.as_bytes())?,
        None => Value::Object(Map::new()),
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(params);
    }
    let format = match headers.get(header::CONTENT_TYPE) {
        None => {
            let first = body.iter().find(|b| !b.is_ascii_whitespace());
            if matches!(first, Some(b'{' | b'[')) {
                Format::Json
            } else {
                Format::Form
            }
        }
        Some(v) => {
            let raw = String::from_utf8_lossy(v.as_bytes()).into_owned();
            let essence = raw
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            match essence.as_str() {
                "application/x-www-form-urlencoded" => Format::Form,
                "application/json" => Format::Json,
                _ => {
                    return Err(WfError::new(
                        StatusCode::NOT_ACCEPTABLE,
                        format!("The requested content-type '{raw}' is not supported."),
                    ));
                }
            }
        }
    };
    let from_body = match format {
        Format::Form => launch::parse_form(body)?,
        Format::Json => {
            serde_json::from_slice::<Value>(body).map_err(|e| WfError::bad(e.to_string()))?
        }
    };
    match (&mut params, from_body) {
        (Value::Object(p), Value::Object(b)) => {
            p.extend(b);
            Ok(params)
        }
        // Not an object: the checks below say so.
        (_, other) => Ok(other),
    }
}

/// An `Idempotency-Key` header: 1–200 letters, digits, `.`, `_`, `:`, `-`.
fn idempotency_key(headers: &HeaderMap) -> WfResult<Option<String>> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let ok = v.to_str().ok().filter(|k| {
        !k.is_empty()
            && k.len() <= IDEMPOTENCY_KEY_MAX
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    });
    match ok {
        Some(k) => Ok(Some(k.to_owned())),
        None => Err(WfError::bad("Idempotency-Key is invalid").details(format!(
            "Idempotency-Key: 1–{IDEMPOTENCY_KEY_MAX} characters of letters, digits, '.', '_', ':', '-'"
        ))),
    }
}

/// The `fields` of a proceed: absent or `null` = unchanged; else an object
/// of at most `MAX_FIELDS_BYTES`, whose top-level names do not start with
/// `__` (the engine's) except `__command__`.
fn proceed_fields(params: &Value) -> WfResult<Option<Map<String, Value>>> {
    let Value::Object(params) = params else {
        return Err(WfError::bad(launch::BODY_INVALID).details("the parameters must be an object"));
    };
    let invalid = |d: String| WfError::bad("fields is invalid").details(d);
    match params.get("fields") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            if let Some(key) = map
                .keys()
                .find(|k| k.starts_with(RESERVED_FIELD_PREFIX) && *k != PROCEED_COMMAND_FIELD)
            {
                return Err(invalid(format!(
                    "fields[{key}]: names starting with \"{RESERVED_FIELD_PREFIX}\" are reserved for the engine (except {PROCEED_COMMAND_FIELD})"
                )));
            }
            let size = serde_json::to_vec(map).map_or(usize::MAX, |v| v.len());
            if size > MAX_FIELDS_BYTES {
                return Err(invalid(format!(
                    "fields are {size} bytes as JSON (at most {MAX_FIELDS_BYTES} bytes)"
                )));
            }
            Ok(Some(map.clone()))
        }
        Some(_) => Err(invalid("fields must be an object".into())),
    }
}

/// Liveness, as Scriptoria answers it.
#[utoipa::path(get, path = "/v1/ping", tag = "workflows",
    responses((status = 200, description = r#"{"ping": "pong"}"#)))]
pub(crate) async fn ping() -> Json<Value> {
    Json(json!({ "ping": "pong" }))
}

/// Launch a workflow. Form-encoded (`workflow=…&callbacks[alpha]=URL&fields[k]=v`)
/// or JSON (`workflow` as text or as a JSON tree). Exactly one of `callback`
/// (every participant) or `callbacks` (participant → URL). The definition
/// is parsed and validated before anything is stored. With an
/// `Idempotency-Key` header, a retry answers the first launch's id.
#[utoipa::path(post, path = "/v1/workflows", tag = "workflows",
    params(("Idempotency-Key" = Option<String>, Header, description = "1–200 of [A-Za-z0-9._:-]; the same key answers the same workflow")),
    request_body(content = Object, description = r#"Form-encoded or JSON: {"workflow": "<process-definition name=\"x\"><participant ref=\"alpha\"/></process-definition>", "callbacks": {"alpha": "https://example.com/alpha"}, "fields": {"k": "v"}}"#,
        content_type = "application/x-www-form-urlencoded"),
    responses((status = 201, description = "Launched (or the idempotency key's workflow)", body = LaunchedBody),
              (status = 400, description = r#"{"error": "workflow is missing" | "workflow is invalid" | "callback, callbacks are missing, exactly one parameter must be provided" | …, "details"?}"#),
              (status = 406, description = "Neither form-encoded nor JSON"),
              (status = 413, description = "Body too large")))]
pub(crate) async fn launch(
    State(st): State<WorkflowsApi>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> WfResult<Response> {
    let body = body_bytes(body, st.body_limit)?;
    let key = idempotency_key(&headers)?;
    let params = params(&headers, query.as_deref(), &body)?;
    let launch = launch::launch_from(&params, st.allow_link_local)?;
    let launched = st
        .store
        .launch(launch, key.as_deref())
        .await
        .map_err(|e| WfError::from_store(e, StatusCode::BAD_REQUEST))?;
    Ok((StatusCode::CREATED, Json(LaunchedBody { id: launched.id })).into_response())
}

/// Proceed a workitem: its `fields` (form `fields[k]=v` or JSON
/// `{"fields": {...}}`) are merged shallowly over the workitem's. A second
/// proceed, or a proceed after cancel, is 400 `workitem_id not found`.
#[utoipa::path(post, path = "/v1/workflows/{id}/workitems/{workitem_id}/proceed", tag = "workflows",
    params(("id" = String, Path), ("workitem_id" = String, Path, description = "expid!subid!wfid")),
    request_body(content = Object, description = r#"Form-encoded (fields[status]=successful) or JSON: {"fields": {"status": "successful"}}"#,
        content_type = "application/x-www-form-urlencoded"),
    responses((status = 201, description = "Proceeded", body = Accepted),
              (status = 400, description = r#"{"error": "workitem_id not found" | "workflow_id is mismatched" | "fields is invalid"}"#)))]
pub(crate) async fn proceed(
    State(st): State<WorkflowsApi>,
    Path((id, workitem_id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<Bytes, BytesRejection>,
) -> WfResult<Response> {
    let body = body_bytes(body, st.body_limit)?;
    let params = params(&headers, query.as_deref(), &body)?;
    let fields = proceed_fields(&params)?;
    st.store
        .proceed(&id, &workitem_id, fields)
        .await
        .map_err(|e| WfError::from_store(e, StatusCode::BAD_REQUEST))?;
    Ok(accepted())
}

/// Cancel a workflow: every active participant gets a `cancel` callback.
/// Unknown, finished or already cancelling: 400 `workflow_id not found`.
#[utoipa::path(post, path = "/v1/workflows/{id}/cancel", tag = "workflows",
    params(("id" = String, Path)),
    responses((status = 201, description = "Cancellation started", body = Accepted),
              (status = 400, description = r#"{"error": "workflow_id not found"}"#)))]
pub(crate) async fn cancel(
    State(st): State<WorkflowsApi>,
    Path(id): Path<String>,
) -> WfResult<Response> {
    st.store
        .cancel(&id)
        .await
        .map_err(|e| WfError::from_store(e, StatusCode::BAD_REQUEST))?;
    Ok(accepted())
}

/// Replay a workflow in `error`: its failed expressions are retried.
#[utoipa::path(post, path = "/v1/workflows/{id}/replay", tag = "workflows",
    params(("id" = String, Path)),
    responses((status = 201, description = "Replay queued", body = Accepted),
              (status = 400, description = r#"{"error": "workflow_id not found"}"#),
              (status = 409, description = r#"{"error": "workflow is not in error (status: running)"}"#)))]
pub(crate) async fn replay(
    State(st): State<WorkflowsApi>,
    Path(id): Path<String>,
) -> WfResult<Response> {
    st.store
        .replay(&id)
        .await
        .map_err(|e| WfError::from_store(e, StatusCode::BAD_REQUEST))?;
    Ok(accepted())
}

/// The query of `GET /v1/workflows` (other parameters are ignored).
/// A checked listing query: status filter, page size, cursor.
type ListQuery = (Option<String>, usize, Option<(i64, String)>);

fn list_query(query: Option<&str>) -> WfResult<ListQuery> {
    let q = match query.filter(|q| !q.is_empty()) {
        Some(q) => launch::parse_form(q.as_bytes())?,
        None => Value::Object(Map::new()),
    };
    let text = |name: &str| -> WfResult<Option<String>> {
        match q.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(WfError::bad(format!("{name} is invalid"))),
        }
    };
    let status = text("status")?;
    if let Some(s) = &status
        && !switchyard_shared::families::workflows::keys::STATUSES.contains(&s.as_str())
    {
        return Err(WfError::bad("status is invalid")
            .details("status is one of running, completed, cancelled, error"));
    }
    let limit = match text("limit")? {
        None => LIST_DEFAULT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=LIST_MAX).contains(n))
            .ok_or_else(|| {
                WfError::bad("limit is invalid").details(format!("limit is 1..={LIST_MAX}"))
            })?,
    };
    let cursor = match text("cursor")? {
        None => None,
        Some(c) => Some(parse_cursor(&c).ok_or_else(|| {
            WfError::bad("cursor is invalid").details("pass back a next_cursor this API gave")
        })?),
    };
    Ok((status, limit, cursor))
}

/// Workflows, newest first, paged; `status` filters.
#[utoipa::path(get, path = "/v1/workflows", tag = "workflows",
    params(("status" = Option<String>, Query, description = "running | completed | cancelled | error"),
           ("limit" = Option<usize>, Query, description = "1..=500, default 50"),
           ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, description = "A page of workflows", body = WorkflowPage),
              (status = 400, description = r#"{"error": "status is invalid" | "limit is invalid" | "cursor is invalid"}"#)))]
pub(crate) async fn list(
    State(st): State<WorkflowsApi>,
    RawQuery(query): RawQuery,
) -> WfResult<Json<WorkflowPage>> {
    let (status, limit, cursor) = list_query(query.as_deref())?;
    let page = st
        .store
        .list(status.as_deref(), cursor, limit)
        .await
        .map_err(|e| WfError::from_store(e, StatusCode::NOT_FOUND))?;
    Ok(Json(page))
}

/// The workflow: status, fields, proceedable workitems, variables, errors.
#[utoipa::path(get, path = "/v1/workflows/{id}", tag = "workflows",
    params(("id" = String, Path)),
    responses((status = 200, description = "The workflow", body = WorkflowView),
              (status = 404, description = r#"{"error": "workflow_id not found"}"#)))]
pub(crate) async fn show(
    State(st): State<WorkflowsApi>,
    Path(id): Path<String>,
) -> WfResult<Json<WorkflowView>> {
    st.store
        .get(&id)
        .await
        .map(Json)
        .map_err(|e| WfError::from_store(e, StatusCode::NOT_FOUND))
}

/// What happened, oldest first (`launched`, `dispatched`, `proceeded`,
/// `echo`, `timed_out`, `error`, `cancelled`, `completed`).
#[utoipa::path(get, path = "/v1/workflows/{id}/history", tag = "workflows",
    params(("id" = String, Path)),
    responses((status = 200, description = "Events", body = HistoryView),
              (status = 404, description = r#"{"error": "workflow_id not found"}"#)))]
pub(crate) async fn history(
    State(st): State<WorkflowsApi>,
    Path(id): Path<String>,
) -> WfResult<Json<HistoryView>> {
    st.store
        .history(&id)
        .await
        .map(Json)
        .map_err(|e| WfError::from_store(e, StatusCode::NOT_FOUND))
}

/// The definition as a tree, with the current positions.
#[utoipa::path(get, path = "/v1/workflows/{id}/tree", tag = "workflows",
    params(("id" = String, Path)),
    responses((status = 200, description = "The tree", body = TreeView),
              (status = 404, description = r#"{"error": "workflow_id not found"}"#)))]
pub(crate) async fn tree(
    State(st): State<WorkflowsApi>,
    Path(id): Path<String>,
) -> WfResult<Json<TreeView>> {
    st.store
        .tree(&id)
        .await
        .map(Json)
        .map_err(|e| WfError::from_store(e, StatusCode::NOT_FOUND))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    fn ct(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn params_merge_the_query_under_the_body() {
        let p = params(
            &ct("application/x-www-form-urlencoded"),
            Some("workflow=a&fields[x]=1"),
            b"workflow=b",
        )
        .unwrap();
        assert_eq!(p["workflow"], "b");
        assert_eq!(p["fields"]["x"], "1");
        let p = params(&ct("application/json; charset=utf-8"), None, br#"{"a": 1}"#).unwrap();
        assert_eq!(p["a"], 1);
        let p = params(&HeaderMap::new(), None, br#" {"a": true}"#).unwrap();
        assert_eq!(p["a"], true);
        let p = params(&HeaderMap::new(), None, b"a=1").unwrap();
        assert_eq!(p["a"], "1");
    }

    #[test]
    fn other_content_types_are_406_and_bad_json_400() {
        let e = params(&ct("text/plain"), None, b"hello").unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(
            e.error,
            "The requested content-type 'text/plain' is not supported."
        );
        // An empty body is no body, whatever its type.
        assert!(params(&ct("text/plain"), None, b"").is_ok());
        let e = params(&ct("application/json"), None, b"{\"a\":").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.error.contains("line 1"), "{}", e.error);
    }

    #[test]
    fn proceed_fields_are_checked() {
        assert_eq!(proceed_fields(&json!({})).unwrap(), None);
        assert_eq!(proceed_fields(&json!({"fields": null})).unwrap(), None);
        let f = proceed_fields(&json!({"fields": {"a": 1, "__command__": "rewind"}})).unwrap();
        assert_eq!(f.unwrap().len(), 2);
        let e = proceed_fields(&json!({"fields": {"__error__": 1}})).unwrap_err();
        assert_eq!(e.error, "fields is invalid");
        let e = proceed_fields(&json!({"fields": "x"})).unwrap_err();
        assert_eq!(e.error, "fields is invalid");
        let big = "x".repeat(MAX_FIELDS_BYTES);
        assert!(proceed_fields(&json!({"fields": {"a": big}})).is_err());
    }

    #[test]
    fn list_queries_are_checked() {
        assert_eq!(list_query(None).unwrap().1, LIST_DEFAULT);
        let (s, l, c) = list_query(Some("status=error&limit=5&cursor=12:abc")).unwrap();
        assert_eq!((s.as_deref(), l), (Some("error"), 5));
        assert_eq!(c, Some((12, "abc".into())));
        for bad in [
            "status=nope",
            "limit=0",
            "limit=501",
            "limit=x",
            "cursor=zz",
        ] {
            assert_eq!(
                list_query(Some(bad)).unwrap_err().status,
                StatusCode::BAD_REQUEST,
                "{bad}"
            );
        }
    }

    #[test]
    fn idempotency_keys_are_checked() {
        let mut h = HeaderMap::new();
        assert_eq!(idempotency_key(&h).unwrap(), None);
        h.insert(
            "idempotency-key",
            HeaderValue::from_static("order-42:a.b_c"),
        );
        assert_eq!(
            idempotency_key(&h).unwrap().as_deref(),
            Some("order-42:a.b_c")
        );
        h.insert("idempotency-key", HeaderValue::from_static("a b"));
        assert!(idempotency_key(&h).is_err());
        h.insert("idempotency-key", HeaderValue::from_static(""));
        assert!(idempotency_key(&h).is_err());
    }
}
