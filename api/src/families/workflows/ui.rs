//! The workflow pages of the web console: `/ui/workflows` lists workflows
//! newest first, by status (tabs), paged with the JSON API's cursor, with a
//! jump to an id (`/ui/workflows/newest[?status=]` opens the newest);
//! `/ui/workflows/{id}` shows the process tree with the
//! current positions highlighted (the tree endpoint's view), the open
//! workitems with a proceed form (fields as JSON, checked as the API
//! checks them), cancel and replay (both confirmed), the errors, fields and
//! variables, and the history. Live topics: `workflows` (the per-status
//! counts) and `workflows-<id>` (status, version, workitems, history length).

use std::hash::{DefaultHasher, Hash, Hasher};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_shared::Redis;
use switchyard_shared::families::workflows::ids::valid_id;
use switchyard_shared::families::workflows::keys::STATUSES;
use switchyard_shared::families::workflows::views::{
    EventView, TreeView, WorkflowPage, WorkflowView, WorkitemView,
};
use switchyard_shared::families::workflows::{WorkflowError, WorkflowStore};
use switchyard_shared::platform::keys::Keys;
use switchyard_shared::platform::paging::parse_cursor;

use super::{WfError, WorkflowsApi, proceed_fields};
use crate::state::AppState;
use crate::ui::{Count, Failing, Overview, Section, UiError, UiResult, Viewer, render};

/// Workflows per page of the list.
const PAGE: usize = 50;

/// Workflows in error named on the overview tile.
const FAILING_SHOWN: usize = 5;

/// History events shown (newest first); the API has them all.
const HISTORY_SHOWN: usize = 300;

/// What the pages' handlers share.
#[derive(Clone)]
struct Pages {
    store: WorkflowStore,
    keys: Keys,
    redis: Redis,
}

/// The workflows section of the console.
pub fn section(api: &WorkflowsApi, keys: Keys, redis: Redis) -> Section {
    let pages = Pages {
        store: api.store.clone(),
        keys,
        redis,
    };
    let routes: Router<AppState> = Router::new()
        .route("/", get(list))
        .route("/newest", get(newest))
        .route("/{id}", get(workflow))
        .route("/{id}/live", get(fragment))
        .route("/{id}/workitems/{wi}/proceed", post(proceed))
        .route("/{id}/cancel", post(cancel))
        .route("/{id}/replay", post(replay))
        .with_state(pages.clone());
    Section::new("workflows", "Workflows", routes)
        .with_overview_of(pages.clone(), |p| async move { overview(&p).await })
        .with_live_of(pages, valid_id, |p, id| async move {
            match id {
                None => counts(&p).await.map(|c| {
                    let mut h = DefaultHasher::new();
                    c.hash(&mut h);
                    h.finish()
                }),
                Some(id) => workflow_fingerprint(&p, &id).await,
            }
        })
}

/// A refusal of the workflow API as a console error (its `error` and
/// `details`, readable).
fn wf_err(e: WfError) -> UiError {
    if e.status.is_server_error() {
        return UiError::server(e.status, e.error);
    }
    let reason = match e.details {
        Some(d) => format!("{}: {d}", e.error),
        None => e.error,
    };
    UiError::new(e.status, reason)
}

fn store_err(e: WorkflowError, not_found: StatusCode) -> UiError {
    wf_err(WfError::from_store(e, not_found))
}

/// Workflows per status ([`STATUSES`] order), summed over the shards' status
/// indexes in one pipelined round trip.
async fn counts(p: &Pages) -> anyhow::Result<[u64; 4]> {
    let mut pipe = redis::pipe();
    for shard in 0..p.keys.shards() {
        for idx in p.keys.workflow_status_indexes(shard) {
            pipe.zcard(idx);
        }
    }
    let n: Vec<u64> = pipe.query_async(&mut p.redis.conn()).await?;
    let mut out = [0u64; 4];
    for (i, c) in n.into_iter().enumerate() {
        out[i % 4] += c;
    }
    Ok(out)
}

