//! Deployment gates through HTTP.

mod race;
mod tickets;
