//! Handler attributes (`on_error`, `on_timeout`, `on_cancel`): their values
//! parsed into what the engine does (Ruote semantics, research/workflows.md
//! §2.3–§2.5), and the pure part of the error-handling algorithm
//! ([`decide`]).
//!
//! Names are not classified at parse time: Ruote looks a handler name up
//! when the handler fires (a subprocess bound in scope wins over a
//! participant), so [`Action::Apply`] keeps the name and the engine calls
//! [`classify`] with what is in scope then ([`subprocess_names`] collects
//! the `define` children of a tree).
//!
//! Not supported (a clear [`HandlerError`]): the list form
//! `[[pattern, handler], …]` of `on_error`.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use super::expr::{duration_value, inspect};
use super::tree::{Attrs, Node};

/// Most repetitions a schedule entry (`retry * N`) may ask for.
pub const MAX_REPEAT: u32 = 1_000;

/// Which handler attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerKind {
    Error,
    Timeout,
    Cancel,
}

impl HandlerKind {
    /// The attribute name (`on_error`, …).
    pub fn attr(self) -> &'static str {
        match self {
            HandlerKind::Error => "on_error",
            HandlerKind::Timeout => "on_timeout",
            HandlerKind::Cancel => "on_cancel",
        }
    }
}

/// A cursor/iterator command set as `__command__` by a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `jump to x` / `jump x`.
    Jump(String),
    /// `skip N` (default 1).
    Skip(i64),
    /// `back N` (default 1).
    Back(i64),
    Rewind,
    /// `break` or `stop`.
    Break,
    Over,
    Reset,
    Continue,
}

/// Where `store:` / `bury:` puts the error object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreTo {
    /// `store: x` or `store: f:x`.
    Field(String),
    /// `store: v:y`.
    Variable(String),
}

/// What a fired handler does to the expression that declared it.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `redo` / `retry`: cancel and re-apply the same tree.
    Redo,
    /// `undo` / `pass` / `''` (on_timeout, on_cancel): reply to the parent.
    Pass,
    /// `cancel`: trigger this expression's `on_cancel` (none → [`Action::Pass`]).
    Cancel,
    /// `cando`: trigger `on_cancel`, then redo.
    Cando,
    /// `raise` (on_error): the process goes into error as if unhandled.
    Raise,
    /// `error` (on_timeout): replaced by an `error` expression.
    Error,
    /// `store: …` / `bury: …` (on_error): cancel the branch, store the
    /// error object, continue.
    Store { to: StoreTo, bury: bool },
    /// A cursor command.
    Command(Command),
    /// A participant or subprocess name (`!name`: `kill` is set, the
    /// failing branch is killed, inner `on_cancel`s skipped).
    Apply { name: String, kill: bool },
    /// A tree `[name, {atts}, [kids]]` replacing the expression.
    Tree(Node),
}

/// One entry of an `on_error` schedule: `after: action * times`.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub after: Duration,
    pub action: Action,
    pub times: u32,
}

/// A parsed handler attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Handler {
    /// One action, used every time the handler fires.
    Do(Action),
    /// `"1m: retry * 3, pass"`: each failure consumes one repetition; once
    /// all are used the handler is gone.
    Schedule(Vec<Step>),
    /// `on_error: ''`: explicitly not handled (stops the upward search).
    Unhandled,
}

/// A participant or a subprocess, once classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Participant(String),
    Subprocess(String),
}

/// A malformed handler or timeout value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    #[error("{attr}: invalid value {value}: {message}")]
    Invalid {
        attr: String,
        value: String,
        message: String,
    },
}

fn invalid(kind: HandlerKind, value: &str, message: impl Into<String>) -> HandlerError {
    HandlerError::Invalid {
        attr: kind.attr().to_string(),
        value: inspect_s(value),
        message: message.into(),
    }
}

fn inspect_s(s: &str) -> String {
    inspect(&Value::String(s.to_string()))
}

