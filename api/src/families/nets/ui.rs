//! The nets pages of the web console (`/ui/nets`): the nets, paged to the
//! end; a net's page draws it as a graph (the API's own DOT, laid out in
//! the browser by the vendored Graphviz) with its live marking — tokens
//! per place as coloured chips with their data, the colour groups, what
//! each transition waits for — its callbacks (and their deliveries),
//! pause/resume and a form putting a token. Live topics: `nets` (the first
//! page of the list) and `nets-<key>` (one net's counters and marking size).

use std::hash::{DefaultHasher, Hash, Hasher};

use askama::Template;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_shared::Redis;
use switchyard_shared::families::nets::{
    Action, ExplainView, Marking, NetSummary, NetView, TransitionExplain, valid_id,
};

use super::NetsApi;
use crate::error::AppError;
use crate::state::AppState;
use crate::ui::auth::RunsWasm;
use crate::ui::{Count, Failing, Overview, Section, UiError, UiResult, Viewer, render};

/// Nets per page of the list.
const PAGE: usize = 50;

/// Newest nets the overview tile looks at.
const SAMPLED: usize = 500;

/// Failed nets named on the overview tile.
const FAILED_NAMED: usize = 5;

/// Chip colours (CSS classes `c0`…`c11`) a token's colour cycles through.
const CHIP_COLOURS: i64 = 12;

/// Longest token data shown in a chip's tooltip.
const DATA_SHOWN: usize = 400;

/// Longest token data a put takes from the form.
const DATA_MAX: usize = 64 * 1024;

/// What the pages' handlers share.
#[derive(Clone)]
struct Pages {
    api: NetsApi,
    redis: Redis,
}

/// The nets section of the console.
pub fn section(api: &NetsApi, redis: Redis) -> Section {
    let pages = Pages {
        api: api.clone(),
        redis,
    };
    let routes: Router<AppState> = Router::new()
        .route("/", get(page))
        .route("/list", get(list_fragment))
        .route("/{key}", get(show))
        .route("/{key}/live", get(live_fragment))
        .route("/{key}/active", post(set_active))
        .route("/{key}/tokens", post(put_token))
        .with_state(pages.clone());
    Section::new("nets", "Nets", routes)
        .with_overview_of(pages.clone(), |p| async move { overview(&p).await })
        .with_live_of(pages, valid_id, |p, key| async move {
            match key {
                None => list_fingerprint(&p).await,
                Some(key) => net_fingerprint(&p, &key).await,
            }
        })
}

/// The tile: failed nets first, then the other statuses, among the newest
/// [`SAMPLED`] nets (one bounded listing).
async fn overview(p: &Pages) -> anyhow::Result<Overview> {
    let (nets, more) = p.api.nets.list(SAMPLED, None).await?;
    let n = |f: &dyn Fn(&NetSummary) -> bool| nets.iter().filter(|s| f(s)).count() as u64;
    let newest = if more.is_some() { " (newest)" } else { "" };
    let counts = vec![
        Count::bad(format!("failed{newest}"), n(&|s| s.status == "failed")),
        Count::new(
            format!("running{newest}"),
            n(&|s| s.status == "running" && s.active),
        ),
        Count::new(
            format!("paused{newest}"),
            n(&|s| !s.active && s.status != "failed"),
        ),
        Count::new(
            format!("completed{newest}"),
            n(&|s| s.status == "completed"),
        ),
    ];
    let failing = nets
        .iter()
        .filter(|s| s.status == "failed")
        .take(FAILED_NAMED)
        .map(|s| Failing {
            what: format!("failed: {}", s.id),
            href: format!("/ui/nets/{}", s.id),
        })
        .collect();
    Ok(Overview { counts, failing })
}

/// The list's fingerprint: the first page as listed.
async fn list_fingerprint(p: &Pages) -> anyhow::Result<u64> {
    let (nets, next) = p.api.nets.list(PAGE, None).await?;
    let mut h = DefaultHasher::new();
    for s in &nets {
        (&s.id, &s.status, s.active).hash(&mut h);
    }
    next.hash(&mut h);
    Ok(h.finish())
}

