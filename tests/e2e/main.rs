//! End-to-end tests: real redis-server, real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

mod bad_input;
mod deliveries;
mod gates;
mod harness;
mod machines;
mod net_model;
mod nets;
mod platform;
mod race;
mod receiver;
mod worker;
