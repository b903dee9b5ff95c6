//! The transactions pages of the web console, an operator's view across
//! tenants (the JSON API is per tenant, by its `token` header; the console
//! never shows a tenant's token, only its contractor id):
//!
//! * `/ui/transactions` — every tenant's transactions newest first, filtered
//!   by tenant and status, paged to the end by cursor;
//! * `/ui/transactions/newest?tenant=&status=` — a stable link to the
//!   newest transaction matching a filter (a bookmark: the newest failed one);
//! * `/ui/transactions/{id}` — the pipeline (Open → Import → Validate →
//!   Consolidate, statuses 1…11 as steps, the current one highlighted, the
//!   running stage's progress), the counts, the per-item errors paged, and
//!   *abort* for an open transaction (with confirmation and its API call).
//!
//! Live topics: `transactions` (the tenants' indexes, open sets, queues
//! and the progress of each queue's head) and `transactions-<id>` (the
//! transaction's record and error count).

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use switchyard_shared::families::transactions::browse::TenantTx;
use switchyard_shared::families::transactions::model::{STATUSES, Status};
use switchyard_shared::families::transactions::views::{ErrorPage, TxData, TxView};
use switchyard_shared::families::transactions::{TxError, ids};
use switchyard_shared::platform::errors::StoreError;
use switchyard_shared::platform::paging::parse_cursor;

use super::TransactionsApi;
use crate::state::AppState;
use crate::ui::{Count, Failing, Overview, Section, UiError, UiResult, Viewer, render};

/// The live topic of the list; a transaction's is `transactions-<id>`.
const TOPIC: &str = "transactions";

/// Transactions per page of the list.
const LIST_PAGE: usize = 50;

/// Per-item errors per page of a transaction.
const ERRORS_PAGE: usize = 25;

/// The newest transactions whose statuses the overview tile counts.
const OVERVIEW_SCAN: usize = 500;

/// Failing transactions named on the overview tile.
const FAILING_SHOWN: usize = 5;

/// What the pages' handlers share.
#[derive(Clone)]
struct Pages {
    api: TransactionsApi,
    /// Every configured tenant's contractor id, sorted, once each.
    contractors: Arc<Vec<String>>,
}

/// The transactions section of the console.
pub fn section(api: &TransactionsApi) -> Section {
    let mut contractors: Vec<String> = api.tenants.values().cloned().collect();
    contractors.sort();
    contractors.dedup();
    let pages = Pages {
        api: api.clone(),
        contractors: Arc::new(contractors),
    };
    let router: Router<AppState> = Router::new()
        .route("/", get(list_page))
        .route("/list", get(list_fragment))
        .route("/newest", get(newest))
        .route("/{id}", get(tx_page))
        .route("/{id}/summary", get(summary_fragment))
        .route("/{id}/errors", get(errors_fragment))
        .route("/{id}/abort", post(abort))
        .with_state(pages.clone());
    Section::new("transactions", "Transactions", router)
        .with_overview_of(pages.clone(), |p| async move { overview(&p).await })
        .with_live_of(pages, ids::valid_id, |p, id| async move {
            let store = &p.api.store;
            let fp = match id {
                None => store.list_fingerprint(&p.contractors).await,
                Some(id) => store.tx_fingerprint(&p.contractors, &id).await,
            };
            fp.map_err(|e| anyhow::anyhow!(e.to_string()))
        })
}

/// A store error as the console shows it.
fn ui_error(e: TxError) -> UiError {
    match e {
        TxError::NotFound => UiError::not_found("Transaction not found"),
        TxError::Committed(s) => UiError::new(
            StatusCode::CONFLICT,
            format!("Transaction is already committed (status {s}); only open ones can be aborted"),
        ),
        TxError::Store(StoreError::Redis(e)) => UiError::server(StatusCode::SERVICE_UNAVAILABLE, e),
        other => UiError::internal(other),
    }
}

