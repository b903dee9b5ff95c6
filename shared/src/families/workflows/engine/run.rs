//! The message loop: Ruote's apply / reply / cancel / fail over the live
//! expressions of a [`Process`].
//!
//! One FIFO queue of [`Msg`]s, processed in order as Ruote's single worker
//! does; each expression kind reacts to being applied, to a child's reply
//! and to being cancelled. Errors go up the parent chain to the nearest
//! `on_error` (research/workflows.md §2.5); without one the process is in
//! `error` and the failing expression stays where it is, replayable.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::super::expr::{
    self, ExprError, Lookup, When, condition_value, evaluate, lookup_path, render,
    substitute_attrs, substitute_str, substitute_value,
};
use super::super::handlers::{
    Action, Command, Decision, Handler, HandlerKind, StoreTo, decide, handler_for, nth_action,
    timeout_of,
};
use super::super::merge::{Concurrence, Progress, Remaining, Replies};
use super::super::tree::{Attrs, Node};
use super::{
    Callback, CallbackStatus, Config, Event, Ids, Input, Outcome, Process, ProcessError, Status,
    Workitem,
};

/// Attributes every expression understands; never taken as an
/// expression's own (text attribute, `set` shorthand, `equals` operands).
const COMMON: &[&str] = &[
    "if",
    "unless",
    "forget",
    "lose",
    "flank",
    "tag",
    "timeout",
    "timers",
    "on_error",
    "on_timeout",
    "on_cancel",
    "scope",
    "_triggered",
];

/// An expression's identity (Ruote's fei without the wfid).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fei {
    pub expid: String,
    pub subid: String,
}

impl Fei {
    fn key(&self) -> String {
        format!("{}!{}", self.expid, self.subid)
    }
}

/// How an expression is being cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavour {
    Cancel,
    Kill,
    Timeout,
}

/// The state of an expression that is going away.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum St {
    /// Cancelled (or killed, or timed out): waiting for its children.
    Cancelling { flavour: Flavour },
    /// Its `on_error` fired: children being cancelled, then `action`.
    Failing {
        action: Action2,
        delay_ms: u64,
        fields: Map<String, Value>,
    },
    /// A handler waits for its delay (a timer).
    Waiting {
        action: Action2,
        fields: Map<String, Value>,
    },
}

/// A handler action, stored (serializable form of [`Action`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum Action2 {
    Redo,
    Pass,
    Cancel,
    Cando,
    Error,
    Store {
        field: Option<String>,
        var: Option<String>,
    },
    Command {
        command: String,
        arg: Value,
    },
    Apply {
        name: String,
    },
    Tree {
        tree: Value,
    },
}

impl Action2 {
    fn from(a: &Action) -> Action2 {
        match a {
            Action::Redo => Action2::Redo,
            Action::Pass | Action::Raise => Action2::Pass,
            Action::Cancel => Action2::Cancel,
            Action::Cando => Action2::Cando,
            Action::Error => Action2::Error,
            Action::Store { to, .. } => match to {
                StoreTo::Field(f) => Action2::Store {
                    field: Some(f.clone()),
                    var: None,
                },
                StoreTo::Variable(v) => Action2::Store {
                    field: None,
                    var: Some(v.clone()),
                },
            },
            Action::Command(c) => {
                let (command, arg) = command_parts(c);
                Action2::Command { command, arg }
            }
            Action::Apply { name, .. } => Action2::Apply { name: name.clone() },
            Action::Tree(n) => Action2::Tree { tree: n.to_json() },
        }
    }
}

fn command_parts(c: &Command) -> (String, Value) {
    match c {
        Command::Jump(x) => ("jump".into(), Value::String(x.clone())),
        Command::Skip(n) => ("skip".into(), json!(n)),
        Command::Back(n) => ("back".into(), json!(n)),
        Command::Rewind => ("rewind".into(), Value::Null),
        Command::Break => ("break".into(), Value::Null),
        Command::Over => ("over".into(), Value::Null),
        Command::Reset => ("reset".into(), Value::Null),
        Command::Continue => ("continue".into(), Value::Null),
    }
}

/// Where an iterator puts the current item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum To {
    Var(String),
    Field(String),
}

/// What each kind of expression remembers between messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kind {
    /// Nothing to remember (replies at once, or waits for a cancel).
    Leaf,
    /// `sequence`, `let`, `define` bodies, `that`/`of` with children,
    /// `set` with children: `next` = index of the next child to apply.
    Sequence {
        next: usize,
        #[serde(default)]
        then: Then,
    },
    Concurrence {
        replies: Replies,
        /// Child key per branch.
        branches: Vec<String>,
    },
    Participant {
        name: String,
        workitem_id: String,
        delivery_id: String,
        url: String,
        fields: Map<String, Value>,
    },
    Cursor {
        /// Index of the running child.
        pos: usize,
        looping: bool,
        #[serde(default)]
        pending: Option<(String, Value, Map<String, Value>)>,
    },
    Iterator {
        items: Vec<Value>,
        index: usize,
        /// Index of the running child within the body.
        child: usize,
        to: To,
        #[serde(default)]
        pending: Option<(String, Value, Map<String, Value>)>,
    },
    If {
        /// 0: the condition child runs; 1: the branch runs.
        stage: u8,
    },
    Wait,
    /// `lose`: children run, the expression never replies.
    Lose,
    Subprocess,
}

/// What a sequence-like expression does with its final workitem.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Then {
    #[default]
    Reply,
    /// `that`/`of`: reply with `__result__: true`.
    ResultTrue,
    /// `set` with children: the final `__result__` is the value.
    Set {
        field: Option<String>,
        var: Option<String>,
    },
    /// `given`: stop at the first child leaving `__result__ == true`.
    Given,
}

/// A live expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expr {
    pub fei: Fei,
    pub parent: Option<String>,
    /// The tree as applied (bare names already rewritten).
    #[serde(with = "super::node_json")]
    pub node: Node,
    /// The workitem fields it was applied with.
    pub applied: Map<String, Value>,
    /// Its own variable scope, if it has one.
    #[serde(default)]
    pub vars: Option<Map<String, Value>>,
    #[serde(default)]
    pub children: Vec<String>,
    #[serde(default)]
    pub state: Option<St>,
    pub kind: Kind,
    #[serde(default)]
    pub timers: Vec<String>,
    /// Forgotten: replies go nowhere.
    #[serde(default)]
    pub detached: bool,
    #[serde(default)]
    pub tag: Option<String>,
    /// How often its `on_error` fired (schedules consume entries).
    #[serde(default)]
    pub tries: u32,
    /// Re-apply after the cancel completes (`redo ref: tag`).
    #[serde(default)]
    pub redo: bool,
    /// The handler attribute that replaced the original (not inherited).
    #[serde(default)]
    pub triggered: Option<String>,
}

/// What a timer does when it fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimerRef {
    pub key: String,
    pub what: TimerWhat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerWhat {
    Timeout,
    Wait,
    Handler,
}

/// How a replay retries an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retry {
    /// Apply the expression again (same fei).
    Reapply,
    /// Reply past it with its applied workitem (`error` expressions).
    Resume,
    /// Go on with the messages that were left (a runaway loop).
    Continue,
}

/// Whether a variable value is engine-internal (bound subprocesses, tags).
pub fn is_internal_var(v: &Value) -> bool {
    v.get("__subprocess__").is_some() || v.get("__tag__").is_some()
}

/// One message of the loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "m", rename_all = "snake_case")]
pub enum Msg {
    Apply {
        #[serde(with = "super::node_json")]
        node: Node,
        expid: String,
        subid: String,
        parent: Option<String>,
        fields: Map<String, Value>,
        #[serde(default)]
        vars: Option<Map<String, Value>>,
        /// The launched root or a subprocess root (a `define` runs its body).
        #[serde(default)]
        launched: bool,
        #[serde(default)]
        tries: u32,
        #[serde(default)]
        triggered: Option<String>,
    },
    Reply {
        to: String,
        from: String,
        fields: Map<String, Value>,
    },
    Cancel {
        key: String,
        flavour: Flavour,
    },
    Raise {
        key: String,
        class: String,
        message: String,
        fields: Map<String, Value>,
        retry: Retry,
    },
    /// A cursor command for a non-parent ancestor.
    Command {
        target: String,
        command: String,
        arg: Value,
        fields: Map<String, Value>,
    },
    CancelProcess {
        kill: bool,
    },
}

/// What happened to workitems and timers, in order (folded at the end).
enum Op {
    Open(Workitem),
    Close(String),
}

struct Engine<'a> {
    p: &'a mut Process,
    now: u64,
    ids: &'a mut dyn Ids,
    q: VecDeque<Msg>,
    out: Outcome,
    ops: Vec<Op>,
    timer_ops: Vec<(String, Option<u64>)>,
}

/// Runs `inputs` against `p`: see the module doc of [`super`].
pub fn advance(
    p: &mut Process,
    inputs: Vec<Input>,
    now: u64,
    ids: &mut dyn Ids,
    cfg: &Config,
) -> Outcome {
    let pending = std::mem::take(&mut p.pending);
    let mut e = Engine {
        p,
        now,
        ids,
        q: pending.into(),
        out: Outcome::default(),
        ops: Vec::new(),
        timer_ops: Vec::new(),
    };
    for input in inputs {
        e.input(input);
        e.run(cfg);
    }
    e.run(cfg);
    e.finish()
}

