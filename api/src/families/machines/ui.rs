//! The state-machine pages of the web console: `/ui/machines` lists the
//! machines (filter by id or name, paged) with their entity counts and
//! alerts firing; `/ui/machines/{id}` draws the state diagram (laid out
//! here, [`super::diagram`]) with each state's count, oldest age and rates,
//! the thresholds with the firing ones highlighted, and an entity lookup
//! (its state and history). The figures are those of the JSON API's
//! `/metrics` (same store calls). Live topics: `machines` (every machine's
//! counts and alert states) and `machines-<id>` (one machine's counts, this
//! minute's counters and alert states, and the minute itself, since rates
//! and ages move with time alone).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::Value;
use switchyard_shared::Redis;
use switchyard_shared::families::machines::{
    Definition, EntityView, MachineError, MetricsReport, Severity, StateMetrics, ThresholdSpec,
    ThresholdStatus,
};
use switchyard_shared::platform::time::now_ms;

use super::diagram::{self, Diagram, human_age};
use super::{MachinesApi, check_entity, check_sm};
use crate::error::AppError;
use crate::state::AppState;
use crate::ui::{Count, Failing, Overview, Section, UiError, UiResult, Viewer, render};

/// Machines per page of the list.
const PAGE: usize = 50;

/// Firing alerts named on the overview tile.
const FAILING_SHOWN: usize = 5;

/// What the pages' handlers share.
#[derive(Clone)]
struct Pages {
    api: MachinesApi,
    redis: Redis,
}

/// The state-machines section of the console.
pub fn section(api: &MachinesApi, redis: Redis) -> Section {
    let pages = Pages {
        api: api.clone(),
        redis,
    };
    let routes: Router<AppState> = Router::new()
        .route("/", get(list))
        .route("/{id}", get(machine))
        .route("/{id}/live", get(machine_fragment))
        .route("/{id}/entity", get(entity))
        .with_state(pages.clone());
    Section::new("machines", "Machines", routes)
        .with_overview_of(pages.clone(), |p| async move { overview(&p).await })
        .with_live_of(pages, super::valid_id, |p, id| async move {
            match id {
                None => list_fingerprint(&p).await,
                Some(id) => machine_fingerprint(&p, &id).await,
            }
        })
}

/// `s` for a query string.
fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn store_err(e: MachineError) -> UiError {
    AppError::from(e).into()
}

/// One machine in the list, with its entity count and alerts firing.
struct Row {
    id: String,
    name: String,
    states: usize,
    entities: i64,
    firing: Vec<String>,
}

/// The alert states of a machine's alerts hash that are firing (threshold ids).
fn firing_of(alerts: &HashMap<String, String>) -> Vec<String> {
    let mut out: Vec<String> = alerts
        .iter()
        .filter(|(_, raw)| {
            serde_json::from_str::<Value>(raw)
                .is_ok_and(|v| v.get("firing").and_then(Value::as_bool) == Some(true))
        })
        .map(|(id, _)| id.clone())
        .collect();
    out.sort();
    out
}

/// Rows for `defs`: one pipelined read of their counts and alert states.
async fn rows(p: &Pages, defs: Vec<Definition>) -> UiResult<Vec<Row>> {
    if defs.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for d in &defs {
        let k = p.api.machines.keys(&d.id);
        pipe.hgetall(k.counts()).hgetall(k.alerts());
    }
    let replies: Vec<HashMap<String, String>> = pipe
        .query_async(&mut p.redis.conn())
        .await
        .map_err(UiError::internal)?;
    let mut replies = replies.into_iter();
    Ok(defs
        .into_iter()
        .map(|d| {
            let counts = replies.next().unwrap_or_default();
            let alerts = replies.next().unwrap_or_default();
            let entities = d
                .states
                .iter()
                .filter(|s| !s.next.is_empty())
                .filter_map(|s| counts.get(&s.id)?.parse::<i64>().ok())
                .sum();
            Row {
                states: d.states.len(),
                entities,
                firing: firing_of(&alerts),
                id: d.id,
                name: d.name,
            }
        })
        .collect())
}

