//! The deliveries pages of the web console (`/ui/deliveries`): search and
//! filter by state, URL, destination, owner and creation time (the JSON
//! API's own listing, so every search is also a `curl`), paged to the end
//! with its cursor; a delivery's page with its request and attempts
//! (status, latency, response excerpt), retry and cancel; dead deliveries
//! replayed in bulk (those selected, or every dead one shown) after a
//! confirmation. Live topics: `deliveries` (the newest deliveries of each
//! shard and the dead sets) and `deliveries-<id>` (one delivery).

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::Value;
use switchyard_shared::Redis;
use switchyard_shared::families::deliveries::{Attempt, DeliveryError, DeliveryView, STATES};

use super::{DeliveriesApi, ListQuery, PAGE_MAX};
use crate::error::AppError;
use crate::state::AppState;
use crate::ui::{Count, Failing, Overview, Section, UiError, UiResult, Viewer, render};

/// Newest index entries per shard the list's fingerprint reads.
const WATCHED_PER_SHARD: isize = 8;

/// Deliveries per shard whose state the overview tile counts.
const SAMPLED_PER_SHARD: isize = 64;

/// Dead deliveries named on the overview tile.
const DEAD_NAMED: usize = 3;

/// Longest response excerpt shown in the list.
const EXCERPT_SHORT: usize = 80;

/// What the pages' handlers share.
#[derive(Clone)]
struct Pages {
    api: DeliveriesApi,
    redis: Redis,
}

/// The deliveries section of the console.
pub fn section(api: &DeliveriesApi, redis: Redis) -> Section {
    let pages = Pages {
        api: api.clone(),
        redis,
    };
    let routes: Router<AppState> = Router::new()
        .route("/", get(page))
        .route("/list", get(list_fragment))
        .route("/replay", post(replay))
        .route("/find", get(find))
        .route("/{id}", get(show))
        .route("/{id}/detail", get(detail_fragment))
        .route("/{id}/retry", post(retry))
        .route("/{id}/cancel", post(cancel))
        .with_state(pages.clone());
    Section::new("deliveries", "Deliveries", routes)
        .with_overview_of(pages.clone(), |p| async move { overview(&p).await })
        // Any id: an unknown one fingerprints as missing.
        .with_live_of(
            pages,
            |_| true,
            |p, id| async move {
                match id {
                    None => list_fingerprint(&p).await,
                    Some(id) => one_fingerprint(&p, &id).await,
                }
            },
        )
}

/// The tile: dead deliveries (all of them, from the shards' dead sets)
/// first, then the states of the newest deliveries of each shard, and the
/// newest dead ones by name.
async fn overview(p: &Pages) -> anyhow::Result<Overview> {
    let (dead, all) = p.api.deliveries.counts().await?;
    let keys = p.api.deliveries.keys();
    let mut conn = p.redis.conn();
    let mut pipe = redis::pipe();
    for s in 0..keys.shards() {
        pipe.zrevrange(keys.delivery_index(s), 0, SAMPLED_PER_SHARD - 1)
            .zrevrange_withscores(keys.delivery_dead(s), 0, DEAD_NAMED as isize - 1);
    }
    let rows: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
    let mut sampled: Vec<(u16, String)> = Vec::new();
    let mut newest_dead: Vec<(i64, u16, String)> = Vec::new();
    for (i, v) in rows.into_iter().enumerate() {
        let shard = (i / 2) as u16;
        if i % 2 == 0 {
            let ids: Vec<String> = redis::from_redis_value(v)?;
            sampled.extend(ids.into_iter().map(|id| (shard, id)));
        } else {
            let ids: Vec<(String, f64)> = redis::from_redis_value(v)?;
            newest_dead.extend(ids.into_iter().map(|(id, at)| (at as i64, shard, id)));
        }
    }
    newest_dead.sort_by(|a, b| b.cmp(a));
    newest_dead.truncate(DEAD_NAMED);
    let mut pipe = redis::pipe();
    for (shard, id) in &sampled {
        pipe.hget(keys.delivery(*shard, id).record, "state");
    }
    for (_, shard, id) in &newest_dead {
        pipe.hget(keys.delivery(*shard, id).record, "url");
    }
    let fields: Vec<Option<String>> = if sampled.is_empty() && newest_dead.is_empty() {
        Vec::new()
    } else {
        pipe.query_async(&mut conn).await?
    };
    let mut by_state: BTreeMap<&str, u64> = BTreeMap::new();
    for s in fields.iter().take(sampled.len()).flatten() {
        *by_state.entry(s.as_str()).or_default() += 1;
    }
    // The other states are counted among the newest deliveries of each
    // shard; the labels say so when that is not all of them.
    let newest = if all > sampled.len() as u64 {
        " (newest)"
    } else {
        ""
    };
    let mut counts = vec![Count::bad("dead", dead)];
    for (state, label) in [
        ("failed_retrying", "retrying"),
        ("in_flight", "in flight"),
        ("pending", "pending"),
        ("succeeded", "succeeded"),
        ("cancelled", "cancelled"),
    ] {
        counts.push(Count::new(
            format!("{label}{newest}"),
            by_state.get(state).copied().unwrap_or(0),
        ));
    }
    counts.push(Count::new("kept", all));
    let failing = newest_dead
        .iter()
        .zip(fields.iter().skip(sampled.len()))
        .map(|((_, _, id), url)| Failing {
            what: format!("dead: {}", url.as_deref().map_or(id.as_str(), url_tail)),
            href: format!("/ui/deliveries/{id}"),
        })
        .collect();
    Ok(Overview { counts, failing })
}

