//! Who may use the console, and the checks every console request passes.
//!
//! * With API tokens configured, `POST /ui/login` trades a token for a
//!   signed session cookie: `<payload>.<mac>`, both base64url, the payload
//!   `v1|<kind>|<fingerprint>|<expiry>` and the MAC HMAC-SHA256 over it. The
//!   fingerprint is an HMAC of the token, so removing the token from the
//!   configuration revokes its cookies; the key is `--ui-cookie-secret` or,
//!   without it, derived from the configured tokens (replicas with the same
//!   configuration accept each other's cookies). HttpOnly, SameSite=Strict,
//!   12 hours. A bearer header is accepted too (curl, scripts).
//! * Every mutating request (anything but GET/HEAD/OPTIONS) must carry an
//!   `Origin` (else a `Referer`) whose host is the request's `Host` (or the
//!   `X-Forwarded-Host` of a proxy that rewrites it) — a cross-site form or
//!   fetch gets 403 — also when the console is open.
//! * A read-only token views everything; its mutating requests get 403
//!   `read_only`, as on the JSON API.
//! * Every console response carries a Content-Security-Policy allowing only
//!   this origin (no inline script or style), and no framing.

use askama::Template;
use axum::Form;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{UiError, Viewer, assets, render};
use crate::error::{AppError, Code};
use crate::middleware::{Actor, bearer};
use crate::state::AppState;
use crate::tokens::{Token, TokenKind, Tokens};

/// The session cookie's name.
pub const COOKIE: &str = "switchyard_console";

/// How long a session lasts.
pub const SESSION_SECS: u64 = 12 * 3600;

/// The policy of every console response: this origin only, no inline code.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The policy of a page drawing graphs with the vendored Graphviz (a
/// WebAssembly build): [`CSP`] plus `'wasm-unsafe-eval'`, which lets a
/// script of this origin compile WebAssembly (it allows no `eval` of
/// JavaScript). Only responses marked [`RunsWasm`] get it.
pub const CSP_WASM: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// A response extension: this page runs WebAssembly (see [`CSP_WASM`]).
/// A page drawing graphs (`{% call m::graph(dot) %}` with
/// `m::graph_scripts` in its head) answers `(Extension(RunsWasm), page)`.
#[derive(Clone, Copy, Debug)]
pub struct RunsWasm;

type HmacSha256 = Hmac<Sha256>;

/// The key signing session cookies.
#[derive(Clone)]
pub struct CookieKey([u8; 32]);

impl CookieKey {
    /// From `--ui-cookie-secret`, else from the configured tokens (sorted,
    /// so the order they were given in does not matter).
    pub fn new(secret: Option<&str>, tokens: &Tokens) -> Self {
        let mut h = Sha256::new();
        h.update(b"switchyard console cookie key v1\0");
        match secret.filter(|s| !s.is_empty()) {
            Some(s) => h.update(s.as_bytes()),
            None => {
                let mut all: Vec<String> = tokens
                    .iter()
                    .map(|t| format!("{}:{}", t.kind.as_str(), t.secret))
                    .collect();
                all.sort();
                for t in all {
                    h.update(t.as_bytes());
                    h.update(b"\n");
                }
            }
        }
        Self(h.finalize().into())
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length; 32 bytes cannot fail.
        <HmacSha256 as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }

    /// A short keyed digest of a token: in the cookie instead of the token.
    fn fingerprint(&self, token: &str) -> String {
        let mut m = self.mac();
        m.update(b"fingerprint\0");
        m.update(token.as_bytes());
        let d = m.finalize().into_bytes();
        B64.encode(&d[..16])
    }

    /// The cookie value for `token`, valid until `now + SESSION_SECS`.
    pub fn issue(&self, token: &Token, now: u64) -> String {
        let payload = format!(
            "v1|{}|{}|{}",
            token.kind.as_str(),
            self.fingerprint(&token.secret),
            now + SESSION_SECS
        );
        let mut m = self.mac();
        m.update(payload.as_bytes());
        let sig = m.finalize().into_bytes();
        format!("{}.{}", B64.encode(payload), B64.encode(sig))
    }