impl Engine<'_> {
    // ------------------------------------------------------------------
    // Inputs
    // ------------------------------------------------------------------

    fn input(&mut self, input: Input) {
        match input {
            Input::Launch => {
                if self.p.status != Status::Launched {
                    self.out.ignored += 1;
                    return;
                }
                self.p.status = Status::Running;
                self.history("launched", None, None, None);
                let subid = self.ids.subid();
                self.p.root = Some(format!("0!{subid}"));
                self.q.push_back(Msg::Apply {
                    node: self.p.definition.clone(),
                    expid: "0".into(),
                    subid,
                    parent: None,
                    fields: self.p.fields.clone(),
                    vars: Some(Map::new()),
                    launched: true,
                    tries: 0,
                    triggered: None,
                });
            }
            Input::Proceed {
                workitem_id,
                fields,
            } => self.receive(&workitem_id, fields),
            Input::Cancel => {
                if self.p.status.is_final() {
                    self.out.ignored += 1;
                    return;
                }
                self.p.cancelling = true;
                if self.p.status == Status::Launched {
                    self.p.status = Status::Cancelled;
                    self.p.ended_at = Some(self.now);
                    self.history("cancelled", None, None, None);
                    return;
                }
                if self.p.errors.iter().any(|e| e.retry == Retry::Continue) {
                    // A runaway loop: its queued steps are dropped.
                    self.p.errors.retain(|e| e.retry != Retry::Continue);
                    self.q.clear();
                }
                self.q.push_back(Msg::CancelProcess { kill: false });
            }
            Input::Timer { timer_id } => self.timer(&timer_id),
            Input::DispatchFailed {
                workitem_id,
                delivery_id,
                reason,
            } => {
                let found = self.p.exprs.iter().find_map(|(k, e)| match &e.kind {
                    Kind::Participant {
                        workitem_id: w,
                        delivery_id: d,
                        name,
                        ..
                    } if *w == workitem_id && *d == delivery_id && e.state.is_none() => {
                        Some((k.clone(), name.clone(), e.applied.clone()))
                    }
                    _ => None,
                });
                match found {
                    None => self.out.ignored += 1,
                    Some((key, name, fields)) => self.q.push_back(Msg::Raise {
                        key,
                        class: "RetriesExceededError".into(),
                        message: format!(
                            "the callback of participant '{name}' failed after its last retry: {reason}"
                        ),
                        fields,
                        retry: Retry::Reapply,
                    }),
                }
            }
            Input::Replay => {
                if self.p.status != Status::Error {
                    self.out.ignored += 1;
                    return;
                }
                let errors = std::mem::take(&mut self.p.errors);
                for err in errors {
                    match err.retry {
                        Retry::Continue => {}
                        Retry::Resume => {
                            if let Some(e) = self.p.exprs.get(&err.key) {
                                let fields = e.applied.clone();
                                self.reply_up(&err.key, fields);
                            }
                        }
                        Retry::Reapply => self.reapply(&err.key, None),
                    }
                }
                self.p.status = Status::Running;
            }
        }
    }

    fn receive(&mut self, workitem_id: &str, fields: Option<Map<String, Value>>) {
        let found = self.p.exprs.iter().find_map(|(k, e)| match &e.kind {
            Kind::Participant {
                workitem_id: w,
                fields,
                name,
                ..
            } if w == workitem_id => Some((k.clone(), fields.clone(), name.clone())),
            _ => None,
        });
        let Some((key, mut current, name)) = found else {
            self.out.ignored += 1;
            return;
        };
        if let Some(given) = fields {
            for (k, v) in given {
                current.insert(k, v);
            }
        }
        current.remove("params");
        current.remove("dispatched_at");
        self.history("proceeded", Some(name), Some(workitem_id.to_owned()), None);
        self.ops.push(Op::Close(workitem_id.to_owned()));
        // A proceed while the participant is being cancelled (timeout,
        // cancel) completes the cancel with the returned workitem.
        self.reply_up(&key, current);
    }

    fn timer(&mut self, timer_id: &str) {
        let Some(t) = self.p.timers.remove(timer_id) else {
            self.out.ignored += 1;
            return;
        };
        self.timer_ops.push((timer_id.to_owned(), None));
        let Some(e) = self.p.exprs.get_mut(&t.key) else {
            self.out.ignored += 1;
            return;
        };
        e.timers.retain(|x| x != timer_id);
        match t.what {
            TimerWhat::Timeout => self.q.push_back(Msg::Cancel {
                key: t.key,
                flavour: Flavour::Timeout,
            }),
            TimerWhat::Wait => {
                let fields = e.applied.clone();
                self.reply_up(&t.key, fields);
            }
            TimerWhat::Handler => {
                if let Some(St::Waiting { action, fields }) = e.state.take() {
                    self.act(&t.key, action, fields, HandlerKind::Error);
                }
            }
        }
    }

    // ------------------------------------------------------------------
    // The loop
    // ------------------------------------------------------------------

    fn run(&mut self, cfg: &Config) {
        if self.p.errors.iter().any(|e| e.retry == Retry::Continue) {
            // Stopped as a runaway: messages wait for a replay.
            return;
        }
        let mut n = 0usize;
        while let Some(m) = self.q.pop_front() {
            n += 1;
            if n > cfg.max_messages {
                self.q.push_front(m);
                let key = self.p.root.clone().unwrap_or_default();
                self.p.errors.push(ProcessError {
                    at: self.now,
                    expid: "0".into(),
                    expression: "process".into(),
                    message: format!(
                        "more than {} steps without waiting for anything (a loop without participants?); replay continues it",
                        cfg.max_messages
                    ),
                    key,
                    retry: Retry::Continue,
                });
                self.history(
                    "error",
                    None,
                    None,
                    Some("runaway: too many steps without waiting".into()),
                );
                break;
            }
            self.handle(m);
        }
    }

    fn handle(&mut self, m: Msg) {
        match m {
            Msg::Apply {
                node,
                expid,
                subid,
                parent,
                fields,
                vars,
                launched,
                tries,
                triggered,
            } => self.apply(
                node, expid, subid, parent, fields, vars, launched, tries, triggered,
            ),
            Msg::Reply { to, from, fields } => self.on_reply(&to, &from, fields),
            Msg::Cancel { key, flavour } => self.cancel(&key, flavour),
            Msg::Raise {
                key,
                class,
                message,
                fields,
                retry,
            } => self.fail(&key, &class, &message, fields, retry),
            Msg::Command {
                target,
                command,
                arg,
                fields,
            } => {
                let Some(e) = self.p.exprs.get_mut(&target) else {
                    return;
                };
                match &mut e.kind {
                    Kind::Cursor { pending, .. } | Kind::Iterator { pending, .. } => {
                        *pending = Some((command, arg, fields));
                    }
                    _ => return,
                }
                let children = e.children.clone();
                for c in children {
                    self.q.push_back(Msg::Cancel {
                        key: c,
                        flavour: Flavour::Cancel,
                    });
                }
            }
            Msg::CancelProcess { kill } => {
                self.p.cancelling = true;
                let roots: Vec<String> = self
                    .p
                    .exprs
                    .iter()
                    .filter(|(_, e)| e.parent.is_none())
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in roots {
                    self.cancel(&key, if kill { Flavour::Kill } else { Flavour::Cancel });
                }
            }
        }
    }

    fn finish(mut self) -> Outcome {
        self.p.pending = std::mem::take(&mut self.q).into_iter().collect();
        // The end of the process.
        if self.p.exprs.is_empty() && !self.p.status.is_final() && self.p.status != Status::Launched
        {
            self.p.errors.clear();
            if self.p.cancelling {
                self.p.status = Status::Cancelled;
                self.history("cancelled", None, None, None);
            } else {
                self.p.status = Status::Completed;
                self.history("completed", None, None, None);
            }
            self.p.ended_at = Some(self.now);
            for (id, _) in std::mem::take(&mut self.p.timers) {
                self.timer_ops.push((id, None));
            }
        } else if !self.p.status.is_final() && self.p.status != Status::Launched {
            self.p.status = if self.p.errors.is_empty() {
                Status::Running
            } else {
                Status::Error
            };
        }
        // Fold workitem and timer operations into their final effect.
        let mut wis: BTreeMap<String, Option<Workitem>> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for op in self.ops {
            let (id, v) = match op {
                Op::Open(w) => (w.workitem_id.clone(), Some(w)),
                Op::Close(id) => (id, None),
            };
            if !wis.contains_key(&id) {
                order.push(id.clone());
            }
            wis.insert(id, v);
        }
        for id in order {
            match wis.remove(&id).flatten() {
                Some(w) => {
                    self.out.closed.push(id);
                    self.out.opened.push(w);
                }
                None => self.out.closed.push(id),
            }
        }
        let mut timers: BTreeMap<String, Option<u64>> = BTreeMap::new();
        for (id, at) in self.timer_ops {
            timers.insert(id, at);
        }
        for (id, at) in timers {
            match at {
                Some(at) => self.out.timers_set.push((id, at)),
                None => self.out.timers_cleared.push(id),
            }
        }
        self.out
    }

    // ------------------------------------------------------------------
    // Helpers
    // ------------------------------------------------------------------

    fn history(
        &mut self,
        kind: &str,
        participant: Option<String>,
        workitem_id: Option<String>,
        text: Option<String>,
    ) {
        self.out.history.push(Event {
            at: self.now,
            kind: kind.to_owned(),
            participant,
            workitem_id,
            text,
        });
    }

    fn ctx<'b>(&'b self, key: &'b str, fields: &'b Map<String, Value>) -> Ctx<'b> {
        Ctx {
            p: self.p,
            key,
            fields,
        }
    }

    fn set_timer(&mut self, key: &str, at: u64, what: TimerWhat) {
        self.p.next_timer += 1;
        let id = format!("t{}", self.p.next_timer);
        self.p.timers.insert(
            id.clone(),
            TimerRef {
                key: key.to_owned(),
                what,
            },
        );
        self.timer_ops.push((id.clone(), Some(at)));
        if let Some(e) = self.p.exprs.get_mut(key) {
            e.timers.push(id);
        }
    }

    fn clear_timers(&mut self, key: &str) {
        let Some(e) = self.p.exprs.get_mut(key) else {
            return;
        };
        for id in std::mem::take(&mut e.timers) {
            self.p.timers.remove(&id);
            self.timer_ops.push((id, None));
        }
    }

    /// Removes an expression (closing its workitem, clearing its timers).
    fn remove(&mut self, key: &str) -> Option<Expr> {
        self.clear_timers(key);
        let e = self.p.exprs.remove(key)?;
        if let Kind::Participant { workitem_id, .. } = &e.kind {
            self.ops.push(Op::Close(workitem_id.clone()));
        }
        Some(e)
    }

    /// The expression is done: reply to its parent with `fields`.
    fn reply_up(&mut self, key: &str, mut fields: Map<String, Value>) {
        let Some(e) = self.remove(key) else {
            return;
        };
        if let Some(tag) = &e.tag {
            leave_tag(&mut fields, tag);
        }
        if e.detached {
            return;
        }
        match e.parent {
            Some(parent) => self.q.push_back(Msg::Reply {
                to: parent,
                from: key.to_owned(),
                fields,
            }),
            None => {
                // The root replied: these are the process's final fields
                // (forgotten branches may still run).
                if self.p.root.as_deref() == Some(key) {
                    self.p.fields = fields;
                }
            }
        }
    }

    /// Applies a child of `parent` (its `index`-th child node) later.
    fn apply_child(
        &mut self,
        parent: &str,
        node: Node,
        expid: String,
        fields: Map<String, Value>,
        vars: Option<Map<String, Value>>,
        launched: bool,
    ) -> String {
        let subid = self.ids.subid();
        let key = format!("{expid}!{subid}");
        if let Some(e) = self.p.exprs.get_mut(parent) {
            e.children.push(key.clone());
        }
        self.q.push_back(Msg::Apply {
            node,
            expid,
            subid,
            parent: Some(parent.to_owned()),
            fields,
            vars,
            launched,
            tries: 0,
            triggered: None,
        });
        key
    }

    fn child_node(&self, key: &str, index: usize) -> Option<(Node, String)> {
        let e = self.p.exprs.get(key)?;
        let n = e.node.children.get(index)?.clone();
        Some((n, format!("{}_{index}", e.fei.expid)))
    }

    fn raise(&mut self, key: &str, err: impl std::fmt::Display, fields: Map<String, Value>) {
        self.q.push_back(Msg::Raise {
            key: key.to_owned(),
            class: "ArgumentError".into(),
            message: err.to_string(),
            fields,
            retry: Retry::Reapply,
        });
    }

    /// The variable scope `name` is written to: `/x` the root, else the
    /// nearest scope-owning ancestor (or where bound, with `over`).
    fn scope_for(&self, from: &str, name: &str, over: bool) -> Option<String> {
        if name.starts_with('/') {
            return self.p.root.clone().filter(|r| self.p.exprs.contains_key(r));
        }
        if over {
            let mut k = Some(from.to_owned());
            while let Some(key) = k {
                let e = self.p.exprs.get(&key)?;
                if e.vars.as_ref().is_some_and(|v| v.contains_key(name)) {
                    return Some(key);
                }
                k = e.parent.clone();
            }
        }
        let mut k = Some(from.to_owned());
        while let Some(key) = k {
            let e = self.p.exprs.get(&key)?;
            if e.vars.is_some() {
                return Some(key);
            }
            k = e.parent.clone();
        }
        self.p.root.clone().filter(|r| self.p.exprs.contains_key(r))
    }

    fn set_var(&mut self, from: &str, name: &str, value: Option<Value>, over: bool) {
        if name.starts_with("//") || name.is_empty() {
            return;
        }
        let Some(scope) = self.scope_for(from, name, over) else {
            return;
        };
        let bare = name.trim_start_matches('/');
        if let Some(vars) = self.p.exprs.get_mut(&scope).and_then(|e| e.vars.as_mut()) {
            match value {
                Some(v) => {
                    vars.insert(bare.to_owned(), v);
                }
                None => {
                    vars.remove(bare);
                }
            }
        }
    }

    fn get_var(&self, from: &str, name: &str) -> Option<Value> {
        self.ctx(from, &Map::new()).var(name)
    }

    /// The subprocess bound to `name` in scope, as (expid, define tree).
    fn subprocess(&self, from: &str, name: &str) -> Option<(String, Node)> {
        let v = self.get_var(from, name)?;
        let s = v.get("__subprocess__")?;
        let expid = s.get("expid")?.as_str()?.to_owned();
        let tree = Node::from_json(s.get("tree")?).ok()?;
        Some((expid, tree))
    }

    fn bind_subprocess(&mut self, scope_of: &str, name: &str, expid: &str, tree: &Node) {
        let v = json!({"__subprocess__": {"expid": expid, "tree": tree.to_json()}});
        if let Some(vars) = self.p.exprs.get_mut(scope_of).and_then(|e| e.vars.as_mut()) {
            vars.insert(name.to_owned(), v);
        } else {
            self.set_var(scope_of, name, Some(v), false);
        }
    }

    // ------------------------------------------------------------------
    // Apply
    // ------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &mut self,
        node: Node,
        expid: String,
        subid: String,
        parent: Option<String>,
        mut fields: Map<String, Value>,
        vars: Option<Map<String, Value>>,
        launched: bool,
        tries: u32,
        triggered: Option<String>,
    ) {
        if let Some(pk) = &parent
            && !self.p.exprs.contains_key(pk)
        {
            // The parent went away (cancelled) before this child ran.
            return;
        }
        let fei = Fei { expid, subid };
        let key = fei.key();
        self.p.exprs.insert(
            key.clone(),
            Expr {
                fei,
                parent,
                node: node.clone(),
                applied: fields.clone(),
                vars,
                children: Vec::new(),
                state: None,
                kind: Kind::Leaf,
                timers: Vec::new(),
                detached: false,
                tag: None,
                tries,
                redo: false,
                triggered,
            },
        );

        // if / unless
        let cond = if let Some(v) = node.attrs.get("if") {
            Some(condition_value(v, &self.ctx(&key, &fields)))
        } else {
            node.attrs
                .get("unless")
                .map(|v| condition_value(v, &self.ctx(&key, &fields)).map(|b| !b))
        };
        match cond {
            Some(Ok(false)) => {
                self.reply_up(&key, fields);
                return;
            }
            Some(Err(e)) => {
                self.raise(&key, e, fields);
                return;
            }
            _ => {}
        }

        // forget / lose
        if truthy(node.attrs.get("forget")) {
            self.q.push_back(Msg::Reply {
                to: self.p.exprs[&key].parent.clone().unwrap_or_default(),
                from: key.clone(),
                fields: fields.clone(),
            });
            let visible = self.visible_vars(&key);
            if let Some(e) = self.p.exprs.get_mut(&key) {
                e.detached = true;
                e.parent = None;
                let mut own = visible;
                if let Some(v) = e.vars.take() {
                    own.extend(v);
                }
                e.vars = Some(own);
            }
        }
        if truthy(node.attrs.get("scope"))
            && let Some(e) = self.p.exprs.get_mut(&key)
            && e.vars.is_none()
        {
            e.vars = Some(Map::new());
        }

        // tag
        if let Some(tag) = node.attrs.get("tag").and_then(Value::as_str) {
            match substitute_str(tag, &self.ctx(&key, &fields)) {
                Ok(tag) if !tag.is_empty() => {
                    self.set_var(&key, &tag, Some(json!({"__tag__": key})), false);
                    let tags = fields
                        .entry("__tags__")
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(a) = tags {
                        a.push(Value::String(tag.clone()));
                    } else {
                        *tags = json!([tag]);
                    }
                    if let Some(e) = self.p.exprs.get_mut(&key) {
                        e.tag = Some(tag);
                        e.applied = fields.clone();
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    self.raise(&key, e, fields);
                    return;
                }
            }
        }

        // timeout
        match timeout_of(&node.attrs) {
            Ok(Some(d)) => {
                let at = self.now + millis(d);
                self.set_timer(&key, at, TimerWhat::Timeout);
            }
            Ok(None) => {}
            Err(e) => {
                self.raise(&key, e, fields);
                return;
            }
        }

        let name = node.name.replace('-', "_");
        match name.as_str() {
            "define" | "process_definition" | "workflow_definition" => {
                self.apply_define(&key, &node, fields, launched)
            }
            "sequence" | "let" => {
                if name == "let"
                    && let Some(e) = self.p.exprs.get_mut(&key)
                    && e.vars.is_none()
                {
                    e.vars = Some(Map::new());
                }
                self.start_sequence(&key, 0, fields, Then::Reply)
            }
            "concurrence" => self.apply_concurrence(&key, &node, fields),
            "concurrent_iterator" | "citerator" => self.apply_citerator(&key, &node, fields),
            "participant" => self.apply_participant(&key, &node, fields, None),
            "ref" | "subprocess" => self.apply_reference(&key, &node, fields),
            "cursor" => self.apply_cursor(&key, fields, false),
            "loop" | "repeat" => self.apply_cursor(&key, fields, true),
            "iterator" => self.apply_iterator(&key, &node, fields),
            "if" => self.apply_if(&key, &node, fields),
            "given" => self.apply_given(&key, &node, fields),
            "that" => self.apply_that(&key, &node, fields, None),
            "of" => self.apply_of(&key, &node, fields),
            "equals" => self.apply_equals(&key, &node, fields),
            "set" => self.apply_set(&key, &node, fields),
            "unset" => self.apply_unset(&key, &node, fields),
            "wait" | "sleep" => self.apply_wait(&key, &node, fields),
            "cancel_process" | "terminate" => {
                self.q.push_back(Msg::CancelProcess { kill: false });
            }
            "kill_process" => self.q.push_back(Msg::CancelProcess { kill: true }),
            "undo" | "cancel" | "kill" | "redo" => {
                self.apply_tag_command(&key, &node, &name, fields)
            }
            "skip" | "back" | "jump" | "rewind" | "continue" | "break" | "stop" | "over"
            | "reset" => self.apply_command(&key, &node, &name, fields),
            "echo" => {
                let text = node
                    .attr_str("text")
                    .map(str::to_owned)
                    .or_else(|| node_text(&node))
                    .unwrap_or_default();
                match substitute_str(&text, &self.ctx(&key, &fields)) {
                    Ok(t) => {
                        self.history("echo", None, None, Some(t));
                        self.reply_up(&key, fields);
                    }
                    Err(e) => self.raise(&key, e, fields),
                }
            }
            "noop" => self.reply_up(&key, fields),
            "stall" => {}
            "error" => {
                let msg = node
                    .attr_str("msg")
                    .or_else(|| node.attr_str("message"))
                    .map(str::to_owned)
                    .or_else(|| node_text(&node))
                    .unwrap_or_else(|| "error triggered from process definition".into());
                let msg = substitute_str(&msg, &self.ctx(&key, &fields)).unwrap_or(msg);
                self.q.push_back(Msg::Raise {
                    key,
                    class: "Ruote::ForcedError".into(),
                    message: msg,
                    fields,
                    retry: Retry::Resume,
                });
            }
            "forget" => {
                let visible = self.visible_vars(&key);
                for i in 0..node.children.len() {
                    let (child, expid) = self.child_node(&key, i).expect("child exists");
                    let subid = self.ids.subid();
                    // A new root: not cancellable by its former parent.
                    self.q.push_back(Msg::Apply {
                        node: child,
                        expid,
                        subid,
                        parent: None,
                        fields: fields.clone(),
                        vars: Some(visible.clone()),
                        launched: false,
                        tries: 0,
                        triggered: None,
                    });
                }
                self.reply_up(&key, fields);
            }
            "lose" => {
                if let Some(e) = self.p.exprs.get_mut(&key) {
                    e.kind = Kind::Lose;
                }
                for i in 0..node.children.len() {
                    let (child, expid) = self.child_node(&key, i).expect("child exists");
                    self.apply_child(&key, child, expid, fields.clone(), None, false);
                }
            }
            _ => {
                // A bare name: a subprocess bound in scope, else a participant.
                let raw = node.name.clone();
                match substitute_str(&raw, &self.ctx(&key, &fields)) {
                    Ok(resolved) => {
                        if self.subprocess(&key, &resolved).is_some() {
                            self.start_subprocess(&key, &node, &resolved, fields);
                        } else {
                            self.apply_participant(&key, &node, fields, Some(resolved));
                        }
                    }
                    Err(e) => self.raise(&key, e, fields),
                }
            }
        }
    }

    fn visible_vars(&self, key: &str) -> Map<String, Value> {
        self_visible(self.p, key)
    }

    fn apply_define(&mut self, key: &str, node: &Node, fields: Map<String, Value>, launched: bool) {
        let name = node
            .attr_str("name")
            .map(str::to_owned)
            .or_else(|| node_text(node));
        let expid = self.p.exprs[key].fei.expid.clone();
        if !launched {
            // Inside a flow: bind and go on.
            if let Some(name) = name {
                let scope = self.scope_for(key, &name, false);
                if let Some(scope) = scope {
                    self.bind_subprocess(&scope, &name, &expid, node);
                }
            }
            self.reply_up(key, fields);
            return;
        }
        if let Some(e) = self.p.exprs.get_mut(key)
            && e.vars.is_none()
        {
            e.vars = Some(Map::new());
        }
        if let Some(name) = name
            && self.p.exprs[key].parent.is_none()
        {
            self.bind_subprocess(key, &name, &expid, node);
        }
        for (i, c) in node.children.iter().enumerate() {
            if c.is_define()
                && let Some(n) = c
                    .attr_str("name")
                    .map(str::to_owned)
                    .or_else(|| node_text(c))
            {
                self.bind_subprocess(key, &n, &format!("{expid}_{i}"), c);
            }
        }
        self.start_sequence(key, 0, fields, Then::Reply);
    }

    /// Runs children from `from` as a sequence (defines under a launched
    /// define are skipped: they were bound).
    fn start_sequence(&mut self, key: &str, from: usize, fields: Map<String, Value>, then: Then) {
        if let Some(e) = self.p.exprs.get_mut(key) {
            e.kind = Kind::Sequence { next: from, then };
        }
        self.sequence_next(key, fields);
    }

    fn sequence_next(&mut self, key: &str, mut fields: Map<String, Value>) {
        let Some(e) = self.p.exprs.get(key) else {
            return;
        };
        let Kind::Sequence { next, then } = e.kind.clone() else {
            return;
        };
        let skip_defines = e.node.is_define();
        let mut i = next;
        while let Some(c) = e.node.children.get(i) {
            if skip_defines && c.is_define() {
                i += 1;
            } else {
                break;
            }
        }
        if i >= e.node.children.len() {
            match then {
                Then::Reply | Then::Given => {
                    if then == Then::Given {
                        fields.remove("__given__");
                    }
                    self.reply_up(key, fields)
                }
                Then::ResultTrue => {
                    fields.insert("__result__".into(), Value::Bool(true));
                    self.reply_up(key, fields);
                }
                Then::Set { field, var } => {
                    let v = fields.get("__result__").cloned().unwrap_or(Value::Null);
                    if let Some(f) = field {
                        set_field(&mut fields, &f, v);
                    } else if let Some(name) = var {
                        let parent = self.p.exprs[key].parent.clone().unwrap_or_default();
                        self.set_var(&parent, &name, Some(v), false);
                    }
                    self.reply_up(key, fields);
                }
            }
            return;
        }
        if let Some(e) = self.p.exprs.get_mut(key) {
            e.kind = Kind::Sequence { next: i + 1, then };
        }
        let (child, expid) = self.child_node(key, i).expect("child exists");
        self.apply_child(key, child, expid, fields, None, false);
    }

    fn apply_concurrence(&mut self, key: &str, node: &Node, fields: Map<String, Value>) {
        let attrs = match self.substituted(key, node, &fields) {
            Ok(a) => a,
            Err(e) => return self.raise(key, e, fields),
        };
        let config = match Concurrence::from_attrs(&attrs, node.children.len()) {
            Ok(c) => c,
            Err(e) => return self.raise(key, e, fields),
        };
        let mut replies = Replies::new(config);
        if let Progress::Over { .. } = replies.start() {
            let merged = replies.merged(&fields);
            return self.reply_up(key, merged);
        }
        let mut branches = Vec::new();
        for i in 0..node.children.len() {
            let (child, expid) = self.child_node(key, i).expect("child exists");
            branches.push(self.apply_child(key, child, expid, fields.clone(), None, false));
        }
        if let Some(e) = self.p.exprs.get_mut(key) {
            e.kind = Kind::Concurrence { replies, branches };
        }
    }

    fn apply_citerator(&mut self, key: &str, node: &Node, fields: Map<String, Value>) {
        let attrs = match self.substituted(key, node, &fields) {
            Ok(a) => a,
            Err(e) => return self.raise(key, e, fields),
        };
        let (items, to) = match self.iteration(key, &attrs, &fields) {
            Ok(x) => x,
            Err(e) => return self.raise(key, e, fields),
        };
        if items.is_empty() || node.children.is_empty() {
            return self.reply_up(key, fields);
        }
        let config = match Concurrence::from_attrs(&attrs, items.len()) {
            Ok(c) => c,
            Err(e) => return self.raise(key, e, fields),
        };
        let mut replies = Replies::new(config);
        if let Progress::Over { .. } = replies.start() {
            let merged = replies.merged(&fields);
            return self.reply_up(key, merged);
        }
        let expid = self.p.exprs[key].fei.expid.clone();
        let body = if node.children.len() == 1 {
            node.children[0].clone()
        } else {
            let mut s = Node::new("sequence");
            s.children = node.children.clone();
            s
        };
        let mut branches = Vec::new();
        for (k, item) in items.iter().enumerate() {
            let mut f = fields.clone();
            let mut vars = Map::new();
            vars.insert("ii".into(), json!(k));
            match &to {
                To::Var(v) => {
                    vars.insert(v.clone(), item.clone());
                }
                To::Field(name) => set_field(&mut f, name, item.clone()),
            }
            branches.push(self.apply_child(
                key,
                body.clone(),
                format!("{expid}_0"),
                f,
                Some(vars),
                false,
            ));
        }
        if let Some(e) = self.p.exprs.get_mut(key) {
            e.kind = Kind::Concurrence { replies, branches };
        }
    }

    fn substituted(
        &self,
        key: &str,
        node: &Node,
        fields: &Map<String, Value>,
    ) -> Result<Attrs, ExprError> {
        let m = substitute_attrs(&node.attrs_json(), &self.ctx(key, fields))?;
        Ok(m.into_iter().collect())
    }

    fn apply_participant(
        &mut self,
        key: &str,
        node: &Node,
        mut fields: Map<String, Value>,
        bare: Option<String>,
    ) {
        let raw_name = match &bare {
            Some(n) => n.clone(),
            None => match node
                .attr_str("ref")
                .map(str::to_owned)
                .or_else(|| node_text(node))
            {
                Some(n) => match substitute_str(&n, &self.ctx(key, &fields)) {
                    Ok(n) => n,
                    Err(e) => return self.raise(key, e, fields),
                },
                None => {
                    return self.raise(
                        key,
                        "participant without a name (give ref: or a text attribute)",
                        fields,
                    );
                }
            },
        };
        let mut params = match substitute_attrs(&node.attrs_json(), &self.ctx(key, &fields)) {
            Ok(p) => p,
            Err(e) => return self.raise(key, e, fields),
        };
        if bare.is_some() {
            params.insert("ref".into(), Value::String(raw_name.clone()));
        }
        fields.remove("__result__");
        fields.remove("t");
        fields.insert("params".into(), Value::Object(params));
        let url = match &self.p.callbacks {
            Value::String(u) => Some(u.clone()),
            Value::Object(m) => m.get(&raw_name).and_then(Value::as_str).map(str::to_owned),
            _ => None,
        };
        let Some(url) = url else {
            self.q.push_back(Msg::Raise {
                key: key.to_owned(),
                class: "MissingCallbackUrl".into(),
                message: format!("no callback URL for participant '{raw_name}'"),
                fields,
                retry: Retry::Reapply,
            });
            return;
        };
        let fei = self.p.exprs[key].fei.clone();
        let workitem_id = format!("{}!{}!{}", fei.expid, fei.subid, self.p.wfid);
        let delivery_id = self.ids.delivery_id();
        self.out.callbacks.push(Callback {
            delivery_id: delivery_id.clone(),
            url: url.clone(),
            workitem_id: workitem_id.clone(),
            participant: raw_name.clone(),
            status: CallbackStatus::Active,
            fields: fields.clone(),
        });
        self.ops.push(Op::Open(Workitem {
            workitem_id: workitem_id.clone(),
            participant: raw_name.clone(),
            fields: fields.clone(),
            delivery_id: delivery_id.clone(),
            dispatched_at: self.now,
        }));
        self.history(
            "dispatched",
            Some(raw_name.clone()),
            Some(workitem_id.clone()),
            None,
        );
        if let Some(e) = self.p.exprs.get_mut(key) {
            e.kind = Kind::Participant {
                name: raw_name,
                workitem_id,
                delivery_id,
                url,
                fields,
            };
        }
    }

    fn apply_reference(&mut self, key: &str, node: &Node, fields: Map<String, Value>) {
        let Some(raw) = node
            .attr_str("ref")
            .map(str::to_owned)
            .or_else(|| node_text(node))
        else {
            return self.raise(key, "subprocess without a name (give ref:)", fields);
        };
        let name = match substitute_str(&raw, &self.ctx(key, &fields)) {
            Ok(n) => n,
            Err(e) => return self.raise(key, e, fields),
        };
        if self.subprocess(key, &name).is_some() {
            self.start_subprocess(key, node, &name, fields);
        } else if node.name == "subprocess" {
            self.raise(key, format!("no subprocess named '{name}' found"), fields);
        } else {
            self.apply_participant(key, node, fields, Some(name));
        }
    }

    fn start_subprocess(
        &mut self,
        key: &str,
        node: &Node,
        name: &str,
        mut fields: Map<String, Value>,
    ) {
        let Some((expid, tree)) = self.subprocess(key, name) else {
            return self.raise(key, format!("no subprocess named '{name}' found"), fields);
        };
        let attrs = match self.substituted(key, node, &fields) {
            Ok(a) => a,
            Err(e) => return self.raise(key, e, fields),
        };
        let mut vars = Map::new();
        for (k, v) in attrs {
            if COMMON.contains(&k.as_str()) || k == "ref" || (v.is_null() && k == name) {
                continue;
            }
            if let Some(f) = k.strip_prefix("f:").or_else(|| k.strip_prefix("field:")) {
                set_field(&mut fields, f, v);
            } else {
                let k = k
                    .strip_prefix("var:")
                    .or_else(|| k.strip_prefix("v:"))
                    .unwrap_or(&k);
                vars.insert(k.to_owned(), v);
            }
        }
        if let Some(first) = node.children.first() {
            vars.insert("tree".into(), first.to_json());
        }
        if let Some(e) = self.p.exprs.get_mut(key) {
            e.kind = Kind::Subprocess;
        }
        self.apply_child(key, tree, expid, fields, Some(vars), true);
    }

    fn apply_cursor(&mut self, key: &str, fields: Map<String, Value>, looping: bool) {
        if let Some(e) = self.p.exprs.get_mut(key) {
            e.kind = Kind::Cursor {
                pos: 0,
                looping,
                pending: None,
            };
        }
        self.cursor_move(key, None, fields);
    }

    /// After child `pos` replied (`None`: on entry), pick the next child.
    fn cursor_move(&mut self, key: &str, pos: Option<usize>, mut fields: Map<String, Value>) {
        let Some(e) = self.p.exprs.get(key) else {
            return;
        };
        let len = e.node.children.len();
        let Kind::Cursor { looping, .. } = e.kind else {
            return;
        };
        let applied = e.applied.clone();
        let command = match self.next_command(key, &mut fields) {
            Ok(c) => c,
            Err(e) => return self.raise(key, e, fields),
        };
        let here = pos.map(|p| p as i64).unwrap_or(-1);
        let mut next = here + 1;
        if let Some((c, arg)) = command {
            match c.as_str() {
                "break" | "stop" | "over" => return self.reply_up(key, fields),
                "rewind" | "continue" => next = 0,
                "reset" => {
                    next = 0;
                    fields = applied;
                }
                "skip" => next = here + 1 + int_arg(&arg, 1),
                "back" => next = here + 1 - int_arg(&arg, 1),
                "jump" => {
                    next = self.jump_target(key, &arg, &fields).unwrap_or(here + 1);
                }
                _ => {}
            }
        }
        if len == 0 {
            return self.reply_up(key, fields);
        }
        if next < 0 {
            next = 0;
        }
        let mut next = next as usize;
        if next >= len {
            if looping {
                next = 0;
            } else {
                return self.reply_up(key, fields);
            }
        }
        if let Some(e) = self.p.exprs.get_mut(key)
            && let Kind::Cursor { pos, .. } = &mut e.kind
        {
            *pos = next;
        }
        let (child, expid) = self.child_node(key, next).expect("child exists");
        self.apply_child(key, child, expid, fields, None, false);
    }

    fn jump_target(&self, key: &str, arg: &Value, fields: &Map<String, Value>) -> Option<i64> {
        if let Some(n) = arg.as_i64() {
            return Some(n);
        }
        let target = arg.as_str()?;
        if let Ok(n) = target.trim().parse::<i64>() {
            return Some(n);
        }
        let e = self.p.exprs.get(key)?;
        let ctx = self.ctx(key, fields);
        e.node
            .children
            .iter()
            .position(|c| {
                let sub = |s: &str| substitute_str(s, &ctx).unwrap_or_else(|_| s.to_owned());
                sub(&c.name) == target
                    || c.attr_str("ref").map(sub).as_deref() == Some(target)
                    || c.attr_str("tag").map(sub).as_deref() == Some(target)
                    || node_text(c).map(|t| sub(&t)).as_deref() == Some(target)
            })
            .map(|i| i as i64)
    }

    /// The command a cursor or iterator obeys now: one delivered by a
    /// command expression further down (consumed, with the workitem it
    /// came with), else [`Engine::take_command`].
    fn next_command(
        &mut self,
        key: &str,
        fields: &mut Map<String, Value>,
    ) -> Result<Option<(String, Value)>, ExprError> {
        let delivered = match self.p.exprs.get_mut(key).map(|e| &mut e.kind) {
            Some(Kind::Cursor { pending, .. } | Kind::Iterator { pending, .. }) => pending.take(),
            _ => None,
        };
        match delivered {
            Some((c, a, f)) => {
                *fields = f;
                Ok(Some((c, a)))
            }
            None => self.take_command(key, fields),
        }
    }

    /// `__command__` from the workitem (consumed), else the `*_if` /
    /// `*_unless` attributes.
    fn take_command(
        &self,
        key: &str,
        fields: &mut Map<String, Value>,
    ) -> Result<Option<(String, Value)>, ExprError> {
        if let Some(c) = fields.remove("__command__") {
            return Ok(parse_command(&c));
        }
        let node = &self.p.exprs[key].node;
        for (attr, cmd) in [
            ("break_if", "break"),
            ("rewind_if", "rewind"),
            ("reset_if", "reset"),
            ("over_if", "over"),
            ("stop_if", "stop"),
        ] {
            if let Some(v) = node.attrs.get(attr)
                && condition_value(v, &self.ctx(key, fields))?
            {
                return Ok(Some((cmd.into(), Value::Null)));
            }
        }
        for (attr, cmd) in [
            ("break_unless", "break"),
            ("rewind_unless", "rewind"),
            ("reset_unless", "reset"),
            ("over_unless", "over"),
            ("stop_unless", "stop"),
        ] {
            if let Some(v) = node.attrs.get(attr)
                && !condition_value(v, &self.ctx(key, fields))?
            {
                return Ok(Some((cmd.into(), Value::Null)));
            }
        }
        Ok(None)
    }

    fn apply_command(
        &mut self,
        key: &str,
        node: &Node,
        name: &str,
        mut fields: Map<String, Value>,
    ) {
        let arg = match name {
            "skip" | "back" => node
                .attrs
                .get("step")
                .cloned()
                .or_else(|| node_text(node).map(Value::String))
                .unwrap_or(Value::Null),
            "jump" => node
                .attrs
                .get("to")
                .cloned()
                .or_else(|| node_text(node).map(Value::String))
                .unwrap_or(Value::Null),
            _ => Value::Null,
        };
        let arg = match substitute_value(&arg, &self.ctx(key, &fields)) {
            Ok(a) => a,
            Err(e) => return self.raise(key, e, fields),
        };
        // The target: the tagged one (`ref:`), else the nearest cursor,
        // loop or iterator ancestor.
        let wanted = node
            .attr_str("ref")
            .and_then(|t| self.get_var(key, t))
            .and_then(|v| v.get("__tag__").and_then(Value::as_str).map(str::to_owned));
        let parent = self.p.exprs[key].parent.clone();
        let mut k = parent.clone();
        let mut target = None;
        while let Some(c) = k {
            let Some(e) = self.p.exprs.get(&c) else { break };
            let fits = match &wanted {
                Some(w) => *w == c,
                None => matches!(e.kind, Kind::Cursor { .. } | Kind::Iterator { .. }),
            };
            if fits {
                target = Some(c);
                break;
            }
            k = e.parent.clone();
        }
        match target {
            Some(t) if Some(&t) == parent.as_ref() => {
                fields.insert("__command__".into(), json!([name, arg]));
                self.reply_up(key, fields);
            }
            Some(t) => {
                self.q.push_back(Msg::Command {
                    target: t,
                    command: name.to_owned(),
                    arg,
                    fields: fields.clone(),
                });
            }
            None => self.reply_up(key, fields),
        }
    }

    /// The list an iterator runs over, and where each item goes.
    fn iteration(
        &self,
        key: &str,
        attrs: &Attrs,
        fields: &Map<String, Value>,
    ) -> Result<(Vec<Value>, To), String> {
        let first = |names: &[&str]| names.iter().find_map(|n| attrs.get(*n).cloned());
        let list = if let Some(v) = first(&["on", "on_val", "on_value"]) {
            let sep = attrs
                .get("separator")
                .or_else(|| attrs.get("sep"))
                .and_then(Value::as_str)
                .unwrap_or(",");
            to_list(&v, sep)
        } else if let Some(v) = first(&["on_v", "on_var", "on_variable"]) {
            let name = v.as_str().unwrap_or_default();
            to_list(&self.get_var(key, name).unwrap_or(Value::Null), ",")
        } else if let Some(v) = first(&["on_f", "on_fld", "on_field"]) {
            let name = v.as_str().unwrap_or_default();
            to_list(
                &lookup_path(fields, name).cloned().unwrap_or(Value::Null),
                ",",
            )
        } else if let Some(v) = first(&["times", "branches"]) {
            let n = v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| format!("times: expected an integer, got {v}"))?;
            if !(0..=10_000).contains(&n) {
                return Err(format!("times: {n} is out of range 0..=10000"));
            }
            (0..n).map(|i| json!(i)).collect()
        } else {
            Vec::new()
        };
        if list.len() > 10_000 {
            return Err(format!(
                "iterating over {} items (at most 10000)",
                list.len()
            ));
        }
        let s = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_owned));
        let to = if let Some(v) = s(first(&["to_v", "to_var", "to_variable"])) {
            To::Var(v)
        } else if let Some(f) = s(first(&["to_f", "to_fld", "to_field"])) {
            To::Field(f)
        } else if let Some(t) = s(first(&["to"])) {
            if let Some(v) = t.strip_prefix("v:").or_else(|| t.strip_prefix("var:")) {
                To::Var(v.to_owned())
            } else {
                To::Field(
                    t.strip_prefix("f:")
                        .or_else(|| t.strip_prefix("field:"))
                        .unwrap_or(&t)
                        .to_owned(),
                )
            }
        } else {
            To::Var("i".into())
        };
        Ok((list, to))
    }

    fn apply_iterator(&mut self, key: &str, node: &Node, fields: Map<String, Value>) {
        let attrs = match self.substituted(key, node, &fields) {
            Ok(a) => a,
            Err(e) => return self.raise(key, e, fields),
        };
        let (items, to) = match self.iteration(key, &attrs, &fields) {
            Ok(x) => x,
            Err(e) => return self.raise(key, e, fields),
        };
        if items.is_empty() || node.children.is_empty() {
            return self.reply_up(key, fields);
        }
        if let Some(e) = self.p.exprs.get_mut(key) {
            e.kind = Kind::Iterator {
                items,
                index: 0,
                child: 0,
                to,
                pending: None,
            };
        }
        self.iterate(key, 0, fields);
    }

    /// Runs item `index` (from its first child), or ends.
    fn iterate(&mut self, key: &str, index: i64, mut fields: Map<String, Value>) {
        let Some(e) = self.p.exprs.get(key) else {
            return;
        };
        let Kind::Iterator { items, to, .. } = e.kind.clone() else {
            return;
        };
        let index = if index < 0 {
            items.len() as i64 + index
        } else {
            index
        };
        if index < 0 || index as usize >= items.len() || items[index as usize].is_null() {
            return self.reply_up(key, fields);
        }
        let idx = index as usize;
        let item = items[idx].clone();
        match &to {
            To::Var(v) => self.set_var(key, v, Some(item), false),
            To::Field(f) => set_field(&mut fields, f, item),
        }
        self.set_var(key, "ii", Some(json!(idx)), false);
        if let Some(e) = self.p.exprs.get_mut(key)
            && let Kind::Iterator { index, child, .. } = &mut e.kind
        {
            *index = idx;
            *child = 0;
        }
        let (child, expid) = self.child_node(key, 0).expect("child exists");
        self.apply_child(key, child, expid, fields, None, false);
    }

    fn iterator_reply(&mut self, key: &str, mut fields: Map<String, Value>) {
        let Some(e) = self.p.exprs.get(key) else {
            return;
        };
        let Kind::Iterator { index, child, .. } = e.kind else {
            return;
        };
        let len = e.node.children.len();
        let command = match self.next_command(key, &mut fields) {
            Ok(c) => c,
            Err(e) => return self.raise(key, e, fields),
        };
        let index = index as i64;
        match command {
            Some((c, arg)) => match c.as_str() {
                "break" | "stop" | "over" => self.reply_up(key, fields),
                "rewind" | "continue" | "reset" => self.iterate(key, 0, fields),
                "skip" => self.iterate(key, index + int_arg(&arg, 1) + 1, fields),
                "back" => self.iterate(key, (index + 1 - int_arg(&arg, 1)).max(0), fields),
                "jump" => {
                    let n = arg
                        .as_i64()
                        .or_else(|| arg.as_str().and_then(|s| s.trim().parse().ok()))
                        .unwrap_or(index + 1);
                    self.iterate(key, n, fields)
                }
                _ => self.iterate(key, index + 1, fields),
            },
            None if child + 1 < len => {
                if let Some(e) = self.p.exprs.get_mut(key)
                    && let Kind::Iterator { child: c, .. } = &mut e.kind
                {
                    *c = child + 1;
                }
                let (node, expid) = self.child_node(key, child + 1).expect("child exists");
                self.apply_child(key, node, expid, fields, None, false);
            }
            None => self.iterate(key, index + 1, fields),
        }
    }

    fn apply_if(&mut self, key: &str, node: &Node, fields: Map<String, Value>) {
        let test = node
            .attrs
            .get("test")
            .or_else(|| node.attrs.get("t"))
            .cloned()
            .or_else(|| node_text(node).map(Value::String));
        match test {
            Some(t) => {
                let b = match condition_value(&t, &self.ctx(key, &fields)) {
                    Ok(b) => b,
                    Err(e) => return self.raise(key, e, fields),
                };
                self.if_branch(key, if b { 0 } else { 1 }, fields);
            }
            None => {
                if node.children.is_empty() {
                    return self.reply_up(key, fields);
                }
                if let Some(e) = self.p.exprs.get_mut(key) {
                    e.kind = Kind::If { stage: 0 };
                }
                let (child, expid) = self.child_node(key, 0).expect("child exists");
                self.apply_child(key, child, expid, fields, None, false);
            }
        }
    }

    fn if_branch(&mut self, key: &str, index: usize, fields: Map<String, Value>) {
        match self.child_node(key, index) {
            Some((child, expid)) => {
                if let Some(e) = self.p.exprs.get_mut(key) {
                    e.kind = Kind::If { stage: 1 };
                }
                self.apply_child(key, child, expid, fields, None, false);
            }
            None => self.reply_up(key, fields),
        }
    }

    fn apply_given(&mut self, key: &str, node: &Node, mut fields: Map<String, Value>) {
        let v = node
            .attrs
            .get("t")
            .cloned()
            .or_else(|| node_text(node).map(Value::String));
        if let Some(v) = v {
            match substitute_value(&v, &self.ctx(key, &fields)) {
                Ok(v) => {
                    fields.insert("__given__".into(), v);
                }
                Err(e) => return self.raise(key, e, fields),
            }
        }
        self.start_sequence(key, 0, fields, Then::Given);
    }

    fn apply_that(
        &mut self,
        key: &str,
        node: &Node,
        mut fields: Map<String, Value>,
        forced: Option<bool>,
    ) {
        let b = match forced {
            Some(b) => b,
            None => {
                let test = node
                    .attrs
                    .get("t")
                    .or_else(|| node.attrs.get("test"))
                    .cloned()
                    .or_else(|| node_text(node).map(Value::String))
                    .unwrap_or(Value::Bool(false));
                match condition_value(&test, &self.ctx(key, &fields)) {
                    Ok(b) => b,
                    Err(e) => return self.raise(key, e, fields),
                }
            }
        };
        if b {
            self.start_sequence(key, 0, fields, Then::ResultTrue);
        } else {
            fields.insert("__result__".into(), Value::Bool(false));
            self.reply_up(key, fields);
        }
    }

    fn apply_of(&mut self, key: &str, node: &Node, fields: Map<String, Value>) {
        let x = node
            .attrs
            .get("t")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| node_text(node))
            .unwrap_or_default();
        let given = fields.get("__given__").cloned().unwrap_or(Value::Null);
        let x = match substitute_str(&x, &self.ctx(key, &fields)) {
            Ok(x) => x,
            Err(e) => return self.raise(key, e, fields),
        };
        let text = if x.starts_with('/') && x.ends_with('/') && x.len() > 1 {
            format!("{} =~ {x}", render(Some(&given)))
        } else {
            format!("{} == {x}", render(Some(&given)))
        };
        match evaluate(&text) {
            Ok(b) => self.apply_that(key, node, fields, Some(b)),
            Err(e) => self.raise(key, e, fields),
        }
    }

    fn apply_equals(&mut self, key: &str, node: &Node, mut fields: Map<String, Value>) {
        let ctx = self.ctx(key, &fields);
        let mut operands: Vec<Option<Value>> = Vec::new();
        for (k, v) in &node.attrs {
            if COMMON.contains(&k.as_str()) {
                continue;
            }
            let k = k.strip_prefix("other_").unwrap_or(k);
            let name = v
                .as_str()
                .map(|s| substitute_str(s, &ctx).unwrap_or_else(|_| s.to_owned()));
            let got = if k.starts_with("var") {
                name.and_then(|n| ctx.var(&n))
            } else if k.starts_with("val") {
                Some(substitute_value(v, &ctx).unwrap_or_else(|_| v.clone()))
            } else if k.starts_with('f') {
                name.and_then(|n| lookup_path(&fields, &n).cloned())
            } else {
                continue;
            };
            operands.push(got);
            if operands.len() == 2 {
                break;
            }
        }
        let result = operands.len() == 2 && operands[0] == operands[1];
        fields.insert("__result__".into(), Value::Bool(result));
        self.reply_up(key, fields);
    }

    /// `set`'s target and value (None value: take it from children).
    fn apply_set(&mut self, key: &str, node: &Node, mut fields: Map<String, Value>) {
        let ctx = self.ctx(key, &fields);
        let escape = truthy(node.attrs.get("escape"));
        let over = truthy(node.attrs.get("over")) || truthy(node.attrs.get("override"));
        let sub_key = |s: &str| substitute_str(s, &ctx);
        let sub_val = |v: &Value| -> Result<Value, ExprError> {
            if escape {
                Ok(v.clone())
            } else {
                substitute_value(v, &ctx)
            }
        };
        let attr = |names: &[&str]| names.iter().find_map(|n| node.attrs.get(*n).cloned());
        let mut field = None;
        let mut var = None;
        let mut value: Option<Value> = None;
        let r: Result<(), ExprError> = (|| {
            if let Some(f) = attr(&["field", "f", "fld"]) {
                field = Some(sub_key(f.as_str().unwrap_or_default())?);
            } else if let Some(v) = attr(&["variable", "var", "v"]) {
                var = Some(sub_key(v.as_str().unwrap_or_default())?);
            }
            if let Some(v) = attr(&["value", "val"]) {
                value = Some(sub_val(&v)?);
            } else if let Some(f) = attr(&["field_value", "f_value"]) {
                let name = sub_key(f.as_str().unwrap_or_default())?;
                value = Some(lookup_path(&fields, &name).cloned().unwrap_or(Value::Null));
            } else if let Some(v) = attr(&["variable_value", "v_value"]) {
                let name = sub_key(v.as_str().unwrap_or_default())?;
                value = Some(ctx.var(&name).unwrap_or(Value::Null));
            }
            if field.is_none() && var.is_none() {
                // Shorthand: the first other attribute is `target => value`.
                let skip = [
                    "value",
                    "val",
                    "field_value",
                    "f_value",
                    "variable_value",
                    "v_value",
                    "escape",
                    "over",
                    "override",
                ];
                if let Some((k, v)) = node
                    .attrs
                    .iter()
                    .find(|(k, _)| !COMMON.contains(&k.as_str()) && !skip.contains(&k.as_str()))
                {
                    let target = sub_key(k)?;
                    match target.split_once(':') {
                        Some((pre, name)) if pre.starts_with('f') => field = Some(name.to_owned()),
                        Some((_, name)) => var = Some(name.to_owned()),
                        None => field = Some(target),
                    }
                    if value.is_none() && !v.is_null() {
                        value = Some(sub_val(v)?);
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = r {
            return self.raise(key, e, fields);
        }
        if field.is_none() && var.is_none() {
            return self.raise(
                key,
                "set: no target (field: / variable: / 'f:x' => value)",
                fields,
            );
        }
        if value.is_none() && !node.children.is_empty() {
            // The children compute the value (their final __result__).
            if let Some(e) = self.p.exprs.get_mut(key) {
                e.vars = Some(Map::new());
            }
            return self.start_sequence(key, 0, fields, Then::Set { field, var });
        }
        let value = value.unwrap_or(Value::Null);
        if let Some(f) = field {
            set_field(&mut fields, &f, value.clone());
        } else if let Some(v) = var {
            self.set_var(key, &v, Some(value.clone()), over);
        }
        fields.insert("__result__".into(), value);
        self.reply_up(key, fields);
    }

    fn apply_unset(&mut self, key: &str, node: &Node, mut fields: Map<String, Value>) {
        let ctx = self.ctx(key, &fields);
        let attr = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| node.attr_str(n).map(str::to_owned))
        };
        let (field, var) = if let Some(f) = attr(&["field", "f", "fld"]) {
            (Some(f), None)
        } else if let Some(v) = attr(&["variable", "var", "v"]) {
            (None, Some(v))
        } else {
            match node_text(node) {
                Some(t) => match t.split_once(':') {
                    Some((pre, name)) if pre.starts_with('f') => (Some(name.to_owned()), None),
                    Some((_, name)) => (None, Some(name.to_owned())),
                    None => (Some(t), None),
                },
                None => (None, None),
            }
        };
        let sub = |s: Option<String>| -> Result<Option<String>, ExprError> {
            s.map(|s| substitute_str(&s, &ctx)).transpose()
        };
        let (field, var) = match (sub(field), sub(var)) {
            (Ok(f), Ok(v)) => (f, v),
            (Err(e), _) | (_, Err(e)) => return self.raise(key, e, fields),
        };
        let old = if let Some(f) = field {
            unset_field(&mut fields, &f)
        } else if let Some(v) = var {
            let old = self.get_var(key, &v);
            self.set_var(key, &v, None, true);
            old
        } else {
            return self.raise(key, "unset: no target (field: / variable:)", fields);
        };
        fields.insert("__result__".into(), old.unwrap_or(Value::Null));
        self.reply_up(key, fields);
    }

    fn apply_wait(&mut self, key: &str, node: &Node, fields: Map<String, Value>) {
        let v = node
            .attrs
            .get("for")
            .or_else(|| node.attrs.get("until"))
            .cloned()
            .or_else(|| node_text(node).map(Value::String));
        let Some(v) = v else {
            return self.reply_up(key, fields);
        };
        let v = match substitute_value(&v, &self.ctx(key, &fields)) {
            Ok(v) => v,
            Err(e) => return self.raise(key, e, fields),
        };
        let at = match &v {
            Value::Number(_) => expr::duration_value(&v).map(|d| self.now + millis(d)),
            Value::String(s) => expr::when_from(s.trim()).map(|w| match w {
                When::After(d) => self.now + millis(d),
                When::At(t) => u64::try_from(t.timestamp_millis()).unwrap_or(0),
            }),
            other => {
                return self.raise(
                    key,
                    format!("wait: not a duration or time: {other}"),
                    fields,
                );
            }
        };
        match at {
            Ok(at) if at <= self.now => self.reply_up(key, fields),
            Ok(at) => {
                if let Some(e) = self.p.exprs.get_mut(key) {
                    e.kind = Kind::Wait;
                }
                self.set_timer(key, at, TimerWhat::Wait);
            }
            Err(e) => self.raise(key, e, fields),
        }
    }

    fn apply_tag_command(
        &mut self,
        key: &str,
        node: &Node,
        name: &str,
        fields: Map<String, Value>,
    ) {
        let Some(tag) = node
            .attr_str("ref")
            .map(str::to_owned)
            .or_else(|| node_text(node))
        else {
            return self.reply_up(key, fields);
        };
        let tag = match substitute_str(&tag, &self.ctx(key, &fields)) {
            Ok(t) => t,
            Err(e) => return self.raise(key, e, fields),
        };
        let target = self
            .get_var(key, &tag)
            .and_then(|v| v.get("__tag__").and_then(Value::as_str).map(str::to_owned))
            .filter(|t| self.p.exprs.contains_key(t));
        if let Some(t) = target {
            if name == "redo"
                && let Some(e) = self.p.exprs.get_mut(&t)
            {
                e.redo = true;
            }
            self.q.push_back(Msg::Cancel {
                key: t,
                flavour: if name == "kill" {
                    Flavour::Kill
                } else {
                    Flavour::Cancel
                },
            });
        }
        self.reply_up(key, fields);
    }

    // ------------------------------------------------------------------
    // Replies
    // ------------------------------------------------------------------

    fn on_reply(&mut self, to: &str, from: &str, fields: Map<String, Value>) {
        let Some(e) = self.p.exprs.get_mut(to) else {
            return;
        };
        let was_child = e.children.iter().any(|c| c == from);
        e.children.retain(|c| c != from);
        if !was_child {
            return;
        }
        if e.state.is_some() {
            if e.children.is_empty() {
                self.cancelled(to);
            }
            return;
        }
        match e.kind.clone() {
            Kind::Sequence { then, .. } => {
                if then == Then::Given && fields.get("__result__") == Some(&Value::Bool(true)) {
                    let mut f = fields;
                    f.remove("__given__");
                    f.remove("__result__");
                    return self.reply_up(to, f);
                }
                self.sequence_next(to, fields)
            }
            Kind::Concurrence { branches, .. } => {
                let Some(branch) = branches.iter().position(|b| b == from) else {
                    return;
                };
                self.concurrence_reply(to, branch, fields);
            }
            Kind::Cursor { pos, .. } => self.cursor_move(to, Some(pos), fields),
            Kind::Iterator { .. } => self.iterator_reply(to, fields),
            Kind::If { stage: 0 } => {
                let b = fields.get("__result__") == Some(&Value::Bool(true));
                self.if_branch(to, if b { 1 } else { 2 }, fields);
            }
            Kind::Lose => {}
            _ => self.reply_up(to, fields),
        }
    }

    fn concurrence_reply(&mut self, key: &str, branch: usize, fields: Map<String, Value>) {
        let Some(e) = self.p.exprs.get(key) else {
            return;
        };
        let Kind::Concurrence {
            mut replies,
            branches,
        } = e.kind.clone()
        else {
            return;
        };
        let over_if = e
            .node
            .attrs
            .get("over_if")
            .map(|v| (v.clone(), true))
            .or_else(|| e.node.attrs.get("over_unless").map(|v| (v.clone(), false)));
        let progress = {
            let ctx_key = key.to_owned();
            let this = &*self;
            replies.reply(branch, fields, |f| match &over_if {
                None => Ok(false),
                Some((v, want)) => condition_value(v, &this.ctx(&ctx_key, f)).map(|b| b == *want),
            })
        };
        let progress = match progress {
            Ok(p) => p,
            Err(e) => {
                let applied = self.p.exprs[key].applied.clone();
                return self.raise(key, e, applied);
            }
        };
        let applied = self.p.exprs[key].applied.clone();
        if let Some(e) = self.p.exprs.get_mut(key) {
            e.kind = Kind::Concurrence {
                replies: replies.clone(),
                branches: branches.clone(),
            };
        }
        match progress {
            Progress::Pending | Progress::Absorbed => {}
            Progress::Over { remaining, action } => {
                let merged = replies.merged(&applied);
                let rest: Vec<String> = remaining
                    .iter()
                    .filter_map(|i| branches.get(*i).cloned())
                    .collect();
                match action {
                    Remaining::Forget => {
                        // Reply, and linger detached until the others end.
                        let parent = self.p.exprs[key].parent.clone();
                        let tag = self.p.exprs[key].tag.clone();
                        let mut f = merged;
                        if let Some(tag) = tag {
                            leave_tag(&mut f, &tag);
                        }
                        match parent {
                            Some(p) => self.q.push_back(Msg::Reply {
                                to: p,
                                from: key.to_owned(),
                                fields: f,
                            }),
                            None => self.p.fields = f,
                        }
                        self.clear_timers(key);
                        if let Some(e) = self.p.exprs.get_mut(key) {
                            e.detached = true;
                            e.parent = None;
                        }
                        if rest.is_empty() {
                            self.remove(key);
                        }
                    }
                    _ => {
                        self.reply_up(key, merged);
                        for c in rest {
                            self.q.push_back(Msg::Cancel {
                                key: c,
                                flavour: Flavour::Cancel,
                            });
                        }
                    }
                }
            }
            Progress::CancelAndWait(list) => {
                for i in list {
                    if let Some(c) = branches.get(i) {
                        self.q.push_back(Msg::Cancel {
                            key: c.clone(),
                            flavour: Flavour::Cancel,
                        });
                    }
                }
            }
            Progress::Ceased => {
                self.remove(key);
            }
        }
    }

    // ------------------------------------------------------------------
    // Cancel
    // ------------------------------------------------------------------

    fn cancel(&mut self, key: &str, flavour: Flavour) {
        let Some(e) = self.p.exprs.get_mut(key) else {
            return;
        };
        match &e.state {
            Some(St::Cancelling { flavour: f })
                if *f == Flavour::Kill || flavour != Flavour::Kill =>
            {
                return;
            }
            Some(St::Failing { .. }) | Some(St::Cancelling { .. }) if flavour != Flavour::Kill => {
                return;
            }
            _ => {}
        }
        e.state = Some(St::Cancelling { flavour });
        let mut children = e.children.clone();
        // Children that neither exist nor wait to be applied (their apply
        // was dropped with a runaway queue) cannot reply.
        let queued = |c: &String| {
            self.q.iter().any(|m| {
                matches!(m, Msg::Apply { expid, subid, .. } if format!("{expid}!{subid}") == *c)
            })
        };
        children.retain(|c| self.p.exprs.contains_key(c) || queued(c));
        if let Some(e) = self.p.exprs.get_mut(key) {
            e.children = children.clone();
        }
        self.clear_timers(key);
        if children.is_empty() {
            self.cancel_leaf(key, flavour);
            self.cancelled(key);
        } else {
            let down = if flavour == Flavour::Kill {
                Flavour::Kill
            } else {
                Flavour::Cancel
            };
            for c in children {
                self.q.push_back(Msg::Cancel {
                    key: c,
                    flavour: down,
                });
            }
        }
    }

    /// What a leaf does when cancelled: a participant is told.
    fn cancel_leaf(&mut self, key: &str, flavour: Flavour) {
        let Some(e) = self.p.exprs.get(key) else {
            return;
        };
        if let Kind::Participant {
            name,
            workitem_id,
            url,
            fields,
            delivery_id: active,
        } = &e.kind
        {
            // Dispatched and cancelled in this same step: the active
            // callback was never sent, so neither is (nor a cancel).
            if let Some(i) = self
                .out
                .callbacks
                .iter()
                .position(|c| c.delivery_id == *active)
            {
                let wi = workitem_id.clone();
                let name = name.clone();
                self.out.callbacks.remove(i);
                self.ops.push(Op::Close(wi.clone()));
                self.history("cancelled", Some(name), Some(wi), None);
                return;
            }
            let mut fields = fields.clone();
            let status = if flavour == Flavour::Timeout {
                fields.insert("__timed_out__".into(), self.timed_out(key));
                CallbackStatus::Timeout
            } else if fields.contains_key("__error__") {
                CallbackStatus::Error
            } else {
                CallbackStatus::Cancel
            };
            let (name, wi, url) = (name.clone(), workitem_id.clone(), url.clone());
            let delivery_id = self.ids.delivery_id();
            self.out.callbacks.push(Callback {
                delivery_id,
                url,
                workitem_id: wi.clone(),
                participant: name.clone(),
                status,
                fields,
            });
            self.ops.push(Op::Close(wi.clone()));
            let kind = if flavour == Flavour::Timeout {
                "timed_out"
            } else {
                "cancelled"
            };
            self.history(kind, Some(name), Some(wi), None);
        }
    }

    fn timed_out(&self, key: &str) -> Value {
        let e = &self.p.exprs[key];
        json!([
            format!("{}!{}!{}", e.fei.expid, e.fei.subid, self.p.wfid),
            crate::platform::time::iso_ms(self.now as i64),
            e.node.name,
            Value::Object(e.node.attrs_json()),
        ])
    }

    /// A cancelled (or failing) expression whose children are all gone.
    fn cancelled(&mut self, key: &str) {
        let Some(e) = self.p.exprs.get_mut(key) else {
            return;
        };
        let state = e.state.take();
        let applied = e.applied.clone();
        let node = e.node.clone();
        let redo = std::mem::take(&mut e.redo);
        match state {
            Some(St::Failing {
                action,
                delay_ms,
                fields,
            }) => {
                if delay_ms > 0 {
                    if let Some(e) = self.p.exprs.get_mut(key) {
                        e.state = Some(St::Waiting { action, fields });
                    }
                    self.set_timer(key, self.now + delay_ms, TimerWhat::Handler);
                } else {
                    self.act(key, action, fields, HandlerKind::Error);
                }
            }
            Some(St::Cancelling { flavour }) => {
                if redo {
                    return self.reapply(key, Some(applied));
                }
                match flavour {
                    Flavour::Timeout => {
                        let mut fields = applied;
                        fields.insert("__timed_out__".into(), self.timed_out(key));
                        if !matches!(self.p.exprs[key].kind, Kind::Participant { .. }) {
                            self.history(
                                "timed_out",
                                None,
                                None,
                                Some(format!("{} timed out", node.name)),
                            );
                        }
                        match handler_for(&node.attrs, HandlerKind::Timeout) {
                            Ok(Some(h))
                                if self.p.exprs[key].triggered.as_deref() != Some("on_timeout") =>
                            {
                                match nth_action(&h, 0) {
                                    Some((a, _)) => self.act(
                                        key,
                                        Action2::from(&a),
                                        fields,
                                        HandlerKind::Timeout,
                                    ),
                                    None => self.reply_up(key, fields),
                                }
                            }
                            Ok(_) => self.reply_up(key, fields),
                            Err(e) => self.raise(key, e, fields),
                        }
                    }
                    Flavour::Cancel => match handler_for(&node.attrs, HandlerKind::Cancel) {
                        Ok(Some(h))
                            if self.p.exprs[key].triggered.as_deref() != Some("on_cancel") =>
                        {
                            match nth_action(&h, 0) {
                                Some((a, _)) => {
                                    self.act(key, Action2::from(&a), applied, HandlerKind::Cancel)
                                }
                                None => self.reply_up(key, applied),
                            }
                        }
                        _ => self.reply_up(key, applied),
                    },
                    _ => self.reply_up(key, applied),
                }
            }
            Some(St::Waiting { action, fields }) => {
                if let Some(e) = self.p.exprs.get_mut(key) {
                    e.state = Some(St::Waiting { action, fields });
                }
            }
            None => self.reply_up(key, applied),
        }
    }

    // ------------------------------------------------------------------
    // Errors and handlers
    // ------------------------------------------------------------------

    fn fail(
        &mut self,
        key: &str,
        class: &str,
        message: &str,
        fields: Map<String, Value>,
        retry: Retry,
    ) {
        if !self.p.exprs.contains_key(key) {
            return;
        }
        let e = &self.p.exprs[key];
        let error = json!({
            "fei": format!("{}!{}!{}", e.fei.expid, e.fei.subid, self.p.wfid),
            "at": crate::platform::time::iso_ms(self.now as i64),
            "class": class,
            "message": message,
            "expression": e.node.name,
        });
        // The chain: the failing expression and its ancestors.
        let mut chain = Vec::new();
        let mut parse_error = None;
        let mut k = Some(key.to_owned());
        while let Some(c) = k {
            let Some(x) = self.p.exprs.get(&c) else { break };
            if matches!(x.state, Some(St::Failing { .. })) {
                // Already failing: this error is absorbed (its handler
                // runs once).
                return;
            }
            let h = if x.triggered.as_deref() == Some("on_error") {
                Ok(None)
            } else {
                handler_for(&x.node.attrs, HandlerKind::Error)
            };
            match h {
                Ok(h) => chain.push((c.clone(), h, x.tries)),
                Err(e) => {
                    parse_error = Some(e.to_string());
                    chain.push((c.clone(), Some(Handler::Unhandled), x.tries));
                }
            }
            k = x.parent.clone();
        }
        match decide(&chain) {
            Decision::Unhandled => {
                let e = &self.p.exprs[key];
                let message = match parse_error {
                    Some(p) => format!("{message} (and on_error could not be used: {p})"),
                    None => message.to_owned(),
                };
                self.p.errors.push(ProcessError {
                    at: self.now,
                    expid: e.fei.expid.clone(),
                    expression: e.node.name.clone(),
                    message: format!("{class}: {message}"),
                    key: key.to_owned(),
                    retry,
                });
                self.history("error", None, None, Some(format!("{class}: {message}")));
            }
            Decision::Handle {
                at,
                action,
                delay,
                tries,
            } => {
                let kill = matches!(action, Action::Apply { kill: true, .. });
                let mut f = fields;
                // `store:`/`bury:` keep the error where they say and go on
                // (a pass); every other handler sees it as `__error__`.
                let action2 = match &action {
                    Action::Store { to, .. } => {
                        match to {
                            StoreTo::Field(name) => set_field(&mut f, name, error.clone()),
                            StoreTo::Variable(v) => {
                                self.set_var(&at, v, Some(error.clone()), false)
                            }
                        }
                        Action2::Pass
                    }
                    _ => {
                        f.insert("__error__".into(), error.clone());
                        Action2::from(&action)
                    }
                };
                let children = {
                    let Some(h) = self.p.exprs.get_mut(&at) else {
                        return;
                    };
                    h.tries = tries;
                    h.state = Some(St::Failing {
                        action: action2,
                        delay_ms: millis(delay),
                        fields: f,
                    });
                    h.children.clone()
                };
                self.clear_timers(&at);
                if children.is_empty() {
                    self.cancelled(&at);
                } else {
                    for c in children {
                        self.q.push_back(Msg::Cancel {
                            key: c,
                            flavour: if kill { Flavour::Kill } else { Flavour::Cancel },
                        });
                    }
                }
            }
        }
    }

    /// Runs a fired handler's action for the expression `key`.
    fn act(
        &mut self,
        key: &str,
        action: Action2,
        mut fields: Map<String, Value>,
        kind: HandlerKind,
    ) {
        match action {
            Action2::Redo => self.reapply(key, Some(fields)),
            Action2::Pass => self.reply_up(key, fields),
            Action2::Cancel | Action2::Cando => {
                let node = self.p.exprs[key].node.clone();
                match handler_for(&node.attrs, HandlerKind::Cancel) {
                    Ok(Some(h)) if kind != HandlerKind::Cancel => match nth_action(&h, 0) {
                        Some((a, _)) => {
                            self.act(key, Action2::from(&a), fields, HandlerKind::Cancel)
                        }
                        None => self.reply_up(key, fields),
                    },
                    _ if matches!(action, Action2::Cando) => self.reapply(key, Some(fields)),
                    _ => self.reply_up(key, fields),
                }
            }
            Action2::Error => {
                let mut n = Node::new("error");
                n.attrs.insert(
                    "msg".into(),
                    Value::String("timeout triggered an error (on_timeout: error)".into()),
                );
                self.replace(key, n, fields, kind);
            }
            Action2::Store { .. } => self.reply_up(key, fields),
            Action2::Command { command, arg } => {
                fields.insert("__command__".into(), json!([command, arg]));
                self.reply_up(key, fields);
            }
            Action2::Apply { name } => self.replace(key, Node::new(name), fields, kind),
            Action2::Tree { tree } => match Node::from_json(&tree) {
                Ok(n) => self.replace(key, n, fields, kind),
                Err(e) => self.raise(key, e.message, fields),
            },
        }
    }

    /// Replaces the expression by `node` at the same fei; the replacement
    /// inherits the other handlers and the tag.
    fn replace(
        &mut self,
        key: &str,
        mut node: Node,
        fields: Map<String, Value>,
        kind: HandlerKind,
    ) {
        let Some(e) = self.p.exprs.get(key) else {
            return;
        };
        for attr in ["on_error", "on_timeout", "on_cancel", "tag"] {
            if attr != kind.attr()
                && let Some(v) = e.node.attrs.get(attr)
                && !node.attrs.contains_key(attr)
            {
                node.attrs.insert(attr.into(), v.clone());
            }
        }
        node.attrs
            .insert("_triggered".into(), Value::String(kind.attr().into()));
        let (fei, parent, tries) = (e.fei.clone(), e.parent.clone(), e.tries);
        self.remove(key);
        self.q.push_back(Msg::Apply {
            node,
            expid: fei.expid,
            subid: fei.subid,
            parent,
            fields,
            vars: None,
            launched: false,
            tries,
            triggered: Some(kind.attr().into()),
        });
    }

    /// Applies the expression again at the same fei (redo, retry, replay).
    fn reapply(&mut self, key: &str, fields: Option<Map<String, Value>>) {
        let Some(e) = self.p.exprs.get(key) else {
            return;
        };
        let mut fields = fields.unwrap_or_else(|| e.applied.clone());
        // The tag is entered again by the new apply: take it off the stack
        // first (not "left": the expression goes on).
        if let Some(tag) = &e.tag {
            pop_tag(&mut fields, tag);
        }
        let launched = e.parent.is_none()
            || matches!(
                e.parent
                    .as_ref()
                    .and_then(|p| self.p.exprs.get(p))
                    .map(|p| &p.kind),
                Some(Kind::Subprocess)
            );
        let (node, fei, parent, tries, vars, triggered) = (
            e.node.clone(),
            e.fei.clone(),
            e.parent.clone(),
            e.tries,
            e.vars.clone(),
            e.triggered.clone(),
        );
        // Children still running are dropped (a replayed expression has none).
        let children = e.children.clone();
        for c in children {
            self.remove_tree(&c);
        }
        self.remove(key);
        self.q.push_back(Msg::Apply {
            node,
            expid: fei.expid,
            subid: fei.subid,
            parent,
            fields,
            vars,
            launched,
            tries,
            triggered,
        });
    }

    fn remove_tree(&mut self, key: &str) {
        if let Some(e) = self.p.exprs.get(key) {
            for c in e.children.clone() {
                self.remove_tree(&c);
            }
        }
        self.remove(key);
    }
}

// ----------------------------------------------------------------------
// Lookups
// ----------------------------------------------------------------------

/// Field and variable lookups for one expression.
struct Ctx<'a> {
    p: &'a Process,
    key: &'a str,
    fields: &'a Map<String, Value>,
}

impl Lookup for Ctx<'_> {
    fn field(&self, path: &str) -> Option<Value> {
        lookup_path(self.fields, path).cloned()
    }

    fn var(&self, path: &str) -> Option<Value> {
        if path.starts_with("//") {
            return None;
        }
        if let Some(rest) = path.strip_prefix('/') {
            let root = self.p.root.as_ref().and_then(|r| self.p.exprs.get(r))?;
            return root
                .vars
                .as_ref()
                .and_then(|v| lookup_path(v, rest).cloned());
        }
        let first = path.split('.').next().unwrap_or(path);
        let mut k = Some(self.key.to_owned());
        while let Some(key) = k {
            let Some(e) = self.p.exprs.get(&key) else {
                break;
            };
            if let Some(v) = &e.vars
                && (v.contains_key(first) || v.contains_key(path))
            {
                return lookup_path(v, path).cloned();
            }
            k = e.parent.clone();
        }
        None
    }

    fn special(&self, key: &str) -> Option<Value> {
        let (expid, subid) = self.key.split_once('!').unwrap_or((self.key, ""));
        Some(Value::String(match key {
            "fei" => format!("{expid}!{subid}!{}", self.p.wfid),
            "wfid" => self.p.wfid.clone(),
            "subid" | "sub_wfid" => subid.to_owned(),
            "expid" => expid.to_owned(),
            _ => return None,
        }))
    }
}