async fn overview(p: &Pages) -> anyhow::Result<Overview> {
    let t = p
        .api
        .store
        .tallies(&p.contractors, OVERVIEW_SCAN, FAILING_SHOWN)
        .await
        .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    let of = |s: Status| t.by_status.get(&s.code()).copied().unwrap_or(0);
    Ok(Overview {
        counts: vec![
            Count::bad("invalidated", of(Status::Invalidated)),
            Count::bad("failed", of(Status::ImportError)),
            Count::new("with errors", of(Status::DoneWithErrors)),
            Count::new("open", t.open),
            Count::new("in pipeline", t.running),
            Count::new("kept", t.total),
        ],
        failing: t
            .failing
            .into_iter()
            .map(|(contractor, id, s)| Failing {
                what: format!(
                    "{id} ({}, tenant {contractor})",
                    Status::from_code(s).map_or("?", Status::name)
                ),
                href: format!("/ui/transactions/{id}"),
            })
            .collect(),
    })
}

/// The badge class of a status: green done, amber with errors, red failed.
fn status_class(code: u8) -> &'static str {
    match Status::from_code(code) {
        Some(Status::Done) => "ok",
        Some(Status::ImportedWithErrors | Status::DoneWithErrors) => "warn",
        Some(Status::Invalidated | Status::ImportError) => "bad",
        _ => "",
    }
}

/// The curl of a transactions call: the tenant's `token` header too.
fn tenant_curl(ui: &Viewer, method: &str, path: &str) -> String {
    let mut s = ui.curl(method, path, None);
    s.push_str(" \\\n  -H \"token: $TENANT_TOKEN\"");
    s
}

#[derive(Deserialize)]
struct ListQuery {
    tenant: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
}

/// A list query, checked.
struct Filter {
    tenant: Option<String>,
    status: Option<u8>,
    cursor: Option<(i64, String)>,
    cursor_text: Option<String>,
}

impl Filter {
    fn parse(q: ListQuery, contractors: &[String]) -> UiResult<Self> {
        let bad = |m: String| UiError::bad_request(m);
        let tenant = q.tenant.filter(|t| !t.is_empty());
        if let Some(t) = &tenant
            && !contractors.contains(t)
        {
            return Err(bad(format!("no tenant {t:?} is configured")));
        }
        let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(
                s.parse::<u8>()
                    .ok()
                    .filter(|c| Status::from_code(*c).is_some())
                    .ok_or_else(|| bad(format!("status {s:?} is not 1..=11")))?,
            ),
        };
        let cursor_text = q.cursor.filter(|c| !c.is_empty());
        let cursor = match &cursor_text {
            None => None,
            Some(c) => {
                Some(parse_cursor(c).ok_or_else(|| bad(format!("cursor {c:?} is invalid")))?)
            }
        };
        Ok(Self {
            tenant,
            status,
            cursor,
            cursor_text,
        })
    }

    /// The query string of this filter (with `cursor` when given).
    fn query(&self, cursor: Option<&str>) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(t) = &self.tenant {
            q.append_pair("tenant", t);
        }
        if let Some(s) = self.status {
            q.append_pair("status", &s.to_string());
        }
        if let Some(c) = cursor {
            q.append_pair("cursor", c);
        }
        q.finish()
    }
}

#[derive(Template)]
#[template(path = "transactions/list.html")]
struct ListFragment<'a> {
    ui: &'a Viewer,
    rows: Vec<TenantTx>,
    filter: &'a Filter,
    next_cursor: Option<String>,
    tenants: usize,
}

impl ListFragment<'_> {
    fn class(&self, code: &u8) -> &'static str {
        status_class(*code)
    }

    fn next_href(&self) -> Option<String> {
        self.next_cursor
            .as_deref()
            .map(|c| format!("/ui/transactions?{}", self.filter.query(Some(c))))
    }

    fn first_href(&self) -> Option<String> {
        self.filter
            .cursor
            .is_some()
            .then(|| format!("/ui/transactions?{}", self.filter.query(None)))
    }

    /// `done/total` of the running stage, for a transaction in the pipeline.
    fn progress(&self, d: &TxData) -> Option<String> {
        let p = d.progress.as_ref()?;
        let running = Status::from_code(d.status).is_some_and(|s| !s.is_final() && s.code() > 1);
        running.then(|| format!("{} {}/{}", p.stage, p.done, p.total))
    }

    /// The JSON API call listing one tenant's transactions.
    fn curl(&self) -> String {
        let mut path = "/v1/transactions".to_owned();
        if let Some(s) = self.filter.status {
            path.push_str(&format!("?status={s}"));
        }
        tenant_curl(self.ui, "GET", &path)
    }
}

