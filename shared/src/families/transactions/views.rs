//! What the transactions endpoints answer (field order is the wire order).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::Status;
use super::schema::RESOURCES;
use crate::platform::time::iso_ms;

/// `{"type": 3}`: Robbyson's per-answer message log, unchanged on success.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusLog {
    #[serde(rename = "type")]
    pub kind: u8,
}

/// The item counts of a transaction.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Counts {
    /// Items accepted in batches.
    pub received: u64,
    /// Items that passed validation.
    pub valid: u64,
    /// Items with a per-item error.
    pub invalid: u64,
    /// Items outside the commit's date window.
    pub skipped: u64,
    /// Items replaced by a later item with the same natural key.
    pub superseded: u64,
    /// Items written to the consolidated store.
    pub consolidated: u64,
    /// Items received per resource.
    pub resources: HashMap<String, u64>,
}

/// The running stage: items (or batches, for import) done of total.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Progress {
    pub stage: String,
    pub done: u64,
    pub total: u64,
}

/// One per-item error of the pipeline.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ItemErrorView {
    pub resource: String,
    /// The batch (0-based, in arrival order) and the item's index in it.
    pub batch: u64,
    pub index: u64,
    pub identification: String,
    /// JSON pointer of the field at fault (`""`: the item).
    pub path: String,
    pub message: String,
}

/// A transaction, in the seed's shape, plus counts, progress and errors.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TxData {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(rename = "apiIntegrationScope")]
    pub api_integration_scope: Vec<String>,
    pub status: u8,
    #[serde(rename = "descStatus")]
    pub desc_status: String,
    pub date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    #[serde(rename = "startDate", skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(rename = "endDate", skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ItemErrorView>>,
    /// Why the transaction ended in 11 ImportError (a step kept failing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// `{"data": {...}, "statusLog": [{"type": 3}]}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TxView {
    pub data: TxData,
    #[serde(rename = "statusLog")]
    pub status_log: Vec<StatusLog>,
    #[serde(skip)]
    pub created: i64,
}

impl TxView {
    /// The answer of a create: exactly the seed's fields.
    pub fn created(id: &str, created: i64) -> Self {
        Self {
            data: TxData {
                id: id.to_owned(),
                api_integration_scope: vec![],
                status: Status::Created.code(),
                desc_status: Status::Created.name().to_owned(),
                date: iso_ms(created),
                counts: None,
                progress: None,
                start_date: None,
                end_date: None,
                errors: None,
                failure: None,
            },
            status_log: vec![StatusLog { kind: 3 }],
            created,
        }
    }

    /// A stored transaction record, with its first errors.
    pub fn from_record(
        id: &str,
        rec: &HashMap<String, String>,
        errors: Vec<ItemErrorView>,
    ) -> Self {
        let num = |f: &str| rec.get(f).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let text = |f: &str| rec.get(f).filter(|s| !s.is_empty()).cloned();
        let created = i64::try_from(num("created")).unwrap_or(0);
        let status = Status::from_code(u8::try_from(num("status")).unwrap_or(0))
            .unwrap_or(Status::ImportError);
        let mut view = Self::created(id, created);
        view.data.status = status.code();
        view.data.desc_status = status.name().to_owned();
        view.data.counts = Some(Counts {
            received: num("received"),
            valid: num("valid"),
            invalid: num("invalid"),
            skipped: num("skipped"),
            superseded: num("superseded"),
            consolidated: num("consolidated"),
            resources: RESOURCES
                .iter()
                .filter_map(|r| {
                    let n = num(&format!("r:{}", r.name()));
                    (n > 0).then(|| (r.name().to_owned(), n))
                })
                .collect(),
        });
        view.data.progress = text("stage").map(|stage| Progress {
            stage,
            done: num("pos"),
            total: num("total"),
        });
        view.data.start_date = text("wstart");
        view.data.end_date = text("wend");
        view.data.errors = Some(errors);
        view.data.failure = text("failure");
        view
    }
}

/// A page of transactions, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TxPage {
    pub data: Vec<TxData>,
    pub next_cursor: Option<String>,
}

/// A page of per-item errors.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorPage {
    pub data: Vec<ItemErrorView>,
    pub total: usize,
    pub next_offset: Option<usize>,
}
