//! The five resources, their JSON Schemas (`schemas/transactions/*.json`,
//! served at `GET /v1/schemas/{resource}`) and the check of a batch with
//! the answer Robbyson's validator gives: tv4 behind
//! swagger-express-middleware, so only the **first** error of the **first**
//! bad item, in tv4's order (the item's type; its required properties in
//! schema order; then its properties in the order the client sent them,
//! each checked type → numbers → strings → arrays → items; formats last),
//! with tv4's numeric codes, params and message texts, wrapped in the
//! middleware's message chain. Items are checked with the `jsonschema`
//! crate; this module only picks and words the first error as tv4 would.

use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

use super::rawjson;

/// Most items of one batch (the seed: "never more than 500").
pub const MAX_ITEMS: usize = 500;

/// A resource of the ingestion API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Collaborators = 0,
    Indicators = 1,
    Attributes = 2,
    Hierarchies = 3,
    Results = 4,
}

/// Every resource, in the order of the store keys.
pub const RESOURCES: [Resource; 5] = [
    Resource::Collaborators,
    Resource::Indicators,
    Resource::Attributes,
    Resource::Hierarchies,
    Resource::Results,
];

static SCHEMA_TEXTS: [&str; 5] = [
    include_str!("../../../../schemas/transactions/collaborators.json"),
    include_str!("../../../../schemas/transactions/indicators.json"),
    include_str!("../../../../schemas/transactions/attributes.json"),
    include_str!("../../../../schemas/transactions/hierarchies.json"),
    include_str!("../../../../schemas/transactions/results.json"),
];

/// Each resource's item schema and its compiled validator (draft 4, as tv4).
static ITEM_SCHEMAS: LazyLock<Vec<(Value, jsonschema::Validator)>> = LazyLock::new(|| {
    SCHEMA_TEXTS
        .iter()
        .map(|text| {
            #[allow(clippy::expect_used)]
            let schema: Value = serde_json::from_str(text).expect("shipped schemas are JSON");
            let items = schema.get("items").cloned().unwrap_or(Value::Null);
            #[allow(clippy::expect_used)]
            let validator = jsonschema::draft4::new(&items).expect("shipped schemas compile");
            (items, validator)
        })
        .collect()
});

impl Resource {
    pub fn name(self) -> &'static str {
        match self {
            Self::Collaborators => "collaborators",
            Self::Indicators => "indicators",
            Self::Attributes => "attributes",
            Self::Hierarchies => "hierarchies",
            Self::Results => "results",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        RESOURCES.into_iter().find(|r| r.name() == s)
    }

    /// The schema of a batch (an array of items), as shipped.
    pub fn schema_text(self) -> &'static str {
        SCHEMA_TEXTS[self as usize]
    }

    fn item_schema(self) -> &'static (Value, jsonschema::Validator) {
        &ITEM_SCHEMAS[self as usize]
    }
}

/// One tv4 error: code, params (in tv4's order), paths and message.
#[derive(Debug, Clone, PartialEq)]
pub struct Tv4Error {
    pub code: u32,
    pub params: Vec<(&'static str, Value)>,
    pub data_path: String,
    pub schema_path: String,
    pub message: String,
}

/// A refused batch: the 400 body, byte for byte what the seed shows.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchError {
    pub error: Tv4Error,
    /// The middleware's message chain.
    pub message: String,
}

impl BatchError {
    /// `{"params","code","dataPath","schemaPath","subErrors":null,"status":400,"name":"Error","message"}`.
    pub fn body(&self) -> String {
        let s = |v: &str| Value::String(v.to_owned()).to_string();
        let params = self
            .error
            .params
            .iter()
            .map(|(k, v)| format!("{}:{v}", s(k)))
            .collect::<Vec<_>>()
            .join(",");
        format!(
            r#"{{"params":{{{params}}},"code":{},"dataPath":{},"schemaPath":{},"subErrors":null,"status":400,"name":"Error","message":{}}}"#,
            self.error.code,
            s(&self.error.data_path),
            s(&self.error.schema_path),
            s(&self.message),
        )
    }
}

