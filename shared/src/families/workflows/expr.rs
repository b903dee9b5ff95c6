//! Dollar substitution and condition strings (Ruote semantics). See the
//! module docs of [`super`].
//!
//! Three pure pieces the engine calls while it reads attributes
//! (research/workflows.md §4–§6):
//!
//! * [`substitute`] / [`substitute_value`] / [`substitute_attrs`] — Ruote's
//!   `${…}` substitution (rufus-dollar: innermost first, `\${` escapes,
//!   missing → `''`, non-strings in Ruby `inspect` form, `${'key}` quotes)
//!   followed by the *literal* step: a whole string `$f:x`, `$v:x` or `$x`
//!   is replaced by the raw JSON value (arrays stay arrays, missing → null).
//! * [`condition`] — Ruote's condition strings (`if`, `unless`, `test`,
//!   `over_if`, `break_if`, `rewind_if`, `that`): substitution first, then a
//!   small Ruby-literal evaluator with Ruby's typing (`2 == '2'` is false,
//!   `2000 == 2000` is true whether the field held a number or a string).
//! * [`duration`] / [`when_from`] — rufus-scheduler durations (`10s`,
//!   `2h30m`, `1.5d`, a bare number = seconds) and absolute times.
//!
//! Nothing here evaluates code: `${r:…}` is refused with an error saying so.
//!
//! Where Ruote is plainly buggy this module does better, deliberately (each
//! is pinned by a test named `better_*`):
//! * an escaped `\${…}` is kept (backslash included, as rufus-dollar does)
//!   but substitution goes on in the rest of the string (rufus stops at it);
//!   a stray `}` before a `${…}` does not stop substitution either;
//! * a self-referencing value (`${a}` whose value is `${a}`) is an error
//!   after [`MAX_SUBSTITUTIONS`], not an endless loop;
//! * unquoted multi-word strings compare as the words joined by one space
//!   (`some dude == some dude` is true; Ruote says false, an artefact of
//!   parsing them as Ruby method calls);
//! * `X is empty` works for any X (Ruote needs X to end with a quote or a
//!   bracket, else `foo is empty` is *true*); `this set` is a plain `set`
//!   test (Ruote's `/is$/` check made it false);
//! * numbers with leading zeros (`0123`) are strings, not octal (ruote #93);
//! * a condition Ruote would silently read as a truthy string because it
//!   does not parse (`(a == b`, `a == 'b`) is an [`ExprError::Syntax`] with
//!   the column; only the documented empty-operand shapes (`' == a'`, from a
//!   missing field) keep Ruote's fallback and evaluate to false;
//! * `=~` runs on a small built-in backtracking matcher (the `regex` crate
//!   is not a dependency of this crate): literals, `.`, classes, `\d\w\s`,
//!   anchors, groups, alternation, greedy/lazy quantifiers, flags `i m x`;
//!   look-arounds and back-references are an error, never a wrong answer.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value};

/// How many `${…}` replacements one string may go through before it is an
/// error (a value that contains its own reference would loop forever).
pub const MAX_SUBSTITUTIONS: usize = 1_000;

/// Budget of matcher steps for one `=~` (a pathological pattern is an error).
const REGEX_STEP_BUDGET: u64 = 1_000_000;
/// Nesting budget of the matcher's recursion (repeated groups recurse).
const REGEX_DEPTH_BUDGET: u32 = 600;

/// Errors of substitution, conditions and durations. The engine turns them
/// into the expression's error (Ruote: a process error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// `${r:…}`: Ruote evaluates Ruby here (when allowed); Switchyard never
    /// evaluates code.
    #[error(
        "cannot evaluate >{code}<: ${{r:…}} is Ruby code and Switchyard never evaluates code (ruby_eval_allowed is always false)"
    )]
    RubyEval { code: String },
    /// Substitution kept producing new `${…}` (a self-referencing value).
    #[error(
        "too many ${{…}} substitutions (more than {MAX_SUBSTITUTIONS}) in >{text}<: a value refers to itself"
    )]
    TooManySubstitutions { text: String },
    /// The condition does not parse; `column` is 1-based, in characters,
    /// in the condition after substitution.
    #[error(
        "couldn't interpret >{text}< (column {column}: {message}), if it comes from a ${{xx}} construct, please use ${{\"xx}} or ${{'yy}}"
    )]
    Syntax {
        text: String,
        column: usize,
        message: String,
    },
    /// A comparison Ruby refuses (`'abc' > 3`, `nil < 1`, arrays…).
    #[error("couldn't interpret >{text}<: {message}")]
    Incomparable { text: String, message: String },
    /// A `=~` pattern this module cannot run.
    #[error("bad regular expression /{pattern}/: {message}")]
    Regex { pattern: String, message: String },
    /// Not a duration / time.
    #[error("cannot parse '{text}' as a duration: {message}")]
    Duration { text: String, message: String },
}

// ---------------------------------------------------------------------------
// Lookups
// ---------------------------------------------------------------------------

/// Where substitution and conditions read fields, variables and the special
/// keys. The engine implements it over the workitem and the expression's
/// variable scope chain; [`Scope`] is the flat version.
pub trait Lookup {
    /// A workitem field by dot path (`customer.address.1`); `None` when
    /// missing. See [`lookup_path`].
    fn field(&self, path: &str) -> Option<Value>;
    /// A variable by dot path, as Ruote's `lookup_variable`: the key may
    /// start with `/` (the process's root scope) or `//` (engine
    /// variables); the implementation walks its scope chain.
    fn var(&self, path: &str) -> Option<Value>;
    /// The special keys `fei`, `wfid`, `subid` (and `sub_wfid`), `expid`,
    /// `engine_id`, `mnemo_id`; `None` by default (substituted as `''`).
    /// `tags`, `tag` and `full_tag` are read from the field `__tags__`.
    fn special(&self, _key: &str) -> Option<Value> {
        None
    }
}

/// The flat lookup: one field map, one variable map (the engine's own
/// implementation walks nested scopes).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub fields: &'a Map<String, Value>,
    pub vars: &'a Map<String, Value>,
}

impl<'a> Scope<'a> {
    pub fn new(fields: &'a Map<String, Value>, vars: &'a Map<String, Value>) -> Self {
        Scope { fields, vars }
    }
}

impl Lookup for Scope<'_> {
    fn field(&self, path: &str) -> Option<Value> {
        lookup_path(self.fields, path).cloned()
    }

    fn var(&self, path: &str) -> Option<Value> {
        // One flat map is both the local and the root scope; engine-level
        // variables (`//x`) do not exist here.
        if path.starts_with("//") {
            return None;
        }
        lookup_path(self.vars, path.strip_prefix('/').unwrap_or(path)).cloned()
    }
}

/// Ruote's `lookup`: split on `.`, an all-digits (optionally negative) key
/// indexes an array (negative from the end), any key indexes an object.
/// When the dotted path finds nothing, the literal key is tried too (a
/// `set` writes `a.b` literally when `a` does not exist; Ruote could not
/// read it back).
pub fn lookup_path<'v>(root: &'v Map<String, Value>, path: &str) -> Option<&'v Value> {
    let mut parts = path.split('.');
    let first = parts.next().unwrap_or("");
    let mut cur = root.get(first);
    for key in parts {
        cur = match cur {
            Some(Value::Object(m)) => m.get(key),
            Some(Value::Array(a)) => index_array(a, key),
            _ => None,
        };
        if cur.is_none() {
            break;
        }
    }
    cur.or_else(|| root.get(path))
}

fn index_array<'v>(a: &'v [Value], key: &str) -> Option<&'v Value> {
    let digits = key.strip_prefix('-').unwrap_or(key);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: usize = digits.parse().ok()?;
    if key.starts_with('-') {
        a.len().checked_sub(n).and_then(|i| a.get(i))
    } else {
        a.get(n)
    }
}

// ---------------------------------------------------------------------------
// Ruby rendering
// ---------------------------------------------------------------------------

/// Ruby's `inspect` of a JSON value (`["a", "b"]`, `{"a"=>1}`, `nil`,
/// `2.31`, `2.0`), as rufus-dollar inserts non-string values.
pub fn inspect(v: &Value) -> String {
    match v {
        Value::Null => "nil".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => ruby_number(n),
        Value::String(s) => inspect_str(s),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(inspect).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}=>{}", inspect_str(k), inspect(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// What `${…}` inserts for a value: strings as they are, missing/null as
/// `''`, anything else in [`inspect`] form.
pub fn render(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => inspect(other),
    }
}

fn ruby_number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    ruby_float(n.as_f64().unwrap_or(0.0))
}

