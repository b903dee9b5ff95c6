//! The web console, served by the API under `/ui/`: server-rendered HTML
//! (askama templates in `api/templates/`) with htmx for actions and live
//! regions, all assets embedded. This module is platform: it never names a
//! family. A family with pages gives its [`Family`](crate::families::Family)
//! a [`Section`] (url segment, nav title, its pages, an overview hook and a
//! live-update hook) and keeps the pages in its own module.
//!
//! * [`auth`] — session cookies, login/logout, the CSRF (Origin) check, the
//!   [`Viewer`] of a request;
//! * [`live`] — Server-Sent Events fed by one Redis poller per topic per
//!   replica, running only while someone subscribes;
//! * [`assets`] — the vendored and own static files at a versioned path;
//! * [`overview`] — `/ui/`: one tile per section, failing things first;
//! * [`reference`] — `/ui/api`: the API reference (vendored Swagger UI).

pub mod assets;
pub mod auth;
pub mod live;
pub mod overview;
pub mod reference;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::Value;

use crate::error::AppError;
use crate::state::AppState;
use crate::tokens::{TokenKind, Tokens};

pub use overview::{Count, Failing, Overview};

/// A boxed future, as the hooks return them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Counts and failing items of a section, for the overview page.
pub type OverviewHook = Arc<dyn Fn() -> BoxFuture<anyhow::Result<Overview>> + Send + Sync>;

/// A cheap fingerprint of what a live topic shows (e.g. a hash of a small
/// read); `None` when the section has no such topic.
pub type LiveHook = Arc<dyn Fn(&str) -> Option<BoxFuture<anyhow::Result<u64>>> + Send + Sync>;

/// Url segments the console itself uses; no section may take them.
const RESERVED: &[&str] = &["assets", "login", "logout", "events", "overview", "api"];

/// One family's part of the console.
pub struct Section {
    /// The url segment: pages live under `/ui/<segment>`; live topics are
    /// `<segment>` or `<segment>-<more>` (letters, digits, `-`, `_`, `.`).
    pub segment: &'static str,
    /// The nav title.
    pub title: &'static str,
    /// Pages and actions, mounted under `/ui/<segment>` (`"/"` is the
    /// section's main page).
    pub pages: Router<AppState>,
    pub overview: Option<OverviewHook>,
    pub live: Option<LiveHook>,
}

impl Section {
    pub fn new(segment: &'static str, title: &'static str, pages: Router<AppState>) -> Self {
        Self {
            segment,
            title,
            pages,
            overview: None,
            live: None,
        }
    }

    /// The tile of this section on `/ui/`: `f` on a clone of `state` (the
    /// section's shared handles) each time the overview is drawn.
    pub fn with_overview_of<S, F, Fut>(mut self, state: S, f: F) -> Self
    where
        S: Clone + Send + Sync + 'static,
        F: Fn(S) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<Overview>> + Send + 'static,
    {
        self.overview = Some(Arc::new(move || Box::pin(f(state.clone()))));
        self
    }

    /// The live topics of this section (see [`live`]): its main topic, the
    /// segment itself, fingerprinted by `f(state, None)`, and
    /// `<segment>-<id>` for every id `valid` takes, by `f(state, Some(id))`
    /// (`state` cloned each time). Other topics are not this section's.
    pub fn with_live_of<S, V, F, Fut>(mut self, state: S, valid: V, f: F) -> Self
    where
        S: Clone + Send + Sync + 'static,
        V: Fn(&str) -> bool + Send + Sync + 'static,
        F: Fn(S, Option<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<u64>> + Send + 'static,
    {
        let segment = self.segment;
        self.live = Some(Arc::new(move |topic| {
            let id = if topic == segment {
                None
            } else {
                let id = topic.strip_prefix(segment)?.strip_prefix('-')?;
                if !valid(id) {
                    return None;
                }
                Some(id.to_owned())
            };
            Some(Box::pin(f(state.clone(), id)) as BoxFuture<_>)
        }));
        self
    }
}

/// A link of the header nav.
#[derive(Clone, Debug)]
pub struct NavItem {
    pub segment: &'static str,
    pub title: &'static str,
}

/// What the console's platform parts share (in [`AppState`]).
pub struct Console {
    pub(crate) nav: Arc<Vec<NavItem>>,
    pub(crate) cookies: auth::CookieKey,
    pub(crate) live: Arc<live::Hub>,
    pub(crate) overviews: Vec<(NavItem, Option<OverviewHook>)>,
    /// The sections' main topics (their segment), watched by `/ui/`.
    pub(crate) overview_topics: Vec<&'static str>,
}

impl Console {
    /// The console of `sections`; fails on a reserved or repeated segment.
    pub fn new(
        sections: &[Section],
        tokens: &Tokens,
        opts: &switchyard_shared::platform::config::ApiOpts,
    ) -> anyhow::Result<Self> {
        let mut nav = Vec::new();
        let mut hooks = Vec::new();
        let mut overviews = Vec::new();
        let mut overview_topics = Vec::new();
        for s in sections {
            let ok = !s.segment.is_empty()
                && s.segment
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            anyhow::ensure!(ok, "console segment {:?} is not [a-z0-9_]+", s.segment);
            anyhow::ensure!(
                !RESERVED.contains(&s.segment)
                    && !nav.iter().any(|n: &NavItem| n.segment == s.segment),
                "console segment {:?} is reserved or taken",
                s.segment
            );
            let item = NavItem {
                segment: s.segment,
                title: s.title,
            };
            nav.push(item.clone());
            overviews.push((item, s.overview.clone()));
            if let Some(h) = &s.live {
                if h(s.segment).is_some() {
                    overview_topics.push(s.segment);
                }
                hooks.push((s.segment, h.clone()));
            }
        }
        Ok(Self {
            nav: Arc::new(nav),
            cookies: auth::CookieKey::new(opts.ui_cookie_secret.as_deref(), tokens),
            live: Arc::new(live::Hub::new(
                hooks,
                opts.ui_live_interval,
                opts.ui_live_clients,
            )),
            overviews,
            overview_topics,
        })
    }
}

/// The console's routes: platform pages, then every section's pages under
/// `/ui/<segment>`.
pub fn routes(sections: Vec<Section>) -> Router<AppState> {
    let mut r = Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(overview::page))
        .route("/ui/overview", get(overview::tiles))
        .route("/ui/login", get(auth::login_form).post(auth::login))
        .route("/ui/logout", post(auth::logout))
        .route("/ui/events", get(live::events))
        .route("/ui/api", get(reference::page))
        .route("/ui/api/openapi.json", get(reference::document))
        .route("/ui/assets/{version}/{file}", get(assets::serve));
    for s in sections {
        r = r.nest(&format!("/ui/{}", s.segment), s.pages);
    }
    r
}