/// A URL's host and path, without scheme and query (for a tile's line).
fn url_tail(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['?', '#']).next().unwrap_or(rest)
}

/// The list's fingerprint: the dead sets' sizes and the newest entries of
/// each shard's index with their state, update time and attempts (one
/// pipelined read, then one more for the records).
async fn list_fingerprint(p: &Pages) -> anyhow::Result<u64> {
    let keys = p.api.deliveries.keys();
    let mut conn = p.redis.conn();
    let mut pipe = redis::pipe();
    for s in 0..keys.shards() {
        pipe.zcard(keys.delivery_dead(s))
            .zcard(keys.delivery_index(s))
            .zrevrange(keys.delivery_index(s), 0, WATCHED_PER_SHARD - 1);
    }
    let rows: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
    let mut h = DefaultHasher::new();
    let mut pipe = redis::pipe();
    let mut any = false;
    for (i, v) in rows.into_iter().enumerate() {
        if i % 3 == 2 {
            let shard = (i / 3) as u16;
            let ids: Vec<String> = redis::from_redis_value(v)?;
            for id in ids {
                id.hash(&mut h);
                pipe.cmd("HMGET")
                    .arg(keys.delivery(shard, &id).record)
                    .arg("state")
                    .arg("updated")
                    .arg("attempts");
                any = true;
            }
        } else {
            format!("{v:?}").hash(&mut h);
        }
    }
    if any {
        let states: Vec<Vec<Option<String>>> = pipe.query_async(&mut conn).await?;
        states.hash(&mut h);
    }
    Ok(h.finish())
}

/// One delivery's fingerprint: its state, update time and attempts.
async fn one_fingerprint(p: &Pages, id: &str) -> anyhow::Result<u64> {
    let Some(shard) =
        switchyard_shared::families::deliveries::shard_of_id(id, p.api.deliveries.keys().shards())
    else {
        return Ok(0);
    };
    let k = p.api.deliveries.keys().delivery(shard, id);
    let mut conn = p.redis.conn();
    let (fields, log): (Vec<Option<String>>, u64) = redis::pipe()
        .cmd("HMGET")
        .arg(&k.record)
        .arg("state")
        .arg("updated")
        .arg("attempts")
        .llen(&k.log)
        .query_async(&mut conn)
        .await?;
    let mut h = DefaultHasher::new();
    (fields, log).hash(&mut h);
    Ok(h.finish())
}

/// A delivery's row in the list.
struct Row {
    d: DeliveryView,
}

impl Row {
    fn badge(&self) -> &'static str {
        badge(&self.d.state)
    }

    /// The last error, shortened (the full text is on its page).
    fn excerpt(&self) -> String {
        short(self.d.last_error.as_deref().unwrap_or(""), EXCERPT_SHORT)
    }

    fn replayable(&self) -> bool {
        replayable(&self.d.state)
    }
}

fn badge(state: &str) -> &'static str {
    match state {
        "dead" => "bad",
        "failed_retrying" | "cancelled" => "warn",
        "succeeded" => "ok",
        _ => "",
    }
}

