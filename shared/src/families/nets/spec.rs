//! Coloured Petri nets: the definition language, its validation and
//! compilation into the form the firing script (`lua/net.lua`) runs.
//!
//! Two request shapes are accepted: the seed's
//! `{"subnets": {...}, "transitions": [{inputs, outputs, action}]}` and the
//! original implementation's `{"initialMarking": [...], "transitions": [...]}`.
//! Everything is checked before anything is stored; an error names the
//! offending element (`transitions[3].action.type`).
//!
//! Compilation expands subnets (`success-failure`, `data-request`) and
//! bridges into plain places and transitions, numbers places in order of
//! first appearance, and precomputes each place's consuming transitions.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const PLACES_MAX: usize = 1000;
pub const TRANSITIONS_MAX: usize = 1000;
pub const NAME_MAX: usize = 100;
pub const URL_MAX: usize = 2048;
pub const COLOR_GROUP_SIZE_MAX: i64 = 100_000;

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

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
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

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= NAME_MAX
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_url(u: &str, at: &str) -> Result<(), SpecError> {
    let lower = u.to_ascii_lowercase();
    if u.len() > URL_MAX
        || !(lower.starts_with("http://") || lower.starts_with("https://"))
        || u.len() < 10
    {
        return err(at, "must be an http(s) URL");
    }
    Ok(())
}

/// A subnet's transition before place numbering: (origin, inputs, outputs, action, responses).
type SubnetTransition = (
    String,
    Vec<String>,
    Vec<String>,
    Action,
    BTreeMap<String, String>,
);
/// A user transition before place numbering:
/// (name, inputs, outputs, barrier, action, responses, location).
type UserTransition = (
    Option<String>,
    Vec<String>,
    Vec<String>,
    bool,
    Value,
    BTreeMap<String, String>,
    String,
);

struct Builder {
    places: Vec<String>,
    index: HashMap<String, usize>,
    transitions: Vec<Transition>,
}

impl Builder {
    fn place(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.places.push(name.to_owned());
        self.index.insert(name.to_owned(), self.places.len() - 1);
        self.places.len() - 1
    }
}

/// Subnet interface: name → (inputs, outputs) place names, after expansion.
struct Subnet {
    inputs: Vec<String>,
    outputs: Vec<String>,
}

fn str_field<'a>(
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

