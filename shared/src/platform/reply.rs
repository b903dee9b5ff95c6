//! The script reply convention. A script answers a JSON object: on success
//! whatever fields the operation returns, on refusal `{"err": "<code>", …}`
//! with the details alongside. [`parse`] turns the text into a typed value
//! or a [`Refused`] the family maps to its own error.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::errors::StoreError;

/// A script refused the operation: its `err` code and the whole reply.
#[derive(Debug, Clone)]
pub struct Refused {
    pub code: String,
    pub reply: Value,
}

impl Refused {
    /// A string field of the reply, if present.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.reply.get(name).and_then(Value::as_str)
    }
}

/// Parse a script's JSON reply: `Ok(Ok(T))` on success, `Ok(Err(Refused))`
/// when it answered `err`, `Err` when the reply does not parse.
pub fn parse<T: DeserializeOwned>(raw: &str) -> Result<Result<T, Refused>, StoreError> {
    let v: Value =
        serde_json::from_str(raw).map_err(|e| StoreError::Reply(format!("{e}: {raw}")))?;
    if let Some(code) = v.get("err").and_then(Value::as_str) {
        return Ok(Err(Refused {
            code: code.to_owned(),
            reply: v,
        }));
    }
    serde_json::from_value(v)
        .map(Ok)
        .map_err(|e| StoreError::Reply(format!("{e}: {raw}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_is_a_value_a_refusal_or_garbage() {
        let ok: Value = parse::<Value>(r#"{"state":"ok"}"#)
            .expect("parses")
            .expect("not refused");
        assert_eq!(ok["state"], "ok");
        let refused = parse::<Value>(r#"{"err":"not_found","state":"x"}"#)
            .expect("parses")
            .expect_err("refused");
        assert_eq!(refused.code, "not_found");
        assert_eq!(refused.field("state"), Some("x"));
        assert!(parse::<Value>("nope").is_err());
    }
}