/// tv4's name of a value's type (`typeof`, with `null` and `array`).
fn tv4_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Check a batch of `resource`: `body` is the compact text of the parsed
/// `value`. Answers the compact text of each item, or the first error.
pub fn check_batch<'a>(
    resource: Resource,
    body: &'a str,
    value: &Value,
) -> Result<Vec<&'a str>, Box<BatchError>> {
    let head = format!(
        "The \"{}\" body parameter is invalid ({body}) \n",
        resource.name()
    );
    let Value::Array(items) = value else {
        let error = Tv4Error {
            code: 0,
            params: vec![
                ("type", tv4_type(value).into()),
                ("expected", "array".into()),
            ],
            data_path: String::new(),
            schema_path: "/type".into(),
            message: format!("Invalid type: {} (expected array)", tv4_type(value)),
        };
        let message = format!("{head}JSON Schema validation error. \n{}", error.message);
        return Err(Box::new(BatchError { error, message }));
    };
    let raw = rawjson::array_items(body);
    for (i, (item, text)) in items.iter().zip(&raw).enumerate() {
        if let Some(error) = first_error(resource, item, text) {
            let message = format!(
                "{head}Unable to parse array item at index {i} ({text}). \nJSON Schema validation error. \nData path: \"undefined[{i}].{}\" \nSchema path: \"{}\" \n{}",
                error.data_path, error.schema_path, error.message
            );
            return Err(Box::new(BatchError { error, message }));
        }
    }
    if items.len() > MAX_ITEMS {
        let error = Tv4Error {
            code: 401,
            params: vec![
                ("length", items.len().into()),
                ("maximum", MAX_ITEMS.into()),
            ],
            data_path: String::new(),
            schema_path: "/maxItems".into(),
            message: format!("Array is too long ({}), maximum {MAX_ITEMS}", items.len()),
        };
        let message = format!("{head}JSON Schema validation error. \n{}", error.message);
        return Err(Box::new(BatchError { error, message }));
    }
    Ok(raw)
}

/// tv4's rank of a keyword inside one value's checks.
fn keyword_rank(kind: &ValidationErrorKind) -> u32 {
    match kind {
        ValidationErrorKind::Type { .. } => 0,
        ValidationErrorKind::Enum { .. } | ValidationErrorKind::Constant { .. } => 1,
        ValidationErrorKind::MultipleOf { .. }
        | ValidationErrorKind::Minimum { .. }
        | ValidationErrorKind::ExclusiveMinimum { .. }
        | ValidationErrorKind::Maximum { .. }
        | ValidationErrorKind::ExclusiveMaximum { .. } => 2,
        ValidationErrorKind::MinLength { .. } => 3,
        ValidationErrorKind::MaxLength { .. } => 4,
        ValidationErrorKind::Pattern { .. } => 5,
        ValidationErrorKind::MinItems { .. }
        | ValidationErrorKind::MaxItems { .. }
        | ValidationErrorKind::UniqueItems => 6,
        ValidationErrorKind::MinProperties { .. }
        | ValidationErrorKind::MaxProperties { .. }
        | ValidationErrorKind::Required { .. } => 7,
        ValidationErrorKind::Format { .. } => 20,
        _ => 10,
    }
}

/// The first error of one item in tv4's order, worded as tv4 does.
pub fn first_error(resource: Resource, item: &Value, text: &str) -> Option<Tv4Error> {
    let (schema, validator) = resource.item_schema();
    let keys: Vec<String> = rawjson::members(text).into_iter().map(|m| m.name).collect();
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    validator
        .iter_errors(item)
        .map(|e| {
            let path = e.instance_path().as_str().to_owned();
            let mut segments = path.split('/').skip(1);
            let rank = match segments.next() {
                None => match e.kind() {
                    ValidationErrorKind::Type { .. } => (0, 0, 0, 0),
                    ValidationErrorKind::Required { property } => {
                        let p = property.as_str().unwrap_or_default();
                        let idx = required.iter().position(|r| *r == p).unwrap_or(usize::MAX);
                        (1, idx, 0, 0)
                    }
                    other => (if keyword_rank(other) >= 20 { 9 } else { 1 }, 0, 0, 0),
                },
                Some(prop) => {
                    let prop = prop.replace("~1", "/").replace("~0", "~");
                    let pos = keys.iter().position(|k| *k == prop).unwrap_or(usize::MAX);
                    match segments.next() {
                        None => (2, pos, keyword_rank(e.kind()) as usize, 0),
                        Some(nested) => (2, pos, 8, nested.parse::<usize>().unwrap_or(0)),
                    }
                }
            };
            (rank, tv4_error(schema, &required, &e, path))
        })
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, e)| e)
}

