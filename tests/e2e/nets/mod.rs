//! Coloured Petri nets.

mod api;
mod callback_urls;
mod callbacks;
mod model;
mod retention;

use serde_json::Value;

use crate::support::Receiver;

pub fn bodies(rx: &Receiver) -> Vec<Value> {
    rx.received()
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect()
}

/// Distinct callbacks (retries share a webhook-id).
pub fn distinct(rx: &Receiver) -> usize {
    let mut ids: Vec<String> = rx.received().iter().map(|r| r.id().to_owned()).collect();
    ids.sort();
    ids.dedup();
    ids.len()
}
