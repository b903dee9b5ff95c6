//! Deployment gates through HTTP.

mod calendar;
mod history;
mod race;
mod services;
mod tickets;
