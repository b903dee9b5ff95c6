//! The SSRF guard at the API: IPv6 spellings that embed a forbidden IPv4
//! address are refused like the IPv4 address itself (issue 9, D6).

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TestApp, spawn_app};

/// IPv4-compatible, IPv4-mapped, SIIT, NAT64 (well-known and local-use)
/// and 6to4 spellings of 169.254.169.254, and of other refused addresses.
const EMBEDDED_FORBIDDEN: &[&str] = &[
    "http://[::169.254.169.254]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:0:a9fe:a9fe]/",
    "http://[64:ff9b::169.254.169.254]/",
    "http://[64:ff9b:1::a9fe:a9fe]/",
    "http://[2002:a9fe:a9fe::]/",
    "http://[2002:a9fe:a9fe:1::1]:8080/x",
    "http://[64:ff9b::224.0.0.1]/",
    "http://[2002:ffff:ffff::]/",
    "http://[::ffff:0:0.0.0.0]/",
];

#[tokio::test]
async fn ipv6_forms_embedding_link_local_are_refused() {
    let app = spawn_app().await;
    let before = app.dbsize();
    for url in EMBEDDED_FORBIDDEN {
        let (s, e) = app.deliveries().post(json!({"url": url})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{url}: {e}");
        assert_eq!(e["code"], "url_invalid", "{url}: {e}");
        assert_eq!(e["where"], "body.url", "{url}: {e}");
    }
    assert_eq!(before, app.dbsize(), "refused requests wrote nothing");
}

#[tokio::test]
async fn ipv6_forms_embedding_a_public_address_are_accepted() {
    let app = spawn_app().await;
    for url in [
        "http://[::8.8.8.8]/",
        "http://[64:ff9b::8.8.8.8]/",
        "http://[2002:808:808::]/",
        "http://[::ffff:0:808:808]/",
    ] {
        let (s, e) = app.deliveries().post(json!({"url": url})).await;
        assert_eq!(s, StatusCode::CREATED, "{url}: {e}");
    }
}

#[tokio::test]
async fn ipv6_forms_embedding_link_local_are_accepted_with_allow_link_local() {
    let app = TestApp::builder()
        .with_config(|c| c.outbox.allow_link_local = true)
        .spawn()
        .await;
    for url in EMBEDDED_FORBIDDEN {
        let (s, e) = app.deliveries().post(json!({"url": url})).await;
        assert_eq!(s, StatusCode::CREATED, "{url}: {e}");
    }
}