fn str_list(v: Option<&Value>, at: &str) -> Result<Vec<String>, SpecError> {
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

/// Validate and compile a net definition.
pub fn compile(spec: &Value) -> Result<Compiled, SpecError> {
    let Value::Object(top) = spec else {
        return err("body", "a net must be a JSON object");
    };
    for k in top.keys() {
        if ![
            "subnets",
            "transitions",
            "initialMarking",
            "initial_marking",
            "bridges",
            "places",
            "active",
        ]
        .contains(&k.as_str())
        {
            return err(format!("body.{k}"), "unknown field");
        }
    }
    let mut b = Builder {
        places: vec![],
        index: HashMap::new(),
        transitions: vec![],
    };
    // Explicit places first (optional), then initial marking, so their indexes are stable.
    for (i, p) in str_list(top.get("places"), "places")?.iter().enumerate() {
        if !valid_name(p) {
            return err(
                format!("places[{i}]"),
                "place names are 1–100 letters, digits, '-' or '_'",
            );
        }
        b.place(p);
    }
    let initial_names = match top.get("initialMarking") {
        Some(v) => str_list(Some(v), "initialMarking")?,
        None => str_list(top.get("initial_marking"), "initial_marking")?,
    };

    // Subnets.
    let mut subnets: BTreeMap<String, Subnet> = BTreeMap::new();
    let mut subnet_transitions: Vec<SubnetTransition> = vec![];
    match top.get("subnets") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (name, sv) in m {
                let at = format!("subnets.{name}");
                if !valid_name(name) {
                    return err(at, "subnet names are 1–100 letters, digits, '-' or '_'");
                }
                let Value::Object(so) = sv else {
                    return err(at, "must be an object");
                };
                let kind = str_field(so, "type", &at)?.ok_or(SpecError {
                    location: format!("{at}.type"),
                    message: "missing".into(),
                })?;
                let url = str_field(so, "notification_url", &at)?.or(str_field(so, "url", &at)?);
                let p = |s: &str| format!("{name}.{s}");
                match kind {
                    "success-failure" => {
                        let url = url.ok_or(SpecError {
                            location: format!("{at}.notification_url"),
                            message: "missing".into(),
                        })?;
                        check_url(url, &format!("{at}.notification_url"))?;
                        let mut rp = BTreeMap::new();
                        rp.insert("success".to_owned(), p("success_response"));
                        rp.insert("failure".to_owned(), p("failure_response"));
                        subnet_transitions.push((
                            at.clone(),
                            vec![p("input")],
                            vec![p("waiting")],
                            Action::Notify {
                                url: url.to_owned(),
                                response_places: BTreeMap::new(),
                                requested_data: vec![],
                            },
                            rp,
                        ));
                        subnet_transitions.push((
                            at.clone(),
                            vec![p("waiting"), p("success_response")],
                            vec![p("success")],
                            Action::Merge,
                            BTreeMap::new(),
                        ));
                        subnet_transitions.push((
                            at.clone(),
                            vec![p("waiting"), p("failure_response")],
                            vec![p("failure")],
                            Action::Merge,
                            BTreeMap::new(),
                        ));
                        subnets.insert(
                            name.clone(),
                            Subnet {
                                inputs: vec![p("input")],
                                outputs: vec![p("success"), p("failure")],
                            },
                        );
                    }
                    "data-request" => {
                        let url = url.ok_or(SpecError {
                            location: format!("{at}.url"),
                            message: "missing".into(),
                        })?;
                        check_url(url, &format!("{at}.url"))?;
                        let requested =
                            str_list(so.get("requested_data"), &format!("{at}.requested_data"))?;
                        let mut rp = BTreeMap::new();
                        rp.insert("data".to_owned(), p("response"));
                        subnet_transitions.push((
                            at.clone(),
                            vec![p("input")],
                            vec![p("waiting")],
                            Action::Notify {
                                url: url.to_owned(),
                                response_places: BTreeMap::new(),
                                requested_data: requested,
                            },
                            rp,
                        ));
                        subnet_transitions.push((
                            at.clone(),
                            vec![p("waiting"), p("response")],
                            vec![p("output")],
                            Action::Merge,
                            BTreeMap::new(),
                        ));
                        subnets.insert(
                            name.clone(),
                            Subnet {
                                inputs: vec![p("input")],
                                outputs: vec![p("output")],
                            },
                        );
                    }
                    other => {
                        return err(
                            format!("{at}.type"),
                            format!(
                                "unknown subnet type {other:?}; known: success-failure, data-request"
                            ),
                        );
                    }
                }
            }
        }
        Some(_) => return err("subnets", "must be an object"),
    }

    // A place reference from the user's transitions: a plain name, or a subnet's interface place.
    let resolve = |name: &str, at: &str, as_input_of_user: bool| -> Result<String, SpecError> {
        if let Some((sub, part)) = name.split_once('.') {
            let Some(s) = subnets.get(sub) else {
                return err(at, format!("unknown subnet {sub:?}"));
            };
            // User transitions write into a subnet's inputs and read from its outputs.
            let ok = if as_input_of_user {
                s.outputs.iter().any(|p| p == name)
            } else {
                s.inputs.iter().any(|p| p == name)
            };
            if !ok {
                let allowed = if as_input_of_user {
                    &s.outputs
                } else {
                    &s.inputs
                };
                return err(
                    at,
                    format!(
                        "{name:?} is not usable here; subnet {sub} offers {}",
                        allowed.join(", ")
                    ),
                );
            }
            let _ = part;
            return Ok(name.to_owned());
        }
        if !valid_name(name) {
            return err(
                at,
                "place names are 1–100 letters, digits, '-' or '_' (dots address subnets)",
            );
        }
        Ok(name.to_owned())
    };

    for (i, p) in initial_names.iter().enumerate() {
        let name = resolve(p, &format!("initialMarking[{i}]"), false)
            .or_else(|_| resolve(p, &format!("initialMarking[{i}]"), true))?;
        b.place(&name);
    }

    let Some(Value::Array(ts)) = top.get("transitions") else {
        return err("transitions", "required: a list of transitions");
    };
    if ts.is_empty() || ts.len() > TRANSITIONS_MAX {
        return err(
            "transitions",
            format!("must hold 1–{TRANSITIONS_MAX} transitions"),
        );
    }
    let mut names: HashMap<String, usize> = HashMap::new();
    // First pass: user transitions.
    let mut user: Vec<UserTransition> = vec![];
    for (i, tv) in ts.iter().enumerate() {
        let at = format!("transitions[{i}]");
        let Value::Object(t) = tv else {
            return err(at, "must be an object");
        };
        for k in t.keys() {
            if !["name", "inputs", "outputs", "action", "type"].contains(&k.as_str()) {
                return err(format!("{at}.{k}"), "unknown field");
            }
        }
        let name = str_field(t, "name", &at)?.map(str::to_owned);
        if let Some(n) = &name {
            if !valid_name(n) {
                return err(
                    format!("{at}.name"),
                    "transition names are 1–100 letters, digits, '-' or '_'",
                );
            }
            if names.insert(n.clone(), i).is_some() {
                return err(
                    format!("{at}.name"),
                    format!("duplicate transition name {n:?}"),
                );
            }
        }
        let inputs = str_list(t.get("inputs"), &format!("{at}.inputs"))?;
        let outputs = str_list(t.get("outputs"), &format!("{at}.outputs"))?;
        if inputs.is_empty() {
            return err(
                format!("{at}.inputs"),
                "a transition needs at least one input place",
            );
        }
        let mut ins = vec![];
        for (j, p) in inputs.iter().enumerate() {
            let r = resolve(p, &format!("{at}.inputs[{j}]"), true)?;
            if ins.contains(&r) {
                return err(
                    format!("{at}.inputs[{j}]"),
                    format!("place {p:?} is listed twice"),
                );
            }
            ins.push(r);
        }
        let mut outs = vec![];
        for (j, p) in outputs.iter().enumerate() {
            let r = resolve(p, &format!("{at}.outputs[{j}]"), false)?;
            if outs.contains(&r) {
                return err(
                    format!("{at}.outputs[{j}]"),
                    format!("place {p:?} is listed twice"),
                );
            }
            outs.push(r);
        }
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
        let mut rp = BTreeMap::new();
        if let Value::Object(a) = &action
            && let Some(r) = a.get("response_places")
        {
            let Value::Object(rm) = r else {
                return err(
                    format!("{at}.action.response_places"),
                    "must be an object name → place",
                );
            };
            for (rn, pv) in rm {
                let Value::String(pn) = pv else {
                    return err(
                        format!("{at}.action.response_places.{rn}"),
                        "must be a place name",
                    );
                };
                rp.insert(
                    rn.clone(),
                    resolve(pn, &format!("{at}.action.response_places.{rn}"), false)?,
                );
            }
        }
        user.push((name, ins, outs, barrier, action, rp, at));
    }

    // Bridges: place → place inserts a transition; transition → transition inserts a place.
    let mut bridge_ts: Vec<(Vec<String>, Vec<String>)> = vec![];
    match top.get("bridges") {
        None | Some(Value::Null) => {}
        Some(Value::Array(bs)) => {
            for (i, bv) in bs.iter().enumerate() {
                let at = format!("bridges[{i}]");
                let Value::Object(bo) = bv else {
                    return err(at, "must be an object {from, to}");
                };
                let from = str_field(bo, "from", &at)?.ok_or(SpecError {
                    location: format!("{at}.from"),
                    message: "missing".into(),
                })?;
                let to = str_field(bo, "to", &at)?.ok_or(SpecError {
                    location: format!("{at}.to"),
                    message: "missing".into(),
                })?;
                match (names.get(from), names.get(to)) {
                    (Some(&ft), Some(&tt)) => {
                        let place = format!("bridge-{i}");
                        user[ft].2.push(place.clone());
                        user[tt].1.push(place);
                    }
                    (None, None) => {
                        let f = resolve(from, &format!("{at}.from"), true)?;
                        let t = resolve(to, &format!("{at}.to"), false)?;
                        bridge_ts.push((vec![f], vec![t]));
                    }
                    _ => return err(at, "a bridge joins two places or two named transitions"),
                }
            }
        }
        Some(_) => return err("bridges", "must be a list"),
    }

    // Number places in order of first appearance.
    for (_, ins, outs, _, _, rp, _) in &user {
        for p in ins.iter().chain(outs).chain(rp.values()) {
            b.place(p);
        }
    }
    for (_, ins, outs, _, rp) in &subnet_transitions {
        for p in ins.iter().chain(outs).chain(rp.values()) {
            b.place(p);
        }
    }
    for (ins, outs) in &bridge_ts {
        for p in ins.iter().chain(outs) {
            b.place(p);
        }
    }
    if b.places.len() > PLACES_MAX {
        return err("transitions", format!("at most {PLACES_MAX} places"));
    }

    for (name, ins, outs, barrier, action, rp, at) in user {
        let action = parse_action(&action, &format!("{at}.action"), &rp, &b.index)?;
        match (&action, barrier) {
            (Action::Join, false) => {
                return err(
                    format!("{at}.action.type"),
                    "join needs a barrier transition (\"type\": \"barrier\")",
                );
            }
            (a, true) if *a != Action::Join => {
                return err(
                    format!("{at}.type"),
                    "a barrier transition needs the join action",
                );
            }
            _ => {}
        }
        let inputs = ins.iter().map(|p| b.index[p]).collect();
        let outputs = outs.iter().map(|p| b.index[p]).collect();
        b.transitions.push(Transition {
            name,
            inputs,
            outputs,
            barrier,
            action,
        });
    }
    for (_, ins, outs, action, rp) in subnet_transitions {
        let action = match action {
            Action::Notify {
                url,
                requested_data,
                ..
            } => Action::Notify {
                url,
                requested_data,
                response_places: rp.iter().map(|(k, p)| (k.clone(), b.index[p])).collect(),
            },
            a => a,
        };
        let inputs = ins.iter().map(|p| b.index[p]).collect();
        let outputs = outs.iter().map(|p| b.index[p]).collect();
        b.transitions.push(Transition {
            name: None,
            inputs,
            outputs,
            barrier: false,
            action,
        });
    }
    for (ins, outs) in bridge_ts {
        let inputs = ins.iter().map(|p| b.index[p]).collect();
        let outputs = outs.iter().map(|p| b.index[p]).collect();
        b.transitions.push(Transition {
            name: None,
            inputs,
            outputs,
            barrier: false,
            action: Action::Merge,
        });
    }
    let mut consumers = vec![vec![]; b.places.len()];
    for (ti, t) in b.transitions.iter().enumerate() {
        for &p in &t.inputs {
            consumers[p].push(ti);
        }
    }
    let initial = initial_names
        .iter()
        .filter_map(|n| b.index.get(n).copied())
        .collect();
    Ok(Compiled {
        places: b.places,
        transitions: b.transitions,
        consumers,
        initial,
    })
}

