//! Reading the definition's JSON: typed field helpers, the checks every
//! stage shares (names, URLs), and the top-level fields.

use serde_json::{Map, Value};

#[cfg(doc)]
use super::URL_MAX;
use super::{NAME_MAX, SpecError, err};

const TOP_FIELDS: &[&str] = &[
    "subnets",
    "transitions",
    "initialMarking",
    "initial_marking",
    "bridges",
    "places",
    "active",
];

/// A place, subnet or transition name: 1–100 letters, digits, '-', '_'.
pub(super) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= NAME_MAX
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A callback URL, by the platform's one validator
/// ([`CallbackUrl`](crate::platform::ids::CallbackUrl)): http(s), absolute,
/// with a host, at most [`URL_MAX`] bytes, not a forbidden address unless
/// `allow_link_local`.
pub(super) fn check_url(u: &str, at: &str, allow_link_local: bool) -> Result<(), SpecError> {
    match crate::platform::ids::CallbackUrl::parse(u, allow_link_local) {
        Ok(_) => Ok(()),
        Err(e) => err(at, e.to_string()),
    }
}

/// The error of a required field that is absent.
pub(super) fn missing(location: String) -> SpecError {
    SpecError {
        location,
        message: "missing".into(),
    }
}

/// An optional string field of `o` (which is at `at`).
pub(super) fn str_field<'a>(
    o: &'a Map<String, Value>,
    k: &str,
    at: &str,
) -> Result<Option<&'a str>, SpecError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => err(format!("{at}.{k}"), "must be a string"),
    }
}

/// A required string field of `o` (which is at `at`).
pub(super) fn required_str<'a>(
    o: &'a Map<String, Value>,
    k: &str,
    at: &str,
) -> Result<&'a str, SpecError> {
    str_field(o, k, at)?.ok_or_else(|| missing(format!("{at}.{k}")))
}

/// An optional list of strings (absent or null: empty).
pub(super) fn str_list(v: Option<&Value>, at: &str) -> Result<Vec<String>, SpecError> {
    match v {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, x)| match x {
                Value::String(s) => Ok(s.clone()),
                _ => err(format!("{at}[{i}]"), "must be a string"),
            })
            .collect(),
        Some(_) => err(at, "must be a list of strings"),
    }
}

/// Refuse fields the language does not have.
pub(super) fn check_top_fields(top: &Map<String, Value>) -> Result<(), SpecError> {
    match top.keys().find(|k| !TOP_FIELDS.contains(&k.as_str())) {
        Some(k) => err(format!("body.{k}"), "unknown field"),
        None => Ok(()),
    }
}

/// The optional `places` list: names numbered before any other.
pub(super) fn explicit_places(top: &Map<String, Value>) -> Result<Vec<String>, SpecError> {
    let places = str_list(top.get("places"), "places")?;
    if let Some(i) = places.iter().position(|p| !valid_name(p)) {
        return err(
            format!("places[{i}]"),
            "place names are 1–100 letters, digits, '-' or '_'",
        );
    }
    Ok(places)
}

/// The places that get a colour-0 token at creation (`initialMarking`, or
/// `initial_marking`), as written.
pub(super) fn initial_marking(top: &Map<String, Value>) -> Result<Vec<String>, SpecError> {
    match top.get("initialMarking") {
        Some(v) => str_list(Some(v), "initialMarking"),
        None => str_list(top.get("initial_marking"), "initial_marking"),
    }
}