/// A participant/subprocess name: non-empty, no whitespace nor the
/// schedule punctuation `,`, `:`, `*`.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, ',' | ':' | '*' | '!'))
}

fn count(kind: HandlerKind, value: &str, arg: Option<&str>) -> Result<i64, HandlerError> {
    match arg {
        None => Ok(1),
        Some(a) => a
            .parse::<i64>()
            .map_err(|_| invalid(kind, value, format!("'{a}' is not an integer"))),
    }
}

fn parse_command(
    kind: HandlerKind,
    value: &str,
    words: &[&str],
) -> Result<Option<Command>, HandlerError> {
    let too_many = || invalid(kind, value, format!("too many words for '{}'", words[0]));
    let cmd = match words {
        ["jump", "to", x] => Command::Jump((*x).to_string()),
        ["jump", x] if *x != "to" => Command::Jump((*x).to_string()),
        ["jump", ..] => return Err(invalid(kind, value, "expected 'jump to <tag>'")),
        ["skip", rest @ ..] if rest.len() <= 1 => {
            Command::Skip(count(kind, value, rest.first().copied())?)
        }
        ["back", rest @ ..] if rest.len() <= 1 => {
            Command::Back(count(kind, value, rest.first().copied())?)
        }
        ["skip" | "back", ..] => return Err(too_many()),
        ["rewind"] => Command::Rewind,
        ["break"] | ["stop"] => Command::Break,
        ["over"] => Command::Over,
        ["reset"] => Command::Reset,
        ["continue"] => Command::Continue,
        [
            "rewind" | "break" | "stop" | "over" | "reset" | "continue",
            ..,
        ] => return Err(too_many()),
        _ => return Ok(None),
    };
    Ok(Some(cmd))
}

/// One action (no schedule).
fn parse_action(kind: HandlerKind, value: &str, text: &str) -> Result<Action, HandlerError> {
    let t = text.trim();
    let on_error_only = |what: &str| {
        if kind == HandlerKind::Error {
            Ok(())
        } else {
            Err(invalid(
                kind,
                value,
                format!("'{what}' is only valid in on_error"),
            ))
        }
    };
    for (prefix, bury) in [("store:", false), ("bury:", true)] {
        if let Some(rest) = t.strip_prefix(prefix) {
            on_error_only(prefix.trim_end_matches(':'))?;
            let rest = rest.trim();
            let to = if let Some(v) = rest.strip_prefix("v:") {
                StoreTo::Variable(v.to_string())
            } else {
                StoreTo::Field(rest.strip_prefix("f:").unwrap_or(rest).to_string())
            };
            let (StoreTo::Field(n) | StoreTo::Variable(n)) = &to;
            if !valid_name(n) {
                return Err(invalid(
                    kind,
                    value,
                    format!("'{prefix}' needs a field or variable name"),
                ));
            }
            return Ok(Action::Store { to, bury });
        }
    }
    let action = match t {
        "" | "undo" | "pass" => Action::Pass,
        "redo" | "retry" => Action::Redo,
        "cancel" => Action::Cancel,
        "cando" => Action::Cando,
        "raise" => {
            on_error_only("raise")?;
            Action::Raise
        }
        "error" => {
            if kind != HandlerKind::Timeout {
                return Err(invalid(kind, value, "'error' is only valid in on_timeout"));
            }
            Action::Error
        }
        _ => {
            let words: Vec<&str> = t.split_whitespace().collect();
            if let Some(cmd) = parse_command(kind, value, &words)? {
                return Ok(Action::Command(cmd));
            }
            let (name, kill) = match t.strip_prefix('!') {
                Some(n) => {
                    on_error_only("!name")?;
                    (n, true)
                }
                None => (t, false),
            };
            if !valid_name(name) {
                return Err(invalid(
                    kind,
                    value,
                    format!("'{t}' is neither a handler keyword nor a participant/subprocess name"),
                ));
            }
            Action::Apply {
                name: name.to_string(),
                kill,
            }
        }
    };
    Ok(action)
}

