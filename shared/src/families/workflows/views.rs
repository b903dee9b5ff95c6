//! What the workflow endpoints answer: typed views (so the OpenAPI document
//! shows them) built from the stored process, workitems and history. Times
//! are ISO 8601 UTC with milliseconds.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::engine::{Event, Process, ProcessError, Workitem};
use crate::platform::time::iso_ms;

fn iso(ms: u64) -> String {
    iso_ms(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// The URL a participant posts to when its work is done.
pub fn proceed_url(public_url: &str, wfid: &str, workitem_id: &str) -> String {
    format!(
        "{}/v1/workflows/{wfid}/workitems/{workitem_id}/proceed",
        public_url.trim_end_matches('/')
    )
}

/// `GET /v1/workflows/{id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkflowView {
    pub id: String,
    /// `running`, `completed`, `cancelled` or `error`.
    pub status: String,
    /// The launch fields while running; the final fields once completed.
    pub fields: Map<String, Value>,
    /// The proceedable workitems, oldest dispatch first.
    pub workitems: Vec<WorkitemView>,
    /// The process variables (the root scope).
    pub variables: Map<String, Value>,
    /// Unhandled errors (the status is `error` while there are any).
    pub errors: Vec<ErrorView>,
    pub launched_at: String,
    pub ended_at: Option<String>,
}

/// One proceedable workitem.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkitemView {
    pub workitem_id: String,
    pub participant: String,
    /// Always `active`.
    pub status: String,
    pub fields: Map<String, Value>,
    pub proceed_url: String,
}

/// One unhandled process error.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorView {
    pub at: String,
    pub expid: String,
    pub expression: String,
    pub message: String,
}

impl From<&ProcessError> for ErrorView {
    fn from(e: &ProcessError) -> Self {
        ErrorView {
            at: iso(e.at),
            expid: e.expid.clone(),
            expression: e.expression.clone(),
            message: e.message.clone(),
        }
    }
}

impl WorkflowView {
    /// The view of a stored process and its proceedable workitems.
    pub fn new(p: &Process, mut workitems: Vec<Workitem>, public_url: &str) -> Self {
        workitems.sort_by(|a, b| {
            (a.dispatched_at, &a.workitem_id).cmp(&(b.dispatched_at, &b.workitem_id))
        });
        WorkflowView {
            id: p.wfid.clone(),
            status: p.status.as_str().to_owned(),
            fields: p.fields.clone(),
            workitems: workitems
                .into_iter()
                .map(|w| WorkitemView {
                    proceed_url: proceed_url(public_url, &p.wfid, &w.workitem_id),
                    workitem_id: w.workitem_id,
                    participant: w.participant,
                    status: "active".into(),
                    fields: w.fields,
                })
                .collect(),
            variables: p.variables(),
            errors: p.errors.iter().map(ErrorView::from).collect(),
            launched_at: iso(p.launched_at),
            ended_at: p.ended_at.map(iso),
        }
    }
}

/// `GET /v1/workflows/{id}/history`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryView {
    /// Oldest first (the oldest are dropped past `--workflow-history-len`).
    pub events: Vec<EventView>,
}

/// One history event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventView {
    pub at: String,
    /// `launched`, `dispatched`, `proceeded`, `echo`, `timed_out`, `error`,
    /// `cancelled`, `completed`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workitem_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl From<Event> for EventView {
    fn from(e: Event) -> Self {
        EventView {
            at: iso(e.at),
            kind: e.kind,
            participant: e.participant,
            workitem_id: e.workitem_id,
            text: e.text,
        }
    }
}

/// `GET /v1/workflows/{id}/tree`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TreeView {
    /// The definition as a tree of `{expid, name, attributes, active, children}`.
    pub tree: Value,
    /// The expids where the process waits (participants, timers).
    pub positions: Vec<String>,
}

/// One workflow in a listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkflowSummary {
    pub id: String,
    pub status: String,
    pub launched_at: String,
}

/// `GET /v1/workflows`: newest first; pass `next_cursor` back as `cursor`
/// until it is `null`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkflowPage {
    pub workflows: Vec<WorkflowSummary>,
    pub next_cursor: Option<String>,
}

/// The body of a participant callback, in Scriptoria's key order.
#[derive(Debug, Serialize)]
pub struct CallbackBody<'a> {
    pub workflow_id: &'a str,
    pub workitem_id: &'a str,
    pub participant: &'a str,
    pub status: &'a str,
    pub fields: &'a Map<String, Value>,
    pub proceed_url: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_callback_body_has_scriptorias_key_order() {
        let mut fields = Map::new();
        fields.insert("params".into(), serde_json::json!({"ref": "alpha"}));
        let wfid = "20151005-1247-kogadeso-gekunute";
        let wi = format!("0_0!023abf5d398319b1c8fcbfaf70e7c780!{wfid}");
        let body = CallbackBody {
            workflow_id: wfid,
            workitem_id: &wi,
            participant: "alpha",
            status: "active",
            fields: &fields,
            proceed_url: proceed_url("http://core.dev/", wfid, &wi),
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            format!(
                r#"{{"workflow_id":"{wfid}","workitem_id":"{wi}","participant":"alpha","status":"active","fields":{{"params":{{"ref":"alpha"}}}},"proceed_url":"http://core.dev/v1/workflows/{wfid}/workitems/{wi}/proceed"}}"#
            )
        );
    }
}
