//! Workitem field merging of `concurrence` and `concurrent_iterator` (Ruote
//! semantics: merge types, winners, `over_if`).
//!
//! Pure bookkeeping, no I/O: [`Concurrence`] is the parsed configuration
//! (research/workflows.md §3.2, §3.6), [`Replies`] the serializable state the
//! engine stores with the expression, and [`Replies::merged`] the workitem
//! fields the concurrence replies to its parent with.
//!
//! Rules (Ruote 2.3, as its `concurrence_merge_*` tests pin them):
//!
//! * The winner: `merge: first` (default) = the first **reply**, `last` =
//!   the last reply, `highest` = the topmost branch in the definition,
//!   `lowest` = the bottommost. A reply whose `over_if` triggered is the
//!   winner whatever `merge` says.
//! * `override`: the winner's fields, nothing else. `mix`: all replies'
//!   fields merged shallowly, the winner prevailing on conflicts.
//!   `isolate`: `{"<branch index>": fields, …}` and nothing else.
//!   `stack`: `{"stack": [fields…], "stack_attributes": <attributes>}`,
//!   winner first (`first`: reply order, `last`: reverse reply order,
//!   `highest`: definition order, `lowest`: reverse definition order).
//!   `union` / `concat` / `deep`: per key, arrays concatenated (`union`
//!   then removes duplicates, also ones that were there before), objects
//!   merged (shallowly; recursively for `deep`), anything else replaced,
//!   applied in **reply** order (so the last reply's scalars win even with
//!   `merge: first`; an `over_if` winner is applied last). `ignore`: the
//!   workitem the concurrence was applied with.
//! * No reply at all (no branches, `count: 0`) → the applied workitem.
//!
//! Deliberate differences from Ruote (it is buggy there, see §1.11 #14):
//! `highest`/`lowest` compare branch indexes as numbers (Ruote sorts expids
//! as strings, `0_0_10` < `0_0_2`), and `isolate` keys are the full branch
//! index (Ruote's concurrent iterator keeps only the last digit). Invalid
//! attribute values are errors here (Ruote silently falls back to the
//! default).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::tree::Attrs;

/// Which branch's workitem takes precedence (`merge` / `m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeWinner {
    /// The first reply (default).
    #[default]
    First,
    /// The last reply.
    Last,
    /// The topmost branch in the definition.
    Highest,
    /// The bottommost branch in the definition.
    Lowest,
}

/// How the replies' fields are combined (`merge_type` / `mt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeType {
    #[default]
    Override,
    Mix,
    Isolate,
    Stack,
    Union,
    Concat,
    Deep,
    Ignore,
}

/// What happens to branches still running when the concurrence is over
/// (`remaining` / `rem` / `r`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Remaining {
    /// Reply to the parent, then cancel them (default).
    #[default]
    Cancel,
    /// Reply to the parent and let them run; the concurrence lingers until
    /// they end, then ceases.
    Forget,
    /// Cancel them, wait for their replies, merge those too, then reply.
    Wait,
}

/// When the concurrence is over (besides `over_if`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Every branch must reply (default).
    #[default]
    All,
    /// `count` / `c` / integer `wait_for`: that many replies; negative =
    /// all but N (at least 1); larger than the branch count = all; `0` =
    /// over at once.
    Count(i64),
    /// `wait_for` tags: over when each has left (`__left_tag__` of a reply).
    Tags(Vec<String>),
}

/// An attribute value that cannot be used, or a reply that cannot be
/// accounted for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("concurrence attribute '{name}' is invalid: {value} (expected {expected})")]
    Attribute {
        name: String,
        value: String,
        expected: &'static str,
    },
    #[error("reply from branch {branch} but the concurrence has {branches} branches")]
    NoSuchBranch { branch: usize, branches: usize },
    #[error("branch {branch} already replied to the concurrence")]
    DuplicateReply { branch: usize },
    #[error(
        "reply from branch {branch} after the concurrence is over (its branches were cancelled)"
    )]
    AlreadyOver { branch: usize },
}

/// The error of [`Replies::reply`]: the bookkeeping's own, or the one the
/// `over_if` closure returned (the state is then unchanged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError<E> {
    #[error(transparent)]
    Merge(#[from] MergeError),
    #[error("over_if: {0}")]
    Condition(E),
}

/// A concurrence's (or concurrent iterator's) configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concurrence {
    /// Number of branches (children; list items for a concurrent iterator).
    pub branches: usize,
    pub expect: Expect,
    pub merge: MergeWinner,
    pub merge_type: MergeType,
    pub remaining: Remaining,
    /// The attributes as given (after substitution), for `stack_attributes`.
    pub attributes: Map<String, Value>,
}

fn first_attr<'a>(attrs: &'a Attrs, names: &[&'static str]) -> Option<(&'static str, &'a Value)> {
    names
        .iter()
        .find_map(|n| attrs.get(*n).filter(|v| !v.is_null()).map(|v| (*n, v)))
}

fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let t = s.trim();
            let digits = t.strip_prefix('-').unwrap_or(t);
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                t.parse().ok()
            } else {
                None
            }
        }
        _ => None,
    }
}

fn shown(v: &Value) -> String {
    v.to_string()
}