fn tv4_error(
    schema: &Value,
    required: &[&str],
    e: &jsonschema::ValidationError<'_>,
    data_path: String,
) -> Tv4Error {
    let schema_path = e.schema_path().as_str().to_owned();
    let instance: &Value = e.instance();
    let num = |v: &Value| v.to_string();
    let length = instance.as_str().map_or(0, |s| s.encode_utf16().count());
    let (code, params, message): (u32, Vec<(&'static str, Value)>, String) = match e.kind() {
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(_) | TypeKind::Multiple(_) => match schema.pointer(&schema_path) {
                    Some(Value::Array(types)) => types
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("/"),
                    Some(Value::String(t)) => t.clone(),
                    _ => String::new(),
                },
            };
            let found = tv4_type(instance);
            let message = format!("Invalid type: {found} (expected {expected})");
            (
                0,
                vec![("type", found.into()), ("expected", expected.into())],
                message,
            )
        }
        ValidationErrorKind::Required { property } => {
            let key = property.as_str().unwrap_or_default().to_owned();
            let idx = required.iter().position(|r| *r == key).unwrap_or(0);
            return Tv4Error {
                code: 302,
                message: format!("Missing required property: {key}"),
                params: vec![("key", key.into())],
                data_path,
                schema_path: format!("/required/{idx}"),
            };
        }
        ValidationErrorKind::Pattern { pattern } => (
            202,
            vec![("pattern", pattern.clone().into())],
            format!("String does not match pattern: {pattern}"),
        ),
        ValidationErrorKind::MinLength { limit } => (
            200,
            vec![("length", length.into()), ("minimum", (*limit).into())],
            format!("String is too short ({length} chars), minimum {limit}"),
        ),
        ValidationErrorKind::MaxLength { limit } => (
            201,
            vec![("length", length.into()), ("maximum", (*limit).into())],
            format!("String is too long ({length} chars), maximum {limit}"),
        ),
        ValidationErrorKind::Minimum { limit } => (
            101,
            vec![("value", instance.clone()), ("minimum", limit.clone())],
            format!(
                "Value {} is less than minimum {}",
                num(instance),
                num(limit)
            ),
        ),
        ValidationErrorKind::Maximum { limit } => (
            103,
            vec![("value", instance.clone()), ("maximum", limit.clone())],
            format!(
                "Value {} is greater than maximum {}",
                num(instance),
                num(limit)
            ),
        ),
        ValidationErrorKind::MinItems { limit } => {
            let n = instance.as_array().map_or(0, Vec::len);
            (
                400,
                vec![("length", n.into()), ("minimum", (*limit).into())],
                format!("Array is too short ({n}), minimum {limit}"),
            )
        }
        ValidationErrorKind::MaxItems { limit } => {
            let n = instance.as_array().map_or(0, Vec::len);
            (
                401,
                vec![("length", n.into()), ("maximum", (*limit).into())],
                format!("Array is too long ({n}), maximum {limit}"),
            )
        }
        ValidationErrorKind::Enum { .. } => {
            let value = instance.to_string();
            (
                1,
                vec![("value", value.clone().into())],
                format!("No enum match for: {value}"),
            )
        }
        _ => (0, vec![], e.to_string()),
    };
    Tv4Error {
        code,
        params,
        data_path,
        schema_path,
        message,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn check(resource: Resource, text: &str) -> Result<usize, Box<BatchError>> {
        let body = rawjson::compact(text);
        let value: Value = serde_json::from_str(&body).unwrap();
        check_batch(resource, &body, &value).map(|items| items.len())
    }

    #[test]
    fn every_schema_compiles_and_is_an_array_of_500() {
        for r in RESOURCES {
            let v: Value = serde_json::from_str(r.schema_text()).unwrap();
            assert_eq!(v["maxItems"], 500);
            assert_eq!(v["title"], r.name());
            assert_eq!(Resource::parse(r.name()), Some(r));
            let _ = r.item_schema();
        }
        assert_eq!(Resource::parse("nope"), None);
    }

    #[test]
    fn the_seeds_missing_name_is_byte_for_byte() {
        let text = r#"[
       {
         "identification": "1234",
         "contractorControlId": "1234",
         "genre": "M",
         "active": true,
         "birthDate": "1912-06-23"
       }
     ]"#;
        let e = check(Resource::Collaborators, text).unwrap_err();
        assert_eq!(
            e.body(),
            r#"{"params":{"key":"name"},"code":302,"dataPath":"","schemaPath":"/required/0","subErrors":null,"status":400,"name":"Error","message":"The \"collaborators\" body parameter is invalid ([{\"identification\":\"1234\",\"contractorControlId\":\"1234\",\"genre\":\"M\",\"active\":true,\"birthDate\":\"1912-06-23\"}]) \nUnable to parse array item at index 0 ({\"identification\":\"1234\",\"contractorControlId\":\"1234\",\"genre\":\"M\",\"active\":true,\"birthDate\":\"1912-06-23\"}). \nJSON Schema validation error. \nData path: \"undefined[0].\" \nSchema path: \"/required/0\" \nMissing required property: name"}"#
        );
    }

    #[test]
    fn errors_come_in_tv4_order() {
        // Required in schema order before property errors.
        let e = check(
            Resource::Collaborators,
            r#"[{"name":"a","identification":"1","genre":"M","active":"yes"}]"#,
        )
        .unwrap_err();
        assert_eq!(e.error.code, 302);
        assert_eq!(e.error.params, vec![("key", Value::from("birthDate"))]);
        assert_eq!(e.error.schema_path, "/required/4");
        // Properties in the client's order; type before pattern.
        let e = check(
            Resource::Collaborators,
            r#"[{"name":"a","identification":"1","genre":"M","birthDate":"x","active":"yes"},{}]"#,
        )
        .unwrap_err();
        assert_eq!(e.error.code, 202);
        assert_eq!(e.error.data_path, "/birthDate");
        assert_eq!(e.error.schema_path, "/properties/birthDate/pattern");
        let e = check(
            Resource::Collaborators,
            r#"[{"name":"a","identification":"1","genre":"M","active":"yes","birthDate":"x"}]"#,
        )
        .unwrap_err();
        assert_eq!(e.error.code, 0);
        assert_eq!(e.error.message, "Invalid type: string (expected boolean)");
        assert_eq!(e.error.schema_path, "/properties/active/type");
        assert!(e.message.contains(r#"Data path: "undefined[0]./active""#));
        // The first bad item wins; a later one is not looked at.
        let e = check(
            Resource::Indicators,
            r#"[{"indicatorId":"i","name":"n"},{"indicatorId":1,"name":"n"},{}]"#,
        )
        .unwrap_err();
        assert!(e.message.contains(
            "Unable to parse array item at index 1 ({\"indicatorId\":1,\"name\":\"n\"})"
        ));
        assert_eq!(e.error.message, "Invalid type: number (expected string)");
        // Nested items and numbers.
        let e = check(
            Resource::Results,
            r#"[{"collaboratorIdentification":"1","indicatorId":"i","result":1,"date":"2000-01-01","factors":[1,"x"]}]"#,
        )
        .unwrap_err();
        assert_eq!(e.error.data_path, "/factors/1");
        assert_eq!(e.error.schema_path, "/properties/factors/items/type");
        let e = check(
            Resource::Hierarchies,
            r#"[{"collaboratorIdentification":"1","levelName":"a","levelWeight":0}]"#,
        )
        .unwrap_err();
        assert_eq!(e.error.code, 101);
        assert_eq!(e.error.message, "Value 0 is less than minimum 1");
        let e = check(
            Resource::Hierarchies,
            r#"[{"collaboratorIdentification":"1","levelName":"a","levelWeight":1.5}]"#,
        )
        .unwrap_err();
        assert_eq!(e.error.message, "Invalid type: number (expected integer)");
        let e = check(Resource::Indicators, r#"[{"indicatorId":"","name":"n"}]"#).unwrap_err();
        assert_eq!(e.error.code, 200);
        assert_eq!(e.error.message, "String is too short (0 chars), minimum 1");
    }

    #[test]
    fn array_level_errors_have_no_item_lines() {
        let e = check(Resource::Indicators, r#"{"a":1}"#).unwrap_err();
        assert_eq!(
            e.body(),
            r#"{"params":{"type":"object","expected":"array"},"code":0,"dataPath":"","schemaPath":"/type","subErrors":null,"status":400,"name":"Error","message":"The \"indicators\" body parameter is invalid ({\"a\":1}) \nJSON Schema validation error. \nInvalid type: object (expected array)"}"#
        );
        let item = r#"{"indicatorId":"i","name":"n"}"#;
        let many = format!("[{}]", vec![item; 501].join(","));
        let e = check(Resource::Indicators, &many).unwrap_err();
        assert_eq!(e.error.code, 401);
        assert!(
            e.message
                .ends_with("JSON Schema validation error. \nArray is too long (501), maximum 500")
        );
        assert_eq!(check(Resource::Indicators, "[]").unwrap(), 0);
        let ok = format!("[{}]", vec![item; 500].join(","));
        assert_eq!(check(Resource::Indicators, &ok).unwrap(), 500);
    }
}
