//! `/v1/nets`: coloured Petri nets. Definitions are validated and compiled
//! before anything is stored; every token arrival is one Lua call that fires
//! what it enables (see `lua/nets/fire.lua`). Answers are the typed views of
//! `switchyard_shared::families::nets::views`, so the OpenAPI document shows them.
//! The console's pages are in [`ui`].

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;

use switchyard_shared::families::nets::{
    Compiled, ExplainView, NetCreated, NetError, NetPage, NetStore, NetView, PlacesView,
    PutOutcome, compile_with, valid_id,
};
use switchyard_shared::platform::outbox::Policies;

use crate::error::{AppError, AppResult, Code};
use crate::extract::{JsonBody, parse};
use crate::families::Family;
use crate::state::Ctx;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod ui;

/// What the nets endpoints share.
#[derive(Clone)]
pub struct NetsApi {
    pub nets: NetStore,
    pub policies: Arc<Policies>,
    pub public_url: String,
    pub net_callback_policy: String,
    /// `--allow-link-local`: callback URLs may name forbidden addresses.
    pub allow_link_local: bool,
}

/// The nets endpoints.
pub fn family(ctx: &Ctx) -> anyhow::Result<Family> {
    let state = NetsApi::new(ctx)?;
    Ok(Family {
        name: "nets",
        routes: OpenApiRouter::new()
            .routes(routes!(list, create))
            .routes(routes!(show, create_with_key, patch, delete))
            .routes(routes!(places))
            .routes(routes!(explain))
            .routes(routes!(dot))
            .routes(routes!(put_token, post_token))
            .routes(routes!(put_token_path))
            .with_state(state.clone()),
        on_scrape: None,
        ui: Some(ui::section(&state, ctx.redis.clone())),
    })
}

impl NetsApi {
    fn new(ctx: &Ctx) -> anyhow::Result<Self> {
        let opts = &ctx.config.families.nets;
        anyhow::ensure!(
            ctx.policies.get(&opts.net_callback_policy).is_some(),
            "--net-callback-policy {:?} is not a defined retry policy",
            opts.net_callback_policy
        );
        Ok(Self {
            nets: NetStore::new(
                ctx.redis.clone(),
                ctx.keys.clone(),
                opts.net_fire_bound,
                opts.net_retention,
            ),
            policies: ctx.policies.clone(),
            public_url: ctx.config.outbox.public_url.clone(),
            net_callback_policy: opts.net_callback_policy.clone(),
            allow_link_local: ctx.config.outbox.allow_link_local,
        })
    }
}

impl From<NetError> for AppError {
    fn from(e: NetError) -> Self {
        let msg = e.to_string();
        match e {
            NetError::NotFound => AppError::new(Code::NetNotFound, msg),
            NetError::PlaceNotFound => AppError::new(Code::PlaceNotFound, msg).at("path.place"),
            NetError::ColorNotFound(_) => AppError::new(Code::ColorUnknown, msg).at("query.color"),
            NetError::GroupMismatch(_) => {
                AppError::new(Code::ColorGroupMismatch, msg).at("query.color_group")
            }
            NetError::ExistsDifferent => AppError::new(Code::NetExists, msg),
            NetError::Failed(_) => AppError::new(Code::NetFailed, msg),
            NetError::Store(e) => AppError::store(&e),
        }
    }
}

fn check_id(id: &str) -> AppResult<()> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(AppError::new(
            Code::NetKeyInvalid,
            "net keys are 1–100 letters, digits, '-' or '_'",
        )
        .at("path.id"))
    }
}

fn compile_body(v: &Value, allow_link_local: bool) -> AppResult<(Compiled, bool)> {
    let compiled = compile_with(v, allow_link_local).map_err(|e| {
        let at = if e.location.starts_with("body") {
            e.location.clone()
        } else {
            format!("body.{}", e.location)
        };
        AppError::new(Code::NetInvalid, format!("{}: {}", e.location, e.message)).at(at)
    })?;
    let active = match v.get("active") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(
                AppError::new(Code::NetInvalid, "active must be true or false").at("body.active"),
            );
        }
    };
    Ok((compiled, active))
}

async fn store_net(st: &NetsApi, id: &str, v: &Value) -> AppResult<(bool, NetCreated)> {
    let (compiled, active) = compile_body(v, st.allow_link_local)?;
    let created = st
        .nets
        .create(
            id,
            &compiled,
            &st.public_url,
            active,
            &st.net_callback_policy,
        )
        .await?;
    Ok((created, NetCreated::new(&st.public_url, id, &compiled)))
}

fn location(id: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("/v1/nets/{id}")).unwrap_or(HeaderValue::from_static("/v1/nets"))
}

/// Create a net with a server-chosen key. Validated first: 400 names the offending element.
#[utoipa::path(post, path = "/v1/nets", tag = "nets",
    request_body(content = Object, description = r#"{"subnets": {...}, "transitions": [{"inputs": [...], "outputs": [...], "action": {...}}]} or {"initialMarking": [...], "transitions": [...]}"#),
    responses((status = 201, description = "Created; Location", body = NetCreated), (status = 400, description = "Invalid net")))]