/// Whether a string is a schedule (`after: action`, `action * N`, or a
/// comma-separated list).
fn is_schedule(t: &str) -> bool {
    if t.starts_with("store:") || t.starts_with("bury:") {
        return false;
    }
    t.contains(',') || t.contains('*') || t.contains(':')
}

fn parse_schedule(kind: HandlerKind, value: &str) -> Result<Handler, HandlerError> {
    if kind != HandlerKind::Error {
        return Err(invalid(kind, value, "schedules are only valid in on_error"));
    }
    let mut steps = Vec::new();
    for entry in value.split(',') {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err(invalid(kind, value, "empty schedule entry"));
        }
        let (after, rest) = match entry.split_once(':') {
            Some((d, rest))
                if !d.trim_start().starts_with("store") && !d.trim_start().starts_with("bury") =>
            {
                let d = d.trim();
                let after = duration_value(&Value::String(d.to_string()))
                    .map_err(|e| invalid(kind, value, format!("entry '{entry}': {e}")))?;
                (after, rest.trim())
            }
            _ => (Duration::ZERO, entry),
        };
        let (action_text, times) = match rest.split_once('*') {
            Some((a, n)) => {
                let n = n.trim();
                let times: u32 = n.parse().map_err(|_| {
                    invalid(
                        kind,
                        value,
                        format!("entry '{entry}': '{n}' is not a repeat count"),
                    )
                })?;
                if times == 0 || times > MAX_REPEAT {
                    return Err(invalid(
                        kind,
                        value,
                        format!("entry '{entry}': repeat count must be 1..={MAX_REPEAT}"),
                    ));
                }
                (a.trim(), times)
            }
            None => (rest, 1),
        };
        if action_text.is_empty() {
            return Err(invalid(
                kind,
                value,
                format!("entry '{entry}' has no action"),
            ));
        }
        let action = parse_action(kind, value, action_text)?;
        steps.push(Step {
            after,
            action,
            times,
        });
    }
    Ok(Handler::Schedule(steps))
}

/// Parses a handler attribute value. `null` is no handler (`Ok(None)`).
pub fn parse(kind: HandlerKind, v: &Value) -> Result<Option<Handler>, HandlerError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                return Ok(Some(if kind == HandlerKind::Error {
                    Handler::Unhandled
                } else {
                    Handler::Do(Action::Pass)
                }));
            }
            if is_schedule(t) {
                return parse_schedule(kind, t).map(Some);
            }
            parse_action(kind, t, t).map(|a| Some(Handler::Do(a)))
        }
        Value::Array(items) => {
            if matches!(items.first(), Some(Value::String(_))) {
                let node = Node::from_json(v).map_err(|e| {
                    invalid(
                        kind,
                        &inspect(v),
                        format!("not a tree [name, {{atts}}, [kids]]: {e}"),
                    )
                })?;
                Ok(Some(Handler::Do(Action::Tree(node))))
            } else {
                Err(invalid(
                    kind,
                    &inspect(v),
                    "the list form [[pattern, handler], …] is not supported; use one handler",
                ))
            }
        }
        other => Err(invalid(
            kind,
            &inspect(other),
            "expected a string (keyword, name or schedule) or a tree",
        )),
    }
}

/// The handler of `kind` declared in `attrs` (`None`: absent or `null`).
pub fn handler_for(attrs: &Attrs, kind: HandlerKind) -> Result<Option<Handler>, HandlerError> {
    match attrs.get(kind.attr()) {
        None => Ok(None),
        Some(v) => parse(kind, v),
    }
}