#[derive(Template)]
#[template(path = "transactions/page.html")]
struct ListPage<'a> {
    ui: &'a Viewer,
    contractors: &'a [String],
    filter: &'a Filter,
    list: ListFragment<'a>,
}

impl ListPage<'_> {
    fn statuses(&self) -> Vec<(u8, &'static str)> {
        STATUSES.iter().map(|s| (s.code(), s.name())).collect()
    }

    fn status_is(&self, code: &u8) -> bool {
        self.filter.status == Some(*code)
    }

    fn tenant_is(&self, c: &str) -> bool {
        self.filter.tenant.as_deref() == Some(c)
    }

    /// The live region's url: this filter and page.
    fn fragment_url(&self) -> String {
        format!(
            "/ui/transactions/list?{}",
            self.filter.query(self.filter.cursor_text.as_deref())
        )
    }
}

async fn list_of<'a>(p: &Pages, ui: &'a Viewer, filter: &'a Filter) -> UiResult<ListFragment<'a>> {
    let all = p.contractors.as_slice();
    let one;
    let tenants = match &filter.tenant {
        Some(t) => {
            one = [t.clone()];
            &one[..]
        }
        None => all,
    };
    let page = p
        .api
        .store
        .browse(tenants, filter.status, filter.cursor.as_ref(), LIST_PAGE)
        .await
        .map_err(ui_error)?;
    Ok(ListFragment {
        ui,
        rows: page.items,
        filter,
        next_cursor: page.next_cursor,
        tenants: all.len(),
    })
}

/// `GET /ui/transactions[?tenant=&status=&cursor=]`.
async fn list_page(
    State(p): State<Pages>,
    ui: Viewer,
    Query(q): Query<ListQuery>,
) -> UiResult<Response> {
    let filter = Filter::parse(q, &p.contractors)?;
    let list = list_of(&p, &ui, &filter).await?;
    Ok(render(&ListPage {
        ui: &ui,
        contractors: &p.contractors,
        filter: &filter,
        list,
    }))
}

/// `GET /ui/transactions/list?…`: the list's live region.
async fn list_fragment(
    State(p): State<Pages>,
    ui: Viewer,
    Query(q): Query<ListQuery>,
) -> UiResult<Response> {
    let filter = Filter::parse(q, &p.contractors)?;
    Ok(render(&list_of(&p, &ui, &filter).await?))
}

/// `GET /ui/transactions/newest[?tenant=&status=]`: to the newest
/// transaction matching the filter (404 when none does).
async fn newest(State(p): State<Pages>, Query(q): Query<ListQuery>) -> UiResult<Response> {
    let filter = Filter::parse(q, &p.contractors)?;
    let tenants = match &filter.tenant {
        Some(t) => vec![t.clone()],
        None => p.contractors.to_vec(),
    };
    let mut cursor = filter.cursor;
    loop {
        let page = p
            .api
            .store
            .browse(&tenants, filter.status, cursor.as_ref(), 1)
            .await
            .map_err(ui_error)?;
        if let Some(t) = page.items.first() {
            let to = format!("/ui/transactions/{}", t.data.id);
            return Ok(Redirect::to(&to).into_response());
        }
        // A page examines a bounded number of entries; go on past them.
        cursor = match page.next_cursor.as_deref().and_then(parse_cursor) {
            Some(c) => Some(c),
            None => return Err(UiError::not_found("no transaction matches this filter")),
        };
    }
}

/// How a step of the pipeline is shown.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StepState {
    Done,
    Current,
    Pending,
    /// An outcome the transaction did not take (or will never reach).
    Skipped,
}

/// One status of the pipeline.
struct Step {
    code: u8,
    name: &'static str,
    state: StepState,
}

impl Step {
    fn class(&self) -> String {
        let state = match self.state {
            StepState::Done => "done",
            StepState::Current => "current",
            StepState::Pending => "pending",
            StepState::Skipped => "skipped",
        };
        match status_class(self.code) {
            outcome if self.state == StepState::Current && !outcome.is_empty() => {
                format!("step {state} {outcome}")
            }
            _ => format!("step {state}"),
        }
    }

    fn is_current(&self) -> bool {
        self.state == StepState::Current
    }

    fn mark(&self) -> &'static str {
        match self.state {
            StepState::Done => "✓",
            StepState::Current => "●",
            StepState::Pending => "○",
            StepState::Skipped => "–",
        }
    }
}

