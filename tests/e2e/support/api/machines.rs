//! The state-machines API.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestApp;

pub struct Machines<'a>(&'a TestApp);

impl TestApp {
    pub fn machines(&self) -> Machines<'_> {
        Machines(self)
    }
}

impl Machines<'_> {
    /// Create a machine, asserting it was created.
    pub async fn create(&self, spec: Value) {
        let (s, b) = self.0.post("/api/statemachines", spec).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }

    /// POST a machine definition as is.
    pub async fn post(&self, spec: Value) -> (StatusCode, Value) {
        self.0.post("/api/setup/statemachine/new", spec).await
    }

    /// Move `entity` of `machine` to state `to`.
    pub async fn transition(&self, machine: &str, entity: &str, to: &str) -> (StatusCode, Value) {
        self.0
            .post(
                &format!("/api/statemachines/{machine}/entities/{entity}/transitions"),
                json!({"to": to}),
            )
            .await
    }
}
