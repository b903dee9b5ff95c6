//! The Robbyson ingestion API (`/v1/transactions`, `/v1/{resource}`): every
//! call carries the tenant's `token` header and answers the raw text (the
//! seed's answers are compared byte for byte) with its status.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::TestApp;

/// The seed's token, and its contractor id.
pub const SEED_TOKEN: &str = "ubogfszb2y9iti8njcmar4e39cg73m";
pub const SEED_CONTRACTOR: &str = "8";

/// A test app with the seed's tenant and a second one (`other=9`).
pub async fn spawn_with_tenants() -> TestApp {
    TestApp::builder()
        .with_config(|c| {
            c.families.transactions.transactions_tenants =
                vec![format!("{SEED_TOKEN}={SEED_CONTRACTOR}"), "other=9".into()];
            c.families.transactions.transactions_callback_policy = "fast".into();
        })
        .spawn()
        .await
}

pub struct Transactions<'a> {
    app: &'a TestApp,
    token: String,
}

impl TestApp {
    /// The transactions API as the tenant of `token`.
    pub fn transactions(&self, token: &str) -> Transactions<'_> {
        Transactions {
            app: self,
            token: token.to_owned(),
        }
    }
}

impl Transactions<'_> {
    /// One call: the status, the `Retry-After` header and the raw body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Option<String>, String) {
        let mut req = self
            .app
            .client
            .request(method, format!("{}{}", self.app.base, path))
            .header("token", &self.token);
        if let Some(t) = &self.app.token {
            // With API tokens configured, every call needs a bearer one too.
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, retry, resp.text().await.unwrap())
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, String) {
        let (s, _, b) = self.raw(method, path, body, &[]).await;
        (s, b)
    }

    /// Open a transaction, asserting it opened; its id.
    pub async fn create(&self) -> String {
        let (s, b) = self.call(Method::POST, "/v1/transactions/", None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        v["data"]["_id"].as_str().unwrap().to_owned()
    }

    /// Send a batch (POST or PUT) of `items` to transaction `id`.
    pub async fn send(
        &self,
        method: Method,
        resource: &str,
        id: &str,
        items: &Value,
    ) -> (StatusCode, String) {
        self.call(
            method,
            &format!("/v1/{resource}/?transaction_id={id}"),
            Some(&items.to_string()),
        )
        .await
    }

    /// POST a batch, asserting it was stored.
    pub async fn post(&self, resource: &str, id: &str, items: Value) {
        let (s, b) = self.send(Method::POST, resource, id, &items).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    /// Commit (with an optional `?startDate=&endDate=` query).
    pub async fn commit(&self, id: &str, query: &str) -> (StatusCode, String) {
        self.call(Method::POST, &format!("/v1/transactions/{id}{query}"), None)
            .await
    }

    /// The transaction as GET shows it.
    pub async fn get(&self, id: &str) -> Value {
        let (s, b) = self
            .call(Method::GET, &format!("/v1/transactions/{id}"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        serde_json::from_str(&b).unwrap()
    }

    /// Poll until the transaction is final (7, 8, 10, 11), asserting that
    /// every status seen only moves forward; the final view.
    pub async fn wait_final(&self, id: &str, limit: Duration) -> Value {
        let start = Instant::now();
        let mut last = 0u8;
        loop {
            let v = self.get(id).await;
            let status = v["data"]["status"].as_u64().unwrap() as u8;
            let rank = switchyard_shared::families::transactions::store::status_rank(status);
            assert!(rank >= last, "status went back to {status}: {v}");
            last = rank;
            if matches!(status, 7 | 8 | 10 | 11) {
                return v;
            }
            assert!(start.elapsed() < limit, "not final within {limit:?}: {v}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// A consolidated record (GET /v1/{resource}/{identification}).
    pub async fn record(&self, resource: &str, identification: &str) -> (StatusCode, String) {
        self.call(
            Method::GET,
            &format!("/v1/{resource}/{identification}"),
            None,
        )
        .await
    }
}
