//! State machines with monitoring (the wigo seed, finished).
//!
//! A machine is a set of states with their allowed `next` states. Initial
//! states are the ones marked `"initial": true`, or — when none is marked —
//! the first state listed. States with no `next` are terminal: entering one
//! closes the entity. Entities move by transitions, validated and applied in
//! one Lua call (`lua/machines/transition.lua`) that also keeps per-state
//! counts, time-in-state sets and per-minute counters (entries, exits, edges,
//! rejections) from which the metrics are read.
//!
//! Thresholds per state (count above N, oldest age above T, more than N
//! entities older than T, entry rate above R per window) are evaluated by the
//! scheduler and right after transitions; an alert and its webhook are one
//! call (`lua/machines/alert.lua`).
//!
//! * [`spec`] — the definition as posted and [`validate`] that turns it into
//!   the stored [`Definition`].
//! * [`store`] — [`MachineStore`]: create, delete, list, transitions, entities.
//! * [`metrics`] — per-state and per-edge figures ([`MachineMetrics`]).
//! * [`thresholds`] — evaluation and alerts.
//! * [`nagios`] — the plugin-style check text.

pub mod config;
pub mod keys;
pub mod metrics;
pub mod nagios;
pub mod scripts;
pub mod spec;
pub mod store;
pub mod thresholds;

pub use config::MachineOpts;
pub use keys::MachineKeys;
pub use metrics::{MachineMetrics, Percentiles, StateMetrics, Windows};
pub use spec::{
    ACTION_URL_MAX, ActionSpec, Definition, EVENT_ID_MAX, MachineSpec, NAME_MAX, STATES_MAX,
    Severity, SpecError, StateSpec, THRESHOLDS_MAX, ThresholdKind, ThresholdSpec, valid_entity_id,
    valid_event_id, valid_id, validate, validate_with,
};
pub use store::{
    BATCH_MAX, EntityView, Event, HISTORY_CAP, HistoryEntry, IdCursor, MachineError, MachineStore,
    MachineSummary, RejectReason, TransitionResult,
};
pub use thresholds::{Evaluated, MetricsReport, ThresholdStatus};