async fn overview(p: &Pages) -> anyhow::Result<Overview> {
    let [running, completed, cancelled, error] = counts(p).await?;
    let failing = if error > 0 {
        p.store
            .list(Some("error"), None, FAILING_SHOWN)
            .await
            .map_err(|e| anyhow::anyhow!(e.to_string()))?
            .workflows
            .into_iter()
            .map(|w| Failing {
                what: format!("{} in error", w.id),
                href: format!("/ui/workflows/{}", w.id),
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Overview {
        counts: vec![
            Count::bad("in error", error),
            Count::new("running", running),
            Count::new("completed", completed),
            Count::new("cancelled", cancelled),
        ],
        failing,
    })
}

/// A workflow's fingerprint: its status, version and cancel flag, its
/// workitems' ids and its history's length.
async fn workflow_fingerprint(p: &Pages, id: &str) -> anyhow::Result<u64> {
    let k = p.store.keys(id);
    let values: Vec<redis::Value> = redis::pipe()
        .hmget(&k.record, &["status", "version", "cancel"])
        .hkeys(&k.workitems)
        .llen(&k.history)
        .query_async(&mut p.redis.conn())
        .await?;
    let mut h = DefaultHasher::new();
    format!("{values:?}").hash(&mut h);
    Ok(h.finish())
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    cursor: Option<String>,
    /// Jump to this workflow.
    id: Option<String>,
}

#[derive(Template)]
#[template(path = "workflows/list.html")]
struct ListFragment<'a> {
    ui: &'a Viewer,
    status: &'a str,
    page: WorkflowPage,
}

impl ListFragment<'_> {
    fn next_href(&self, cursor: &str) -> String {
        let mut s = format!("/ui/workflows?cursor={}", enc(cursor));
        if !self.status.is_empty() {
            s.push_str(&format!("&status={}", self.status));
        }
        s
    }

    fn list_curl(&self) -> String {
        let mut path = format!("/v1/workflows?limit={PAGE}");
        if !self.status.is_empty() {
            path.push_str(&format!("&status={}", self.status));
        }
        self.ui.curl("GET", &path, None)
    }

    fn launch_curl(&self) -> String {
        self.ui.curl(
            "POST",
            "/v1/workflows",
            Some(&json!({
                "workflow": "define\n  sequence\n    review\n    publish\n",
                "callback": "https://example.com/participants",
                "fields": {"doc": 42},
            })),
        )
    }

    fn badge(&self, status: &str) -> &'static str {
        badge(status)
    }
}

/// The badge class of a status.
fn badge(status: &str) -> &'static str {
    match status {
        "error" => "bad",
        "running" => "warn",
        "completed" => "ok",
        _ => "",
    }
}

#[derive(Template)]
#[template(path = "workflows/page.html")]
struct ListPage<'a> {
    ui: &'a Viewer,
    cursor: Option<&'a str>,
    list: ListFragment<'a>,
}

impl ListPage<'_> {
    fn tabs(&self) -> Vec<(&'static str, &'static str)> {
        let mut v = vec![("", "All")];
        v.extend([
            ("running", "Running"),
            ("error", "In error"),
            ("completed", "Completed"),
            ("cancelled", "Cancelled"),
        ]);
        v
    }

    fn is_tab(&self, status: &str) -> bool {
        self.list.status == status
    }

    fn tab_href(&self, status: &str) -> String {
        if status.is_empty() {
            "/ui/workflows".into()
        } else {
            format!("/ui/workflows?status={status}")
        }
    }

    /// Where the live region refetches this very page.
    fn self_href(&self) -> String {
        let mut s = format!("/ui/workflows?status={}", self.list.status);
        if let Some(c) = self.cursor {
            s.push_str(&format!("&cursor={}", enc(c)));
        }
        s
    }
}

