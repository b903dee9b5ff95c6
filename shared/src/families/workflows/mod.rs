//! Workflows (issue 10): the Scriptoria API over a Ruote-compatible process
//! engine. The pure core:
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
//! * [`engine`] — the process engine: `advance` turns a stored process and
//!   inputs into a new process and an outcome (callbacks, workitems,
//!   timers, history).
//!
//! On the substrate (wired into the registries like every family):
//!
//! * [`config`] — `WorkflowOpts`; [`keys`] — every key of a workflow on its
//!   shard, and the per-shard indexes; [`ids`] — workflow and workitem ids,
//!   made and checked before any Redis call.
//! * [`store`] — `WorkflowStore`: launch, proceed, cancel and replay record
//!   an input and queue a `workflows.step`; the worker's `step` runs the
//!   engine and commits the outcome in one call fenced by the version
//!   (`lua/workflows/commit.lua`), callbacks included (outbox deliveries).
//! * [`views`] — what the endpoints answer; [`owner`] — the outbox's hooks
//!   (a retry of a proceeded or cancelled workitem is not sent; a callback
//!   that finally fails is an engine input); [`scripts`] — `lua/workflows/`.

pub mod engine;
pub mod expr;
pub mod handlers;
pub mod launch;
pub mod merge;
pub mod reference;
pub mod tree;

pub mod config;
pub mod ids;
pub mod keys;
pub mod owner;
pub mod scripts;
pub mod store;
pub mod views;

pub use config::WorkflowOpts;
pub use owner::owner_hooks;
pub use store::{OWNER, WorkflowError, WorkflowStore};
