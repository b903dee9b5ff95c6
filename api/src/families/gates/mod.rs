//! Deployment-gate endpoints: the gatekeeper API in both its forms —
//! `/api/services/<service>…` (services addressed by name) and
//! `/api/gates/<group>/<service>…` (group-qualified) — plus tickets and
//! holidays. Input is validated here, once; the store does one Lua call.
//! The console's gates board is in [`ui`].

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Extension, Json};
use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_shared::families::gates::{
    ENVS_MAX, GateError, GateRef, GateSettings, GateStore, HOLIDAYS_MAX, Holiday, NAME_MAX,
    ServiceUpdate, TAS_MAX_GATES, TasRequest, TasStatus, name_problem,
};

use crate::Actor;
use crate::error::{AppError, AppResult, Code};
use crate::extract::JsonBody;
use crate::families::Family;
use crate::state::Ctx;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod ui;

/// Longest gate message.
pub const MESSAGE_MAX: usize = 4096;
/// Longest ticket link.
pub const LINK_MAX: usize = 2048;

/// What the gates endpoints share.
#[derive(Clone)]
pub struct GatesApi {
    pub gates: GateStore,
}

/// The gates endpoints.
pub fn family(ctx: &Ctx) -> anyhow::Result<Family> {
    let state = GatesApi::new(ctx)?;
    Ok(Family {
        name: "gates",
        routes: OpenApiRouter::new()
            .routes(routes!(list_services, tas_services))
            .routes(routes!(get_v0, create_v0, update_v0, delete_v0))
            .routes(routes!(get_env_v0, set_state_v0))
            .routes(routes!(history_v0))
            .routes(routes!(list_gates, tas_gates))
            .routes(routes!(
                get_grouped,
                create_grouped,
                update_grouped,
                delete_grouped
            ))
            .routes(routes!(get_env_grouped, set_state_grouped))
            .routes(routes!(history_grouped))
            .routes(routes!(get_ticket, release_ticket))
            .routes(routes!(list_holidays, set_holidays))
            // gatekeeper clients also send the trailing slash
            .route("/api/holidays/", get(list_holidays).post(set_holidays))
            .with_state(state.clone()),
        on_scrape: None,
        ui: Some(ui::section(&state, ctx.redis.clone())),
    })
}

impl GatesApi {
    fn new(ctx: &Ctx) -> anyhow::Result<Self> {
        Ok(Self {
            gates: GateStore::new(
                ctx.redis.clone(),
                &ctx.keys,
                GateSettings::from(&ctx.config.families.gates),
            ),
        })
    }
}

// ---------------------------------------------------------------------------
// Validation helpers

fn check_name(name: &str, location: &str) -> AppResult<()> {
    match name_problem(name) {
        Some(p) => Err(AppError::new(Code::NameInvalid, p).at(location)),
        None => Ok(()),
    }
}

fn check_path(group: Option<&str>, service: &str, env: Option<&str>) -> AppResult<()> {
    if let Some(g) = group {
        check_name(g, "path.group")?;
    }
    check_name(service, "path.service")?;
    if let Some(e) = env {
        check_name(e, "path.environment")?;
    }
    Ok(())
}

fn check_envs(envs: &[String], location: &str) -> AppResult<()> {
    if envs.is_empty() {
        return Err(AppError::invalid("Invalid environments.").at(location));
    }
    if envs.len() > ENVS_MAX {
        return Err(AppError::invalid(format!(
            "Invalid environments. At most {ENVS_MAX} environments per service."
        ))
        .at(location));
    }
    for (i, e) in envs.iter().enumerate() {
        if let Some(p) = name_problem(e) {
            return Err(AppError::invalid(format!("Invalid environments. {p}"))
                .at(format!("{location}[{i}]")));
        }
        if envs[..i].contains(e) {
            return Err(
                AppError::invalid(format!("Invalid environments. {e:?} is listed twice."))
                    .at(format!("{location}[{i}]")),
            );
        }
    }
    Ok(())
}

fn parse_state(state: &str, location: &str) -> AppResult<&'static str> {
    match state {
        "open" => Ok("open"),
        // The seed's prose says "close"; its examples say "closed".
        "closed" | "close" => Ok("closed"),
        _ => Err(AppError::new(Code::StateInvalid, "state must be open or closed").at(location)),
    }
}