/// `s` for a query string.
fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET /ui/workflows[?status=&cursor=&id=]`: the page, or (htmx) only
/// its list; with `id`, the workflow's page.
async fn list(
    State(p): State<Pages>,
    ui: Viewer,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> UiResult<Response> {
    if let Some(id) = q.id.as_deref().map(str::trim).filter(|i| !i.is_empty()) {
        let exists = p
            .store
            .exists(id)
            .await
            .map_err(|e| store_err(e, StatusCode::NOT_FOUND))?;
        if !exists {
            return Err(UiError::not_found(format!("no workflow {id}")));
        }
        return Ok(Redirect::to(&format!("/ui/workflows/{id}")).into_response());
    }
    let status = q.status.as_deref().unwrap_or("").trim();
    if !status.is_empty() && !STATUSES.contains(&status) {
        return Err(UiError::bad_request(
            "status is one of running, completed, cancelled, error",
        ));
    }
    let cursor = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(parse_cursor(c).ok_or_else(|| {
            UiError::bad_request("cursor is invalid: follow the page's next link")
        })?),
    };
    let page = p
        .store
        .list((!status.is_empty()).then_some(status), cursor, PAGE)
        .await
        .map_err(|e| store_err(e, StatusCode::NOT_FOUND))?;
    let fragment = ListFragment {
        ui: &ui,
        status,
        page,
    };
    if headers.contains_key("hx-request") {
        return Ok(render(&fragment));
    }
    Ok(render(&ListPage {
        ui: &ui,
        cursor: q.cursor.as_deref().filter(|c| !c.is_empty()),
        list: fragment,
    }))
}

#[derive(Deserialize)]
struct NewestQuery {
    status: Option<String>,
}

/// `GET /ui/workflows/newest[?status=]`: the newest workflow's page (of
/// that status). Workflow ids never read `newest`.
async fn newest(State(p): State<Pages>, Query(q): Query<NewestQuery>) -> UiResult<Response> {
    let status = q.status.as_deref().unwrap_or("").trim();
    if !status.is_empty() && !STATUSES.contains(&status) {
        return Err(UiError::bad_request(
            "status is one of running, completed, cancelled, error",
        ));
    }
    let page = p
        .store
        .list((!status.is_empty()).then_some(status), None, 1)
        .await
        .map_err(|e| store_err(e, StatusCode::NOT_FOUND))?;
    match page.workflows.first() {
        Some(w) => Ok(Redirect::to(&format!("/ui/workflows/{}", w.id)).into_response()),
        None => Err(UiError::not_found(if status.is_empty() {
            "no workflows yet".to_owned()
        } else {
            format!("no workflow is {status}")
        })),
    }
}

/// One expression of the tree, in document order; the template opens a
/// nested list after a row with children and closes `close` lists after it.
struct TreeRow {
    expid: String,
    name: String,
    /// `key: value` pairs (a text attribute as its bare key).
    attrs: String,
    /// A current position (a participant or timer waiting).
    here: bool,
    /// An ancestor of a current position.
    on_path: bool,
    /// An unhandled error is at this expression.
    failed: bool,
    has_children: bool,
    close: usize,
}

impl TreeRow {
    fn class(&self) -> &'static str {
        match (self.failed, self.here, self.on_path) {
            (true, _, _) => "failed",
            (_, true, _) => "here",
            (_, _, true) => "path",
            _ => "",
        }
    }
}

fn attrs_text(attrs: &Map<String, Value>) -> String {
    attrs
        .iter()
        .map(|(k, v)| match v {
            Value::Null => k.clone(),
            Value::String(s) => format!("{k}: {s}"),
            other => format!("{k}: {other}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The rows of `node` and its descendants; true when a current position
/// is among them.
fn flatten(node: &Value, failed: &[&str], out: &mut Vec<TreeRow>) -> bool {
    let children = node
        .get("children")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let expid = node
        .get("expid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let here = node.get("active").and_then(Value::as_bool) == Some(true);
    let me = out.len();
    out.push(TreeRow {
        failed: failed.contains(&expid.as_str()),
        expid,
        name: node
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned(),
        attrs: node
            .get("attributes")
            .and_then(Value::as_object)
            .map(attrs_text)
            .unwrap_or_default(),
        here,
        on_path: false,
        has_children: !children.is_empty(),
        close: 0,
    });
    let mut below = false;
    for c in &children {
        below |= flatten(c, failed, out);
    }
    if !children.is_empty()
        && let Some(last) = out.last_mut()
    {
        last.close += 1;
    }
    out[me].on_path = below;
    here || below
}

/// The live part of a workflow's page.
#[derive(Template)]
#[template(path = "workflows/live.html")]
struct WorkflowFragment<'a> {
    ui: &'a Viewer,
    wf: WorkflowView,
    tree: Vec<TreeRow>,
    positions: Vec<String>,
    /// Newest first, at most [`HISTORY_SHOWN`].
    history: Vec<EventView>,
    /// Events in the history at all.
    history_len: usize,
    /// A cancel was asked and not yet applied.
    cancelling: bool,
}

impl WorkflowFragment<'_> {
    fn badge(&self) -> &'static str {
        badge(&self.wf.status)
    }

    fn active(&self) -> bool {
        matches!(self.wf.status.as_str(), "running" | "error")
    }

    /// A workitem id's expression id (`0_0_1!…!wfid` → `0_0_1`); the full
    /// id is its tooltip.
    fn short_wi<'w>(&self, wi: &'w str) -> &'w str {
        wi.split('!').next().unwrap_or(wi)
    }

    fn json(&self, v: &Map<String, Value>) -> String {
        serde_json::to_string_pretty(v).unwrap_or_default()
    }

    fn cancel_curl(&self) -> String {
        self.ui.curl(
            "POST",
            &format!("/v1/workflows/{}/cancel", self.wf.id),
            None,
        )
    }

    fn replay_curl(&self) -> String {
        self.ui.curl(
            "POST",
            &format!("/v1/workflows/{}/replay", self.wf.id),
            None,
        )
    }

    fn tree_curl(&self) -> String {
        self.ui
            .curl("GET", &format!("/v1/workflows/{}/tree", self.wf.id), None)
    }

    fn proceed_curl(&self, w: &WorkitemView) -> String {
        self.ui.curl(
            "POST",
            &format!(
                "/v1/workflows/{}/workitems/{}/proceed",
                self.wf.id, w.workitem_id
            ),
            Some(&json!({"fields": {"approved": true}})),
        )
    }

    /// The id of a workitem's fields textarea, stable across live
    /// refreshes (`hx-preserve` keeps what is being typed) and a valid CSS
    /// selector (htmx looks it up as `#id`; workitem ids hold `!`).
    fn fields_id(&self, w: &WorkitemView) -> String {
        let safe: String = w
            .workitem_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        format!("fields-{safe}")
    }

    fn proceed_action(&self, w: &WorkitemView) -> String {
        format!(
            "/ui/workflows/{}/workitems/{}/proceed",
            self.wf.id,
            enc(&w.workitem_id)
        )
    }
}