/// One net's fingerprint: status, activity, counters, update time and the
/// sizes of its marking and groups (every firing changes one of them).
async fn net_fingerprint(p: &Pages, key: &str) -> anyhow::Result<u64> {
    let k = p.api.nets.keys(key);
    let mut conn = p.redis.conn();
    let (meta, tokens, groups): (Vec<Option<String>>, u64, u64) = redis::pipe()
        .cmd("HMGET")
        .arg(&k.meta)
        .arg("status")
        .arg("active")
        .arg("fired")
        .arg("updated")
        .arg("notifications")
        .hlen(&k.marking)
        .hlen(&k.groups)
        .query_async(&mut conn)
        .await?;
    let mut h = DefaultHasher::new();
    (meta, tokens, groups).hash(&mut h);
    Ok(h.finish())
}

fn status_badge(status: &str, active: bool) -> &'static str {
    match status {
        "failed" => "bad",
        "completed" => "ok",
        _ if !active => "warn",
        _ => "",
    }
}

/// A net's row in the list.
struct Row {
    s: NetSummary,
}

impl Row {
    fn badge(&self) -> &'static str {
        status_badge(&self.s.status, self.s.active)
    }
}

#[derive(Template)]
#[template(path = "nets/list.html")]
struct ListFragment<'a> {
    ui: &'a Viewer,
    rows: Vec<Row>,
    cursor: Option<String>,
    next: Option<String>,
    /// The status filter, if any.
    status: Option<String>,
}

impl ListFragment<'_> {
    fn curl(&self) -> String {
        self.ui.curl("GET", "/v1/nets", None)
    }

    /// The query of this list with `cursor` (and the status filter).
    fn query(&self, cursor: Option<&str>) -> String {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        if let Some(s) = &self.status {
            ser.append_pair("status", s);
        }
        if let Some(c) = cursor {
            ser.append_pair("cursor", c);
        }
        let q = ser.finish();
        if q.is_empty() { q } else { format!("?{q}") }
    }

    fn self_href(&self) -> String {
        format!("/ui/nets/list{}", self.query(self.cursor.as_deref()))
    }

    fn next_href(&self) -> Option<String> {
        self.next
            .as_deref()
            .map(|c| format!("/ui/nets{}", self.query(Some(c))))
    }

    /// The first page, unless this is it.
    fn first_href(&self) -> Option<String> {
        self.cursor
            .as_ref()
            .map(|_| format!("/ui/nets{}", self.query(None)))
    }
}

#[derive(Template)]
#[template(path = "nets/page.html")]
struct Page<'a> {
    ui: &'a Viewer,
    list: ListFragment<'a>,
    statuses: &'static [&'static str],
}

impl Page<'_> {
    fn is_status(&self, s: &str) -> bool {
        self.list.status.as_deref() == Some(s)
    }

    fn create_curl(&self) -> String {
        self.ui.curl(
            "PUT",
            "/v1/nets/my-net",
            Some(&json!({
                "initialMarking": [],
                "transitions": [{"inputs": ["start"], "outputs": ["done"], "action": {"type": "merge"}}]
            })),
        )
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    cursor: Option<String>,
    /// `failed`, `running`, `paused` or `completed`; empty for all.
    #[serde(default)]
    status: Option<String>,
}

/// The statuses the list filters by.
const STATUSES: [&str; 4] = ["failed", "running", "paused", "completed"];

/// Does a net show under `status` (`paused`: not active and not failed)?
fn has_status(s: &NetSummary, status: &str) -> bool {
    match status {
        "paused" => !s.active && s.status != "failed",
        "running" => s.active && s.status == "running",
        other => s.status == other,
    }
}

/// Store pages one filtered list page may read (each examines at most
/// the store's own budget of index entries).
const FILTER_ROUNDS: usize = 8;

