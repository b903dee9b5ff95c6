//! Launch requests: the body of `POST /v1/workflows`, form-encoded (Rack
//! nested brackets) or JSON, checked and turned into a launch.
//!
//! Two steps, both pure:
//!
//! * [`parse_form`] reads an `application/x-www-form-urlencoded` body the
//!   way Rack does (`callbacks[alpha]=URL`, `fields[a][b]=v`,
//!   `fields[list][]=1&fields[list][]=2`, `+` and `%XX` decoding, the last
//!   of repeated plain keys wins), with limits, into a JSON object whose
//!   values are strings, arrays and objects (`null` for a name without `=`).
//! * [`launch_from`] checks the parameters — from a form or from a JSON body,
//!   which keeps JSON types — with Scriptoria's (Grape's) error texts and
//!   returns a [`Launch`]: the parsed definition, the callback URL(s) kept
//!   *outside* the fields (Scriptoria stored them in `fields.callbacks`, where
//!   a proceed or a merge could rewrite or bury them), and the initial fields.
//!
//! Errors are `{"error": "<Scriptoria's text>", "details"?: "<what and where>"}`.
//! Grape-level problems (missing or mistyped parameters, the callback/callbacks
//! rule) are collected and joined with `", "` as Grape does; after those the
//! definition is read (`workflow is invalid`), then the callback URLs
//! (`callback is invalid` / `callbacks is invalid`) and the fields
//! (`fields is invalid`) are checked, each reported on its own.

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::{Map, Value};

use super::tree::{self, Node};
use crate::platform::ids::CallbackUrl;

/// The largest form body, in bytes (a 256 KiB definition, percent-encoded,
/// plus callbacks and fields).
pub const MAX_FORM_BYTES: usize = 1024 * 1024;
/// The deepest parameter name: `a[b][c]` has 3 levels.
pub const MAX_FORM_DEPTH: usize = 32;
/// The most keys in one object (or elements in one array) of a form.
pub const MAX_KEYS_PER_LEVEL: usize = 512;
/// The most `name=value` pairs in a form body.
pub const MAX_FORM_PAIRS: usize = 8192;
/// The largest `fields`, serialized as JSON, in bytes.
pub const MAX_FIELDS_BYTES: usize = 64 * 1024;
/// The most participants in `callbacks`.
pub const MAX_CALLBACKS: usize = 64;
/// The longest participant name in `callbacks`, in characters.
pub const MAX_PARTICIPANT_CHARS: usize = 100;
/// Top-level field names starting with this are the engine's (`__error__`,
/// `__timed_out__`, `__command__`, …); a client may not set them.
pub const RESERVED_FIELD_PREFIX: &str = "__";

/// Text of the error when neither `callback` nor `callbacks` is given.
pub const CALLBACKS_MISSING: &str =
    "callback, callbacks are missing, exactly one parameter must be provided";
/// Text of the error when both `callback` and `callbacks` are given.
pub const CALLBACKS_EXCLUSIVE: &str = "callback, callbacks are mutually exclusive";
/// Text of the error for a body that cannot be read as parameters.
pub const BODY_INVALID: &str = "body is invalid";

/// A 400 answer: Scriptoria's `error` text and, where it helps, `details`
/// saying what and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LaunchError {
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

impl LaunchError {
    fn new(error: impl Into<String>) -> Self {
        LaunchError {
            error: error.into(),
            details: None,
        }
    }

    fn with(error: impl Into<String>, details: impl Into<String>) -> Self {
        LaunchError {
            error: error.into(),
            details: Some(details.into()),
        }
    }

    fn body(details: impl Into<String>) -> Self {
        Self::with(BODY_INVALID, details)
    }
}

