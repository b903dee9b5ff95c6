//! Subnets: named building blocks expanded into plain places and
//! transitions. Each kind is a [`Template`]: a notify transition from
//! `<name>.input` to `<name>.waiting` whose responses land in response
//! places, then one merge per outcome from `waiting` and its response to
//! an output place.

use std::collections::BTreeMap;

use serde_json::Value;

use super::parse::{check_url, missing, required_str, str_field, str_list, valid_name};
use super::{Action, SpecError, err};

/// A subnet's transition before place numbering.
pub(super) struct SubnetTransition {
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub action: Action,
    /// Response name → place name (for a notify action).
    pub responses: BTreeMap<String, String>,
}

/// A subnet's interface: the places user transitions may write into
/// (`inputs`) and read from (`outputs`), by full name.
struct Interface {
    inputs: Vec<String>,
    outputs: Vec<String>,
}

/// One kind of subnet.
struct Template {
    kind: &'static str,
    /// The field a missing URL is reported at.
    url_field: &'static str,
    /// Whether the notify asks for `requested_data`.
    requested_data: bool,
    /// Response name → place suffix.
    responses: &'static [(&'static str, &'static str)],
    /// Per outcome: the response place suffix and the output place suffix
    /// (`waiting` + response → output).
    outcomes: &'static [(&'static str, &'static str)],
}

const TEMPLATES: &[Template] = &[
    Template {
        kind: "success-failure",
        url_field: "notification_url",
        requested_data: false,
        responses: &[
            ("success", "success_response"),
            ("failure", "failure_response"),
        ],
        outcomes: &[
            ("success_response", "success"),
            ("failure_response", "failure"),
        ],
    },
    Template {
        kind: "data-request",
        url_field: "url",
        requested_data: true,
        responses: &[("data", "response")],
        outcomes: &[("response", "output")],
    },
];

/// The expanded subnets: their interfaces and their transitions.
#[derive(Default)]
pub(super) struct Subnets {
    interfaces: BTreeMap<String, Interface>,
    pub transitions: Vec<SubnetTransition>,
}

/// Expand the `subnets` object.
pub(super) fn expand(v: Option<&Value>, allow_link_local: bool) -> Result<Subnets, SpecError> {
    let mut out = Subnets::default();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (name, sv) in m {
                out.add(name, sv, allow_link_local)?;
            }
        }
        Some(_) => return err("subnets", "must be an object"),
    }
    Ok(out)
}

impl Subnets {
    fn add(&mut self, name: &str, v: &Value, allow_link_local: bool) -> Result<(), SpecError> {
        let at = format!("subnets.{name}");
        if !valid_name(name) {
            return err(at, "subnet names are 1–100 letters, digits, '-' or '_'");
        }
        let Value::Object(o) = v else {
            return err(at, "must be an object");
        };
        let kind = required_str(o, "type", &at)?;
        let url = str_field(o, "notification_url", &at)?.or(str_field(o, "url", &at)?);
        let Some(t) = TEMPLATES.iter().find(|t| t.kind == kind) else {
            return err(
                format!("{at}.type"),
                format!("unknown subnet type {kind:?}; known: success-failure, data-request"),
            );
        };
        let url_at = format!("{at}.{}", t.url_field);
        let url = url.ok_or_else(|| missing(url_at.clone()))?;
        check_url(url, &url_at, allow_link_local)?;
        let requested = if t.requested_data {
            str_list(o.get("requested_data"), &format!("{at}.requested_data"))?
        } else {
            vec![]
        };
        self.instantiate(t, name, url, requested);
        Ok(())
    }

    fn instantiate(&mut self, t: &Template, name: &str, url: &str, requested: Vec<String>) {
        let p = |s: &str| format!("{name}.{s}");
        self.transitions.push(SubnetTransition {
            inputs: vec![p("input")],
            outputs: vec![p("waiting")],
            action: Action::Notify {
                url: url.to_owned(),
                response_places: BTreeMap::new(),
                requested_data: requested,
            },
            responses: t
                .responses
                .iter()
                .map(|(r, s)| ((*r).to_owned(), p(s)))
                .collect(),
        });
        for (response, output) in t.outcomes {
            self.transitions.push(SubnetTransition {
                inputs: vec![p("waiting"), p(response)],
                outputs: vec![p(output)],
                action: Action::Merge,
                responses: BTreeMap::new(),
            });
        }
        let interface = Interface {
            inputs: vec![p("input")],
            outputs: t.outcomes.iter().map(|(_, o)| p(o)).collect(),
        };
        self.interfaces.insert(name.to_owned(), interface);
    }

    /// A place reference from the user's transitions: a plain name, or a
    /// subnet's interface place. User transitions write into a subnet's
    /// inputs (`as_input_of_user` false) and read from its outputs.
    pub(super) fn resolve(
        &self,
        name: &str,
        at: &str,
        as_input_of_user: bool,
    ) -> Result<String, SpecError> {
        let Some((sub, _)) = name.split_once('.') else {
            if !valid_name(name) {
                return err(
                    at,
                    "place names are 1–100 letters, digits, '-' or '_' (dots address subnets)",
                );
            }
            return Ok(name.to_owned());
        };
        let Some(s) = self.interfaces.get(sub) else {
            return err(at, format!("unknown subnet {sub:?}"));
        };
        let allowed = if as_input_of_user {
            &s.outputs
        } else {
            &s.inputs
        };
        if !allowed.iter().any(|p| p == name) {
            return err(
                at,
                format!(
                    "{name:?} is not usable here; subnet {sub} offers {}",
                    allowed.join(", ")
                ),
            );
        }
        Ok(name.to_owned())
    }
}
