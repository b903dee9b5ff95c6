//! A real HTTP receiver on loopback that records every request and answers
//! according to a script.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Received {
    pub fn id(&self) -> &str {
        self.headers
            .get("webhook-id")
            .map(String::as_str)
            .unwrap_or_default()
    }
}

/// How to answer: given the webhook id and how often it was seen (1-based).
pub type Script =
    Arc<dyn Fn(&str, usize) -> (StatusCode, Vec<(&'static str, String)>) + Send + Sync>;

#[derive(Clone)]
struct Shared {
    got: Arc<Mutex<Vec<Received>>>,
    script: Script,
    delay: Duration,
}

pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
    stop: CancellationToken,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn hook(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let r = Received {
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let id = r.id().to_owned();
    let seen = {
        let mut got = s.got.lock().unwrap();
        got.push(r);
        got.iter().filter(|x| x.id() == id).count()
    };
    // Recorded on arrival; answered after the delay.
    if !s.delay.is_zero() {
        tokio::time::sleep(s.delay).await;
    }
    let (status, extra) = (s.script)(&id, seen);
    let mut resp = (status, "receiver says hi").into_response();
    for (k, v) in extra {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

impl Receiver {
    pub async fn start(delay: Duration, script: Script) -> Self {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let shared = Shared {
            got: got.clone(),
            script,
            delay,
        };
        let app = axum::Router::new().fallback(hook).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let s2 = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { s2.cancelled().await })
                .await
                .ok();
        });
        Self { url, got, stop }
    }

    pub async fn ok() -> Self {
        Self::start(
            Duration::ZERO,
            Arc::new(|_, _| (StatusCode::NO_CONTENT, vec![])),
        )
        .await
    }

    /// A receiver that answers every request with `status`.
    pub async fn answering(status: StatusCode) -> Self {
        Self::start(Duration::ZERO, Arc::new(move |_, _| (status, vec![]))).await
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }
}
