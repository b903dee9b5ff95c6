//! Coloured Petri nets: the definition language, its validation and
//! compilation into the form the firing script (`lua/nets/fire.lua`) runs.
//!
//! Two request shapes are accepted: the seed's
//! `{"subnets": {...}, "transitions": [{inputs, outputs, action}]}` and the
//! original implementation's `{"initialMarking": [...], "transitions": [...]}`.
//! Everything is checked before anything is stored; an error names the
//! offending element (`transitions[3].action.type`).
//!
//! [`compile`] runs the stages in order, each in its own module:
//! [`parse`] (the body's fields, explicit places, initial marking),
//! [`subnets`] (expanding `success-failure` and `data-request` from a table
//! of templates), [`transitions`] (the user's transitions, their places
//! resolved), [`bridges`] (place → place adds a transition, transition →
//! transition adds a place), then [`link`] numbers places in order of first
//! appearance, turns each action into an [`Action`] ([`actions`]) and
//! precomputes each place's consuming transitions.

mod actions;
mod bridges;
mod link;
mod parse;
mod subnets;
mod transitions;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const PLACES_MAX: usize = 1000;
pub const TRANSITIONS_MAX: usize = 1000;
pub const NAME_MAX: usize = 100;
pub const URL_MAX: usize = 2048;

/// A validation error: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub location: String,
    pub message: String,
}