/// A stage of the pipeline with its statuses.
struct Stage {
    name: &'static str,
    steps: Vec<Step>,
    /// `done`, `running`, `pending`, `failed`.
    state: &'static str,
}

/// Where a status sits in the pipeline; alternatives share a place.
fn place(s: Status) -> u8 {
    match s {
        Status::Created => 0,
        Status::Importing => 1,
        Status::Imported => 2,
        Status::Validating => 3,
        Status::Validated | Status::ImportedWithErrors | Status::Invalidated => 4,
        Status::Consolidating => 5,
        Status::Done | Status::DoneWithErrors => 6,
        Status::ImportError => 7,
    }
}

/// The stages and their steps for a transaction at `status`; `stage` is
/// the record's running stage (where an ImportError happened) and
/// `invalid` its invalid count (which Validate outcome was taken).
fn pipeline(status: Status, stage: Option<&str>, invalid: u64) -> Vec<Stage> {
    use Status::*;
    const STAGES: [(&str, &str, &[Status]); 4] = [
        ("Open", "", &[Created]),
        ("Import", "import", &[Importing, Imported]),
        (
            "Validate",
            "validate",
            &[Validating, Validated, ImportedWithErrors, Invalidated],
        ),
        (
            "Consolidate",
            "consolidate",
            &[Consolidating, Done, DoneWithErrors],
        ),
    ];
    // An ImportError happened in the record's stage: everything before it
    // was done, as if the transaction stood at that stage's first status.
    let failed_in = (status == ImportError).then(|| stage.unwrap_or("import"));
    let at = match failed_in {
        Some(st) => STAGES
            .iter()
            .find(|(_, key, _)| *key == st)
            .map_or(1, |(_, _, steps)| place(steps[0])),
        None => place(status),
    };
    let validated = if invalid > 0 {
        ImportedWithErrors
    } else {
        Validated
    };
    STAGES
        .iter()
        .map(|(name, key, steps)| {
            let failed_here = failed_in == Some(*key);
            let mut out: Vec<Step> = steps
                .iter()
                .map(|&c| {
                    let pc = place(c);
                    let state = if failed_in.is_none() && c == status {
                        StepState::Current
                    } else if pc < at {
                        if pc == 4 && c != validated {
                            StepState::Skipped
                        } else {
                            StepState::Done
                        }
                    } else if pc == at && failed_in.is_none() {
                        // An alternative outcome of the current place.
                        StepState::Skipped
                    } else if status.is_final() {
                        StepState::Skipped
                    } else {
                        StepState::Pending
                    };
                    Step {
                        code: c.code(),
                        name: c.name(),
                        state,
                    }
                })
                .collect();
            if failed_here {
                out.push(Step {
                    code: ImportError.code(),
                    name: ImportError.name(),
                    state: StepState::Current,
                });
            }
            let state = if failed_here || (status == Invalidated && *key == "validate") {
                "failed"
            } else if out.iter().any(|s| s.state == StepState::Current) {
                if status.is_final() { "done" } else { "running" }
            } else if out
                .iter()
                .all(|s| matches!(s.state, StepState::Done | StepState::Skipped))
                && out.iter().any(|s| s.state == StepState::Done)
            {
                "done"
            } else {
                "pending"
            };
            Stage {
                name,
                steps: out,
                state,
            }
        })
        .collect()
}

/// The live part of a transaction's page: status, pipeline, progress, counts.
#[derive(Template)]
#[template(path = "transactions/summary.html")]
struct Summary<'a> {
    ui: &'a Viewer,
    contractor: &'a str,
    tx: &'a TxData,
    stages: Vec<Stage>,
}