fn ruby_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        // Ruby: 1.0e+20, 1.5e-05
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mant = if mant.contains('.') {
            mant.to_string()
        } else {
            format!("{mant}.0")
        };
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mant}e{sign}{digits:0>2}");
    }
    let s = format!("{f}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// Ruby's `String#inspect` (double quotes, backslash escapes).
pub fn inspect_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{1b}' => out.push_str("\\e"),
            '#' if matches!(chars.peek(), Some('{' | '$' | '@')) => out.push_str("\\#"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------
// Dollar substitution
// ---------------------------------------------------------------------------

/// Substitutes one string: `${…}` (always a string result), then the
/// literal step (`$f:x`, `$v:x`, `$x` as the whole string → the raw value,
/// `null` when missing).
pub fn substitute<L: Lookup + ?Sized>(s: &str, ctx: &L) -> Result<Value, ExprError> {
    let text = dsub(s, ctx)?;
    Ok(literal_sub(text, ctx))
}

/// Only the `${…}` step: the string with its references replaced (no raw
/// values). What conditions and keys use.
pub fn substitute_str<L: Lookup + ?Sized>(s: &str, ctx: &L) -> Result<String, ExprError> {
    dsub(s, ctx)
}

/// Substitutes a JSON value: strings as [`substitute`], arrays item by item,
/// objects keys (string step only) and values; other values unchanged.
pub fn substitute_value<L: Lookup + ?Sized>(v: &Value, ctx: &L) -> Result<Value, ExprError> {
    Ok(match v {
        Value::String(s) => substitute(s, ctx)?,
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| substitute_value(x, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(m) => Value::Object(substitute_attrs(m, ctx)?),
        other => other.clone(),
    })
}

/// Substitutes an attribute map: keys (Ruote substitutes keys too, e.g.
/// `set 'f_${v:v}' => 1`) and values. A key whose substitution is a raw
/// non-string value uses its rendered form.
pub fn substitute_attrs<L: Lookup + ?Sized>(
    attrs: &Map<String, Value>,
    ctx: &L,
) -> Result<Map<String, Value>, ExprError> {
    let mut out = Map::with_capacity(attrs.len());
    for (k, v) in attrs {
        let key = match substitute(k, ctx)? {
            Value::String(s) => s,
            other => render(Some(&other)),
        };
        out.insert(key, substitute_value(v, ctx)?);
    }
    Ok(out)
}

/// rufus-dollar's loop: find the first `}` (from `offset`), the last `${`
/// before it, replace, start again from the beginning.
fn dsub<L: Lookup + ?Sized>(s: &str, ctx: &L) -> Result<String, ExprError> {
    let mut text = s.to_string();
    let mut offset: Option<usize> = None;
    let mut rounds = 0usize;
    loop {
        let from = offset.unwrap_or(0);
        let Some(j) = text.get(from..).and_then(|t| t.find('}')).map(|x| x + from) else {
            return Ok(text);
        };
        let t = &text[..j];
        let Some(i) = t.rfind("${") else {
            // Ruote stops at a stray `}`; we look further.
            offset = Some(j + 1);
            continue;
        };
        if offset.is_none()
            && let Some(iii) = t.rfind('{')
            && iii > i + 1
        {
            // a bare `{` inside `${…{…}…}`: this `}` closes it, not the `${`
            offset = Some(j + 1);
            continue;
        }
        if i > 0 && text.as_bytes()[i - 1] == b'\\' {
            // escaped: kept as is (backslash included), go on after it
            offset = Some(j + 1);
            continue;
        }
        rounds += 1;
        if rounds > MAX_SUBSTITUTIONS {
            return Err(ExprError::TooManySubstitutions {
                text: s.to_string(),
            });
        }
        let mut key = &text[i + 2..j];
        let mut quote = false;
        if key.len() > 1 && (key.starts_with('\'') || key.starts_with('"')) {
            key = &key[1..];
            quote = true;
        }
        let value = dict(key, ctx)?;
        let mut rendered = render(value.as_ref());
        if quote {
            rendered = inspect_str(&rendered);
        }
        text = format!("{}{}{}", &text[..i], rendered, &text[j + 1..]);
        offset = None;
    }
}

/// Ruote's `Dollar::Dict#[]`.
fn dict<L: Lookup + ?Sized>(key: &str, ctx: &L) -> Result<Option<Value>, ExprError> {
    match key {
        "fei" | "wfid" | "subid" | "expid" | "engine_id" | "mnemo_id" => {
            return Ok(ctx.special(key));
        }
        "sub_wfid" => return Ok(ctx.special("subid")),
        "tags" => return Ok(ctx.field("__tags__")),
        "tag" => return Ok(tags(ctx).and_then(|t| t.last().cloned())),
        "full_tag" => {
            let t = tags(ctx).unwrap_or_default();
            let parts: Vec<String> = t.iter().map(|v| render(Some(v))).collect();
            return Ok(Some(Value::String(parts.join("/"))));
        }
        _ => {}
    }
    let (prefix, k) = match key.find(':') {
        None => ("f", key),
        Some(i) => {
            let pr = &key[..i];
            let two: String = pr.chars().take(2).collect();
            let pr = if two == "vf" || two == "fv" {
                &pr[..2]
            } else {
                pr.get(..pr.chars().next().map_or(0, char::len_utf8))
                    .unwrap_or("")
            };
            (pr, &key[i + 1..])
        }
    };
    let one = |p: char| -> Result<Option<Value>, ExprError> {
        match p {
            'f' => Ok(ctx.field(k)),
            'v' => Ok(ctx.var(k)),
            'r' => Err(ExprError::RubyEval {
                code: k.to_string(),
            }),
            _ => Ok(None),
        }
    };
    let mut chars = prefix.chars();
    let Some(first) = chars.next() else {
        return Ok(None);
    };
    let v = one(first)?;
    if v.as_ref().is_some_and(|v| !v.is_null()) {
        return Ok(v);
    }
    match chars.next() {
        Some(second) => one(second),
        None => Ok(v),
    }
}

fn tags<L: Lookup + ?Sized>(ctx: &L) -> Option<Vec<Value>> {
    match ctx.field("__tags__") {
        Some(Value::Array(a)) => Some(a),
        _ => None,
    }
}

/// Ruote's `literal_sub`: the whole string `$v:x`/`$var:x`/`$variable:x`
/// → the variable, `$f:x`/`$fld:x`/`$field:x`/`$x` → the field, raw.
fn literal_sub<L: Lookup + ?Sized>(s: String, ctx: &L) -> Value {
    let Some(rest) = s.strip_prefix('$') else {
        return Value::String(s);
    };
    let plain = |p: &str| {
        !p.is_empty()
            && !p
                .chars()
                .any(|c| c == '{' || c == '}' || c == '$' || c.is_whitespace())
    };
    if let Some((pre, path)) = rest.split_once(':') {
        if !plain(path) {
            return Value::String(s);
        }
        match pre {
            "variable" | "var" | "v" => ctx.var(path).unwrap_or(Value::Null),
            "field" | "fld" | "f" => ctx.field(path).unwrap_or(Value::Null),
            _ => Value::String(s),
        }
    } else if plain(rest) {
        ctx.field(rest).unwrap_or(Value::Null)
    } else {
        Value::String(s)
    }
}

// ---------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------

/// Evaluates a condition string: `${…}` substitution (and the literal step:
/// a whole `$f:flag` holding `true` is that boolean), then [`evaluate`].
pub fn condition<L: Lookup + ?Sized>(expr: &str, ctx: &L) -> Result<bool, ExprError> {
    match substitute(expr, ctx)? {
        Value::Bool(b) => Ok(b),
        Value::Null => Ok(false),
        Value::String(s) => evaluate(&s),
        other => evaluate(&inspect(&other)),
    }
}

/// A condition attribute as found in the tree: JSON/radial booleans are used
/// as they are, strings go through [`condition`], null is false, numbers
/// and containers are evaluated in their Ruby form (`0` is true).
pub fn condition_value<L: Lookup + ?Sized>(v: &Value, ctx: &L) -> Result<bool, ExprError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        Value::String(s) => condition(s, ctx),
        other => evaluate(&inspect(other)),
    }
}

/// Ruote's `Condition.true?` on an already substituted string (the `of`
/// expression builds `"<given> == X"` itself).
pub fn evaluate(text: &str) -> Result<bool, ExprError> {
    let unescaped = text
        .replace("&amp;", "&")
        .replace("&gt;", ">")
        .replace("&lt;", "<");
    let s = unescaped.trim();
    if s.is_empty() {
        return Ok(false);
    }
    if let Some(r) = postfix(s)? {
        return Ok(r);
    }
    let v = eval_text(s)?;
    Ok(truthy(&v))
}

/// `X [is] [not] set|null|empty` and `X [is] [not] in [..]|{..}`.
fn postfix(s: &str) -> Result<Option<bool>, ExprError> {
    for word in ["set", "null", "empty"] {
        let Some((left, is, not)) = postfix_parts(s, word) else {
            continue;
        };
        let r = match word {
            "set" => {
                // ` is set` (a missing field before it): the left is `is`
                let v = if left.is_empty() || (left == "is" && !is) {
                    Val::Str(String::new())
                } else {
                    eval_text(left)?
                };
                !matches!(&v, Val::Nil) && !matches!(&v, Val::Str(s) if s.is_empty())
            }
            "null" => {
                if left.is_empty() || (left == "is" && !is) {
                    false
                } else {
                    matches!(eval_text(left)?, Val::Nil)
                }
            }
            _ => {
                if left.is_empty() || (left == "is" && !is) {
                    true
                } else {
                    match eval_text(left)? {
                        Val::Nil => true,
                        Val::Str(s) => s.is_empty(),
                        Val::Arr(a) => a.is_empty(),
                        Val::Hash(h) => h.is_empty(),
                        _ => false,
                    }
                }
            }
        };
        return Ok(Some(r != not));
    }
    // membership: the first ` in ` followed by a bracketed literal to the end
    if s.ends_with(']') || s.ends_with('}') {
        let mut search = 0;
        while let Some(found) = s[search..].find(" in ") {
            let at = search + found;
            let coll = s[at + 4..].trim_start();
            search = at + 1;
            if !(coll.starts_with('[') || coll.starts_with('{')) || at == 0 {
                continue;
            }
            let mut left = s[..at].trim_end();
            let mut not = false;
            if let Some(l) = strip_word(left, "not") {
                not = true;
                left = l;
            }
            if let Some(l) = strip_word(left, "is") {
                left = l;
            }
            let r = (|| -> Option<bool> {
                let x = eval_text(left).ok()?;
                match eval_text(coll).ok()? {
                    Val::Arr(a) => Some(a.iter().any(|e| ruby_eq(e, &x))),
                    Val::Hash(h) => Some(h.iter().any(|(k, _)| ruby_eq(k, &x))),
                    _ => None,
                }
            })();
            // Ruote rescues anything here: bad syntax → false
            return Ok(Some(r.is_some_and(|b| b != not)));
        }
    }
    Ok(None)
}

/// Splits `left [is] [not] word`; the left may be empty (a missing field).
fn postfix_parts<'s>(s: &'s str, word: &str) -> Option<(&'s str, bool, bool)> {
    let mut left = if s == word { "" } else { strip_word(s, word)? };
    let mut not = false;
    let mut is = false;
    if left == "not" || left == "is not" {
        return Some(("", left == "is not", true));
    }
    if left == "is" {
        return Some(("is", false, false));
    }
    if let Some(l) = strip_word(left, "not") {
        not = true;
        left = l;
        if left == "is" {
            return Some(("", true, true));
        }
    }
    if let Some(l) = strip_word(left, "is") {
        is = true;
        left = l;
    }
    Some((left, is, not))
}

/// `"x  word"` → `"x"`: the word at the end, after at least one space, with
/// something non-blank before it.
fn strip_word<'s>(s: &'s str, word: &str) -> Option<&'s str> {
    let rest = s.strip_suffix(word)?;
    if !rest.ends_with(' ') {
        return None;
    }
    let left = rest.trim_end();
    if left.is_empty() { None } else { Some(left) }
}

/// A value of the condition language (Ruby literals).
#[derive(Debug, Clone)]
enum Val {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Arr(Vec<Val>),
    Hash(Vec<(Val, Val)>),
    Re(Box<Regex>),
}

fn truthy(v: &Val) -> bool {
    match v {
        Val::Nil | Val::Bool(false) => false,
        Val::Str(s) => !s.is_empty(),
        Val::Arr(a) => !a.is_empty(),
        Val::Hash(h) => !h.is_empty(),
        _ => true,
    }
}

fn ruby_eq(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Nil, Val::Nil) => true,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Int(x), Val::Int(y)) => x == y,
        (Val::Int(x), Val::Float(y)) | (Val::Float(y), Val::Int(x)) => (*x as f64) == *y,
        (Val::Float(x), Val::Float(y)) => x == y,
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::Arr(x), Val::Arr(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| ruby_eq(a, b))
        }
        (Val::Hash(x), Val::Hash(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.iter().any(|(k2, v2)| ruby_eq(k, k2) && ruby_eq(v, v2)))
        }
        (Val::Re(x), Val::Re(y)) => x.source == y.source && x.icase == y.icase,
        _ => false,
    }
}

