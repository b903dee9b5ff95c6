//! A small sequential reference interpreter of `sequence`, `concurrence`,
//! `participant`, `if` and `cursor`, the model the engine is tested against.
//!
//! It is deliberately naive: a recursive walk over the tree that calls a
//! participant closure synchronously. It is not the production engine.
//!
//! Supported: `sequence`; `concurrence` with Ruote's default merge (`merge:
//! first`, `merge_type: override`, `remaining: cancel`) plus `count`/`c`;
//! `participant` (`ref`, text attribute) and bare names, with `params` set
//! at dispatch and removed at reply, `__result__`/`t` removed at dispatch;
//! `if` (condition in `test`/`t`/text, or the condition-child form reading
//! `__result__`); `cursor` with `__command__` (`break`/`stop`/`over`,
//! `rewind`/`continue`, `reset`, `skip N`, `back N`, `jump X`) and the
//! `break_if`/`rewind_if`/`reset_if`/`over_if`/`stop_if` attributes (and
//! `_unless`); `set` of a field (`field`/`f`/`fld` + `value`/`val`, or the
//! shorthand `'f:x' => v` / `'x' => v`); the common `if`/`unless`
//! attributes. Anything else is [`RefError::Unsupported`].
//!
//! **Concurrence is deterministic.** Branches are applied in index order.
//! Branches that complete without dispatching anything (skipped by `if`,
//! empty, only `set`s…) reply first, in index order (Ruote's instant
//! replies). The other branches then run *one at a time, each to
//! completion*, in the order chosen by [`ReplyOrder`]; that order is the
//! order of their replies. Once `count` replies are in, the remaining
//! branches are cancelled: in this model they never run, so their
//! dispatches are not recorded (in the engine their first participants may
//! already have been dispatched). The recorded dispatch order is therefore
//! one valid linearisation: a property test should compare the multiset of
//! dispatches and the per-branch order, not the global order.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use super::expr::{ExprError, Scope, condition_value, substitute_attrs, substitute_str};
use super::tree::Node;

/// Default bound on the number of steps (expression applications and
/// cursor iterations) of one run.
pub const MAX_STEPS: usize = 10_000;

/// The result of a completed run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Participant name and the fields it was dispatched with (including
    /// `params`), in dispatch order.
    pub dispatches: Vec<(String, Map<String, Value>)>,
    /// The fields the root replied with.
    pub final_fields: Map<String, Value>,
    /// Steps used.
    pub steps: usize,
}

/// Why a run did not complete.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RefError {
    #[error("step limit of {0} exceeded (runaway cursor?)")]
    StepLimit(usize),
    #[error("not supported by the reference interpreter: {0}")]
    Unsupported(String),
    #[error(transparent)]
    Expr(#[from] ExprError),
    /// Internal: a dry run reached a dispatch.
    #[error("blocked on a dispatch")]
    Blocked,
}

/// In which order the non-instant branches of each concurrence reply.
#[derive(Debug, Clone)]
pub enum ReplyOrder {
    /// Index order.
    InOrder,
    /// Reverse index order.
    Reversed,
    /// A random permutation per concurrence, from one generator seeded once
    /// per run (concurrences draw in the order they are applied).
    Seeded(u64),
}

/// Runs `tree` with `fields`, calling `participant(name, fields)` for each
/// dispatch; the returned map replaces the workitem fields.
pub fn run<P>(
    tree: &Node,
    fields: Map<String, Value>,
    order: ReplyOrder,
    max_steps: usize,
    participant: P,
) -> Result<Run, RefError>
where
    P: FnMut(&str, &Map<String, Value>) -> Map<String, Value>,
{
    let rng = match order {
        ReplyOrder::Seeded(seed) => Some(StdRng::seed_from_u64(seed)),
        _ => None,
    };
    let mut interp = Interp {
        participant,
        order,
        rng,
        max_steps,
        steps: 0,
        dispatches: Vec::new(),
        dry: false,
    };
    let final_fields = interp.apply(tree, fields)?;
    Ok(Run {
        dispatches: interp.dispatches,
        final_fields,
        steps: interp.steps,
    })
}

struct Interp<P> {
    participant: P,
    order: ReplyOrder,
    rng: Option<StdRng>,
    max_steps: usize,
    steps: usize,
    dispatches: Vec<(String, Map<String, Value>)>,
    dry: bool,
}

