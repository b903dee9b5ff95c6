//! A small client of headless Chromium over the DevTools protocol (CDP),
//! for the console's browser test: launch `chromium --headless` with
//! `--remote-debugging-port=0`, read the port from `DevToolsActivePort`,
//! speak JSON-RPC over the browser's websocket with one flattened session
//! per page, and record every network request a page makes.
//!
//! [`Browser::launch`] answers `None` (the test skips) when no Chromium is
//! installed, unless `SWITCHYARD_TEST_BROWSER=1` (CI), where a missing
//! browser fails the test.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// How long one CDP call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;

/// Network requests seen, by CDP session.
type Requests = Arc<Mutex<HashMap<String, Vec<String>>>>;

/// Load events seen, by CDP session.
type Loads = Arc<Mutex<HashMap<String, u64>>>;

/// A running headless Chromium, killed on drop.
pub struct Browser {
    child: std::process::Child,
    _profile: tempfile::TempDir,
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    requests: Requests,
    loads: Loads,
    next_id: AtomicU64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Chromium binary on `PATH`, if any.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

impl Browser {
    /// Start headless Chromium; `None` when it is not installed (and the
    /// environment does not require it).
    pub async fn launch() -> Option<Browser> {
        let required = std::env::var("SWITCHYARD_TEST_BROWSER").is_ok_and(|v| v == "1");
        let Some(bin) = chromium() else {
            assert!(
                !required,
                "SWITCHYARD_TEST_BROWSER=1 but no chromium on PATH (apt-get install chromium)"
            );
            eprintln!("skipping the browser test: no chromium on PATH (apt-get install chromium)");
            return None;
        };
        let profile = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--hide-scrollbars",
                "--font-render-hinting=none",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let ws_url = devtools_url(profile.path()).await;
        let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .expect("connecting to the DevTools websocket");
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    return;
                }
            }
        });
        let pending: Pending = Arc::default();
        let requests: Requests = Arc::default();
        let loads: Loads = Arc::default();
        let (p, r, l) = (pending.clone(), requests.clone(), loads.clone());
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if let Some(id) = v.get("id").and_then(Value::as_u64) {
                    if let Some(tx) = p.lock().unwrap().remove(&id) {
                        let res = match v.get("error") {
                            Some(e) => Err(e.to_string()),
                            None => Ok(v.get("result").cloned().unwrap_or(Value::Null)),
                        };
                        let _ = tx.send(res);
                    }
                    continue;
                }
                let session = v["sessionId"].as_str().unwrap_or("").to_owned();
                match v["method"].as_str() {
                    Some("Network.requestWillBeSent") => {
                        let url = v["params"]["request"]["url"].as_str().unwrap_or("");
                        r.lock()
                            .unwrap()
                            .entry(session)
                            .or_default()
                            .push(url.to_owned());
                    }
                    Some("Page.loadEventFired") => {
                        *l.lock().unwrap().entry(session).or_default() += 1;
                    }
                    _ => {}
                }
            }
        });
        Some(Browser {
            child,
            _profile: profile,
            out,
            pending,
            requests,
            loads,
            next_id: AtomicU64::new(1),
        })
    }

    /// One CDP call (`session` for a page's domain, `None` for the browser's).
    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        self.out.send(Message::text(msg.to_string())).unwrap();
        match tokio::time::timeout(CALL_TIMEOUT, rx).await {
            Ok(Ok(Ok(v))) => v,
            Ok(Ok(Err(e))) => panic!("{method} failed: {e}"),
            _ => panic!("{method} got no answer in {CALL_TIMEOUT:?}"),
        }
    }

    /// A new tab with network recording on.
    pub async fn new_page(&self) -> Page<'_> {
        let target = self
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        let session = attached["sessionId"].as_str().unwrap().to_owned();
        let page = Page {
            browser: self,
            session,
        };
        page.call("Page.enable", json!({})).await;
        page.call("Network.enable", json!({})).await;
        page.call("Runtime.enable", json!({})).await;
        page
    }
}

/// Wait for Chromium to write `DevToolsActivePort` (port, then the
/// browser target's path) and make the websocket URL of it.
async fn devtools_url(profile: &Path) -> String {
    let file = profile.join("DevToolsActivePort");
    let start = std::time::Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                return format!("ws://127.0.0.1:{}{}", port.trim(), path.trim());
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "chromium did not open its DevTools port"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One tab.
pub struct Page<'b> {
    browser: &'b Browser,
    session: String,
}

impl Page<'_> {
    pub async fn call(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params).await
    }

    fn loads(&self) -> u64 {
        self.browser
            .loads
            .lock()
            .unwrap()
            .get(&self.session)
            .copied()
            .unwrap_or(0)
    }

    /// Every URL this tab has requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.browser
            .requests
            .lock()
            .unwrap()
            .get(&self.session)
            .cloned()
            .unwrap_or_default()
    }

    /// Go to `url` and wait for its load event.
    pub async fn goto(&self, url: &str) {
        let before = self.loads();
        let nav = self.call("Page.navigate", json!({"url": url})).await;
        assert!(nav.get("errorText").is_none(), "navigating to {url}: {nav}");
        self.wait_until(Duration::from_secs(20), || self.loads() > before)
            .await;
    }

    /// Evaluate a JavaScript expression (promises awaited); its value.
    pub async fn eval(&self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expression}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Wait until `expression` is true in the page (at most `limit`).
    pub async fn wait_for(&self, expression: &str, limit: Duration) {
        let start = std::time::Instant::now();
        while self.eval(expression).await != Value::Bool(true) {
            assert!(
                start.elapsed() < limit,
                "{expression} not true within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn wait_until(&self, limit: Duration, f: impl Fn() -> bool) {
        let start = std::time::Instant::now();
        while !f() {
            assert!(
                start.elapsed() < limit,
                "page did not load within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A full-page PNG at `width` CSS pixels, written to `path`.
    pub async fn screenshot(&self, width: u32, path: &Path) {
        let metrics = |height: u64| json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600});
        self.call("Emulation.setDeviceMetricsOverride", metrics(900))
            .await;
        let height = self
            .eval("Math.ceil(document.documentElement.scrollHeight)")
            .await
            .as_u64()
            .unwrap_or(900)
            .clamp(300, 6000);
        self.call("Emulation.setDeviceMetricsOverride", metrics(height))
            .await;
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
        self.call("Emulation.clearDeviceMetricsOverride", json!({}))
            .await;
    }
}