fn check_message(m: &str, location: &str) -> AppResult<()> {
    if m.chars().count() > MESSAGE_MAX {
        return Err(
            AppError::invalid(format!("message is longer than {MESSAGE_MAX} characters"))
                .at(location),
        );
    }
    Ok(())
}

fn ok() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

// ---------------------------------------------------------------------------
// Services

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateV0 {
    #[serde(default)]
    group: Option<String>,
    environments: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateGrouped {
    environments: Vec<String>,
}

/// Create a service (gatekeeper v0 form): `{"group", "environments": [...]}`.
#[utoipa::path(post, path = "/api/services/{service}", tag = "gates",
    params(("service" = String, Path, description = "Service name: letters, digits, '-', '_'")),
    request_body(content = Object, description = r#"{"group": "team12", "environments": ["testing", "live"]}"#),
    responses((status = 200, description = r#"{"status": "ok"}"#),
              (status = 400, description = "Invalid name, group or environments, or the name exists")))]
pub(crate) async fn create_v0(
    State(st): State<GatesApi>,
    Extension(actor): Extension<Actor>,
    Path(service): Path<String>,
    JsonBody(body): JsonBody<CreateV0>,
) -> AppResult<Json<Value>> {
    check_path(None, &service, None)?;
    let group = body
        .group
        .filter(|g| !g.is_empty())
        .ok_or_else(|| AppError::invalid("Invalid group.").at("body.group"))?;
    check_name(&group, "body.group")?;
    check_envs(&body.environments, "body.environments")?;
    st.gates
        .create_service(&service, &group, &body.environments, &actor.0)
        .await?;
    Ok(ok())
}

/// Create a service in a group: `{"environments": [...]}`; answers the new service.
#[utoipa::path(post, path = "/api/gates/{group}/{service}", tag = "gates",
    params(("group" = String, Path), ("service" = String, Path)),
    request_body(content = Object, description = r#"{"environments": ["testing", "live"]}"#),
    responses((status = 200, description = "The new service with its gates"),
              (status = 400, description = "Invalid name or environments, or the name exists")))]
pub(crate) async fn create_grouped(
    State(st): State<GatesApi>,
    Extension(actor): Extension<Actor>,
    Path((group, service)): Path<(String, String)>,
    JsonBody(body): JsonBody<CreateGrouped>,
) -> AppResult<Json<Value>> {
    check_path(Some(&group), &service, None)?;
    check_envs(&body.environments, "body.environments")?;
    st.gates
        .create_service(&service, &group, &body.environments, &actor.0)
        .await?;
    show(&st, Some(&group), &service).await
}

async fn show(st: &GatesApi, group: Option<&str>, service: &str) -> AppResult<Json<Value>> {
    let view = st.gates.get_service(service, group).await?;
    Ok(Json(
        serde_json::to_value(view).map_err(AppError::internal)?,
    ))
}

/// A service with all its gates, queues expanded.
#[utoipa::path(get, path = "/api/services/{service}", tag = "gates",
    params(("service" = String, Path)),
    responses((status = 200, description = "name, group, environments{env: {state, manual_state, closed_by, message, message_timestamp, state_timestamp, queue}}"),
              (status = 404, description = "Gate not found")))]
pub(crate) async fn get_v0(
    State(st): State<GatesApi>,
    Path(service): Path<String>,
) -> AppResult<Json<Value>> {
    check_path(None, &service, None)?;
    show(&st, None, &service).await
}

#[utoipa::path(get, path = "/api/gates/{group}/{service}", tag = "gates",
    params(("group" = String, Path), ("service" = String, Path)),
    responses((status = 200, description = "The service with its gates"), (status = 404, description = "Gate not found")))]
pub(crate) async fn get_grouped(
    State(st): State<GatesApi>,
    Path((group, service)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    check_path(Some(&group), &service, None)?;
    show(&st, Some(&group), &service).await
}

async fn show_env(
    st: &GatesApi,
    group: Option<&str>,
    service: &str,
    env: &str,
) -> AppResult<Json<Value>> {
    let mut view = st.gates.get_service(service, group).await?;
    match view.environments.remove(env) {
        Some(g) => Ok(Json(serde_json::to_value(g).map_err(AppError::internal)?)),
        None => Err(
            AppError::new(Code::EnvironmentNotFound, "Environment not found")
                .at(format!("service {service}, environment {env}")),
        ),
    }
}

/// One gate.
#[utoipa::path(get, path = "/api/services/{service}/{env}", tag = "gates",
    params(("service" = String, Path), ("env" = String, Path)),
    responses((status = 200, description = "The gate"), (status = 404, description = "Gate or environment not found")))]
