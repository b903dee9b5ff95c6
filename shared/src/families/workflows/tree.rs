//! The process definition tree and its three source formats (JSON, XML,
//! Radial). See the module docs of [`super`].
//!
//! A definition is Ruote's tree `[name, {attributes}, [children]]`
//! ([`Node`]). [`parse`] picks the format from the first non-blank
//! character (`[` or `{` JSON, `<` XML, anything else Radial), which is what
//! Ruote's reader amounts to for the texts it accepts, without its other
//! branches: a one-word definition is never taken for a file path or URL,
//! and Ruby (`Ruote.define do … end`) is refused, never evaluated.
//!
//! The three readers give the same tree for the same process:
//! element/attribute names `-` → `_` in XML, expression names made only of
//! `[a-z-]` and entry keys `-` → `_` in Radial, nothing normalised in JSON
//! (as in Ruote). XML attribute values are strings; Radial and JSON keep
//! JSON types. A text attribute (`participant alpha`,
//! `<echo>hello</echo>`) is a key with a `null` value.
//!
//! Where Switchyard departs from Ruote's readers, on purpose:
//! * Radial: a second top-level line is an error (Ruote drops it silently);
//!   a tab in the indentation is an error (Ruote makes it part of the name);
//!   a number or `true`/`false`/`null` is recognised before `]`, `}` and `#`
//!   too (Ruote reads `[1, 2]` as `[1, "2"]`), and inside `{…}` a bare word
//!   stops at `}` (Ruote reads `{ a: b}` as an unclosed object); a line
//!   starting with `end` is fine (Ruote guesses Ruby there). A `null` key
//!   (`{ null: bravo }`) is the empty string, as Ruby's `nil.to_s`.
//! * XML: `<!DOCTYPE` is refused, only the predefined entities and
//!   character references are known; CDATA is text (REXML's SAX listener in
//!   Ruote ignores it); text that repeats an attribute's name is an error
//!   (Ruote silently replaces the attribute with `null`).
//! * JSON: a top-level object or scalar is refused at parse time (Scriptoria
//!   accepts it and fails later in the worker).
//!
//! Limits: [`MAX_SOURCE_BYTES`], [`MAX_DEPTH`], [`MAX_NODES`].

use std::cell::Cell;
use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Largest definition source accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 256 * 1024;
/// Deepest tree accepted (the root is at depth 1). Also bounds the nesting
/// of arrays/objects in Radial attribute values.
pub const MAX_DEPTH: usize = 64;
/// Most expressions (nodes) in one tree.
pub const MAX_NODES: usize = 10_000;

/// The names of a process definition root (`define` and its aliases).
pub const DEFINE_NAMES: &[&str] = &["define", "process_definition", "workflow_definition"];

/// The expressions Switchyard implements (issue 10), names normalised.
pub const EXPRESSIONS: &[&str] = &[
    "define",
    "process_definition",
    "workflow_definition",
    "sequence",
    "concurrence",
    "participant",
    "cursor",
    "repeat",
    "loop",
    "rewind",
    "skip",
    "jump",
    "break",
    "stop",
    "reset",
    "iterator",
    "concurrent_iterator",
    "if",
    "given",
    "that",
    "of",
    "equals",
    "wait",
    "cancel_process",
    "terminate",
    "subprocess",
    "set",
    "unset",
    "echo",
    "noop",
    "error",
    "forget",
    "lose",
    "let",
    "citerator",
    "ref",
    "sleep",
    "kill_process",
    "undo",
    "cancel",
    "kill",
    "redo",
    "stall",
    "back",
    "continue",
    "over",
];

/// Every name Ruote 2.3 reserves for an expression (research §3). A node
/// with one of these names is that expression in Ruote, never a
/// participant; the ones Switchyard does not implement are refused by
/// [`validate`] rather than sent to a participant of that name.
pub const RUOTE_EXPRESSIONS: &[&str] = &[
    "sequence",
    "let",
    "concurrence",
    "concurrent_iterator",
    "citerator",
    "participant",
    "ref",
    "subprocess",
    "define",
    "process_definition",
    "workflow_definition",
    "cursor",
    "loop",
    "repeat",
    "iterator",
    "if",
    "given",
    "that",
    "of",
    "equals",
    "set",
    "rset",
    "unset",
    "wait",
    "sleep",
    "cancel_process",
    "terminate",
    "kill_process",
    "undo",
    "cancel",
    "kill",
    "redo",
    "forget",
    "lose",
    "noop",
    "stall",
    "echo",
    "error",
    "on_error",
    "skip",
    "back",
    "jump",
    "rewind",
    "continue",
    "break",
    "stop",
    "over",
    "reset",
    "add_branches",
    "add_branch",
    "apply",
    "await",
    "cron",
    "every",
    "inc",
    "dec",
    "increment",
    "decrement",
    "push",
    "pop",
    "listen",
    "receive",
    "intercept",
    "once",
    "when",
    "as_soon_as",
    "filter",
    "read",
    "save",
    "restore",
    "set_fields",
    "reserve",
    "registerp",
    "unregisterp",
    "command",
];

/// Attributes of a node, in source order.
pub type Attrs = IndexMap<String, Value>;

/// One expression of a process definition: Ruote's
/// `[name, {attributes}, [children]]`.
///
/// Equality compares attributes as a map (order-insensitive), so the same
/// process read from different formats compares equal; [`Node::same_order`]
/// also compares the attribute order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    pub name: String,
    pub attrs: Attrs,
    pub children: Vec<Node>,
}

/// A definition that could not be read or is not acceptable.
///
/// `line`/`column` are 1-based positions in the source (0 when there is no
/// source position, e.g. for a tree given as a JSON value); `path` says
/// where in the tree (`[2][0][1]` = the attributes of the root's first
/// child) when that is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeError {
    pub line: usize,
    pub column: usize,
    pub path: Option<String>,
    pub message: String,
}

impl TreeError {
    fn at(line: usize, column: usize, message: impl Into<String>) -> Self {
        TreeError {
            line,
            column,
            path: None,
            message: message.into(),
        }
    }

    fn at_path(path: &str, message: impl Into<String>) -> Self {
        TreeError {
            line: 0,
            column: 0,
            path: Some(show_path(path)),
            message: message.into(),
        }
    }

    fn plain(message: impl Into<String>) -> Self {
        TreeError {
            line: 0,
            column: 0,
            path: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for TreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}, column {}: ", self.line, self.column)?;
        }
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for TreeError {}

const SHAPE: &str = "expected [name, {attributes}, [children]]";

fn show_path(path: &str) -> String {
    if path.is_empty() {
        "root".to_owned()
    } else {
        path.to_owned()
    }
}

fn depth_message() -> String {
    format!("the definition is nested too deeply (at most {MAX_DEPTH} levels)")
}

fn nodes_message() -> String {
    format!("the definition has too many expressions (at most {MAX_NODES})")
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Node {
    /// A node with no attributes and no children.
    pub fn new(name: impl Into<String>) -> Self {
        Node {
            name: name.into(),
            attrs: Attrs::new(),
            children: Vec::new(),
        }
    }

    /// Adds an attribute (builder style).
    #[must_use]
    pub fn attr(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attrs.insert(key.into(), value.into());
        self
    }

    /// Adds a child (builder style).
    #[must_use]
    pub fn child(mut self, child: Node) -> Self {
        self.children.push(child);
        self
    }

    /// Ruote's text attribute: the first attribute whose value is `null`
    /// (`participant alpha` → `alpha`).
    pub fn text(&self) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(_, v)| v.is_null())
            .map(|(k, _)| k.as_str())
    }

    /// A string attribute.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).and_then(Value::as_str)
    }

    /// Whether this node is a process definition (`define` and aliases).
    pub fn is_define(&self) -> bool {
        DEFINE_NAMES.contains(&self.name.as_str())
    }

    /// Whether the name is a Ruote expression name (else a bare participant
    /// or subprocess reference).
    pub fn is_expression(&self) -> bool {
        RUOTE_EXPRESSIONS.contains(&self.name.as_str())
    }

    /// The participant (or subprocess) this node refers to, before `${}`
    /// substitution: `ref` or the text attribute of `participant`/
    /// `subprocess`, the name itself for a bare name; `None` for other
    /// expressions.
    pub fn reference(&self) -> Option<&str> {
        match self.name.as_str() {
            "participant" | "subprocess" | "ref" => self.attr_str("ref").or_else(|| self.text()),
            _ if self.is_expression() => None,
            name => Some(name),
        }
    }

    /// The attributes as a JSON object (attribute order is kept only if
    /// serde_json keeps it).
    pub fn attrs_json(&self) -> Map<String, Value> {
        self.attrs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The JSON tree `[name, {attributes}, [children]]`. To keep attribute
    /// order in text, serialize the node itself (`serde_json::to_string`).
    pub fn to_json(&self) -> Value {
        Value::Array(vec![
            Value::String(self.name.clone()),
            Value::Object(self.attrs_json()),
            Value::Array(self.children.iter().map(Node::to_json).collect()),
        ])
    }

    /// Reads a JSON tree value. Errors carry the path of the offending
    /// element (`[2][0]` = the root's first child).
    pub fn from_json(value: &Value) -> Result<Node, TreeError> {
        let mut count = 0;
        from_value(value, "", 1, &mut count)
    }

    /// The number of nodes in the tree.
    pub fn node_count(&self) -> usize {
        1 + self.children.iter().map(Node::node_count).sum::<usize>()
    }

    /// The depth of the tree (a leaf is 1).
    pub fn depth(&self) -> usize {
        1 + self.children.iter().map(Node::depth).max().unwrap_or(0)
    }

    /// Equality that also compares the order of attributes.
    pub fn same_order(&self, other: &Node) -> bool {
        self.name == other.name
            && self.attrs.len() == other.attrs.len()
            && self
                .attrs
                .iter()
                .zip(other.attrs.iter())
                .all(|(a, b)| a == b)
            && self.children.len() == other.children.len()
            && self
                .children
                .iter()
                .zip(&other.children)
                .all(|(a, b)| a.same_order(b))
    }
}

