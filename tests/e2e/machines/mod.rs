//! State machines.

mod event_ids;
mod limits;
mod scrape;
mod thresholds;
mod transitions;
mod webhook_urls;

use serde_json::{Value, json};

pub fn provisioning() -> Value {
    json!({
        "id": "PROVISIONING",
        "name": "Product Provisioning",
        "states": [
            {"id": "1", "name": "Waiting Payment", "next": ["2", "3"]},
            {"id": "2", "name": "Waiting Activation", "next": ["4"]},
            {"id": "3", "name": "Cancelled", "next": []},
            {"id": "4", "name": "Activating", "next": ["5"]},
            {"id": "5", "name": "Active", "next": ["6"]},
            {"id": "6", "name": "Waiting Deactivation", "next": ["4", "7"]},
            {"id": "7", "name": "Deactivated", "next": ["3"]}
        ]
    })
}
