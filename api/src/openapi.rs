//! `GET /openapi.json`: the OpenAPI document of every endpoint.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::{AppState, deliveries, gates, health, machines, nets};

#[derive(OpenApi)]
#[openapi(
    info(title = "Switchyard", description = "Redis-backed coordination service"),
    paths(
        health::healthz, health::readyz, health::metrics_text, openapi_json,
        gates::list_services, gates::tas_services, gates::create_v0, gates::get_v0,
        gates::update_v0, gates::delete_v0, gates::get_env_v0, gates::set_state_v0,
        gates::history_v0, gates::list_gates, gates::tas_gates, gates::create_grouped,
        gates::get_grouped, gates::update_grouped, gates::delete_grouped,
        gates::get_env_grouped, gates::set_state_grouped, gates::history_grouped,
        gates::get_ticket, gates::release_ticket, gates::set_holidays, gates::list_holidays,
        deliveries::create, deliveries::list, deliveries::show, deliveries::retry, deliveries::cancel,
        nets::create, nets::create_with_key, nets::list, nets::show, nets::places, nets::explain, nets::dot,
        nets::patch, nets::delete, nets::put_token, nets::put_token_path, nets::post_token,
        machines::create, machines::list, machines::show, machines::delete, machines::transition,
        machines::batch, machines::entity, machines::metrics_json, machines::check,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/openapi.json", get(openapi_json))
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "OpenAPI 3 document")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
