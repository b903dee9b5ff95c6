//! The platform: the worker runtime, health, metrics and bad input.

mod auth_scheme;
mod bad_input;
mod consumers;
mod health;
mod metrics_listen;
mod object_bodies;
mod owners;
mod path_segments;
mod roles;
mod safe_retries;
mod scheduler_heartbeat;
mod script_flush;
mod tracing;
mod wait_replicas;
mod worker;
mod workflows_wiring;
