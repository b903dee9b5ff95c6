//! Sign-in, session cookies, read-only tokens and the CSRF check.

use reqwest::StatusCode;
use switchyard_api::tokens::Tokens;
use switchyard_api::ui::auth::{CookieKey, SESSION_SECS};

use super::{Console, FULL, READ, open, seed_gates, with_tokens};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn signing_in_trades_a_token_for_a_session_cookie_and_signing_out_clears_it() {
    let app = with_tokens().await;
    let mut c = Console::new(&app);

    let page = c.get("/ui/gates").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.header("location"), "/ui/login?next=%2Fui%2Fgates");
    let htmx = c.get_htmx("/ui/gates/board").await;
    assert_eq!(htmx.status, StatusCode::UNAUTHORIZED);
    assert!(htmx.header("hx-redirect").starts_with("/ui/login"));

    let form = c.get("/ui/login?next=%2Fui%2Fgates").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains(r#"name="token""#));
    assert!(form.body.contains(r#"value="/ui/gates""#));

    let wrong = c.post("/ui/login", "token=nope&next=%2Fui%2F").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.header("set-cookie").is_empty());

    let ok = c
        .post("/ui/login", &format!("token={FULL}&next=%2Fui%2Fgates"))
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.header("location"), "/ui/gates");
    let set = ok.header("set-cookie");
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        &format!("Max-Age={SESSION_SECS}"),
    ] {
        assert!(set.contains(attr), "{attr} missing in {set}");
    }
    // An open redirect is not followed.
    let away = c
        .post(
            "/ui/login",
            &format!("token={FULL}&next=https%3A%2F%2Fevil.example"),
        )
        .await;
    assert_eq!(away.header("location"), "/ui/");

    c.sign_in(FULL).await;
    let page = c.get("/ui/gates").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Sign out"));
    assert!(page.body.contains("console:token-1"));
    // With tokens on, the API calls shown carry the bearer header (in
    // double quotes, so the shell expands the variable).
    assert!(
        page.body
            .contains("-H &#34;Authorization: Bearer $SWITCHYARD_TOKEN&#34;"),
        "{}",
        page.body
    );

    let out = c.post("/ui/logout", "").await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.header("set-cookie").contains("Max-Age=0"));
}

#[tokio::test]
async fn a_tampered_or_expired_cookie_is_refused_and_one_from_another_replica_is_accepted() {
    let app = with_tokens().await;
    let mut c = Console::new(&app);
    c.sign_in(FULL).await;
    let good = c.cookie.clone().unwrap();

    // Flip one character of the payload.
    let mut bytes = good.clone().into_bytes();
    bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
    c.cookie = Some(String::from_utf8(bytes).unwrap());
    assert_eq!(c.get("/ui/").await.status, StatusCode::SEE_OTHER);
    c.cookie = Some("garbage".into());
    assert_eq!(c.get("/ui/").await.status, StatusCode::SEE_OTHER);

    // Another replica with the same tokens (and no --ui-cookie-secret)
    // derives the same key: its cookies are good here, until they expire.
    let tokens = Tokens::new(vec![FULL.into()], vec![READ.into()]);
    let key = CookieKey::new(None, &tokens);
    let full = tokens.find(FULL).unwrap();
    c.cookie = Some(key.issue(full, now()));
    assert_eq!(c.get("/ui/").await.status, StatusCode::OK);
    c.cookie = Some(key.issue(full, now() - SESSION_SECS - 1));
    assert_eq!(c.get("/ui/").await.status, StatusCode::SEE_OTHER);

    // A cookie of a token this deployment does not have is refused.
    let other = Tokens::new(vec!["someone-else".into()], vec![]);
    let stranger = CookieKey::new(None, &other).issue(other.find("someone-else").unwrap(), now());
    c.cookie = Some(stranger);
    assert_eq!(c.get("/ui/").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_read_only_token_views_everything_but_changes_nothing() {
    let app = with_tokens().await;
    seed_gates(&app).await;
    let api = reqwest::Client::new();

    // JSON API: reads pass, writes are 403 read_only.
    let got = api
        .get(format!("{}/api/gates", app.base))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    let put = api
        .put(format!("{}/api/gates/team/api/live", app.base))
        .bearer_auth(READ)
        .body(r#"{"state": "closed"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = put.json().await.unwrap();
    assert_eq!(body["code"], "read_only", "{body}");

    // Console: pages show, without the buttons; actions are 403 read_only.
    let mut c = Console::new(&app);
    c.sign_in(READ).await;
    let page = c.get("/ui/gates").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(r#"data-gate="api/live""#));
    assert!(
        !page.body.contains("data-toggle="),
        "read-only page shows a toggle"
    );
    assert!(page.body.contains("(read-only)"));
    let act = c
        .post("/ui/gates/team/api/live/state", "state=closed")
        .await;
    assert_eq!(act.status, StatusCode::FORBIDDEN);
    let body: serde_json::Value = serde_json::from_str(&act.body).unwrap();
    assert_eq!(body["code"], "read_only");
    let (_, gate) = app.get("/api/gates/team/api/live").await;
    assert_eq!(gate["state"], "open");
}

#[tokio::test]
async fn a_bearer_token_also_opens_the_console() {
    let app = with_tokens().await;
    let resp = reqwest::Client::new()
        .get(format!("{}/ui/", app.base))
        .bearer_auth(FULL)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_console_post_without_this_origin_is_refused_even_when_the_console_is_open() {
    let app = open().await;
    seed_gates(&app).await;
    let c = Console::new(&app);
    let path = "/ui/gates/team/api/live/state";
    let none = c.post_from(None, path, "state=closed").await;
    assert_eq!(none.status, StatusCode::FORBIDDEN);
    let foreign = c
        .post_from(Some("http://evil.example"), path, "state=closed")
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert!(foreign.body.contains("cross-site"));
    let (_, gate) = app.get("/api/gates/team/api/live").await;
    assert_eq!(gate["state"], "open");

    let same = c.post(path, "state=closed&message=by+console").await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);
    let (_, gate) = app.get("/api/gates/team/api/live").await;
    assert_eq!(gate["state"], "closed");
    assert_eq!(gate["message"], "by console");
}