/// Every machine's definition, by id (one pipelined read after the ids).
async fn definitions(p: &Pages) -> UiResult<Vec<Definition>> {
    let mut ids = p.api.machines.ids().await.map_err(store_err)?;
    ids.sort();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for id in &ids {
        pipe.hget(p.api.machines.keys(id).meta(), "def");
    }
    let raws: Vec<Option<String>> = pipe
        .query_async(&mut p.redis.conn())
        .await
        .map_err(UiError::internal)?;
    Ok(raws
        .into_iter()
        .flatten()
        .filter_map(|r| serde_json::from_str(&r).ok())
        .collect())
}

async fn overview(p: &Pages) -> anyhow::Result<Overview> {
    let defs = definitions(p)
        .await
        .map_err(|e| anyhow::anyhow!(e.reason))?;
    let machines = defs.len() as u64;
    let all = rows(p, defs).await.map_err(|e| anyhow::anyhow!(e.reason))?;
    let entities: i64 = all.iter().map(|r| r.entities).sum();
    let firing: usize = all.iter().map(|r| r.firing.len()).sum();
    let failing = all
        .iter()
        .flat_map(|r| {
            r.firing.iter().map(|t| Failing {
                what: format!("{}: {t} firing", r.id),
                href: format!("/ui/machines/{}", r.id),
            })
        })
        .take(FAILING_SHOWN)
        .collect();
    Ok(Overview {
        counts: vec![
            Count::bad("alerts firing", firing as u64),
            Count::new("machines", machines),
            Count::new("entities", entities.max(0) as u64),
        ],
        failing,
    })
}

/// The list's fingerprint: the ids, then each machine's counts and alert states.
async fn list_fingerprint(p: &Pages) -> anyhow::Result<u64> {
    let mut ids = p.api.machines.ids().await?;
    ids.sort();
    let mut h = DefaultHasher::new();
    ids.hash(&mut h);
    if !ids.is_empty() {
        let mut pipe = redis::pipe();
        for id in &ids {
            let k = p.api.machines.keys(id);
            pipe.hgetall(k.counts()).hgetall(k.alerts());
        }
        let values: Vec<redis::Value> = pipe.query_async(&mut p.redis.conn()).await?;
        format!("{values:?}").hash(&mut h);
    }
    Ok(h.finish())
}

/// A machine's fingerprint: its definition, counts, this minute's counters,
/// alert states, and the minute (rates and ages change with time alone).
async fn machine_fingerprint(p: &Pages, id: &str) -> anyhow::Result<u64> {
    let k = p.api.machines.keys(id);
    let minute = now_ms() / 60_000;
    let values: Vec<redis::Value> = redis::pipe()
        .hget(k.meta(), "def")
        .hgetall(k.counts())
        .hgetall(k.bucket(minute))
        .hgetall(k.alerts())
        .query_async(&mut p.redis.conn())
        .await?;
    let mut h = DefaultHasher::new();
    minute.hash(&mut h);
    format!("{values:?}").hash(&mut h);
    Ok(h.finish())
}

#[derive(Deserialize)]
struct ListQuery {
    /// Part of an id or name (any case).
    q: Option<String>,
    /// Show machines after this id.
    after: Option<String>,
}

#[derive(Template)]
#[template(path = "machines/list.html")]
struct ListFragment<'a> {
    ui: &'a Viewer,
    q: &'a str,
    rows: Vec<Row>,
    /// The id the next page starts after.
    next: Option<String>,
    /// Machines defined at all (to tell "none yet" from "none match").
    total: usize,
}

impl ListFragment<'_> {
    fn next_href(&self, after: &str) -> String {
        let mut s = format!("/ui/machines?after={}", enc(after));
        if !self.q.is_empty() {
            s.push_str(&format!("&q={}", enc(self.q)));
        }
        s
    }

    /// Where the live region refetches this very page.
    fn self_href(&self, after: Option<&str>) -> String {
        let mut s = format!("/ui/machines?q={}", enc(self.q));
        if let Some(a) = after {
            s.push_str(&format!("&after={}", enc(a)));
        }
        s
    }

    fn create_curl(&self) -> String {
        self.ui.curl(
            "POST",
            "/api/statemachines",
            Some(
                &serde_json::json!({"id": "orders", "name": "Orders", "states": [
                {"id": "new", "next": ["paid", "cancelled"]},
                {"id": "paid", "next": ["shipped"]},
                {"id": "shipped"}, {"id": "cancelled"}]}),
            ),
        )
    }
}

