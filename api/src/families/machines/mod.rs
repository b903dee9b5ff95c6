//! State machines: `/api/statemachines…` (and the seed's
//! `/api/setup/statemachine/new`): definitions, entity transitions (single
//! and batch), entity state and history, metrics and a Nagios-style check.
//! The console's pages are in [`ui`] (with the diagram's layout in
//! [`diagram`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_shared::families::machines::{
    BATCH_MAX, Definition, EVENT_ID_MAX, EntityView, Event, IdCursor, MachineError, MachineSpec,
    MachineStore, MachineSummary, MetricsReport, RejectReason, TransitionResult, nagios,
    valid_entity_id, valid_event_id, valid_id, validate_with,
};
use switchyard_shared::platform::outbox::Policies;

use crate::error::{AppError, AppResult, Code};
use crate::extract::JsonBody;
use crate::families::Family;
use crate::state::Ctx;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod diagram;
pub mod ui;

/// What the machines endpoints share.
#[derive(Clone)]
pub struct MachinesApi {
    pub machines: MachineStore,
    pub policies: Arc<Policies>,
    /// `--allow-link-local`: threshold webhooks may name forbidden addresses.
    pub allow_link_local: bool,
    /// When each machine's thresholds were last checked from this process.
    pub(crate) last_check:
        Arc<std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>>,
}

/// The machines endpoints (and their gauges, refreshed at scrape time).
pub fn family(ctx: &Ctx) -> anyhow::Result<Family> {
    let state = MachinesApi::new(ctx)?;
    Ok(Family {
        name: "machines",
        routes: OpenApiRouter::new()
            .routes(routes!(list, create))
            // the seed's creation path
            .route("/api/setup/statemachine/new", post(create))
            .routes(routes!(show, delete))
            .routes(routes!(batch))
            .routes(routes!(entity))
            .routes(routes!(transition))
            .routes(routes!(metrics_json))
            .routes(routes!(check))
            .with_state(state.clone()),
        on_scrape: Some(scrape_hook(&state)),
        ui: Some(ui::section(&state, ctx.redis.clone())),
    })
}

impl MachinesApi {
    fn new(ctx: &Ctx) -> anyhow::Result<Self> {
        Ok(Self {
            machines: MachineStore::new(
                ctx.redis.clone(),
                ctx.keys.clone(),
                ctx.config.families.machines.sm_retention,
            ),
            policies: ctx.policies.clone(),
            allow_link_local: ctx.config.outbox.allow_link_local,
            last_check: Arc::default(),
        })
    }
}

/// A scrape refreshes the state-machine gauges at most once every
/// [`GAUGES_REFRESH_EVERY`] per API process, and then those of at most
/// [`GAUGES_MACHINES_PER_REFRESH`] machines: the next ones, round-robin
/// over every machine, so with N machines each gauge is at most
/// `ceil(N / 32) × 5 s` old (plus the scrape interval). Between refreshes a
/// scrape reads nothing from Redis and shows the gauges as they were. The
/// threshold checks (scheduler, and the API after transitions) publish the
/// gauges of the machines they check too.
///
/// Redis cost of one refresh: at most one `ZRANGE` per shard to find the
/// next machines, then two pipelines: one `HGET` per machine, and per
/// machine one `HGETALL` of its counts, five of its minute buckets and one
/// `ZRANGE 0 0` per non-terminal state ([`MachineStore::export_gauges`]).
pub const GAUGES_REFRESH_EVERY: Duration = Duration::from_secs(5);
/// See [`GAUGES_REFRESH_EVERY`].
pub const GAUGES_MACHINES_PER_REFRESH: usize = 32;

/// When the gauges were last refreshed, and where the next refresh starts.
#[derive(Default)]
struct GaugesRefresh {
    last: Option<Instant>,
    next: IdCursor,
}