async fn read_list<'a>(p: &Pages, ui: &'a Viewer, q: ListQuery) -> UiResult<ListFragment<'a>> {
    let cursor = q.cursor.filter(|c| !c.is_empty());
    let status = q.status.filter(|s| !s.is_empty());
    if let Some(s) = &status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(UiError::bad_request(format!(
            "status must be one of {}",
            STATUSES.join(", ")
        )));
    }
    let parse = |c: &str| {
        switchyard_shared::platform::paging::parse_cursor(c)
            .ok_or_else(|| UiError::bad_request("cursor is not one this console gave"))
    };
    let mut from = cursor.as_deref().map(parse).transpose()?;
    let mut rows = Vec::new();
    let mut next = None;
    for _ in 0..FILTER_ROUNDS {
        let (nets, more) = p
            .api
            .nets
            .list(PAGE - rows.len(), from.take())
            .await
            .map_err(AppError::from)?;
        rows.extend(
            nets.into_iter()
                .filter(|s| status.as_deref().is_none_or(|st| has_status(s, st)))
                .map(|s| Row { s }),
        );
        next = more;
        match &next {
            Some(c) if rows.len() < PAGE => from = Some(parse(c)?),
            _ => break,
        }
    }
    Ok(ListFragment {
        ui,
        rows,
        cursor,
        next,
        status,
    })
}

fn bad_query(e: QueryRejection) -> UiError {
    UiError::bad_request(e.body_text())
}

