//! Reliable deliveries (webhooks).

mod api;
mod attempts;
mod crashes;
mod outbox;
mod paging;
mod ssrf;

use std::collections::HashMap;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Standard Webhooks verification, written from the specification: the key
/// is the base64 after `whsec_`; the signed content is `id.timestamp.body`;
/// the header holds space-separated `v1,<base64 HMAC-SHA256>` signatures.
pub fn verify(secret: &str, headers: &HashMap<String, String>, body: &str) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let (Some(id), Some(ts), Some(sigs)) = (
        headers.get("webhook-id"),
        headers.get("webhook-timestamp"),
        headers.get("webhook-signature"),
    ) else {
        return false;
    };
    let ts_num: i64 = ts.parse().unwrap();
    if (chrono::Utc::now().timestamp() - ts_num).abs() > 300 {
        return false; // replay window
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    sigs.split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}