/// The `timeout` attribute as a delay: absent, `null` or `''` = none;
/// numbers are seconds; strings are durations (§6).
pub fn timeout_of(attrs: &Attrs) -> Result<Option<Duration>, HandlerError> {
    let err = |v: &Value, m: String| HandlerError::Invalid {
        attr: "timeout".to_string(),
        value: inspect(v),
        message: m,
    };
    match attrs.get("timeout") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => duration_value(&Value::String(s.trim().to_string()))
            .map(Some)
            .map_err(|e| err(&Value::String(s.clone()), e.to_string())),
        Some(v @ Value::Number(_)) => duration_value(v)
            .map(Some)
            .map_err(|e| err(v, e.to_string())),
        Some(v) => Err(err(
            v,
            "expected a duration string or a number of seconds".to_string(),
        )),
    }
}

/// Classifies a handler name: a subprocess bound in scope wins over a
/// participant.
pub fn classify(name: &str, is_subprocess: impl Fn(&str) -> bool) -> Target {
    if is_subprocess(name) {
        Target::Subprocess(name.to_string())
    } else {
        Target::Participant(name.to_string())
    }
}

/// The names of the `define` children of `node` (the subprocesses it binds).
pub fn subprocess_names(node: &Node) -> BTreeSet<String> {
    node.children
        .iter()
        .filter(|c| c.is_define())
        .filter_map(|c| c.attr_str("name").or_else(|| c.text()))
        .map(str::to_string)
        .collect()
}

/// An expression id (Ruote's expid, `0_1_0`).
pub type ExprId = String;

/// What to do with one error.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// No usable handler (or `''`, or `raise`): the workflow enters `error`,
    /// the failing expression stays where it is (replayable).
    Unhandled,
    /// `at` handles it: it goes `failing`, its children are cancelled
    /// (`kill` for `!name`), then after `delay` it does `action`. `tries`
    /// is the handler's new try count (stored for the next error).
    Handle {
        at: ExprId,
        action: Action,
        delay: Duration,
        tries: u32,
    },
}

/// The action a handler takes on its `tries`-th use (0-based), with its
/// delay; `None` when a schedule is used up (the handler is gone).
pub fn nth_action(handler: &Handler, tries: u32) -> Option<(Action, Duration)> {
    match handler {
        Handler::Do(a) => Some((a.clone(), Duration::ZERO)),
        Handler::Unhandled => None,
        Handler::Schedule(steps) => {
            let mut left = tries;
            for s in steps {
                if left < s.times {
                    return Some((s.action.clone(), s.after));
                }
                left -= s.times;
            }
            None
        }
    }
}

