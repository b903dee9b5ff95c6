//! End-to-end tests: real redis-server, real HTTP.
//!
//! * `support/` — the harness: a redis-server per test, the app, a callback
//!   receiver, typed client helpers per family.
//! * one folder per family (`gates/`, `deliveries/`, `nets/`, `machines/`),
//!   files split by behaviour;
//! * `platform/` — the worker runtime, health and metrics, bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

mod cluster;
mod deliveries;
mod gates;
mod machines;
mod nets;
mod platform;
mod support;
mod transactions;
mod ui;
mod workflows;