    /// The configured token a cookie value stands for, if its signature
    /// holds, it has not expired, and the token is still configured.
    pub fn verify<'t>(&self, value: &str, tokens: &'t Tokens, now: u64) -> Option<&'t Token> {
        let (payload, sig) = value.split_once('.')?;
        let payload = B64.decode(payload).ok()?;
        let sig = B64.decode(sig).ok()?;
        let mut m = self.mac();
        m.update(&payload);
        m.verify_slice(&sig).ok()?;
        let payload = String::from_utf8(payload).ok()?;
        let mut parts = payload.split('|');
        let (Some("v1"), Some(kind), Some(fp), Some(exp), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let kind = TokenKind::parse(kind)?;
        let exp: u64 = exp.parse().ok()?;
        if exp <= now {
            return None;
        }
        tokens
            .iter()
            .find(|t| t.kind == kind && self.fingerprint(&t.secret) == fp)
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `host[:port]` of an `Origin` or `Referer` value.
fn authority(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    Some(rest.split(['/', '?', '#']).next().unwrap_or(rest))
}

/// The host the browser addressed: `X-Forwarded-Host` when a proxy in
/// front rewrote `Host` (its first value), else `Host`.
fn public_host(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-forwarded-host")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()))
}

/// Does the request come from a page of this very host (CSRF check)? The
/// `Origin` (else `Referer`) must name the `Host`, or the
/// `X-Forwarded-Host` of a proxy in front (a cross-site form cannot set
/// that header, and a cross-site fetch setting it needs a CORS preflight
/// this API never grants).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .and_then(authority);
    let Some(from) = from else { return false };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    [host, public_host(headers)]
        .into_iter()
        .flatten()
        .any(|h| from.eq_ignore_ascii_case(h))
}

fn mutating(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn is_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
}

/// `http(s)://host` as the browser reached us (behind a proxy terminating
/// TLS, `X-Forwarded-Proto: https` says so).
fn origin_of(headers: &HeaderMap) -> String {
    let host = public_host(headers).unwrap_or("localhost");
    format!("{}://{host}", scheme(headers))
}

fn scheme(headers: &HeaderMap) -> &'static str {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    if https { "https" } else { "http" }
}