fn from_value(v: &Value, path: &str, depth: usize, count: &mut usize) -> Result<Node, TreeError> {
    let Value::Array(items) = v else {
        return Err(TreeError::at_path(
            path,
            format!("{SHAPE}, found {}", kind_of(v)),
        ));
    };
    if items.len() != 3 {
        return Err(TreeError::at_path(
            path,
            format!("{SHAPE}, found an array of {} elements", items.len()),
        ));
    }
    if depth > MAX_DEPTH {
        return Err(TreeError::at_path(path, depth_message()));
    }
    *count += 1;
    if *count > MAX_NODES {
        return Err(TreeError::at_path(path, nodes_message()));
    }
    let name = match &items[0] {
        Value::String(s) if s.is_empty() => {
            return Err(TreeError::at_path(
                &format!("{path}[0]"),
                "the expression name is empty",
            ));
        }
        Value::String(s) => s.clone(),
        other => {
            return Err(TreeError::at_path(
                &format!("{path}[0]"),
                format!(
                    "the expression name must be a string, found {}",
                    kind_of(other)
                ),
            ));
        }
    };
    let Value::Object(map) = &items[1] else {
        return Err(TreeError::at_path(
            &format!("{path}[1]"),
            format!(
                "the attributes must be an object, found {}",
                kind_of(&items[1])
            ),
        ));
    };
    let Value::Array(kids) = &items[2] else {
        return Err(TreeError::at_path(
            &format!("{path}[2]"),
            format!(
                "the children must be an array, found {}",
                kind_of(&items[2])
            ),
        ));
    };
    let mut children = Vec::with_capacity(kids.len());
    for (i, kid) in kids.iter().enumerate() {
        children.push(from_value(
            kid,
            &format!("{path}[2][{i}]"),
            depth + 1,
            count,
        )?);
    }
    Ok(Node {
        name,
        attrs: map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        children,
    })
}

// ---------------------------------------------------------------------------
// Serde: serializing keeps attribute order; deserializing reads a tree with
// the same checks and messages as `parse_json`.

struct OrderedAttrs<'a>(&'a Attrs);

impl Serialize for OrderedAttrs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(3))?;
        seq.serialize_element(&self.name)?;
        seq.serialize_element(&OrderedAttrs(&self.attrs))?;
        seq.serialize_element(&self.children)?;
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let ctx = JsonCtx::default();
        NodeSeed {
            ctx: &ctx,
            path: String::new(),
            depth: 1,
        }
        .deserialize(d)
    }
}

#[derive(Default)]
struct JsonCtx {
    nodes: Cell<usize>,
}

impl JsonCtx {
    fn fail<E: de::Error>(&self, path: &str, message: String) -> E {
        E::custom(format!("{}: {message}", show_path(path)))
    }
}

/// The `visit_*` methods for the JSON kinds a visitor does not accept.
macro_rules! refuse_kinds {
    ($($method:ident($ty:ty) => $kind:literal),* $(,)?) => {
        $(fn $method<E: de::Error>(self, _: $ty) -> Result<Self::Value, E> {
            Err(self.wrong($kind))
        })*
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Err(self.wrong("null"))
        }
    };
}

struct NodeSeed<'c> {
    ctx: &'c JsonCtx,
    path: String,
    depth: usize,
}

impl NodeSeed<'_> {
    fn wrong<E: de::Error>(&self, kind: &str) -> E {
        self.ctx.fail(&self.path, format!("{SHAPE}, found {kind}"))
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[name, {attributes}, [children]]")
    }

    refuse_kinds! {
        visit_bool(bool) => "a boolean",
        visit_i64(i64) => "a number",
        visit_u64(u64) => "a number",
        visit_f64(f64) => "a number",
        visit_str(&str) => "a string",
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Node, A::Error> {
        Err(self.wrong("an object"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let ctx = self.ctx;
        let path = self.path;
        if self.depth > MAX_DEPTH {
            return Err(ctx.fail(&path, depth_message()));
        }
        ctx.nodes.set(ctx.nodes.get() + 1);
        if ctx.nodes.get() > MAX_NODES {
            return Err(ctx.fail(&path, nodes_message()));
        }
        let name = match seq.next_element::<Value>()? {
            Some(Value::String(s)) if s.is_empty() => {
                return Err(ctx.fail(&format!("{path}[0]"), "the expression name is empty".into()));
            }
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(ctx.fail(
                    &format!("{path}[0]"),
                    format!(
                        "the expression name must be a string, found {}",
                        kind_of(&other)
                    ),
                ));
            }
            None => return Err(ctx.fail(&path, format!("{SHAPE}, found an empty array"))),
        };
        let attrs = seq
            .next_element_seed(AttrsSeed {
                ctx,
                path: format!("{path}[1]"),
            })?
            .ok_or_else(|| ctx.fail(&path, format!("{SHAPE}, found an array of 1 element")))?;
        let children = seq
            .next_element_seed(ChildrenSeed {
                ctx,
                path: path.clone(),
                depth: self.depth,
            })?
            .ok_or_else(|| ctx.fail(&path, format!("{SHAPE}, found an array of 2 elements")))?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(ctx.fail(&path, format!("{SHAPE}, found more than 3 elements")));
        }
        Ok(Node {
            name,
            attrs,
            children,
        })
    }
}

struct AttrsSeed<'c> {
    ctx: &'c JsonCtx,
    path: String,
}

impl AttrsSeed<'_> {
    fn wrong<E: de::Error>(&self, kind: &str) -> E {
        self.ctx.fail(
            &self.path,
            format!("the attributes must be an object, found {kind}"),
        )
    }
}

impl<'de> DeserializeSeed<'de> for AttrsSeed<'_> {
    type Value = Attrs;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Attrs, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AttrsSeed<'_> {
    type Value = Attrs;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of attributes")
    }

    refuse_kinds! {
        visit_bool(bool) => "a boolean",
        visit_i64(i64) => "a number",
        visit_u64(u64) => "a number",
        visit_f64(f64) => "a number",
        visit_str(&str) => "a string",
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Attrs, A::Error> {
        Err(self.wrong("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attrs, A::Error> {
        let mut attrs = Attrs::new();
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            attrs.insert(k, v);
        }
        Ok(attrs)
    }
}

struct ChildrenSeed<'c> {
    ctx: &'c JsonCtx,
    path: String,
    depth: usize,
}

impl ChildrenSeed<'_> {
    fn wrong<E: de::Error>(&self, kind: &str) -> E {
        self.ctx.fail(
            &format!("{}[2]", self.path),
            format!("the children must be an array, found {kind}"),
        )
    }
}