pub(crate) async fn create(
    State(st): State<NetsApi>,
    JsonBody(v): JsonBody<Value>,
) -> AppResult<Response> {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let (_, body) = store_net(&st, &id, &v).await?;
    metrics::counter!("switchyard_nets_created_total").increment(1);
    let mut h = HeaderMap::new();
    h.insert(header::LOCATION, location(&id));
    Ok((StatusCode::CREATED, h, Json(body)).into_response())
}

/// Create a net under a client-chosen key; 200 when the same net exists, 409 when another does.
#[utoipa::path(put, path = "/v1/nets/{id}", tag = "nets", params(("id" = String, Path)),
    request_body(content = Object, description = "as POST /v1/nets"),
    responses((status = 201, description = "Created", body = NetCreated), (status = 200, description = "The same net exists", body = NetCreated),
              (status = 409, description = "Another net has this key"), (status = 400, description = "Invalid net")))]
pub(crate) async fn create_with_key(
    State(st): State<NetsApi>,
    Path(id): Path<String>,
    JsonBody(v): JsonBody<Value>,
) -> AppResult<Response> {
    check_id(&id)?;
    let (created, body) = store_net(&st, &id, &v).await?;
    let mut h = HeaderMap::new();
    h.insert(header::LOCATION, location(&id));
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, h, Json(body)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Page {
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    cursor: Option<String>,
}

/// Nets, newest first, paged.
#[utoipa::path(get, path = "/v1/nets", tag = "nets",
    params(("limit" = Option<usize>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "A page of nets", body = NetPage)))]
pub(crate) async fn list(
    State(st): State<NetsApi>,
    q: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Json<NetPage>> {
    let Query(q) = q.map_err(|e| AppError::new(Code::QueryInvalid, e.body_text()).at("query"))?;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > 500 {
        return Err(AppError::new(Code::QueryInvalid, "limit must be 1..=500").at("query.limit"));
    }
    let cursor = match q.cursor {
        None => None,
        Some(c) => Some(
            switchyard_shared::platform::paging::parse_cursor(&c).ok_or_else(|| {
                AppError::new(Code::QueryInvalid, "cursor is not one this API gave")
                    .at("query.cursor")
            })?,
        ),
    };
    let (nets, next) = st.nets.list(limit, cursor).await?;
    Ok(Json(NetPage {
        nets,
        next_cursor: next,
    }))
}

/// Topology and status.
#[utoipa::path(get, path = "/v1/nets/{id}", tag = "nets", params(("id" = String, Path)),
    responses((status = 200, description = "status, active, failure, counters, places, transitions", body = NetView), (status = 404, description = "net not found")))]
pub(crate) async fn show(
    State(st): State<NetsApi>,
    Path(id): Path<String>,
) -> AppResult<Json<NetView>> {
    check_id(&id)?;
    Ok(Json(st.nets.view(&id).await?))
}

/// The marking: per place, the tokens by colour with their data.
#[utoipa::path(get, path = "/v1/nets/{id}/places", tag = "nets", params(("id" = String, Path)),
    responses((status = 200, description = "Per place name: its index and tokens by colour", body = PlacesView), (status = 404, description = "net not found")))]
pub(crate) async fn places(
    State(st): State<NetsApi>,
    Path(id): Path<String>,
) -> AppResult<Json<PlacesView>> {
    check_id(&id)?;
    Ok(Json(st.nets.places(&id).await?))
}

/// Why is it stuck? Enabled transitions, and what the others wait for.
#[utoipa::path(get, path = "/v1/nets/{id}/explain", tag = "nets", params(("id" = String, Path)),
    responses((status = 200, description = "Per transition: enabled colours, waiting colours with missing input places, barrier progress", body = ExplainView), (status = 404, description = "net not found")))]
pub(crate) async fn explain(
    State(st): State<NetsApi>,
    Path(id): Path<String>,
) -> AppResult<Json<ExplainView>> {
    check_id(&id)?;
    Ok(Json(st.nets.explain(&id).await?))
}

/// Graphviz DOT of the net with its marking.
#[utoipa::path(get, path = "/v1/nets/{id}/dot", tag = "nets", params(("id" = String, Path)),
    responses((status = 200, description = "text/vnd.graphviz", content_type = "text/vnd.graphviz"), (status = 404, description = "net not found")))]
pub(crate) async fn dot(State(st): State<NetsApi>, Path(id): Path<String>) -> AppResult<Response> {
    check_id(&id)?;
    let text = st.nets.dot(&id).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/vnd.graphviz; charset=utf-8")],
        text,
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Active {
    active: bool,
}

/// Pause (`{"active": false}`) or resume (`{"active": true}`; fires what is enabled).
#[utoipa::path(patch, path = "/v1/nets/{id}", tag = "nets", params(("id" = String, Path)),
    request_body(content = Object, description = r#"{"active": false}"#),
    responses((status = 204, description = "Done"), (status = 404, description = "net not found")))]