#[derive(Template)]
#[template(path = "machines/page.html")]
struct ListPage<'a> {
    ui: &'a Viewer,
    after: Option<&'a str>,
    list: ListFragment<'a>,
}

impl ListPage<'_> {
    /// Where the live region refetches this very page.
    fn live_href(&self) -> String {
        self.list.self_href(self.after)
    }
}

/// `GET /ui/machines[?q=&after=]`: the page, or (htmx) only its list.
async fn list(
    State(p): State<Pages>,
    ui: Viewer,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> UiResult<Response> {
    let needle = q.q.as_deref().unwrap_or("").trim().to_lowercase();
    let defs = definitions(&p).await?;
    let total = defs.len();
    let mut matching: Vec<Definition> = defs
        .into_iter()
        .filter(|d| {
            needle.is_empty()
                || d.id.to_lowercase().contains(&needle)
                || d.name.to_lowercase().contains(&needle)
        })
        .filter(|d| q.after.as_deref().is_none_or(|a| d.id.as_str() > a))
        .collect();
    let next = (matching.len() > PAGE).then(|| matching[PAGE - 1].id.clone());
    matching.truncate(PAGE);
    let shown = q.q.as_deref().unwrap_or("").trim();
    let fragment = ListFragment {
        ui: &ui,
        q: shown,
        rows: rows(&p, matching).await?,
        next,
        total,
    };
    if headers.contains_key("hx-request") {
        return Ok(render(&fragment));
    }
    Ok(render(&ListPage {
        ui: &ui,
        after: q.after.as_deref(),
        list: fragment,
    }))
}

/// One state's row of the figures table.
struct StateRow<'a> {
    id: &'a str,
    name: &'a str,
    initial: bool,
    terminal: bool,
    m: Option<&'a StateMetrics>,
    /// `critical`, `warning` or "" (a firing threshold on this state).
    alert: &'static str,
}

impl StateRow<'_> {
    fn count(&self) -> String {
        match self.m.and_then(|m| m.count) {
            Some(n) => n.to_string(),
            None => "—".into(),
        }
    }

    fn age(&self, secs: Option<f64>) -> String {
        secs.map_or_else(|| "—".into(), human_age)
    }

    fn oldest(&self) -> String {
        self.age(self.m.and_then(|m| m.oldest_age_seconds))
    }

    fn p50(&self) -> String {
        self.age(self.m.and_then(|m| m.time_in_state_seconds.p50))
    }

    fn p90(&self) -> String {
        self.age(self.m.and_then(|m| m.time_in_state_seconds.p90))
    }

    fn p99(&self) -> String {
        self.age(self.m.and_then(|m| m.time_in_state_seconds.p99))
    }

    /// `1m / 5m / 1h` of entries or exits.
    fn entries(&self) -> String {
        self.m.map_or_else(String::new, |m| {
            format!(
                "{} / {} / {}",
                m.entries.one_minute, m.entries.five_minutes, m.entries.one_hour
            )
        })
    }

    fn exits(&self) -> String {
        self.m.map_or_else(String::new, |m| {
            format!(
                "{} / {} / {}",
                m.exits.one_minute, m.exits.five_minutes, m.exits.one_hour
            )
        })
    }
}

/// One threshold as shown: its definition and its state now.
struct ThresholdRow<'a> {
    spec: &'a ThresholdSpec,
    status: Option<&'a ThresholdStatus>,
}