#[derive(Template)]
#[template(path = "workflows/workflow.html")]
struct WorkflowPageT<'a> {
    ui: &'a Viewer,
    id: &'a str,
    live: WorkflowFragment<'a>,
}

impl WorkflowPageT<'_> {
    fn topic(&self) -> String {
        format!("workflows-{}", self.id)
    }
}

async fn read<'a>(p: &Pages, ui: &'a Viewer, id: &str) -> UiResult<WorkflowFragment<'a>> {
    let nf = StatusCode::NOT_FOUND;
    let wf = p.store.get(id).await.map_err(|e| store_err(e, nf))?;
    let TreeView { tree, positions } = p.store.tree(id).await.map_err(|e| store_err(e, nf))?;
    let mut events = p
        .store
        .history(id)
        .await
        .map_err(|e| store_err(e, nf))?
        .events;
    let cancel: Option<String> = redis::cmd("HGET")
        .arg(&p.store.keys(id).record)
        .arg("cancel")
        .query_async(&mut p.redis.conn())
        .await
        .map_err(UiError::internal)?;
    let failed: Vec<&str> = wf.errors.iter().map(|e| e.expid.as_str()).collect();
    let mut rows = Vec::new();
    flatten(&tree, &failed, &mut rows);
    let history_len = events.len();
    events.reverse();
    events.truncate(HISTORY_SHOWN);
    let cancelling = cancel.as_deref() == Some("1") && wf.status == "running";
    Ok(WorkflowFragment {
        ui,
        wf,
        tree: rows,
        positions,
        history: events,
        history_len,
        cancelling,
    })
}

/// `GET /ui/workflows/{id}`.
async fn workflow(
    State(p): State<Pages>,
    ui: Viewer,
    Path(id): Path<String>,
) -> UiResult<Response> {
    let live = read(&p, &ui, &id).await?;
    Ok(render(&WorkflowPageT {
        ui: &ui,
        id: &id,
        live,
    }))
}

/// `GET /ui/workflows/{id}/live`: status, actions, workitems, tree, history.
async fn fragment(
    State(p): State<Pages>,
    ui: Viewer,
    Path(id): Path<String>,
) -> UiResult<Response> {
    Ok(render(&read(&p, &ui, &id).await?))
}