impl Summary<'_> {
    fn class(&self) -> &'static str {
        status_class(self.tx.status)
    }

    fn is_open(&self) -> bool {
        self.tx.status == Status::Created.code()
    }

    fn is_final(&self) -> bool {
        Status::from_code(self.tx.status).is_none_or(Status::is_final)
    }

    /// The running stage's `(stage, done, total)` while in the pipeline.
    fn progress(&self) -> Option<(&str, u64, u64)> {
        let p = self.tx.progress.as_ref()?;
        (!self.is_final() && !self.is_open()).then_some((p.stage.as_str(), p.done, p.total))
    }

    /// What the running stage counts: import goes by batches, the others by items.
    fn unit(&self) -> &'static str {
        match self.progress() {
            Some(("import", _, _)) => "batches",
            _ => "items",
        }
    }

    /// Percent of the running stage done.
    fn percent(&self) -> u64 {
        self.progress()
            .and_then(|(_, d, t)| (d.min(t) * 100).checked_div(t))
            .unwrap_or(0)
    }

    /// Received per resource, sorted by name.
    fn resources(&self) -> Vec<(&str, u64)> {
        let mut r: Vec<(&str, u64)> = self
            .tx
            .counts
            .as_ref()
            .map(|c| c.resources.iter().map(|(k, v)| (k.as_str(), *v)).collect())
            .unwrap_or_default();
        r.sort_unstable();
        r
    }

    fn abort_action(&self) -> String {
        format!("/ui/transactions/{}/abort", self.tx.id)
    }

    fn abort_curl(&self) -> String {
        tenant_curl(
            self.ui,
            "DELETE",
            &format!("/v1/transactions/{}", self.tx.id),
        )
    }

    fn show_curl(&self) -> String {
        tenant_curl(self.ui, "GET", &format!("/v1/transactions/{}", self.tx.id))
    }
}

/// A page of per-item errors.
#[derive(Template)]
#[template(path = "transactions/errors.html")]
struct Errors<'a> {
    ui: &'a Viewer,
    id: &'a str,
    page: ErrorPage,
    offset: usize,
}

impl Errors<'_> {
    fn first_shown(&self) -> usize {
        self.offset + 1
    }

    fn last_shown(&self) -> usize {
        self.offset + self.page.data.len()
    }

    fn prev_href(&self) -> Option<String> {
        (self.offset > 0).then(|| {
            format!(
                "/ui/transactions/{}?offset={}#errors",
                self.id,
                self.offset.saturating_sub(ERRORS_PAGE)
            )
        })
    }

    fn next_href(&self) -> Option<String> {
        self.page
            .next_offset
            .map(|o| format!("/ui/transactions/{}?offset={o}#errors", self.id))
    }

    fn curl(&self) -> String {
        tenant_curl(
            self.ui,
            "GET",
            &format!(
                "/v1/transactions/{}/errors?offset={}&limit={ERRORS_PAGE}",
                self.id, self.offset
            ),
        )
    }
}

#[derive(Template)]
#[template(path = "transactions/detail.html")]
struct TxPage<'a> {
    ui: &'a Viewer,
    id: &'a str,
    summary: Summary<'a>,
    errors: Errors<'a>,
}

impl TxPage<'_> {
    fn topic(&self) -> String {
        format!("{TOPIC}-{}", self.id)
    }
}

#[derive(Deserialize)]
struct OffsetQuery {
    offset: Option<String>,
}

fn offset_of(q: &OffsetQuery) -> UiResult<usize> {
    match q.offset.as_deref().filter(|o| !o.is_empty()) {
        None => Ok(0),
        Some(o) => o
            .parse::<usize>()
            .map_err(|_| UiError::bad_request(format!("offset {o:?} is not a number"))),
    }
}

/// The transaction `id` and its tenant, or 404.
async fn find(p: &Pages, id: &str) -> UiResult<(String, TxView)> {
    if !ids::valid_id(id) {
        return Err(UiError::not_found("Transaction not found"));
    }
    p.api
        .store
        .find(&p.contractors, id)
        .await
        .map_err(ui_error)?
        .ok_or_else(|| UiError::not_found("Transaction not found"))
}

/// The summary (the page's live region) of a transaction: its pipeline up
/// to the running stage, and its counts.
fn summary_of<'a>(ui: &'a Viewer, contractor: &'a str, view: &'a TxView) -> Summary<'a> {
    let status = Status::from_code(view.data.status).unwrap_or(Status::ImportError);
    let invalid = view.data.counts.as_ref().map_or(0, |c| c.invalid);
    let stage = view.data.progress.as_ref().map(|p| p.stage.as_str());
    Summary {
        ui,
        contractor,
        tx: &view.data,
        stages: pipeline(status, stage, invalid),
    }
}

