//! The gates board of the web console (`/ui/gates`): one tab per group, a
//! services × environments grid showing each gate open or closed and *why*
//! (manual, build window, holiday, queue), a toggle with a message, the
//! queue's tickets with their age, link and a release button, holidays and
//! build windows, and each gate's recent history. Every action shows the
//! equivalent API call. Live topic `gates`: a fingerprint of the
//! namespace's services, gate states, queues, tickets and holidays.

use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use switchyard_shared::Redis;
use switchyard_shared::families::gates::{GateStore, GateView, Holiday, ServiceView};

use super::{GatesApi, check_message, check_path, parse_state};
use crate::Actor;
use crate::error::AppError;
use crate::state::AppState;
use crate::ui::{Count, Overview, Section, UiResult, Viewer, render};

/// History entries shown per gate.
const HISTORY_SHOWN: usize = 20;

/// What the board's handlers share.
#[derive(Clone)]
struct Board {
    api: GatesApi,
    redis: Redis,
}

/// The gates section of the console.
pub fn section(api: &GatesApi, redis: Redis) -> Section {
    let board = Board {
        api: api.clone(),
        redis,
    };
    let pages: Router<AppState> = Router::new()
        .route("/", get(page))
        .route("/board", get(fragment))
        .route("/{group}/{service}/{env}/state", post(set_state))
        .route("/{group}/{service}/{env}/history", get(history))
        .route("/tickets/{id}/release", post(release))
        .with_state(board.clone());
    Section::new("gates", "Gates", pages)
        .with_overview_of(board.clone(), |b| async move { overview(&b).await })
        // The board's topic only.
        .with_live_of(
            board,
            |_| false,
            |b, _| async move { fingerprint(&b).await },
        )
}

/// Every service of the namespace with its gates.
async fn services(store: &GateStore) -> Result<Vec<ServiceView>, AppError> {
    let mut out = Vec::new();
    for s in store.list_services().await? {
        match store.get_service(&s.name, None).await {
            Ok(v) => out.push(v),
            // Deleted between the two reads.
            Err(switchyard_shared::families::gates::GateError::ServiceNotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

async fn overview(b: &Board) -> anyhow::Result<Overview> {
    let all = services(&b.api.gates)
        .await
        .map_err(|e| anyhow::anyhow!(e.reason))?;
    let gates: Vec<&GateView> = all.iter().flat_map(|s| s.environments.values()).collect();
    let closed = gates.iter().filter(|g| g.state == "closed").count();
    let queued: BTreeSet<&str> = gates
        .iter()
        .flat_map(|g| g.queue.iter().map(|t| t.id.as_str()))
        .collect();
    Ok(Overview {
        counts: vec![
            Count::new("services", all.len() as u64),
            Count::new("gates", gates.len() as u64),
            Count::new("closed", closed as u64),
            Count::new("tickets", queued.len() as u64),
        ],
        failing: Vec::new(),
    })
}

/// A cheap digest of everything the board shows: the service list, then in
/// one pipelined round trip the tickets, holidays and each gate's state hash
/// and queue, plus the build-window state of each environment and today's
/// date (holidays and windows change with time alone).
async fn fingerprint(b: &Board) -> anyhow::Result<u64> {
    let store = &b.api.gates;
    let keys = store.keys();
    let list = store
        .list_services()
        .await
        .map_err(|e| anyhow::anyhow!(e.to_string()))?;
    let mut pipe = redis::pipe();
    pipe.hgetall(keys.tickets()).hgetall(keys.holidays());
    let now = Utc::now();
    let mut h = DefaultHasher::new();
    now.date_naive().hash(&mut h);
    for s in &list {
        (&s.name, &s.group, &s.environments).hash(&mut h);
        for e in &s.environments {
            pipe.hgetall(keys.state(&s.name, e))
                .lrange(keys.queue(&s.name, e), 0, -1);
            store.settings().windows.closed(e, now).hash(&mut h);
        }
    }
    let mut conn = b.redis.conn();
    let values: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
    format!("{values:?}").hash(&mut h);
    Ok(h.finish())
}

/// One gate cell of the grid.
struct Cell<'a> {
    group: &'a str,
    service: &'a str,
    env: &'a str,
    gate: Option<&'a GateView>,
}

impl Cell<'_> {
    fn closed(&self) -> bool {
        self.gate.is_some_and(|g| g.state == "closed")
    }

    /// The manual state the toggle sets.
    fn toggled(&self) -> &'static str {
        match self.gate {
            Some(g) if g.manual_state == "closed" => "open",
            _ => "closed",
        }
    }

    fn action(&self) -> String {
        format!(
            "/ui/gates/{}/{}/{}/state",
            self.group, self.service, self.env
        )
    }

    /// The message input's id: stable across refreshes, so a live update
    /// keeps what is being typed (`hx-preserve`).
    fn input_id(&self) -> String {
        format!("message-{}-{}-{}", self.group, self.service, self.env)
    }

    fn history(&self) -> String {
        format!(
            "/ui/gates/{}/{}/{}/history",
            self.group, self.service, self.env
        )
    }

    /// The toggle's API call.
    fn curl(&self, ui: &Viewer) -> String {
        let path = format!("/api/gates/{}/{}/{}", self.group, self.service, self.env);
        ui.curl(
            "PUT",
            &path,
            Some(&json!({"state": self.toggled(), "message": "…"})),
        )
    }
}

/// One row: a service with a cell per environment of its group.
struct Row<'a> {
    service: &'a str,
    cells: Vec<Cell<'a>>,
}