fn type_name(v: &Val) -> &'static str {
    match v {
        Val::Nil => "nil",
        Val::Bool(_) => "boolean",
        Val::Int(_) => "Integer",
        Val::Float(_) => "Float",
        Val::Str(_) => "String",
        Val::Arr(_) => "Array",
        Val::Hash(_) => "Hash",
        Val::Re(_) => "Regexp",
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Word(String),
    Re(String, String),
    LParen,
    RParen,
    LBrack,
    RBrack,
    LBrace,
    RBrace,
    Comma,
    Arrow,
    Cmp(&'static str),
    And,
    Or,
    AndAnd,
    OrOr,
    Not,
    Bang,
}

struct Token {
    tok: Tok,
    /// char column, 1-based
    col: usize,
}

fn syntax(text: &str, col: usize, message: impl Into<String>) -> ExprError {
    ExprError::Syntax {
        text: text.to_string(),
        column: col,
        message: message.into(),
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, ExprError> {
    let cs: Vec<char> = text.chars().collect();
    let mut out: Vec<Token> = Vec::new();
    let mut i = 0;
    let starts_operand = |out: &Vec<Token>| match out.last() {
        None => true,
        Some(t) => !matches!(
            t.tok,
            Tok::Str(_) | Tok::Word(_) | Tok::Re(..) | Tok::RParen | Tok::RBrack | Tok::RBrace
        ),
    };
    let is_op_start = |cs: &[char], i: usize| -> bool {
        let c = cs[i];
        let n = cs.get(i + 1).copied();
        matches!(c, '<' | '>')
            || (c == '=' && matches!(n, Some('=' | '~' | '>')))
            || (c == '!' && n == Some('='))
            || (c == '&' && n == Some('&'))
            || (c == '|' && n == Some('|'))
    };
    while i < cs.len() {
        let c = cs[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = cs[i..cs.len().min(i + 2)].iter().collect();
        let (tok, len) = match c {
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            '[' => (Tok::LBrack, 1),
            ']' => (Tok::RBrack, 1),
            '{' => (Tok::LBrace, 1),
            '}' => (Tok::RBrace, 1),
            ',' => (Tok::Comma, 1),
            '\'' | '"' => {
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match cs.get(j) {
                        None => return Err(syntax(text, col, "unterminated string")),
                        Some(&q) if q == c => break,
                        Some('\\') => {
                            let e = cs
                                .get(j + 1)
                                .copied()
                                .ok_or_else(|| syntax(text, col, "unterminated string"))?;
                            if c == '"' {
                                s.push(match e {
                                    'n' => '\n',
                                    't' => '\t',
                                    'r' => '\r',
                                    'e' => '\u{1b}',
                                    '0' => '\0',
                                    other => other,
                                });
                            } else if e == '\'' || e == '\\' {
                                s.push(e);
                            } else {
                                s.push('\\');
                                s.push(e);
                            }
                            j += 2;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            j += 1;
                        }
                    }
                }
                (Tok::Str(s), j + 1 - i)
            }
            '/' if starts_operand(&out) => match regex_literal(&cs, i) {
                Some((src, flags, len)) => (Tok::Re(src, flags), len),
                None => {
                    let (w, len) = word(&cs, i, &is_op_start);
                    (Tok::Word(w), len)
                }
            },
            _ if two == "==" || two == "!=" || two == ">=" || two == "<=" || two == "=~" => {
                let op = match two.as_str() {
                    "==" => "==",
                    "!=" => "!=",
                    ">=" => ">=",
                    "<=" => "<=",
                    _ => "=~",
                };
                (Tok::Cmp(op), 2)
            }
            _ if two == "=>" => (Tok::Arrow, 2),
            _ if two == "&&" => (Tok::AndAnd, 2),
            _ if two == "||" => (Tok::OrOr, 2),
            '<' => (Tok::Cmp("<"), 1),
            '>' => (Tok::Cmp(">"), 1),
            '!' => (Tok::Bang, 1),
            _ => {
                let (w, len) = word(&cs, i, &is_op_start);
                let tok = match w.as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    _ => Tok::Word(w),
                };
                (tok, len)
            }
        };
        out.push(Token { tok, col });
        i += len;
    }
    Ok(out)
}

fn word(
    cs: &[char],
    start: usize,
    is_op_start: &dyn Fn(&[char], usize) -> bool,
) -> (String, usize) {
    let mut j = start;
    while j < cs.len() {
        let c = cs[j];
        if c.is_whitespace()
            || matches!(c, '(' | ')' | '[' | ']' | '{' | '}' | ',' | '\'' | '"')
            || (j > start && is_op_start(cs, j))
        {
            break;
        }
        j += 1;
    }
    if j == start {
        j += 1;
    }
    (cs[start..j].iter().collect(), j - start)
}

/// `/src/flags` when the closing slash is followed by flags and a
/// delimiter; `None` for words like `/usr/bin`.
fn regex_literal(cs: &[char], start: usize) -> Option<(String, String, usize)> {
    let mut j = start + 1;
    let mut src = String::new();
    while j < cs.len() {
        match cs[j] {
            '\\' if j + 1 < cs.len() => {
                if cs[j + 1] != '/' {
                    src.push('\\');
                }
                src.push(cs[j + 1]);
                j += 2;
            }
            '/' => {
                let mut k = j + 1;
                let mut flags = String::new();
                while k < cs.len() && matches!(cs[k], 'i' | 'm' | 'x' | 'o' | 'u' | 'n') {
                    flags.push(cs[k]);
                    k += 1;
                }
                let delimited = k == cs.len()
                    || cs[k].is_whitespace()
                    || matches!(cs[k], ')' | ']' | '}' | ',' | '=' | '!' | '&' | '|');
                return delimited.then_some((src, flags, k - start));
            }
            c => {
                src.push(c);
                j += 1;
            }
        }
    }
    None
}

struct Parser<'t> {
    text: &'t str,
    toks: Vec<Token>,
    pos: usize,
}

/// Parses and evaluates an expression (no postfix forms).
fn eval_text(text: &str) -> Result<Val, ExprError> {
    let toks = tokenize(text)?;
    let mut p = Parser { text, toks, pos: 0 };
    if p.toks.is_empty() {
        return Ok(Val::Str(String::new()));
    }
    let v = p.low()?;
    if let Some(t) = p.toks.get(p.pos) {
        return Err(syntax(text, t.col, "unexpected token"));
    }
    Ok(v)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn col(&self) -> usize {
        self.toks
            .get(self.pos)
            .map_or(self.text.chars().count() + 1, |t| t.col)
    }

    fn err(&self, msg: &str) -> ExprError {
        syntax(self.text, self.col(), msg)
    }

    /// `and` / `or` (Ruby: same precedence, left to right).
    fn low(&mut self) -> Result<Val, ExprError> {
        let mut v = self.not_kw()?;
        loop {
            match self.peek() {
                Some(Tok::And) => {
                    self.pos += 1;
                    let r = self.not_kw()?;
                    v = if truthy(&v) { r } else { v };
                }
                Some(Tok::Or) => {
                    self.pos += 1;
                    let r = self.not_kw()?;
                    v = if truthy(&v) { v } else { r };
                }
                _ => return Ok(v),
            }
        }
    }

    /// `not x`
    fn not_kw(&mut self) -> Result<Val, ExprError> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            let v = self.not_kw()?;
            return Ok(Val::Bool(!truthy(&v)));
        }
        self.oror()
    }

    fn oror(&mut self) -> Result<Val, ExprError> {
        let mut v = self.andand()?;
        while self.peek() == Some(&Tok::OrOr) {
            self.pos += 1;
            let r = self.andand()?;
            v = if truthy(&v) { v } else { r };
        }
        Ok(v)
    }

    fn andand(&mut self) -> Result<Val, ExprError> {
        let mut v = self.cmp()?;
        while self.peek() == Some(&Tok::AndAnd) {
            self.pos += 1;
            let r = self.cmp()?;
            v = if truthy(&v) { r } else { v };
        }
        Ok(v)
    }

    fn cmp(&mut self) -> Result<Val, ExprError> {
        let left = self.operand()?;
        let Some(Tok::Cmp(op)) = self.peek().cloned() else {
            return left.ok_or_else(|| self.err("expected a value"));
        };
        let op_col = self.col();
        self.pos += 1;
        let right = self.operand()?;
        if let Some(Tok::Cmp(_)) = self.peek() {
            return Err(self.err("comparisons cannot be chained"));
        }
        let (left, right) = match (left, right) {
            (Some(l), Some(r)) => (l, r),
            (None, None) => return Ok(Val::Bool(false)),
            // One side empty (a missing field substituted to ''): Ruote
            // compares the raw trimmed sides as strings; one is empty.
            (l, r) => {
                if op == "=~" {
                    (
                        l.unwrap_or(Val::Str(String::new())),
                        r.unwrap_or(Val::Str(String::new())),
                    )
                } else {
                    return Ok(Val::Bool(op == "!="));
                }
            }
        };
        self.compare(op, &left, &right, op_col)
    }

    fn compare(&self, op: &str, l: &Val, r: &Val, _col: usize) -> Result<Val, ExprError> {
        let b = match op {
            "==" => ruby_eq(l, r),
            "!=" => !ruby_eq(l, r),
            "=~" => {
                let (subject, re) = match (l, r) {
                    (Val::Re(re), s) | (s, Val::Re(re)) => (s, re.as_ref().clone()),
                    (s, pat) => {
                        let src = match pat {
                            Val::Str(p) => p.clone(),
                            other => to_ruby_s(other),
                        };
                        (s, Regex::new(&src, "")?)
                    }
                };
                match subject {
                    Val::Str(s) => re.is_match(s)?,
                    _ => false,
                }
            }
            _ => {
                let ord = match (l, r) {
                    (Val::Int(a), Val::Int(b)) => a.partial_cmp(b),
                    (Val::Int(a), Val::Float(b)) => (*a as f64).partial_cmp(b),
                    (Val::Float(a), Val::Int(b)) => a.partial_cmp(&(*b as f64)),
                    (Val::Float(a), Val::Float(b)) => a.partial_cmp(b),
                    (Val::Str(a), Val::Str(b)) => a.as_bytes().partial_cmp(b.as_bytes()),
                    _ => {
                        return Err(ExprError::Incomparable {
                            text: self.text.to_string(),
                            message: format!(
                                "comparison of {} with {} failed",
                                type_name(l),
                                type_name(r)
                            ),
                        });
                    }
                };
                let Some(ord) = ord else {
                    return Ok(Val::Bool(false));
                };
                match op {
                    "<" => ord.is_lt(),
                    ">" => ord.is_gt(),
                    "<=" => ord.is_le(),
                    _ => ord.is_ge(),
                }
            }
        };
        Ok(Val::Bool(b))
    }

    /// One operand, or `None` when there is none here (an empty side).
    fn operand(&mut self) -> Result<Option<Val>, ExprError> {
        let Some(tok) = self.peek().cloned() else {
            return Ok(None);
        };
        let v = match tok {
            Tok::Bang => {
                // Ruby: `!` binds to the operand (`!a == b` is `(!a) == b`)
                self.pos += 1;
                let v = self
                    .operand()?
                    .ok_or_else(|| self.err("expected a value after '!'"))?;
                Val::Bool(!truthy(&v))
            }
            Tok::Not => {
                self.pos += 1;
                let v = self.not_kw()?;
                Val::Bool(!truthy(&v))
            }
            Tok::LParen => {
                self.pos += 1;
                let v = self.low()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(self.err("expected ')'"));
                }
                self.pos += 1;
                v
            }
            Tok::Str(s) => {
                self.pos += 1;
                Val::Str(s)
            }
            Tok::Re(src, flags) => {
                self.pos += 1;
                Val::Re(Box::new(Regex::new(&src, &flags)?))
            }
            Tok::LBrack => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(&Tok::RBrack) {
                        self.pos += 1;
                        break;
                    }
                    items.push(self.element()?);
                    match self.peek() {
                        Some(Tok::Comma) => self.pos += 1,
                        Some(Tok::RBrack) => {}
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
                Val::Arr(items)
            }
            Tok::LBrace => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    if self.peek() == Some(&Tok::RBrace) {
                        self.pos += 1;
                        break;
                    }
                    let k = self.element()?;
                    if self.peek() != Some(&Tok::Arrow) {
                        return Err(self.err("expected '=>'"));
                    }
                    self.pos += 1;
                    let v = self.element()?;
                    items.push((k, v));
                    match self.peek() {
                        Some(Tok::Comma) => self.pos += 1,
                        Some(Tok::RBrace) => {}
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                }
                Val::Hash(items)
            }
            Tok::Word(_) => {
                let mut words = Vec::new();
                while let Some(Tok::Word(w)) = self.peek() {
                    words.push(w.clone());
                    self.pos += 1;
                }
                bare(words)
            }
            _ => return Ok(None),
        };
        Ok(Some(v))
    }

    fn element(&mut self) -> Result<Val, ExprError> {
        self.operand()?.ok_or_else(|| self.err("expected a value"))
    }
}