/// The page of per-item errors of a transaction from `offset`.
async fn errors_of<'a>(
    p: &Pages,
    ui: &'a Viewer,
    contractor: &str,
    id: &'a str,
    offset: usize,
) -> UiResult<Errors<'a>> {
    let page = p
        .api
        .store
        .errors(contractor, id, offset, ERRORS_PAGE)
        .await
        .map_err(ui_error)?;
    Ok(Errors {
        ui,
        id,
        page,
        offset,
    })
}

/// `GET /ui/transactions/{id}[?offset=]`.
async fn tx_page(
    State(p): State<Pages>,
    ui: Viewer,
    Path(id): Path<String>,
    Query(q): Query<OffsetQuery>,
) -> UiResult<Response> {
    let offset = offset_of(&q)?;
    let (contractor, view) = find(&p, &id).await?;
    Ok(render(&TxPage {
        ui: &ui,
        id: &id,
        summary: summary_of(&ui, &contractor, &view),
        errors: errors_of(&p, &ui, &contractor, &id, offset).await?,
    }))
}

/// `GET /ui/transactions/{id}/summary`: the page's live region.
async fn summary_fragment(
    State(p): State<Pages>,
    ui: Viewer,
    Path(id): Path<String>,
) -> UiResult<Response> {
    let (contractor, view) = find(&p, &id).await?;
    Ok(render(&summary_of(&ui, &contractor, &view)))
}

/// `GET /ui/transactions/{id}/errors[?offset=]`: a page of per-item errors.
async fn errors_fragment(
    State(p): State<Pages>,
    ui: Viewer,
    Path(id): Path<String>,
    Query(q): Query<OffsetQuery>,
) -> UiResult<Response> {
    let offset = offset_of(&q)?;
    let (contractor, _) = find(&p, &id).await?;
    Ok(render(&errors_of(&p, &ui, &contractor, &id, offset).await?))
}

/// `POST /ui/transactions/{id}/abort`: as `DELETE /v1/transactions/{id}`
/// with the tenant's token; back to the tenant's list (htmx: `HX-Redirect`).
async fn abort(
    State(p): State<Pages>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> UiResult<Response> {
    let (contractor, _) = find(&p, &id).await?;
    p.api
        .store
        .abort(&contractor, &id)
        .await
        .map_err(ui_error)?;
    tracing::info!(%contractor, transaction = %id, "transaction aborted from the console");
    let back = format!(
        "/ui/transactions?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("tenant", &contractor)
            .finish()
    );
    if headers.contains_key("hx-request") {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        if let Ok(v) = HeaderValue::from_str(&back) {
            resp.headers_mut().insert("hx-redirect", v);
        }
        return Ok(resp);
    }
    Ok(Redirect::to(&back).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(status: Status, stage: Option<&str>, invalid: u64) -> Vec<(u8, &'static str)> {
        pipeline(status, stage, invalid)
            .iter()
            .flat_map(|s| s.steps.iter())
            .map(|s| {
                let st = match s.state {
                    StepState::Done => "done",
                    StepState::Current => "current",
                    StepState::Pending => "pending",
                    StepState::Skipped => "skipped",
                };
                (s.code, st)
            })
            .collect()
    }

    #[test]
    fn the_pipeline_marks_done_current_pending_and_untaken_steps() {
        let v = states(Status::Validating, Some("validate"), 0);
        assert_eq!(v[0], (1, "done"));
        assert_eq!(v[2], (3, "done"));
        assert_eq!(v[3], (4, "current"));
        assert_eq!(v[4], (5, "pending"));
        assert_eq!(v[8], (7, "pending"));
        let d = states(Status::DoneWithErrors, Some("consolidate"), 3);
        assert!(d.contains(&(9, "done")) && d.contains(&(5, "skipped")));
        assert!(d.contains(&(8, "skipped")) && d.contains(&(7, "skipped")));
        assert!(d.contains(&(10, "current")));
        let i = states(Status::Invalidated, Some("validate"), 3);
        assert!(i.contains(&(8, "current")) && i.contains(&(6, "skipped")));
        let f = states(Status::ImportError, Some("validate"), 0);
        assert!(f.contains(&(3, "done")) && f.contains(&(4, "skipped")));
        assert!(f.contains(&(11, "current")));
        let stages = pipeline(Status::ImportError, Some("validate"), 0);
        assert_eq!(stages[2].state, "failed");
        assert_eq!(stages[1].state, "done");
    }
}