/// One group's grid.
struct Grid<'a> {
    envs: Vec<&'a str>,
    rows: Vec<Row<'a>>,
}

fn grid<'a>(group: &'a str, services: &'a [ServiceView]) -> Grid<'a> {
    let mine: Vec<&ServiceView> = services.iter().filter(|s| s.group == group).collect();
    let envs: BTreeSet<&str> = mine
        .iter()
        .flat_map(|s| s.environments.keys().map(String::as_str))
        .collect();
    let envs: Vec<&str> = envs.into_iter().collect();
    let rows = mine
        .iter()
        .map(|s| Row {
            service: &s.name,
            cells: envs
                .iter()
                .map(|e| Cell {
                    group,
                    service: &s.name,
                    env: e,
                    gate: s.environments.get(*e),
                })
                .collect(),
        })
        .collect();
    Grid { envs, rows }
}

/// One environment's build windows, as shown.
struct Window {
    env: String,
    /// `Mon–Fri 08:00–18:00`, one per rule.
    rules: Vec<String>,
    /// Outside every window right now (its gates are closed by `window`).
    closed_now: bool,
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn windows(store: &GateStore) -> Vec<Window> {
    let now = Utc::now();
    let day = |d: u8| DAYS.get(usize::from(d)).copied().unwrap_or("?");
    store
        .settings()
        .windows
        .rules()
        .map(|(env, rules)| Window {
            env: env.to_owned(),
            rules: rules
                .iter()
                .map(|r| {
                    let [d0, d1] = r.days_range;
                    let [h0, h1] = r.hours_range;
                    let days = if d0 == d1 {
                        day(d0).to_owned()
                    } else {
                        format!("{}–{}", day(d0), day(d1))
                    };
                    format!("{days} {h0:02}:00–{h1:02}:00")
                })
                .collect(),
            closed_now: store.settings().windows.closed(env, now),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "gates/board.html")]
struct BoardFragment<'a> {
    ui: &'a Viewer,
    group: &'a str,
    grid: Grid<'a>,
    holidays: &'a [Holiday],
    windows: Vec<Window>,
}

#[derive(Template)]
#[template(path = "gates/page.html")]
struct Page<'a> {
    ui: &'a Viewer,
    groups: Vec<&'a str>,
    board: BoardFragment<'a>,
}

impl Page<'_> {
    fn is_shown(&self, group: &str) -> bool {
        self.board.group == group
    }

    /// How to create a first service (the board is empty).
    fn create_curl(&self) -> String {
        self.ui.curl(
            "POST",
            "/api/gates/my-group/my-service",
            Some(&json!({"environments": ["testing", "live"]})),
        )
    }
}

impl BoardFragment<'_> {
    /// A ticket id, shortened for the grid (the full id is its tooltip).
    fn short<'i>(&self, id: &'i str) -> &'i str {
        id.get(..8).unwrap_or(id)
    }

    /// A ticket's link, if it is a web address (never a `javascript:` one).
    fn web_link<'l>(&self, link: &'l Option<String>) -> Option<&'l str> {
        link.as_deref()
            .filter(|l| l.starts_with("https://") || l.starts_with("http://"))
    }
}

#[derive(Deserialize)]
struct GroupQuery {
    group: Option<String>,
}

/// The groups, sorted, and the one shown (`?group=`, else the first).
fn groups<'a>(services: &'a [ServiceView], wanted: Option<&str>) -> (Vec<&'a str>, &'a str) {
    let groups: BTreeSet<&str> = services.iter().map(|s| s.group.as_str()).collect();
    let groups: Vec<&str> = groups.into_iter().collect();
    let shown = wanted
        .and_then(|w| groups.iter().find(|g| **g == w).copied())
        .or_else(|| groups.first().copied())
        .unwrap_or("");
    (groups, shown)
}