impl std::fmt::Display for LaunchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.error)?;
        if let Some(d) = &self.details {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for LaunchError {}

// ---------------------------------------------------------------------------
// Form bodies (Rack's parse_nested_query / normalize_params)
// ---------------------------------------------------------------------------

/// Reads an `application/x-www-form-urlencoded` body with Rack's rules.
///
/// Pairs are separated by `&` only (as Rack 2 does for form bodies, so a
/// `;` in a definition is kept; spaces right after a `&` are skipped, as
/// Rack's `/[&] */` does); each pair is split at its first `=` and both sides
/// are decoded (`+` → space, `%XX`; a bad `%` sequence or invalid UTF-8 is an
/// error). Names are nested as Rack's `normalize_params` nests them:
/// `a[b]=1` → `{"a": {"b": "1"}}`, `a[]=1&a[]=2` → `{"a": ["1", "2"]}`,
/// `a[][b]=1&a[][c]=2` → `{"a": [{"b": "1", "c": "2"}]}`, `a=1&a=2` →
/// `{"a": "2"}`; mixing shapes (`a=1&a[b]=2`) is an error with Rack's
/// message (``expected Hash (got String) for param `a'``). A name without
/// `=` has the value `null`; empty pairs and names without a key are
/// ignored. Never panics.
pub fn parse_form(body: &[u8]) -> Result<Value, LaunchError> {
    if body.len() > MAX_FORM_BYTES {
        return Err(LaunchError::body(format!(
            "the body is {} bytes long (at most {MAX_FORM_BYTES} bytes)",
            body.len()
        )));
    }
    let mut params = Map::new();
    let mut pairs = 0usize;
    let mut first = true;
    for raw in body.split(|b| *b == b'&') {
        let raw = if first {
            first = false;
            raw
        } else {
            let skip = raw.iter().take_while(|b| **b == b' ').count();
            &raw[skip..]
        };
        if raw.is_empty() {
            continue;
        }
        pairs += 1;
        if pairs > MAX_FORM_PAIRS {
            return Err(LaunchError::body(format!(
                "too many parameters (at most {MAX_FORM_PAIRS})"
            )));
        }
        let (name, value) = match raw.iter().position(|b| *b == b'=') {
            Some(i) => (&raw[..i], Some(&raw[i + 1..])),
            None => (raw, None),
        };
        let name = decode(name)?;
        let value = match value {
            Some(v) => Value::String(decode(v)?),
            None => Value::Null,
        };
        normalize(&mut params, &name, value, MAX_FORM_DEPTH)?;
    }
    Ok(Value::Object(params))
}

/// `URI.decode_www_form_component`: `+` is a space, `%XX` a byte; the
/// result must be UTF-8.
fn decode(raw: &[u8]) -> Result<String, LaunchError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = raw.get(i + 1).and_then(|b| hex(*b));
                let lo = raw.get(i + 2).and_then(|b| hex(*b));
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    let end = (i + 3).min(raw.len());
                    return Err(LaunchError::body(format!(
                        "invalid %-encoding ({})",
                        String::from_utf8_lossy(&raw[i..end])
                    )));
                };
                out.push(hi * 16 + lo);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|e| {
        LaunchError::body(format!(
            "a parameter is not valid UTF-8 (at byte {} once decoded)",
            e.utf8_error().valid_up_to()
        ))
    })
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Ruby's class name for a parsed value, as Rack's messages show it.
fn ruby_class(v: &Value) -> &'static str {
    match v {
        Value::Null => "NilClass",
        Value::Bool(true) => "TrueClass",
        Value::Bool(false) => "FalseClass",
        Value::Number(_) => "Integer",
        Value::String(_) => "String",
        Value::Array(_) => "Array",
        Value::Object(_) => "Hash",
    }
}

fn type_error(expected: &str, got: &Value, key: &str) -> LaunchError {
    LaunchError::body(format!(
        "expected {expected} (got {}) for param `{key}'",
        ruby_class(got)
    ))
}

fn too_many_keys() -> LaunchError {
    LaunchError::body(format!(
        "too many keys in one level of a parameter (at most {MAX_KEYS_PER_LEVEL})"
    ))
}

fn too_deep() -> LaunchError {
    LaunchError::body(format!(
        "a parameter name is nested too deeply (at most {MAX_FORM_DEPTH} levels)"
    ))
}

/// Room for one more key in `map` (replacing an existing key is free).
fn room(map: &Map<String, Value>, key: &str) -> Result<(), LaunchError> {
    if map.len() >= MAX_KEYS_PER_LEVEL && !map.contains_key(key) {
        return Err(too_many_keys());
    }
    Ok(())
}

fn push(items: &mut Vec<Value>, v: Value) -> Result<(), LaunchError> {
    if items.len() >= MAX_KEYS_PER_LEVEL {
        return Err(too_many_keys());
    }
    items.push(v);
    Ok(())
}

/// Splits a name as `\A[\[\]]*([^\[\]]+)\]*` does: the key and what follows.
fn split_name(name: &str) -> Option<(&str, &str)> {
    let rest = name.trim_start_matches(['[', ']']);
    let end = rest.find(['[', ']']).unwrap_or(rest.len());
    if end == 0 {
        return None;
    }
    let key = &rest[..end];
    let after = rest[end..].trim_start_matches(']');
    Some((key, after))
}

/// Rack's `normalize_params`, ported branch by branch.
fn normalize(
    params: &mut Map<String, Value>,
    name: &str,
    v: Value,
    depth: usize,
) -> Result<(), LaunchError> {
    if depth == 0 {
        return Err(too_deep());
    }
    let Some((k, after)) = split_name(name) else {
        return Ok(());
    };
    if after.is_empty() {
        room(params, k)?;
        params.insert(k.to_owned(), v);
    } else if after == "[" {
        room(params, name)?;
        params.insert(name.to_owned(), v);
    } else if after == "[]" {
        let items = array_at(params, k)?;
        push(items, v)?;
    } else if let Some(child) = after.strip_prefix("[]") {
        // `[][x]` → child key `x`; any other `[]…` → the rest as it is.
        let child_key = child
            .strip_prefix('[')
            .and_then(|c| c.strip_suffix(']'))
            .filter(|c| !c.is_empty() && !c.contains(['[', ']']))
            .unwrap_or(child);
        let items = array_at(params, k)?;
        match items.last_mut() {
            Some(Value::Object(last)) if !last.contains_key(child_key) => {
                normalize(last, child_key, v, depth - 1)?;
            }
            _ if split_name(child_key).is_none() => push(items, Value::Null)?,
            _ => {
                let mut fresh = Map::new();
                normalize(&mut fresh, child_key, v, depth - 1)?;
                push(items, Value::Object(fresh))?;
            }
        }
    } else {
        let slot = slot_at(params, k, || Value::Object(Map::new()))?;
        match slot {
            Value::Object(inner) => normalize(inner, after, v, depth - 1)?,
            other => return Err(type_error("Hash", other, k)),
        }
    }
    Ok(())
}