pub(crate) async fn get_env_v0(
    State(st): State<GatesApi>,
    Path((service, env)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    check_path(None, &service, Some(&env))?;
    show_env(&st, None, &service, &env).await
}

#[utoipa::path(get, path = "/api/gates/{group}/{service}/{env}", tag = "gates",
    params(("group" = String, Path), ("service" = String, Path), ("env" = String, Path)),
    responses((status = 200, description = "The gate"), (status = 404, description = "Gate or environment not found")))]
pub(crate) async fn get_env_grouped(
    State(st): State<GatesApi>,
    Path((group, service, env)): Path<(String, String, String)>,
) -> AppResult<Json<Value>> {
    check_path(Some(&group), &service, Some(&env))?;
    show_env(&st, Some(&group), &service, &env).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateBody {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

async fn set_state(
    st: &GatesApi,
    actor: &Actor,
    group: Option<&str>,
    service: &str,
    env: &str,
    body: StateBody,
) -> AppResult<()> {
    check_path(group, service, Some(env))?;
    if body.state.is_none() && body.message.is_none() {
        return Err(AppError::invalid("give state and/or message").at("body"));
    }
    let state = body
        .state
        .as_deref()
        .map(|s| parse_state(s, "body.state"))
        .transpose()?;
    if let Some(m) = &body.message {
        check_message(m, "body.message")?;
    }
    st.gates
        .set_state(
            service,
            group,
            env,
            state,
            body.message.as_deref(),
            &actor.0,
        )
        .await?;
    Ok(())
}

/// Open or close one gate and/or set its message: `{"state": "open"|"closed", "message": "…"}`.
#[utoipa::path(put, path = "/api/services/{service}/{env}", tag = "gates",
    params(("service" = String, Path), ("env" = String, Path)),
    request_body(content = Object, description = r#"{"state": "closed", "message": "testing -Jens"}"#),
    responses((status = 200, description = r#"{"status": "ok"}"#),
              (status = 400, description = "state must be open or closed"),
              (status = 404, description = "Gate or environment not found")))]
pub(crate) async fn set_state_v0(
    State(st): State<GatesApi>,
    Extension(actor): Extension<Actor>,
    Path((service, env)): Path<(String, String)>,
    JsonBody(body): JsonBody<StateBody>,
) -> AppResult<Json<Value>> {
    set_state(&st, &actor, None, &service, &env, body).await?;
    Ok(ok())
}

/// Same as the v0 form; answers the whole service.
#[utoipa::path(put, path = "/api/gates/{group}/{service}/{env}", tag = "gates",
    params(("group" = String, Path), ("service" = String, Path), ("env" = String, Path)),
    request_body(content = Object, description = r#"{"state": "closed", "message": "…"}"#),
    responses((status = 200, description = "The service"), (status = 400, description = "state must be open or closed"),
              (status = 404, description = "Gate or environment not found")))]
pub(crate) async fn set_state_grouped(
    State(st): State<GatesApi>,
    Extension(actor): Extension<Actor>,
    Path((group, service, env)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<StateBody>,
) -> AppResult<Json<Value>> {
    set_state(&st, &actor, Some(&group), &service, &env, body).await?;
    show(&st, Some(&group), &service).await
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum EnvSpec {
    List(Vec<String>),
    Map(BTreeMap<String, StateBody>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    environments: Option<EnvSpec>,
}

async fn update(
    st: &GatesApi,
    actor: &Actor,
    group: Option<&str>,
    service: &str,
    body: UpdateBody,
) -> AppResult<Json<Value>> {
    check_path(group, service, None)?;
    let mut upd = ServiceUpdate::default();
    if let Some(n) = body.name {
        check_name(&n, "body.name")?;
        upd.name = Some(n);
    }
    if let Some(g) = body.group {
        check_name(&g, "body.group")?;
        upd.group = Some(g);
    }
    match body.environments {
        Some(EnvSpec::List(envs)) => {
            check_envs(&envs, "body.environments")?;
            upd.environments = Some(envs);
        }
        Some(EnvSpec::Map(map)) => {
            for (env, s) in map {
                let at = format!("body.environments.{env}");
                check_name(&env, &at)?;
                let state = s
                    .state
                    .as_deref()
                    .map(|x| parse_state(x, &format!("{at}.state")))
                    .transpose()?;
                if let Some(m) = &s.message {
                    check_message(m, &format!("{at}.message"))?;
                }
                upd.changes
                    .insert(env, (state.map(str::to_owned), s.message));
            }
        }
        None => {}
    }
    let name = st
        .gates
        .update_service(service, group, &upd, &actor.0)
        .await?;
    show(st, None, &name).await
}

/// Update a service in one step: `{"name"?, "group"?, "environments"?: [...] | {env: {state?, message?}}}`.
/// A list replaces the environments (kept gates keep state and queue); a map changes states/messages.
#[utoipa::path(put, path = "/api/services/{service}", tag = "gates",
    params(("service" = String, Path)),
    request_body(content = Object, description = r#"{"name": "new-name", "environments": ["dev", "live"]}"#),
    responses((status = 200, description = "The updated service"), (status = 400, description = "Invalid input or new name taken"),
              (status = 404, description = "Gate or environment not found")))]
pub(crate) async fn update_v0(
    State(st): State<GatesApi>,
    Extension(actor): Extension<Actor>,
    Path(service): Path<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> AppResult<Json<Value>> {
    update(&st, &actor, None, &service, body).await
}

#[utoipa::path(put, path = "/api/gates/{group}/{service}", tag = "gates",
    params(("group" = String, Path), ("service" = String, Path)),
    request_body(content = Object, description = "as PUT /api/services/{service}"),
    responses((status = 200, description = "The updated service"), (status = 400, description = "Invalid input"),
              (status = 404, description = "Gate or environment not found")))]
pub(crate) async fn update_grouped(
    State(st): State<GatesApi>,
    Extension(actor): Extension<Actor>,
    Path((group, service)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> AppResult<Json<Value>> {
    update(&st, &actor, Some(&group), &service, body).await
}

/// Delete a service and its gates; tickets lose those gates.
#[utoipa::path(delete, path = "/api/services/{service}", tag = "gates",
    params(("service" = String, Path)),
    responses((status = 200, description = r#"{"status": "ok"}"#), (status = 404, description = "Gate not found")))]
pub(crate) async fn delete_v0(
    State(st): State<GatesApi>,
    Path(service): Path<String>,
) -> AppResult<Json<Value>> {
    check_path(None, &service, None)?;
    st.gates.delete_service(&service, None).await?;
    Ok(ok())
}

#[utoipa::path(delete, path = "/api/gates/{group}/{service}", tag = "gates",
    params(("group" = String, Path), ("service" = String, Path)),
    responses((status = 200, description = r#"{"status": "ok"}"#), (status = 404, description = "Gate not found")))]
pub(crate) async fn delete_grouped(
    State(st): State<GatesApi>,
    Path((group, service)): Path<(String, String)>,
) -> AppResult<Json<Value>> {
    check_path(Some(&group), &service, None)?;
    st.gates.delete_service(&service, Some(&group)).await?;
    Ok(ok())
}

/// Every service.
#[utoipa::path(get, path = "/api/services", tag = "gates",
    responses((status = 200, description = r#"{"services": [{name, group, environments}]}"#)))]
pub(crate) async fn list_services(State(st): State<GatesApi>) -> AppResult<Json<Value>> {
    let all = st.gates.list_services().await?;
    Ok(Json(json!({ "services": all })))
}

/// Every service, by group.
#[utoipa::path(get, path = "/api/gates", tag = "gates",
    responses((status = 200, description = r#"{"groups": {group: [{name, group, environments}]}}"#)))]
pub(crate) async fn list_gates(State(st): State<GatesApi>) -> AppResult<Json<Value>> {
    let mut groups: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for s in st.gates.list_services().await? {
        let v = serde_json::to_value(&s).map_err(AppError::internal)?;
        groups.entry(s.group).or_default().push(v);
    }
    Ok(Json(json!({ "groups": groups })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryQuery {
    #[serde(default)]
    limit: Option<usize>,
}

async fn history(
    st: &GatesApi,
    group: Option<&str>,
    service: &str,
    env: &str,
    q: HistoryQuery,
) -> AppResult<Json<Value>> {
    check_path(group, service, Some(env))?;
    let cap = st.gates.settings().history_len as usize;
    let limit = q.limit.unwrap_or(cap);
    if limit == 0 || limit > cap {
        return Err(AppError::new(
            Code::LimitInvalid,
            format!("limit must be between 1 and {cap}"),
        )
        .at("query.limit"));
    }
    let entries = st.gates.history(service, group, env, limit).await?;
    Ok(Json(
        json!({"service": service, "environment": env, "history": entries}),
    ))
}

/// Changes of one gate, newest first (bounded by --gate-history-len).
#[utoipa::path(get, path = "/api/services/{service}/{env}/history", tag = "gates",
    params(("service" = String, Path), ("env" = String, Path), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = r#"{"history": [{at, event, actor, ...}]}"#), (status = 404, description = "Gate or environment not found")))]
pub(crate) async fn history_v0(
    State(st): State<GatesApi>,
    Path((service, env)): Path<(String, String)>,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Json<Value>> {
    history(&st, None, &service, &env, query(q)?).await
}

#[utoipa::path(get, path = "/api/gates/{group}/{service}/{env}/history", tag = "gates",
    params(("group" = String, Path), ("service" = String, Path), ("env" = String, Path), ("limit" = Option<usize>, Query)),
    responses((status = 200, description = "History, newest first"), (status = 404, description = "Gate or environment not found")))]
pub(crate) async fn history_grouped(
    State(st): State<GatesApi>,
    Path((group, service, env)): Path<(String, String, String)>,
    q: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Json<Value>> {
    history(&st, Some(&group), &service, &env, query(q)?).await
}

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> AppResult<T> {
    q.map(|Query(v)| v)
        .map_err(|e| AppError::new(Code::QueryInvalid, e.body_text()).at("query"))
}

// ---------------------------------------------------------------------------
// Test-and-set and tickets

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TasV0 {
    services: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    ticket: Option<String>,
    #[serde(default)]
    link: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TasGrouped {
    gates: BTreeMap<String, BTreeMap<String, OneOrMany>>,
    #[serde(default)]
    ticket: Option<String>,
    #[serde(default)]
    link: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TasQuery {
    #[serde(default)]
    queue: Option<String>,
}

fn queue_flag(q: TasQuery) -> AppResult<bool> {
    match q.queue.as_deref() {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(AppError::new(
            Code::QueryInvalid,
            format!("queue must be true or false, not {other:?}"),
        )
        .at("query.queue")),
    }
}

/// A ticket id: one the server chose (a UUID) or, on the first call, one the
/// client chose so that a retry of a lost answer finds the same ticket.
fn check_ticket(ticket: &Option<String>) -> AppResult<()> {
    if let Some(t) = ticket
        && (t.is_empty()
            || t.len() > NAME_MAX
            || !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        return Err(AppError::invalid(format!(
            "ticket must be 1–{NAME_MAX} letters, digits, '-' or '_'"
        ))
        .at("body.ticket"));
    }
    Ok(())
}

fn check_link(link: &Option<String>) -> AppResult<()> {
    if link.as_ref().is_some_and(|l| l.len() > LINK_MAX) {
        return Err(
            AppError::invalid(format!("link is longer than {LINK_MAX} bytes")).at("body.link"),
        );
    }
    Ok(())
}

/// The gates of one service in a test-and-set body; `at` names it.
fn push_gates(
    gates: &mut Vec<GateRef>,
    group: Option<&str>,
    service: String,
    envs: OneOrMany,
    at: &str,
) -> AppResult<()> {
    check_name(&service, at)?;
    let envs = envs.into_vec();
    if envs.is_empty() {
        return Err(AppError::invalid("Invalid environments.").at(at));
    }
    for (i, env) in envs.into_iter().enumerate() {
        check_name(&env, &format!("{at}[{i}]"))?;
        gates.push(GateRef {
            group: group.map(str::to_owned),
            service: service.clone(),
            env,
        });
    }
    Ok(())
}

async fn tas(st: &GatesApi, actor: &Actor, req: TasRequest) -> AppResult<Json<Value>> {
    if req.gates.is_empty() {
        return Err(AppError::invalid("Could not find gates").at("body"));
    }
    if req.gates.len() > TAS_MAX_GATES {
        return Err(
            AppError::invalid(format!("at most {TAS_MAX_GATES} gates per request")).at("body"),
        );
    }
    let out = st.gates.test_and_set(&req, &actor.0).await?;
    let outcome = match out.status {
        TasStatus::Ok => "ok",
        TasStatus::Queued => "queued",
        TasStatus::Denied => "denied",
    };
    metrics::counter!("switchyard_gate_test_and_set_total", "outcome" => outcome).increment(1);
    let mut body = json!({"status": outcome, "position": out.position});
    match out.ticket {
        Some(t) => body["ticket"] = serde_json::to_value(t).map_err(AppError::internal)?,
        None => body["closed"] = out.closed.into(),
    }
    Ok(Json(body))
}

/// Test-and-set over several gates: `{"services": {service: [envs] | env}, "ticket"?, "link"?}`.
/// Granted only when no gate is closed and the ticket heads every queue; with
/// `?queue=true` a blocked request is queued instead of denied.
#[utoipa::path(put, path = "/api/services", tag = "gates",
    params(("queue" = Option<bool>, Query, description = "queue when blocked instead of being denied")),
    request_body(content = Object, description = r#"{"services": {"service12": ["live"], "pipeline": "meta"}, "ticket": "<id to re-send, or a new client-chosen id>"}"#),
    responses((status = 200, description = r#"{"status": "ok"|"queued", "ticket": {id, status, expiration_date, updated, fence, …}, "position": n} or {"status": "denied"}"#),
              (status = 404, description = "Gate, environment or ticket not found")))]
pub(crate) async fn tas_services(
    State(st): State<GatesApi>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<TasQuery>, axum::extract::rejection::QueryRejection>,
    JsonBody(body): JsonBody<TasV0>,
) -> AppResult<Json<Value>> {
    tas_checked(&st, &actor, q, body.ticket, body.link, |gates| {
        for (service, envs) in body.services {
            let at = format!("body.services.{service}");
            push_gates(gates, None, service, envs, &at)?;
        }
        Ok(())
    })
    .await
}

/// Test-and-set, group-qualified: `{"gates": {group: {service: [envs] | env}}, "ticket"?, "link"?}`.
#[utoipa::path(put, path = "/api/gates", tag = "gates",
    params(("queue" = Option<bool>, Query, description = "queue when blocked instead of being denied")),
    request_body(content = Object, description = r#"{"gates": {"team12": {"service12": ["live"]}}}"#),
    responses((status = 200, description = "ok | queued | denied, as PUT /api/services"),
              (status = 404, description = "Gate, environment or ticket not found")))]
pub(crate) async fn tas_gates(
    State(st): State<GatesApi>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<TasQuery>, axum::extract::rejection::QueryRejection>,
    JsonBody(body): JsonBody<TasGrouped>,
) -> AppResult<Json<Value>> {
    tas_checked(&st, &actor, q, body.ticket, body.link, |gates| {
        for (group, services) in body.gates {
            check_name(&group, &format!("body.gates.{group}"))?;
            for (service, envs) in services {
                let at = format!("body.gates.{group}.{service}");
                push_gates(gates, Some(&group), service, envs, &at)?;
            }
        }
        Ok(())
    })
    .await
}

/// What both test-and-set shapes share: the query flag, ticket and link
/// checks (in that order), then the gates `collect` gathers.
async fn tas_checked(
    st: &GatesApi,
    actor: &Actor,
    q: Result<Query<TasQuery>, axum::extract::rejection::QueryRejection>,
    ticket: Option<String>,
    link: Option<String>,
    collect: impl FnOnce(&mut Vec<GateRef>) -> AppResult<()>,
) -> AppResult<Json<Value>> {
    let queue = queue_flag(query(q)?)?;
    check_ticket(&ticket)?;
    check_link(&link)?;
    let mut gates = Vec::new();
    collect(&mut gates)?;
    tas(
        st,
        actor,
        TasRequest {
            gates,
            ticket,
            queue,
            link,
        },
    )
    .await
}

/// One live ticket.
#[utoipa::path(get, path = "/api/tickets/{id}", tag = "gates",
    params(("id" = String, Path)),
    responses((status = 200, description = "The ticket"), (status = 404, description = "Ticket does not exist")))]
pub(crate) async fn get_ticket(
    State(st): State<GatesApi>,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let t = st.gates.get_ticket(&id).await?;
    Ok(Json(json!({"status": "ok", "ticket": t})))
}

/// Release a ticket; always 200, also for unknown tickets (gatekeeper behaviour).
#[utoipa::path(delete, path = "/api/tickets/{id}", tag = "gates",
    params(("id" = String, Path)),
    responses((status = 200, description = r#"{"status": "ok", "released": bool}"#)))]
pub(crate) async fn release_ticket(
    State(st): State<GatesApi>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    if id.len() > NAME_MAX {
        return Ok(Json(json!({"status": "ok", "released": false})));
    }
    let released = st.gates.release(&id, "released", &actor.0).await?;
    Ok(Json(json!({"status": "ok", "released": released})))
}

// ---------------------------------------------------------------------------
// Holidays

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HolidaysBody {
    holidays: Vec<HolidayIn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HolidayIn {
    date: String,
    #[serde(default)]
    reason: String,
    environments: Vec<String>,
    /// Accepted and ignored: gatekeeper answers `_id` on GET, clients send it back.
    #[serde(default, rename = "_id")]
    _id: Option<Value>,
    #[serde(default)]
    #[serde(rename = "id")]
    _id2: Option<Value>,
}

/// Replace all holidays: `{"holidays": [{"date": "YYYY-MM-DD", "reason", "environments": [...]}]}`.
#[utoipa::path(post, path = "/api/holidays", tag = "gates",
    request_body(content = Object, description = r#"{"holidays": [{"date": "2026-12-24", "reason": "Christmas", "environments": ["live"]}]}"#),
    responses((status = 200, description = r#"{"status": "ok"}"#), (status = 400, description = "Invalid holiday")))]
pub(crate) async fn set_holidays(
    State(st): State<GatesApi>,
    JsonBody(body): JsonBody<HolidaysBody>,
) -> AppResult<Json<Value>> {
    if body.holidays.len() > HOLIDAYS_MAX {
        return Err(
            AppError::invalid(format!("at most {HOLIDAYS_MAX} holidays")).at("body.holidays"),
        );
    }
    let mut out = Vec::with_capacity(body.holidays.len());
    for (i, h) in body.holidays.into_iter().enumerate() {
        let at = format!("body.holidays[{i}]");
        let date = NaiveDate::parse_from_str(&h.date, "%Y-%m-%d")
            .map_err(|_| AppError::invalid("date must be YYYY-MM-DD").at(format!("{at}.date")))?;
        for (j, e) in h.environments.iter().enumerate() {
            check_name(e, &format!("{at}.environments[{j}]"))?;
        }
        check_message(&h.reason, &format!("{at}.reason"))?;
        out.push(Holiday {
            date: date.format("%Y-%m-%d").to_string(),
            reason: h.reason,
            environments: h.environments,
        });
    }
    st.gates.set_holidays(&out).await?;
    Ok(ok())
}

/// Holidays from today (UTC) on, by date.
#[utoipa::path(get, path = "/api/holidays", tag = "gates",
    responses((status = 200, description = r#"{"holidays": [{date, reason, environments}]}"#)))]
pub(crate) async fn list_holidays(State(st): State<GatesApi>) -> AppResult<Json<Value>> {
    let list = st.gates.list_holidays(Utc::now().date_naive()).await?;
    Ok(Json(json!({ "holidays": list })))
}

impl From<GateError> for AppError {
    fn from(e: GateError) -> Self {
        let reason = e.to_string();
        match e {
            GateError::ServiceNotFound { service } => {
                AppError::new(Code::GateNotFound, reason).at(format!("service {service}"))
            }
            GateError::EnvironmentNotFound {
                service,
                environment,
            } => AppError::new(Code::EnvironmentNotFound, reason)
                .at(format!("service {service}, environment {environment}")),
            GateError::AlreadyExists { service } => {
                AppError::new(Code::GateExists, reason).at(format!("service {service}"))
            }
            GateError::TicketNotFound => AppError::new(Code::TicketNotFound, reason),
            GateError::TicketMismatch { gates } => AppError::new(
                Code::TicketMismatch,
                format!("{reason}: {}", gates.join(", ")),
            ),
            GateError::Contended => AppError::new(Code::Contended, reason),
            GateError::Store(e) => AppError::store(&e),
        }
    }
}