/// A run of bare words: one word is a literal (`true`, `false`, `nil`, a
/// number) or a string; several are one string, words joined by a space
/// and arithmetic signs glued (`Loan / Grant` → `Loan/Grant`, as Ruote).
fn bare(words: Vec<String>) -> Val {
    if words.len() == 1 {
        let w = &words[0];
        return match w.as_str() {
            "true" => Val::Bool(true),
            "false" => Val::Bool(false),
            "nil" => Val::Nil,
            _ => number(w).unwrap_or_else(|| Val::Str(w.clone())),
        };
    }
    let glue = |w: &str| matches!(w, "/" | "+" | "-" | "*" | "%");
    let mut s = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 && !glue(w) && !glue(&words[i - 1]) {
            s.push(' ');
        }
        s.push_str(w);
    }
    Val::Str(s)
}

/// Ruby integer/float literals; leading zeros are strings (no octal).
fn number(w: &str) -> Option<Val> {
    let body = w.strip_prefix('-').unwrap_or(w);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (mantissa, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || (int.len() > 1 && int.starts_with('0')) {
        return None;
    }
    if let Some(f) = frac
        && !digits(f)
    {
        return None;
    }
    if let Some(e) = exp {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if !digits(e) {
            return None;
        }
    }
    if frac.is_none()
        && exp.is_none()
        && let Ok(i) = w.parse::<i64>()
    {
        return Some(Val::Int(i));
    }
    w.parse::<f64>().ok().map(Val::Float)
}

fn to_ruby_s(v: &Val) -> String {
    match v {
        Val::Nil => String::new(),
        Val::Bool(b) => b.to_string(),
        Val::Int(i) => i.to_string(),
        Val::Float(f) => ruby_float(*f),
        Val::Str(s) => s.clone(),
        Val::Re(r) => r.source.clone(),
        Val::Arr(a) => format!(
            "[{}]",
            a.iter().map(val_inspect).collect::<Vec<_>>().join(", ")
        ),
        Val::Hash(h) => format!(
            "{{{}}}",
            h.iter()
                .map(|(k, v)| format!("{}=>{}", val_inspect(k), val_inspect(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn val_inspect(v: &Val) -> String {
    match v {
        Val::Nil => "nil".to_string(),
        Val::Str(s) => inspect_str(s),
        Val::Re(r) => format!("/{}/", r.source),
        other => to_ruby_s(other),
    }
}

// ---------------------------------------------------------------------------
// A small backtracking matcher for `=~` (Ruby regexp subset)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Regex {
    source: String,
    icase: bool,
    dotall: bool,
    alts: Vec<Vec<Node>>,
}

#[derive(Debug, Clone)]
enum Node {
    Char(char),
    Any,
    Class(Vec<ClassItem>, bool),
    LineStart,
    LineEnd,
    TextStart,
    TextEnd,
    TextEndNl,
    WordB(bool),
    Group(Vec<Vec<Node>>),
    Repeat(Box<Node>, u32, Option<u32>, bool),
}

#[derive(Debug, Clone)]
enum ClassItem {
    Ch(char),
    Range(char, char),
    Digit(bool),
    Word(bool),
    Space(bool),
    Hex(bool),
}

struct ReParser<'a> {
    cs: Vec<char>,
    i: usize,
    src: &'a str,
    extended: bool,
}

impl Regex {
    fn new(src: &str, flags: &str) -> Result<Regex, ExprError> {
        let mut p = ReParser {
            cs: src.chars().collect(),
            i: 0,
            src,
            extended: flags.contains('x'),
        };
        let alts = p.alternation(0)?;
        if p.i < p.cs.len() {
            return Err(p.err("unmatched ')'"));
        }
        Ok(Regex {
            source: src.to_string(),
            icase: flags.contains('i'),
            dotall: flags.contains('m'),
            alts,
        })
    }

    fn is_match(&self, subject: &str) -> Result<bool, ExprError> {
        let text: Vec<char> = subject.chars().collect();
        let mut m = Matcher {
            re: self,
            text: &text,
            steps: 0,
            depth: 0,
            blown: false,
        };
        for start in 0..=text.len() {
            if m.alt(&self.alts, start, &mut |_, _| true) {
                return Ok(true);
            }
            if m.blown {
                return Err(ExprError::Regex {
                    pattern: self.source.clone(),
                    message: "too complex for this subject (step or depth budget exhausted)"
                        .to_string(),
                });
            }
        }
        Ok(false)
    }
}

impl ReParser<'_> {
    fn err(&self, msg: &str) -> ExprError {
        ExprError::Regex {
            pattern: self.src.to_string(),
            message: format!("{msg} at {}", self.i + 1),
        }
    }

    fn alternation(&mut self, depth: usize) -> Result<Vec<Vec<Node>>, ExprError> {
        if depth > 100 {
            return Err(self.err("groups nested too deeply"));
        }
        let mut alts = vec![Vec::new()];
        while self.i < self.cs.len() {
            let c = self.cs[self.i];
            match c {
                '|' => {
                    self.i += 1;
                    alts.push(Vec::new());
                }
                ')' => {
                    if depth == 0 {
                        return Err(self.err("unmatched ')'"));
                    }
                    break;
                }
                _ => {
                    let Some(atom) = self.atom(depth)? else {
                        continue;
                    };
                    let node = self.quantifier(atom)?;
                    if let Some(seq) = alts.last_mut() {
                        seq.push(node);
                    }
                }
            }
        }
        Ok(alts)
    }

    fn atom(&mut self, depth: usize) -> Result<Option<Node>, ExprError> {
        let c = self.cs[self.i];
        self.i += 1;
        Ok(Some(match c {
            c if self.extended && c.is_whitespace() => return Ok(None),
            '#' if self.extended => {
                while self.i < self.cs.len() && self.cs[self.i] != '\n' {
                    self.i += 1;
                }
                return Ok(None);
            }
            '.' => Node::Any,
            '^' => Node::LineStart,
            '$' => Node::LineEnd,
            '(' => {
                if self.cs.get(self.i) == Some(&'?') {
                    let next = self.cs.get(self.i + 1).copied();
                    match next {
                        Some(':') => self.i += 2,
                        Some('<') if !matches!(self.cs.get(self.i + 2), Some('=' | '!')) => {
                            while self.i < self.cs.len() && self.cs[self.i] != '>' {
                                self.i += 1;
                            }
                            self.i += 1;
                        }
                        _ => {
                            return Err(
                                self.err("look-arounds and inline options are not supported")
                            );
                        }
                    }
                }
                let alts = self.alternation(depth + 1)?;
                if self.cs.get(self.i) != Some(&')') {
                    return Err(self.err("missing ')'"));
                }
                self.i += 1;
                Node::Group(alts)
            }
            '[' => self.class()?,
            '\\' => {
                let e = *self
                    .cs
                    .get(self.i)
                    .ok_or_else(|| self.err("trailing backslash"))?;
                self.i += 1;
                match e {
                    'A' => Node::TextStart,
                    'z' => Node::TextEnd,
                    'Z' => Node::TextEndNl,
                    'b' => Node::WordB(true),
                    'B' => Node::WordB(false),
                    '1'..='9' => return Err(self.err("back-references are not supported")),
                    _ => match escape_item(e) {
                        Some(ClassItem::Ch(c)) => Node::Char(c),
                        Some(item) => Node::Class(vec![item], false),
                        None => return Err(self.err("unsupported escape")),
                    },
                }
            }
            '*' | '+' | '?' => return Err(self.err("nothing to repeat")),
            c => Node::Char(c),
        }))
    }

    fn class(&mut self) -> Result<Node, ExprError> {
        let mut negated = false;
        if self.cs.get(self.i) == Some(&'^') {
            negated = true;
            self.i += 1;
        }
        let mut items = Vec::new();
        let mut first = true;
        loop {
            let c = *self.cs.get(self.i).ok_or_else(|| self.err("missing ']'"))?;
            self.i += 1;
            if c == ']' && !first {
                break;
            }
            first = false;
            if c == '[' {
                return Err(self.err("nested or POSIX classes are not supported"));
            }
            let item = if c == '\\' {
                let e = *self
                    .cs
                    .get(self.i)
                    .ok_or_else(|| self.err("trailing backslash"))?;
                self.i += 1;
                escape_item(e).ok_or_else(|| self.err("unsupported escape"))?
            } else {
                ClassItem::Ch(c)
            };
            if let ClassItem::Ch(lo) = item
                && self.cs.get(self.i) == Some(&'-')
                && self.cs.get(self.i + 1).is_some_and(|c| *c != ']')
            {
                self.i += 1;
                let mut hi = self.cs[self.i];
                self.i += 1;
                if hi == '\\' {
                    hi = *self
                        .cs
                        .get(self.i)
                        .ok_or_else(|| self.err("trailing backslash"))?;
                    self.i += 1;
                }
                if hi < lo {
                    return Err(self.err("empty range in class"));
                }
                items.push(ClassItem::Range(lo, hi));
                continue;
            }
            items.push(item);
        }
        Ok(Node::Class(items, negated))
    }

    fn quantifier(&mut self, atom: Node) -> Result<Node, ExprError> {
        let Some(&c) = self.cs.get(self.i) else {
            return Ok(atom);
        };
        let (min, max) = match c {
            '*' => (0, None),
            '+' => (1, None),
            '?' => (0, Some(1)),
            '{' => {
                let rest: String = self.cs[self.i + 1..].iter().collect();
                let Some(end) = rest.find('}') else {
                    return Ok(atom);
                };
                let inner = &rest[..end];
                let parse = |s: &str| s.trim().parse::<u32>().ok();
                let bounds = match inner.split_once(',') {
                    None => parse(inner).map(|n| (n, Some(n))),
                    Some((a, b)) => {
                        let lo = if a.trim().is_empty() {
                            Some(0)
                        } else {
                            parse(a)
                        };
                        let hi = if b.trim().is_empty() {
                            Some(None)
                        } else {
                            parse(b).map(Some)
                        };
                        lo.zip(hi)
                    }
                };
                let Some((lo, hi)) = bounds else {
                    return Ok(atom); // a literal `{`, as Ruby
                };
                if hi.is_some_and(|h| h < lo) || lo > 10_000 {
                    return Err(self.err("bad repetition bounds"));
                }
                self.i += end + 1;
                (lo, hi)
            }
            _ => return Ok(atom),
        };
        self.i += 1;
        let mut greedy = true;
        match self.cs.get(self.i) {
            Some('?') => {
                greedy = false;
                self.i += 1;
            }
            Some('+') => self.i += 1, // possessive: treated as greedy
            _ => {}
        }
        if matches!(
            atom,
            Node::LineStart | Node::LineEnd | Node::TextStart | Node::TextEnd
        ) {
            return Ok(atom);
        }
        Ok(Node::Repeat(Box::new(atom), min, max, greedy))
    }
}

fn escape_item(e: char) -> Option<ClassItem> {
    Some(match e {
        'd' => ClassItem::Digit(true),
        'D' => ClassItem::Digit(false),
        'w' => ClassItem::Word(true),
        'W' => ClassItem::Word(false),
        's' => ClassItem::Space(true),
        'S' => ClassItem::Space(false),
        'h' => ClassItem::Hex(true),
        'H' => ClassItem::Hex(false),
        'n' => ClassItem::Ch('\n'),
        't' => ClassItem::Ch('\t'),
        'r' => ClassItem::Ch('\r'),
        'f' => ClassItem::Ch('\u{c}'),
        'v' => ClassItem::Ch('\u{b}'),
        'e' => ClassItem::Ch('\u{1b}'),
        '0' => ClassItem::Ch('\0'),
        c if c.is_ascii_alphanumeric() => return None,
        c => ClassItem::Ch(c),
    })
}

type Cont<'k> = dyn FnMut(&mut Matcher, usize) -> bool + 'k;

struct Matcher<'r> {
    re: &'r Regex,
    text: &'r [char],
    steps: u64,
    depth: u32,
    blown: bool,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Matcher<'_> {
    fn eq_char(&self, a: char, b: char) -> bool {
        a == b || (self.re.icase && a.to_lowercase().eq(b.to_lowercase()))
    }

    fn item(&self, it: &ClassItem, c: char) -> bool {
        match it {
            ClassItem::Ch(x) => self.eq_char(*x, c),
            ClassItem::Range(lo, hi) => {
                let inr = |c: char| *lo <= c && c <= *hi;
                inr(c)
                    || (self.re.icase && (c.to_lowercase().any(inr) || c.to_uppercase().any(inr)))
            }
            ClassItem::Digit(p) => c.is_ascii_digit() == *p,
            ClassItem::Word(p) => is_word(c) == *p,
            ClassItem::Space(p) => c.is_whitespace() == *p,
            ClassItem::Hex(p) => c.is_ascii_hexdigit() == *p,
        }
    }

    /// A node that consumes at most one char and needs no backtracking.
    fn single(&self, node: &Node, pos: usize) -> Option<usize> {
        let t = self.text;
        let cur = t.get(pos).copied();
        match node {
            Node::Char(c) => cur.filter(|x| self.eq_char(*c, *x)).map(|_| pos + 1),
            Node::Any => cur
                .filter(|x| self.re.dotall || *x != '\n')
                .map(|_| pos + 1),
            Node::Class(items, neg) => cur
                .filter(|x| items.iter().any(|it| self.item(it, *x)) != *neg)
                .map(|_| pos + 1),
            Node::LineStart => (pos == 0 || t[pos - 1] == '\n').then_some(pos),
            Node::LineEnd => (pos == t.len() || t[pos] == '\n').then_some(pos),
            Node::TextStart => (pos == 0).then_some(pos),
            Node::TextEnd => (pos == t.len()).then_some(pos),
            Node::TextEndNl => {
                (pos == t.len() || (pos + 1 == t.len() && t[pos] == '\n')).then_some(pos)
            }
            Node::WordB(want) => {
                let before = pos > 0 && is_word(t[pos - 1]);
                let after = cur.is_some_and(is_word);
                ((before != after) == *want).then_some(pos)
            }
            Node::Group(_) | Node::Repeat(..) => None,
        }
    }

    fn tick(&mut self) -> bool {
        self.steps += 1;
        if self.steps > REGEX_STEP_BUDGET || self.depth > REGEX_DEPTH_BUDGET {
            self.blown = true;
        }
        !self.blown
    }

    fn alt(&mut self, alts: &[Vec<Node>], pos: usize, k: &mut Cont) -> bool {
        for seq in alts {
            if self.seq(seq, pos, k) {
                return true;
            }
            if self.blown {
                return false;
            }
        }
        false
    }

    fn seq(&mut self, nodes: &[Node], pos: usize, k: &mut Cont) -> bool {
        if !self.tick() {
            return false;
        }
        let Some((first, rest)) = nodes.split_first() else {
            return k(self, pos);
        };
        self.depth += 1;
        let r = match first {
            Node::Group(alts) => self.alt(alts, pos, &mut |m: &mut Matcher, p| m.seq(rest, p, k)),
            Node::Repeat(node, min, max, greedy) => {
                if matches!(**node, Node::Group(_) | Node::Repeat(..)) {
                    self.rep(
                        node,
                        *min,
                        *max,
                        *greedy,
                        0,
                        pos,
                        &mut |m: &mut Matcher, p| m.seq(rest, p, k),
                    )
                } else {
                    // single-char repeats: iterate, no recursion per char
                    let mut ends = vec![pos];
                    let mut p = pos;
                    while max.is_none_or(|m| (ends.len() as u32) <= m) {
                        match self.single(node, p) {
                            Some(np) if np != p => {
                                p = np;
                                ends.push(np);
                            }
                            Some(_) => break,
                            None => break,
                        }
                    }
                    let min = *min as usize;
                    if ends.len() - 1 < min {
                        self.depth -= 1;
                        return false;
                    }
                    let mut found = false;
                    let idx: Vec<usize> = if *greedy {
                        (min..ends.len()).rev().collect()
                    } else {
                        (min..ends.len()).collect()
                    };
                    for i in idx {
                        if self.seq(rest, ends[i], k) {
                            found = true;
                            break;
                        }
                        if self.blown {
                            break;
                        }
                    }
                    found
                }
            }
            simple => match self.single(simple, pos) {
                Some(np) => self.seq(rest, np, k),
                None => false,
            },
        };
        self.depth -= 1;
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn rep(
        &mut self,
        node: &Node,
        min: u32,
        max: Option<u32>,
        greedy: bool,
        count: u32,
        pos: usize,
        k: &mut Cont,
    ) -> bool {
        if !self.tick() {
            return false;
        }
        if count >= min && !greedy && k(self, pos) {
            return true;
        }
        if max.is_none_or(|m| count < m) {
            self.depth += 1;
            let r = self.seq(
                std::slice::from_ref(node),
                pos,
                &mut |m: &mut Matcher, p| {
                    // a zero-width iteration past the minimum cannot help
                    if p == pos && count >= min {
                        return false;
                    }
                    m.rep(node, min, max, greedy, count + 1, p, k)
                },
            );
            self.depth -= 1;
            if r {
                return true;
            }
        }
        if self.blown {
            return false;
        }
        count >= min && greedy && k(self, pos)
    }
}

// ---------------------------------------------------------------------------
// Durations and times
// ---------------------------------------------------------------------------

/// A `timeout` / `wait` value: a delay or a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    After(Duration),
    At(DateTime<Utc>),
}

const UNITS: &[(char, u64)] = &[
    ('y', 365 * 24 * 3600),
    ('M', 30 * 24 * 3600),
    ('w', 7 * 24 * 3600),
    ('d', 24 * 3600),
    ('h', 3600),
    ('m', 60),
    ('s', 1),
];

/// rufus-scheduler's `parse_duration`: a sequence of `<number><unit>` (units
/// `y` = 365 d, `M` = 30 d, `w`, `d`, `h`, `m`, `s`), a bare number at the
/// end = seconds (`1h30` = 1 h 30 s), decimals allowed (`1.5h`, `.5s`), a
/// leading `-` allowed (a negative delay is zero: it fires at once), `''`
/// is zero (the engine treats an empty `timeout` as none before calling).
/// No whitespace inside; anything else is an error. A string with a space or
/// `:` is a point in time: see [`when_from`].
pub fn duration(s: &str) -> Result<Duration, ExprError> {
    let err = |m: &str| ExprError::Duration {
        text: s.to_string(),
        message: m.to_string(),
    };
    if s.is_empty() {
        return Ok(Duration::ZERO);
    }
    if s.contains(' ') || s.contains(':') {
        return Err(err("this is a point in time, not a duration"));
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    if rest.is_empty() {
        return Err(err("no number"));
    }
    let mut secs = 0f64;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(err(&format!("expected a number at '{rest}'")));
        }
        let n: f64 = num
            .parse()
            .map_err(|_| err(&format!("bad number '{num}'")))?;
        let tail = &rest[end..];
        match tail.chars().next() {
            None => {
                secs += n;
                rest = tail;
            }
            Some(u) => {
                let Some((_, mult)) = UNITS.iter().find(|(c, _)| *c == u) else {
                    return Err(err(&format!(
                        "unknown unit '{u}' (use y, M, w, d, h, m, s)"
                    )));
                };
                secs += n * *mult as f64;
                rest = &tail[u.len_utf8()..];
            }
        }
    }
    if neg || secs <= 0.0 {
        return Ok(Duration::ZERO);
    }
    Duration::try_from_secs_f64(secs).map_err(|_| err("too large"))
}

/// [`duration`] for a JSON attribute: numbers are seconds (Ruote crashes on
/// them; Switchyard accepts them), strings are parsed.
pub fn duration_value(v: &Value) -> Result<Duration, ExprError> {
    match v {
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            if f <= 0.0 {
                return Ok(Duration::ZERO);
            }
            Duration::try_from_secs_f64(f).map_err(|_| ExprError::Duration {
                text: n.to_string(),
                message: "too large".to_string(),
            })
        }
        Value::String(s) => duration(s),
        other => Err(ExprError::Duration {
            text: inspect(other),
            message: "not a duration".to_string(),
        }),
    }
}

/// A `timeout` / `wait` string: with a space or `:` it is a point in time
/// (RFC 3339 `1913-02-08T17:36:10Z`, `2011/12/10 12:00:00`,
/// `2011-12-10 12:00:00` (UTC unless an offset follows), also with ` UTC`/
/// `Z` or `+09:00`); otherwise a [`duration`].
pub fn when_from(s: &str) -> Result<When, ExprError> {
    if !(s.contains(' ') || s.contains(':')) {
        return duration(s).map(When::After);
    }
    let t = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(When::At(dt.with_timezone(&Utc)));
    }
    let norm = t.replace('/', "-");
    let norm = norm.strip_suffix(" UTC").unwrap_or(&norm).to_string();
    let norm = norm.strip_suffix('Z').unwrap_or(&norm).to_string();
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S %z",
        "%Y-%m-%dT%H:%M:%S%.f%:z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(&norm, fmt) {
            return Ok(When::At(dt.with_timezone(&Utc)));
        }
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(&norm, fmt) {
            return Ok(When::At(dt.and_utc()));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(&norm, "%Y-%m-%d")
        && let Some(dt) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(When::At(dt.and_utc()));
    }
    Err(ExprError::Duration {
        text: s.to_string(),
        message: "not a time Switchyard understands (use RFC 3339, e.g. 2011-12-10T12:00:00Z, or 'YYYY/MM/DD HH:MM:SS')".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn fields() -> Map<String, Value> {
        obj(json!({
            "x": "hello",
            "n": 2000,
            "ns": "2000",
            "f": 2.31,
            "whole": 2.0,
            "b": "bra vo",
            "t": true,
            "no": false,
            "nul": null,
            "arr": ["a", "b"],
            "h": {"a": 1},
            "customer": {"address": ["street", "town"], "name": "Ann"},
            "list": [10, 20, 30],
            "key": "customer",
            "a": "cust", "b2": "omer",
            "__tags__": ["outer", "inner"],
            "status": "ready",
            "zip": "01234",
            "empty": "",
            "earr": [],
            "a.b": "literal",
        }))
    }

    fn vars() -> Map<String, Value> {
        obj(json!({"v1": "vee", "x": "var-x", "arr": [1, 2], "n": 3, "fx": "x"}))
    }

    fn sub(s: &str) -> Value {
        let (f, v) = (fields(), vars());
        substitute(s, &Scope::new(&f, &v)).expect("substitute")
    }

    fn cond(s: &str) -> bool {
        let (f, v) = (fields(), vars());
        condition(s, &Scope::new(&f, &v)).expect("condition")
    }

    fn cond_err(s: &str) -> ExprError {
        let (f, v) = (fields(), vars());
        condition(s, &Scope::new(&f, &v)).expect_err("an error")
    }

    fn ev(s: &str) -> bool {
        evaluate(s).expect("evaluate")
    }

    // --- §4 substitution ------------------------------------------------

    #[test]
    fn field_prefixes_and_default() {
        for s in ["${f:x}", "${field:x}", "${fld:x}", "${x}", "${foo:x}"] {
            assert_eq!(sub(s), json!("hello"), "{s}");
        }
    }

    #[test]
    fn variable_prefixes() {
        for s in ["${v:v1}", "${var:v1}", "${variable:v1}"] {
            assert_eq!(sub(s), json!("vee"), "{s}");
        }
        assert_eq!(sub("${v:x}"), json!("var-x"));
        assert_eq!(sub("${v:/v1}"), json!("vee"), "root scope");
        assert_eq!(sub("${v://v1}"), json!(""), "engine variables: none here");
    }

    #[test]
    fn vf_and_fv_try_both() {
        assert_eq!(sub("${vf:x}"), json!("var-x"));
        assert_eq!(sub("${fv:x}"), json!("hello"));
        assert_eq!(
            sub("${vf:status}"),
            json!("ready"),
            "variable missing → field"
        );
        assert_eq!(sub("${fv:v1}"), json!("vee"), "field missing → variable");
        assert_eq!(sub("${vf:none}"), json!(""));
    }

    #[test]
    fn unknown_prefix_is_empty() {
        assert_eq!(sub("<${q:x}>"), json!("<>"));
        assert_eq!(sub("<${:x}>"), json!("<>"));
    }

    #[test]
    fn dot_paths() {
        assert_eq!(sub("${f:customer.address.1}"), json!("town"));
        assert_eq!(sub("${f:customer.name}"), json!("Ann"));
        assert_eq!(sub("${f:list.0}"), json!("10"));
        assert_eq!(sub("${f:list.-1}"), json!("30"), "negative index as Ruby");
        assert_eq!(sub("${f:list.9}"), json!(""));
        assert_eq!(sub("${f:customer.name.x}"), json!(""));
        assert_eq!(sub("${v:arr.1}"), json!("2"));
    }

    #[test]
    fn better_literal_dotted_key_is_readable() {
        assert_eq!(sub("${f:a.b}"), json!("literal"));
    }

    #[test]
    fn missing_and_null_are_empty_strings() {
        assert_eq!(sub("a${f:none}b"), json!("ab"));
        assert_eq!(sub("a${f:nul}b"), json!("ab"));
        assert_eq!(sub("${f:none}"), json!(""), "${{}} always gives a string");
    }

    #[test]
    fn non_strings_in_ruby_inspect_form() {
        assert_eq!(sub("${f:arr}"), json!("[\"a\", \"b\"]"));
        assert_eq!(sub("${f:h}"), json!("{\"a\"=>1}"));
        assert_eq!(sub("${f:t}"), json!("true"));
        assert_eq!(sub("${f:f}"), json!("2.31"));
        assert_eq!(sub("${f:whole}"), json!("2.0"));
        assert_eq!(sub("${f:n}"), json!("2000"));
        assert_eq!(
            inspect(&json!([null, 1e20, 1.5e-5])),
            "[nil, 1.0e+20, 1.5e-05]"
        );
        assert_eq!(inspect(&json!({})), "{}");
    }

    #[test]
    fn quoted_form_inspects_even_strings() {
        assert_eq!(sub("${'f:b}"), json!("\"bra vo\""));
        assert_eq!(sub("${\"f:b}"), json!("\"bra vo\""));
        assert_eq!(sub("${'f:none}"), json!("\"\""));
        assert_eq!(sub("${'f:arr}"), json!("\"[\\\"a\\\", \\\"b\\\"]\""));
        assert_eq!(inspect_str("a\"b\\c\n#{x}"), "\"a\\\"b\\\\c\\n\\#{x}\"");
    }

    #[test]
    fn innermost_first_nesting() {
        assert_eq!(sub("${v:${f:missing}v1}"), json!("vee"));
        assert_eq!(sub("${f:${f:key}.name}"), json!("Ann"));
        assert_eq!(sub("${${f:a}${f:b2}.name}"), json!("Ann"));
        assert_eq!(sub("${v:${v:fx}}"), json!("var-x"));
    }

    #[test]
    fn several_references_and_plain_braces() {
        assert_eq!(sub("${f:x} and ${v:v1}!"), json!("hello and vee!"));
        assert_eq!(sub("le petit {renard}"), json!("le petit {renard}"));
        assert_eq!(sub("{a${f:x}c}"), json!("{ahelloc}"));
        assert_eq!(sub("no dollars"), json!("no dollars"));
        assert_eq!(sub(""), json!(""));
        assert_eq!(sub("${unclosed"), json!("${unclosed"));
    }

    #[test]
    fn escaped_dollar_brace_is_kept() {
        assert_eq!(sub("le petit \\${x} noir"), json!("le petit \\${x} noir"));
    }

    #[test]
    fn better_escape_does_not_stop_the_rest() {
        assert_eq!(sub("\\${x} ${f:x}"), json!("\\${x} hello"));
        assert_eq!(sub("a} ${f:x}"), json!("a} hello"));
    }

    #[test]
    fn better_self_reference_is_an_error() {
        let f = obj(json!({"a": "${a}"}));
        let v = Map::new();
        let e = substitute("${a}", &Scope::new(&f, &v)).expect_err("loops");
        assert!(matches!(e, ExprError::TooManySubstitutions { .. }));
    }

    #[test]
    fn ruby_is_refused() {
        let (f, v) = (fields(), vars());
        let e = substitute("${r:1 + 1}", &Scope::new(&f, &v)).expect_err("no ruby");
        assert_eq!(
            e,
            ExprError::RubyEval {
                code: "1 + 1".into()
            }
        );
        assert!(e.to_string().contains("never evaluates code"));
        assert!(matches!(
            condition("${r:true}", &Scope::new(&f, &v)),
            Err(ExprError::RubyEval { .. })
        ));
        assert!(matches!(
            substitute("${ruby:x}", &Scope::new(&f, &v)),
            Err(ExprError::RubyEval { .. })
        ));
    }

    #[test]
    fn special_keys_and_tags() {
        struct Fei<'a>(Scope<'a>);
        impl Lookup for Fei<'_> {
            fn field(&self, p: &str) -> Option<Value> {
                self.0.field(p)
            }
            fn var(&self, p: &str) -> Option<Value> {
                self.0.var(p)
            }
            fn special(&self, k: &str) -> Option<Value> {
                match k {
                    "wfid" => Some(json!("20240101-abc")),
                    "expid" => Some(json!("0_1")),
                    "subid" => Some(json!("s1")),
                    _ => None,
                }
            }
        }
        let (f, v) = (fields(), vars());
        let l = Fei(Scope::new(&f, &v));
        let s = |t: &str| substitute(t, &l).expect("sub");
        assert_eq!(s("${wfid}/${expid}"), json!("20240101-abc/0_1"));
        assert_eq!(s("${sub_wfid}"), json!("s1"));
        assert_eq!(s("${engine_id}"), json!(""));
        assert_eq!(s("${tag}"), json!("inner"));
        assert_eq!(s("${full_tag}"), json!("outer/inner"));
        assert_eq!(s("${tags}"), json!("[\"outer\", \"inner\"]"));
        // the default Scope has no fei
        assert_eq!(sub("<${wfid}>"), json!("<>"));
    }

    #[test]
    fn raw_literal_keeps_json_type() {
        assert_eq!(sub("$f:arr"), json!(["a", "b"]));
        assert_eq!(sub("$field:h"), json!({"a": 1}));
        assert_eq!(sub("$fld:n"), json!(2000));
        assert_eq!(sub("$arr"), json!(["a", "b"]));
        assert_eq!(sub("$v:arr"), json!([1, 2]));
        assert_eq!(sub("$var:n"), json!(3));
        assert_eq!(sub("$variable:v1"), json!("vee"));
        assert_eq!(sub("$f:customer.address"), json!(["street", "town"]));
        assert_eq!(sub("$f:t"), json!(true));
    }

    #[test]
    fn raw_literal_missing_is_null() {
        assert_eq!(sub("$f:none"), Value::Null);
        assert_eq!(sub("$v:none"), Value::Null);
        assert_eq!(sub("$none"), Value::Null);
    }

    #[test]
    fn raw_literal_only_for_the_whole_string() {
        assert_eq!(sub("$a "), json!("$a "));
        assert_eq!(sub(" $a"), json!(" $a"));
        assert_eq!(sub("$$a"), json!("$$a"));
        assert_eq!(sub("x $f:arr"), json!("x $f:arr"));
        assert_eq!(sub("$q:arr"), json!("$q:arr"));
        assert_eq!(sub("$"), json!("$"));
        assert_eq!(sub("$f:a b"), json!("$f:a b"));
    }

    #[test]
    fn raw_literal_after_dollar_brace() {
        // `${}` first, then the literal step on the result
        assert_eq!(
            sub("$f:${f:key}"),
            json!({"address": ["street", "town"], "name": "Ann"})
        );
        assert_eq!(sub("${f:arr}"), json!("[\"a\", \"b\"]"), "string form");
    }

    #[test]
    fn attrs_keys_and_values_nested() {
        let (f, v) = (fields(), vars());
        let attrs = obj(json!({
            "f_${v:v1}": 1,
            "to": "${f:x}",
            "raw": "$f:arr",
            "list": ["${f:status}", {"k": "$v:n"}],
            "num": 5,
            "none": null
        }));
        let out = substitute_attrs(&attrs, &Scope::new(&f, &v)).expect("attrs");
        assert_eq!(
            Value::Object(out),
            json!({
                "f_vee": 1,
                "to": "hello",
                "raw": ["a", "b"],
                "list": ["ready", {"k": 3}],
                "num": 5,
                "none": null
            })
        );
    }

    // --- §5 conditions (Ruote's ut_6_condition cases) --------------------

    #[test]
    fn blank_is_false_booleans_as_is() {
        assert!(!ev(""));
        assert!(!ev("  "));
        let (f, v) = (fields(), vars());
        let s = Scope::new(&f, &v);
        assert!(condition_value(&json!(true), &s).expect("b"));
        assert!(!condition_value(&json!(false), &s).expect("b"));
        assert!(!condition_value(&Value::Null, &s).expect("b"));
        assert!(condition_value(&json!(0), &s).expect("b"), "0 is true");
        assert!(!condition_value(&json!("false"), &s).expect("b"));
    }

    #[test]
    fn literal_comparisons() {
        assert!(!ev("true == false"));
        assert!(!ev("'true' == 'false'"));
        assert!(!ev("\"true\" == \"false\""));
        assert!(ev("true == true"));
        assert!(ev("a == a"));
        assert!(ev("alpha == alpha"));
        assert!(ev("\"a\" == \"a\""));
        assert!(!ev("true != true"));
        assert!(ev("true != false"));
    }

    #[test]
    fn bare_words_are_truthy_strings() {
        assert!(ev("blah blah blah"));
        assert!(ev("something"));
        assert!(ev("exit"), "never code");
        assert!(ev("0"), "0 is true");
        assert!(ev("0a"));
        assert!(!ev("false"));
        assert!(!ev("nil"));
        assert!(!ev("''"));
    }

    #[test]
    fn strip_and_spacing() {
        for s in [
            "a == a ", " a == a ", " a == a", "a ==  a", "a  == a", "a==a",
        ] {
            assert!(ev(s), "{s}");
        }
    }

    #[test]
    fn number_and_string_ordering() {
        assert!(ev("b > a"));
        assert!(!ev("a > b"));
        assert!(ev("100 > 10"), "numeric, not lexicographic");
        assert!(ev("100 > 90"));
        assert!(ev("100.0 > 90"));
        assert!(ev("2.310000 > 0"));
        assert!(!ev("2.310000 < 0"));
        assert!(ev("-1 < 0"));
        assert!(ev("3 >= 3") && ev("3 <= 3") && !ev("3 < 3"));
    }

    #[test]
    fn typing_number_vs_string() {
        assert!(!ev("2 == '2'"), "number vs string");
        assert!(ev("'2' == '2'"));
        assert!(ev("2 == 2.0"));
        // the field held a number or a string: same text after ${}
        assert!(cond("${f:n} == 2000"));
        assert!(cond("${f:ns} == 2000"));
        assert!(!cond("${'f:ns} == 2000"), "quoted form keeps it a string");
        assert!(cond("${'f:ns} == '2000'"));
        assert!(cond("${f:n} > 90"));
    }

    #[test]
    fn incomparable_types_are_an_error() {
        assert!(matches!(
            evaluate("abc > 3"),
            Err(ExprError::Incomparable { .. })
        ));
        assert!(matches!(
            evaluate("nil < 1"),
            Err(ExprError::Incomparable { .. })
        ));
        assert!(matches!(
            evaluate("[1] < [2]"),
            Err(ExprError::Incomparable { .. })
        ));
    }

    #[test]
    fn emptiness_fallback_is_false() {
        assert!(!ev(" == "));
        assert!(!ev(" == ''"));
        assert!(!ev(" == \"\""));
        assert!(!ev(" == a"));
        assert!(!ev("a == "));
        assert!(ev(" != a"));
        assert!(!ev(" > 3"));
    }

    #[test]
    fn missing_field_substitutes_to_empty() {
        assert!(!cond("${f:none} == ready"));
        assert!(cond("${f:status} == ready"));
        assert!(!cond("${f:none} is set"));
        assert!(cond("${f:none} is not set"));
        assert!(!cond("${f:none} set"));
        assert!(!cond("${f:none} > 3"));
        assert!(!cond("${f:none}"));
    }

    #[test]
    fn complex_strings() {
        assert!(ev("'some dude' == 'some dude'"));
        assert!(ev("some dude == \"some dude\""));
        assert!(ev("some dude == 'some dude'"));
        assert!(!ev("'some other dude' == 'some dude'"));
        assert!(!ev("some other dude == 'some dude'"));
        // robust form with quoted substitution
        assert!(cond("${'f:b} == 'bra vo'"));
        assert!(cond("${f:b} == 'bra vo'"));
    }

    #[test]
    fn better_multiword_both_sides_unquoted() {
        // Ruote says false (Ruby method-call parsing); we compare the words.
        assert!(ev("some dude == some dude"));
        assert!(!ev("some dude == other dude"));
    }

    #[test]
    fn bare_slash_joins_like_ruote() {
        assert!(ev("Loan / Grant == 'Loan/Grant'"));
        assert!(ev("Loan/Grant == 'Loan/Grant'"));
        assert!(cond("${f:none}/usr/bin == /usr/bin"));
    }

    #[test]
    fn and_or_not() {
        assert!(ev("1 and 2 and 3"));
        assert!(ev("1 && 2 && 3"));
        assert!(ev("1 or 2 or 3"));
        assert!(ev("1 || 2 || 3"));
        assert!(ev("true or false"));
        assert!(ev("true and (true or false)"));
        assert!(!ev("true and (true and false)"));
        assert!(ev("'a' and ('b' and 'c')"));
        assert!(ev("not false"));
        assert!(!ev("not true"));
        assert!(ev("! false"));
        assert!(!ev(" ! true"));
        assert!(ev("not a == b"));
        assert!(ev("a == a and b == b"));
        assert!(!ev("a == a && b == c"));
        assert!(ev("a == b || c == c"));
        assert!(ev("!(a == b)"));
        assert!(cond("${f:status} == ready and ${f:n} > 1000"));
    }

    #[test]
    fn set_forms() {
        assert!(ev("true set"));
        assert!(ev("'true' set"));
        assert!(ev("\"true\" set"));
        assert!(ev("true is set"));
        assert!(ev("\"true\" is set"));
        assert!(ev("'true' is set"));
        assert!(!ev("true is not set"));
        assert!(ev("false is set"));
        assert!(!ev("is set"));
        assert!(!ev(" is set"));
        assert!(!ev("'' is set"));
        assert!(!ev("nil is set"));
        assert!(cond("${f:x} is set"));
    }

    #[test]
    fn better_words_ending_in_is() {
        assert!(ev("this set"), "Ruote's /is$/ check made this false");
    }

    #[test]
    fn empty_forms() {
        for s in [
            "'' empty",
            "'' is empty",
            "\"\" empty",
            "\"\" is empty",
            "[] empty",
            "[] is empty",
            "{} empty",
            "{} is empty",
        ] {
            assert!(ev(s), "{s}");
        }
        assert!(!ev("[1] is empty"));
        assert!(!ev("{1=>2} is empty"));
        for s in [
            "'' not empty",
            "'' is not empty",
            "[] not empty",
            "{} is not empty",
        ] {
            assert!(!ev(s), "{s}");
        }
        assert!(ev("[1] is not empty"));
        assert!(ev("{1=>2} is not empty"));
        assert!(cond("${'f:empty} is empty"));
        assert!(cond("${f:none} is empty"));
        assert!(!cond("${'f:x} is empty"));
        assert!(cond("${f:earr} is empty"));
    }

    #[test]
    fn better_empty_for_any_left() {
        // Ruote: `foo is empty` is *true* (no quote/bracket before `is`).
        assert!(!ev("foo is empty"));
        assert!(cond("${f:x} is not empty"));
    }

    #[test]
    fn null_forms() {
        assert!(ev("nil == nil"));
        assert!(ev("1 != nil"));
        assert!(!ev("1 == nil"));
        assert!(!ev("nil != nil"));
        assert!(ev("nil null"));
        assert!(ev("nil is null"));
        assert!(!ev("nil not null"));
        assert!(!ev("nil is not null"));
        assert!(!ev("1 null"));
        assert!(!ev("1 is null"));
        assert!(ev("1 not null"));
        assert!(ev("1 is not null"));
        assert!(!cond("${f:none} is null"), "'' is not nil");
    }

    #[test]
    fn in_forms() {
        assert!(ev("1 in [1, 2]"));
        assert!(ev("1 in {1 => 2}"));
        assert!(!ev("3 in [1, 2]"));
        assert!(!ev("2 in {1 => 2}"));
        assert!(ev("a in [a, b]"));
        assert!(ev("'a' in [a, b]"));
        assert!(ev("7 not in [1, 2]"));
        assert!(ev("2 not in {1 => 2}"));
        assert!(!ev("1 not in [1, 2]"));
        assert!(!ev("1 is not in {1 => 2}"));
        assert!(!ev("'1' in [1, 2]"), "typed membership");
        assert!(cond("${f:status} in [ready, done]"));
        assert!(cond("${f:n} in [2000]"));
    }

    #[test]
    fn in_gone_bad_is_false() {
        assert!(!ev("1 in [1 2]"));
        assert!(!ev("1 in {x}"));
    }

    #[test]
    fn regex_matching() {
        assert!(!ev("alpha =~ bravo"));
        assert!(ev("alpha =~ al"));
        assert!(ev("alpha =~ /^a/"));
        assert!(ev("'alpha toto' =~ /^a/"));
        assert!(!ev("alpha =~ /^b/"));
        assert!(ev("ALPHA =~ /^al/i"));
        assert!(!ev("ALPHA =~ /^al/"));
        assert!(ev("/ph/ =~ alpha"), "regex on the left");
        assert!(!ev("12 =~ /1/"), "a number does not match");
        assert!(cond("${f:b} =~ /^bra\\s+vo$/"));
        assert!(cond("${f:status} =~ /^(ready|done)$/"));
    }

    #[test]
    fn regex_engine() {
        let m = |p: &str, s: &str| Regex::new(p, "").expect("re").is_match(s).expect("run");
        assert!(m("a.c", "abc"));
        assert!(!m("a.c", "a\nc"));
        assert!(
            Regex::new("a.c", "m")
                .expect("re")
                .is_match("a\nc")
                .expect("run")
        );
        assert!(m("^\\d{3}-\\d{2,}$", "123-45"));
        assert!(!m("^\\d{3}-\\d{2,}$", "123-4"));
        assert!(m("[a-c]+x", "zzbcax"));
        assert!(m("[^0-9]", "12a"));
        assert!(!m("[^0-9]", "123"));
        assert!(m("(ab)+c", "ababc"));
        assert!(m("^(a|b)*$", "abba"));
        assert!(!m("^(a|b)*$", "abca"));
        assert!(m("colou?r", "color"));
        assert!(m("\\bcat\\b", "a cat here"));
        assert!(!m("\\bcat\\b", "concatenate"));
        assert!(m("^a.*?b$", "axxb"));
        assert!(m("(?:x|y){2}", "xy"));
        assert!(m("a{,2}b", "b"));
        assert!(m("x{a}", "x{a}"), "a literal brace");
        assert!(m("line2$", "line1\nline2"));
        assert!(m("^line2", "line1\nline2"), "Ruby ^ is a line anchor");
        assert!(!m("\\Aline2", "line1\nline2"));
        assert!(m("\\.", "a.b") && !m("\\.", "ab"));
        assert!(m("(a*)*b", "aaab"));
        assert!(m("", "anything"));
        assert!(m("é+", "café"));
        assert!(matches!(
            Regex::new("(?=x)", ""),
            Err(ExprError::Regex { .. })
        ));
        assert!(matches!(
            Regex::new("(a)\\1", ""),
            Err(ExprError::Regex { .. })
        ));
        assert!(matches!(Regex::new("(a", ""), Err(ExprError::Regex { .. })));
        assert!(matches!(Regex::new("a)", ""), Err(ExprError::Regex { .. })));
        assert!(matches!(Regex::new("*a", ""), Err(ExprError::Regex { .. })));
        assert!(matches!(
            evaluate("a =~ /(?!x)/"),
            Err(ExprError::Regex { .. })
        ));
    }

    #[test]
    fn regex_pathological_is_bounded() {
        let subject = format!("'{}'", "a".repeat(40));
        let r = evaluate(&format!("{subject} =~ /^(a|aa)*(a|aa)*c$/"));
        assert!(matches!(r, Ok(false) | Err(ExprError::Regex { .. })));
        // a long subject: an answer or the budget error, never a stack overflow
        let long = "a".repeat(50_000);
        let r = Regex::new("(a|b)*c", "").expect("re").is_match(&long);
        assert!(matches!(r, Ok(false) | Err(ExprError::Regex { .. })));
        let r = Regex::new("a+$", "")
            .expect("re")
            .is_match(&"a".repeat(5_000));
        assert_eq!(r, Ok(true));
        // the depth budget leaves room on a 1 MiB stack (debug build)
        let h = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(|| {
                Regex::new("(a|b)*c", "")
                    .expect("re")
                    .is_match(&"ab".repeat(5_000))
            })
            .expect("spawn");
        let r = h.join().expect("no overflow");
        assert!(matches!(r, Ok(false) | Err(ExprError::Regex { .. })));
    }

    #[test]
    fn literals_evaluate() {
        assert!(ev("[ 1, 2, 3 ] == [1,2,3]"));
        assert!(ev("{ 'a' => 2, 'b' => 2.0 } == {'b' => 2, 'a' => 2}"));
        assert!(ev("/^a/ == /^a/"));
        assert!(ev("\"redo\" == redo"));
    }

    #[test]
    fn better_leading_zeros_are_strings() {
        assert!(!ev("0123 == 123"));
        assert!(ev("0123 == '0123'"));
        assert!(cond("${f:zip} == 01234"));
        assert!(ev("0 == 0") && ev("0.5 > 0"));
    }

    #[test]
    fn raw_boolean_field_condition() {
        assert!(cond("$f:t"));
        assert!(!cond("$f:no"));
        assert!(!cond("$f:none"));
        assert!(cond("${f:t}"));
        assert!(!cond("${f:no}"));
        assert!(cond("$f:arr"), "non-empty array");
    }

    #[test]
    fn xml_entities_are_unescaped() {
        assert!(ev("3 &gt; 2 &amp;&amp; 1 &lt; 2"));
    }

    #[test]
    fn syntax_errors_have_a_column() {
        let e = cond_err("(a == b");
        match e {
            ExprError::Syntax { column, .. } => assert_eq!(column, 8),
            other => panic!("unexpected {other:?}"),
        }
        match evaluate("a == 'b") {
            Err(ExprError::Syntax { column, .. }) => assert_eq!(column, 6),
            other => panic!("unexpected {other:?}"),
        }
        match evaluate("a == b == c") {
            Err(ExprError::Syntax { column, .. }) => assert_eq!(column, 8),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(evaluate("a == b)"), Err(ExprError::Syntax { .. })));
        assert!(matches!(evaluate("[1, 2"), Err(ExprError::Syntax { .. })));
        assert!(matches!(evaluate("not"), Err(ExprError::Syntax { .. })));
        let msg = evaluate("(x").expect_err("err").to_string();
        assert!(msg.contains("couldn't interpret >(x<"), "{msg}");
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in [
            "(", ")", "[", "]", "{", "}", "=>", "==", "=~", "!", "!!", "&&", "||", "'", "\"", "/",
            "//", "/a", "a =~ /", "${", "}", "$", "\\", "é == é", "((((", "in [", "x in", "is",
            "not not", "a = b", "a & b", "1e", "-", "--1", ". == .", "a == [", "{1 =>}",
        ] {
            let _ = evaluate(s);
            let (f, v) = (fields(), vars());
            let _ = condition(s, &Scope::new(&f, &v));
            let _ = substitute(s, &Scope::new(&f, &v));
        }
    }

    // --- §6 durations ------------------------------------------------------

    #[test]
    fn durations_units() {
        let d = |s: &str| duration(s).expect("duration");
        assert_eq!(d("10s"), Duration::from_secs(10));
        assert_eq!(d("2h30m"), Duration::from_secs(9000));
        assert_eq!(d("1w"), Duration::from_secs(604_800));
        assert_eq!(d("2d12h"), Duration::from_secs(216_000));
        assert_eq!(d("1y"), Duration::from_secs(365 * 86_400));
        assert_eq!(d("1M"), Duration::from_secs(30 * 86_400));
        assert_eq!(d("3m"), Duration::from_secs(180));
    }

    #[test]
    fn durations_bare_numbers_are_seconds() {
        let d = |s: &str| duration(s).expect("duration");
        assert_eq!(d("500"), Duration::from_secs(500));
        assert_eq!(d("1.1"), Duration::from_millis(1100));
        assert_eq!(d("1.5h"), Duration::from_secs(5400));
        assert_eq!(d(".5s"), Duration::from_millis(500));
        assert_eq!(
            d("1h30"),
            Duration::from_secs(3630),
            "trailing number = seconds"
        );
    }

    #[test]
    fn durations_negative_and_empty_are_zero() {
        assert_eq!(duration("-5s").expect("d"), Duration::ZERO);
        assert_eq!(duration("").expect("d"), Duration::ZERO);
    }

    #[test]
    fn durations_errors() {
        for s in [
            "10 s", "abc", "10x", "1h 30m", "-", "1..5s", "s", "h1", "1.2.3", "12:00",
        ] {
            assert!(
                matches!(duration(s), Err(ExprError::Duration { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn duration_numbers_accepted() {
        assert_eq!(
            duration_value(&json!(30)).expect("d"),
            Duration::from_secs(30)
        );
        assert_eq!(
            duration_value(&json!(0.25)).expect("d"),
            Duration::from_millis(250)
        );
        assert_eq!(
            duration_value(&json!("2m")).expect("d"),
            Duration::from_secs(120)
        );
        assert!(duration_value(&json!([1])).is_err());
    }

    #[test]
    fn times() {
        let at = |s: &str| match when_from(s).expect("when") {
            When::At(t) => t.to_rfc3339(),
            When::After(d) => format!("after {d:?}"),
        };
        assert_eq!(at("1913-02-08T17:36:10Z"), "1913-02-08T17:36:10+00:00");
        assert_eq!(at("2011/12/10 12:00:00"), "2011-12-10T12:00:00+00:00");
        assert_eq!(at("2011-12-10 12:00:00 UTC"), "2011-12-10T12:00:00+00:00");
        assert_eq!(at("2011-12-10 12:00:00 +0900"), "2011-12-10T03:00:00+00:00");
        assert_eq!(at("2011-12-10T12:00:00+09:00"), "2011-12-10T03:00:00+00:00");
        assert_eq!(at("2011/12/10 12:00"), "2011-12-10T12:00:00+00:00");
        assert_eq!(at("10s"), "after 10s");
        assert!(when_from("next tuesday").is_err());
        assert!(duration("2011/12/10 12:00:00").is_err());
    }
}
