//! What the API answers about a net, typed (and described in the OpenAPI
//! document). Fields are declared in alphabetical order, and actions are
//! written as a JSON map: these views were `serde_json` maps (sorted keys)
//! before they were typed, and their bytes stay the same.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use utoipa::ToSchema;

use super::{Action, Compiled, Transition};
use crate::platform::time::iso_ms;

/// A colour group as the firing script stores it.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct ColorGroup {
    /// First colour of the group.
    pub begin: i64,
    pub begin_lineage: Vec<i64>,
    pub color_lineage: Vec<i64>,
    /// One past the last colour of the group.
    pub end: i64,
    pub idx: i64,
    pub parent_color: Option<i64>,
    pub parent_color_group_idx: Option<i64>,
}

/// The tokens of a net: place index → colour → token data; and its groups.
#[derive(Debug, Clone, Default)]
pub struct Marking {
    pub tokens: BTreeMap<usize, BTreeMap<i64, Value>>,
    pub groups: BTreeMap<i64, ColorGroup>,
}

impl Marking {
    fn has(&self, place: usize, color: i64) -> bool {
        self.tokens
            .get(&place)
            .is_some_and(|m| m.contains_key(&color))
    }

    fn count(&self, place: usize) -> usize {
        self.tokens.get(&place).map_or(0, BTreeMap::len)
    }
}

/// Serialize through a JSON value, so an action's keys come out sorted.
fn sorted<S: Serializer>(a: &Action, s: S) -> Result<S::Ok, S::Error> {
    serde_json::to_value(a)
        .map_err(serde::ser::Error::custom)?
        .serialize(s)
}

/// `GET /v1/nets/{id}`: status, counters, places and transitions.
#[derive(Debug, Serialize, ToSchema)]
pub struct NetView {
    pub active: bool,
    /// How many colour groups exist.
    pub color_groups: usize,
    pub created: String,
    pub expires_at: Option<String>,
    pub failure: Option<String>,
    pub fired: i64,
    pub id: String,
    pub net_key: String,
    pub notifications: i64,
    pub places: Vec<PlaceView>,
    pub status: Option<String>,
    pub transitions: Vec<TransitionView>,
    pub updated: String,
}

/// A place and how many tokens it holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaceView {
    pub index: usize,
    pub name: String,
    pub tokens: usize,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransitionType {
    Basic,
    Barrier,
}

/// A transition, its places by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionView {
    #[serde(serialize_with = "sorted")]
    pub action: Action,
    pub index: usize,
    pub inputs: Vec<String>,
    pub name: Option<String>,
    pub outputs: Vec<String>,
    #[serde(rename = "type")]
    pub kind: TransitionType,
}

impl NetView {
    pub fn new(id: &str, meta: &HashMap<String, String>, c: &Compiled, m: &Marking) -> Self {
        let n = |k: &str| meta.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let names = |ps: &[usize]| ps.iter().map(|&p| c.places[p].clone()).collect();
        let places = c.places.iter().enumerate();
        let transitions = c.transitions.iter().enumerate();
        Self {
            active: meta.get("active").map(String::as_str) == Some("1"),
            color_groups: m.groups.len(),
            created: iso_ms(n("created")),
            expires_at: meta
                .get("expires_at")
                .and_then(|v| v.parse().ok())
                .map(iso_ms),
            failure: meta.get("failure").cloned(),
            fired: n("fired"),
            id: id.to_owned(),
            net_key: id.to_owned(),
            notifications: n("notifications"),
            places: places
                .map(|(i, name)| PlaceView {
                    index: i,
                    name: name.clone(),
                    tokens: m.count(i),
                })
                .collect(),
            status: meta.get("status").cloned(),
            transitions: transitions
                .map(|(i, t)| TransitionView {
                    action: t.action.clone(),
                    index: i,
                    inputs: names(&t.inputs),
                    name: t.name.clone(),
                    outputs: names(&t.outputs),
                    kind: if t.barrier {
                        TransitionType::Barrier
                    } else {
                        TransitionType::Basic
                    },
                })
                .collect(),
            updated: iso_ms(n("updated")),
        }
    }
}

/// `GET /v1/nets/{id}/places`: per place name, its tokens by colour (with
/// their data); and the colour groups by index.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlacesView {
    pub color_groups: BTreeMap<String, ColorGroup>,
    pub places: BTreeMap<String, PlaceMarking>,
}

/// A place's tokens: colour → token data.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaceMarking {
    pub index: usize,
    #[schema(value_type = BTreeMap<String, Object>)]
    pub tokens: BTreeMap<String, Value>,
}

impl PlacesView {
    pub fn new(c: &Compiled, m: Marking) -> Self {
        let mut tokens = m.tokens;
        let places = c.places.iter().enumerate().map(|(i, p)| {
            let tokens = tokens.remove(&i).unwrap_or_default();
            let tokens = tokens.into_iter().map(|(c, d)| (c.to_string(), d));
            let marking = PlaceMarking {
                index: i,
                tokens: tokens.collect(),
            };
            (p.clone(), marking)
        });
        Self {
            color_groups: m
                .groups
                .into_iter()
                .map(|(g, v)| (g.to_string(), v))
                .collect(),
            places: places.collect(),
        }
    }
}