/// States the retry action takes (as `lua/deliveries/retry.lua`).
fn replayable(state: &str) -> bool {
    matches!(state, "dead" | "failed_retrying" | "cancelled")
}

/// States the cancel action takes (not finished).
fn cancellable(state: &str) -> bool {
    matches!(state, "pending" | "in_flight" | "failed_retrying")
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

/// A query string of the listing's fields (empty ones left out).
fn query_string(q: &ListQuery, cursor: Option<&str>) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    let fields = [
        ("state", &q.state),
        ("url", &q.url),
        ("destination", &q.destination),
        ("owner", &q.owner),
        ("since", &q.since),
        ("until", &q.until),
    ];
    for (name, v) in fields {
        if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            ser.append_pair(name, v);
        }
    }
    if let Some(l) = q.limit {
        ser.append_pair("limit", &l.to_string());
    }
    if let Some(c) = cursor {
        ser.append_pair("cursor", c);
    }
    ser.finish()
}

#[derive(Template)]
#[template(path = "deliveries/list.html")]
struct ListFragment<'a> {
    ui: &'a Viewer,
    rows: Vec<Row>,
    /// The query of this page (without its cursor) and its cursor.
    query: String,
    cursor: Option<String>,
    next: Option<String>,
    /// What the last bulk replay did.
    notice: Option<String>,
    filtered: bool,
}

impl ListFragment<'_> {
    /// The first page of this search, unless this is it.
    fn first_href(&self) -> Option<String> {
        self.cursor.as_ref().map(|_| {
            if self.query.is_empty() {
                "/ui/deliveries".to_owned()
            } else {
                format!("/ui/deliveries?{}", self.query)
            }
        })
    }

    fn dead_shown(&self) -> usize {
        self.rows.iter().filter(|r| r.d.state == "dead").count()
    }

    fn next_href(&self) -> Option<String> {
        self.next.as_ref().map(|c| {
            let mut q = self.query.clone();
            if !q.is_empty() {
                q.push('&');
            }
            q.push_str(
                &url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("cursor", c)
                    .finish(),
            );
            format!("/ui/deliveries?{q}")
        })
    }

    /// This page's own fragment (the live region refetches it).
    fn self_href(&self) -> String {
        let mut q = self.query.clone();
        if let Some(c) = &self.cursor {
            if !q.is_empty() {
                q.push('&');
            }
            q.push_str(
                &url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("cursor", c)
                    .finish(),
            );
        }
        if q.is_empty() {
            "/ui/deliveries/list".to_owned()
        } else {
            format!("/ui/deliveries/list?{q}")
        }
    }

    /// The same listing through the JSON API.
    fn curl(&self) -> String {
        let q = if self.query.is_empty() {
            String::new()
        } else {
            format!("?{}", self.query)
        };
        self.ui.curl("GET", &format!("/v1/deliveries{q}"), None)
    }

    fn replay_curl(&self) -> String {
        self.ui
            .curl("POST", "/v1/deliveries/$ID/retry", None)
            .replace("curl ", "for ID in … ; do curl ")
            + "; done"
    }
}

#[derive(Template)]
#[template(path = "deliveries/page.html")]
struct Page<'a> {
    ui: &'a Viewer,
    q: &'a ListQuery,
    states: &'static [&'static str],
    list: ListFragment<'a>,
}

impl Page<'_> {
    fn field<'v>(&self, v: &'v Option<String>) -> &'v str {
        v.as_deref().unwrap_or("")
    }

    fn is_state(&self, s: &str) -> bool {
        self.q.state.as_deref() == Some(s)
    }

    fn create_curl(&self) -> String {
        self.ui.curl(
            "POST",
            "/v1/deliveries",
            Some(&serde_json::json!({"url": "https://example.com/hook", "body": {"event": "x"}})),
        )
    }
}

/// A bad query as a readable 400 page.
fn bad_query(e: QueryRejection) -> UiError {
    UiError::bad_request(e.body_text())
}

async fn read_list<'a>(
    p: &Pages,
    ui: &'a Viewer,
    q: &ListQuery,
    notice: Option<String>,
) -> UiResult<ListFragment<'a>> {
    let (filter, limit, cursor) = q.search()?;
    let filtered = filter.state.is_some()
        || filter.url.is_some()
        || filter.destination.is_some()
        || filter.owner.is_some()
        || filter.since_ms.is_some()
        || filter.until_ms.is_some();
    let (items, next) = p
        .api
        .deliveries
        .search(&filter, limit, cursor)
        .await
        .map_err(AppError::from)?;
    Ok(ListFragment {
        ui,
        rows: items.into_iter().map(|d| Row { d }).collect(),
        query: query_string(q, None),
        cursor: q.cursor.clone().filter(|c| !c.is_empty()),
        next,
        notice,
        filtered,
    })
}