impl ThresholdRow<'_> {
    fn id(&self) -> &str {
        self.spec.id.as_deref().unwrap_or("")
    }

    fn firing(&self) -> bool {
        self.status.is_some_and(|s| s.firing)
    }

    fn critical(&self) -> bool {
        self.spec.severity == Severity::Critical
    }

    fn severity(&self) -> &'static str {
        if self.critical() {
            "critical"
        } else {
            "warning"
        }
    }

    fn message(&self) -> &str {
        self.status.map_or("", |s| s.message.as_str())
    }

    /// `> 10`, `older than 5 min`, `> 100 in 5m`.
    fn rule(&self) -> String {
        use switchyard_shared::families::machines::ThresholdKind as K;
        let t = self.spec;
        let v = t.value.unwrap_or(0.0);
        let age = human_age(t.age_seconds.unwrap_or(0) as f64);
        match t.kind {
            K::CountAbove => format!("count > {v}"),
            K::OldestAgeAbove => format!("oldest > {age}"),
            K::OlderThan => format!("> {v} older than {age}"),
            K::EntryRateAbove => {
                format!("> {v} entries in {}", t.window.as_deref().unwrap_or("1m"))
            }
            K::Unknown => t.kind.as_str().to_owned(),
        }
    }

    fn webhook(&self) -> &str {
        self.spec.action.as_ref().map_or("", |a| a.url.as_str())
    }
}

/// The live part of a machine's page.
#[derive(Template)]
#[template(path = "machines/live.html")]
struct MachineFragment<'a> {
    ui: &'a Viewer,
    def: &'a Definition,
    report: &'a MetricsReport,
    diagram: Diagram,
}

impl<'a> MachineFragment<'a> {
    /// The live part of `def`'s page, its diagram laid out from `report`.
    fn new(ui: &'a Viewer, def: &'a Definition, report: &'a MetricsReport) -> Self {
        Self {
            ui,
            def,
            report,
            diagram: diagram::layout(def, report),
        }
    }

    fn states(&self) -> Vec<StateRow<'_>> {
        self.def
            .states
            .iter()
            .map(|s| {
                let firing = |sev: Severity| {
                    self.report
                        .thresholds
                        .iter()
                        .any(|t| t.firing && t.state == s.id && t.severity == sev)
                };
                StateRow {
                    id: &s.id,
                    name: &s.name,
                    initial: self.def.initial.contains(&s.id),
                    terminal: s.next.is_empty(),
                    m: self.report.metrics.states.get(&s.id),
                    alert: if firing(Severity::Critical) {
                        "critical"
                    } else if firing(Severity::Warning) {
                        "warning"
                    } else {
                        ""
                    },
                }
            })
            .collect()
    }

    /// Thresholds, firing ones first (critical before warning).
    fn thresholds(&self) -> Vec<ThresholdRow<'_>> {
        let mut rows: Vec<ThresholdRow<'_>> = self
            .def
            .thresholds
            .iter()
            .map(|spec| ThresholdRow {
                spec,
                status: self
                    .report
                    .thresholds
                    .iter()
                    .find(|s| s.id == spec.id && s.state == spec.state),
            })
            .collect();
        rows.sort_by_key(|r| (!r.firing(), !r.critical()));
        rows
    }

    fn firing(&self) -> usize {
        self.report.thresholds.iter().filter(|t| t.firing).count()
    }

    /// Moves per edge over 1m / 5m / 1h, busiest first.
    fn edges(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self.report.metrics.edges.iter().collect();
        v.sort_by_key(|(_, w)| std::cmp::Reverse(w.one_hour));
        v.into_iter()
            .map(|(e, w)| {
                (
                    e.replacen('>', " → ", 1),
                    format!("{} / {} / {}", w.one_minute, w.five_minutes, w.one_hour),
                )
            })
            .collect()
    }

    fn rejected(&self) -> String {
        let r = &self.report.metrics.rejected;
        format!("{} / {} / {}", r.one_minute, r.five_minutes, r.one_hour)
    }

    fn metrics_curl(&self) -> String {
        self.ui.curl(
            "GET",
            &format!("/api/statemachines/{}/metrics", self.def.id),
            None,
        )
    }
}