/// `GET /v1/nets/{id}/explain`: why the net is where it is.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExplainView {
    pub id: String,
    /// Why nothing fires at all (paused, failed).
    pub notes: Vec<String>,
    pub status: Option<String>,
    pub transitions: Vec<TransitionExplain>,
}

/// One transition: enabled and waiting colours, or for a barrier the
/// progress of each colour group.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionExplain {
    /// The action's type.
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<Vec<EnabledColor>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<BarrierProgress>>,
    pub name: Option<String>,
    pub transition: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Vec<WaitingColor>>,
}

/// A colour with a token in every input.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnabledColor {
    pub color: i64,
}

/// A colour with tokens in some inputs, and the input places it lacks.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitingColor {
    pub color: i64,
    pub missing: Vec<String>,
}

/// A colour group at a barrier: colours complete in every input, of its size.
#[derive(Debug, Serialize, ToSchema)]
pub struct BarrierProgress {
    pub complete_colors: i64,
    pub group: i64,
    pub group_size: i64,
}

impl ExplainView {
    pub fn new(id: &str, meta: &HashMap<String, String>, c: &Compiled, m: &Marking) -> Self {
        let mut notes = vec![];
        if meta.get("active").map(String::as_str) != Some("1") {
            notes.push("the net is paused (PATCH {\"active\": true} resumes it)".to_owned());
        }
        if meta.get("status").map(String::as_str) == Some("failed") {
            notes.push(format!(
                "the net failed: {}",
                meta.get("failure").cloned().unwrap_or_default()
            ));
        }
        let transitions = c.transitions.iter().enumerate();
        Self {
            id: id.to_owned(),
            notes,
            status: meta.get("status").cloned(),
            transitions: transitions.map(|(i, t)| explain(c, m, i, t)).collect(),
        }
    }
}

fn explain(c: &Compiled, m: &Marking, index: usize, t: &Transition) -> TransitionExplain {
    let mut out = TransitionExplain {
        action: t.action.name().to_owned(),
        enabled: None,
        groups: None,
        name: t.name.clone(),
        transition: index,
        waiting: None,
    };
    if t.barrier {
        out.groups = Some(barrier_progress(m, t));
        return out;
    }
    let mut colors: Vec<i64> = t
        .inputs
        .iter()
        .flat_map(|p| m.tokens.get(p).into_iter().flat_map(|m| m.keys().copied()))
        .collect();
    colors.sort_unstable();
    colors.dedup();
    let (mut enabled, mut waiting) = (vec![], vec![]);
    for color in colors {
        let missing: Vec<String> = t
            .inputs
            .iter()
            .filter(|&&p| !m.has(p, color))
            .map(|&p| c.places[p].clone())
            .collect();
        if missing.is_empty() {
            enabled.push(EnabledColor { color });
        } else {
            waiting.push(WaitingColor { color, missing });
        }
    }
    out.enabled = Some(enabled);
    out.waiting = Some(waiting);
    out
}

/// Per group: how many colours are complete in every input of the barrier.
fn barrier_progress(m: &Marking, t: &Transition) -> Vec<BarrierProgress> {
    let mut out = vec![];
    for (&group, g) in &m.groups {
        let complete = (g.begin..g.end)
            .filter(|&col| t.inputs.iter().all(|&p| m.has(p, col)))
            .count() as i64;
        if complete > 0 {
            out.push(BarrierProgress {
                complete_colors: complete,
                group,
                group_size: g.end - g.begin,
            });
        }
    }
    out
}

/// What creating a net answers: its key and each place's token URL.
#[derive(Debug, Serialize, ToSchema)]
pub struct NetCreated {
    pub id: String,
    pub net_key: String,
    pub places: BTreeMap<String, PlaceLink>,
}

/// A place's index and the URL that puts tokens into it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaceLink {
    pub index: usize,
    pub token_url: String,
}

impl NetCreated {
    pub fn new(public_url: &str, id: &str, c: &Compiled) -> Self {
        let base = public_url.trim_end_matches('/');
        let link = |i: usize| PlaceLink {
            index: i,
            token_url: format!("{base}/v1/nets/{id}/places/{i}/tokens"),
        };
        Self {
            id: id.to_owned(),
            net_key: id.to_owned(),
            places: c
                .places
                .iter()
                .enumerate()
                .map(|(i, p)| (p.clone(), link(i)))
                .collect(),
        }
    }
}

/// A net in a listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NetSummary {
    pub active: bool,
    pub created: String,
    pub id: String,
    pub status: String,
}

/// `GET /v1/nets`: a page of nets, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct NetPage {
    pub nets: Vec<NetSummary>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}