/// Refresh some machines' gauges before a scrape (bounded: see
/// [`GAUGES_REFRESH_EVERY`]). A scrape that arrives while another refreshes
/// does not wait for it.
fn scrape_hook(state: &MachinesApi) -> crate::families::ScrapeHook {
    let machines = state.machines.clone();
    let refresh = Arc::new(tokio::sync::Mutex::new(GaugesRefresh::default()));
    Arc::new(move || {
        let (machines, refresh) = (machines.clone(), refresh.clone());
        Box::pin(async move {
            let Ok(mut r) = refresh.try_lock() else {
                return;
            };
            if r.last.is_some_and(|t| t.elapsed() < GAUGES_REFRESH_EVERY) {
                return;
            }
            r.last = Some(Instant::now());
            let page = machines.ids_page(r.next, GAUGES_MACHINES_PER_REFRESH).await;
            match page {
                Ok((ids, next)) => {
                    r.next = next;
                    if let Err(e) = machines.export_gauges(&ids).await {
                        tracing::warn!(error = %e, "refreshing state-machine gauges failed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "listing state machines for gauges failed"),
            }
        })
    })
}

impl From<MachineError> for AppError {
    fn from(e: MachineError) -> Self {
        match e {
            MachineError::NotFound => AppError::new(Code::StatemachineNotFound, e.to_string()),
            MachineError::Exists => {
                AppError::new(Code::StatemachineExists, e.to_string()).at("body.id")
            }
            MachineError::Store(e) => AppError::store(&e),
        }
    }
}

fn check_sm(id: &str) -> AppResult<()> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(AppError::new(
            Code::IdInvalid,
            "ids are 1–100 letters, digits, '-', '_' or '.'",
        )
        .at("path.sm"))
    }
}

/// Define a state machine: `{id, name, states: [{id, name, next: [...], initial?}], thresholds?: [...]}`.
/// Initial states are those marked `"initial": true`, else the first state; states without `next` are terminal.
#[utoipa::path(post, path = "/api/statemachines", tag = "statemachines",
    request_body(content = MachineSpec, description = r#"{"id": "PROVISIONING", "name": "Product Provisioning", "states": [{"id": "1", "name": "Waiting Payment", "next": ["2", "3"]}]}"#),
    responses((status = 201, description = "Created; Location", body = Definition), (status = 400, description = "No states, duplicate ids, unknown next state"),
              (status = 409, description = "The id exists")))]
pub(crate) async fn create(
    State(st): State<MachinesApi>,
    JsonBody(spec): JsonBody<MachineSpec>,
) -> AppResult<Response> {
    let def = validate_with(spec, st.allow_link_local)
        .map_err(|e| AppError::new(Code::StatemachineInvalid, e.message).at(e.location))?;
    st.machines.create(&def).await?;
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/statemachines/{}", def.id)) {
        h.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, h, Json(def)).into_response())
}

/// Every state machine, by id.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct MachineList {
    statemachines: Vec<MachineSummary>,
}

/// Every state machine.
#[utoipa::path(get, path = "/api/statemachines", tag = "statemachines",
    responses((status = 200, description = "Every state machine", body = MachineList)))]
pub(crate) async fn list(State(st): State<MachinesApi>) -> AppResult<Json<MachineList>> {
    Ok(Json(MachineList {
        statemachines: st.machines.list().await?,
    }))
}

/// One definition.
#[utoipa::path(get, path = "/api/statemachines/{sm}", tag = "statemachines", params(("sm" = String, Path)),
    responses((status = 200, description = "The definition", body = Definition), (status = 404, description = "state machine not found")))]
pub(crate) async fn show(
    State(st): State<MachinesApi>,
    Path(sm): Path<String>,
) -> AppResult<Json<Definition>> {
    check_sm(&sm)?;
    Ok(Json(st.machines.definition(&sm).await?))
}

/// Delete a state machine.
#[utoipa::path(delete, path = "/api/statemachines/{sm}", tag = "statemachines", params(("sm" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "state machine not found")))]
pub(crate) async fn delete(
    State(st): State<MachinesApi>,
    Path(sm): Path<String>,
) -> AppResult<StatusCode> {
    check_sm(&sm)?;
    st.machines.delete(&sm).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Thresholds are also checked right after transitions, at most once a second
/// per machine and process, in the background (the scheduler checks them on
/// its period regardless).
fn check_soon(st: &MachinesApi, def: &Definition) {
    if def.thresholds.is_empty() {
        return;
    }
    {
        let mut last = st
            .last_check
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        if last
            .get(&def.id)
            .is_some_and(|t| now.duration_since(*t) < std::time::Duration::from_secs(1))
        {
            return;
        }
        last.insert(def.id.clone(), now);
    }
    let (store, def, policy) = (
        st.machines.clone(),
        def.clone(),
        st.policies.default_name().to_owned(),
    );
    // In flight, so a client (or a test) can tell when the checks its
    // transitions started are done.
    let in_flight = metrics::gauge!("switchyard_sm_threshold_checks_in_flight");
    in_flight.increment(1);
    tokio::spawn(async move {
        if let Err(e) = store.check(&def, &policy).await {
            tracing::warn!(machine = %def.id, error = %e, "threshold check after a transition failed");
        }
        in_flight.decrement(1);
    });
}

fn at_invalid(at: &str) -> AppError {
    AppError::new(Code::AtInvalid, "at must be epoch milliseconds or ISO 8601")
        .at(format!("{at}.at"))
}

/// `at` as epoch milliseconds: a number of them, or ISO 8601.
fn parse_at(raw: Option<&Value>, at: &str) -> AppResult<Option<i64>> {
    match raw {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| at_invalid(at)),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.timestamp_millis()))
            .map_err(|_| at_invalid(at)),
        Some(_) => Err(at_invalid(at)),
    }
}