impl<'de> DeserializeSeed<'de> for ChildrenSeed<'_> {
    type Value = Vec<Node>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Node>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ChildrenSeed<'_> {
    type Value = Vec<Node>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of children")
    }

    refuse_kinds! {
        visit_bool(bool) => "a boolean",
        visit_i64(i64) => "a number",
        visit_u64(u64) => "a number",
        visit_f64(f64) => "a number",
        visit_str(&str) => "a string",
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Vec<Node>, A::Error> {
        Err(self.wrong("an object"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Node>, A::Error> {
        let mut children = Vec::new();
        loop {
            let seed = NodeSeed {
                ctx: self.ctx,
                path: format!("{}[2][{}]", self.path, children.len()),
                depth: self.depth + 1,
            };
            match seq.next_element_seed(seed)? {
                Some(child) => children.push(child),
                None => return Ok(children),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Entry points

fn check_size(source: &str) -> Result<(), TreeError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(TreeError::plain(format!(
            "the definition is {} bytes long (at most {MAX_SOURCE_BYTES} bytes)",
            source.len()
        )));
    }
    Ok(())
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(source: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(source.len());
    while !source.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &source[..pos];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Reads a definition in any of the three formats: JSON if it starts with
/// `[` (or `{`, to say a tree is an array), XML if it starts with `<`,
/// Radial otherwise (leading whitespace and a BOM are skipped).
pub fn parse(source: &str) -> Result<Node, TreeError> {
    check_size(source)?;
    let body = source.trim_start_matches('\u{feff}');
    let Some(first) = body.chars().find(|c| !c.is_whitespace()) else {
        return Err(TreeError::at(1, 1, "the definition is empty"));
    };
    match first {
        '[' | '{' => parse_json(source),
        '<' => parse_xml(source),
        _ => parse_radial(source),
    }
}

/// [`parse`] then [`validate`]: what a launch needs.
pub fn read(source: &str) -> Result<Node, TreeError> {
    let node = parse(source)?;
    validate(&node)?;
    Ok(node)
}

/// Reads a JSON tree from text, keeping attribute order. Errors have the
/// line/column of the JSON text and, for a malformed tree, its path.
pub fn parse_json(source: &str) -> Result<Node, TreeError> {
    check_size(source)?;
    let text = source.strip_prefix('\u{feff}').unwrap_or(source);
    let mut p = Json {
        src: text,
        pos: 0,
        nodes: 0,
    };
    let node = p.node("", 1)?;
    p.ws();
    if p.pos < text.len() {
        return Err(p.err(p.pos, "invalid JSON: unexpected content after the tree"));
    }
    Ok(node)
}

/// A small JSON reader (RFC 8259) that keeps attribute order, reports the
/// position where an offending token starts and applies the tree limits
/// (serde_json's nesting limit of 128 would stop a tree of depth 64).
struct Json<'a> {
    src: &'a str,
    pos: usize,
    nodes: usize,
}

impl<'a> Json<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn err(&self, pos: usize, message: impl Into<String>) -> TreeError {
        let (line, column) = line_col(self.src, pos);
        TreeError::at(line, column, message)
    }

    fn err_path(&self, pos: usize, path: &str, message: impl Into<String>) -> TreeError {
        let mut e = self.err(pos, message);
        e.path = Some(show_path(path));
        e
    }

    fn ws(&mut self) {
        while let Some(c) = self
            .peek()
            .filter(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
        {
            self.pos += c.len_utf8();
        }
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the text".to_owned(),
            Some(c) => format!("{c:?}"),
        }
    }

    /// After an element of a node: `,` (more) or `]` (end, `n` elements).
    fn node_sep(&mut self, path: &str, n: usize) -> Result<(), TreeError> {
        self.ws();
        match self.peek() {
            Some(',') => {
                self.pos += 1;
                self.ws();
                Ok(())
            }
            Some(']') => Err(self.err_path(
                self.pos,
                path,
                format!(
                    "{SHAPE}, found an array of {n} element{}",
                    if n == 1 { "" } else { "s" }
                ),
            )),
            _ => Err(self.err(
                self.pos,
                format!("invalid JSON: expected ',' or ']', found {}", self.found()),
            )),
        }
    }

    fn node(&mut self, path: &str, depth: usize) -> Result<Node, TreeError> {
        self.ws();
        let open = self.pos;
        if self.peek() != Some('[') {
            let v = self.value(0)?;
            return Err(self.err_path(open, path, format!("{SHAPE}, found {}", kind_of(&v))));
        }
        if depth > MAX_DEPTH {
            return Err(self.err_path(open, path, depth_message()));
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.err_path(open, path, nodes_message()));
        }
        self.pos += 1;
        self.ws();
        if self.peek() == Some(']') {
            return Err(self.err_path(open, path, format!("{SHAPE}, found an empty array")));
        }
        let at = self.pos;
        let name = match self.value(0)? {
            Value::String(s) if s.is_empty() => {
                return Err(self.err_path(
                    at,
                    &format!("{path}[0]"),
                    "the expression name is empty",
                ));
            }
            Value::String(s) => s,
            other => {
                return Err(self.err_path(
                    at,
                    &format!("{path}[0]"),
                    format!(
                        "the expression name must be a string, found {}",
                        kind_of(&other)
                    ),
                ));
            }
        };
        self.node_sep(path, 1)?;
        let at = self.pos;
        if self.peek() != Some('{') {
            let v = self.value(0)?;
            return Err(self.err_path(
                at,
                &format!("{path}[1]"),
                format!("the attributes must be an object, found {}", kind_of(&v)),
            ));
        }
        let mut attrs = Attrs::new();
        self.object(0, |k, v| {
            attrs.insert(k, v);
        })?;
        self.node_sep(path, 2)?;
        let at = self.pos;
        if self.peek() != Some('[') {
            let v = self.value(0)?;
            return Err(self.err_path(
                at,
                &format!("{path}[2]"),
                format!("the children must be an array, found {}", kind_of(&v)),
            ));
        }
        self.pos += 1;
        self.ws();
        let mut children = Vec::new();
        if self.peek() == Some(']') {
            self.pos += 1;
        } else {
            loop {
                children.push(self.node(&format!("{path}[2][{}]", children.len()), depth + 1)?);
                self.ws();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some(']') => {
                        self.pos += 1;
                        break;
                    }
                    _ => {
                        return Err(self.err(
                            self.pos,
                            format!("invalid JSON: expected ',' or ']', found {}", self.found()),
                        ));
                    }
                }
            }
        }
        self.ws();
        match self.peek() {
            Some(']') => {
                self.pos += 1;
                Ok(Node {
                    name,
                    attrs,
                    children,
                })
            }
            Some(',') => {
                Err(self.err_path(open, path, format!("{SHAPE}, found more than 3 elements")))
            }
            _ => Err(self.err(
                self.pos,
                format!("invalid JSON: expected ']', found {}", self.found()),
            )),
        }
    }

    /// An object at the cursor (`{`), entries handed to `put` in order.
    fn object(
        &mut self,
        depth: usize,
        mut put: impl FnMut(String, Value),
    ) -> Result<(), TreeError> {
        let open = self.pos;
        if depth >= MAX_DEPTH {
            return Err(self.err(open, depth_message()));
        }
        self.pos += 1;
        self.ws();
        if self.peek() == Some('}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            if self.peek() != Some('"') {
                return Err(self.err(
                    self.pos,
                    format!(
                        "invalid JSON: expected a string key, found {}",
                        self.found()
                    ),
                ));
            }
            let key = self.string()?;
            self.ws();
            if self.peek() != Some(':') {
                return Err(self.err(
                    self.pos,
                    format!("invalid JSON: expected ':', found {}", self.found()),
                ));
            }
            self.pos += 1;
            let v = self.value(depth + 1)?;
            put(key, v);
            self.ws();
            match self.peek() {
                Some(',') => {
                    self.pos += 1;
                    self.ws();
                }
                Some('}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => {
                    return Err(self.err(
                        self.pos,
                        format!("invalid JSON: expected ',' or '}}', found {}", self.found()),
                    ));
                }
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, TreeError> {
        self.ws();
        let at = self.pos;
        match self.peek() {
            Some('{') => {
                let mut map = Map::new();
                self.object(depth, |k, v| {
                    map.insert(k, v);
                })?;
                Ok(Value::Object(map))
            }
            Some('[') => {
                if depth >= MAX_DEPTH {
                    return Err(self.err(at, depth_message()));
                }
                self.pos += 1;
                self.ws();
                let mut items = Vec::new();
                if self.peek() == Some(']') {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(',') => self.pos += 1,
                        Some(']') => {
                            self.pos += 1;
                            return Ok(Value::Array(items));
                        }
                        _ => {
                            return Err(self.err(
                                self.pos,
                                format!(
                                    "invalid JSON: expected ',' or ']', found {}",
                                    self.found()
                                ),
                            ));
                        }
                    }
                }
            }
            Some('"') => self.string().map(Value::String),
            Some('-' | '0'..='9') => {
                let len = self
                    .rest()
                    .find(|c: char| {
                        !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
                    })
                    .unwrap_or(self.rest().len());
                let token = &self.rest()[..len];
                let v = serde_json::from_str::<Value>(token)
                    .ok()
                    .filter(Value::is_number)
                    .ok_or_else(|| self.err(at, format!("invalid JSON: invalid number {token}")))?;
                self.pos += len;
                Ok(v)
            }
            _ => {
                for (word, v) in [
                    ("true", Value::Bool(true)),
                    ("false", Value::Bool(false)),
                    ("null", Value::Null),
                ] {
                    if self.rest().starts_with(word) {
                        self.pos += word.len();
                        return Ok(v);
                    }
                }
                Err(self.err(
                    at,
                    format!("invalid JSON: expected a value, found {}", self.found()),
                ))
            }
        }
    }

    /// A string at the cursor (`"`), escapes decoded.
    fn string(&mut self) -> Result<String, TreeError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err(open, "invalid JSON: unterminated string"));
            };
            let at = self.pos;
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let e = self.peek();
                    self.pos += e.map_or(0, char::len_utf8);
                    match e {
                        Some('"') => out.push('"'),
                        Some('\\') => out.push('\\'),
                        Some('/') => out.push('/'),
                        Some('b') => out.push('\u{8}'),
                        Some('f') => out.push('\u{c}'),
                        Some('n') => out.push('\n'),
                        Some('r') => out.push('\r'),
                        Some('t') => out.push('\t'),
                        Some('u') => {
                            let hi = self.hex4(at)?;
                            let code = if (0xD800..0xDC00).contains(&hi)
                                && self.rest().starts_with("\\u")
                            {
                                self.pos += 2;
                                let lo = self.hex4(at)?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(
                                        self.err(at, "invalid JSON: invalid unicode escape")
                                    );
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            let ch = char::from_u32(code).ok_or_else(|| {
                                self.err(at, "invalid JSON: invalid unicode escape")
                            })?;
                            out.push(ch);
                        }
                        _ => return Err(self.err(at, "invalid JSON: invalid escape")),
                    }
                }
                c if (c as u32) < 0x20 => {
                    return Err(self.err(at, "invalid JSON: control character in a string"));
                }
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self, at: usize) -> Result<u32, TreeError> {
        let digits = self
            .rest()
            .get(..4)
            .filter(|d| d.chars().all(|c| c.is_ascii_hexdigit()));
        let code = digits
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| self.err(at, "invalid JSON: invalid unicode escape"))?;
        self.pos += 4;
        Ok(code)
    }
}

// ---------------------------------------------------------------------------
// XML

/// Reads an XML definition (`<process-definition name="x">…`). Names
/// `-` → `_`, attribute values are strings, non-blank text is a text
/// attribute, comments and processing instructions are skipped, a DOCTYPE is
/// refused and only the predefined entities are known.
pub fn parse_xml(source: &str) -> Result<Node, TreeError> {
    check_size(source)?;
    let mut p = Xml {
        src: source,
        pos: 0,
        nodes: 0,
    };
    if source.starts_with('\u{feff}') {
        p.pos = '\u{feff}'.len_utf8();
    }
    p.misc()?;
    if p.peek() != Some('<') {
        return Err(p.err(
            p.pos,
            match p.peek() {
                None => "expected the root element, found the end of the text".to_owned(),
                Some(c) => format!("expected the root element, found {c:?}"),
            },
        ));
    }
    let root = p.element(1)?;
    p.misc()?;
    if p.pos < source.len() {
        return Err(p.err(p.pos, "unexpected content after the root element"));
    }
    Ok(root)
}

struct Xml<'a> {
    src: &'a str,
    pos: usize,
    nodes: usize,
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == ':' || !c.is_ascii()
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit() || c == '-' || c == '.'
}

