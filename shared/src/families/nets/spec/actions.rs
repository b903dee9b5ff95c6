//! A user transition's `action`: its type, the fields that type allows, and
//! the [`Action`] it becomes once places are numbered.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::parse::{check_url, required_str, str_field, str_list};
use super::{Action, SpecError, err};

const KNOWN: &str =
    "merge, notify, create-color-group, split, join, convert-to-parent-color, remove-data, expire";

/// Ten years, the longest `expire` TTL.
const TTL_MAX_SECONDS: u64 = 10 * 365 * 86_400;

/// Parse the action at `at`; `responses` are its response places (name →
/// place name), numbered by `index`. No action is a merge.
pub(super) fn parse_action(
    v: &Value,
    at: &str,
    responses: &BTreeMap<String, String>,
    index: &HashMap<String, usize>,
    allow_link_local: bool,
) -> Result<Action, SpecError> {
    let o = match v {
        Value::Null => return Ok(Action::Merge),
        Value::Object(o) => o,
        _ => return err(at, "must be an object with a type"),
    };
    let kind = required_str(o, "type", at)?;
    let (canonical, allowed) = kind_and_fields(kind, at)?;
    if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        return err(
            format!("{at}.{k}"),
            format!("unknown field for action {kind}"),
        );
    }
    let places = responses
        .iter()
        .map(|(k, p)| (k.clone(), index[p]))
        .collect();
    build(canonical, o, at, places, allow_link_local)
}

/// The action type's canonical name (kebab-case; snake_case is accepted)
/// and the fields it allows.
fn kind_and_fields(
    kind: &str,
    at: &str,
) -> Result<(&'static str, &'static [&'static str]), SpecError> {
    Ok(match kind {
        "merge" => ("merge", &["type"]),
        "split" => ("split", &["type"]),
        "join" => ("join", &["type"]),
        "convert-to-parent-color" | "convert_to_parent_color" => {
            ("convert-to-parent-color", &["type"])
        }
        "notify" => (
            "notify",
            &["type", "url", "response_places", "requested_data"],
        ),
        "create-color-group" | "create_color_group" => {
            ("create-color-group", &["type", "url", "response_places"])
        }
        "remove-data" | "remove_data" => ("remove-data", &["type", "keys"]),
        "expire" => ("expire", &["type", "ttl_seconds"]),
        other => {
            return err(
                format!("{at}.type"),
                format!("unknown action {other:?}; known: {KNOWN}"),
            );
        }
    })
}

fn build(
    kind: &str,
    o: &Map<String, Value>,
    at: &str,
    response_places: BTreeMap<String, usize>,
    allow_link_local: bool,
) -> Result<Action, SpecError> {
    Ok(match kind {
        "split" => Action::Split,
        "join" => Action::Join,
        "convert-to-parent-color" => Action::ConvertToParentColor,
        "notify" => {
            let url = required_str(o, "url", at)?;
            check_url(url, &format!("{at}.url"), allow_link_local)?;
            Action::Notify {
                url: url.to_owned(),
                response_places,
                requested_data: str_list(o.get("requested_data"), &format!("{at}.requested_data"))?,
            }
        }
        "create-color-group" => {
            let url = str_field(o, "url", at)?;
            if let Some(u) = url {
                check_url(u, &format!("{at}.url"), allow_link_local)?;
            }
            Action::CreateColorGroup {
                url: url.map(str::to_owned),
                response_places,
            }
        }
        "remove-data" => Action::RemoveData {
            keys: str_list(o.get("keys"), &format!("{at}.keys"))?,
        },
        "expire" => match o.get("ttl_seconds").and_then(Value::as_u64) {
            Some(t) if t > 0 && t <= TTL_MAX_SECONDS => Action::Expire { ttl_seconds: t },
            _ => {
                return err(
                    format!("{at}.ttl_seconds"),
                    "must be an integer from 1 to 315360000 (10 years)",
                );
            }
        },
        _ => Action::Merge,
    })
}
