//! The last stage: number places in order of first appearance, turn every
//! transition into its compiled form, and list each place's consumers.

use std::collections::HashMap;

use super::actions::parse_action;
use super::bridges::Bridge;
use super::subnets::SubnetTransition;
use super::transitions::UserTransition;
use super::{Action, Compiled, PLACES_MAX, SpecError, Transition, err};

/// Place names, numbered in order of first appearance.
#[derive(Default)]
pub(super) struct Places {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Places {
    /// The place's number, numbering it if it is new.
    pub fn number(&mut self, name: &str) -> usize {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), self.names.len() - 1);
        self.names.len() - 1
    }

    fn all<'a>(&mut self, names: impl IntoIterator<Item = &'a String>) {
        for p in names {
            self.number(p);
        }
    }

    /// The numbers of places already numbered.
    fn of(&self, names: &[String]) -> Vec<usize> {
        names.iter().map(|p| self.index[p]).collect()
    }
}

/// Number the places of every transition, then compile.
pub(super) fn link(
    mut places: Places,
    initial: &[String],
    user: Vec<UserTransition>,
    subnet: Vec<SubnetTransition>,
    bridges: Vec<Bridge>,
    allow_link_local: bool,
) -> Result<Compiled, SpecError> {
    // In order of first appearance: user, subnet, then bridge transitions.
    let user_places = user.iter().flat_map(|t| {
        t.inputs
            .iter()
            .chain(&t.outputs)
            .chain(t.responses.values())
    });
    let subnet_places = subnet.iter().flat_map(|t| {
        t.inputs
            .iter()
            .chain(&t.outputs)
            .chain(t.responses.values())
    });
    let bridge_places = bridges.iter().flat_map(|b| [&b.from, &b.to]);
    places.all(user_places.chain(subnet_places).chain(bridge_places));
    if places.names.len() > PLACES_MAX {
        return err("transitions", format!("at most {PLACES_MAX} places"));
    }
    let mut transitions = Vec::with_capacity(user.len() + subnet.len() + bridges.len());
    for t in user {
        transitions.push(user_transition(&places, t, allow_link_local)?);
    }
    transitions.extend(subnet.into_iter().map(|t| subnet_transition(&places, t)));
    transitions.extend(bridges.into_iter().map(|b| Transition {
        name: None,
        inputs: places.of(std::slice::from_ref(&b.from)),
        outputs: places.of(std::slice::from_ref(&b.to)),
        barrier: false,
        action: Action::Merge,
    }));
    let mut consumers = vec![vec![]; places.names.len()];
    for (ti, t) in transitions.iter().enumerate() {
        for &p in &t.inputs {
            consumers[p].push(ti);
        }
    }
    let initial = initial
        .iter()
        .filter_map(|n| places.index.get(n).copied())
        .collect();
    Ok(Compiled {
        places: places.names,
        transitions,
        consumers,
        initial,
    })
}

/// A user transition: its action parsed, barrier and join checked together.
fn user_transition(
    places: &Places,
    t: UserTransition,
    allow_link_local: bool,
) -> Result<Transition, SpecError> {
    let at = &t.at;
    let action = parse_action(
        &t.action,
        &format!("{at}.action"),
        &t.responses,
        &places.index,
        allow_link_local,
    )?;
    match (&action, t.barrier) {
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
    Ok(Transition {
        inputs: places.of(&t.inputs),
        outputs: places.of(&t.outputs),
        name: t.name,
        barrier: t.barrier,
        action,
    })
}

/// A subnet transition: its notify's response places numbered.
fn subnet_transition(places: &Places, t: SubnetTransition) -> Transition {
    let action = match t.action {
        Action::Notify {
            url,
            requested_data,
            ..
        } => Action::Notify {
            url,
            requested_data,
            response_places: t
                .responses
                .iter()
                .map(|(k, p)| (k.clone(), places.index[p]))
                .collect(),
        },
        a => a,
    };
    Transition {
        name: None,
        inputs: places.of(&t.inputs),
        outputs: places.of(&t.outputs),
        barrier: false,
        action,
    }
}
