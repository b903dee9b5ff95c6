//! The gates API (v0 form).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestApp;

pub struct Gates<'a>(&'a TestApp);

impl TestApp {
    pub fn gates(&self) -> Gates<'_> {
        Gates(self)
    }
}

impl Gates<'_> {
    /// Create a service, asserting success.
    pub async fn create(&self, name: &str, group: &str, envs: &[&str]) {
        let (s, b) = self
            .0
            .post(
                &format!("/api/services/{name}"),
                json!({"group": group, "environments": envs}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    /// Test-and-set: `body` is `{"services": …, "ticket"?, "queue"?}`.
    pub async fn test_and_set(&self, body: Value) -> (StatusCode, Value) {
        self.0.put("/api/services", body).await
    }
}

/// The id of the ticket of a test-and-set reply.
pub fn ticket_id(v: &Value) -> String {
    v["ticket"]["id"].as_str().unwrap().to_owned()
}

/// How many tickets wait in line for `env` in a service reply.
pub fn queue_len(v: &Value, env: &str) -> usize {
    v["environments"][env]["queue"].as_array().unwrap().len()
}
