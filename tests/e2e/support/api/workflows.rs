//! The workflows API (Scriptoria's routes and Switchyard's additions).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestApp;

pub struct Workflows<'a>(&'a TestApp);

impl TestApp {
    pub fn workflows(&self) -> Workflows<'_> {
        Workflows(self)
    }
}

/// A request body: JSON, or form-encoded pairs (encoded by the client).
pub enum Body<'b> {
    Json(Value),
    Form(&'b [(&'b str, &'b str)]),
}

impl Workflows<'_> {
    /// POST `body` to `path` (relative to the API, or an absolute URL such
    /// as a callback's `proceed_url`), with optional extra headers.
    pub async fn send(
        &self,
        path: &str,
        body: Option<Body<'_>>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.0.base)
        };
        let mut req = self.0.client.post(url);
        if let Some(t) = &self.0.token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req = match body {
            Some(Body::Json(v)) => req
                .header("content-type", "application/json")
                .body(v.to_string()),
            Some(Body::Form(pairs)) => req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(pairs)),
            None => req,
        };
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    /// POST /v1/workflows with a JSON body, as is.
    pub async fn launch_json(&self, body: Value) -> (StatusCode, Value) {
        self.send("/v1/workflows", Some(Body::Json(body)), &[])
            .await
    }

    /// POST /v1/workflows form-encoded, as is.
    pub async fn launch_form(&self, pairs: &[(&str, &str)]) -> (StatusCode, Value) {
        self.send("/v1/workflows", Some(Body::Form(pairs)), &[])
            .await
    }

    /// Launch `workflow` (text or JSON tree) with the catch-all `callback`
    /// and `fields`, asserting 201; returns the workflow id.
    pub async fn launch(
        &self,
        workflow: impl Into<Value>,
        callback: &str,
        fields: Value,
    ) -> String {
        self.create(json!({"workflow": workflow.into(), "callback": callback, "fields": fields}))
            .await
    }

    /// POST /v1/workflows with a JSON body, asserting 201; returns the id.
    pub async fn create(&self, body: Value) -> String {
        let (s, b) = self.launch_json(body).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["id"].as_str().unwrap().to_owned()
    }

    /// Proceed a workitem through its `proceed_url`, with JSON `{"fields": …}`
    /// (or no body for `None`).
    pub async fn proceed_at(
        &self,
        proceed_url: &str,
        fields: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = fields.map(|f| Body::Json(json!({ "fields": f })));
        self.send(proceed_url, body, &[]).await
    }

    /// POST /v1/workflows/{id}/workitems/{wi}/proceed with JSON `{"fields": …}`.
    pub async fn proceed(&self, id: &str, wi: &str, fields: Option<Value>) -> (StatusCode, Value) {
        self.proceed_at(
            &format!("/v1/workflows/{id}/workitems/{wi}/proceed"),
            fields,
        )
        .await
    }

    /// POST /v1/workflows/{id}/cancel.
    pub async fn cancel(&self, id: &str) -> (StatusCode, Value) {
        self.send(&format!("/v1/workflows/{id}/cancel"), None, &[])
            .await
    }

    /// POST /v1/workflows/{id}/replay.
    pub async fn replay(&self, id: &str) -> (StatusCode, Value) {
        self.send(&format!("/v1/workflows/{id}/replay"), None, &[])
            .await
    }

    /// GET /v1/workflows/{id} as is.
    pub async fn fetch(&self, id: &str) -> (StatusCode, Value) {
        self.0.get(&format!("/v1/workflows/{id}")).await
    }

    /// A workflow as GET /v1/workflows/{id} shows it, asserting 200.
    pub async fn get(&self, id: &str) -> Value {
        let (s, b) = self.fetch(id).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b
    }

    /// The workflow's `status`.
    pub async fn status(&self, id: &str) -> String {
        self.get(id).await["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The events of GET /v1/workflows/{id}/history, asserting 200.
    pub async fn history(&self, id: &str) -> Vec<Value> {
        let (s, b) = self.0.get(&format!("/v1/workflows/{id}/history")).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["events"].as_array().cloned().unwrap_or_default()
    }

    /// The `type`s of the history, in order.
    pub async fn history_types(&self, id: &str) -> Vec<String> {
        self.history(id)
            .await
            .iter()
            .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// The texts of the `echo` events, in order.
    pub async fn echoes(&self, id: &str) -> Vec<String> {
        self.history(id)
            .await
            .iter()
            .filter(|e| e["type"] == "echo")
            .map(|e| e["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// GET /v1/workflows/{id}/tree, asserting 200.
    pub async fn tree(&self, id: &str) -> Value {
        let (s, b) = self.0.get(&format!("/v1/workflows/{id}/tree")).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b
    }

    /// GET /v1/workflows with a query string (`""` or `?status=…`).
    pub async fn list(&self, query: &str) -> (StatusCode, Value) {
        self.0.get(&format!("/v1/workflows{query}")).await
    }
}

/// `application/x-www-form-urlencoded` of `pairs` (names and values percent-encoded).
pub fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}
