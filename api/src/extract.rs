//! The JSON body extractor. gatekeeper parsed bodies whatever their
//! Content-Type, so do we. Syntax errors answer "Json was not valid" with the
//! line and column; shape errors name the path of the offending field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
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