impl<'a> Xml<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn starts(&self, s: &str) -> bool {
        self.rest().starts_with(s)
    }

    fn err(&self, pos: usize, message: impl Into<String>) -> TreeError {
        let (line, column) = line_col(self.src, pos);
        TreeError::at(line, column, message)
    }

    fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while let Some(c) = self
            .peek()
            .filter(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
        {
            self.pos += c.len_utf8();
        }
        self.pos > start
    }

    fn name(&mut self) -> Option<&'a str> {
        let start = self.pos;
        if !self.peek().is_some_and(is_name_start) {
            return None;
        }
        while let Some(c) = self.peek().filter(|c| is_name_char(*c)) {
            self.pos += c.len_utf8();
        }
        Some(&self.src[start..self.pos])
    }

    fn skip_until(&mut self, end: &str, what: &str) -> Result<(), TreeError> {
        let start = self.pos;
        match self.rest().find(end) {
            Some(i) => {
                self.pos += i + end.len();
                Ok(())
            }
            None => Err(self.err(start, format!("unterminated {what}"))),
        }
    }

    /// Whitespace, comments and processing instructions outside the root.
    fn misc(&mut self) -> Result<(), TreeError> {
        loop {
            self.skip_ws();
            if self.starts("<!--") {
                self.skip_until("-->", "comment")?;
            } else if self.starts("<?") {
                self.skip_until("?>", "processing instruction")?;
            } else if self.starts("<!") {
                return Err(self.declaration());
            } else {
                return Ok(());
            }
        }
    }

    fn declaration(&self) -> TreeError {
        if self.starts("<!DOCTYPE") || self.starts("<!doctype") {
            self.err(
                self.pos,
                "a DOCTYPE is not allowed (no DTDs, no entity declarations)",
            )
        } else {
            self.err(self.pos, "markup declarations are not allowed")
        }
    }

    fn element(&mut self, depth: usize) -> Result<Node, TreeError> {
        let open = self.pos;
        self.pos += 1; // '<'
        let Some(raw) = self.name() else {
            return Err(self.err(self.pos, "expected an element name after '<'"));
        };
        if depth > MAX_DEPTH {
            return Err(self.err(open, depth_message()));
        }
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.err(open, nodes_message()));
        }
        let local = raw.rsplit(':').next().unwrap_or(raw);
        let mut node = Node::new(local.replace('-', "_"));
        // attributes
        loop {
            let spaced = self.skip_ws();
            if self.starts("/>") {
                self.pos += 2;
                return Ok(node);
            }
            if self.starts(">") {
                self.pos += 1;
                break;
            }
            let at = self.pos;
            let Some(key) = self.name() else {
                return Err(match self.peek() {
                    None => self.err(at, format!("unclosed start tag <{raw}>")),
                    Some(c) => self.err(
                        at,
                        format!("expected an attribute name, '>' or '/>', found {c:?}"),
                    ),
                });
            };
            if !spaced {
                return Err(self.err(at, "expected whitespace before an attribute"));
            }
            self.skip_ws();
            if self.peek() != Some('=') {
                return Err(self.err(
                    self.pos,
                    format!("expected '=' after the attribute name {key}"),
                ));
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.attr_value()?;
            let key = key.replace('-', "_");
            if node.attrs.contains_key(&key) {
                return Err(self.err(at, format!("duplicate attribute {key}")));
            }
            node.attrs.insert(key, Value::String(value));
        }
        // content
        let mut text = String::new();
        loop {
            if self.pos >= self.src.len() {
                let (line, column) = line_col(self.src, open);
                return Err(self.err(
                    self.pos,
                    format!("element <{raw}> (line {line}, column {column}) is not closed"),
                ));
            }
            if self.starts("</") {
                let at = self.pos;
                self.flush_text(&mut node, &mut text, at)?;
                self.pos += 2;
                let close = self.name().unwrap_or("");
                if close != raw {
                    let (line, column) = line_col(self.src, open);
                    return Err(self.err(
                        at,
                        format!("</{close}> does not close <{raw}> (line {line}, column {column})"),
                    ));
                }
                self.skip_ws();
                if self.peek() != Some('>') {
                    return Err(self.err(self.pos, format!("expected '>' to end </{raw}")));
                }
                self.pos += 1;
                return Ok(node);
            } else if self.starts("<!--") {
                let at = self.pos;
                self.flush_text(&mut node, &mut text, at)?;
                self.skip_until("-->", "comment")?;
            } else if self.starts("<![CDATA[") {
                let start = self.pos + "<![CDATA[".len();
                self.skip_until("]]>", "CDATA section")?;
                text.push_str(&self.src[start..self.pos - 3]);
            } else if self.starts("<!") {
                return Err(self.declaration());
            } else if self.starts("<?") {
                self.skip_until("?>", "processing instruction")?;
            } else if self.starts("<") {
                let at = self.pos;
                self.flush_text(&mut node, &mut text, at)?;
                let child = self.element(depth + 1)?;
                node.children.push(child);
            } else if self.starts("&") {
                self.entity(&mut text)?;
            } else {
                let end = self
                    .rest()
                    .find(['<', '&'])
                    .map_or(self.src.len(), |i| self.pos + i);
                text.push_str(&self.src[self.pos..end]);
                self.pos = end;
            }
        }
    }

    /// Non-blank text becomes a text attribute (a key with a null value).
    fn flush_text(&self, node: &mut Node, text: &mut String, at: usize) -> Result<(), TreeError> {
        let t = text.trim();
        if !t.is_empty() {
            if node.attrs.contains_key(t) {
                return Err(self.err(
                    at,
                    format!(
                        "the text {t:?} repeats an attribute name of <{}>",
                        node.name
                    ),
                ));
            }
            node.attrs.insert(t.to_owned(), Value::Null);
        }
        text.clear();
        Ok(())
    }

    fn attr_value(&mut self) -> Result<String, TreeError> {
        let open = self.pos;
        let quote = match self.peek() {
            Some(q @ ('"' | '\'')) => q,
            _ => return Err(self.err(self.pos, "expected a quoted attribute value")),
        };
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.err(open, "unterminated attribute value")),
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('<') => {
                    return Err(self.err(
                        self.pos,
                        "'<' is not allowed in an attribute value (write &lt;)",
                    ));
                }
                Some('&') => self.entity(&mut out)?,
                Some(c) => {
                    out.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }

    fn entity(&mut self, out: &mut String) -> Result<(), TreeError> {
        let at = self.pos;
        let rest = &self.rest()[1..];
        let Some(end) = rest.find(';').filter(|&i| i <= 12) else {
            return Err(self.err(at, "'&' must start an entity such as &amp;"));
        };
        let name = &rest[..end];
        let c = match name {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => {
                let code = if let Some(hex) = name.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = name.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    return Err(self.err(
                        at,
                        format!("unknown entity &{name}; (only &lt; &gt; &amp; &quot; &apos; and character references)"),
                    ));
                };
                code.and_then(char::from_u32).filter(|c| *c != '\0')
            }
        };
        let Some(c) = c else {
            return Err(self.err(at, format!("invalid character reference &{name};")));
        };
        out.push(c);
        self.pos += 1 + end + 1;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Radial

/// Reads a Radial definition (Ruote's indented text form, research §7.4).
/// Nothing in it is evaluated.
pub fn parse_radial(source: &str) -> Result<Node, TreeError> {
    check_size(source)?;
    let body = source.strip_prefix('\u{feff}').unwrap_or(source);
    if [
        "Ruote.define",
        "Ruote.process_definition",
        "Ruote.workflow_definition",
    ]
    .iter()
    .any(|m| body.contains(m))
    {
        return Err(TreeError::at(
            1,
            1,
            "Ruby process definitions are not accepted; use JSON, XML or Radial",
        ));
    }
    let text = body.replace("\r\n", "\n");
    Radial { src: &text, pos: 0 }.definition()
}

struct Radial<'a> {
    src: &'a str,
    pos: usize,
}

fn is_delim(c: Option<char>, in_object: bool) -> bool {
    match c {
        None => true,
        Some(c) => c.is_whitespace() || matches!(c, ',' | '#' | ']') || (in_object && c == '}'),
    }
}

impl<'a> Radial<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn err(&self, pos: usize, message: impl Into<String>) -> TreeError {
        let (line, column) = line_col(self.src, pos);
        TreeError::at(line, column, message)
    }

    fn skip_blanks(&mut self) {
        while let Some(c) = self.peek().filter(|c| matches!(c, ' ' | '\t')) {
            self.pos += c.len_utf8();
        }
    }

    fn skip_comment(&mut self) {
        if self.peek() == Some('#') {
            self.pos = self
                .rest()
                .find('\n')
                .map_or(self.src.len(), |i| self.pos + i);
        }
    }

    /// Whitespace, newlines and comments (inside attribute lists).
    fn skip_space(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => self.pos += c.len_utf8(),
                Some('#') => self.skip_comment(),
                _ => return,
            }
        }
    }

    fn definition(&mut self) -> Result<Node, TreeError> {
        // (indentation, line start, node)
        let mut stack: Vec<(usize, Node)> = Vec::new();
        let mut root: Option<(usize, usize)> = None; // indentation, line
        let mut nodes = 0usize;
        while self.pos < self.src.len() {
            let line_start = self.pos;
            while self.peek() == Some(' ') {
                self.pos += 1;
            }
            let indent = self.pos - line_start;
            match self.peek() {
                None => break,
                Some('\n') => {
                    self.pos += 1;
                    continue;
                }
                Some('#') => {
                    self.skip_comment();
                    continue;
                }
                Some('\t') => {
                    return Err(self.err(self.pos, "a tab in the indentation; indent with spaces"));
                }
                Some(c) if c.is_whitespace() => {
                    self.skip_blanks();
                    if matches!(self.peek(), None | Some('\n' | '#')) {
                        continue;
                    }
                    return Err(self.err(
                        self.pos,
                        "unexpected whitespace in the indentation; indent with spaces",
                    ));
                }
                _ => {}
            }
            let at = self.pos;
            let node = self.line()?;
            nodes += 1;
            if nodes > MAX_NODES {
                return Err(self.err(at, nodes_message()));
            }
            match root {
                None => {
                    root = Some((indent, line_col(self.src, at).0));
                    stack.push((indent, node));
                }
                Some((root_indent, root_line)) => {
                    if indent <= root_indent {
                        return Err(self.err(
                            at,
                            format!(
                                "a second top-level expression; a definition has one root (line {root_line}): indent this line under it"
                            ),
                        ));
                    }
                    while stack.last().is_some_and(|(i, _)| *i >= indent) {
                        attach_top(&mut stack);
                    }
                    stack.push((indent, node));
                    if stack.len() > MAX_DEPTH {
                        return Err(self.err(at, depth_message()));
                    }
                }
            }
        }
        while stack.len() > 1 {
            attach_top(&mut stack);
        }
        match stack.pop() {
            Some((_, node)) => Ok(node),
            None => Err(TreeError::at(1, 1, "the definition is empty")),
        }
    }

    /// One expression line (and the lines its attributes continue on).
    fn line(&mut self) -> Result<Node, TreeError> {
        let at = self.pos;
        let end = self
            .rest()
            .find(|c: char| c.is_whitespace() || matches!(c, '#' | '"' | '\'' | ','))
            .map_or(self.src.len(), |i| self.pos + i);
        if end == at {
            let found = match self.peek() {
                Some('"' | '\'') => "a quoted string".to_owned(),
                Some(c) => format!("{c:?}"),
                None => "the end of the text".to_owned(),
            };
            return Err(self.err(at, format!("expected an expression name, found {found}")));
        }
        let raw = &self.src[at..end];
        self.pos = end;
        let name = if raw.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
            raw.replace('-', "_")
        } else {
            raw.to_owned()
        };
        let mut node = Node::new(name);
        // first attribute: after ',' or blanks
        let has_attrs = match self.peek() {
            Some(',') => {
                self.pos += 1;
                self.skip_space();
                true
            }
            Some(' ' | '\t') => {
                self.skip_blanks();
                !matches!(self.peek(), None | Some('\n' | '#'))
            }
            _ => false,
        };
        if has_attrs {
            self.attribute(&mut node)?;
            loop {
                let save = self.pos;
                self.skip_space();
                if self.peek() == Some(',') {
                    self.pos += 1;
                    self.skip_space();
                    self.attribute(&mut node)?;
                } else {
                    self.pos = save;
                    break;
                }
            }
        }
        self.skip_blanks();
        self.skip_comment();
        match self.peek() {
            None => Ok(node),
            Some('\n') => {
                self.pos += 1;
                Ok(node)
            }
            Some(c) => Err(self.err(
                self.pos,
                format!("unexpected {c:?}; attributes are separated by ',' (quote values with spaces or :,=[]#)"),
            )),
        }
    }

    fn attribute(&mut self, node: &mut Node) -> Result<(), TreeError> {
        let at = self.pos;
        let first = self.value(0, false)?;
        let save = self.pos;
        self.skip_blanks();
        let sep = if self.peek() == Some(':') {
            1
        } else if self.rest().starts_with("=>") {
            2
        } else {
            0
        };
        if sep == 0 {
            self.pos = save;
            let key = self.key_of(first, at)?;
            node.attrs.insert(key, Value::Null);
            return Ok(());
        }
        self.pos += sep;
        self.skip_space();
        let key = self.key_of(first, at)?.replace('-', "_");
        let value = self.value(0, false)?.0;
        node.attrs.insert(key, value);
        Ok(())
    }

    /// A key (or a bare value used as a text attribute) as a string.
    fn key_of(&self, (value, _): (Value, bool), at: usize) -> Result<String, TreeError> {
        match value {
            Value::String(s) => Ok(s),
            Value::Null => Ok(String::new()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Array(_) | Value::Object(_) => Err(self.err(
                at,
                "an array or object cannot be a key or a bare attribute; write key: value",
            )),
        }
    }

    /// A value; the flag says whether it was a bare word (text).
    fn value(&mut self, depth: usize, in_object: bool) -> Result<(Value, bool), TreeError> {
        let at = self.pos;
        if depth >= MAX_DEPTH {
            return Err(self.err(at, depth_message()));
        }
        match self.peek() {
            Some('[') => {
                self.pos += 1;
                self.skip_space();
                let mut items = Vec::new();
                if self.peek() == Some(']') {
                    self.pos += 1;
                    return Ok((Value::Array(items), false));
                }
                loop {
                    items.push(self.value(depth + 1, false)?.0);
                    self.skip_space();
                    match self.peek() {
                        Some(',') => {
                            self.pos += 1;
                            self.skip_space();
                        }
                        Some(']') => {
                            self.pos += 1;
                            return Ok((Value::Array(items), false));
                        }
                        _ => return Err(self.unclosed(at, "',' or ']' in the array")),
                    }
                }
            }
            Some('{') => {
                self.pos += 1;
                self.skip_space();
                let mut map = Map::new();
                if self.peek() == Some('}') {
                    self.pos += 1;
                    return Ok((Value::Object(map), false));
                }
                loop {
                    let key_at = self.pos;
                    let key = self.value(depth + 1, true)?;
                    let key = self.key_of(key, key_at)?.replace('-', "_");
                    self.skip_space();
                    if self.peek() == Some(':') {
                        self.pos += 1;
                    } else if self.rest().starts_with("=>") {
                        self.pos += 2;
                    } else {
                        return Err(self.err(self.pos, "expected ':' or '=>' after the key"));
                    }
                    self.skip_space();
                    let v = self.value(depth + 1, true)?.0;
                    map.insert(key, v);
                    self.skip_space();
                    match self.peek() {
                        Some(',') => {
                            self.pos += 1;
                            self.skip_space();
                        }
                        Some('}') => {
                            self.pos += 1;
                            return Ok((Value::Object(map), false));
                        }
                        _ => return Err(self.unclosed(at, "',' or '}' in the object")),
                    }
                }
            }
            Some(q @ ('"' | '\'')) => self.string(q).map(|s| (Value::String(s), false)),
            Some('/') => {
                let rest = &self.rest()[1..];
                let mut escaped = false;
                for (i, c) in rest.char_indices() {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '/' {
                        let re = &self.src[self.pos..self.pos + 1 + i + 1];
                        self.pos += re.len();
                        return Ok((Value::String(re.to_owned()), false));
                    }
                }
                Err(self.err(at, "unterminated regular expression (/…/)"))
            }
            _ => {
                if let Some(v) = self.number(in_object) {
                    return v.map(|n| (n, false));
                }
                for (word, v) in [
                    ("true", Value::Bool(true)),
                    ("false", Value::Bool(false)),
                    ("null", Value::Null),
                    ("nil", Value::Null),
                ] {
                    if self.rest().starts_with(word) {
                        let next = self.rest()[word.len()..].chars().next();
                        if is_delim(next, in_object) || matches!(next, Some(':' | '=')) {
                            self.pos += word.len();
                            return Ok((v, false));
                        }
                    }
                }
                let end = self
                    .rest()
                    .find(|c: char| {
                        c.is_whitespace()
                            || matches!(c, ':' | ',' | '=' | '[' | ']' | '#')
                            || (in_object && c == '}')
                    })
                    .map_or(self.src.len(), |i| self.pos + i);
                if end == at {
                    let found = match self.peek() {
                        None => "the end of the text".to_owned(),
                        Some('\n') => "the end of the line".to_owned(),
                        Some(c) => format!("{c:?}"),
                    };
                    return Err(self.err(at, format!("expected a value, found {found}")));
                }
                self.pos = end;
                Ok((Value::String(self.src[at..end].to_owned()), true))
            }
        }
    }

    fn unclosed(&self, open: usize, expected: &str) -> TreeError {
        let (line, column) = line_col(self.src, open);
        let found = match self.peek() {
            None => "the end of the text".to_owned(),
            Some(c) => format!("{c:?}"),
        };
        self.err(
            self.pos,
            format!("expected {expected} opened at line {line}, column {column}, found {found}"),
        )
    }

    /// A JSON-style number followed by a delimiter, if there is one here.
    fn number(&mut self, in_object: bool) -> Option<Result<Value, TreeError>> {
        let b = self.rest().as_bytes();
        let mut i = 0;
        if b.first() == Some(&b'-') {
            i += 1;
        }
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => return None,
        }
        if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 1;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(b.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if b.get(j).is_some_and(u8::is_ascii_digit) {
                while b.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
                i = j;
            }
        }
        if !is_delim(self.rest()[i..].chars().next(), in_object) {
            return None;
        }
        let at = self.pos;
        let token = &self.rest()[..i];
        self.pos += i;
        Some(
            serde_json::from_str::<Value>(token)
                .map_err(|_| self.err(at, format!("number out of range: {token}"))),
        )
    }

    fn string(&mut self, quote: char) -> Result<String, TreeError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err(open, "unterminated string"));
            };
            self.pos += c.len_utf8();
            if c == quote {
                return Ok(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some(e) = self.peek() else {
                return Err(self.err(open, "unterminated string"));
            };
            self.pos += e.len_utf8();
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '\\' | '"' | '\'' => out.push(e),
                other => {
                    out.push('\\');
                    out.push(other);
                }
            }
        }
    }
}

