//! The Petri-nets API.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::TestApp;

pub struct Nets<'a>(&'a TestApp);

impl TestApp {
    pub fn nets(&self) -> Nets<'_> {
        Nets(self)
    }
}

impl Nets<'_> {
    /// Create a net, asserting it was created; returns its key.
    pub async fn create(&self, spec: Value) -> String {
        let (s, b) = self.0.post("/v1/nets", spec).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["net_key"].as_str().unwrap().to_owned()
    }

    /// A net as GET /v1/nets/{id} shows it.
    pub async fn get(&self, id: &str) -> Value {
        self.0.get(&format!("/v1/nets/{id}")).await.1
    }

    /// Answer a callback: PUT `data` to its response link `name`.
    pub async fn answer(&self, callback: &Value, name: &str, data: Value) -> StatusCode {
        let link = callback["response_links"][name].as_str().unwrap();
        self.0
            .client
            .put(link)
            .body(data.to_string())
            .send()
            .await
            .unwrap()
            .status()
    }
}
