//! The user's transitions: names, input and output places (resolved against
//! the subnets), barrier type, and the action left as JSON until places are
//! numbered (its response places are resolved here).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::parse::{str_field, str_list, valid_name};
use super::subnets::Subnets;
use super::{SpecError, TRANSITIONS_MAX, err};

const FIELDS: &[&str] = &["name", "inputs", "outputs", "action", "type"];

/// A user transition before place numbering.
pub(super) struct UserTransition {
    pub name: Option<String>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub barrier: bool,
    pub action: Value,
    /// Response name → place name.
    pub responses: BTreeMap<String, String>,
    /// Where it is in the body (`transitions[3]`).
    pub at: String,
}

/// Transition name → its index among the user's transitions.
pub(super) type Names = HashMap<String, usize>;

/// Parse the `transitions` list.
pub(super) fn parse(
    v: Option<&Value>,
    subnets: &Subnets,
) -> Result<(Vec<UserTransition>, Names), SpecError> {
    let Some(Value::Array(ts)) = v else {
        return err("transitions", "required: a list of transitions");
    };
    if ts.is_empty() || ts.len() > TRANSITIONS_MAX {
        return err(
            "transitions",
            format!("must hold 1–{TRANSITIONS_MAX} transitions"),
        );
    }
    let mut names = Names::new();
    let mut user = Vec::with_capacity(ts.len());
    for (i, tv) in ts.iter().enumerate() {
        let at = format!("transitions[{i}]");
        let Value::Object(t) = tv else {
            return err(at, "must be an object");
        };
        if let Some(k) = t.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return err(format!("{at}.{k}"), "unknown field");
        }
        let name = parse_name(t, &at, i, &mut names)?;
        user.push(parse_one(t, name, at, subnets)?);
    }
    Ok((user, names))
}

fn parse_name(
    t: &Map<String, Value>,
    at: &str,
    i: usize,
    names: &mut Names,
) -> Result<Option<String>, SpecError> {
    let Some(n) = str_field(t, "name", at)? else {
        return Ok(None);
    };
    if !valid_name(n) {
        return err(
            format!("{at}.name"),
            "transition names are 1–100 letters, digits, '-' or '_'",
        );
    }
    if names.insert(n.to_owned(), i).is_some() {
        return err(
            format!("{at}.name"),
            format!("duplicate transition name {n:?}"),
        );
    }
    Ok(Some(n.to_owned()))
}

fn parse_one(
    t: &Map<String, Value>,
    name: Option<String>,
    at: String,
    subnets: &Subnets,
) -> Result<UserTransition, SpecError> {
    let inputs = str_list(t.get("inputs"), &format!("{at}.inputs"))?;
    let outputs = str_list(t.get("outputs"), &format!("{at}.outputs"))?;
    if inputs.is_empty() {
        return err(
            format!("{at}.inputs"),
            "a transition needs at least one input place",
        );
    }
    let inputs = resolve_all(&inputs, &format!("{at}.inputs"), true, subnets)?;
    let outputs = resolve_all(&outputs, &format!("{at}.outputs"), false, subnets)?;
    let barrier = match str_field(t, "type", &at)? {
        None | Some("basic") => false,
        Some("barrier") => true,
        Some(other) => {
            return err(
                format!("{at}.type"),
                format!("unknown transition type {other:?}; known: basic, barrier"),
            );
        }
    };
    let action = t.get("action").cloned().unwrap_or(Value::Null);
    let responses = response_places(&action, &at, subnets)?;
    Ok(UserTransition {
        name,
        inputs,
        outputs,
        barrier,
        action,
        responses,
        at,
    })
}

/// Resolve a list of place references, refusing one listed twice.
fn resolve_all(
    places: &[String],
    at: &str,
    as_input_of_user: bool,
    subnets: &Subnets,
) -> Result<Vec<String>, SpecError> {
    let mut out: Vec<String> = Vec::with_capacity(places.len());
    for (j, p) in places.iter().enumerate() {
        let r = subnets.resolve(p, &format!("{at}[{j}]"), as_input_of_user)?;
        if out.contains(&r) {
            return err(format!("{at}[{j}]"), format!("place {p:?} is listed twice"));
        }
        out.push(r);
    }
    Ok(out)
}

/// The action's `response_places` (name → place), resolved.
fn response_places(
    action: &Value,
    at: &str,
    subnets: &Subnets,
) -> Result<BTreeMap<String, String>, SpecError> {
    let mut out = BTreeMap::new();
    let Some(r) = action.as_object().and_then(|a| a.get("response_places")) else {
        return Ok(out);
    };
    let at = format!("{at}.action.response_places");
    let Value::Object(rm) = r else {
        return err(at, "must be an object name → place");
    };
    for (rn, pv) in rm {
        let Value::String(pn) = pv else {
            return err(format!("{at}.{rn}"), "must be a place name");
        };
        out.insert(
            rn.clone(),
            subnets.resolve(pn, &format!("{at}.{rn}"), false)?,
        );
    }
    Ok(out)
}