fn attach_top(stack: &mut Vec<(usize, Node)>) {
    if let Some((_, node)) = stack.pop()
        && let Some((_, parent)) = stack.last_mut()
    {
        parent.children.push(node);
    }
}

// ---------------------------------------------------------------------------
// Validation

/// Checks a tree before it is launched: the limits, non-empty names, that
/// every Ruote expression name used is one Switchyard implements (a name
/// that is not a Ruote expression is a participant or subprocess reference,
/// as in Ruote: any root is accepted, as Ruote and Scriptoria do), that
/// `participant`/`subprocess` name what they call, and that JSON trees use
/// `_` in expression names (`process-definition` would be a participant in
/// Ruote; Switchyard says so instead). Errors carry the tree path.
pub fn validate(node: &Node) -> Result<(), TreeError> {
    let mut count = 0;
    validate_at(node, "", 1, &mut count)
}

fn validate_at(node: &Node, path: &str, depth: usize, count: &mut usize) -> Result<(), TreeError> {
    if depth > MAX_DEPTH {
        return Err(TreeError::at_path(path, depth_message()));
    }
    *count += 1;
    if *count > MAX_NODES {
        return Err(TreeError::at_path(path, nodes_message()));
    }
    let name = node.name.as_str();
    let name_path = format!("{path}[0]");
    if name.trim().is_empty() {
        return Err(TreeError::at_path(
            &name_path,
            "the expression name is empty",
        ));
    }
    if EXPRESSIONS.contains(&name) {
        if matches!(name, "participant" | "subprocess") {
            match node.attrs.get("ref") {
                Some(Value::String(s)) if !s.is_empty() => {}
                Some(Value::String(_)) => {
                    return Err(TreeError::at_path(
                        &format!("{path}[1]"),
                        format!("{name}: ref is empty"),
                    ));
                }
                Some(other) => {
                    return Err(TreeError::at_path(
                        &format!("{path}[1]"),
                        format!("{name}: ref must be a string, found {}", kind_of(other)),
                    ));
                }
                None if node.text().is_some_and(|t| !t.is_empty()) => {}
                None => {
                    return Err(TreeError::at_path(
                        path,
                        format!("{name} needs a name: `{name} ref: x` or `{name} x`"),
                    ));
                }
            }
        }
    } else if RUOTE_EXPRESSIONS.contains(&name) {
        return Err(TreeError::at_path(
            &name_path,
            format!(
                "the Ruote expression '{name}' is not supported; to call a participant of that name write participant ref: '{name}'"
            ),
        ));
    } else if name.contains('-') {
        let underscored = name.replace('-', "_");
        if RUOTE_EXPRESSIONS.contains(&underscored.as_str()) {
            return Err(TreeError::at_path(
                &name_path,
                format!(
                    "'{name}' is not an expression name in a JSON tree: write '{underscored}' (or participant ref: '{name}' for a participant)"
                ),
            ));
        }
    }
    for (i, child) in node.children.iter().enumerate() {
        validate_at(child, &format!("{path}[2][{i}]"), depth + 1, count)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn tree(v: Value) -> Node {
        Node::from_json(&v).unwrap()
    }

    fn err_radial(src: &str) -> TreeError {
        parse_radial(src).unwrap_err()
    }

    fn err_xml(src: &str) -> TreeError {
        parse_xml(src).unwrap_err()
    }

    fn err_json(src: &str) -> TreeError {
        parse_json(src).unwrap_err()
    }

    // --- the seed's example and one process in all three formats ---

    #[test]
    fn seed_example_in_three_formats() {
        let xml =
            r#"<process-definition name="aaa"><participant ref="alpha" /></process-definition>"#;
        let expected = tree(
            json!(["process_definition", {"name": "aaa"}, [["participant", {"ref": "alpha"}, []]]]),
        );
        assert_eq!(parse(xml).unwrap(), expected);
        let radial = "process-definition name: aaa\n  participant ref: alpha\n";
        assert_eq!(parse(radial).unwrap(), expected);
        let js =
            r#"["process_definition", {"name": "aaa"}, [["participant", {"ref": "alpha"}, []]]]"#;
        assert_eq!(parse(js).unwrap(), expected);
        validate(&expected).unwrap();
        assert_eq!(read(xml).unwrap(), expected);
    }

    const JSON_DEF: &str = r#"
["process_definition", {"name": "review"}, [
  ["sequence", {}, [
    ["participant", {"ref": "author"}, []],
    ["concurrence", {"count": "1", "remaining": "forget"}, [
      ["participant", {"ref": "reviewer1", "timeout": "2d"}, []],
      ["reviewer2", {}, []]]],
    ["if", {"test": "${f:approved} == true"}, [
      ["participant", {"ref": "publisher"}, []],
      ["participant", {"ref": "author", "task": "rework"}, []]]],
    ["cursor", {"break_if": "${f:done}"}, [
      ["alpha", {}, []],
      ["participant", {"bravo": null}, []],
      ["rewind", {"if": "${f:again}"}, []]]]]]]]
"#;

    const XML_DEF: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- the review process -->
<process-definition name="review">
  <sequence>
    <participant ref="author" />
    <concurrence count="1" remaining="forget">
      <participant ref="reviewer1" timeout="2d"/>
      <reviewer2/>
    </concurrence>
    <if test="${f:approved} == true">
      <participant ref="publisher" />
      <!-- else -->
      <participant ref='author' task="rework"></participant>
    </if>
    <cursor break-if="${f:done}">
      <alpha />
      <participant>bravo</participant>
      <rewind if="${f:again}" />
    </cursor>
  </sequence>
</process-definition>
"#;

    const RADIAL_DEF: &str = r#"
# the review process
process-definition name: review
  sequence
    participant ref: author
    concurrence count: '1', remaining: forget
      participant ref: reviewer1, timeout: 2d
      reviewer2
    if test: "${f:approved} == true"
      participant ref: publisher
      participant ref: author, task: rework   # else
    cursor break-if: "${f:done}"
      alpha
      participant bravo
      rewind if: "${f:again}"
"#;

    #[test]
    fn the_three_formats_give_the_same_tree() {
        let j = parse(JSON_DEF).unwrap();
        let x = parse(XML_DEF).unwrap();
        let r = parse(RADIAL_DEF).unwrap();
        assert_eq!(j, x);
        assert_eq!(j, r);
        assert!(j.same_order(&x));
        assert!(j.same_order(&r));
        assert_eq!(j.node_count(), 13);
        assert_eq!(j.depth(), 4);
        validate(&j).unwrap();
    }

    #[test]
    fn parse_dispatches_on_the_first_character() {
        assert_eq!(
            parse("  \n[\"alpha\", {}, []]").unwrap(),
            Node::new("alpha")
        );
        assert_eq!(parse("\u{feff}<alpha/>").unwrap(), Node::new("alpha"));
        assert_eq!(parse("alpha").unwrap(), Node::new("alpha"));
        let e = parse("{}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1, column 1: root: expected [name, {attributes}, [children]], found an object"
        );
        assert_eq!(
            parse("  \n ").unwrap_err().message,
            "the definition is empty"
        );
        assert_eq!(parse("").unwrap_err().message, "the definition is empty");
    }

    // --- Node, JSON trees ---

    #[test]
    fn to_json_and_back() {
        let n = Node::new("sequence")
            .attr("tag", "a")
            .child(
                Node::new("participant")
                    .attr("ref", "alpha")
                    .attr("x", json!([1, {"b": null}])),
            )
            .child(Node::new("echo").attr("hello", Value::Null));
        let v = n.to_json();
        assert_eq!(
            v,
            json!(["sequence", {"tag": "a"}, [
                ["participant", {"ref": "alpha", "x": [1, {"b": null}]}, []],
                ["echo", {"hello": null}, []]]])
        );
        assert_eq!(Node::from_json(&v).unwrap(), n);
    }

    #[test]
    fn serialize_keeps_attribute_order_and_deserialize_reads_it() {
        let src = r#"["participant",{"zeta":null,"ref":"alpha","a":1},[]]"#;
        let n = parse_json(src).unwrap();
        let keys: Vec<&str> = n.attrs.keys().map(String::as_str).collect();
        assert_eq!(keys, ["zeta", "ref", "a"]);
        assert_eq!(serde_json::to_string(&n).unwrap(), src);
        let back: Node = serde_json::from_str(src).unwrap();
        assert!(back.same_order(&n));
        let bad = serde_json::from_str::<Node>(r#"["a", {}, [1]]"#).unwrap_err();
        assert!(
            bad.to_string()
                .contains("[2][0]: expected [name, {attributes}, [children]], found a number")
        );
    }

    #[test]
    fn from_json_errors_give_the_path() {
        let cases = [
            (
                json!(42),
                "root: expected [name, {attributes}, [children]], found a number",
            ),
            (
                json!({}),
                "root: expected [name, {attributes}, [children]], found an object",
            ),
            (
                json!(["a", {}]),
                "root: expected [name, {attributes}, [children]], found an array of 2 elements",
            ),
            (
                json!(["a", {}, [], 1]),
                "root: expected [name, {attributes}, [children]], found an array of 4 elements",
            ),
            (
                json!([1, {}, []]),
                "[0]: the expression name must be a string, found a number",
            ),
            (json!(["", {}, []]), "[0]: the expression name is empty"),
            (
                json!(["a", [], []]),
                "[1]: the attributes must be an object, found an array",
            ),
            (
                json!(["a", {}, {}]),
                "[2]: the children must be an array, found an object",
            ),
            (
                json!(["a", {}, [["b", {}, []], ["c", {}, [["d", {}, []], "e"]]]]),
                "[2][1][2][1]: expected [name, {attributes}, [children]], found a string",
            ),
            (
                json!(["a", {}, [["b", {}, [["c", null, []]]]]]),
                "[2][0][2][0][1]: the attributes must be an object, found null",
            ),
        ];
        for (v, msg) in cases {
            let e = Node::from_json(&v).unwrap_err();
            assert_eq!(e.to_string(), msg, "{v}");
            assert_eq!((e.line, e.column), (0, 0));
        }
    }

    #[test]
    fn parse_json_errors_give_line_column_and_path() {
        let e = err_json("[\"a\", {},\n  [[\"b\", {}, []],\n   [\"c\", 7, []]]]");
        assert_eq!(e.path.as_deref(), Some("[2][1][1]"));
        assert_eq!(
            e.message,
            "the attributes must be an object, found a number"
        );
        assert_eq!(e.line, 3);
        assert!(e.to_string().starts_with("line 3, column "), "{e}");

        let e = err_json("[\"a\", {}, [[\"b\", {}]]]");
        assert_eq!(e.path.as_deref(), Some("[2][0]"));
        assert_eq!(
            e.message,
            "expected [name, {attributes}, [children]], found an array of 2 elements"
        );

        let e = err_json("[\"a\", {}, []");
        assert_eq!(
            e.message,
            "invalid JSON: expected ']', found the end of the text"
        );
        assert_eq!(e.path, None);
        assert_eq!(e.line, 1);

        let e = err_json("[\"a\", {}, []] x");
        assert_eq!((e.line, e.column), (1, 15));
        assert_eq!(e.message, "invalid JSON: unexpected content after the tree");

        let e = err_json("[\"a\", {}, [], []]");
        assert_eq!(
            e.message,
            "expected [name, {attributes}, [children]], found more than 3 elements"
        );
        let e = err_json("[]");
        assert_eq!(
            e.message,
            "expected [name, {attributes}, [children]], found an empty array"
        );
        let e = err_json("[\"\", {}, []]");
        assert_eq!(
            e.to_string(),
            "line 1, column 2: [0]: the expression name is empty"
        );
        let e = err_json("[true, {}, []]");
        assert_eq!(
            e.message,
            "the expression name must be a string, found a boolean"
        );
        let e = err_json("[\"a\", \"b\", []]");
        assert_eq!(
            e.message,
            "the attributes must be an object, found a string"
        );
        let e = err_json("[\"a\", {}, null]");
        assert_eq!(
            e.to_string(),
            "line 1, column 11: [2]: the children must be an array, found null"
        );
    }

    #[test]
    fn json_names_are_not_normalised() {
        let n = parse_json(r#"["concurrent-iterator", {"on-field": "x"}, []]"#).unwrap();
        assert_eq!(n.name, "concurrent-iterator");
        assert!(n.attrs.contains_key("on-field"));
        let e = validate(&n).unwrap_err();
        assert_eq!(e.path.as_deref(), Some("[0]"));
        assert!(e.message.contains("write 'concurrent_iterator'"), "{e}");
        // a hyphenated name that is no expression is a participant
        validate(&parse_json(r#"["end-review", {}, []]"#).unwrap()).unwrap();
    }

    #[test]
    fn node_helpers() {
        let n = parse_radial("participant 'nemo', ref: alpha, other: null").unwrap();
        assert_eq!(n.text(), Some("nemo"));
        assert_eq!(n.reference(), Some("alpha"));
        assert_eq!(n.attr_str("ref"), Some("alpha"));
        assert_eq!(
            parse_radial("participant bravo").unwrap().reference(),
            Some("bravo")
        );
        assert_eq!(
            parse_radial("charly a: 1").unwrap().reference(),
            Some("charly")
        );
        assert_eq!(parse_radial("sequence").unwrap().reference(), None);
        assert!(parse_radial("define").unwrap().is_define());
        assert!(parse_radial("workflow-definition").unwrap().is_define());
        assert!(!parse_radial("sequence").unwrap().is_define());
        let attrs = n.attrs_json();
        assert_eq!(
            Value::Object(attrs),
            json!({"nemo": null, "ref": "alpha", "other": null})
        );
    }

    // --- XML ---

    #[test]
    fn xml_research_example() {
        let src = r#"<process-definition name="review">
  <sequence>
    <participant ref="author" />
    <concurrence count="1" remaining="forget">
      <participant ref="reviewer1" timeout="2d" />
      <participant ref="reviewer2" />
    </concurrence>
    <if test="${f:approved} == true">
      <participant ref="publisher" />
      <participant ref="author" task="rework" />
    </if>
  </sequence>
</process-definition>"#;
        let expected = tree(json!(["process_definition", {"name": "review"}, [
          ["sequence", {}, [
            ["participant", {"ref": "author"}, []],
            ["concurrence", {"count": "1", "remaining": "forget"}, [
              ["participant", {"ref": "reviewer1", "timeout": "2d"}, []],
              ["participant", {"ref": "reviewer2"}, []]]],
            ["if", {"test": "${f:approved} == true"}, [
              ["participant", {"ref": "publisher"}, []],
              ["participant", {"ref": "author", "task": "rework"}, []]]]]]]]));
        assert_eq!(parse_xml(src).unwrap(), expected);
    }

    #[test]
    fn xml_names_text_entities_and_cdata() {
        let n = parse_xml(r#"<concurrent-iterator on-field="x" to-f="y"><echo>la vida loca</echo></concurrent-iterator>"#).unwrap();
        assert_eq!(
            n,
            tree(
                json!(["concurrent_iterator", {"on_field": "x", "to_f": "y"}, [["echo", {"la vida loca": null}, []]]])
            )
        );
        let n =
            parse_xml("<echo a=\"&lt;&amp;&gt;&quot;&apos;&#65;&#x42;\">x &lt; y</echo>").unwrap();
        assert_eq!(
            n,
            tree(json!(["echo", {"a": "<&>\"'AB", "x < y": null}, []]))
        );
        let n = parse_xml("<echo><![CDATA[a < b & c]]></echo>").unwrap();
        assert_eq!(n, tree(json!(["echo", {"a < b & c": null}, []])));
        // text around children: each non-blank run is a text attribute, blanks ignored
        let n = parse_xml("<sequence> one <alpha/> two <!-- c --> three\n</sequence>").unwrap();
        let keys: Vec<&str> = n.attrs.keys().map(String::as_str).collect();
        assert_eq!(keys, ["one", "two", "three"]);
        assert_eq!(n.children, [Node::new("alpha")]);
        // namespace prefixes are dropped, values stay strings
        let n = parse_xml(r#"<r:define xmlns:r="urn:x" count="3" forget="true"/>"#).unwrap();
        assert_eq!(n.name, "define");
        assert_eq!(n.attrs.get("count"), Some(&json!("3")));
        assert_eq!(n.attrs.get("forget"), Some(&json!("true")));
        // processing instructions and comments anywhere
        let n = parse_xml(
            "<?xml version='1.0'?>\n<!-- a -->\n<define><?pi x?><alpha/></define>\n<!-- b -->\n",
        )
        .unwrap();
        assert_eq!(n, Node::new("define").child(Node::new("alpha")));
        // XML equals radial for the text attribute
        assert_eq!(
            parse_xml("<participant>alpha</participant>").unwrap(),
            parse_radial("participant alpha").unwrap()
        );
    }

    #[test]
    fn xml_refuses_doctype_and_unknown_entities() {
        let e = err_xml(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>\n<x>&e;</x>",
        );
        assert_eq!(
            e.to_string(),
            "line 2, column 1: a DOCTYPE is not allowed (no DTDs, no entity declarations)"
        );
        let e = err_xml("<x>\n  &e;</x>");
        assert_eq!((e.line, e.column), (2, 3));
        assert!(e.message.starts_with("unknown entity &e;"), "{e}");
        let e = err_xml("<x a=\"&bogus;\"/>");
        assert!(e.message.starts_with("unknown entity &bogus;"));
        let e = err_xml("<x>a & b</x>");
        assert_eq!(e.message, "'&' must start an entity such as &amp;");
        let e = err_xml("<x>&#0;</x>");
        assert_eq!(e.message, "invalid character reference &#0;");
        let e = err_xml("<x><!ENTITY y \"z\"></x>");
        assert_eq!(e.message, "markup declarations are not allowed");
    }

    #[test]
    fn xml_errors_have_positions() {
        let e = err_xml("<define>\n  <sequence>\n    <alpha/>\n  </define>");
        assert_eq!(
            e.to_string(),
            "line 4, column 3: </define> does not close <sequence> (line 2, column 3)"
        );
        let e = err_xml("<define>\n  <alpha>");
        assert_eq!(
            e.to_string(),
            "line 2, column 10: element <alpha> (line 2, column 3) is not closed"
        );
        let e = err_xml("<define a=\"1\" a=\"2\"/>");
        assert_eq!(e.to_string(), "line 1, column 15: duplicate attribute a");
        let e = err_xml("<define on-error=\"x\" on_error=\"y\"/>");
        assert_eq!(e.message, "duplicate attribute on_error");
        let e = err_xml("<define a=1/>");
        assert_eq!(
            e.to_string(),
            "line 1, column 11: expected a quoted attribute value"
        );
        let e = err_xml("<define a=\"1\"b=\"2\"/>");
        assert_eq!(e.message, "expected whitespace before an attribute");
        let e = err_xml("<define a=\"x<y\"/>");
        assert!(
            e.message
                .starts_with("'<' is not allowed in an attribute value")
        );
        let e = err_xml("<define a=\"x");
        assert_eq!(
            e.to_string(),
            "line 1, column 11: unterminated attribute value"
        );
        let e = err_xml("<define/><other/>");
        assert_eq!(
            e.to_string(),
            "line 1, column 10: unexpected content after the root element"
        );
        let e = err_xml("<define/>trailing");
        assert_eq!(e.message, "unexpected content after the root element");
        let e = err_xml("< define/>");
        assert_eq!(e.message, "expected an element name after '<'");
        let e = err_xml("<define><!-- x </define>");
        assert_eq!(e.to_string(), "line 1, column 9: unterminated comment");
        let e = err_xml("<define a>");
        assert_eq!(e.message, "expected '=' after the attribute name a");
        let e = err_xml("<define a=\"1\" !>");
        assert_eq!(
            e.message,
            "expected an attribute name, '>' or '/>', found '!'"
        );
        let e = err_xml("<define");
        assert_eq!(e.message, "unclosed start tag <define>");
        let e = err_xml("<echo ref=\"x\">ref</echo>");
        assert!(e.message.contains("repeats an attribute name"), "{e}");
        let e = err_xml("  ");
        assert_eq!(
            e.message,
            "expected the root element, found the end of the text"
        );
        let e = err_xml("<é>\n\tx</ë>");
        assert_eq!((e.line, e.column), (2, 3));
    }

    // --- Radial ---

    #[test]
    fn radial_research_examples() {
        let cases: Vec<(&str, Value)> = vec![
            (
                "define\n  sequence\n    alpha\n    participant 'bravo', timeout: '2d'\n",
                json!(["define", {}, [["sequence", {}, [["alpha", {}, []], ["participant", {"bravo": null, "timeout": "2d"}, []]]]]]),
            ),
            (
                "participant bravo, timeout: 2d, on-board: true",
                json!(["participant", {"bravo": null, "timeout": "2d", "on_board": true}, []]),
            ),
            (
                "define name: review\n  concurrence count: 1, remaining: forget, merge_type: mix\n    reviewer1 timeout: 3d\n    reviewer2\n  editor if: \"${f:approved} == true\"\n",
                json!(["define", {"name": "review"}, [["concurrence", {"count": 1, "remaining": "forget", "merge_type": "mix"}, [["reviewer1", {"timeout": "3d"}, []], ["reviewer2", {}, []]]], ["editor", {"if": "${f:approved} == true"}, []]]]),
            ),
            (
                "cursor\n  author\n  reviewer\n  rewind if: \"${f:not_ok}\"\n  jump to: publisher, if: \"${f:skip_review}\"\n  publisher\n",
                json!(["cursor", {}, [["author", {}, []], ["reviewer", {}, []], ["rewind", {"if": "${f:not_ok}"}, []], ["jump", {"to": "publisher", "if": "${f:skip_review}"}, []], ["publisher", {}, []]]]),
            ),
            (
                "define\n  set field: items, value: { cars: 2, trucks: 0 }\n  set 'v:x': alpha\n  iterator on_field: customers, to_f: customer\n    participant \"${f:customer}\", task: \"call ${f:customer}\"\n",
                json!(["define", {}, [["set", {"field": "items", "value": {"cars": 2, "trucks": 0}}, []], ["set", {"v:x": "alpha"}, []], ["iterator", {"on_field": "customers", "to_f": "customer"}, [["participant", {"${f:customer}": null, "task": "call ${f:customer}"}, []]]]]]),
            ),
            (
                "given \"${status}\"\n  of ready\n    alpha\n  of /^dead/\n    bravo\n  charly\n",
                json!(["given", {"${status}": null}, [["of", {"ready": null}, [["alpha", {}, []]]], ["of", {"/^dead/": null}, [["bravo", {}, []]]], ["charly", {}, []]]]),
            ),
            (
                "sequence on_error: [\n  { /unknown participant/: alpha }, { null: bravo }\n]\n  nada\n",
                json!(["sequence", {"on_error": [{"/unknown participant/": "alpha"}, {"": "bravo"}]}, [["nada", {}, []]]]),
            ),
            (
                "define name: 'x', on_error: failpath\n  sequence timeout: 2d, on_timeout: escalate\n    alpha\n  define failpath\n    supervisor msg: \"process ${wfid} failed\"\n  define escalate\n    boss\n",
                json!(["define", {"name": "x", "on_error": "failpath"}, [["sequence", {"timeout": "2d", "on_timeout": "escalate"}, [["alpha", {}, []]]], ["define", {"failpath": null}, [["supervisor", {"msg": "process ${wfid} failed"}, []]]], ["define", {"escalate": null}, [["boss", {}, []]]]]]),
            ),
        ];
        for (src, expected) in cases {
            let got = parse_radial(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
            assert_eq!(got, tree(expected.clone()), "{src}");
            assert_eq!(parse(src).unwrap(), got);
        }
    }

    #[test]
    fn radial_attribute_order_is_kept() {
        let n = parse_radial("alpha 'nemo', action: 'nada'").unwrap();
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            r#"["alpha",{"nemo":null,"action":"nada"},[]]"#
        );
    }

    #[test]
    fn radial_values() {
        let n = parse_radial(
            "x a: 1, b: -2.5, c: 1e3, d: true, e: false, f: null, g: nil, h: 2d, i: \"two words\", j: 'it''s', k: [1, 2], l: {}, m: [], n: 0, o: trueish, p: /a\\/b/, q: ${f:x}",
        );
        // 'it''s' is two adjacent strings: not allowed
        assert!(n.is_err());
        let n = parse_radial(
            "x a: 1, b: -2.5, c: 1e3, d: true, e: false, f: null, g: nil, h: 2d, i: \"two words\", k: [1, 2], l: {}, m: [], n: 0, o: trueish, p: /a\\/b/, q: ${href}, r: 1.5.2, s: 'a\\'b\\n', t: \"\\d\"",
        )
        .unwrap();
        assert_eq!(
            Value::Object(n.attrs_json()),
            json!({
                "a": 1, "b": -2.5, "c": 1000.0, "d": true, "e": false, "f": null, "g": null,
                "h": "2d", "i": "two words", "k": [1, 2], "l": {}, "m": [], "n": 0,
                "o": "trueish", "p": "/a\\/b/", "q": "${href}", "r": "1.5.2", "s": "a'b\n", "t": "\\d"
            })
        );
        // bare values as text attributes; numbers and booleans stringified
        let n = parse_radial("wait 10").unwrap();
        assert_eq!(n, tree(json!(["wait", {"10": null}, []])));
        let n = parse_radial("x true, 1.5, nil").unwrap();
        assert_eq!(
            n,
            tree(json!(["x", {"true": null, "1.5": null, "": null}, []]))
        );
        // '=>' as in Ruby hashes, keys with '-' normalised, bare values not
        let n = parse_radial("set 'f:a-b' => 1, on-error => x, some-text").unwrap();
        assert_eq!(
            n,
            tree(json!(["set", {"f:a_b": 1, "on_error": "x", "some-text": null}, []]))
        );
        // nested values, multi-line, comments inside
        let n = parse_radial("set value: { a: [1, { b: \"c\" }], # comment\n  d: e },\n  other: 'multi\nline'\n  alpha").unwrap();
        assert_eq!(
            n,
            tree(
                json!(["set", {"value": {"a": [1, {"b": "c"}], "d": "e"}, "other": "multi\nline"}, [["alpha", {}, []]]])
            )
        );
        // numbers before ']' and '}' (Ruote would read text), text stops at '}' in objects
        let n = parse_radial("x a: [1, 2], b: {c: 0}, d: {e: f}, g: a}b").unwrap();
        assert_eq!(
            Value::Object(n.attrs_json()),
            json!({"a": [1, 2], "b": {"c": 0}, "d": {"e": "f"}, "g": "a}b"})
        );
    }

    #[test]
    fn radial_layout() {
        // comma right after the name, continuation lines, CRLF, comments, blank lines
        let src = "define\r\n  # comment\r\n\r\n  echo,\r\n    e: 5,\r\n    f: 6\r\n  charly a: 1,\r\n    b: 2   # trailing\r\n        \r\n  end-review\r\n";
        let n = parse_radial(src).unwrap();
        assert_eq!(
            n,
            tree(json!(["define", {}, [
                ["echo", {"e": 5, "f": 6}, []],
                ["charly", {"a": 1, "b": 2}, []],
                ["end_review", {}, []]]]))
        );
        // a shallower line goes to the nearest line with a smaller indentation
        let n = parse_radial("a\n    b\n      c\n  d\n e\n").unwrap();
        assert_eq!(
            n,
            tree(json!([
                "a",
                {},
                [["b", {}, [["c", {}, []]]], ["d", {}, []], ["e", {}, []]]
            ]))
        );
        // the root may be indented
        let n = parse_radial("\n   a\n     b\n").unwrap();
        assert_eq!(n, tree(json!(["a", {}, [["b", {}, []]]])));
        // '-' -> '_' only for names of [a-z-]
        let n = parse_radial("a\n  Alpha-Beta\n  process-definition\n  x-1\n").unwrap();
        let names: Vec<&str> = n.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["Alpha-Beta", "process_definition", "x-1"]);
        // `end` is just a name
        assert_eq!(
            parse_radial("sequence\n  end\n").unwrap().children[0].name,
            "end"
        );
        // a one-word definition is a tree, never a file
        assert_eq!(parse("/etc/hosts").unwrap(), Node::new("/etc/hosts"));
    }

    #[test]
    fn radial_errors_have_positions() {
        let e = err_radial("alpha\nbravo\n");
        assert_eq!(
            e.to_string(),
            "line 2, column 1: a second top-level expression; a definition has one root (line 1): indent this line under it"
        );
        let e = err_radial("define\n\tsequence");
        assert_eq!(
            e.to_string(),
            "line 2, column 1: a tab in the indentation; indent with spaces"
        );
        let e = err_radial("'alpha'");
        assert_eq!(
            e.to_string(),
            "line 1, column 1: expected an expression name, found a quoted string"
        );
        let e = err_radial("define\n  participant ref: alpha timeout: 2d");
        assert_eq!((e.line, e.column), (2, 26));
        assert!(e.message.starts_with("unexpected 't'"), "{e}");
        let e = err_radial("define\n  participant 'bravo' timeout: 2d");
        assert_eq!((e.line, e.column), (2, 23));
        assert!(e.message.contains("separated by ','"));
        let e = err_radial("define\n  echo \"never closed\n");
        assert_eq!(e.to_string(), "line 2, column 8: unterminated string");
        let e = err_radial("x a: [1, 2");
        assert_eq!(
            e.to_string(),
            "line 1, column 11: expected ',' or ']' in the array opened at line 1, column 6, found the end of the text"
        );
        let e = err_radial("x a: { b 1 }");
        assert_eq!(
            e.to_string(),
            "line 1, column 10: expected ':' or '=>' after the key"
        );
        let e = err_radial("x a: {b: 0}}");
        assert_eq!((e.line, e.column), (1, 12));
        let e = err_radial("x a:");
        assert_eq!(
            e.to_string(),
            "line 1, column 5: expected a value, found the end of the text"
        );
        let e = err_radial("x a,");
        assert_eq!(e.message, "expected a value, found the end of the text");
        let e = err_radial("x [1, 2]");
        assert_eq!(
            e.to_string(),
            "line 1, column 3: an array or object cannot be a key or a bare attribute; write key: value"
        );
        let e = err_radial("x a: /never");
        assert_eq!(
            e.to_string(),
            "line 1, column 6: unterminated regular expression (/…/)"
        );
        let e = err_radial("x a: 1e999");
        assert_eq!(e.message, "number out of range: 1e999");
        let e = err_radial("   \n # only comments\n");
        assert_eq!(e.to_string(), "line 1, column 1: the definition is empty");
        let e = err_radial("Ruote.define do\n  alpha\nend");
        assert!(
            e.message
                .starts_with("Ruby process definitions are not accepted")
        );
        let e = err_radial("a\n  b c: 'ü',\n    d: [");
        assert_eq!(e.line, 3);
        let e = err_radial("a\n  \u{a0}b");
        assert_eq!((e.line, e.column), (2, 3));
    }

    // --- validation ---

    #[test]
    fn validate_accepts_expressions_and_bare_participants() {
        for src in [
            "alpha",
            "participant ref: alpha",
            "participant alpha",
            "subprocess ref: sub",
            "define\n  sequence\n    concurrence\n      cursor\n        repeat\n          loop\n            rewind\n            skip 1\n            jump to: x\n            break\n            stop\n            reset\n",
            "define\n  iterator on_val: 'a, b', to_var: v\n    concurrent-iterator on_val: 'a, b'\n      if test: true\n        given x\n          that '${f:a}'\n          of b\n            equals value: a, other_value: a\n",
            "define\n  wait 1s\n  cancel_process\n  terminate\n  set f: a, value: 1\n  unset f: a\n  echo hello\n  noop\n  error boom\n  forget\n    lose\n      a\n",
            "workflow-definition\n  a",
        ] {
            let n = parse_radial(src).unwrap();
            validate(&n).unwrap_or_else(|e| panic!("{src}: {e}"));
        }
    }

    #[test]
    fn validate_refuses_unsupported_and_nameless() {
        let e = validate(&parse_radial("define\n  sequence\n    cron '0 * * * *'\n").unwrap())
            .unwrap_err();
        assert_eq!(e.path.as_deref(), Some("[2][0][2][0][0]"));
        assert!(
            e.message
                .starts_with("the Ruote expression 'cron' is not supported"),
            "{e}"
        );
        assert!(e.message.contains("participant ref: 'cron'"));
        // the workaround works
        validate(&parse_radial("participant ref: cron").unwrap()).unwrap();

        let e =
            validate(&parse_radial("define\n  participant timeout: 2d\n").unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "[2][0]: participant needs a name: `participant ref: x` or `participant x`"
        );
        let e = validate(&tree(json!(["subprocess", {"ref": 3}, []]))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "[1]: subprocess: ref must be a string, found a number"
        );
        let e = validate(&tree(json!(["participant", {"ref": ""}, []]))).unwrap_err();
        assert_eq!(e.message, "participant: ref is empty");
        let e = validate(&Node::new(" ")).unwrap_err();
        assert_eq!(e.to_string(), "[0]: the expression name is empty");
        let e = read("define\n  rset a: 1").unwrap_err();
        assert!(e.message.contains("'rset' is not supported"), "{e}");
    }

    // --- limits ---

    fn radial_chain(depth: usize) -> String {
        (0..depth)
            .map(|i| format!("{}n{i}\n", " ".repeat(i)))
            .collect()
    }

    fn json_chain(depth: usize) -> String {
        let mut s = String::new();
        for i in 0..depth {
            s.push_str(&format!("[\"n{i}\", {{}}, ["));
        }
        for _ in 0..depth {
            s.push_str("]]");
        }
        s
    }

    fn xml_chain(depth: usize) -> String {
        let mut s = String::new();
        for i in 0..depth {
            s.push_str(&format!("<n{i}>"));
        }
        for i in (0..depth).rev() {
            s.push_str(&format!("</n{i}>"));
        }
        s
    }

    #[test]
    fn depth_limit() {
        for (name, make) in [
            ("radial", radial_chain as fn(usize) -> String),
            ("json", json_chain),
            ("xml", xml_chain),
        ] {
            let ok = parse(&make(MAX_DEPTH)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(ok.depth(), MAX_DEPTH, "{name}");
            validate(&ok).unwrap();
            let e = parse(&make(MAX_DEPTH + 1)).unwrap_err();
            assert_eq!(
                e.message, "the definition is nested too deeply (at most 64 levels)",
                "{name}"
            );
            assert!(e.line > 0, "{name}");
        }
        let e = err_radial(&radial_chain(65));
        assert_eq!((e.line, e.column), (65, 65));
        // hand-built and JSON-value trees too
        let mut deep = Node::new("a");
        for _ in 0..MAX_DEPTH {
            deep = Node::new("a").child(deep);
        }
        let e = validate(&deep).unwrap_err();
        assert_eq!(
            e.message,
            "the definition is nested too deeply (at most 64 levels)"
        );
        assert!(Node::from_json(&deep.to_json()).is_err());
        // nested attribute values in radial
        let e = err_radial(&format!("x a: {}", "[".repeat(70)));
        assert_eq!(
            e.message,
            "the definition is nested too deeply (at most 64 levels)"
        );
    }

    #[test]
    fn node_count_limit() {
        let radial = |n: usize| -> String {
            let mut s = String::from("sequence\n");
            for i in 1..n {
                s.push_str(&format!("  p{i}\n"));
            }
            s
        };
        let ok = parse(&radial(MAX_NODES)).unwrap();
        assert_eq!(ok.node_count(), MAX_NODES);
        validate(&ok).unwrap();
        let e = parse(&radial(MAX_NODES + 1)).unwrap_err();
        assert_eq!(
            e.message,
            "the definition has too many expressions (at most 10000)"
        );
        assert_eq!(e.line, MAX_NODES + 1);

        let json = |n: usize| -> String {
            let kids: Vec<String> = (1..n).map(|_| "[\"p\",{},[]]".to_owned()).collect();
            format!("[\"sequence\",{{}},[{}]]", kids.join(","))
        };
        assert_eq!(parse(&json(MAX_NODES)).unwrap().node_count(), MAX_NODES);
        let e = parse(&json(MAX_NODES + 1)).unwrap_err();
        assert_eq!(e.path.as_deref(), Some("[2][9999]"));
        assert!(e.message.contains("too many expressions"));
        let v: Value = serde_json::from_str(&json(MAX_NODES + 1)).unwrap();
        assert!(
            Node::from_json(&v)
                .unwrap_err()
                .message
                .contains("too many expressions")
        );

        let xml = |n: usize| -> String { format!("<sequence>{}</sequence>", "<p/>".repeat(n - 1)) };
        assert_eq!(parse(&xml(MAX_NODES)).unwrap().node_count(), MAX_NODES);
        assert!(
            parse(&xml(MAX_NODES + 1))
                .unwrap_err()
                .message
                .contains("too many expressions")
        );

        let mut wide = Node::new("sequence");
        wide.children = vec![Node::new("p"); MAX_NODES];
        assert!(
            validate(&wide)
                .unwrap_err()
                .message
                .contains("too many expressions")
        );
    }

    #[test]
    fn size_limit() {
        let big = format!("define\n  alpha msg: '{}'\n", "x".repeat(MAX_SOURCE_BYTES));
        for f in [parse, parse_json, parse_xml, parse_radial] {
            let e = f(&big).unwrap_err();
            assert!(e.message.starts_with("the definition is 2621"), "{e}");
            assert!(
                e.message.ends_with("bytes long (at most 262144 bytes)"),
                "{e}"
            );
            assert_eq!(e.to_string(), e.message);
        }
        let fits = format!("alpha msg: '{}'", "x".repeat(MAX_SOURCE_BYTES - 20));
        assert!(parse(&fits).is_ok());
    }

    #[test]
    fn error_display() {
        let e = TreeError {
            line: 3,
            column: 7,
            path: None,
            message: "boom".into(),
        };
        assert_eq!(e.to_string(), "line 3, column 7: boom");
        let e = TreeError {
            line: 0,
            column: 0,
            path: Some("[2][0]".into()),
            message: "boom".into(),
        };
        assert_eq!(e.to_string(), "[2][0]: boom");
        let e = TreeError {
            line: 1,
            column: 2,
            path: Some("root".into()),
            message: "boom".into(),
        };
        assert_eq!(e.to_string(), "line 1, column 2: root: boom");
    }
}