/// True for the paths the console answers (and guards), rather than the JSON API.
pub fn is_console(path: &str) -> bool {
    path == "/" || path == "/ui" || path.starts_with("/ui/")
}

/// Who is looking at a console page, and what the page chrome needs: put in
/// the request's extensions by the console's guard, taken by any console
/// handler as an extractor.
#[derive(Clone, Debug)]
pub struct Viewer {
    /// Recorded in histories: `console:token-1`, or `console` when open.
    pub actor: String,
    /// `None` when no token is configured (the console is open).
    pub kind: Option<TokenKind>,
    /// `http://host:port` as the browser reached us, for the curl snippets.
    pub origin: String,
    /// The first path segment after `/ui/` (the active nav entry).
    pub section: String,
    nav: Arc<Vec<NavItem>>,
}

impl Viewer {
    /// May this viewer change state (false for a read-only token)?
    pub fn can_write(&self) -> bool {
        self.kind != Some(TokenKind::Read)
    }

    /// Is the console behind tokens (a logout button, a token in curl)?
    pub fn signed_in(&self) -> bool {
        self.kind.is_some()
    }

    /// Is `segment` the nav entry of this page (`""` for the overview)?
    pub fn is_active(&self, segment: &str) -> bool {
        self.section == segment
    }

    /// The header nav.
    pub fn nav(&self) -> &[NavItem] {
        &self.nav
    }

    /// The versioned prefix of the assets (`/ui/assets/<hash>`).
    pub fn assets(&self) -> &'static str {
        assets::prefix()
    }

    /// The curl command doing what a console action does: method, the URL
    /// on the host the browser used, the bearer header when tokens are on,
    /// and the JSON body.
    pub fn curl(&self, method: &str, path: &str, body: Option<&Value>) -> String {
        let mut s = format!("curl -X {method} '{}{path}'", self.origin);
        if self.signed_in() {
            // Double quotes: the shell expands the variable.
            s.push_str(" \\\n  -H \"Authorization: Bearer $SWITCHYARD_TOKEN\"");
        }
        if let Some(b) = body {
            let json = b.to_string().replace('\'', r"'\''");
            s.push_str(" \\\n  -H 'Content-Type: application/json'");
            s.push_str(&format!(" \\\n  -d '{json}'"));
        }
        s
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Viewer>()
            .cloned()
            .ok_or_else(|| UiError::internal("console page outside the console's guard"))
    }
}

/// Render a template (a page or a fragment) as an HTML response.
pub fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => UiError::internal(e).into_response(),
    }
}

/// A console error, answered as a small HTML page (htmx requests show its
/// reason in the page's flash area; see `console.js`).
#[derive(Debug)]
pub struct UiError {
    pub status: StatusCode,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    reason: &'a str,
    assets: &'static str,
}

impl UiError {
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
        }
    }

    /// A bug: logged, shown opaque.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "console page failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, reason)
    }

    /// A request the console refuses as it stands (`reason` says why).
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }

    /// A failure on our side (`status` is a 5xx): logged with its cause,
    /// shown as "service unavailable, try again" (503) or opaque.
    pub fn server(status: StatusCode, cause: impl std::fmt::Display) -> Self {
        tracing::error!(%status, %cause, "console request failed");
        let reason = if status == StatusCode::SERVICE_UNAVAILABLE {
            "service unavailable, try again"
        } else {
            "internal error"
        };
        Self::new(status, reason)
    }
}

impl From<AppError> for UiError {
    fn from(e: AppError) -> Self {
        if e.status.is_server_error() {
            return Self::server(e.status, format_args!("{}: {}", e.code.as_str(), e.reason));
        }
        let reason = match e.location {
            Some(w) => format!("{} ({w})", e.reason),
            None => e.reason,
        };
        Self::new(e.status, reason)
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            status: self.status.as_u16(),
            title: self.status.canonical_reason().unwrap_or("Error"),
            reason: &self.reason,
            assets: assets::prefix(),
        };
        let body = page
            .render()
            .unwrap_or_else(|_| format!("{} {}", self.status, self.reason));
        (
            self.status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

/// The result of a console handler.
pub type UiResult<T> = Result<T, UiError>;