/// `params[k] ||= default` (a `nil` is replaced too).
fn slot_at<'a>(
    params: &'a mut Map<String, Value>,
    k: &str,
    default: impl FnOnce() -> Value,
) -> Result<&'a mut Value, LaunchError> {
    room(params, k)?;
    let slot = params.entry(k.to_owned()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = default();
    }
    Ok(slot)
}

/// `params[k] ||= []`, which must be an array.
fn array_at<'a>(
    params: &'a mut Map<String, Value>,
    k: &str,
) -> Result<&'a mut Vec<Value>, LaunchError> {
    let slot = slot_at(params, k, || Value::Array(Vec::new()))?;
    match slot {
        Value::Array(items) => Ok(items),
        other => Err(type_error("Array", other, k)),
    }
}

// ---------------------------------------------------------------------------
// Launch parameters
// ---------------------------------------------------------------------------

/// Where participant callbacks go: one URL for every participant
/// (`callback`), or one per participant name (`callbacks`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callbacks {
    All(CallbackUrl),
    ByParticipant(IndexMap<String, CallbackUrl>),
}

impl Callbacks {
    /// The URL for a participant (after `${}` substitution), if any.
    pub fn url_for(&self, participant: &str) -> Option<&CallbackUrl> {
        match self {
            Callbacks::All(url) => Some(url),
            Callbacks::ByParticipant(map) => map.get(participant),
        }
    }

    /// As Scriptoria's `fields.callbacks` looked: a string or an object of
    /// participant → URL.
    pub fn to_json(&self) -> Value {
        match self {
            Callbacks::All(url) => Value::String(url.url().as_str().to_owned()),
            Callbacks::ByParticipant(map) => Value::Object(
                map.iter()
                    .map(|(k, u)| (k.clone(), Value::String(u.url().as_str().to_owned())))
                    .collect(),
            ),
        }
    }
}

/// A checked launch: the definition, where callbacks go (never inside
/// `fields`), and the initial workitem fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub definition: Node,
    pub callbacks: Callbacks,
    pub fields: Map<String, Value>,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks launch parameters — a JSON body, or a form after [`parse_form`] —
/// and builds the [`Launch`].
///
/// * `workflow` (required): definition text in XML, JSON or Radial (read
///   with [`tree::read`]), or a JSON tree value (`[name, {attrs}, [children]]`).
/// * `callback` (a URL) or `callbacks` (an object participant → URL):
///   exactly one; presence is key presence, as in Grape (`""` and `null`
///   count as given). URLs are checked with [`CallbackUrl::parse`].
/// * `fields` (optional object; `null` = none), at most
///   [`MAX_FIELDS_BYTES`] serialized; top-level names starting with
///   [`RESERVED_FIELD_PREFIX`] are refused.
///
/// Other parameters are ignored, as Grape ignores them.
pub fn launch_from(params: &Value, allow_link_local: bool) -> Result<Launch, LaunchError> {
    let Value::Object(params) = params else {
        return Err(LaunchError::body(format!(
            "the parameters must be an object, found {}",
            kind(params)
        )));
    };

    // Grape: presence and types, then exactly_one_of; collected and joined.
    let mut errors: Vec<String> = Vec::new();
    let mut details: Vec<String> = Vec::new();
    let mut fail = |error: &str, detail: Option<String>| {
        if !errors.iter().any(|e| e == error) {
            errors.push(error.to_owned());
        }
        if let Some(d) = detail {
            details.push(d);
        }
    };
    let workflow = params.get("workflow");
    match workflow {
        None => fail("workflow is missing", None),
        Some(Value::String(_) | Value::Array(_) | Value::Object(_)) => {}
        Some(other) => fail(
            "workflow is invalid",
            Some(format!(
                "workflow must be a definition (XML, JSON or Radial text) or a JSON tree, found {}",
                kind(other)
            )),
        ),
    }
    let callback = params.get("callback");
    if let Some(v) = callback
        && !matches!(v, Value::String(_) | Value::Null)
    {
        fail(
            "callback is invalid",
            Some(format!("callback must be a URL string, found {}", kind(v))),
        );
    }
    let callbacks = params.get("callbacks");
    if let Some(v) = callbacks
        && !matches!(v, Value::Object(_) | Value::Null)
    {
        fail(
            "callbacks is invalid",
            Some(format!(
                "callbacks must be an object of participant name to URL, found {}",
                kind(v)
            )),
        );
    }
    let fields = params.get("fields");
    if let Some(v) = fields
        && !matches!(v, Value::Object(_) | Value::Null)
    {
        fail(
            "fields is invalid",
            Some(format!("fields must be an object, found {}", kind(v))),
        );
    }
    match (callback.is_some(), callbacks.is_some()) {
        (false, false) => fail(CALLBACKS_MISSING, None),
        (true, true) => fail(CALLBACKS_EXCLUSIVE, None),
        _ => {}
    }
    if !errors.is_empty() {
        return Err(LaunchError {
            error: errors.join(", "),
            details: (!details.is_empty()).then(|| details.join("; ")),
        });
    }

    // The definition, parsed and validated before anything else.
    let definition = match workflow {
        Some(Value::String(source)) => tree::read(source),
        Some(value) => read_tree_value(value),
        None => return Err(LaunchError::new("workflow is missing")),
    }
    .map_err(|e| LaunchError::with("workflow is invalid", e.to_string()))?;

    let callbacks = match (callback, callbacks) {
        (Some(url), None) => Callbacks::All(one_url(url, allow_link_local)?),
        (None, Some(map)) => Callbacks::ByParticipant(url_map(map, allow_link_local)?),
        (Some(_), Some(_)) => return Err(LaunchError::new(CALLBACKS_EXCLUSIVE)),
        (None, None) => return Err(LaunchError::new(CALLBACKS_MISSING)),
    };

    let fields = match fields {
        Some(Value::Object(map)) => check_fields(map)?,
        _ => Map::new(),
    };

    Ok(Launch {
        definition,
        callbacks,
        fields,
    })
}