fn parse_action(
    v: &Value,
    at: &str,
    rp: &BTreeMap<String, String>,
    index: &HashMap<String, usize>,
) -> Result<Action, SpecError> {
    let o = match v {
        Value::Null => return Ok(Action::Merge),
        Value::Object(o) => o,
        _ => return err(at, "must be an object with a type"),
    };
    let kind = str_field(o, "type", at)?.ok_or(SpecError {
        location: format!("{at}.type"),
        message: "missing".into(),
    })?;
    let allowed: &[&str] = match kind {
        "merge" | "split" | "join" | "convert-to-parent-color" | "convert_to_parent_color" => {
            &["type"]
        }
        "notify" => &["type", "url", "response_places", "requested_data"],
        "create-color-group" | "create_color_group" => &["type", "url", "response_places"],
        "remove-data" | "remove_data" => &["type", "keys"],
        "expire" => &["type", "ttl_seconds"],
        other => {
            return err(
                format!("{at}.type"),
                format!(
                    "unknown action {other:?}; known: merge, notify, create-color-group, split, join, convert-to-parent-color, remove-data, expire"
                ),
            );
        }
    };
    for k in o.keys() {
        if !allowed.contains(&k.as_str()) {
            return err(
                format!("{at}.{k}"),
                format!("unknown field for action {kind}"),
            );
        }
    }
    let places = || {
        rp.iter()
            .map(|(k, p)| (k.clone(), index[p]))
            .collect::<BTreeMap<_, _>>()
    };
    Ok(match kind {
        "merge" => Action::Merge,
        "split" => Action::Split,
        "join" => Action::Join,
        "convert-to-parent-color" | "convert_to_parent_color" => Action::ConvertToParentColor,
        "notify" => {
            let url = str_field(o, "url", at)?.ok_or(SpecError {
                location: format!("{at}.url"),
                message: "missing".into(),
            })?;
            check_url(url, &format!("{at}.url"))?;
            Action::Notify {
                url: url.to_owned(),
                response_places: places(),
                requested_data: str_list(o.get("requested_data"), &format!("{at}.requested_data"))?,
            }
        }
        "create-color-group" | "create_color_group" => {
            let url = str_field(o, "url", at)?;
            if let Some(u) = url {
                check_url(u, &format!("{at}.url"))?;
            }
            Action::CreateColorGroup {
                url: url.map(str::to_owned),
                response_places: places(),
            }
        }
        "remove-data" | "remove_data" => Action::RemoveData {
            keys: str_list(o.get("keys"), &format!("{at}.keys"))?,
        },
        "expire" => match o.get("ttl_seconds").and_then(Value::as_u64) {
            Some(t) if t > 0 && t <= 10 * 365 * 86_400 => Action::Expire { ttl_seconds: t },
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