#[derive(Deserialize)]
struct ProceedForm {
    /// A JSON object merged over the workitem's fields ("" = unchanged).
    fields: Option<String>,
}

/// The form's `fields`, checked as `POST …/proceed` checks them.
fn parse_fields(raw: Option<&str>) -> UiResult<Option<Map<String, Value>>> {
    let raw = raw.unwrap_or("").trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let v: Value = serde_json::from_str(raw).map_err(|e| {
        UiError::bad_request(format!(
            "fields is not JSON: {e} (write an object such as {{\"approved\": true}})"
        ))
    })?;
    proceed_fields(&json!({ "fields": v })).map_err(wf_err)
}

/// `POST /ui/workflows/{id}/workitems/{wi}/proceed` (`fields`): as
/// `POST /v1/workflows/{id}/workitems/{wi}/proceed`; answers the live part.
async fn proceed(
    State(p): State<Pages>,
    ui: Viewer,
    Path((id, wi)): Path<(String, String)>,
    Form(form): Form<ProceedForm>,
) -> UiResult<Response> {
    let fields = parse_fields(form.fields.as_deref())?;
    p.store
        .proceed(&id, &wi, fields)
        .await
        .map_err(|e| store_err(e, StatusCode::BAD_REQUEST))?;
    fragment(State(p), ui, Path(id)).await
}

/// `POST /ui/workflows/{id}/cancel`: as `POST /v1/workflows/{id}/cancel`.
async fn cancel(State(p): State<Pages>, ui: Viewer, Path(id): Path<String>) -> UiResult<Response> {
    p.store
        .cancel(&id)
        .await
        .map_err(|e| store_err(e, StatusCode::BAD_REQUEST))?;
    fragment(State(p), ui, Path(id)).await
}

/// `POST /ui/workflows/{id}/replay`: as `POST /v1/workflows/{id}/replay`.
async fn replay(State(p): State<Pages>, ui: Viewer, Path(id): Path<String>) -> UiResult<Response> {
    p.store
        .replay(&id)
        .await
        .map_err(|e| store_err(e, StatusCode::BAD_REQUEST))?;
    fragment(State(p), ui, Path(id)).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_tree_nests_and_marks_the_path_to_each_position() {
        let tree = json!({"expid": "0", "name": "define", "attributes": {}, "active": false, "children": [
            {"expid": "0_0", "name": "sequence", "attributes": {}, "active": false, "children": [
                {"expid": "0_0_0", "name": "alpha", "attributes": {"task": "review"}, "active": true, "children": []},
                {"expid": "0_0_1", "name": "error", "attributes": {"boom": null}, "active": false, "children": []}
            ]},
            {"expid": "0_1", "name": "bravo", "attributes": {}, "active": false, "children": []}
        ]});
        let mut rows = Vec::new();
        assert!(flatten(&tree, &["0_0_1"], &mut rows));
        let got: Vec<(&str, &str, usize)> = rows
            .iter()
            .map(|r| (r.expid.as_str(), r.class(), r.close))
            .collect();
        assert_eq!(
            got,
            [
                ("0", "path", 0),
                ("0_0", "path", 0),
                ("0_0_0", "here", 0),
                ("0_0_1", "failed", 1),
                ("0_1", "", 1)
            ]
        );
        assert_eq!(rows[2].attrs, "task: review");
        assert_eq!(rows[3].attrs, "boom");
    }

    #[test]
    fn proceed_fields_must_be_a_json_object() {
        assert_eq!(parse_fields(None).unwrap(), None);
        assert_eq!(parse_fields(Some("  ")).unwrap(), None);
        assert_eq!(parse_fields(Some(r#"{"a": 1}"#)).unwrap().unwrap()["a"], 1);
        let e = parse_fields(Some("{a: 1")).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.reason.starts_with("fields is not JSON"), "{}", e.reason);
        let e = parse_fields(Some("[1]")).unwrap_err();
        assert_eq!(e.reason, "fields is invalid: fields must be an object");
        let e = parse_fields(Some(r#"{"__error__": 1}"#)).unwrap_err();
        assert!(e.reason.contains("reserved"), "{}", e.reason);
    }
}
