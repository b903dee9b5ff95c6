//! Sending one attempt over HTTP: the client (timeouts, no redirects, a
//! DNS resolver that drops forbidden addresses), Standard Webhooks headers
//! and signature, and a response read up to a cap.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchyard_shared::families::deliveries::{BeginAttempt, DeliveryOpts, parse_retry_after};
use switchyard_shared::platform::ids::address_forbidden as forbidden;
use switchyard_shared::platform::trace::{REQUEST_ID_HEADER, TRACEPARENT_HEADER};

/// DNS resolution that drops forbidden addresses.
struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !forbidden(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!(
                    "{host} resolves to no allowed address (link-local/metadata are refused)"
                )
                .into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Standard Webhooks signature: `v1,` + base64(HMAC-SHA256(key, "id.timestamp.body")).
/// A `whsec_` secret is base64 after the prefix; any other is used as bytes.
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| {
        // HMAC accepts keys of any length; this branch cannot be taken.
        <Hmac<Sha256> as Mac>::new_from_slice(b"x").expect("hmac key")
    });
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

pub fn secret_bytes(secret: &str) -> anyhow::Result<Vec<u8>> {
    match secret.strip_prefix("whsec_") {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .context("--webhook-secret: the part after whsec_ must be base64"),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

/// What an attempt carries from the request that caused it: `X-Request-Id`
/// and the W3C `traceparent` (the attempt's own span when spans are
/// exported, else the originating one).
#[derive(Debug, Default)]
pub(crate) struct Carried {
    pub(crate) request_id: Option<String>,
    pub(crate) traceparent: Option<String>,
}

/// The HTTP side of the delivery handler.
pub(crate) struct Sender {
    client: reqwest::Client,
    secret: Option<Vec<u8>>,
    max_response: usize,
}

impl Sender {
    pub(crate) fn new(opts: &DeliveryOpts, allow_link_local: bool) -> anyhow::Result<Self> {
        switchyard_shared::init_tls();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(opts.delivery_connect_timeout)
            .timeout(opts.delivery_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(opts.delivery_per_destination.max(1));
        if !allow_link_local {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        Ok(Self {
            client: builder.build().context("building the HTTP client")?,
            secret: opts
                .webhook_secret
                .as_deref()
                .map(secret_bytes)
                .transpose()?,
            max_response: opts.delivery_max_response_bytes,
        })
    }

    /// Send one attempt (the address was already guarded): the status, a
    /// `Retry-After`, and an error text for anything but a 2xx. The
    /// platform's headers (`webhook-*`, and `x-request-id` / `traceparent`
    /// when carried) replace a delivery's own headers of the same name.
    pub(crate) async fn send(
        &self,
        id: &str,
        a: &BeginAttempt,
        url: &reqwest::Url,
        carried: &Carried,
    ) -> (Option<u16>, Option<Duration>, Option<String>) {
        let method =
            reqwest::Method::from_bytes(a.method.as_bytes()).unwrap_or(reqwest::Method::POST);
        let ts = unix_seconds();
        let mut req = self
            .client
            .request(method, url.clone())
            .header("content-type", "application/json");
        let carried = [
            (REQUEST_ID_HEADER, carried.request_id.as_deref()),
            (TRACEPARENT_HEADER, carried.traceparent.as_deref()),
        ];
        for (k, v) in &a.headers {
            let replaced = carried
                .iter()
                .any(|(name, value)| value.is_some() && k.eq_ignore_ascii_case(name));
            if !replaced {
                req = req.header(k, v);
            }
        }
        for (name, value) in carried {
            if let Some(v) = value {
                req = req.header(name, v);
            }
        }
        req = req
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string());
        if let Some(secret) = &self.secret {
            req = req.header("webhook-signature", sign(secret, id, ts, &a.body));
        }
        let resp = match req.body(a.body.clone()).send().await {
            Ok(r) => r,
            Err(err) => {
                let kind = if err.is_timeout() {
                    "timeout"
                } else if err.is_connect() {
                    "connect error"
                } else {
                    "request error"
                };
                return (None, None, Some(format!("{kind}: {}", error_chain(&err))));
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        // Read at most the configured number of bytes; keep a snippet for errors.
        let mut resp = resp;
        let mut snippet = Vec::new();
        let mut read = 0usize;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    read += chunk.len();
                    if snippet.len() < 200 {
                        snippet.extend_from_slice(&chunk[..chunk.len().min(200 - snippet.len())]);
                    }
                    if read >= self.max_response {
                        break;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    if (200..300).contains(&status) {
                        break; // the status is what counts
                    }
                    return (
                        Some(status),
                        retry_after,
                        Some(format!("reading response: {err}")),
                    );
                }
            }
        }
        let error = (!(200..300).contains(&status)).then(|| {
            let text = String::from_utf8_lossy(&snippet);
            format!("HTTP {status}: {}", text.trim())
        });
        (Some(status), retry_after, error)
    }
}

/// The IP of a URL whose host is an address literal.
pub(crate) fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// Now, in whole seconds since the epoch (`webhook-timestamp`).
fn unix_seconds() -> i64 {
    switchyard_shared::time::now_ms() / 1000
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn link_local_and_metadata_are_forbidden() {
        use switchyard_shared::platform::ids::address_forbidden as forbidden;
        for bad in [
            "169.254.169.254",
            "169.254.1.1",
            "fe80::1",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
        ] {
            assert!(forbidden(bad.parse().unwrap()), "{bad}");
        }
        for ok in [
            "127.0.0.1",
            "10.0.0.1",
            "8.8.8.8",
            "::1",
            "2001:db8::1",
            "fd00::1",
        ] {
            assert!(!forbidden(ok.parse().unwrap()), "{ok}");
        }
    }

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // Example from the Standard Webhooks specification.
        let secret = secret_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
