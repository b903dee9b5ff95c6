//! Workflows (issue 10, in progress): the Scriptoria API over a
//! Ruote-compatible process engine. What exists so far is the pure core the
//! engine will run on — nothing is wired into the API, worker or scheduler
//! registries yet:
//!
//! * [`tree`] — the process definition as a tree `[name, {attributes},
//!   [children]]`, parsed from JSON, XML (`<process-definition>`) and Radial
//!   (the indented text form), all three to the same tree, with errors that
//!   say where (line/column). Parsers never evaluate code, read files or
//!   fetch URLs.
//! * [`expr`] — Ruote's dollar substitution (`${f:x}`, `${v:x}`, `$f:x`) and
//!   condition strings (`if`, `unless`, `break_if`, …), with Ruote's typing.
//! * [`launch`] — the body of `POST /v1/workflows` (form-encoded with Rack's
//!   nested brackets, or JSON) checked with Scriptoria's error texts.
//! * [`handlers`] — `on_error` / `on_timeout` / `on_cancel` values parsed.
//! * [`merge`] — how a concurrence merges its branches' workitems.
//! * [`reference`] — a sequential reference interpreter (the model that the
//!   engine's property tests compare against).

pub mod engine;
pub mod expr;
pub mod handlers;
pub mod launch;
pub mod merge;
pub mod reference;
pub mod tree;