/// An entity id (named by `at`: `path.entity` or `body.events[i].entity`).
fn check_entity(entity: &str, at: &str) -> AppResult<()> {
    if valid_entity_id(entity) {
        return Ok(());
    }
    Err(AppError::new(
        Code::EntityInvalid,
        "entity ids are 1–100 letters, digits, '-', '_' or '.', and not '.' or '..'",
    )
    .at(at))
}

/// Parse `at` (ISO 8601 or epoch milliseconds) and check an event; its
/// entity is named by `entity_at` (the path's or the event's).
fn prepare(mut e: Event, at: &str, entity_at: &str) -> AppResult<Event> {
    check_entity(&e.entity, entity_at)?;
    if !valid_id(&e.to) {
        return Err(
            AppError::new(Code::StateInvalid, "to must be a state id").at(format!("{at}.to"))
        );
    }
    e.at_ms = parse_at(e.at.as_ref(), at)?;
    if e.event_id.as_deref().is_some_and(|id| !valid_event_id(id)) {
        return Err(AppError::new(
            Code::EventIdInvalid,
            format!(
                "event_id: 1–{EVENT_ID_MAX} bytes, no control characters or bidirectional overrides"
            ),
        )
        .at(format!("{at}.event_id")));
    }
    if e.data.as_ref().is_some_and(|d| !d.is_object()) {
        return Err(
            AppError::new(Code::DataInvalid, "data must be an object").at(format!("{at}.data"))
        );
    }
    Ok(e)
}

/// A rejected single transition as an error (409, or 400 for an unknown
/// state) that lists the allowed states.
fn rejection(reason: RejectReason, state: Option<&str>, allowed: Vec<String>) -> AppError {
    // The state as JSON, as it always was (`move from "1" is not allowed`,
    // `null` when absent).
    let state = serde_json::Value::from(state).to_string();
    let (code, text) = match reason {
        RejectReason::NotInitial => (
            Code::TransitionNotAllowed,
            "a new entity must enter an initial state".to_owned(),
        ),
        RejectReason::Closed => (
            Code::TransitionNotAllowed,
            format!("the entity is closed (terminal state {state})"),
        ),
        RejectReason::UnknownState => (Code::StateUnknown, "unknown state".to_owned()),
        RejectReason::NotAllowed => (
            Code::TransitionNotAllowed,
            format!("move from {state} is not allowed"),
        ),
    };
    AppError::new(code, text)
        .at("body.to")
        .with("allowed", Value::from(allowed))
}

/// Move one entity: `{"to", "at"?, "data"?, "event_id"?}`. 409 lists the allowed states.
#[utoipa::path(post, path = "/api/statemachines/{sm}/entities/{entity}/transitions", tag = "statemachines",
    params(("sm" = String, Path), ("entity" = String, Path)),
    request_body(content = Event, description = r#"{"to": "2", "at": "2026-11-23T10:00:00Z", "data": {...}, "event_id": "evt-1"}"#),
    responses((status = 200, description = r#"{"status": "applied"|"duplicate", from, to, closed}"#, body = TransitionResult),
              (status = 409, description = "Move not allowed: allowed states listed"), (status = 404, description = "state machine not found")))]