/// `GET /ui/deliveries?state=&url=&destination=&owner=&since=&until=&cursor=`.
async fn page(
    State(p): State<Pages>,
    ui: Viewer,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> UiResult<Response> {
    let Query(q) = q.map_err(bad_query)?;
    let list = read_list(&p, &ui, &q, None).await?;
    Ok(render(&Page {
        ui: &ui,
        q: &q,
        states: &STATES,
        list,
    }))
}

/// `GET /ui/deliveries/list?…`: the list alone (the live region).
async fn list_fragment(
    State(p): State<Pages>,
    ui: Viewer,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> UiResult<Response> {
    let Query(q) = q.map_err(bad_query)?;
    Ok(render(&read_list(&p, &ui, &q, None).await?))
}

/// `POST /ui/deliveries/replay?<the list's query>` with `id=…` repeated
/// (the selected rows; at most a page): replays each (as
/// `POST /v1/deliveries/{id}/retry`) and answers the list with what happened.
async fn replay(
    State(p): State<Pages>,
    ui: Viewer,
    q: Result<Query<ListQuery>, QueryRejection>,
    body: Bytes,
) -> UiResult<Response> {
    let Query(q) = q.map_err(bad_query)?;
    let ids: Vec<String> = url::form_urlencoded::parse(&body)
        .filter(|(k, _)| k == "id")
        .map(|(_, v)| v.into_owned())
        .collect();
    if ids.is_empty() {
        return Err(UiError::bad_request(
            "select at least one delivery to replay",
        ));
    }
    if ids.len() > PAGE_MAX {
        return Err(UiError::bad_request(format!(
            "at most {PAGE_MAX} deliveries at once"
        )));
    }
    let mut done = 0;
    let mut refused: Vec<String> = Vec::new();
    for id in &ids {
        match p.api.deliveries.retry(id).await {
            Ok(()) => done += 1,
            Err(DeliveryError::NotFound) => refused.push(format!("{id}: not found")),
            Err(DeliveryError::Conflict(state)) => refused.push(format!("{id}: is {state}")),
            Err(e) => return Err(AppError::from(e).into()),
        }
    }
    let mut notice = format!("Replayed {done} of {}.", ids.len());
    if !refused.is_empty() {
        notice.push_str(&format!(" Not replayed: {}.", refused.join("; ")));
    }
    Ok(render(&read_list(&p, &ui, &q, Some(notice)).await?))
}

#[derive(serde::Deserialize)]
struct FindQuery {
    q: String,
}

/// `GET /ui/deliveries/find?q=`: to the delivery with this id, or the one
/// this idempotency key created.
async fn find(
    State(p): State<Pages>,
    q: Result<Query<FindQuery>, QueryRejection>,
) -> UiResult<Response> {
    let Query(q) = q.map_err(bad_query)?;
    let wanted = q.q.trim();
    if wanted.is_empty() || wanted.len() > super::IDEMPOTENCY_KEY_MAX {
        return Err(UiError::bad_request(format!(
            "give an id or an idempotency key (1–{} characters)",
            super::IDEMPOTENCY_KEY_MAX
        )));
    }
    let store = &p.api.deliveries;
    let by_id = check_id(wanted).is_ok()
        && match store.get(wanted, false).await {
            Ok(_) => true,
            Err(DeliveryError::NotFound) => false,
            Err(e) => return Err(AppError::from(e).into()),
        };
    let id = if by_id {
        Some(wanted.to_owned())
    } else {
        store
            .by_idempotency_key(wanted)
            .await
            .map_err(AppError::from)?
    };
    match id {
        Some(id) => Ok(Redirect::to(&format!("/ui/deliveries/{id}")).into_response()),
        None => Err(UiError::not_found(format!(
            "no delivery has the id or idempotency key {wanted:?}"
        ))),
    }
}

/// An attempt as its page shows it.
struct AttemptRow<'a> {
    n: usize,
    a: &'a Attempt,
}

impl AttemptRow<'_> {
    fn badge(&self) -> &'static str {
        match self.a.outcome.as_str() {
            "succeeded" => "ok",
            "dead" => "bad",
            _ => "warn",
        }
    }
}