async fn read(b: &Board) -> UiResult<(Vec<ServiceView>, Vec<Holiday>)> {
    let services = services(&b.api.gates).await?;
    let holidays = b
        .api
        .gates
        .list_holidays(Utc::now().date_naive())
        .await
        .map_err(AppError::from)?;
    Ok((services, holidays))
}

/// The board (the live region) of `group`.
fn board<'a>(
    b: &Board,
    ui: &'a Viewer,
    group: &'a str,
    services: &'a [ServiceView],
    holidays: &'a [Holiday],
) -> BoardFragment<'a> {
    BoardFragment {
        ui,
        group,
        grid: grid(group, services),
        holidays,
        windows: windows(&b.api.gates),
    }
}

/// `GET /ui/gates[?group=]`.
async fn page(
    State(b): State<Board>,
    ui: Viewer,
    Query(q): Query<GroupQuery>,
) -> UiResult<Response> {
    let (services, holidays) = read(&b).await?;
    let (groups, group) = groups(&services, q.group.as_deref());
    Ok(render(&Page {
        ui: &ui,
        groups,
        board: board(&b, &ui, group, &services, &holidays),
    }))
}

/// `GET /ui/gates/board?group=`: the live region.
async fn fragment(
    State(b): State<Board>,
    ui: Viewer,
    Query(q): Query<GroupQuery>,
) -> UiResult<Response> {
    let (services, holidays) = read(&b).await?;
    let (_, group) = groups(&services, q.group.as_deref());
    Ok(render(&board(&b, &ui, group, &services, &holidays)))
}

#[derive(Deserialize)]
struct StateForm {
    state: Option<String>,
    message: Option<String>,
}

/// `POST /ui/gates/{group}/{service}/{env}/state` (`state`, `message`): as
/// `PUT /api/gates/{group}/{service}/{env}`; answers the group's board.
async fn set_state(
    State(b): State<Board>,
    ui: Viewer,
    Extension(actor): Extension<Actor>,
    Path((group, service, env)): Path<(String, String, String)>,
    Form(form): Form<StateForm>,
) -> UiResult<Response> {
    check_path(Some(&group), &service, Some(&env))?;
    let state = form
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| parse_state(s, "form.state"))
        .transpose()?;
    let message = form.message.as_deref().filter(|m| !m.is_empty());
    if let Some(m) = message {
        check_message(m, "form.message")?;
    }
    if state.is_some() || message.is_some() {
        b.api
            .gates
            .set_state(&service, Some(&group), &env, state, message, &actor.0)
            .await
            .map_err(AppError::from)?;
    }
    fragment(State(b), ui, Query(GroupQuery { group: Some(group) })).await
}

#[derive(Deserialize)]
struct ReleaseQuery {
    group: Option<String>,
}

/// `POST /ui/gates/tickets/{id}/release[?group=]`: as `DELETE /api/tickets/{id}`.
async fn release(
    State(b): State<Board>,
    ui: Viewer,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    Query(q): Query<ReleaseQuery>,
) -> UiResult<Response> {
    b.api
        .gates
        .release(&id, "released", &actor.0)
        .await
        .map_err(AppError::from)?;
    fragment(State(b), ui, Query(GroupQuery { group: q.group })).await
}

/// One history entry as shown.
struct HistoryRow {
    at: String,
    event: String,
    actor: String,
    /// The other fields, as `k=v`.
    details: String,
}

impl From<serde_json::Value> for HistoryRow {
    fn from(entry: serde_json::Value) -> Self {
        let field = |name: &str| {
            entry
                .get(name)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned()
        };
        let details = entry
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "at" | "event" | "actor"))
                    .map(|(k, v)| match v {
                        serde_json::Value::String(s) => format!("{k}={s}"),
                        other => format!("{k}={other}"),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        Self {
            at: field("at"),
            event: field("event"),
            actor: field("actor"),
            details,
        }
    }
}

#[derive(Template)]
#[template(path = "gates/history.html")]
struct History {
    rows: Vec<HistoryRow>,
}

/// `GET /ui/gates/{group}/{service}/{env}/history`: the gate's latest changes.
async fn history(
    State(b): State<Board>,
    Path((group, service, env)): Path<(String, String, String)>,
) -> UiResult<Response> {
    check_path(Some(&group), &service, Some(&env))?;
    let entries = b
        .api
        .gates
        .history(&service, Some(&group), &env, HISTORY_SHOWN)
        .await
        .map_err(AppError::from)?;
    Ok(render(&History {
        rows: entries.into_iter().map(HistoryRow::from).collect(),
    }))
}