/// The guard of every console path (called by the API's auth middleware):
/// CSRF check, sign-in, read-only refusal, then the [`Viewer`] and
/// [`Actor`] for the handler; security headers on whatever comes back.
pub async fn guard(state: AppState, req: Request, next: Next) -> Response {
    let mut resp = check(state, req, next).await;
    let csp = if resp.extensions().get::<RunsWasm>().is_some() {
        CSP_WASM
    } else {
        CSP
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

async fn check(state: AppState, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let headers = req.headers();
    if mutating(req.method()) && !same_origin(headers) {
        return UiError::new(
            StatusCode::FORBIDDEN,
            "cross-site request refused: the Origin (or Referer) header must name this host",
        )
        .into_response();
    }
    let public = matches!(path.as_str(), "/" | "/ui" | "/ui/login" | "/ui/logout")
        || path.starts_with("/ui/assets/");
    let console = &state.console;
    let (kind, actor) = if state.tokens.is_empty() {
        (None, "console".to_owned())
    } else {
        let by_bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
            .and_then(|p| state.tokens.find(p));
        let token = by_bearer.or_else(|| {
            cookie(headers, COOKIE)
                .and_then(|c| console.cookies.verify(c, &state.tokens, now_secs()))
        });
        match token {
            Some(t) => (Some(t.kind), format!("console:{}", t.label)),
            None if public => return next.run(req).await,
            None => return sign_in_first(&req),
        }
    };
    if kind == Some(TokenKind::Read) && mutating(req.method()) && !public {
        return AppError::new(Code::ReadOnly, "this token is read-only").into_response();
    }
    let section = path
        .strip_prefix("/ui/")
        .and_then(|p| p.split('/').next())
        .unwrap_or("")
        .to_owned();
    let viewer = Viewer {
        actor: actor.clone(),
        kind,
        origin: origin_of(req.headers()),
        section,
        nav: console.nav.clone(),
    };
    req.extensions_mut().insert(viewer);
    req.extensions_mut().insert(Actor(actor));
    next.run(req).await
}

/// Not signed in: pages redirect to the login form (back here afterwards);
/// htmx requests get 401 with `HX-Redirect`, other requests a 401 page.
fn sign_in_first(req: &Request) -> Response {
    let login = format!(
        "/ui/login?next={}",
        url::form_urlencoded::byte_serialize(req.uri().path().as_bytes()).collect::<String>()
    );
    if is_htmx(req.headers()) {
        let mut resp = UiError::new(StatusCode::UNAUTHORIZED, "sign in first").into_response();
        if let Ok(v) = HeaderValue::from_str(&login) {
            resp.headers_mut().insert("hx-redirect", v);
        }
        return resp;
    }
    if *req.method() == Method::GET {
        return Redirect::to(&login).into_response();
    }
    UiError::new(StatusCode::UNAUTHORIZED, "sign in first").into_response()
}

/// Only local console paths are followed after signing in (no open redirect).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/ui/") && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/ui/",
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    assets: &'static str,
    next: &'a str,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /ui/login`: the sign-in form (straight to the console when no
/// token is configured).
pub async fn login_form(State(state): State<AppState>, Query(q): Query<LoginQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    if state.tokens.is_empty() {
        return Redirect::to(next).into_response();
    }
    render(&LoginPage {
        assets: assets::prefix(),
        next,
        error: None,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
    next: Option<String>,
}

/// `POST /ui/login` (`token`, `next`): a valid token gets the session
/// cookie and a redirect to `next`; a wrong one the form again, 401.
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    if state.tokens.is_empty() {
        return Redirect::to(next).into_response();
    }
    let Some(token) = state.tokens.find(form.token.trim()) else {
        let mut resp = render(&LoginPage {
            assets: assets::prefix(),
            next,
            error: Some("This token is not accepted."),
        });
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
        return resp;
    };
    tracing::info!(token = %token.label, "console sign-in");
    let value = state.console.cookies.issue(token, now_secs());
    let secure = if scheme(&headers) == "https" {
        "; Secure"
    } else {
        ""
    };
    let set = format!(
        "{COOKIE}={value}; Path=/; Max-Age={SESSION_SECS}; HttpOnly; SameSite=Strict{secure}"
    );
    let mut resp = Redirect::to(next).into_response();
    if let Ok(v) = HeaderValue::from_str(&set) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `POST /ui/logout`: clears the cookie, back to the login form.
pub async fn logout() -> Response {
    let mut resp = Redirect::to("/ui/login").into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "switchyard_console=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict",
        ),
    );
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(vec!["full-1".into()], vec!["read-1".into()])
    }

    #[test]
    fn a_cookie_verifies_until_it_expires_or_its_token_is_removed() {
        let t = tokens();
        let key = CookieKey::new(None, &t);
        let tok = t.find("read-1").unwrap();
        let c = key.issue(tok, 1000);
        assert_eq!(key.verify(&c, &t, 1001).unwrap().kind, TokenKind::Read);
        assert!(key.verify(&c, &t, 1000 + SESSION_SECS).is_none());
        let fewer = Tokens::new(vec!["full-1".into()], vec![]);
        assert!(
            CookieKey::new(Some("s"), &fewer)
                .verify(&c, &fewer, 1001)
                .is_none()
        );
        let same_key = CookieKey::new(Some("s"), &t);
        let c2 = same_key.issue(tok, 1000);
        assert!(same_key.verify(&c2, &fewer, 1001).is_none());
    }

    #[test]
    fn a_tampered_cookie_is_refused() {
        let t = tokens();
        let key = CookieKey::new(None, &t);
        let c = key.issue(t.find("read-1").unwrap(), 1000);
        let (p, s) = c.split_once('.').unwrap();
        let forged = String::from_utf8(B64.decode(p).unwrap())
            .unwrap()
            .replace("|read|", "|full|");
        assert!(
            key.verify(&format!("{}.{s}", B64.encode(forged)), &t, 1001)
                .is_none()
        );
    }

    #[test]
    fn origin_must_name_the_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.remove(header::ORIGIN);
        h.insert(
            header::REFERER,
            HeaderValue::from_static("http://127.0.0.1:8080/ui/gates"),
        );
        assert!(same_origin(&h));
        // Behind a proxy that rewrites Host, the public host it forwards counts.
        h.insert(header::HOST, HeaderValue::from_static("api-1:8080"));
        h.insert(
            header::REFERER,
            HeaderValue::from_static("https://switchyard.example/ui/gates"),
        );
        assert!(!same_origin(&h));
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("switchyard.example"),
        );
        assert!(same_origin(&h));
        assert_eq!(origin_of(&h), "http://switchyard.example");
    }
}
