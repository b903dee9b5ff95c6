//! The web console through HTTP: assets and headers, sign-in and session
//! cookies, read-only tokens, the CSRF (Origin) check, live updates over
//! SSE, the overview and the gates board. `browser.rs` drives the real
//! pages in headless Chromium.

mod api_reference;
mod auth;
mod browser;
mod deliveries;
mod gates;
mod live;
mod machines;
mod nets;
mod pages;
mod transactions;
mod workflows;

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, ORIGIN};

use crate::support::TestApp;

/// The full and the read-only token of [`with_tokens`] apps.
pub const FULL: &str = "console-full-token";
pub const READ: &str = "console-read-token";

/// An app with a full and a read-only token and a fast live interval.
pub async fn with_tokens() -> TestApp {
    TestApp::builder()
        .with_config(|c| {
            c.api.api_tokens = vec![FULL.into()];
            c.api.api_read_tokens = vec![READ.into()];
            c.api.ui_live_interval = Duration::from_millis(50);
        })
        .spawn()
        .await
}

/// An open app (no tokens) with a fast live interval.
pub async fn open() -> TestApp {
    TestApp::builder()
        .with_config(|c| c.api.ui_live_interval = Duration::from_millis(50))
        .spawn()
        .await
}

/// A browser-like client of the console: no redirects followed, the
/// session cookie kept by hand, `Origin` sent on posts.
pub struct Console {
    pub base: String,
    pub client: reqwest::Client,
    pub cookie: Option<String>,
}

/// A response, read whole.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl Console {
    pub fn new(app: &TestApp) -> Self {
        Self {
            base: app.base.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&self, mut req: reqwest::RequestBuilder) -> Page {
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("switchyard_console={c}"));
        }
        let resp = req.send().await.unwrap();
        Page {
            status: resp.status(),
            headers: resp.headers().clone(),
            body: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        self.send(self.client.get(format!("{}{path}", self.base)))
            .await
    }

    /// A GET as htmx sends it (`HX-Request: true`).
    pub async fn get_htmx(&self, path: &str) -> Page {
        self.send(
            self.client
                .get(format!("{}{path}", self.base))
                .header("hx-request", "true"),
        )
        .await
    }

    /// A form post from a page of this origin (or of `origin`, or none).
    pub async fn post_from(&self, origin: Option<&str>, path: &str, form: &str) -> Page {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned());
        if let Some(o) = origin {
            req = req.header(ORIGIN, o);
        }
        self.send(req).await
    }

    /// A form post from a console page.
    pub async fn post(&self, path: &str, form: &str) -> Page {
        let origin = self.base.clone();
        self.post_from(Some(&origin), path, form).await
    }

    /// Sign in with `token`; panics unless it is accepted.
    pub async fn sign_in(&mut self, token: &str) {
        let page = self
            .post("/ui/login", &format!("token={token}&next=%2Fui%2F"))
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        let set = page.header("set-cookie").to_owned();
        let value = set
            .strip_prefix("switchyard_console=")
            .and_then(|r| r.split(';').next())
            .unwrap();
        self.cookie = Some(value.to_owned());
    }
}

/// A group `team` with services `api` and `web` in `testing` and `live`.
pub async fn seed_gates(app: &TestApp) {
    for s in ["api", "web"] {
        let (st, body) = app
            .post(
                &format!("/api/gates/team/{s}"),
                serde_json::json!({"environments": ["testing", "live"]}),
            )
            .await;
        assert_eq!(st, 200, "{body}");
    }
}