/// `GET /ui/nets[?cursor=]`.
async fn page(
    State(p): State<Pages>,
    ui: Viewer,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> UiResult<Response> {
    let Query(q) = q.map_err(bad_query)?;
    let list = read_list(&p, &ui, q).await?;
    Ok(render(&Page {
        ui: &ui,
        list,
        statuses: &STATUSES,
    }))
}

/// `GET /ui/nets/list[?cursor=]`: the live region of the list.
async fn list_fragment(
    State(p): State<Pages>,
    ui: Viewer,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> UiResult<Response> {
    let Query(q) = q.map_err(bad_query)?;
    Ok(render(&read_list(&p, &ui, q).await?))
}

/// A token as its chip shows it.
struct Chip {
    color: i64,
    /// Its group, when the colour is in one.
    group: Option<i64>,
    data: String,
}

impl Chip {
    fn class(&self) -> String {
        format!("c{}", self.color.rem_euclid(CHIP_COLOURS))
    }
}

/// A place with its tokens.
struct PlaceRow {
    index: usize,
    name: String,
    chips: Vec<Chip>,
}

/// A transition that calls back (notify, create-color-group with a URL).
struct Callback {
    transition: String,
    action: &'static str,
    url: String,
    /// Response name → place name.
    responses: Vec<(String, String)>,
}

/// A colour group as shown.
struct GroupRow {
    idx: i64,
    colors: String,
    parent: String,
}

/// What a net's live region shows.
#[derive(Template)]
#[template(path = "nets/live.html")]
struct Live<'a> {
    ui: &'a Viewer,
    view: NetView,
    dot: String,
    places: Vec<PlaceRow>,
    groups: Vec<GroupRow>,
    explain: ExplainView,
    callbacks: Vec<Callback>,
    notice: Option<&'a str>,
}

impl Live<'_> {
    fn key(&self) -> &str {
        &self.view.id
    }

    fn badge(&self) -> &'static str {
        status_badge(self.status(), self.view.active)
    }

    fn status(&self) -> &str {
        self.view.status.as_deref().unwrap_or("unknown")
    }

    fn failed(&self) -> bool {
        self.status() == "failed"
    }

    fn tokens(&self) -> usize {
        self.view.places.iter().map(|p| p.tokens).sum()
    }

    fn pause_curl(&self) -> String {
        self.ui.curl(
            "PATCH",
            &format!("/v1/nets/{}", self.key()),
            Some(&json!({"active": !self.view.active})),
        )
    }

    fn put_curl(&self) -> String {
        self.tokens_curl("PUT", "?color=1")
    }

    fn post_curl(&self) -> String {
        self.tokens_curl("POST", "")
    }

    /// The curl of a token put (`method`, `query`) into the first place.
    fn tokens_curl(&self, method: &str, query: &str) -> String {
        let place = self
            .places
            .first()
            .map_or("start".to_owned(), |p| p.name.clone());
        self.ui.curl(
            method,
            &format!("/v1/nets/{}/places/{place}/tokens{query}", self.key()),
            Some(&json!({})),
        )
    }

    fn dot_curl(&self) -> String {
        self.ui
            .curl("GET", &format!("/v1/nets/{}/dot", self.key()), None)
    }

    fn explain_curl(&self) -> String {
        self.ui
            .curl("GET", &format!("/v1/nets/{}/explain", self.key()), None)
    }

    /// A transition's state, in words.
    fn why(&self, t: &TransitionExplain) -> String {
        if let Some(g) = &t.groups {
            if g.is_empty() {
                return "no group has a complete colour".to_owned();
            }
            return g
                .iter()
                .map(|b| {
                    format!(
                        "group {}: {}/{} colours complete",
                        b.group, b.complete_colors, b.group_size
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
        }
        let enabled = t.enabled.as_deref().unwrap_or(&[]);
        let waiting = t.waiting.as_deref().unwrap_or(&[]);
        let mut parts = Vec::new();
        if !enabled.is_empty() {
            let c: Vec<String> = enabled.iter().map(|e| e.color.to_string()).collect();
            parts.push(format!("enabled for colour {}", c.join(", ")));
        }
        for w in waiting {
            parts.push(format!(
                "colour {} waits for {}",
                w.color,
                w.missing.join(", ")
            ));
        }
        if parts.is_empty() {
            "no tokens in its inputs".to_owned()
        } else {
            parts.join("; ")
        }
    }

    fn enabled(&self, t: &TransitionExplain) -> bool {
        t.enabled.as_ref().is_some_and(|e| !e.is_empty())
    }

    fn transition_name(&self, t: &TransitionExplain) -> String {
        t.name
            .clone()
            .unwrap_or_else(|| format!("t{}", t.transition))
    }
}

#[derive(Template)]
#[template(path = "nets/show.html")]
struct Show<'a> {
    ui: &'a Viewer,
    live: Live<'a>,
}

fn check_key(key: &str) -> UiResult<()> {
    if valid_id(key) {
        Ok(())
    } else {
        Err(UiError::not_found(format!("no net {key:?}")))
    }
}

fn data_text(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > DATA_SHOWN {
        let mut out: String = s.chars().take(DATA_SHOWN).collect();
        out.push('…');
        out
    } else {
        s
    }
}

/// Everything a net's page shows, read from the store.
async fn read_live<'a>(
    p: &Pages,
    ui: &'a Viewer,
    key: &str,
    notice: Option<&'a str>,
) -> UiResult<Live<'a>> {
    check_key(key)?;
    let store = &p.api.nets;
    let view = store.view(key).await.map_err(AppError::from)?;
    let (meta, compiled) = store.load(key).await.map_err(AppError::from)?;
    let marking: Marking = store.marking(key).await.map_err(AppError::from)?;
    let dot = store.dot(key).await.map_err(AppError::from)?;
    let explain = ExplainView::new(key, &meta, &compiled, &marking);
    let group_of = |color: i64| {
        marking
            .groups
            .values()
            .find(|g| g.begin <= color && color < g.end)
            .map(|g| g.idx)
    };
    let places = compiled
        .places
        .iter()
        .enumerate()
        .map(|(i, name)| PlaceRow {
            index: i,
            name: name.clone(),
            chips: marking
                .tokens
                .get(&i)
                .map(|m| {
                    m.iter()
                        .map(|(c, d)| Chip {
                            color: *c,
                            group: group_of(*c),
                            data: data_text(d),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    let groups = marking
        .groups
        .values()
        .map(|g| GroupRow {
            idx: g.idx,
            colors: if g.end - g.begin == 1 {
                g.begin.to_string()
            } else {
                format!("{}–{}", g.begin, g.end - 1)
            },
            parent: match (g.parent_color_group_idx, g.parent_color) {
                (Some(pg), Some(pc)) => format!("colour {pc} of group {pg}"),
                _ => "—".to_owned(),
            },
        })
        .collect();
    let place_name = |i: &usize| {
        compiled
            .places
            .get(*i)
            .cloned()
            .unwrap_or_else(|| i.to_string())
    };
    let callbacks = compiled
        .transitions
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let (url, responses, action) = match &t.action {
                Action::Notify {
                    url,
                    response_places,
                    ..
                } => (url.clone(), response_places, "notify"),
                Action::CreateColorGroup {
                    url: Some(url),
                    response_places,
                } => (url.clone(), response_places, "create-color-group"),
                _ => return None,
            };
            Some(Callback {
                transition: t.name.clone().unwrap_or_else(|| format!("t{i}")),
                action,
                url,
                responses: responses
                    .iter()
                    .map(|(n, p)| (n.clone(), place_name(p)))
                    .collect(),
            })
        })
        .collect();
    Ok(Live {
        ui,
        view,
        dot,
        places,
        groups,
        explain,
        callbacks,
        notice,
    })
}

/// `GET /ui/nets/{key}`.
async fn show(State(p): State<Pages>, ui: Viewer, Path(key): Path<String>) -> UiResult<Response> {
    let live = read_live(&p, &ui, &key, None).await?;
    // The graph's Graphviz is WebAssembly: its page's policy allows it.
    Ok((Extension(RunsWasm), render(&Show { ui: &ui, live })).into_response())
}

/// `GET /ui/nets/{key}/live`: the live region of a net's page.
async fn live_fragment(
    State(p): State<Pages>,
    ui: Viewer,
    Path(key): Path<String>,
) -> UiResult<Response> {
    Ok(render(&read_live(&p, &ui, &key, None).await?))
}

#[derive(Deserialize)]
struct ActiveForm {
    active: String,
}

fn bad_form(e: FormRejection) -> UiError {
    UiError::bad_request(e.body_text())
}

/// `POST /ui/nets/{key}/active` (`active=true|false`): as
/// `PATCH /v1/nets/{key}` with `{"active": …}`.
async fn set_active(
    State(p): State<Pages>,
    ui: Viewer,
    Path(key): Path<String>,
    form: Result<Form<ActiveForm>, FormRejection>,
) -> UiResult<Response> {
    check_key(&key)?;
    let Form(f) = form.map_err(bad_form)?;
    let active = match f.active.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            return Err(UiError::bad_request("active must be true or false"));
        }
    };
    p.api
        .nets
        .set_active(&key, active)
        .await
        .map_err(AppError::from)?;
    let notice = if active {
        "Resumed: enabled transitions fire."
    } else {
        "Paused: nothing fires until it is resumed."
    };
    Ok(render(&read_live(&p, &ui, &key, Some(notice)).await?))
}

#[derive(Deserialize)]
struct TokenForm {
    place: String,
    #[serde(default)]
    color: String,
    #[serde(default)]
    color_group: String,
    #[serde(default)]
    data: String,
}

fn number(raw: &str, what: &str) -> UiResult<Option<i64>> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(Some)
        .ok_or_else(|| UiError::bad_request(format!("{what} must be a non-negative integer")))
}