/// A JSON tree value: the same limits as a definition text.
fn read_tree_value(value: &Value) -> Result<Node, tree::TreeError> {
    let node = Node::from_json(value)?;
    let size = serde_json::to_vec(value).map_or(usize::MAX, |v| v.len());
    if size > tree::MAX_SOURCE_BYTES {
        return Err(tree::TreeError {
            line: 0,
            column: 0,
            path: None,
            message: format!(
                "the definition is {size} bytes long (at most {} bytes)",
                tree::MAX_SOURCE_BYTES
            ),
        });
    }
    tree::validate(&node)?;
    Ok(node)
}

fn one_url(v: &Value, allow_link_local: bool) -> Result<CallbackUrl, LaunchError> {
    let raw = v.as_str().unwrap_or_default();
    CallbackUrl::parse(raw, allow_link_local)
        .map_err(|e| LaunchError::with("callback is invalid", format!("callback: {e}")))
}

fn url_map(
    v: &Value,
    allow_link_local: bool,
) -> Result<IndexMap<String, CallbackUrl>, LaunchError> {
    let invalid = |d: String| LaunchError::with("callbacks is invalid", d);
    let Value::Object(map) = v else {
        return Err(invalid(format!(
            "callbacks must be an object of participant name to URL, found {}",
            kind(v)
        )));
    };
    if map.len() > MAX_CALLBACKS {
        return Err(invalid(format!(
            "callbacks has {} participants (at most {MAX_CALLBACKS})",
            map.len()
        )));
    }
    let mut out = IndexMap::with_capacity(map.len());
    for (name, raw) in map {
        let chars = name.chars().count();
        if chars == 0 || chars > MAX_PARTICIPANT_CHARS {
            return Err(invalid(format!(
                "callbacks[{}]: a participant name must be 1 to {MAX_PARTICIPANT_CHARS} characters",
                name.chars().take(MAX_PARTICIPANT_CHARS).collect::<String>()
            )));
        }
        let Value::String(raw) = raw else {
            return Err(invalid(format!(
                "callbacks[{name}]: must be a URL string, found {}",
                kind(raw)
            )));
        };
        let url = CallbackUrl::parse(raw, allow_link_local)
            .map_err(|e| invalid(format!("callbacks[{name}]: {e}")))?;
        out.insert(name.clone(), url);
    }
    Ok(out)
}

