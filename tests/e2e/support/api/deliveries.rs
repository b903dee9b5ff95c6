//! The deliveries API.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::TestApp;

pub struct Deliveries<'a>(&'a TestApp);

impl TestApp {
    pub fn deliveries(&self) -> Deliveries<'_> {
        Deliveries(self)
    }
}

impl Deliveries<'_> {
    /// POST /v1/deliveries as is.
    pub async fn post(&self, body: Value) -> (StatusCode, Value) {
        self.0.post("/v1/deliveries", body).await
    }

    /// POST /v1/deliveries, asserting it was created; returns its id.
    pub async fn create(&self, body: Value) -> String {
        let (s, d) = self.post(body).await;
        assert_eq!(s, StatusCode::CREATED, "{d}");
        d["id"].as_str().unwrap().to_owned()
    }

    /// A delivery as GET /v1/deliveries/{id} shows it.
    pub async fn get(&self, id: &str) -> Value {
        self.0.get(&format!("/v1/deliveries/{id}")).await.1
    }
}
