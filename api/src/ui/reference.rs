//! `/ui/api`: the API reference — the OpenAPI document of every endpoint
//! shown by the vendored Swagger UI (`api/assets/vendor/swagger-ui-dist/`,
//! started by `api-reference.js` with the validator badge off, so nothing
//! is fetched from another host). The viewer reads the document from
//! `/ui/api/openapi.json`, the same document as `/openapi.json` behind the
//! console's sign-in (the JSON API takes bearer tokens, not the console's
//! cookie).

use askama::Template;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::{Viewer, render};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "api.html")]
struct Page<'a> {
    ui: &'a Viewer,
    /// How many paths the document has (said in the page's lead).
    paths: usize,
}

impl Page<'_> {
    /// The document through the JSON API.
    fn curl(&self) -> String {
        self.ui.curl("GET", "/openapi.json", None)
    }
}

/// `GET /ui/api`.
pub async fn page(State(state): State<AppState>, ui: Viewer) -> Response {
    render(&Page {
        ui: &ui,
        paths: state.openapi.paths.paths.len(),
    })
}

/// `GET /ui/api/openapi.json`: the OpenAPI document, for the viewer.
pub async fn document(State(state): State<AppState>) -> Response {
    Json((*state.openapi).clone()).into_response()
}
