//! Deployment gates through HTTP.

mod calendar;
mod history;
mod race;
mod retries;
mod services;
mod tickets;
