//! Where work came from: the request id and the W3C trace context of the
//! API request that caused it, carried into the work stream entries and
//! the outbox deliveries that request creates, and from there into every
//! callback attempt (`X-Request-Id`, `traceparent`).
//!
//! The API runs each request inside [`scope`] with the request's
//! [`Origin`]; the worker runs each work entry inside [`scope`] with the
//! origin stored on the entry. Stores read [`current`] (as text, for a
//! script argument: [`current_text`]) when they create work or deliveries,
//! so no handler passes it along by hand. In Redis an origin is one field,
//! `trace`, on the stream entry and on the delivery record:
//! `"<request id> <traceparent>"` (see [`Origin::encode`]).
//!
//! Scripts take it as an argument and write it with the platform's
//! `work_add` / `outbox_delivery` (`lua/platform/outbox.lua`): deliveries,
//! net notifications and continuations, workflow steps and participant
//! callbacks, and (kept on the transaction record at commit) a
//! transaction's pipeline steps, status webhooks and sink chunks. Work
//! that no request caused (timers, threshold alerts) has no origin.

use std::fmt;
use std::future::Future;

/// The request id header, answered on every response and sent with every callback.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The W3C Trace Context header.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// The longest request id taken from a client.
pub const REQUEST_ID_MAX: usize = 128;

/// The request id and trace context that caused a piece of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// 1..=128 visible ASCII characters ([`valid_request_id`]).
    pub request_id: String,
    /// The W3C `traceparent` of the originating span, if known.
    pub traceparent: Option<TraceParent>,
}

impl Origin {
    /// The stored form: the request id, then a space and the traceparent
    /// when there is one (a request id has no spaces).
    pub fn encode(&self) -> String {
        match &self.traceparent {
            Some(tp) => format!("{} {tp}", self.request_id),
            None => self.request_id.clone(),
        }
    }

    /// The origin of a stored `trace` field; `None` for an empty or
    /// malformed one (an invalid traceparent is dropped, the id is kept).
    pub fn decode(s: &str) -> Option<Self> {
        let (id, tp) = match s.split_once(' ') {
            Some((id, tp)) => (id, TraceParent::parse(tp)),
            None => (s, None),
        };
        valid_request_id(id).then(|| Self {
            request_id: id.to_owned(),
            traceparent: tp,
        })
    }
}

/// Whether a client's request id is usable: 1..=128 visible ASCII
/// characters (no spaces, no control characters).
pub fn valid_request_id(s: &str) -> bool {
    (1..=REQUEST_ID_MAX).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

/// A new request id (a UUID v7: time-ordered).
pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A W3C `traceparent` (version 00): trace id, parent span id, flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
}

impl TraceParent {
    /// Parse `00-<32 hex>-<16 hex>-<2 hex>`; all-zero ids are invalid.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || version != "00" {
            return None;
        }
        let mut trace_id = [0u8; 16];
        let mut span_id = [0u8; 8];
        let mut f = [0u8; 1];
        hex_into(trace, &mut trace_id)?;
        hex_into(span, &mut span_id)?;
        hex_into(flags, &mut f)?;
        (trace_id != [0; 16] && span_id != [0; 8]).then_some(Self {
            trace_id,
            span_id,
            flags: f[0],
        })
    }

    /// A new trace (random ids, not sampled): what a request without a
    /// `traceparent` starts when tracing is off.
    pub fn random() -> Self {
        let mut trace_id: [u8; 16] = rand::random();
        let mut span_id: [u8; 8] = rand::random();
        trace_id[0] |= 1; // never all zero
        span_id[0] |= 1;
        Self {
            trace_id,
            span_id,
            flags: 0,
        }
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            self.flags
        )
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decode exactly `out.len()` bytes of lowercase hex (W3C allows no uppercase).
fn hex_into(s: &str, out: &mut [u8]) -> Option<()> {
    if s.len() != out.len() * 2 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(())
}

tokio::task_local! {
    static CURRENT: Option<Origin>;
}

/// Run `f` with `origin` as the [`current`] origin.
pub async fn scope<F: Future>(origin: Option<Origin>, f: F) -> F::Output {
    CURRENT.scope(origin, f).await
}

/// The origin of the request or work entry being handled, if any.
pub fn current() -> Option<Origin> {
    CURRENT.try_with(Clone::clone).ok().flatten()
}

/// [`current`] in its stored form, `""` when there is none (a script argument).
pub fn current_text() -> String {
    current().map(|o| o.encode()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn request_ids_are_visible_ascii_up_to_128() {
        assert!(valid_request_id("abc-123"));
        assert!(valid_request_id(&"x".repeat(128)));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id(&"x".repeat(129)));
        assert!(!valid_request_id("has space"));
        assert!(!valid_request_id("tab\there"));
        assert!(!valid_request_id("é"));
        assert!(valid_request_id(&new_request_id()));
    }

    #[test]
    fn traceparents_round_trip_and_reject_bad_input() {
        let s = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let tp = TraceParent::parse(s).unwrap();
        assert_eq!(tp.to_string(), s);
        assert_eq!(tp.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.flags, 1);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        let r = TraceParent::random();
        assert_eq!(TraceParent::parse(&r.to_string()), Some(r));
    }

    #[test]
    fn origins_encode_as_one_field() {
        let tp = TraceParent::random();
        let o = Origin {
            request_id: "abc-123".into(),
            traceparent: Some(tp),
        };
        assert_eq!(Origin::decode(&o.encode()), Some(o));
        let bare = Origin {
            request_id: "r1".into(),
            traceparent: None,
        };
        assert_eq!(bare.encode(), "r1");
        assert_eq!(Origin::decode("r1"), Some(bare));
        assert_eq!(Origin::decode(""), None);
        assert_eq!(
            Origin::decode("r2 garbage").map(|o| o.traceparent),
            Some(None)
        );
    }

    #[tokio::test]
    async fn the_current_origin_is_scoped() {
        assert_eq!(current(), None);
        let o = Origin {
            request_id: "r".into(),
            traceparent: None,
        };
        let seen = scope(Some(o.clone()), async { current() }).await;
        assert_eq!(seen, Some(o));
        assert_eq!(current_text(), "");
    }
}