type Fields = Map<String, Value>;

static EMPTY: std::sync::LazyLock<Fields> = std::sync::LazyLock::new(Map::new);

fn scope(fields: &Fields) -> Scope<'_> {
    Scope::new(fields, &EMPTY)
}

/// Common attributes the interpreter knows (ignored by `set` shorthand).
const COMMON: &[&str] = &["if", "unless"];

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

enum Command {
    Break,
    Rewind,
    Reset,
    Skip(i64),
    Jump(Value),
}

impl<P> Interp<P>
where
    P: FnMut(&str, &Map<String, Value>) -> Map<String, Value>,
{
    fn tick(&mut self) -> Result<(), RefError> {
        self.steps += 1;
        if self.steps > self.max_steps {
            return Err(RefError::StepLimit(self.max_steps));
        }
        Ok(())
    }

    fn apply(&mut self, node: &Node, fields: Fields) -> Result<Fields, RefError> {
        self.tick()?;
        // Common `if` / `unless` (`if` wins).
        if let Some(c) = node.attrs.get("if") {
            if !condition_value(c, &scope(&fields))? {
                return Ok(fields);
            }
        } else if let Some(c) = node.attrs.get("unless")
            && condition_value(c, &scope(&fields))?
        {
            return Ok(fields);
        }
        match node.name.as_str() {
            "sequence" => self.sequence(&node.children, fields),
            "concurrence" => self.concurrence(node, fields),
            "if" => self.if_(node, fields),
            "cursor" => self.cursor(node, fields),
            "set" => set(node, fields),
            "participant" => self.participant(node, fields),
            _ if node.is_expression() => Err(RefError::Unsupported(node.name.clone())),
            _ => self.participant(node, fields),
        }
    }

    fn sequence(&mut self, children: &[Node], mut fields: Fields) -> Result<Fields, RefError> {
        for child in children {
            fields = self.apply(child, fields)?;
        }
        Ok(fields)
    }

    fn participant(&mut self, node: &Node, mut fields: Fields) -> Result<Fields, RefError> {
        let raw = node
            .reference()
            .ok_or_else(|| RefError::Unsupported("participant without a name".into()))?;
        let name = substitute_str(raw, &scope(&fields))?;
        let mut params = substitute_attrs(&node.attrs_json(), &scope(&fields))?;
        if node.name != "participant" {
            params.insert("ref".into(), Value::String(name.clone()));
        }
        if !node.children.is_empty() {
            return Err(RefError::Unsupported("participant children".into()));
        }
        if self.dry {
            return Err(RefError::Blocked);
        }
        fields.remove("__result__");
        fields.remove("t");
        fields.insert("params".into(), Value::Object(params));
        self.dispatches.push((name.clone(), fields.clone()));
        let mut reply = (self.participant)(&name, &fields);
        reply.remove("params");
        reply.remove("dispatched_at");
        Ok(reply)
    }

    fn if_(&mut self, node: &Node, fields: Fields) -> Result<Fields, RefError> {
        let cond = node
            .attrs
            .get("test")
            .or_else(|| node.attrs.get("t"))
            .cloned()
            .or_else(|| node.text().map(|t| Value::String(t.to_string())));
        let (branch, fields) = match cond {
            Some(c) => {
                let b = condition_value(&c, &scope(&fields))?;
                (if b { 0 } else { 1 }, fields)
            }
            None => {
                let Some(test) = node.children.first() else {
                    return Ok(fields);
                };
                let fields = self.apply(test, fields)?;
                let b = fields.get("__result__") == Some(&Value::Bool(true));
                (if b { 1 } else { 2 }, fields)
            }
        };
        match node.children.get(branch) {
            Some(child) => self.apply(child, fields),
            None => Ok(fields),
        }
    }

    /// Runs a branch without dispatching: `Some(fields)` if it completes
    /// instantly. Steps and dispatches are left untouched.
    fn instant(&mut self, node: &Node, fields: &Fields) -> Result<Option<Fields>, RefError> {
        let (steps, dry, rng) = (self.steps, self.dry, self.rng.clone());
        self.dry = true;
        let r = self.apply(node, fields.clone());
        self.steps = steps;
        self.dry = dry;
        self.rng = rng;
        match r {
            Ok(f) => Ok(Some(f)),
            Err(RefError::Blocked) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn concurrence(&mut self, node: &Node, fields: Fields) -> Result<Fields, RefError> {
        for key in node.attrs.keys() {
            if !["count", "c", "if", "unless"].contains(&key.as_str()) {
                return Err(RefError::Unsupported(format!(
                    "concurrence attribute {key}"
                )));
            }
        }
        let n = node.children.len();
        if n == 0 {
            return Ok(fields);
        }
        let count = match node.attrs.get("count").or_else(|| node.attrs.get("c")) {
            None => n,
            Some(v) => {
                let c = as_int(v).ok_or_else(|| RefError::Unsupported(format!("count {v}")))?;
                if c == 0 {
                    return Ok(fields);
                }
                let c = if c < 0 { n as i64 + c } else { c };
                c.clamp(1, n as i64) as usize
            }
        };
        // Instant branches first (index order), then the others.
        let mut order = Vec::new();
        let mut replies: Vec<Fields> = Vec::new();
        for (i, child) in node.children.iter().enumerate() {
            match self.instant(child, &fields)? {
                Some(_) => replies.push(self.apply(child, fields.clone())?),
                None => order.push(i),
            }
            if replies.len() >= count && self.dry {
                break;
            }
        }
        if self.dry && replies.len() < count {
            return Err(RefError::Blocked);
        }
        match &self.order {
            ReplyOrder::InOrder => {}
            ReplyOrder::Reversed => order.reverse(),
            ReplyOrder::Seeded(_) => {
                if let Some(rng) = self.rng.as_mut() {
                    order.shuffle(rng);
                }
            }
        }
        for i in order {
            if replies.len() >= count {
                break;
            }
            replies.push(self.apply(&node.children[i], fields.clone())?);
        }
        // merge: first, merge_type: override.
        Ok(replies.into_iter().next().unwrap_or(fields))
    }

    fn take_command(&self, node: &Node, fields: &mut Fields) -> Result<Option<Command>, RefError> {
        if let Some(c) = fields.remove("__command__") {
            let (word, arg) = match &c {
                Value::String(s) => (s.clone(), None),
                Value::Array(a) => (
                    a.first().and_then(Value::as_str).unwrap_or("").to_string(),
                    a.get(1).cloned(),
                ),
                _ => return Ok(None),
            };
            let steps = arg.as_ref().and_then(as_int).unwrap_or(1);
            return Ok(match word.as_str() {
                "break" | "stop" | "over" => Some(Command::Break),
                "rewind" | "continue" => Some(Command::Rewind),
                "reset" => Some(Command::Reset),
                "skip" => Some(Command::Skip(steps)),
                "back" => Some(Command::Skip(-steps)),
                "jump" => arg.map(Command::Jump),
                _ => None,
            });
        }
        for suffix in ["_if", "_unless"] {
            for word in ["break", "rewind", "reset", "over", "stop"] {
                if let Some(c) = node.attrs.get(&format!("{word}{suffix}")) {
                    let b = condition_value(c, &scope(fields))?;
                    if b == (suffix == "_if") {
                        return Ok(Some(match word {
                            "rewind" => Command::Rewind,
                            "reset" => Command::Reset,
                            _ => Command::Break,
                        }));
                    }
                }
            }
        }
        Ok(None)
    }

    fn jump_target(
        &self,
        node: &Node,
        to: &Value,
        fields: &Fields,
    ) -> Result<Option<usize>, RefError> {
        if let Some(i) = as_int(to) {
            return Ok(usize::try_from(i).ok());
        }
        let want = match to {
            Value::String(s) => substitute_str(s, &scope(fields))?,
            _ => return Ok(None),
        };
        for (i, child) in node.children.iter().enumerate() {
            let names = [
                Some(child.name.as_str()),
                child.attr_str("ref"),
                child.attr_str("tag"),
                child.text(),
            ];
            for name in names.into_iter().flatten() {
                if substitute_str(name, &scope(fields))? == want {
                    return Ok(Some(i));
                }
            }
        }
        Ok(None)
    }

    fn cursor(&mut self, node: &Node, mut fields: Fields) -> Result<Fields, RefError> {
        let applied = fields.clone();
        let mut pos: i64 = -1;
        loop {
            let next = match self.take_command(node, &mut fields)? {
                None => pos + 1,
                Some(Command::Break) => return Ok(fields),
                Some(Command::Rewind) => 0,
                Some(Command::Reset) => {
                    fields = applied.clone();
                    0
                }
                Some(Command::Skip(n)) => pos + 1 + n,
                Some(Command::Jump(to)) => match self.jump_target(node, &to, &fields)? {
                    Some(i) => i as i64,
                    None => pos + 1,
                },
            };
            let next = next.max(0) as usize;
            let Some(child) = node.children.get(next) else {
                return Ok(fields);
            };
            self.tick()?;
            fields = self.apply(child, fields)?;
            pos = next as i64;
        }
    }
}

fn set(node: &Node, mut fields: Fields) -> Result<Fields, RefError> {
    if !node.children.is_empty() {
        return Err(RefError::Unsupported("set with children".into()));
    }
    let sc = scope(&fields);
    let field = ["field", "f", "fld"]
        .iter()
        .find_map(|k| node.attr_str(k).map(str::to_string));
    let (key, value) = match field {
        Some(f) => {
            let v = ["value", "val"]
                .iter()
                .find_map(|k| node.attrs.get(*k))
                .cloned()
                .unwrap_or(Value::Null);
            (f, v)
        }
        None => {
            let (k, v) = node
                .attrs
                .iter()
                .find(|(k, _)| !COMMON.contains(&k.as_str()))
                .ok_or_else(|| RefError::Unsupported("set without a target".into()))?;
            let k = match k.split_once(':') {
                Some((p, rest)) if p.starts_with('f') => rest.to_string(),
                Some(_) => return Err(RefError::Unsupported("set of a variable".into())),
                None => k.clone(),
            };
            (k, v.clone())
        }
    };
    let key = substitute_str(&key, &sc)?;
    if key.contains('.') {
        return Err(RefError::Unsupported("set of a dot path".into()));
    }
    let value = super::expr::substitute_value(&value, &sc)?;
    fields.insert(key, value.clone());
    fields.insert("__result__".into(), value);
    Ok(fields)
}

/// The participant used with [`random_tree`]: replies with the fields plus
/// `n` incremented (missing = 0), `last` = its name, and `__command__` =
/// its `command` parameter when it has one.
pub fn simulated_participant(name: &str, fields: &Map<String, Value>) -> Map<String, Value> {
    let mut out = fields.clone();
    let n = out.get("n").and_then(Value::as_i64).unwrap_or(0);
    out.insert("n".into(), json!(n + 1));
    out.insert("last".into(), json!(name));
    if let Some(cmd) = fields.get("params").and_then(|p| p.get("command")).cloned() {
        out.insert("__command__".into(), cmd);
    }
    out
}

/// A random tree of sequence/concurrence/participant/if/cursor/set, to run
/// from fields `{"n": 0}` with [`simulated_participant`]. Loops are
/// bounded: every cursor's first child is an unconditional participant (so
/// `n` grows on every round) and every backwards move (`rewind_if`, a
/// `rewind`/`jump 0` command) is guarded by `${f:n} < K`.
pub fn random_tree(seed: u64, max_depth: usize) -> Node {
    let mut rng = StdRng::seed_from_u64(seed);
    gen_node(&mut rng, max_depth)
}

const NAMES: &[&str] = &["alpha", "bravo", "charly", "delta"];

fn gen_participant<R: Rng>(rng: &mut R) -> Node {
    let name = NAMES[rng.random_range(0..NAMES.len())];
    let mut node = if rng.random_bool(0.5) {
        Node::new(name)
    } else {
        Node::new("participant").attr("ref", name)
    };
    if rng.random_bool(0.2) {
        let k = rng.random_range(0..8);
        node = node.attr("if", format!("${{f:n}} < {k}"));
    }
    node
}

fn gen_children<R: Rng>(rng: &mut R, depth: usize) -> Vec<Node> {
    let len = rng.random_range(0..4);
    (0..len).map(|_| gen_node(rng, depth - 1)).collect()
}

fn gen_node<R: Rng>(rng: &mut R, depth: usize) -> Node {
    if depth == 0 {
        return gen_participant(rng);
    }
    let mut node = match rng.random_range(0..7) {
        0 | 1 => gen_participant(rng),
        2 => Node::new("sequence"),
        3 => {
            let mut c = Node::new("concurrence");
            if rng.random_bool(0.3) {
                c = c.attr("count", rng.random_range(-2i64..4));
            }
            c
        }
        4 => {
            let k = rng.random_range(0..6);
            Node::new("if").attr("test", format!("${{f:n}} > {k}"))
        }
        5 => Node::new("set").attr("f:flag", rng.random_range(0..3)),
        _ => return gen_cursor(rng, depth),
    };
    match node.name.as_str() {
        "sequence" | "concurrence" => node.children = gen_children(rng, depth),
        "if" => {
            let len = rng.random_range(1..3);
            node.children = (0..len).map(|_| gen_node(rng, depth - 1)).collect();
        }
        _ => {}
    }
    node
}

fn gen_cursor<R: Rng>(rng: &mut R, depth: usize) -> Node {
    let mut node = Node::new("cursor");
    let k = rng.random_range(0..10);
    match rng.random_range(0..3) {
        0 => node = node.attr("rewind_if", format!("${{f:n}} < {k}")),
        1 => node = node.attr("break_if", format!("${{f:n}} > {k}")),
        _ => {}
    }
    let name = NAMES[rng.random_range(0..NAMES.len())];
    node.children.push(Node::new(name));
    for _ in 0..rng.random_range(0..4) {
        let child = if rng.random_bool(0.4) {
            let k = rng.random_range(0..10);
            let cmd = match rng.random_range(0..6) {
                0 => json!(["rewind"]),
                1 => json!(["skip", rng.random_range(1..3)]),
                2 => json!(["jump", 0]),
                3 => json!(["jump", NAMES[rng.random_range(0..NAMES.len())]]),
                4 => json!("break"),
                _ => json!(["back", 1]),
            };
            let p = gen_participant(rng).attr("command", cmd);
            p.attr("if", format!("${{f:n}} < {k}"))
        } else {
            gen_node(rng, depth - 1)
        };
        node.children.push(child);
    }
    node
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str) -> Node {
        Node::new(name)
    }

    fn start() -> Fields {
        let mut f = Map::new();
        f.insert("n".into(), json!(0));
        f
    }

    fn go(tree: &Node, order: ReplyOrder) -> Run {
        run(tree, start(), order, MAX_STEPS, simulated_participant).expect("run completes")
    }

    fn names(r: &Run) -> Vec<&str> {
        r.dispatches.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn sequence_in_order() {
        let t = Node::new("sequence")
            .child(p("alpha"))
            .child(Node::new("participant").attr("ref", "bravo"))
            .child(Node::new("participant").attr("charly", Value::Null));
        let r = go(&t, ReplyOrder::InOrder);
        assert_eq!(names(&r), ["alpha", "bravo", "charly"]);
        assert_eq!(r.final_fields["n"], json!(3));
        assert_eq!(r.final_fields["last"], json!("charly"));
        assert!(!r.final_fields.contains_key("params"));
        assert_eq!(r.dispatches[1].1["params"], json!({"ref": "bravo"}));
    }

    #[test]
    fn concurrence_dispatches_all_and_first_reply_wins() {
        let t = Node::new("concurrence")
            .child(p("alpha"))
            .child(p("bravo"))
            .child(p("charly"));
        let r = go(&t, ReplyOrder::InOrder);
        assert_eq!(names(&r), ["alpha", "bravo", "charly"]);
        assert_eq!(r.final_fields["last"], json!("alpha"));
        assert_eq!(r.final_fields["n"], json!(1));
        let r = go(&t, ReplyOrder::Reversed);
        assert_eq!(r.final_fields["last"], json!("charly"));
        // Each branch got a copy of the applied fields.
        assert!(r.dispatches.iter().all(|(_, f)| f["n"] == json!(0)));
    }

    #[test]
    fn concurrence_count_and_instant_branches() {
        let t = Node::new("concurrence")
            .attr("count", 1)
            .child(p("alpha"))
            .child(p("bravo"));
        let r = go(&t, ReplyOrder::Reversed);
        assert_eq!(names(&r), ["bravo"]);
        // A branch skipped by `if` replies instantly and wins.
        let t = Node::new("concurrence")
            .child(p("alpha"))
            .child(Node::new("set").attr("f:x", 1));
        let r = go(&t, ReplyOrder::InOrder);
        assert_eq!(names(&r), ["alpha"]);
        assert_eq!(r.final_fields["x"], json!(1));
        assert_eq!(r.final_fields["n"], json!(0));
        let t = Node::new("concurrence").attr("count", 0).child(p("alpha"));
        assert!(go(&t, ReplyOrder::InOrder).dispatches.is_empty());
    }

    #[test]
    fn if_branches() {
        let t = |k: i64| {
            Node::new("sequence").child(p("alpha")).child(
                Node::new("if")
                    .attr("test", format!("${{f:n}} > {k}"))
                    .child(p("bravo"))
                    .child(p("charly")),
            )
        };
        assert_eq!(names(&go(&t(0), ReplyOrder::InOrder)), ["alpha", "bravo"]);
        assert_eq!(names(&go(&t(5), ReplyOrder::InOrder)), ["alpha", "charly"]);
        // Condition-child form.
        let t = Node::new("if")
            .child(Node::new("set").attr("f:ok", true))
            .child(p("bravo"))
            .child(p("charly"));
        assert_eq!(names(&go(&t, ReplyOrder::InOrder)), ["bravo"]);
        // Common `if` attribute.
        let t = Node::new("sequence")
            .child(p("alpha").attr("if", "${f:n} > 3"))
            .child(p("bravo").attr("unless", "${f:n} > 3"));
        assert_eq!(names(&go(&t, ReplyOrder::InOrder)), ["bravo"]);
    }

    #[test]
    fn cursor_commands() {
        // rewind via __command__ until n reaches 3.
        let t = Node::new("cursor")
            .child(p("alpha"))
            .child(
                p("bravo")
                    .attr("command", json!(["rewind"]))
                    .attr("if", "${f:n} < 3"),
            )
            .child(p("charly"));
        assert_eq!(
            names(&go(&t, ReplyOrder::InOrder)),
            ["alpha", "bravo", "alpha", "charly"]
        );
        // skip 1
        let t = Node::new("cursor")
            .child(p("alpha").attr("command", json!(["skip", 1])))
            .child(p("bravo"))
            .child(p("charly"));
        assert_eq!(names(&go(&t, ReplyOrder::InOrder)), ["alpha", "charly"]);
        // break (plain string)
        let t = Node::new("cursor")
            .child(p("alpha").attr("command", "break"))
            .child(p("bravo"));
        let r = go(&t, ReplyOrder::InOrder);
        assert_eq!(names(&r), ["alpha"]);
        assert!(!r.final_fields.contains_key("__command__"));
        // jump by name
        let t = Node::new("cursor")
            .child(p("alpha").attr("command", json!(["jump", "charly"])))
            .child(p("bravo"))
            .child(p("charly"));
        assert_eq!(names(&go(&t, ReplyOrder::InOrder)), ["alpha", "charly"]);
    }

    #[test]
    fn cursor_break_if_and_rewind_if() {
        let t = Node::new("cursor")
            .attr("break_if", "${f:n} > 1")
            .child(p("alpha"))
            .child(p("bravo"))
            .child(p("charly"));
        assert_eq!(names(&go(&t, ReplyOrder::InOrder)), ["alpha", "bravo"]);
        let t = Node::new("cursor").attr("break_if", true).child(p("alpha"));
        assert!(go(&t, ReplyOrder::InOrder).dispatches.is_empty());
        let t = Node::new("cursor")
            .attr("rewind_if", "${f:n} < 4")
            .child(p("alpha"))
            .child(p("bravo"));
        assert_eq!(
            names(&go(&t, ReplyOrder::InOrder)),
            ["alpha", "alpha", "alpha", "alpha", "bravo"]
        );
    }

    #[test]
    fn runaway_cursor_hits_the_step_limit() {
        let t = Node::new("cursor")
            .attr("rewind_if", true)
            .child(p("alpha"));
        let e = run(
            &t,
            start(),
            ReplyOrder::InOrder,
            1_000,
            simulated_participant,
        );
        assert_eq!(e.expect_err("runaway"), RefError::StepLimit(1_000));
    }

    #[test]
    fn random_trees_complete() {
        for seed in 0..500 {
            let t = random_tree(seed, 4);
            for order in [
                ReplyOrder::InOrder,
                ReplyOrder::Reversed,
                ReplyOrder::Seeded(seed),
            ] {
                let r = run(&t, start(), order, MAX_STEPS, simulated_participant);
                assert!(r.is_ok(), "seed {seed}: {r:?}\n{t:?}");
            }
        }
        assert_eq!(random_tree(7, 4), random_tree(7, 4));
    }
}