fn choice<T: Copy>(
    attrs: &Attrs,
    names: &[&'static str],
    table: &[(&str, T)],
    expected: &'static str,
    default: T,
) -> Result<T, MergeError> {
    let Some((name, v)) = first_attr(attrs, names) else {
        return Ok(default);
    };
    let found = v
        .as_str()
        .map(str::trim)
        .and_then(|s| table.iter().find(|(k, _)| *k == s).map(|(_, t)| *t));
    found.ok_or_else(|| MergeError::Attribute {
        name: name.to_string(),
        value: shown(v),
        expected,
    })
}

impl Concurrence {
    /// Reads `count`/`c`, `wait_for`/`wf`, `merge`/`m`, `merge_type`/`mt`
    /// and `remaining`/`rem`/`r` (the attributes after substitution);
    /// `branches` is the number of children (or list items). A non-integer
    /// `count` or an unknown value is an error.
    pub fn from_attrs(attrs: &Attrs, branches: usize) -> Result<Self, MergeError> {
        let count = match first_attr(attrs, &["count", "c"]) {
            None => None,
            Some((name, v)) => Some(integer(v).ok_or_else(|| MergeError::Attribute {
                name: name.to_string(),
                value: shown(v),
                expected: "an integer (negative = all but N)",
            })?),
        };
        let expect = match (count, first_attr(attrs, &["wait_for", "wf"])) {
            (Some(c), _) => Expect::Count(c),
            (None, None) => Expect::All,
            (None, Some((name, v))) => {
                if let Some(c) = integer(v) {
                    Expect::Count(c)
                } else {
                    let bad = || MergeError::Attribute {
                        name: name.to_string(),
                        value: shown(v),
                        expected: "an integer, a comma-separated list of tags or an array of tags",
                    };
                    let tags: Vec<String> = match v {
                        Value::String(s) => s
                            .split(',')
                            .map(str::trim)
                            .filter(|t| !t.is_empty())
                            .map(String::from)
                            .collect(),
                        Value::Array(items) => items
                            .iter()
                            .map(|i| i.as_str().map(|s| s.trim().to_string()).ok_or_else(bad))
                            .collect::<Result<_, _>>()?,
                        _ => return Err(bad()),
                    };
                    if tags.is_empty() || tags.iter().any(String::is_empty) {
                        return Err(bad());
                    }
                    Expect::Tags(tags)
                }
            }
        };
        let merge = choice(
            attrs,
            &["merge", "m"],
            &[
                ("first", MergeWinner::First),
                ("last", MergeWinner::Last),
                ("highest", MergeWinner::Highest),
                ("lowest", MergeWinner::Lowest),
            ],
            "first, last, highest or lowest",
            MergeWinner::First,
        )?;
        let merge_type = choice(
            attrs,
            &["merge_type", "mt"],
            &[
                ("override", MergeType::Override),
                ("mix", MergeType::Mix),
                ("isolate", MergeType::Isolate),
                ("stack", MergeType::Stack),
                ("union", MergeType::Union),
                ("concat", MergeType::Concat),
                ("deep", MergeType::Deep),
                ("ignore", MergeType::Ignore),
            ],
            "override, mix, isolate, stack, union, concat, deep or ignore",
            MergeType::Override,
        )?;
        let remaining = choice(
            attrs,
            &["remaining", "rem", "r"],
            &[
                ("cancel", Remaining::Cancel),
                ("forget", Remaining::Forget),
                ("wait", Remaining::Wait),
            ],
            "cancel, forget or wait",
            Remaining::Cancel,
        )?;
        Ok(Concurrence {
            branches,
            expect,
            merge,
            merge_type,
            remaining,
            attributes: attrs.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
    }

    /// How many replies end the concurrence (`None` for `wait_for` tags).
    pub fn expected_count(&self) -> Option<usize> {
        let n = self.branches;
        match &self.expect {
            Expect::All => Some(n),
            Expect::Count(c) if *c >= 0 => Some(usize::try_from(*c).unwrap_or(usize::MAX).min(n)),
            Expect::Count(c) => {
                let all_but = usize::try_from(c.unsigned_abs()).unwrap_or(usize::MAX);
                Some(n.saturating_sub(all_but).max(1))
            }
            Expect::Tags(_) => None,
        }
    }
}

/// What the engine does after [`Replies::start`] or [`Replies::reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Not over: wait for more replies.
    Pending,
    /// Over now: reply to the parent with [`Replies::merged`] first, then
    /// cancel or forget (per `action`) the branches in `remaining` (empty
    /// when every branch has replied).
    Over {
        remaining: Vec<usize>,
        action: Remaining,
    },
    /// `remaining: wait` just became over: cancel these branches and wait
    /// for their replies (they are merged too); no reply to the parent yet.
    CancelAndWait(Vec<usize>),
    /// The reply of a branch already cancelled (`wait`) or forgotten
    /// (`forget`) while others still run: nothing to do.
    Absorbed,
    /// Every branch has ended without the concurrence replying now: the last
    /// forgotten branch ended (`forget`), or all replied but a `wait_for` tag
    /// never left. Remove the concurrence without replying (the process
    /// ceases if nothing else runs).
    Ceased,
}

/// The replies of one concurrence so far (serializable: the engine stores
/// it with the expression).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replies {
    pub config: Concurrence,
    /// Branch indexes in reply order (only replies that count for the merge).
    order: Vec<usize>,
    /// Fields per branch, `None` until it replied (or when its reply came
    /// after the merge, `forget`).
    fields: Vec<Option<Map<String, Value>>>,
    /// Branches that replied after the merge (`forget`).
    late: BTreeSet<usize>,
    /// The reply whose `over_if` triggered.
    winner: Option<usize>,
    /// `wait_for` tags that have not left yet.
    pending_tags: Vec<String>,
    over: bool,
    /// Set once the engine has been told to reply to the parent.
    replied: bool,
}

impl Replies {
    pub fn new(config: Concurrence) -> Self {
        let pending_tags = match &config.expect {
            Expect::Tags(t) => t.clone(),
            _ => Vec::new(),
        };
        Replies {
            fields: vec![None; config.branches],
            config,
            order: Vec::new(),
            late: BTreeSet::new(),
            winner: None,
            pending_tags,
            over: false,
            replied: false,
        }
    }

    /// Called once when the concurrence is applied: no branch, or
    /// `count: 0`, is over at once (the reply is the applied workitem).
    pub fn start(&mut self) -> Progress {
        if self.config.branches == 0 || self.expected_count() == Some(0) {
            self.become_over()
        } else {
            Progress::Pending
        }
    }

    fn expected_count(&self) -> Option<usize> {
        self.config.expected_count()
    }

    /// Whether the concurrence is over (it may still wait for cancelled or
    /// forgotten branches).
    pub fn is_over(&self) -> bool {
        self.over
    }

    /// Branch indexes in reply order.
    pub fn reply_order(&self) -> &[usize] {
        &self.order
    }

    /// The branch whose `over_if` triggered, if any.
    pub fn winner(&self) -> Option<usize> {
        self.winner
    }

    /// Branches that have not replied yet.
    pub fn outstanding(&self) -> Vec<usize> {
        (0..self.config.branches)
            .filter(|b| self.fields[*b].is_none() && !self.late.contains(b))
            .collect()
    }

    /// Adds `n` branches (a concurrent iterator's `__add_branches__`) while
    /// the concurrence is not over; returns the new branch indexes.
    pub fn add_branches(&mut self, n: usize) -> std::ops::Range<usize> {
        let start = self.config.branches;
        if self.over {
            return start..start;
        }
        self.config.branches += n;
        self.fields.resize(self.config.branches, None);
        start..self.config.branches
    }

    /// Records branch `branch`'s reply. `over_if` is evaluated on the reply's
    /// fields while the concurrence is not over (the engine passes
    /// `over_if`/`over_unless` through `super::expr::condition`; return
    /// `Ok(false)` when there is none); when it says true, this reply is the
    /// winner and the concurrence is over. On an error nothing is recorded.
    pub fn reply<E, F>(
        &mut self,
        branch: usize,
        fields: Map<String, Value>,
        over_if: F,
    ) -> Result<Progress, ReplyError<E>>
    where
        F: FnOnce(&Map<String, Value>) -> Result<bool, E>,
    {
        if branch >= self.config.branches {
            return Err(MergeError::NoSuchBranch {
                branch,
                branches: self.config.branches,
            }
            .into());
        }
        if self.fields[branch].is_some() || self.late.contains(&branch) {
            return Err(MergeError::DuplicateReply { branch }.into());
        }
        if self.replied && self.config.remaining == Remaining::Cancel {
            return Err(MergeError::AlreadyOver { branch }.into());
        }
        if self.over {
            // Forgotten branches, or cancelled ones under `remaining: wait`.
            if self.config.remaining == Remaining::Forget {
                self.late.insert(branch);
                return Ok(if self.outstanding().is_empty() {
                    Progress::Ceased
                } else {
                    Progress::Absorbed
                });
            }
            self.record(branch, fields);
            return Ok(if self.outstanding().is_empty() {
                self.replied = true;
                Progress::Over {
                    remaining: Vec::new(),
                    action: Remaining::Wait,
                }
            } else {
                Progress::Absorbed
            });
        }
        let triggered = over_if(&fields).map_err(ReplyError::Condition)?;
        if let Some(tag) = fields.get("__left_tag__").and_then(Value::as_str) {
            self.pending_tags.retain(|t| t != tag);
        }
        self.record(branch, fields);
        let over = if triggered {
            self.winner = Some(branch);
            true
        } else {
            match self.expected_count() {
                Some(n) => self.order.len() >= n,
                None => self.pending_tags.is_empty(),
            }
        };
        if over {
            Ok(self.become_over())
        } else if self.outstanding().is_empty() {
            Ok(Progress::Ceased)
        } else {
            Ok(Progress::Pending)
        }
    }

    fn record(&mut self, branch: usize, fields: Map<String, Value>) {
        self.order.push(branch);
        self.fields[branch] = Some(fields);
    }

    fn become_over(&mut self) -> Progress {
        self.over = true;
        let remaining = self.outstanding();
        if self.config.remaining == Remaining::Wait && !remaining.is_empty() {
            return Progress::CancelAndWait(remaining);
        }
        self.replied = true;
        Progress::Over {
            remaining,
            action: self.config.remaining,
        }
    }

    /// Branch indexes in the order the merge applies them: the one that
    /// prevails comes last.
    fn merge_sequence(&self) -> Vec<usize> {
        let mut seq: Vec<usize> = match (self.config.merge_type, self.config.merge) {
            (MergeType::Union | MergeType::Concat | MergeType::Deep, _) => self.order.clone(),
            (_, MergeWinner::First) => self.order.iter().rev().copied().collect(),
            (_, MergeWinner::Last) => self.order.clone(),
            (_, MergeWinner::Highest) => {
                let mut s = self.order.clone();
                s.sort_unstable_by(|a, b| b.cmp(a));
                s
            }
            (_, MergeWinner::Lowest) => {
                let mut s = self.order.clone();
                s.sort_unstable();
                s
            }
        };
        if let Some(w) = self.winner {
            seq.retain(|b| *b != w);
            seq.push(w);
        }
        seq
    }

    /// The fields the concurrence replies to its parent with; `original` is
    /// the applied workitem's fields (returned as they are with no reply or
    /// `merge_type: ignore`). Only replies received before the merge count
    /// (with `remaining: wait`, the cancelled branches' replies too).
    pub fn merged(&self, original: &Map<String, Value>) -> Map<String, Value> {
        if self.order.is_empty() || self.config.merge_type == MergeType::Ignore {
            return original.clone();
        }
        // (Branch, fields) in merge order; every recorded branch has fields.
        let seq: Vec<(usize, &Map<String, Value>)> = self
            .merge_sequence()
            .into_iter()
            .filter_map(|b| self.fields.get(b)?.as_ref().map(|f| (b, f)))
            .collect();
        let Some(((_, last), (_, head))) = seq.last().zip(seq.first()) else {
            return original.clone();
        };
        match self.config.merge_type {
            MergeType::Ignore => original.clone(),
            MergeType::Override => (*last).clone(),
            MergeType::Mix => {
                let mut out = Map::new();
                for (_, f) in &seq {
                    for (k, v) in *f {
                        out.insert(k.clone(), v.clone());
                    }
                }
                out
            }
            MergeType::Isolate => seq
                .iter()
                .map(|(b, f)| (b.to_string(), Value::Object((*f).clone())))
                .collect(),
            MergeType::Stack => {
                let stack = seq
                    .iter()
                    .rev()
                    .map(|(_, f)| Value::Object((*f).clone()))
                    .collect();
                let mut out = Map::new();
                out.insert("stack".into(), Value::Array(stack));
                out.insert(
                    "stack_attributes".into(),
                    Value::Object(self.config.attributes.clone()),
                );
                out
            }
            MergeType::Union | MergeType::Concat | MergeType::Deep => {
                let kind = self.config.merge_type;
                let mut out = (*head).clone();
                for (_, f) in &seq[1..] {
                    for (k, sv) in *f {
                        match (out.get_mut(k), sv) {
                            (Some(Value::Array(tv)), Value::Array(sv)) => {
                                tv.extend(sv.iter().cloned());
                                if kind == MergeType::Union {
                                    dedup(tv);
                                }
                            }
                            (Some(Value::Object(tv)), Value::Object(sv)) => {
                                if kind == MergeType::Deep {
                                    deep_merge(tv, sv);
                                } else {
                                    for (k2, v2) in sv {
                                        tv.insert(k2.clone(), v2.clone());
                                    }
                                }
                            }
                            _ => {
                                out.insert(k.clone(), sv.clone());
                            }
                        }
                    }
                }
                out
            }
        }
    }
}

/// Ruby's `uniq!`: keeps the first occurrence of each value.
fn dedup(items: &mut Vec<Value>) {
    let mut kept: Vec<Value> = Vec::with_capacity(items.len());
    for v in items.drain(..) {
        if !kept.contains(&v) {
            kept.push(v);
        }
    }
    *items = kept;
}

/// ActiveSupport-flavoured deep merge: objects merged recursively, anything
/// else (arrays included) replaced.
fn deep_merge(target: &mut Map<String, Value>, source: &Map<String, Value>) {
    for (k, sv) in source {
        match (target.get_mut(k), sv) {
            (Some(Value::Object(tv)), Value::Object(sv)) => deep_merge(tv, sv),
            _ => {
                target.insert(k.clone(), sv.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;
    use std::convert::Infallible;

    fn attrs(v: Value) -> Attrs {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn no(_: &Map<String, Value>) -> Result<bool, Infallible> {
        Ok(false)
    }

    fn replies(a: Value, branches: usize) -> Replies {
        let mut r = Replies::new(Concurrence::from_attrs(&attrs(a), branches).unwrap());
        assert_eq!(r.start(), Progress::Pending);
        r
    }

    /// The corpus shape: branch i sets `seen`, its own expid key, `a` and `h`.
    fn corpus(a: Value, order: &[usize]) -> Map<String, Value> {
        let mut r = replies(a, 3);
        for b in order {
            let e = format!("0_0_{b}");
            let f = obj(json!({"seen": e, e.clone(): "alpha", "a": [e, "x"], "h": {e.clone(): 9}}));
            r.reply(*b, f, no).unwrap();
        }
        r.merged(&obj(json!({"orig": 1})))
    }

    #[test]
    fn defaults() {
        let c = Concurrence::from_attrs(&Attrs::new(), 2).unwrap();
        assert_eq!(c.expect, Expect::All);
        assert_eq!(c.merge, MergeWinner::First);
        assert_eq!(c.merge_type, MergeType::Override);
        assert_eq!(c.remaining, Remaining::Cancel);
        assert_eq!(c.expected_count(), Some(2));
    }

    #[test]
    fn short_attribute_names() {
        let c = Concurrence::from_attrs(
            &attrs(json!({"c": "1", "m": "last", "mt": "mix", "rem": "forget"})),
            3,
        )
        .unwrap();
        assert_eq!(c.expect, Expect::Count(1));
        assert_eq!(c.merge, MergeWinner::Last);
        assert_eq!(c.merge_type, MergeType::Mix);
        assert_eq!(c.remaining, Remaining::Forget);
        let c = Concurrence::from_attrs(&attrs(json!({"r": "wait"})), 3).unwrap();
        assert_eq!(c.remaining, Remaining::Wait);
    }

    #[test]
    fn bad_attributes_are_errors() {
        for a in [
            json!({"count": "two"}),
            json!({"count": 1.5}),
            json!({"merge": "middle"}),
            json!({"merge_type": "zip"}),
            json!({"mt": 3}),
            json!({"remaining": "keep"}),
            json!({"wait_for": ","}),
            json!({"wait_for": [1]}),
        ] {
            let e = Concurrence::from_attrs(&attrs(a.clone()), 2).unwrap_err();
            assert!(matches!(e, MergeError::Attribute { .. }), "{a}");
        }
        let e = Concurrence::from_attrs(&attrs(json!({"merge": "middle"})), 2).unwrap_err();
        assert_eq!(
            e.to_string(),
            "concurrence attribute 'merge' is invalid: \"middle\" (expected first, last, highest or lowest)"
        );
    }

    #[test]
    fn count_resolution() {
        let n = |a: Value| {
            Concurrence::from_attrs(&attrs(a), 3)
                .unwrap()
                .expected_count()
        };
        assert_eq!(n(json!({"count": 2})), Some(2));
        assert_eq!(n(json!({"count": "2"})), Some(2));
        assert_eq!(n(json!({"count": 7})), Some(3));
        assert_eq!(n(json!({"count": -1})), Some(2));
        assert_eq!(n(json!({"count": "-5"})), Some(1));
        assert_eq!(n(json!({"count": 0})), Some(0));
        assert_eq!(n(json!({"wait_for": 1})), Some(1));
        assert_eq!(n(json!({"wf": "2"})), Some(2));
        assert_eq!(n(json!({"wait_for": "a, b"})), None);
    }

    #[test]
    fn count_wins_over_wait_for() {
        let c = Concurrence::from_attrs(&attrs(json!({"count": 1, "wait_for": "t"})), 2).unwrap();
        assert_eq!(c.expect, Expect::Count(1));
    }

    #[test]
    fn wait_for_tags_string_and_array() {
        let c =
            Concurrence::from_attrs(&attrs(json!({"wait_for": "azuma, bashamichi"})), 3).unwrap();
        assert_eq!(
            c.expect,
            Expect::Tags(vec!["azuma".into(), "bashamichi".into()])
        );
        let c = Concurrence::from_attrs(&attrs(json!({"wf": ["azuma", "bashamichi"]})), 3).unwrap();
        assert_eq!(
            c.expect,
            Expect::Tags(vec!["azuma".into(), "bashamichi".into()])
        );
    }

    #[test]
    fn all_replies_end_it() {
        let mut r = replies(json!({}), 2);
        assert_eq!(
            r.reply(1, obj(json!({"b": 1})), no).unwrap(),
            Progress::Pending
        );
        assert_eq!(
            r.reply(0, obj(json!({"a": 1})), no).unwrap(),
            Progress::Over {
                remaining: vec![],
                action: Remaining::Cancel
            }
        );
        assert_eq!(r.reply_order(), &[1, 0]);
    }

    #[test]
    fn count_ends_it_and_names_remaining_to_cancel() {
        let mut r = replies(json!({"count": 1}), 3);
        assert_eq!(
            r.reply(1, obj(json!({})), no).unwrap(),
            Progress::Over {
                remaining: vec![0, 2],
                action: Remaining::Cancel
            }
        );
        assert!(r.is_over());
        // Cancelled branches are gone: a reply from one is refused.
        assert_eq!(
            r.reply(0, obj(json!({})), no).unwrap_err(),
            ReplyError::Merge(MergeError::AlreadyOver { branch: 0 })
        );
    }

    #[test]
    fn negative_count_is_all_but_n() {
        let mut r = replies(json!({"c": -1, "mt": "mix"}), 3);
        assert_eq!(
            r.reply(0, obj(json!({"a": 1})), no).unwrap(),
            Progress::Pending
        );
        assert_eq!(
            r.reply(1, obj(json!({"b": 2})), no).unwrap(),
            Progress::Over {
                remaining: vec![2],
                action: Remaining::Cancel
            }
        );
        assert_eq!(r.merged(&Map::new()), obj(json!({"a": 1, "b": 2})));
    }

    #[test]
    fn count_zero_is_over_at_once_with_the_applied_workitem() {
        let mut r = Replies::new(
            Concurrence::from_attrs(&attrs(json!({"count": 0, "r": "forget"})), 2).unwrap(),
        );
        assert_eq!(
            r.start(),
            Progress::Over {
                remaining: vec![0, 1],
                action: Remaining::Forget
            }
        );
        let original = obj(json!({"k": "v"}));
        assert_eq!(r.merged(&original), original);
    }

    #[test]
    fn no_branches_replies_with_the_applied_workitem() {
        let mut r = Replies::new(Concurrence::from_attrs(&Attrs::new(), 0).unwrap());
        assert_eq!(
            r.start(),
            Progress::Over {
                remaining: vec![],
                action: Remaining::Cancel
            }
        );
        let original = obj(json!({"k": "v"}));
        assert_eq!(r.merged(&original), original);
    }

    #[test]
    fn remaining_forget_lingers_then_ceases() {
        let mut r = replies(json!({"count": 1, "remaining": "forget", "mt": "mix"}), 3);
        assert_eq!(
            r.reply(0, obj(json!({"a": 1})), no).unwrap(),
            Progress::Over {
                remaining: vec![1, 2],
                action: Remaining::Forget
            }
        );
        let merged = r.merged(&Map::new());
        assert_eq!(
            r.reply(2, obj(json!({"c": 3})), no).unwrap(),
            Progress::Absorbed
        );
        assert_eq!(
            r.reply(1, obj(json!({"b": 2})), no).unwrap(),
            Progress::Ceased
        );
        // Late replies do not change what was merged.
        assert_eq!(r.merged(&Map::new()), merged);
        assert_eq!(merged, obj(json!({"a": 1})));
    }

    #[test]
    fn remaining_wait_cancels_then_merges_everything() {
        let mut r = replies(json!({"count": 1, "rem": "wait", "mt": "mix"}), 2);
        assert_eq!(
            r.reply(0, obj(json!({"a": true})), no).unwrap(),
            Progress::CancelAndWait(vec![1])
        );
        assert_eq!(
            r.reply(1, obj(json!({"b": true})), no).unwrap(),
            Progress::Over {
                remaining: vec![],
                action: Remaining::Wait
            }
        );
        assert_eq!(r.merged(&Map::new()), obj(json!({"a": true, "b": true})));
    }

    #[test]
    fn remaining_wait_with_all_replied_is_a_plain_reply() {
        let mut r = replies(json!({"rem": "wait"}), 1);
        assert_eq!(
            r.reply(0, obj(json!({})), no).unwrap(),
            Progress::Over {
                remaining: vec![],
                action: Remaining::Wait
            }
        );
    }

    #[test]
    fn wait_for_tags_end_when_every_tag_left() {
        let mut r = replies(json!({"wait_for": "azuma, bashamichi", "mt": "concat"}), 3);
        let f = |tag: &str| obj(json!({"seen": [tag], "__left_tag__": tag}));
        assert_eq!(r.reply(0, f("azuma"), no).unwrap(), Progress::Pending);
        assert_eq!(r.reply(2, f("katou"), no).unwrap(), Progress::Pending);
        assert_eq!(
            r.reply(1, f("bashamichi"), no).unwrap(),
            Progress::Over {
                remaining: vec![],
                action: Remaining::Cancel
            }
        );
    }

    #[test]
    fn wait_for_unknown_tag_ceases() {
        let mut r = replies(json!({"wait_for": "nada"}), 2);
        assert_eq!(r.reply(0, obj(json!({})), no).unwrap(), Progress::Pending);
        assert_eq!(r.reply(1, obj(json!({})), no).unwrap(), Progress::Ceased);
        assert!(!r.is_over());
    }

    #[test]
    fn over_if_ends_it_and_its_reply_wins() {
        let mut r = replies(json!({"merge": "first"}), 3);
        let cond = |f: &Map<String, Value>| -> Result<bool, Infallible> {
            Ok(f.get("over") == Some(&json!(true)))
        };
        assert_eq!(
            r.reply(0, obj(json!({"who": 0})), cond).unwrap(),
            Progress::Pending
        );
        assert_eq!(
            r.reply(2, obj(json!({"who": 2, "over": true})), cond)
                .unwrap(),
            Progress::Over {
                remaining: vec![1],
                action: Remaining::Cancel
            }
        );
        assert_eq!(r.winner(), Some(2));
        assert_eq!(r.merged(&Map::new()), obj(json!({"who": 2, "over": true})));
    }

    #[test]
    fn over_if_winner_prevails_in_mix_and_union() {
        for mt in ["mix", "union"] {
            let cond =
                |f: &Map<String, Value>| -> Result<bool, Infallible> { Ok(f.contains_key("done")) };
            let mut r = replies(json!({"mt": mt, "merge": "last", "rem": "wait"}), 3);
            r.reply(0, obj(json!({"x": 0})), cond).unwrap();
            assert_eq!(
                r.reply(1, obj(json!({"x": 1, "done": 1})), cond).unwrap(),
                Progress::CancelAndWait(vec![2])
            );
            r.reply(2, obj(json!({"x": 2})), cond).unwrap();
            assert_eq!(r.merged(&Map::new())["x"], json!(1), "{mt}");
        }
    }

    #[test]
    fn over_if_is_not_evaluated_once_over() {
        let mut r = replies(json!({"count": 1, "rem": "wait"}), 2);
        r.reply(0, obj(json!({})), no).unwrap();
        let boom = |_: &Map<String, Value>| -> Result<bool, &'static str> { Err("evaluated") };
        assert!(r.reply(1, obj(json!({})), boom).is_ok());
    }

    #[test]
    fn over_if_error_records_nothing() {
        let mut r = replies(json!({}), 2);
        let boom = |_: &Map<String, Value>| -> Result<bool, &'static str> { Err("bad") };
        assert_eq!(
            r.reply(0, obj(json!({})), boom).unwrap_err(),
            ReplyError::Condition("bad")
        );
        assert!(r.reply_order().is_empty());
        assert_eq!(r.reply(0, obj(json!({})), no).unwrap(), Progress::Pending);
    }

    #[test]
    fn bad_replies_are_errors() {
        let mut r = replies(json!({}), 2);
        assert_eq!(
            r.reply(2, obj(json!({})), no).unwrap_err(),
            ReplyError::Merge(MergeError::NoSuchBranch {
                branch: 2,
                branches: 2
            })
        );
        r.reply(0, obj(json!({})), no).unwrap();
        assert_eq!(
            r.reply(0, obj(json!({})), no).unwrap_err(),
            ReplyError::Merge(MergeError::DuplicateReply { branch: 0 })
        );
    }

    #[test]
    fn merge_first_is_the_first_reply() {
        assert_eq!(corpus(json!({}), &[0, 1, 2])["seen"], "0_0_0");
        assert_eq!(corpus(json!({}), &[2, 1, 0])["seen"], "0_0_2");
    }

    #[test]
    fn merge_last_is_the_last_reply() {
        assert_eq!(
            corpus(json!({"merge": "last"}), &[0, 1, 2])["seen"],
            "0_0_2"
        );
        assert_eq!(
            corpus(json!({"merge": "last"}), &[2, 1, 0])["seen"],
            "0_0_0"
        );
    }

    #[test]
    fn merge_highest_is_the_topmost_branch() {
        assert_eq!(
            corpus(json!({"merge": "highest"}), &[0, 1, 2])["seen"],
            "0_0_0"
        );
        assert_eq!(
            corpus(json!({"merge": "highest"}), &[2, 1, 0])["seen"],
            "0_0_0"
        );
    }

    #[test]
    fn merge_lowest_is_the_bottommost_branch() {
        assert_eq!(
            corpus(json!({"merge": "lowest"}), &[0, 1, 2])["seen"],
            "0_0_2"
        );
        assert_eq!(
            corpus(json!({"merge": "lowest"}), &[2, 1, 0])["seen"],
            "0_0_2"
        );
    }

    #[test]
    fn highest_and_lowest_compare_branch_numbers_not_strings() {
        let mut r = replies(json!({"merge": "lowest"}), 11);
        for b in 0..11 {
            r.reply(b, obj(json!({"b": b})), no).unwrap();
        }
        assert_eq!(r.merged(&Map::new())["b"], json!(10));
    }

    #[test]
    fn override_keeps_only_the_winner_fields() {
        let m = corpus(json!({}), &[0, 1, 2]);
        assert_eq!(
            m,
            obj(json!({"seen": "0_0_0", "0_0_0": "alpha", "a": ["0_0_0", "x"], "h": {"0_0_0": 9}}))
        );
        assert!(!m.contains_key("orig"));
    }

    #[test]
    fn mix_merges_shallowly_with_the_winner_prevailing() {
        let m = corpus(json!({"merge_type": "mix"}), &[0, 1, 2]);
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys, ["0_0_0", "0_0_1", "0_0_2", "a", "h", "seen"]);
        assert_eq!(m["seen"], "0_0_0");
        assert_eq!(m["a"], json!(["0_0_0", "x"]));
        assert_eq!(m["h"], json!({"0_0_0": 9}));
        assert_eq!(
            corpus(json!({"mt": "mix", "m": "last"}), &[0, 1, 2])["seen"],
            "0_0_2"
        );
    }

    #[test]
    fn isolate_keys_by_branch_index_and_drops_the_rest() {
        let m = corpus(json!({"merge_type": "isolate"}), &[2, 0, 1]);
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys, ["0", "1", "2"]);
        for b in 0..3 {
            assert_eq!(m[&b.to_string()]["seen"], format!("0_0_{b}"));
        }
    }

    #[test]
    fn isolate_uses_the_full_branch_index() {
        let mut r = replies(json!({"mt": "isolate"}), 12);
        for b in 0..12 {
            r.reply(b, obj(json!({"b": b})), no).unwrap();
        }
        let m = r.merged(&Map::new());
        assert_eq!(m.len(), 12);
        assert_eq!(m["11"], json!({"b": 11}));
        assert_eq!(m["1"], json!({"b": 1}));
    }

    #[test]
    fn stack_shape_and_order() {
        let a = json!({"merge_type": "stack", "merge": "highest"});
        let m = corpus(a.clone(), &[2, 0, 1]);
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys, ["stack", "stack_attributes"]);
        assert_eq!(m["stack_attributes"], a);
        let seen = |m: &Map<String, Value>| -> Vec<String> {
            m["stack"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["seen"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(seen(&m), ["0_0_0", "0_0_1", "0_0_2"]);
        assert_eq!(
            seen(&corpus(json!({"mt": "stack"}), &[0, 1, 2])),
            ["0_0_0", "0_0_1", "0_0_2"]
        );
        assert_eq!(
            seen(&corpus(json!({"mt": "stack"}), &[1, 2, 0])),
            ["0_0_1", "0_0_2", "0_0_0"]
        );
        assert_eq!(
            seen(&corpus(json!({"mt": "stack", "m": "last"}), &[1, 2, 0])),
            ["0_0_0", "0_0_2", "0_0_1"]
        );
        assert_eq!(
            seen(&corpus(json!({"mt": "stack", "m": "lowest"}), &[1, 2, 0])),
            ["0_0_2", "0_0_1", "0_0_0"]
        );
        assert_eq!(
            m["stack"][0],
            json!({"seen": "0_0_0", "0_0_0": "alpha", "a": ["0_0_0", "x"], "h": {"0_0_0": 9}})
        );
    }

    #[test]
    fn stack_with_one_reply_still_has_attributes() {
        let mut r = replies(json!({"mt": "stack"}), 1);
        r.reply(0, obj(json!({"k": 1})), no).unwrap();
        assert_eq!(
            r.merged(&Map::new()),
            obj(json!({"stack": [{"k": 1}], "stack_attributes": {"mt": "stack"}}))
        );
    }

    #[test]
    fn union_concatenates_deduplicates_in_reply_order() {
        let m = corpus(json!({"merge_type": "union"}), &[0, 1, 2]);
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys, ["0_0_0", "0_0_1", "0_0_2", "a", "h", "seen"]);
        // Scalars: the last reply wins even with merge: first.
        assert_eq!(m["seen"], "0_0_2");
        assert_eq!(m["a"], json!(["0_0_0", "x", "0_0_1", "0_0_2"]));
        assert_eq!(m["h"], json!({"0_0_0": 9, "0_0_1": 9, "0_0_2": 9}));
    }

    #[test]
    fn union_removes_pre_existing_duplicates_and_replaces_mismatched_types() {
        let mut r = replies(json!({"mt": "union"}), 2);
        r.reply(0, obj(json!({"a": [1, 1, 2], "s": [1], "o": {"k": 1}})), no)
            .unwrap();
        r.reply(
            1,
            obj(json!({"a": [2, 3], "s": "now a string", "o": {"j": 2}})),
            no,
        )
        .unwrap();
        assert_eq!(
            r.merged(&Map::new()),
            obj(json!({"a": [1, 2, 3], "s": "now a string", "o": {"k": 1, "j": 2}}))
        );
    }

    #[test]
    fn concat_keeps_duplicates() {
        let m = corpus(json!({"merge_type": "concat"}), &[0, 1, 2]);
        assert_eq!(m["seen"], "0_0_2");
        assert_eq!(m["a"], json!(["0_0_0", "x", "0_0_1", "x", "0_0_2", "x"]));
        assert_eq!(m["h"], json!({"0_0_0": 9, "0_0_1": 9, "0_0_2": 9}));
        let m = corpus(json!({"mt": "concat"}), &[2, 1, 0]);
        assert_eq!(m["a"], json!(["0_0_2", "x", "0_0_1", "x", "0_0_0", "x"]));
    }

    #[test]
    fn concat_merges_objects_shallowly_but_deep_recursively() {
        let run = |mt: &str| {
            let mut r = replies(json!({"mt": mt}), 2);
            r.reply(
                0,
                obj(json!({"o": {"n": {"a": 1}, "l": [1]}, "a": [1]})),
                no,
            )
            .unwrap();
            r.reply(
                1,
                obj(json!({"o": {"n": {"b": 2}, "l": [2]}, "a": [1]})),
                no,
            )
            .unwrap();
            r.merged(&Map::new())
        };
        assert_eq!(
            run("concat"),
            obj(json!({"o": {"n": {"b": 2}, "l": [2]}, "a": [1, 1]}))
        );
        // deep: nested objects merged, nested arrays replaced, top arrays concatenated.
        assert_eq!(
            run("deep"),
            obj(json!({"o": {"n": {"a": 1, "b": 2}, "l": [2]}, "a": [1, 1]}))
        );
    }

    #[test]
    fn ignore_replies_with_the_applied_workitem() {
        assert_eq!(
            corpus(json!({"merge_type": "ignore"}), &[0, 1, 2]),
            obj(json!({"orig": 1}))
        );
    }

    #[test]
    fn unreplied_branches_are_not_merged() {
        let mut r = replies(json!({"count": 2, "mt": "mix"}), 3);
        r.reply(2, obj(json!({"c": 3})), no).unwrap();
        r.reply(0, obj(json!({"a": 1})), no).unwrap();
        assert_eq!(r.outstanding(), vec![1]);
        assert_eq!(
            r.merged(&obj(json!({"orig": 1}))),
            obj(json!({"a": 1, "c": 3}))
        );
    }

    #[test]
    fn add_branches_extends_the_expected_count() {
        let mut r = replies(json!({}), 1);
        assert_eq!(r.add_branches(2), 1..3);
        assert_eq!(r.reply(0, obj(json!({})), no).unwrap(), Progress::Pending);
        r.reply(1, obj(json!({})), no).unwrap();
        assert_eq!(
            r.reply(2, obj(json!({})), no).unwrap(),
            Progress::Over {
                remaining: vec![],
                action: Remaining::Cancel
            }
        );
        assert_eq!(r.add_branches(1), 3..3);
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut r = replies(json!({"wait_for": "t", "mt": "union", "m": "highest"}), 3);
        r.reply(1, obj(json!({"a": [1]})), no).unwrap();
        let stored = serde_json::to_string(&r).unwrap();
        let mut back: Replies = serde_json::from_str(&stored).unwrap();
        assert_eq!(back, r);
        let f = obj(json!({"a": [2], "__left_tag__": "t"}));
        assert_eq!(
            back.reply(0, f, no).unwrap(),
            Progress::Over {
                remaining: vec![2],
                action: Remaining::Cancel
            }
        );
        assert_eq!(back.merged(&Map::new())["a"], json!([1, 2]));
    }
}