/// Every variable visible from `key` (innermost wins).
fn self_visible(p: &Process, key: &str) -> Map<String, Value> {
    let mut chain = Vec::new();
    let mut k = Some(key.to_owned());
    while let Some(c) = k {
        let Some(e) = p.exprs.get(&c) else { break };
        if let Some(v) = &e.vars {
            chain.push(v.clone());
        }
        k = e.parent.clone();
    }
    let mut out = Map::new();
    for v in chain.into_iter().rev() {
        out.extend(v);
    }
    out
}

// ----------------------------------------------------------------------
// Small helpers
// ----------------------------------------------------------------------

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

/// The text attribute (the first attribute with a null value), skipping
/// common attributes.
fn node_text(n: &Node) -> Option<String> {
    n.attrs
        .iter()
        .find(|(k, v)| v.is_null() && !COMMON.contains(&k.as_str()))
        .map(|(k, _)| k.clone())
}

fn int_arg(v: &Value, default: i64) -> i64 {
    v.as_i64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .unwrap_or(default)
}

/// `__command__` as a participant returns it: `["jump", "x"]`,
/// `["skip", 1]`, or a string `"break"` / `"skip 2"`.
fn parse_command(v: &Value) -> Option<(String, Value)> {
    match v {
        Value::Array(a) => {
            let c = a.first()?.as_str()?.trim().to_owned();
            Some((c, a.get(1).cloned().unwrap_or(Value::Null)))
        }
        Value::String(s) => {
            let s = s.trim();
            match s.split_once(char::is_whitespace) {
                Some((c, arg)) => {
                    let arg = arg.trim().strip_prefix("to ").unwrap_or(arg.trim());
                    Some((c.to_owned(), Value::String(arg.to_owned())))
                }
                None if !s.is_empty() => Some((s.to_owned(), Value::Null)),
                None => None,
            }
        }
        _ => None,
    }
}