fn err<T>(location: impl Into<String>, message: impl Into<String>) -> Result<T, SpecError> {
    Err(SpecError {
        location: location.into(),
        message: message.into(),
    })
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Action {
    Merge,
    Notify {
        url: String,
        /// Response name → place index.
        #[serde(default)]
        response_places: BTreeMap<String, usize>,
        #[serde(default)]
        requested_data: Vec<String>,
    },
    CreateColorGroup {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        #[serde(default)]
        response_places: BTreeMap<String, usize>,
    },
    Split,
    Join,
    ConvertToParentColor,
    RemoveData {
        #[serde(default)]
        keys: Vec<String>,
    },
    Expire {
        ttl_seconds: u64,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Merge => "merge",
            Action::Notify { .. } => "notify",
            Action::CreateColorGroup { .. } => "create-color-group",
            Action::Split => "split",
            Action::Join => "join",
            Action::ConvertToParentColor => "convert-to-parent-color",
            Action::RemoveData { .. } => "remove-data",
            Action::Expire { .. } => "expire",
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Transition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
    pub barrier: bool,
    pub action: Action,
}

/// The compiled net, as stored and as the firing script reads it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Compiled {
    pub places: Vec<String>,
    pub transitions: Vec<Transition>,
    /// Per place: the transitions that consume from it, in order.
    pub consumers: Vec<Vec<usize>>,
    /// Places that get a colour-0 token at creation.
    pub initial: Vec<usize>,
}

impl Compiled {
    pub fn place_index(&self, name_or_index: &str) -> Option<usize> {
        if let Ok(i) = name_or_index.parse::<usize>() {
            return (i < self.places.len()).then_some(i);
        }
        self.places.iter().position(|p| p == name_or_index)
    }
}

/// Validate and compile a net definition; callback URLs to forbidden
/// addresses (link-local, metadata) are refused.
pub fn compile(spec: &Value) -> Result<Compiled, SpecError> {
    compile_with(spec, false)
}

/// Validate and compile a net definition; callback URLs are checked by
/// the platform's [`CallbackUrl`](crate::platform::ids::CallbackUrl), which
/// allows forbidden addresses only with `allow_link_local`
/// (`--allow-link-local`).
pub fn compile_with(spec: &Value, allow_link_local: bool) -> Result<Compiled, SpecError> {
    let Value::Object(top) = spec else {
        return err("body", "a net must be a JSON object");
    };
    parse::check_top_fields(top)?;
    // Explicit places first (optional), then initial marking, so their indexes are stable.
    let mut places = link::Places::default();
    for p in parse::explicit_places(top)? {
        places.number(&p);
    }
    let initial = parse::initial_marking(top)?;
    let subnets = subnets::expand(top.get("subnets"), allow_link_local)?;
    for (i, p) in initial.iter().enumerate() {
        let at = format!("initialMarking[{i}]");
        let name = subnets
            .resolve(p, &at, false)
            .or_else(|_| subnets.resolve(p, &at, true))?;
        places.number(&name);
    }
    let (mut user, names) = transitions::parse(top.get("transitions"), &subnets)?;
    let bridged = bridges::apply(top.get("bridges"), &names, &mut user, &subnets)?;
    link::link(
        places,
        &initial,
        user,
        subnets.transitions,
        bridged,
        allow_link_local,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn the_seed_sample_compiles() {
        let c = compile(&json!({
            "subnets": {"subnet_A": {"type": "success-failure", "notification_url": "http://someserver/some/place"}},
            "transitions": [
                {"inputs": ["start"], "outputs": ["subnet_A.input"]},
                {"inputs": ["subnet_A.success"], "action": {"type": "notify", "url": "http://someserver/success"}},
                {"inputs": ["subnet_A.failure"], "action": {"type": "notify", "url": "http://someserver/failure"}}
            ]
        }))
        .unwrap();
        assert_eq!(c.places[0], "start");
        assert_eq!(c.transitions.len(), 6);
        assert!(c.places.contains(&"subnet_A.success_response".to_owned()));
    }

    #[test]
    fn errors_name_the_element() {
        let cases = [
            (
                json!({"transitions": [{"inputs": ["a"], "outputs": ["b"]}, {"inputs": ["b"], "action": {"type": "teleport"}}]}),
                "transitions[1].action.type",
            ),
            (
                json!({"transitions": [{"inputs": ["a"], "outputs": ["x.input"]}]}),
                "transitions[0].outputs[0]",
            ),
            (
                json!({"transitions": [{"inputs": ["a"], "type": "barrier"}]}),
                "transitions[0].type",
            ),
            (
                json!({"transitions": [{"inputs": ["a"], "action": {"type": "join"}}]}),
                "transitions[0].action.type",
            ),
            (
                json!({"transitions": [{"inputs": []}]}),
                "transitions[0].inputs",
            ),
            (
                json!({"transitions": [{"inputs": "a"}]}),
                "transitions[0].inputs",
            ),
            (
                json!({"transitions": [{"inputs": ["a"], "action": {"type": "notify"}}]}),
                "transitions[0].action.url",
            ),
            (
                json!({"transitions": [{"inputs": ["a"], "action": {"type": "expire", "ttl_seconds": 0}}]}),
                "transitions[0].action.ttl_seconds",
            ),
            (
                json!({"subnets": {"s": {"type": "magic"}}, "transitions": [{"inputs": ["a"]}]}),
                "subnets.s.type",
            ),
            (
                json!({"subnets": {"s": {"type": "success-failure", "url": "http://x/y"}}, "transitions": [{"inputs": ["s.waiting"]}]}),
                "transitions[0].inputs[0]",
            ),
            (json!({"transitions": []}), "transitions"),
            (
                json!({"transitions": [{"inputs": ["a.b.c"]}]}),
                "transitions[0].inputs[0]",
            ),
            (
                json!({"nope": 1, "transitions": [{"inputs": ["a"]}]}),
                "body.nope",
            ),
        ];
        for (spec, at) in cases {
            let e = compile(&spec).unwrap_err();
            assert_eq!(e.location, at, "{spec}: {}", e.message);
        }
    }

    #[test]
    fn bridges_insert_the_opposite_node() {
        let c = compile(&json!({
            "transitions": [{"name": "t1", "inputs": ["a"]}, {"name": "t2", "inputs": ["b"], "outputs": ["c"]}],
            "bridges": [{"from": "t1", "to": "t2"}, {"from": "c", "to": "d"}]
        }))
        .unwrap();
        assert_eq!(c.transitions.len(), 3);
        let bridge = c.place_index("bridge-0").unwrap();
        assert_eq!(c.transitions[0].outputs, vec![bridge]);
        assert!(c.transitions[1].inputs.contains(&bridge));
        assert_eq!(c.transitions[2].inputs, vec![c.place_index("c").unwrap()]);
        assert_eq!(c.transitions[2].outputs, vec![c.place_index("d").unwrap()]);
    }
}
