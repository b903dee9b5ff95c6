//! The JSON body extractor. gatekeeper parsed bodies whatever their
//! Content-Type, so do we. Syntax errors answer "Json was not valid" with the
//! line and column; shape errors name the path of the offending field; a body
//! that is not a JSON object is refused (serde would bind an array to a
//! struct by position).
//!
//! Also the path check of every route ([`path_params`]): a path parameter
//! that does not decode to UTF-8 is answered `path_invalid` naming it.

use axum::body::Bytes;
use axum::extract::{FromRequest, MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::{AppError, Code};

pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::new(
                    Code::BodyTooLarge,
                    "request body is larger than the configured limit (--max-body-bytes)",
                )
            } else {
                AppError::new(Code::BodyUnreadable, rej.body_text())
            }
        })?;
        parse(&bytes).map(JsonBody)
    }
}

/// Parse a JSON body into `T`, with errors that say what and where.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    // Syntax first, so a truncated body is "not valid JSON" rather than a
    // confusing shape error about whatever field the cut fell into.
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(AppError::new(Code::JsonInvalid, "Json was not valid").at(pos(&e)));
    }
    // Every body is an object: an array would be bound to a struct's fields
    // by position (`["a"]` as `{"name": "a"}`), a scalar means a client bug.
    let first = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        return Err(AppError::new(Code::JsonInvalid, "the body must be a JSON object").at("body"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    match result {
        Ok(v) => de
            .end()
            .map(|()| v)
            .map_err(|e| AppError::new(Code::JsonInvalid, "Json was not valid").at(pos(&e))),
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(AppError::new(Code::JsonInvalid, "Json was not valid").at(pos(&inner)));
            }
            let msg = strip_position(&inner.to_string());
            let location = if path == "." {
                "body".to_owned()
            } else {
                format!("body.{path}")
            };
            Err(AppError::invalid(msg).at(location))
        }
    }
}

/// Route layer of every route: each path parameter must percent-decode to
/// UTF-8, else 400 `path_invalid` with `where: "path.<param>"` (axum's own
/// refusal would be a generic `bad_request` without `where`).
pub async fn path_params(req: Request, next: Next) -> Response {
    if let Some(template) = req.extensions().get::<MatchedPath>()
        && let Some(name) = invalid_param(template.as_str(), req.uri().path())
    {
        return AppError::new(
            Code::PathInvalid,
            format!("path parameter {name} is not valid UTF-8 once percent-decoded"),
        )
        .at(format!("path.{name}"))
        .into_response();
    }
    next.run(req).await
}

/// The first parameter of `template` (`/api/gates/{group}/{service}`) whose
/// segment of `path` does not percent-decode to UTF-8.
fn invalid_param(template: &str, path: &str) -> Option<String> {
    let mut segs = path.split('/');
    for t in template.split('/') {
        let seg = segs.next()?;
        let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) else {
            continue;
        };
        if let Some(name) = name.strip_prefix('*') {
            // A wildcard takes the rest of the path.
            let rest: Vec<&str> = std::iter::once(seg).chain(segs.by_ref()).collect();
            return (!decodes(&rest.join("/"))).then(|| name.to_owned());
        }
        if !decodes(seg) {
            return Some(name.to_owned());
        }
    }
    None
}

/// Whether `seg` percent-decodes (as axum does: `%XX` with two hex digits,
/// anything else literally) to valid UTF-8.
fn decodes(seg: &str) -> bool {
    let b = seg.as_bytes();
    if !b.contains(&b'%') {
        return true;
    }
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    std::str::from_utf8(&out).is_ok()
}

fn pos(e: &serde_json::Error) -> String {
    format!("body line {} column {}", e.line(), e.column())
}

/// serde_json appends " at line L column C"; the path already says where.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct B {
        state: String,
        list: Vec<u32>,
    }

    #[test]
    fn syntax_errors_say_json_was_not_valid() {
        let e = parse::<B>(b"{\"state\": ").unwrap_err();
        assert_eq!(e.reason, "Json was not valid");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = parse::<B>(b"{} trailing").unwrap_err();
        assert_eq!(e.reason, "Json was not valid");
    }

    #[test]
    fn bodies_must_be_objects() {
        for body in [
            &b"[\"closed\", []]"[..],
            b" []",
            b"\"x\"",
            b"1",
            b"null",
            b"true",
        ] {
            let e = parse::<B>(body).unwrap_err();
            assert_eq!(e.code, Code::JsonInvalid);
            assert_eq!(e.location.as_deref(), Some("body"));
        }
        let e = parse::<serde_json::Value>(b"\n [1]").unwrap_err();
        assert_eq!(e.location.as_deref(), Some("body"));
        assert!(parse::<serde_json::Value>(b" \r\n\t{}").is_ok());
    }

    #[test]
    fn path_params_must_decode_to_utf8() {
        let t = "/api/gates/{group}/{service}";
        assert_eq!(
            invalid_param(t, "/api/gates/%FF/x").as_deref(),
            Some("group")
        );
        assert_eq!(
            invalid_param(t, "/api/gates/g/%C0%AF").as_deref(),
            Some("service")
        );
        assert_eq!(invalid_param(t, "/api/gates/%C3%A9/%2F%zz%"), None);
        assert_eq!(
            invalid_param("/f/{*rest}", "/f/a/%FF").as_deref(),
            Some("rest")
        );
        assert_eq!(invalid_param("/f/{*rest}", "/f/a/%C3%A9"), None);
    }

    #[test]
    fn shape_errors_name_the_field() {
        let e = parse::<B>(br#"{"state": "x", "list": [1, "two"]}"#).unwrap_err();
        assert_eq!(e.location.as_deref(), Some("body.list[1]"));
        assert!(
            e.reason
                .starts_with("Your json contains invalid information.")
        );
        let e = parse::<B>(br#"{"state": "x", "list": [], "extra": 1}"#).unwrap_err();
        assert!(e.reason.contains("unknown field `extra`"), "{}", e.reason);
    }
}