/// §2.5 for one error: `chain` is the failing expression then its
/// ancestors (innermost first), each with its `on_error` handler and how
/// many times that handler has fired. The nearest usable handler wins; `''`
/// stops the search; a used-up schedule is gone (the search goes on);
/// `raise` escalates to the workflow.
pub fn decide(chain: &[(ExprId, Option<Handler>, u32)]) -> Decision {
    for (id, handler, tries) in chain {
        let Some(h) = handler else { continue };
        if *h == Handler::Unhandled {
            return Decision::Unhandled;
        }
        let Some((action, delay)) = nth_action(h, *tries) else {
            continue;
        };
        if action == Action::Raise {
            return Decision::Unhandled;
        }
        return Decision::Handle {
            at: id.clone(),
            action,
            delay,
            tries: tries.saturating_add(1),
        };
    }
    Decision::Unhandled
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(kind: HandlerKind, s: &str) -> Result<Option<Handler>, HandlerError> {
        parse(kind, &json!(s))
    }
    fn act(s: &str) -> Action {
        match p(HandlerKind::Error, s) {
            Ok(Some(Handler::Do(a))) => a,
            other => panic!("{s}: {other:?}"),
        }
    }
    fn sched(s: &str) -> Vec<Step> {
        match p(HandlerKind::Error, s) {
            Ok(Some(Handler::Schedule(v))) => v,
            other => panic!("{s}: {other:?}"),
        }
    }
    fn attrs(v: Value) -> Attrs {
        v.as_object()
            .expect("object")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    fn apply(n: &str) -> Action {
        Action::Apply {
            name: n.to_string(),
            kill: false,
        }
    }
    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn keywords() {
        assert_eq!(act("redo"), Action::Redo);
        assert_eq!(act("retry"), Action::Redo);
        assert_eq!(act("undo"), Action::Pass);
        assert_eq!(act("pass"), Action::Pass);
        assert_eq!(act("cancel"), Action::Cancel);
        assert_eq!(act("cando"), Action::Cando);
        assert_eq!(act("raise"), Action::Raise);
        assert_eq!(act("  retry "), Action::Redo);
    }

    #[test]
    fn empty_string() {
        assert_eq!(p(HandlerKind::Error, ""), Ok(Some(Handler::Unhandled)));
        assert_eq!(
            p(HandlerKind::Timeout, ""),
            Ok(Some(Handler::Do(Action::Pass)))
        );
        assert_eq!(
            p(HandlerKind::Cancel, " "),
            Ok(Some(Handler::Do(Action::Pass)))
        );
    }

    #[test]
    fn null_is_none() {
        assert_eq!(parse(HandlerKind::Error, &Value::Null), Ok(None));
    }

    #[test]
    fn names() {
        assert_eq!(act("alpha"), apply("alpha"));
        assert_eq!(act("fix_it-2"), apply("fix_it-2"));
        assert_eq!(
            act("!cleanup"),
            Action::Apply {
                name: "cleanup".to_string(),
                kill: true
            }
        );
        assert_eq!(
            p(HandlerKind::Timeout, "bravo"),
            Ok(Some(Handler::Do(apply("bravo"))))
        );
    }

    #[test]
    fn classification_subprocess_wins() {
        let root = Node::new("define")
            .child(Node::new("define").attr("fix", Value::Null))
            .child(Node::new("process_definition").attr("name", "other"))
            .child(Node::new("sequence"));
        let subs = subprocess_names(&root);
        assert_eq!(subs.len(), 2);
        let is = |n: &str| subs.contains(n);
        assert_eq!(classify("fix", is), Target::Subprocess("fix".into()));
        assert_eq!(classify("other", is), Target::Subprocess("other".into()));
        assert_eq!(classify("alpha", is), Target::Participant("alpha".into()));
    }

    #[test]
    fn store_and_bury() {
        let st = |to, bury| Action::Store { to, bury };
        assert_eq!(act("store: x"), st(StoreTo::Field("x".into()), false));
        assert_eq!(act("store: f:x"), st(StoreTo::Field("x".into()), false));
        assert_eq!(act("store:v:y"), st(StoreTo::Variable("y".into()), false));
        assert_eq!(act("bury: err"), st(StoreTo::Field("err".into()), true));
        assert!(p(HandlerKind::Error, "store:").is_err());
        assert!(p(HandlerKind::Timeout, "store: x").is_err());
    }

    #[test]
    fn commands() {
        let c = |s| act(s);
        assert_eq!(c("jump to x"), Action::Command(Command::Jump("x".into())));
        assert_eq!(c("jump x"), Action::Command(Command::Jump("x".into())));
        assert_eq!(c("skip 2"), Action::Command(Command::Skip(2)));
        assert_eq!(c("skip"), Action::Command(Command::Skip(1)));
        assert_eq!(c("back 3"), Action::Command(Command::Back(3)));
        assert_eq!(c("rewind"), Action::Command(Command::Rewind));
        assert_eq!(c("break"), Action::Command(Command::Break));
        assert_eq!(c("stop"), Action::Command(Command::Break));
        assert_eq!(c("over"), Action::Command(Command::Over));
        assert_eq!(c("reset"), Action::Command(Command::Reset));
        assert_eq!(c("continue"), Action::Command(Command::Continue));
        for bad in ["skip two", "jump", "jump to", "rewind now", "back 1 2"] {
            assert!(p(HandlerKind::Error, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kind_restrictions() {
        assert_eq!(
            p(HandlerKind::Timeout, "error"),
            Ok(Some(Handler::Do(Action::Error)))
        );
        assert!(p(HandlerKind::Error, "error").is_err());
        assert!(p(HandlerKind::Cancel, "error").is_err());
        assert!(p(HandlerKind::Timeout, "raise").is_err());
        assert!(p(HandlerKind::Cancel, "!x").is_err());
        assert!(p(HandlerKind::Timeout, "retry * 3").is_err());
    }

    #[test]
    fn schedule_forms() {
        assert_eq!(
            sched("1m: retry * 3, pass"),
            vec![
                Step {
                    after: secs(60),
                    action: Action::Redo,
                    times: 3
                },
                Step {
                    after: Duration::ZERO,
                    action: Action::Pass,
                    times: 1
                },
            ]
        );
        assert_eq!(
            sched("retry * 3"),
            vec![Step {
                after: Duration::ZERO,
                action: Action::Redo,
                times: 3
            }]
        );
        let s = sched("10s: retry, 1m: retry, pass");
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[0].after, s[1].after, s[2].after),
            (secs(10), secs(60), secs(0))
        );
        let s = sched("1h30m: alpha, store: x");
        assert_eq!(s[0].after, secs(5400));
        assert_eq!(s[0].action, apply("alpha"));
        assert_eq!(
            s[1].action,
            Action::Store {
                to: StoreTo::Field("x".into()),
                bury: false
            }
        );
    }

    #[test]
    fn malformed_schedules() {
        for bad in [
            "retry,",
            ", retry",
            "1m:",
            "1x: retry",
            "retry * 0",
            "retry * many",
            "retry * 1001",
            "1m: * 3",
            "a b c",
            "al,pha beta",
        ] {
            let r = p(HandlerKind::Error, bad);
            assert!(
                matches!(r, Err(HandlerError::Invalid { .. })),
                "{bad}: {r:?}"
            );
        }
        let e = p(HandlerKind::Error, "1x: retry")
            .expect_err("bad")
            .to_string();
        assert!(e.starts_with("on_error: invalid value"), "{e}");
    }

    #[test]
    fn tree_handler() {
        let v = json!(["fixer", {"urgent": true}, []]);
        match parse(HandlerKind::Error, &v) {
            Ok(Some(Handler::Do(Action::Tree(n)))) => {
                assert_eq!(n.name, "fixer");
                assert_eq!(n.attrs.get("urgent"), Some(&json!(true)));
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(HandlerKind::Error, &json!([["/x/", "alpha"]])).is_err());
        assert!(parse(HandlerKind::Error, &json!(3)).is_err());
        assert!(parse(HandlerKind::Error, &json!(true)).is_err());
    }

    #[test]
    fn handler_for_reads_attrs() {
        let a = attrs(json!({"on_error": "retry", "on_timeout": "pass", "on_cancel": "alpha"}));
        assert_eq!(
            handler_for(&a, HandlerKind::Error),
            Ok(Some(Handler::Do(Action::Redo)))
        );
        assert_eq!(
            handler_for(&a, HandlerKind::Timeout),
            Ok(Some(Handler::Do(Action::Pass)))
        );
        assert_eq!(
            handler_for(&a, HandlerKind::Cancel),
            Ok(Some(Handler::Do(apply("alpha"))))
        );
        assert_eq!(handler_for(&Attrs::new(), HandlerKind::Error), Ok(None));
    }

    #[test]
    fn timeouts() {
        let t = |v: Value| timeout_of(&attrs(json!({ "timeout": v })));
        assert_eq!(timeout_of(&Attrs::new()), Ok(None));
        assert_eq!(t(json!("")), Ok(None));
        assert_eq!(t(Value::Null), Ok(None));
        assert_eq!(t(json!("2d")), Ok(Some(secs(2 * 86_400))));
        assert_eq!(t(json!("1h30m")), Ok(Some(secs(5_400))));
        assert_eq!(t(json!(90)), Ok(Some(secs(90))));
        assert_eq!(t(json!("1.5")), Ok(Some(Duration::from_millis(1_500))));
        assert!(t(json!("2 days")).is_err());
        assert!(t(json!("3q")).is_err());
        assert!(t(json!([1])).is_err());
    }

    fn link(id: &str, h: Option<&str>, tries: u32) -> (ExprId, Option<Handler>, u32) {
        let h = h.map(|s| p(HandlerKind::Error, s).expect("parse").expect("some"));
        (id.to_string(), h, tries)
    }
    fn handle(at: &str, action: Action, delay: Duration, tries: u32) -> Decision {
        Decision::Handle {
            at: at.to_string(),
            action,
            delay,
            tries,
        }
    }

    #[test]
    fn decide_no_handler_is_error_state() {
        assert_eq!(decide(&[]), Decision::Unhandled);
        assert_eq!(
            decide(&[link("0_0", None, 0), link("0", None, 0)]),
            Decision::Unhandled
        );
    }

    #[test]
    fn decide_nearest_wins() {
        let chain = [
            link("0_1_0", None, 0),
            link("0_1", Some("alpha"), 0),
            link("0", Some("retry"), 0),
        ];
        assert_eq!(decide(&chain), handle("0_1", apply("alpha"), secs(0), 1));
        let own = [link("0_1_0", Some("pass"), 0), link("0", Some("retry"), 0)];
        assert_eq!(decide(&own), handle("0_1_0", Action::Pass, secs(0), 1));
    }

    #[test]
    fn decide_empty_stops_search() {
        let chain = [link("0_0", Some(""), 0), link("0", Some("retry"), 0)];
        assert_eq!(decide(&chain), Decision::Unhandled);
    }

    #[test]
    fn decide_raise_escalates() {
        let chain = [link("0_0", Some("raise"), 0), link("0", Some("retry"), 0)];
        assert_eq!(decide(&chain), Decision::Unhandled);
    }

    #[test]
    fn decide_schedule_consumes_entries() {
        let h = "1m: retry * 3, pass";
        for tries in 0..3 {
            assert_eq!(
                decide(&[link("0", Some(h), tries)]),
                handle("0", Action::Redo, secs(60), tries + 1)
            );
        }
        assert_eq!(
            decide(&[link("0", Some(h), 3)]),
            handle("0", Action::Pass, secs(0), 4)
        );
        // used up: the handler is gone, the error is unhandled…
        assert_eq!(decide(&[link("0", Some(h), 4)]), Decision::Unhandled);
        // …or goes to the next ancestor with a handler.
        assert_eq!(
            decide(&[link("0_0", Some(h), 4), link("0", Some("bravo"), 0)]),
            handle("0", apply("bravo"), secs(0), 1)
        );
    }

    #[test]
    fn decide_stepped_delays() {
        let h = "10s: retry, 1m: retry, pass";
        let got: Vec<_> = (0..3)
            .map(|t| nth_action(&p(HandlerKind::Error, h).expect("parse").expect("some"), t))
            .collect();
        assert_eq!(
            got,
            vec![
                Some((Action::Redo, secs(10))),
                Some((Action::Redo, secs(60))),
                Some((Action::Pass, secs(0))),
            ]
        );
    }

    #[test]
    fn decide_plain_handler_never_runs_out() {
        assert_eq!(
            decide(&[link("0", Some("retry"), 1_000)]),
            handle("0", Action::Redo, secs(0), 1_001)
        );
        assert_eq!(
            decide(&[link("0", Some("cancel"), u32::MAX)]),
            handle("0", Action::Cancel, secs(0), u32::MAX)
        );
    }

    #[test]
    fn decide_kill_and_commands() {
        assert_eq!(
            decide(&[link("0_0", None, 0), link("0", Some("!fix"), 0)]),
            handle(
                "0",
                Action::Apply {
                    name: "fix".into(),
                    kill: true
                },
                secs(0),
                1
            )
        );
        assert_eq!(
            decide(&[link("0", Some("jump to x"), 0)]),
            handle("0", Action::Command(Command::Jump("x".into())), secs(0), 1)
        );
    }
}
