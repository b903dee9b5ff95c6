//! The message loop (placeholder while the engine is written).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Config, Ids, Input, Outcome, Process};

/// A live expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expr {
    pub fei: Fei,
    pub parent: Option<String>,
    pub vars: Option<serde_json::Map<String, Value>>,
    pub children: Vec<String>,
}

/// An expression's identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fei {
    pub expid: String,
    pub subid: String,
}

/// What a timer does when it fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimerRef {
    pub key: String,
}

/// Whether a variable value is engine-internal (bound subprocess trees, tags).
pub fn is_internal_var(_v: &Value) -> bool {
    false
}

/// Runs `inputs` against `p` (see the module doc).
pub fn advance(
    _p: &mut Process,
    _inputs: Vec<Input>,
    _now: u64,
    _ids: &mut dyn Ids,
    _cfg: &Config,
) -> Outcome {
    Outcome::default()
}