#[derive(Template)]
#[template(path = "deliveries/detail.html")]
struct Detail<'a> {
    ui: &'a Viewer,
    d: &'a DeliveryView,
    attempts: Vec<AttemptRow<'a>>,
    notice: Option<&'a str>,
}

impl Detail<'_> {
    fn badge(&self) -> &'static str {
        badge(&self.d.state)
    }

    fn can_retry(&self) -> bool {
        replayable(&self.d.state)
    }

    fn can_cancel(&self) -> bool {
        cancellable(&self.d.state)
    }

    fn has_headers(&self) -> bool {
        self.d.headers.as_object().is_some_and(|h| !h.is_empty())
    }

    fn pretty(&self, v: &Value) -> String {
        match v {
            Value::Null => String::new(),
            other => serde_json::to_string_pretty(other).unwrap_or_default(),
        }
    }

    fn retry_curl(&self) -> String {
        self.ui
            .curl("POST", &format!("/v1/deliveries/{}/retry", self.d.id), None)
    }

    fn cancel_curl(&self) -> String {
        self.ui
            .curl("DELETE", &format!("/v1/deliveries/{}", self.d.id), None)
    }

    fn show_curl(&self) -> String {
        self.ui
            .curl("GET", &format!("/v1/deliveries/{}", self.d.id), None)
    }

    /// The owner's console page, for the owners that have one.
    fn owner_href(&self) -> Option<String> {
        let owner = self.d.owner.as_deref()?;
        let (family, id) = owner.split_once(':')?;
        (family == "net").then(|| format!("/ui/nets/{id}"))
    }
}

#[derive(Template)]
#[template(path = "deliveries/show.html")]
struct Show<'a> {
    ui: &'a Viewer,
    detail: Detail<'a>,
}

fn detail<'a>(ui: &'a Viewer, d: &'a DeliveryView, notice: Option<&'a str>) -> Detail<'a> {
    let log = d.attempt_log.as_deref().unwrap_or(&[]);
    let total = log.len();
    Detail {
        ui,
        d,
        // The log is newest first; number attempts from the first.
        attempts: log
            .iter()
            .enumerate()
            .map(|(i, a)| AttemptRow { n: total - i, a })
            .collect(),
        notice,
    }
}

/// A delivery id as the store names them (anything else is not found).
fn check_id(id: &str) -> UiResult<()> {
    let ok = !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(UiError::not_found(format!("no delivery {id:?}")))
    }
}

async fn load(p: &Pages, id: &str) -> UiResult<DeliveryView> {
    check_id(id)?;
    Ok(p.api
        .deliveries
        .get(id, true)
        .await
        .map_err(AppError::from)?)
}

/// `GET /ui/deliveries/{id}`.
async fn show(State(p): State<Pages>, ui: Viewer, Path(id): Path<String>) -> UiResult<Response> {
    let d = load(&p, &id).await?;
    Ok(render(&Show {
        ui: &ui,
        detail: detail(&ui, &d, None),
    }))
}

/// `GET /ui/deliveries/{id}/detail`: the live region of its page.
async fn detail_fragment(
    State(p): State<Pages>,
    ui: Viewer,
    Path(id): Path<String>,
) -> UiResult<Response> {
    let d = load(&p, &id).await?;
    Ok(render(&detail(&ui, &d, None)))
}

/// `POST /ui/deliveries/{id}/retry`: as `POST /v1/deliveries/{id}/retry`.
async fn retry(State(p): State<Pages>, ui: Viewer, Path(id): Path<String>) -> UiResult<Response> {
    check_id(&id)?;
    p.api.deliveries.retry(&id).await.map_err(AppError::from)?;
    let d = load(&p, &id).await?;
    Ok(render(&detail(
        &ui,
        &d,
        Some("Queued again: a new round of attempts starts now."),
    )))
}

/// `POST /ui/deliveries/{id}/cancel`: as `DELETE /v1/deliveries/{id}`.
async fn cancel(State(p): State<Pages>, ui: Viewer, Path(id): Path<String>) -> UiResult<Response> {
    check_id(&id)?;
    p.api.deliveries.cancel(&id).await.map_err(AppError::from)?;
    let d = load(&p, &id).await?;
    Ok(render(&detail(&ui, &d, Some("Cancelled."))))
}