fn to_list(v: &Value, sep: &str) -> Vec<Value> {
    match v {
        Value::Array(a) => a.clone(),
        Value::Object(m) => m.iter().map(|(k, v)| json!([k, v])).collect(),
        Value::String(s) if s.trim().is_empty() => Vec::new(),
        Value::String(s) => s
            .split(sep)
            .map(|x| Value::String(x.trim().to_owned()))
            .collect(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// Takes `tag` off the workitem's `__tags__` stack (its last entry).
fn pop_tag(fields: &mut Map<String, Value>, tag: &str) {
    if let Some(Value::Array(tags)) = fields.get_mut("__tags__")
        && let Some(i) = tags.iter().rposition(|t| t.as_str() == Some(tag))
    {
        tags.remove(i);
    }
}

/// A tagged expression is left: its tag comes off the stack and becomes
/// `__left_tag__` (what a concurrence's `wait_for` watches).
fn leave_tag(fields: &mut Map<String, Value>, tag: &str) {
    pop_tag(fields, tag);
    fields.insert("__left_tag__".into(), Value::String(tag.to_owned()));
}

/// Writes a field by dot path; a missing parent container means the key
/// is written literally (`"a.b"`), as Ruote does.
pub(super) fn set_field(fields: &mut Map<String, Value>, path: &str, value: Value) {
    let Some((head, rest)) = path.split_once('.') else {
        fields.insert(path.to_owned(), value);
        return;
    };
    match fields.get_mut(head) {
        Some(container @ (Value::Object(_) | Value::Array(_))) => {
            if set_in(container, rest, value.clone()).is_err() {
                fields.insert(path.to_owned(), value);
            }
        }
        _ => {
            fields.insert(path.to_owned(), value);
        }
    }
}

fn set_in(container: &mut Value, path: &str, value: Value) -> Result<(), ()> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    match (container, rest) {
        (Value::Object(m), None) => {
            m.insert(head.to_owned(), value);
            Ok(())
        }
        (Value::Array(a), None) => {
            let i: usize = head.parse().map_err(|_| ())?;
            if i < a.len() {
                a[i] = value;
            } else if i == a.len() {
                a.push(value);
            } else {
                return Err(());
            }
            Ok(())
        }
        (Value::Object(m), Some(r)) => match m.get_mut(head) {
            Some(c @ (Value::Object(_) | Value::Array(_))) => set_in(c, r, value),
            _ => Err(()),
        },
        (Value::Array(a), Some(r)) => {
            let i: usize = head.parse().map_err(|_| ())?;
            match a.get_mut(i) {
                Some(c @ (Value::Object(_) | Value::Array(_))) => set_in(c, r, value),
                _ => Err(()),
            }
        }
        _ => Err(()),
    }
}

fn unset_field(fields: &mut Map<String, Value>, path: &str) -> Option<Value> {
    if let Some(v) = fields.remove(path) {
        return Some(v);
    }
    let (head, rest) = path.split_once('.')?;
    let mut cur = fields.get_mut(head)?;
    let parts: Vec<&str> = rest.split('.').collect();
    for p in &parts[..parts.len() - 1] {
        cur = match cur {
            Value::Object(m) => m.get_mut(*p)?,
            Value::Array(a) => a.get_mut(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    let last = parts[parts.len() - 1];
    match cur {
        Value::Object(m) => m.remove(last),
        Value::Array(a) => {
            let i: usize = last.parse().ok()?;
            (i < a.len()).then(|| a.remove(i))
        }
        _ => None,
    }
}
