//! The platform: the worker runtime, health, metrics and bad input.

mod bad_input;
mod health;
mod owners;
mod worker;