pub(crate) async fn patch(
    State(st): State<NetsApi>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<Active>,
) -> AppResult<StatusCode> {
    check_id(&id)?;
    st.nets.set_active(&id, b.active).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delete the net and every key; its pending callbacks are cancelled when they come up.
#[utoipa::path(delete, path = "/v1/nets/{id}", tag = "nets", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "net not found")))]
pub(crate) async fn delete(
    State(st): State<NetsApi>,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    check_id(&id)?;
    st.nets.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenQuery {
    #[serde(default)]
    color: Option<String>,
    #[serde(default)]
    color_group: Option<String>,
}

/// The token's data: the body, or `{}` when empty; must be JSON.
fn token_data(body: &Bytes) -> AppResult<String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok("{}".into());
    }
    let v: Value = parse(body)?;
    serde_json::to_string(&v).map_err(AppError::internal)
}

async fn place_index(st: &NetsApi, id: &str, place: &str) -> AppResult<usize> {
    let (_, c) = st.nets.load(id).await?;
    c.place_index(place).ok_or_else(|| {
        AppError::new(
            Code::PlaceNotFound,
            format!("net {id} has no place {place:?}"),
        )
        .at("path.place")
    })
}

fn int(v: &str, at: &str) -> AppResult<i64> {
    v.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| AppError::new(Code::QueryInvalid, "must be a non-negative integer").at(at))
}

async fn put_common(
    st: &NetsApi,
    id: &str,
    place: &str,
    color: i64,
    group: Option<i64>,
    body: &Bytes,
) -> AppResult<Response> {
    check_id(id)?;
    let data = token_data(body)?;
    let p = place_index(st, id, place).await?;
    let out = st.nets.put(id, p, color, group, &data).await?;
    let status = if out.duplicate || out.already_present {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(out)).into_response())
}

/// Put a token of `color` into a place (by name or index); the body is its data.
/// Repeating the same put is idempotent (200).
#[utoipa::path(put, path = "/v1/nets/{id}/places/{place}/tokens", tag = "nets",
    params(("id" = String, Path), ("place" = String, Path, description = "name or index"),
           ("color" = i64, Query), ("color_group" = Option<i64>, Query)),
    request_body(content = Object, description = "token data, e.g. {\"color_group_size\": 3}"),
    responses((status = 201, description = "Put", body = PutOutcome), (status = 200, description = "Already put", body = PutOutcome),
              (status = 400, description = "Unknown colour or bad data"), (status = 404, description = "No such net or place"),
              (status = 409, description = "The net has failed")))]
pub(crate) async fn put_token(
    State(st): State<NetsApi>,
    Path((id, place)): Path<(String, String)>,
    q: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> AppResult<Response> {
    let Query(q) = q.map_err(|e| AppError::new(Code::QueryInvalid, e.body_text()).at("query"))?;
    let color = match &q.color {
        Some(c) => int(c, "query.color")?,
        None => {
            return Err(AppError::new(Code::QueryInvalid, "color is required").at("query.color"));
        }
    };
    let group = q
        .color_group
        .as_deref()
        .map(|g| int(g, "query.color_group"))
        .transpose()?;
    put_common(&st, &id, &place, color, group, &body).await
}

/// The seed's form: `PUT /v1/nets/{id}/places/{place}/tokens/{color}`.
#[utoipa::path(put, path = "/v1/nets/{id}/places/{place}/tokens/{color}", tag = "nets",
    params(("id" = String, Path), ("place" = String, Path), ("color" = i64, Path)),
    request_body(content = Object, description = "token data"),
    responses((status = 201, description = "Put", body = PutOutcome), (status = 200, description = "Already put", body = PutOutcome), (status = 404, description = "No such net or place")))]
pub(crate) async fn put_token_path(
    State(st): State<NetsApi>,
    Path((id, place, color)): Path<(String, String, String)>,
    body: Bytes,
) -> AppResult<Response> {
    let color = int(&color, "path.color")?;
    put_common(&st, &id, &place, color, None, &body).await
}

/// Start: a token of a new colour in a new root colour group.
#[utoipa::path(post, path = "/v1/nets/{id}/places/{place}/tokens", tag = "nets",
    params(("id" = String, Path), ("place" = String, Path)),
    request_body(content = Object, description = "token data"),
    responses((status = 201, description = "Location of the token", body = PutOutcome), (status = 404, description = "No such net or place")))]
pub(crate) async fn post_token(
    State(st): State<NetsApi>,
    Path((id, place)): Path<(String, String)>,
    body: Bytes,
) -> AppResult<Response> {
    check_id(&id)?;
    let data = token_data(&body)?;
    let p = place_index(&st, &id, &place).await?;
    let out = st.nets.post(&id, p, &data).await?;
    let loc = format!(
        "/v1/nets/{id}/places/{p}/tokens?color_group={}&color={}",
        out.color_group, out.color
    );
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&loc) {
        h.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, h, Json(out)).into_response())
}
