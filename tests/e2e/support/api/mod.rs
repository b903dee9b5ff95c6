//! Typed client helpers, one module per family: `app.gates().create(…)`,
//! `app.nets().create(spec)`, … Each helper asserts only what every caller
//! relies on (e.g. that a create succeeded).

pub mod deliveries;
pub mod gates;
pub mod machines;
pub mod nets;
pub mod transactions;
pub mod workflows;