fn check_fields(map: &Map<String, Value>) -> Result<Map<String, Value>, LaunchError> {
    let invalid = |d: String| LaunchError::with("fields is invalid", d);
    if let Some(key) = map.keys().find(|k| k.starts_with(RESERVED_FIELD_PREFIX)) {
        return Err(invalid(format!(
            "fields[{key}]: names starting with \"{RESERVED_FIELD_PREFIX}\" are reserved for the engine"
        )));
    }
    let size = serde_json::to_vec(map).map_or(usize::MAX, |v| v.len());
    if size > MAX_FIELDS_BYTES {
        return Err(invalid(format!(
            "fields are {size} bytes as JSON (at most {MAX_FIELDS_BYTES} bytes)"
        )));
    }
    Ok(map.clone())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    const SEED_DEF: &str =
        r#"<process-definition name="aaa"><participant ref="alpha" /></process-definition>"#;
    const ALPHA: &str = "http://localhost:1234/callbacks/alpha";

    fn form(s: &str) -> Value {
        parse_form(s.as_bytes()).unwrap()
    }

    fn form_err(s: &str) -> LaunchError {
        parse_form(s.as_bytes()).unwrap_err()
    }

    fn launch(v: Value) -> Result<Launch, LaunchError> {
        launch_from(&v, false)
    }

    fn err(v: Value) -> LaunchError {
        launch(v).unwrap_err()
    }

    fn enc(s: &str) -> String {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(char::from(b));
            } else if b == b' ' {
                out.push('+');
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    // ----- parse_form: Rack's rules -----

    #[test]
    fn plain_pairs_and_decoding() {
        assert_eq!(
            form("a=1&b=x+y&c=%41%2b%26"),
            json!({"a": "1", "b": "x y", "c": "A+&"})
        );
        assert_eq!(form("k%5Bx%5D=1"), json!({"k": {"x": "1"}}));
        assert_eq!(form("a=%C3%A9"), json!({"a": "é"}));
        assert_eq!(form("a=b=c"), json!({"a": "b=c"}));
        assert_eq!(form(""), json!({}));
        // Only `&` separates (Rack's form-body separator); `;` is data.
        assert_eq!(form("a=1;b=2"), json!({"a": "1;b=2"}));
        assert_eq!(form("f[a+b]=1"), json!({"f": {"a b": "1"}}));
    }

    #[test]
    fn repeated_plain_key_last_wins() {
        assert_eq!(form("a=1&a=2"), json!({"a": "2"}));
        assert_eq!(form("a[x]=1&a[x]=2"), json!({"a": {"x": "2"}}));
    }

    #[test]
    fn empty_pairs_names_and_values() {
        assert_eq!(form("&&a=1&&"), json!({"a": "1"}));
        assert_eq!(form("a"), json!({"a": null}));
        assert_eq!(form("a="), json!({"a": ""}));
        assert_eq!(form("=1&[]=2&[=3"), json!({}));
        assert_eq!(form("a=1&  b=2"), json!({"a": "1", "b": "2"}));
        assert_eq!(form(" a=1"), json!({" a": "1"}));
    }

    #[test]
    fn nested_hashes() {
        assert_eq!(
            form("fields[a][b]=v&fields[a][c]=w&fields[k]=z"),
            json!({"fields": {"a": {"b": "v", "c": "w"}, "k": "z"}})
        );
        assert_eq!(
            form("fields[acl][uid:j.smith]=assignee"),
            json!({"fields": {"acl": {"uid:j.smith": "assignee"}}})
        );
    }

    #[test]
    fn arrays() {
        assert_eq!(
            form("fields[list][]=1&fields[list][]=2"),
            json!({"fields": {"list": ["1", "2"]}})
        );
        assert_eq!(
            form("a[][b]=1&a[][c]=2"),
            json!({"a": [{"b": "1", "c": "2"}]})
        );
        assert_eq!(
            form("a[][b]=1&a[][b]=2"),
            json!({"a": [{"b": "1"}, {"b": "2"}]})
        );
        assert_eq!(
            form("a[][b][c]=1&a[][b][d]=2"),
            json!({"a": [{"b": {"c": "1", "d": "2"}}]})
        );
        // `params[k] ||= []` replaces a nil.
        assert_eq!(form("a&a[]=1"), json!({"a": ["1"]}));
    }

    #[test]
    fn odd_names_as_rack() {
        assert_eq!(form("a]=1"), json!({"a": "1"}));
        assert_eq!(form("a[=1"), json!({"a[": "1"}));
        assert_eq!(form("a[b=1"), json!({"a": {"b": "1"}}));
        assert_eq!(form("[a]=1"), json!({"a": "1"}));
        assert_eq!(form("a[b]]=1"), json!({"a": {"b": "1"}}));
        // Child key `[]`, which has no key: Rack's early return pushes nil.
        assert_eq!(form("a[][]=1"), json!({"a": [null]}));
    }

    #[test]
    fn shape_conflicts_use_racks_messages() {
        let e = form_err("a=1&a[b]=2");
        assert_eq!(e.error, "body is invalid");
        assert_eq!(
            e.details.as_deref(),
            Some("expected Hash (got String) for param `a'")
        );
        assert_eq!(
            form_err("a[]=1&a[b]=2").details.as_deref(),
            Some("expected Hash (got Array) for param `a'")
        );
        assert_eq!(
            form_err("a[b]=1&a[]=2").details.as_deref(),
            Some("expected Array (got Hash) for param `a'")
        );
        assert_eq!(
            form_err("fields[b]=1&fields[b][c]=2").details.as_deref(),
            Some("expected Hash (got String) for param `b'")
        );
        assert_eq!(
            form_err("a=x&a[][b]=2").details.as_deref(),
            Some("expected Array (got String) for param `a'")
        );
    }

    #[test]
    fn malformed_encoding() {
        for bad in ["a=%", "a=%4", "a=%zz", "%g1=1", "a=%C3"] {
            let e = form_err(bad);
            assert_eq!(e.error, "body is invalid", "{bad}");
        }
        assert_eq!(
            form_err("a=%zz").details.as_deref(),
            Some("invalid %-encoding (%zz)")
        );
        assert!(parse_form(b"a=\xff").is_err());
    }

    #[test]
    fn limits() {
        let big = vec![b'a'; MAX_FORM_BYTES + 1];
        assert!(
            parse_form(&big)
                .unwrap_err()
                .details
                .unwrap()
                .contains("bytes")
        );

        let ok = format!("a{}=1", "[b]".repeat(MAX_FORM_DEPTH - 1));
        assert!(parse_form(ok.as_bytes()).is_ok());
        let deep = format!("a{}=1", "[b]".repeat(MAX_FORM_DEPTH));
        assert!(
            form_err(&deep)
                .details
                .unwrap()
                .contains("nested too deeply")
        );

        let wide: Vec<String> = (0..=MAX_KEYS_PER_LEVEL)
            .map(|i| format!("f[k{i}]=1"))
            .collect();
        assert!(
            form_err(&wide.join("&"))
                .details
                .unwrap()
                .contains("too many keys")
        );
        let long: Vec<&str> = (0..=MAX_KEYS_PER_LEVEL).map(|_| "f[]=1").collect();
        assert!(
            form_err(&long.join("&"))
                .details
                .unwrap()
                .contains("too many keys")
        );
        // Replacing a key does not count.
        let same: Vec<&str> = (0..=MAX_KEYS_PER_LEVEL).map(|_| "f[k]=1").collect();
        assert!(parse_form(same.join("&").as_bytes()).is_ok());

        let many: Vec<&str> = (0..=MAX_FORM_PAIRS).map(|_| "a=1").collect();
        assert!(
            form_err(&many.join("&"))
                .details
                .unwrap()
                .contains("too many parameters")
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"[]=&%+ab0F;\xff\xc3\xa9";
        for round in 0..5000 {
            let len = usize::try_from(next() % 64).unwrap();
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = next();
                    if round % 2 == 0 {
                        alphabet[usize::try_from(r % alphabet.len() as u64).unwrap()]
                    } else {
                        r.to_le_bytes()[0]
                    }
                })
                .collect();
            if let Ok(v) = parse_form(&bytes) {
                assert!(v.is_object());
                let _ = launch_from(&v, false);
            }
        }
    }

    // ----- the seed's example -----

    #[test]
    fn seed_example_form_as_curl_sends_it() {
        // curl -d does not encode: the body is the literal text.
        let body = format!("workflow={SEED_DEF}&callbacks[alpha]={ALPHA}");
        let params = parse_form(body.as_bytes()).unwrap();
        let l = launch(params).unwrap();
        assert!(l.definition.is_define());
        assert_eq!(l.definition.children.len(), 1);
        assert_eq!(l.definition.children[0].reference(), Some("alpha"));
        assert_eq!(l.callbacks.url_for("alpha").unwrap().url().as_str(), ALPHA);
        assert!(l.callbacks.url_for("beta").is_none());
        assert_eq!(l.callbacks.to_json(), json!({"alpha": ALPHA}));
        assert!(l.fields.is_empty());
    }

    #[test]
    fn seed_example_form_encoded_with_fields() {
        let body = format!(
            "workflow={}&callbacks%5Balpha%5D={}&fields[k]=v&fields[a][b]=true&fields[list][]=1&fields[list][]=2",
            enc(SEED_DEF),
            enc(ALPHA)
        );
        let l = launch(parse_form(body.as_bytes()).unwrap()).unwrap();
        assert_eq!(l.definition.children[0].reference(), Some("alpha"));
        assert_eq!(
            Value::Object(l.fields),
            json!({"k": "v", "a": {"b": "true"}, "list": ["1", "2"]})
        );
        assert!(matches!(l.callbacks, Callbacks::ByParticipant(_)));
    }

    #[test]
    fn seed_example_json() {
        let l = launch(json!({
            "workflow": SEED_DEF,
            "callbacks": {"alpha": ALPHA},
            "fields": {"n": 1, "ok": true, "nested": {"x": [1, 2]}, "callbacks": "user data"}
        }))
        .unwrap();
        assert_eq!(l.definition.children[0].reference(), Some("alpha"));
        assert_eq!(l.callbacks.url_for("alpha").unwrap().url().as_str(), ALPHA);
        // A user's own `callbacks` field is just data: routing lives outside fields.
        assert_eq!(
            Value::Object(l.fields),
            json!({"n": 1, "ok": true, "nested": {"x": [1, 2]}, "callbacks": "user data"})
        );
    }

    #[test]
    fn json_tree_value_and_string_give_the_same_definition() {
        let tree = json!(["define", {"name": "aaa"}, [["participant", {"ref": "alpha"}, []]]]);
        let a = launch(json!({"workflow": tree, "callback": ALPHA})).unwrap();
        let b = launch(json!({"workflow": tree.to_string(), "callback": ALPHA})).unwrap();
        let c = launch(json!({"workflow": SEED_DEF, "callback": ALPHA})).unwrap();
        assert_eq!(a.definition, b.definition);
        assert_eq!(a.definition.children, c.definition.children);
        assert_eq!(a.callbacks.to_json(), json!(ALPHA));
        assert_eq!(a.callbacks.url_for("anyone").unwrap().url().as_str(), ALPHA);
    }

    #[test]
    fn radial_definition() {
        let def = "define\n  alpha\n  participant bravo\n";
        let l = launch(json!({"workflow": def, "callback": ALPHA})).unwrap();
        assert_eq!(l.definition.children.len(), 2);
        assert_eq!(l.definition.children[1].reference(), Some("bravo"));
    }

    #[test]
    fn catch_all_callback_form() {
        let body = format!("workflow={}&callback={}", enc(SEED_DEF), enc(ALPHA));
        let l = launch(parse_form(body.as_bytes()).unwrap()).unwrap();
        assert!(matches!(l.callbacks, Callbacks::All(_)));
    }

    // ----- error texts -----

    #[test]
    fn workflow_missing() {
        let e = err(json!({"callback": ALPHA}));
        assert_eq!(e.error, "workflow is missing");
        assert_eq!(e.details, None);
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"error": "workflow is missing"})
        );
    }

    #[test]
    fn workflow_invalid_has_details() {
        let e = err(
            json!({"workflow": "<process-definition><sequence></process-definition>", "callback": ALPHA}),
        );
        assert_eq!(e.error, "workflow is invalid");
        let d = e.details.clone().unwrap();
        assert!(d.contains("line"), "{d}");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["error"], "workflow is invalid");
        assert!(v["details"].is_string());

        let e = err(json!({"workflow": "", "callback": ALPHA}));
        assert_eq!(e.error, "workflow is invalid");
        assert!(e.details.unwrap().contains("empty"));

        let e = err(json!({"workflow": ["define", {}, [["sequence", [], []]]], "callback": ALPHA}));
        assert_eq!(e.error, "workflow is invalid");
        assert!(e.details.unwrap().contains("[2][0][1]"));

        let e = err(json!({"workflow": {}, "callback": ALPHA}));
        assert_eq!(e.error, "workflow is invalid");

        for v in [json!(42), json!(true), json!(null)] {
            let e = err(json!({"workflow": v, "callback": ALPHA}));
            assert_eq!(e.error, "workflow is invalid");
            assert!(e.details.unwrap().contains("workflow must be"));
        }
    }

    #[test]
    fn workflow_too_large() {
        let big = format!(
            "define\n  alpha x: '{}'\n",
            "y".repeat(tree::MAX_SOURCE_BYTES)
        );
        let e = err(json!({"workflow": big, "callback": ALPHA}));
        assert_eq!(e.error, "workflow is invalid");
        assert!(e.details.unwrap().contains("bytes"));
        let tree = json!(["define", {"x": "y".repeat(tree::MAX_SOURCE_BYTES)}, []]);
        let e = err(json!({"workflow": tree, "callback": ALPHA}));
        assert_eq!(e.error, "workflow is invalid");
        assert!(e.details.unwrap().contains("bytes"));
    }

    #[test]
    fn callbacks_missing_and_exclusive() {
        let e = err(json!({"workflow": SEED_DEF}));
        assert_eq!(
            e.error,
            "callback, callbacks are missing, exactly one parameter must be provided"
        );
        let e =
            err(json!({"workflow": SEED_DEF, "callback": ALPHA, "callbacks": {"alpha": ALPHA}}));
        assert_eq!(e.error, "callback, callbacks are mutually exclusive");
        // Presence is key presence: null and "" count as given.
        let e = err(json!({"workflow": SEED_DEF, "callback": null, "callbacks": {}}));
        assert_eq!(e.error, CALLBACKS_EXCLUSIVE);
        let e = err(form(&format!(
            "workflow={}&callback=&callbacks[a]=x",
            enc(SEED_DEF)
        )));
        assert_eq!(e.error, CALLBACKS_EXCLUSIVE);
    }

    #[test]
    fn grape_errors_are_joined() {
        let e = err(json!({}));
        assert_eq!(
            e.error,
            "workflow is missing, callback, callbacks are missing, exactly one parameter must be provided"
        );
        let e = launch(form("fields=x")).unwrap_err();
        assert_eq!(
            e.error,
            "workflow is missing, fields is invalid, callback, callbacks are missing, exactly one parameter must be provided"
        );
        assert_eq!(
            e.details.as_deref(),
            Some("fields must be an object, found a string")
        );
    }

    #[test]
    fn mistyped_parameters() {
        let e = err(json!({"workflow": SEED_DEF, "callback": {"alpha": ALPHA}}));
        assert_eq!(e.error, "callback is invalid");
        let e = err(json!({"workflow": SEED_DEF, "callbacks": ALPHA}));
        assert_eq!(e.error, "callbacks is invalid");
        let e = launch(form(&format!(
            "workflow={}&callbacks={}",
            enc(SEED_DEF),
            enc(ALPHA)
        )))
        .unwrap_err();
        assert_eq!(e.error, "callbacks is invalid");
        let e = launch(form(&format!(
            "workflow={}&callback[a]={}",
            enc(SEED_DEF),
            enc(ALPHA)
        )))
        .unwrap_err();
        assert_eq!(e.error, "callback is invalid");
        let e = err(json!({"workflow": SEED_DEF, "callback": ALPHA, "fields": [1]}));
        assert_eq!(e.error, "fields is invalid");
        let e = launch(json!([1])).unwrap_err();
        assert_eq!(e.error, "body is invalid");
    }

    #[test]
    fn invalid_callback_urls() {
        for bad in [
            "",
            "not a url",
            "ftp://x/y",
            "http://169.254.169.254/latest",
            "/relative",
        ] {
            let e = err(json!({"workflow": SEED_DEF, "callback": bad}));
            assert_eq!(e.error, "callback is invalid", "{bad}");
            assert!(e.details.unwrap().starts_with("callback: "));
        }
        let e = err(json!({"workflow": SEED_DEF, "callback": null}));
        assert_eq!(e.error, "callback is invalid");
        // Link-local allowed when configured.
        let v = json!({"workflow": SEED_DEF, "callback": "http://169.254.169.254/x"});
        assert!(launch_from(&v, true).is_ok());

        let e = err(json!({"workflow": SEED_DEF, "callbacks": {"alpha": "ftp://x"}}));
        assert_eq!(e.error, "callbacks is invalid");
        assert!(e.details.unwrap().starts_with("callbacks[alpha]: "));
        let e = err(json!({"workflow": SEED_DEF, "callbacks": {"alpha": 3}}));
        assert_eq!(e.error, "callbacks is invalid");
        let e = launch(form(&format!(
            "workflow={}&callbacks[alpha][x]=y",
            enc(SEED_DEF)
        )))
        .unwrap_err();
        assert_eq!(e.error, "callbacks is invalid");
        assert!(e.details.unwrap().contains("found an object"));
        let e = launch(form(&format!(
            "workflow={}&callbacks[alpha]",
            enc(SEED_DEF)
        )))
        .unwrap_err();
        assert_eq!(e.error, "callbacks is invalid");
    }

    #[test]
    fn callbacks_limits() {
        let many: Map<String, Value> = (0..=MAX_CALLBACKS)
            .map(|i| (format!("p{i}"), json!(ALPHA)))
            .collect();
        let e = err(json!({"workflow": SEED_DEF, "callbacks": many}));
        assert_eq!(e.error, "callbacks is invalid");
        assert!(e.details.unwrap().contains("at most 64"));
        let enough: Map<String, Value> = (0..MAX_CALLBACKS)
            .map(|i| (format!("p{i}"), json!(ALPHA)))
            .collect();
        assert!(launch(json!({"workflow": SEED_DEF, "callbacks": enough})).is_ok());

        let long = "é".repeat(MAX_PARTICIPANT_CHARS + 1);
        let e = err(json!({"workflow": SEED_DEF, "callbacks": {long: ALPHA}}));
        assert_eq!(e.error, "callbacks is invalid");
        let ok = "é".repeat(MAX_PARTICIPANT_CHARS);
        assert!(launch(json!({"workflow": SEED_DEF, "callbacks": {ok: ALPHA}})).is_ok());
        let e = err(json!({"workflow": SEED_DEF, "callbacks": {"": ALPHA}}));
        assert_eq!(e.error, "callbacks is invalid");
        // An empty map is accepted, as Scriptoria does (participants fail when reached).
        assert!(launch(json!({"workflow": SEED_DEF, "callbacks": {}})).is_ok());
    }

    #[test]
    fn fields_checks() {
        let l = launch(json!({"workflow": SEED_DEF, "callback": ALPHA, "fields": null})).unwrap();
        assert!(l.fields.is_empty());
        let e = err(json!({"workflow": SEED_DEF, "callback": ALPHA, "fields": {"__error__": 1}}));
        assert_eq!(e.error, "fields is invalid");
        assert!(e.details.unwrap().contains("__error__"));
        let big = "x".repeat(MAX_FIELDS_BYTES);
        let e = err(json!({"workflow": SEED_DEF, "callback": ALPHA, "fields": {"a": big}}));
        assert_eq!(e.error, "fields is invalid");
        assert!(e.details.unwrap().contains("65536"));
        // Nested `__` names are data.
        assert!(
            launch(json!({"workflow": SEED_DEF, "callback": ALPHA, "fields": {"a": {"__x": 1}}}))
                .is_ok()
        );
    }

    #[test]
    fn extra_parameters_are_ignored() {
        let l = launch(json!({"workflow": SEED_DEF, "callback": ALPHA, "other": 1})).unwrap();
        assert!(l.fields.is_empty());
    }

    #[test]
    fn error_display_and_serialization() {
        let e = LaunchError::with("workflow is invalid", "line 1, column 2: x");
        assert_eq!(e.to_string(), "workflow is invalid (line 1, column 2: x)");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"error": "workflow is invalid", "details": "line 1, column 2: x"})
        );
    }
}