pub(crate) async fn transition(
    State(st): State<MachinesApi>,
    Path((sm, entity)): Path<(String, String)>,
    JsonBody(mut e): JsonBody<Event>,
) -> AppResult<Json<TransitionResult>> {
    check_sm(&sm)?;
    e.entity = entity;
    let e = prepare(e, "body", "path.entity")?;
    let def = st.machines.definition(&sm).await?;
    let result = st.machines.transition(&def, &[e]).await?.into_iter().next();
    check_soon(&st, &def);
    match result {
        Some(TransitionResult::Rejected {
            reason,
            state,
            allowed,
        }) => Err(rejection(reason, state.as_deref(), allowed)),
        Some(r) => Ok(Json(r)),
        None => Err(AppError::internal(
            "the transition script answered no result",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Batch {
    events: Vec<Event>,
}

/// A batch's outcomes, in the order of its events.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct BatchResults {
    results: Vec<BatchResult>,
}

/// One event's outcome and its index in the batch.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct BatchResult {
    index: usize,
    #[serde(flatten)]
    result: TransitionResult,
}

/// Up to 1,000 events in one call: `{"events": [{entity, to, at?, data?, event_id?}]}`; each gets its outcome.
#[utoipa::path(post, path = "/api/statemachines/{sm}/transitions", tag = "statemachines", params(("sm" = String, Path)),
    request_body(content = Object, description = r#"{"events": [{"entity": "p1", "to": "1"}]}"#),
    responses((status = 200, description = "One outcome per event", body = BatchResults), (status = 400, description = "Bad event (named by index)"),
              (status = 404, description = "state machine not found")))]
pub(crate) async fn batch(
    State(st): State<MachinesApi>,
    Path(sm): Path<String>,
    JsonBody(b): JsonBody<Batch>,
) -> AppResult<Json<BatchResults>> {
    check_sm(&sm)?;
    if b.events.is_empty() || b.events.len() > BATCH_MAX {
        return Err(AppError::new(
            Code::BatchInvalid,
            format!("events: 1–{BATCH_MAX} per call"),
        )
        .at("body.events"));
    }
    let events = b
        .events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let at = format!("body.events[{i}]");
            prepare(e, &at, &format!("{at}.entity"))
        })
        .collect::<AppResult<Vec<_>>>()?;
    let def = st.machines.definition(&sm).await?;
    let results = st
        .machines
        .transition(&def, &events)
        .await?
        .into_iter()
        .enumerate()
        .map(|(index, result)| BatchResult { index, result })
        .collect();
    check_soon(&st, &def);
    Ok(Json(BatchResults { results }))
}

/// An entity's current state and history.
#[utoipa::path(get, path = "/api/statemachines/{sm}/entities/{entity}", tag = "statemachines",
    params(("sm" = String, Path), ("entity" = String, Path)),
    responses((status = 200, description = "state, entered, closed, history", body = EntityView), (status = 404, description = "unknown machine or entity")))]
pub(crate) async fn entity(
    State(st): State<MachinesApi>,
    Path((sm, entity)): Path<(String, String)>,
) -> AppResult<Json<EntityView>> {
    check_sm(&sm)?;
    check_entity(&entity, "path.entity")?;
    st.machines.definition(&sm).await?;
    match st.machines.entity(&sm, &entity).await? {
        Some(v) => Ok(Json(v)),
        None => Err(AppError::new(Code::EntityNotFound, "entity not found").at("path.entity")),
    }
}

/// Per state: count, oldest age, time-in-state percentiles, entries/exits over 1m/5m/1h; per edge; rejections; thresholds.
#[utoipa::path(get, path = "/api/statemachines/{sm}/metrics", tag = "statemachines", params(("sm" = String, Path)),
    responses((status = 200, description = "Metrics", body = MetricsReport), (status = 404, description = "state machine not found")))]
pub(crate) async fn metrics_json(
    State(st): State<MachinesApi>,
    Path(sm): Path<String>,
) -> AppResult<Json<MetricsReport>> {
    check_sm(&sm)?;
    let def = st.machines.definition(&sm).await?;
    let m = st.machines.metrics(&def).await?;
    let evaluated = st.machines.evaluate(&def, &m).await?;
    Ok(Json(MetricsReport::new(m, &evaluated)))
}

/// Nagios plugin style: `OK|WARNING|CRITICAL - … | perfdata`.
#[utoipa::path(get, path = "/api/statemachines/{sm}/check", tag = "statemachines", params(("sm" = String, Path)),
    responses((status = 200, description = "text/plain", content_type = "text/plain"), (status = 404, description = "state machine not found")))]
pub(crate) async fn check(
    State(st): State<MachinesApi>,
    Path(sm): Path<String>,
) -> AppResult<Response> {
    check_sm(&sm)?;
    let def = st.machines.definition(&sm).await?;
    let m = st.machines.metrics(&def).await?;
    let evaluated = st.machines.evaluate(&def, &m).await?;
    let (_, text) = nagios::check(&def, &m, &evaluated);
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text + "\n",
    )
        .into_response())
}