/// `POST /ui/nets/{key}/tokens` (`place`, `color`, `color_group`, `data`):
/// with a colour as `PUT /v1/nets/{key}/places/{place}/tokens?color=…`,
/// without one as `POST …/tokens` (a new colour in a new group).
async fn put_token(
    State(p): State<Pages>,
    ui: Viewer,
    Path(key): Path<String>,
    form: Result<Form<TokenForm>, FormRejection>,
) -> UiResult<Response> {
    check_key(&key)?;
    let Form(f) = form.map_err(bad_form)?;
    let color = number(&f.color, "the colour")?;
    let group = number(&f.color_group, "the colour group")?;
    if color.is_none() && group.is_some() {
        return Err(UiError::bad_request("a colour group needs a colour"));
    }
    if f.data.len() > DATA_MAX {
        return Err(UiError::bad_request(format!(
            "token data: at most {DATA_MAX} bytes"
        )));
    }
    let data = if f.data.trim().is_empty() {
        "{}".to_owned()
    } else {
        let v: Value = serde_json::from_str(&f.data)
            .map_err(|e| UiError::bad_request(format!("token data is not JSON: {e}")))?;
        v.to_string()
    };
    let place = super::place_index(&p.api, &key, &f.place).await?;
    let out = match color {
        Some(c) => p.api.nets.put(&key, place, c, group, &data).await,
        None => p.api.nets.post(&key, place, &data).await,
    }
    .map_err(AppError::from)?;
    let what = if out.duplicate || out.already_present {
        format!("Colour {} was already in {}: kept.", out.color, f.place)
    } else {
        format!(
            "Put colour {} (group {}) into {}; {} transition(s) fired.",
            out.color, out.color_group, f.place, out.fired
        )
    };
    let live = read_live(&p, &ui, &key, Some(&what)).await?;
    Ok(render(&live))
}