/// What the entity lookup shows.
#[derive(Template)]
#[template(path = "machines/entity.html")]
struct EntityFragment<'a> {
    ui: &'a Viewer,
    machine: &'a str,
    /// The id looked up ("" = nothing asked yet).
    asked: &'a str,
    found: Option<EntityView>,
}

impl EntityFragment<'_> {
    fn curl(&self) -> String {
        let entity = if self.asked.is_empty() {
            "ENTITY"
        } else {
            self.asked
        };
        self.ui.curl(
            "GET",
            &format!("/api/statemachines/{}/entities/{entity}", self.machine),
            None,
        )
    }

    fn transition_curl(&self) -> String {
        self.ui.curl(
            "POST",
            &format!(
                "/api/statemachines/{}/entities/{}/transitions",
                self.machine,
                if self.asked.is_empty() {
                    "ENTITY"
                } else {
                    self.asked
                }
            ),
            Some(&serde_json::json!({"to": "STATE"})),
        )
    }

    fn data(&self, v: &Option<Value>) -> String {
        v.as_ref().map(Value::to_string).unwrap_or_default()
    }
}

#[derive(Template)]
#[template(path = "machines/machine.html")]
struct MachinePage<'a> {
    ui: &'a Viewer,
    def: &'a Definition,
    live: MachineFragment<'a>,
    entity: EntityFragment<'a>,
}

impl MachinePage<'_> {
    fn topic(&self) -> String {
        format!("machines-{}", self.def.id)
    }
}

/// The definition and its metrics report, as `GET …/metrics` computes it.
async fn report(p: &Pages, id: &str) -> UiResult<(Definition, MetricsReport)> {
    check_sm(id)?;
    let store = &p.api.machines;
    let def = store.definition(id).await.map_err(store_err)?;
    let m = store.metrics(&def).await.map_err(store_err)?;
    let evaluated = store.evaluate(&def, &m).await.map_err(store_err)?;
    Ok((def, MetricsReport::new(m, &evaluated)))
}

/// The entity `asked` (checked) of machine `id`, if it exists.
async fn lookup(p: &Pages, id: &str, asked: &str) -> UiResult<Option<EntityView>> {
    if asked.is_empty() {
        return Ok(None);
    }
    check_entity(asked, "query.entity")?;
    p.api.machines.entity(id, asked).await.map_err(store_err)
}

#[derive(Deserialize)]
struct EntityQuery {
    entity: Option<String>,
}

/// `GET /ui/machines/{id}[?entity=]`.
async fn machine(
    State(p): State<Pages>,
    ui: Viewer,
    Path(id): Path<String>,
    Query(q): Query<EntityQuery>,
) -> UiResult<Response> {
    let (def, report) = report(&p, &id).await?;
    let asked = q.entity.as_deref().unwrap_or("").trim();
    let found = lookup(&p, &id, asked).await?;
    Ok(render(&MachinePage {
        ui: &ui,
        def: &def,
        live: MachineFragment::new(&ui, &def, &report),
        entity: EntityFragment {
            ui: &ui,
            machine: &def.id,
            asked,
            found,
        },
    }))
}

/// `GET /ui/machines/{id}/live`: the diagram, figures and thresholds.
async fn machine_fragment(
    State(p): State<Pages>,
    ui: Viewer,
    Path(id): Path<String>,
) -> UiResult<Response> {
    let (def, report) = report(&p, &id).await?;
    Ok(render(&MachineFragment::new(&ui, &def, &report)))
}

/// `GET /ui/machines/{id}/entity?entity=`: the lookup's answer.
async fn entity(
    State(p): State<Pages>,
    ui: Viewer,
    Path(id): Path<String>,
    Query(q): Query<EntityQuery>,
) -> UiResult<Response> {
    check_sm(&id)?;
    let def = p.api.machines.definition(&id).await.map_err(store_err)?;
    let asked = q.entity.as_deref().unwrap_or("").trim();
    let found = lookup(&p, &id, asked).await?;
    Ok(render(&EntityFragment {
        ui: &ui,
        machine: &def.id,
        asked,
        found,
    }))
}
